// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <array>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/scalar.hpp"
#include "mhaprune/core/segment.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/criteria/detail/run_kernels.hpp"
#include "mhaprune/criteria/evidence.hpp"
#include "mhaprune/criteria/gradient_view.hpp"
#include "mhaprune/criteria/reduction.hpp"
#include "mhaprune/criteria/role_weights.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

namespace detail {

/// Q, K, V, O as slots 0..3; -1 for roles that are not projection weights.
inline int role_slot(Role role) noexcept {
  switch (role) {
    case Role::query:
      return 0;
    case Role::key:
      return 1;
    case Role::value:
      return 2;
    case Role::output:
      return 3;
    default:
      return -1;
  }
}

/// A bound tensor's memory as `lines` contiguous lines of `length` elements (rows of a row-major
/// tensor, columns of a column-major one). `heads_on_lines`: the head axis runs across lines (each
/// line belongs to one segment) rather than along them (each line crosses every segment).
struct LineGeometry {
  Index lines;
  Index length;
  bool heads_on_lines;
};

template <typename Scalar>
LineGeometry line_geometry(const BoundTensor<Scalar>& t) noexcept {
  const bool row_major = t.ref.order() == StorageOrder::row_major;
  return {row_major ? t.ref.rows() : t.ref.cols(), row_major ? t.ref.cols() : t.ref.rows(),
          (t.head_axis == Axis::rows) == row_major};
}

/// Visits a bound tensor's elements in storage order as runs that each lie in one segment:
/// `visit(segment_index, line, begin, n, slice_offset)` for elements `begin .. begin+n` of `line`,
/// which are elements `slice_offset .. slice_offset+n` of the segment's slice (the slice read in the
/// same order, so a per-slice state stays aligned across calls).
template <typename Scalar, typename Visit>
void for_each_run(const BoundTensor<Scalar>& t, Visit&& visit) {
  const LineGeometry g = line_geometry(t);
  const auto segments = static_cast<Index>(t.segments.size());
  if (g.heads_on_lines) {
    Index line = 0;
    for (Index s = 0; s < segments; ++s) {
      const Index w = t.segments[static_cast<std::size_t>(s)].width;
      for (Index a = 0; a < w; ++a) visit(s, line + a, Index{0}, g.length, a * g.length);
      line += w;
    }
  } else {
    for (Index line = 0; line < g.lines; ++line) {
      Index begin = 0;
      for (Index s = 0; s < segments; ++s) {
        const Index w = t.segments[static_cast<std::size_t>(s)].width;
        visit(s, line, begin, w, line * w);
        begin += w;
      }
    }
  }
}

/// Where a gradient's counterpart of the tensor's run (line, begin) starts, and its step.
struct GradientRun {
  Index start;
  Index stride;
};

inline GradientRun gradient_run(const GradientView& g, StorageOrder tensor_order, Index line,
                                Index begin) noexcept {
  if (g.order == tensor_order) return {line * g.outer_stride + begin, 1};
  return {begin * g.outer_stride + line, g.outer_stride};
}

/// Calls `f(static_cast<const G*>(data))` with G the C++ type of `dtype`.
template <typename F>
decltype(auto) with_dtype(Dtype dtype, const void* data, F&& f) {
  switch (dtype) {
    case Dtype::float64:
      return f(static_cast<const double*>(data));
    case Dtype::float16:
      return f(static_cast<const Eigen::half*>(data));
    case Dtype::bfloat16:
      return f(static_cast<const Eigen::bfloat16*>(data));
    case Dtype::float32:
      break;
  }
  return f(static_cast<const float*>(data));
}

/// Whether a bound tensor holds Q, K, V or O weight slices (biases and extras are not scored).
template <typename Scalar>
bool is_scored_weight(const BoundTensor<Scalar>& t) noexcept {
  if (t.kind != TensorKind::weight || !t.sliced()) return false;
  for (const Segment& s : t.segments)
    if (role_slot(s.role) >= 0) return true;
  return false;
}

/// The gradient of every scored weight tensor (nullptr elsewhere, or when `Fn` reads none), checked
/// before anything is computed.
template <typename Fn, typename Scalar>
std::vector<const GradientView*> gradients_for(const AttentionBlock<Scalar>& block, const Evidence& ev,
                                               const char* who) {
  std::vector<const GradientView*> grads(block.tensors().size(), nullptr);
  if constexpr (Fn::uses_gradient) {
    for (std::size_t i = 0; i < block.tensors().size(); ++i) {
      const auto& t = block.tensors()[i];
      if (is_scored_weight(t)) grads[i] = &require_gradient(ev, block, t, who);
    }
  }
  return grads;
}

template <typename Fn, Reduction R, typename Scalar>
RoleNumbers slice_numbers_impl(const AttentionBlock<Scalar>& block,
                               const std::vector<const GradientView*>& grads) {
  const HeadLayout& L = block.layout();
  const Index units[4] = {L.heads(), L.kv_heads(), L.kv_heads(), L.heads()};
  const double init = R == Reduction::max ? -std::numeric_limits<double>::infinity() : 0.0;
  std::array<Eigen::VectorXd, 4> acc;
  std::array<Eigen::VectorXd, 4> count;
  for (int k = 0; k < 4; ++k) {
    acc[static_cast<std::size_t>(k)] = Eigen::VectorXd::Constant(units[k], init);
    count[static_cast<std::size_t>(k)] = Eigen::VectorXd::Zero(units[k]);
  }

  for (std::size_t i = 0; i < block.tensors().size(); ++i) {
    const BoundTensor<Scalar>& t = block.tensors()[i];
    if (!is_scored_weight(t)) continue;
    const Scalar* w = t.ref.data();
    const StorageOrder order = t.ref.order();
    const Index length = line_geometry(t).length;
    const Index other = t.other_extent();
    for (const Segment& s : t.segments) {
      const int k = role_slot(s.role);
      if (k >= 0) count[static_cast<std::size_t>(k)](s.unit) += static_cast<double>(s.width * other);
    }
    auto pass = [&](const auto* g) {
      const GradientView* gv = grads[i];
      for_each_run(t, [&](Index si, Index line, Index begin, Index n, Index) {
        const Segment& s = t.segments[static_cast<std::size_t>(si)];
        const int k = role_slot(s.role);
        if (k < 0) return;
        const GradientRun gr = gv ? gradient_run(*gv, order, line, begin) : GradientRun{0, 1};
        const double part = reduce_run<Fn, R>(w + line * length + begin, g ? g + gr.start : g, gr.stride, n);
        double& a = acc[static_cast<std::size_t>(k)](s.unit);
        a = R == Reduction::max ? std::max(a, part) : a + part;
      });
    };
    if constexpr (Fn::uses_gradient) {
      with_dtype(grads[i]->dtype, grads[i]->data, pass);
    } else {
      pass(static_cast<const Scalar*>(nullptr));
    }
  }

  for (std::size_t k = 0; k < 4; ++k) {
    if constexpr (R == Reduction::mean) acc[k] = acc[k].cwiseQuotient(count[k]);
    if constexpr (R == Reduction::l2) acc[k] = acc[k].cwiseSqrt();
  }
  return RoleNumbers{std::move(acc[0]), std::move(acc[1]), std::move(acc[2]), std::move(acc[3])};
}

}  // namespace detail

/// Per-(role, current unit) numbers of an element-wise score: `Fn::apply` over each head's slice of
/// Q, K, V and O, reduced by `reduce`, whatever the layout (separate, fused `[Q|K|V]`, interleaved,
/// grouped, transposed, row- or column-major): slices are found through the tensors' segments, so the
/// same logical weights give the same numbers in every layout (up to float rounding of the order of
/// additions). Memory is read once, in storage order.
///
/// @tparam Fn an element function (see `ElementWise`).
/// @param who the criterion's name, for messages.
/// @throws what `AttentionBlock::validate` throws; for an `Fn` that reads gradients, `evidence_error`
///         when a scored weight tensor has none in `ev` and `shape_error` when it is mis-shaped.
template <typename Fn, typename Scalar>
RoleNumbers element_wise_numbers(const AttentionBlock<Scalar>& block, const Evidence& ev, Reduction reduce,
                                 const char* who = Fn::name) {
  block.validate();
  const auto grads = detail::gradients_for<Fn>(block, ev, who);
  switch (reduce) {
    case Reduction::sum:
      return detail::slice_numbers_impl<Fn, Reduction::sum>(block, grads);
    case Reduction::max:
      return detail::slice_numbers_impl<Fn, Reduction::max>(block, grads);
    case Reduction::l2:
      return detail::slice_numbers_impl<Fn, Reduction::l2>(block, grads);
    case Reduction::mean:
      break;
  }
  return detail::slice_numbers_impl<Fn, Reduction::mean>(block, grads);
}

/// Options shared by the element-wise criteria.
struct ElementWiseOptions {
  Reduction reduce = Reduction::mean;
  RoleWeights weights{};
};

/// A criterion that scores each weight element with a function of the weight and its gradient,
/// reduces each head's slice of Q, K, V and O to one number (`Reduction`), and averages a head's four
/// numbers with `RoleWeights` (see `combine_roles` for how GQA shares K/V numbers).
///
/// @tparam Fn the element function, a class with
///   - `static constexpr const char* name`: used in messages;
///   - `static constexpr bool uses_weight`, `uses_gradient`: which inputs it reads (a gradient is
///     required in the evidence for every weight tensor when `uses_gradient`);
///   - `template <class T> static T apply(T w, T g) noexcept`: the score of one element from its
///     weight and gradient, widened to T = float (double when the weights or the gradients are
///     double); an argument the function does not use is 0. Keep it simple and inline (e.g.
///     `return std::abs(w * g);`): it runs in the vectorised inner loop, once per element.
///   Built-ins: `MagnitudeFn`, `GradientFn`, `SnipFn`.
///
/// Stateless: `scores` is const and may be called concurrently. Throws as `element_wise_numbers`.
template <typename Fn>
class ElementWise {
 public:
  ElementWise() = default;
  /// @throws config_error for invalid role weights.
  explicit ElementWise(Reduction reduce, RoleWeights weights = {}) : reduce_(reduce), weights_(weights) {
    weights_.validate(Fn::name);
  }
  explicit ElementWise(const ElementWiseOptions& o) : ElementWise(o.reduce, o.weights) {}

  static constexpr const char* name() noexcept { return Fn::name; }
  Reduction reduction() const noexcept { return reduce_; }
  const RoleWeights& weights() const noexcept { return weights_; }

  /// The per-role numbers before they are combined into head scores.
  template <typename Scalar>
  RoleNumbers numbers(const AttentionBlock<Scalar>& block, const Evidence& ev = Evidence{}) const {
    return element_wise_numbers<Fn>(block, ev, reduce_);
  }

  /// One score per current query head, higher = keep.
  template <typename Scalar>
  Eigen::VectorXd scores(const AttentionBlock<Scalar>& block, const Evidence& ev = Evidence{}) const {
    return combine_roles(block.layout(), numbers(block, ev), weights_);
  }

 private:
  Reduction reduce_ = Reduction::mean;
  RoleWeights weights_{};
};

}  // namespace mhaprune
