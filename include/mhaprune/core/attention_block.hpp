// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <numeric>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mhaprune/core/head_layout.hpp"
#include "mhaprune/core/segment.hpp"
#include "mhaprune/core/tensor_spec.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

namespace detail {
struct BlockAccess;
}

/// One attention block over the caller's own tensors, which it never copies or owns.
///
/// @tparam Scalar element type of every tensor in the block: `float`, `double`, `Eigen::half` or
///         `Eigen::bfloat16`.
///
/// The block is built empty with a name (used in every message) and a `HeadLayout`, then given its
/// tensors by layout adapters: `block.add(layout::query(Wq))`, ... The tensors must outlive the
/// block. It remembers the original id of every surviving query head and key/value head, so heads can
/// be named by original id across several rounds of removal, as Hugging Face's `pruned_heads` does.
///
/// Shape conventions: Q `[H*d, D]`, K and V `[H_kv*d, D]`, O `[D, H*d]` in PyTorch `Linear`
/// orientation (`Orientation::out_in`), transposed for `Orientation::in_out`; biases are vectors.
///
/// Throws: `add` throws `shape_error` when a tensor disagrees with the layout and `storage_error`
/// when its buffer is unusable or already bound; `validate` throws the same when the caller changed a
/// tensor after binding it, and `shape_error` when Q, K, V or O is missing or covered twice.
template <typename Scalar>
class AttentionBlock {
 public:
  using scalar_type = Scalar;

  AttentionBlock(std::string name, HeadLayout layout)
      : name_(std::move(name)),
        layout_(layout),
        original_heads_(layout.heads()),
        original_kv_heads_(layout.kv_heads()) {
    head_ids_.resize(static_cast<std::size_t>(layout.heads()));
    kv_head_ids_.resize(static_cast<std::size_t>(layout.kv_heads()));
    std::iota(head_ids_.begin(), head_ids_.end(), Index{0});
    std::iota(kv_head_ids_.begin(), kv_head_ids_.end(), Index{0});
  }

  /// A block that already lost heads before (a checkpoint that mhaprune or Hugging Face's
  /// `prune_heads` wrote): `head_ids` and `kv_head_ids` are the original ids of the heads present,
  /// one per current query / key-value head of `layout`, and `original_heads`/`original_kv_heads`
  /// the counts of the unpruned model. Later removals keep naming heads by these ids.
  ///
  /// Throws `head_id_error` unless the ids are ascending, distinct, in `[0, original)`, as many
  /// as the layout's heads, and consistent with grouped-query attention: the original model's
  /// query heads per key/value head (`original_heads / original_kv_heads`, which must divide) and
  /// the current ones put each query head in the group of its original key/value head.
  AttentionBlock(std::string name, HeadLayout layout, std::vector<Index> head_ids,
                 std::vector<Index> kv_head_ids, Index original_heads, Index original_kv_heads)
      : name_(std::move(name)),
        layout_(layout),
        original_heads_(original_heads),
        original_kv_heads_(original_kv_heads),
        head_ids_(std::move(head_ids)),
        kv_head_ids_(std::move(kv_head_ids)) {
    check_original_ids();
  }

  /// Binds one tensor after checking it against the current layout; on error nothing is bound.
  AttentionBlock& add(TensorSpec<Scalar> spec) {
    tensors_.push_back(check(std::move(spec)));
    return *this;
  }

  const std::string& name() const noexcept { return name_; }
  const HeadLayout& layout() const noexcept { return layout_; }
  /// Original ids of the current query heads, in their current order.
  const std::vector<Index>& head_ids() const noexcept { return head_ids_; }
  /// Original ids of the current key/value heads.
  const std::vector<Index>& kv_head_ids() const noexcept { return kv_head_ids_; }
  Index original_heads() const noexcept { return original_heads_; }
  Index original_kv_heads() const noexcept { return original_kv_heads_; }
  const std::vector<BoundTensor<Scalar>>& tensors() const noexcept { return tensors_; }

  /// Current position of an original query head id, or -1 when it was removed or never existed.
  Index position_of(Index original_id) const noexcept {
    const auto it = std::find(head_ids_.begin(), head_ids_.end(), original_id);
    return it == head_ids_.end() ? Index{-1} : static_cast<Index>(it - head_ids_.begin());
  }

  /// The bound tensor with this name, or nullptr.
  const BoundTensor<Scalar>* find(std::string_view tensor_name) const noexcept {
    for (const auto& t : tensors_)
      if (t.name == tensor_name) return &t;
    return nullptr;
  }

  /// Checks that Q, K, V and O are each bound exactly once per head, that biases, where present,
  /// cover every head, and that no tensor changed shape or buffer size since it was bound.
  void validate() const {
    for (const auto& t : tensors_) check_unchanged(t);
    for (Role role : {Role::query, Role::key, Role::value, Role::output}) {
      check_coverage(role, TensorKind::weight, /*required=*/true);
      if (role != Role::output) check_coverage(role, TensorKind::bias, /*required=*/false);
    }
  }

 private:
  friend struct detail::BlockAccess;

  void check_original_ids() const {
    const auto fail = [this](auto&&... parts) {
      return head_id_error(
          detail::message("block \"", name_, "\": ", std::forward<decltype(parts)>(parts)...));
    };
    if (original_heads_ <= 0 || original_kv_heads_ <= 0 || original_heads_ % original_kv_heads_ != 0) {
      throw fail("original counts ", original_heads_, " query and ", original_kv_heads_,
                 " key/value heads: both must be positive and the second divide the first");
    }
    const auto check_list = [&](const std::vector<Index>& ids, Index current, Index original,
                                const char* what) {
      if (static_cast<Index>(ids.size()) != current) {
        throw fail(ids.size(), " original ", what, " head ids for ", current, " current ", what, " heads");
      }
      for (std::size_t i = 0; i < ids.size(); ++i) {
        if (ids[i] < 0 || ids[i] >= original) {
          throw fail("original ", what, " head id ", ids[i], " is outside [0, ", original, ")");
        }
        if (i > 0 && ids[i] <= ids[i - 1]) {
          throw fail("original ", what, " head ids must be ascending and distinct, got ", ids[i - 1],
                     " before ", ids[i]);
        }
      }
    };
    check_list(head_ids_, layout_.heads(), original_heads_, "query");
    check_list(kv_head_ids_, layout_.kv_heads(), original_kv_heads_, "key/value");
    const Index original_group = original_heads_ / original_kv_heads_;
    for (Index p = 0; p < layout_.heads(); ++p) {
      const Index id = head_ids_[static_cast<std::size_t>(p)];
      const Index kv = kv_head_ids_[static_cast<std::size_t>(layout_.kv_head_of(p))];
      if (id / original_group != kv) {
        throw fail("query head ", id, " (position ", p, ") reads original key/value head ",
                   id / original_group, ", but its group at position ", layout_.kv_head_of(p),
                   " is original key/value head ", kv);
      }
    }
  }

  std::string where(const std::string& tensor) const {
    return detail::message("block \"", name_, "\", tensor \"", tensor, "\"");
  }

  void check_unchanged(const BoundTensor<Scalar>& t) const {
    if (t.ref.rows() != t.rows || t.ref.cols() != t.cols) {
      throw shape_error(detail::message(where(t.name), ": shape changed since it was bound: expected ",
                                        detail::shape_string(t.rows, t.cols), ", got ",
                                        detail::shape_string(t.ref.rows(), t.ref.cols())));
    }
    check_buffer(t.name, t.ref);
  }

  void check_buffer(const std::string& tensor, const TensorRef<Scalar>& ref) const {
    if (ref.size() > 0 && ref.data() == nullptr) {
      throw storage_error(detail::message(where(tensor), ": ", ref.storage(), " of shape ",
                                          detail::shape_string(ref.rows(), ref.cols()), " has no data"));
    }
    if (ref.rows() < 0 || ref.cols() < 0 || ref.capacity() < ref.size()) {
      throw storage_error(detail::message(
          where(tensor), ": ", ref.storage(), " holds ", ref.capacity(), " elements, too few for its shape ",
          detail::shape_string(ref.rows(), ref.cols()), " (", ref.size(), " elements)"));
    }
  }

  void check_coverage(Role role, TensorKind kind, bool required) const {
    const Index units = (role == Role::key || role == Role::value) ? layout_.kv_heads() : layout_.heads();
    std::vector<int> seen(static_cast<std::size_t>(units), 0);
    bool any = false;
    for (const auto& t : tensors_) {
      if (t.kind != kind) continue;
      for (const Segment& s : t.segments) {
        if (s.role != role) continue;
        any = true;
        ++seen[static_cast<std::size_t>(s.unit)];
      }
    }
    if (!any && !required) return;
    const char* what = kind == TensorKind::weight ? "weight" : "bias";
    for (Index u = 0; u < units; ++u) {
      const int n = seen[static_cast<std::size_t>(u)];
      if (n != 1) {
        throw shape_error(detail::message("block \"", name_, "\": the ", to_string(role), " ", what,
                                          n == 0 ? " is missing" : " is bound more than once", " for ",
                                          role == Role::key || role == Role::value ? "key/value" : "query",
                                          " head ", u, " (bind each of Q, K, V, O exactly once)"));
      }
    }
  }

  BoundTensor<Scalar> check(TensorSpec<Scalar> spec) const {
    const TensorRef<Scalar>& ref = spec.ref;
    if (!ref.bound()) throw storage_error(detail::message(where(spec.name), ": no tensor given"));
    for (const auto& t : tensors_) {
      if (t.ref.object() == ref.object()) {
        throw storage_error(
            detail::message(where(spec.name), ": the same object is already bound as \"", t.name, "\""));
      }
      if (t.name == spec.name) {
        throw storage_error(detail::message(where(spec.name), ": a tensor of that name is already bound"));
      }
    }
    check_buffer(spec.name, ref);

    BoundTensor<Scalar> t{spec.name, spec.kind, Axis::rows, ref, {}, ref.rows(), ref.cols()};
    if (spec.segments) {
      try {
        t.segments = spec.segments(layout_);
      } catch (const layout_error& e) {
        // The adapter knows the layout it cannot split, not which block and tensor it was given.
        throw layout_error(detail::message(where(spec.name), ": ", e.what()));
      }
    }
    const Index along = total_width(t.segments);

    switch (spec.kind) {
      case TensorKind::weight: {
        const bool rows_are_heads =
            spec.heads_on_output_features == (spec.orientation == Orientation::out_in);
        t.head_axis = rows_are_heads ? Axis::rows : Axis::cols;
        const Index er = rows_are_heads ? along : layout_.model_dim();
        const Index ec = rows_are_heads ? layout_.model_dim() : along;
        if (ref.rows() != er || ref.cols() != ec) {
          throw shape_error(detail::message(where(spec.name), ": expected ", detail::shape_string(er, ec),
                                            " for ", layout_description(), ", got ",
                                            detail::shape_string(ref.rows(), ref.cols())));
        }
        break;
      }
      case TensorKind::bias: {
        const Index expected = t.sliced() ? along : layout_.model_dim();
        const bool vector = ref.rows() == 1 || ref.cols() == 1;
        t.head_axis = ref.cols() == 1 ? Axis::rows : Axis::cols;
        if (!vector || ref.size() != expected) {
          throw shape_error(detail::message(where(spec.name), ": expected a vector of length ", expected,
                                            " for ", layout_description(), ", got ",
                                            detail::shape_string(ref.rows(), ref.cols())));
        }
        break;
      }
      case TensorKind::extra: {
        t.head_axis = spec.extra_axis;
        if (ref.extent(t.head_axis) != along || along == 0) {
          throw shape_error(detail::message(
              where(spec.name), ": its ", spec.extra_axis == Axis::rows ? "rows" : "columns", " (",
              ref.extent(t.head_axis), ") do not split into one equal non-empty slice per head for ",
              layout_description(), "; shape ", detail::shape_string(ref.rows(), ref.cols())));
        }
        break;
      }
    }
    return t;
  }

  std::string layout_description() const {
    return detail::message("H=", layout_.heads(), ", H_kv=", layout_.kv_heads(), ", d=", layout_.head_dim(),
                           ", D=", layout_.model_dim());
  }

  std::string name_;
  HeadLayout layout_;
  Index original_heads_;
  Index original_kv_heads_;
  std::vector<Index> head_ids_;
  std::vector<Index> kv_head_ids_;
  std::vector<BoundTensor<Scalar>> tensors_;
};

namespace detail {
/// The removal code's access to a block's bookkeeping; not for users.
struct BlockAccess {
  template <typename Scalar>
  static std::vector<BoundTensor<Scalar>>& tensors(AttentionBlock<Scalar>& b) noexcept {
    return b.tensors_;
  }
  template <typename Scalar>
  static void commit(AttentionBlock<Scalar>& b, HeadLayout layout, std::vector<Index>& head_ids,
                     std::vector<Index>& kv_head_ids) noexcept {
    b.layout_ = layout;
    b.head_ids_.swap(head_ids);
    b.kv_head_ids_.swap(kv_head_ids);
  }
};
}  // namespace detail

}  // namespace mhaprune
