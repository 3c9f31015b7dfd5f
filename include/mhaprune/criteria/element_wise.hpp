// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <type_traits>
#include <utility>
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

/// A Q, K, V or O weight (or a fused one) that is not in memory as a whole but can be read one
/// line at a time (a row of a row-major tensor), for `element_wise_numbers_by_line`: e.g. a
/// block-quantized tensor decoded row by row into a small buffer.
struct LinedWeight {
  /// The head axis's segments in order (see mhaprune/layouts/segments.hpp).
  std::vector<Segment> segments;
  Index lines = 0;   ///< lines in storage
  Index length = 0;  ///< elements per line
  /// True when the head axis runs across lines (each line lies in one segment: the rows of a
  /// `[out, in]` Q, K or V); false when each line crosses every segment (the rows of O).
  bool heads_on_lines = true;
};

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

/// Visits the elements of a tensor of geometry `g` whose head axis is divided into `segments`, in
/// storage order, as runs that each lie in one segment: `visit(segment_index, line, begin, n,
/// slice_offset)` for elements `begin .. begin+n` of `line`, which are elements
/// `slice_offset .. slice_offset+n` of the segment's slice (the slice read in the same order, so a
/// per-slice state stays aligned across calls). Each line is visited in one stretch of calls.
template <typename Visit>
void for_each_run(const LineGeometry& g, const std::vector<Segment>& segments, Visit&& visit) {
  const auto count = static_cast<Index>(segments.size());
  if (g.heads_on_lines) {
    Index line = 0;
    for (Index s = 0; s < count; ++s) {
      const Index w = segments[static_cast<std::size_t>(s)].width;
      for (Index a = 0; a < w; ++a) visit(s, line + a, Index{0}, g.length, a * g.length);
      line += w;
    }
  } else {
    for (Index line = 0; line < g.lines; ++line) {
      Index begin = 0;
      for (Index s = 0; s < count; ++s) {
        const Index w = segments[static_cast<std::size_t>(s)].width;
        visit(s, line, begin, w, line * w);
        begin += w;
      }
    }
  }
}

/// `for_each_run` over a bound tensor's memory.
template <typename Scalar, typename Visit>
void for_each_run(const BoundTensor<Scalar>& t, Visit&& visit) {
  for_each_run(line_geometry(t), t.segments, std::forward<Visit>(visit));
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

/// `f(std::integral_constant<Reduction, R>{})` for R = `reduce`: each reduction gets its own
/// instantiation of the run loops (the reduction is a template argument of the inner kernel).
template <typename F>
decltype(auto) with_reduction(Reduction reduce, F&& f) {
  switch (reduce) {
    case Reduction::sum:
      return f(std::integral_constant<Reduction, Reduction::sum>{});
    case Reduction::max:
      return f(std::integral_constant<Reduction, Reduction::max>{});
    case Reduction::l2:
      return f(std::integral_constant<Reduction, Reduction::l2>{});
    case Reduction::mean:
      break;
  }
  return f(std::integral_constant<Reduction, Reduction::mean>{});
}

/// The reductions `R` of `Fn` per (role, current unit), fed one run at a time; `finish` turns sums
/// into means (or square roots for l2). Runs of other roles (biases, extras) are not counted.
template <typename Fn, Reduction R>
class RoleAccumulator {
 public:
  explicit RoleAccumulator(const HeadLayout& L) {
    const Index units[4] = {L.heads(), L.kv_heads(), L.kv_heads(), L.heads()};
    const double init = R == Reduction::max ? -std::numeric_limits<double>::infinity() : 0.0;
    for (std::size_t k = 0; k < 4; ++k) {
      acc_[k] = Eigen::VectorXd::Constant(units[k], init);
      count_[k] = Eigen::VectorXd::Zero(units[k]);
    }
  }

  /// Adds the run of n elements `w` (and gradient `g`, `g_stride` apart) of segment `s`.
  template <typename W, typename G>
  void add(const Segment& s, const W* w, const G* g, Index g_stride, Index n) noexcept {
    const int k = role_slot(s.role);
    if (k < 0) return;
    const double part = reduce_run<Fn, R>(w, g, g_stride, n);
    double& a = acc_[static_cast<std::size_t>(k)](s.unit);
    a = R == Reduction::max ? std::max(a, part) : a + part;
    count_[static_cast<std::size_t>(k)](s.unit) += static_cast<double>(n);
  }

  RoleNumbers finish() && {
    for (std::size_t k = 0; k < 4; ++k) {
      if constexpr (R == Reduction::mean) acc_[k] = acc_[k].cwiseQuotient(count_[k]);
      if constexpr (R == Reduction::l2) acc_[k] = acc_[k].cwiseSqrt();
    }
    return RoleNumbers{std::move(acc_[0]), std::move(acc_[1]), std::move(acc_[2]), std::move(acc_[3])};
  }

 private:
  std::array<Eigen::VectorXd, 4> acc_;
  std::array<Eigen::VectorXd, 4> count_;
};

template <typename Fn, Reduction R, typename Scalar>
RoleNumbers slice_numbers_impl(const AttentionBlock<Scalar>& block,
                               const std::vector<const GradientView*>& grads) {
  RoleAccumulator<Fn, R> acc(block.layout());
  for (std::size_t i = 0; i < block.tensors().size(); ++i) {
    const BoundTensor<Scalar>& t = block.tensors()[i];
    if (!is_scored_weight(t)) continue;
    const Scalar* w = t.ref.data();
    const StorageOrder order = t.ref.order();
    const Index length = line_geometry(t).length;
    auto pass = [&](const auto* g) {
      const GradientView* gv = grads[i];
      for_each_run(t, [&](Index si, Index line, Index begin, Index n, Index) {
        const GradientRun gr = gv ? gradient_run(*gv, order, line, begin) : GradientRun{0, 1};
        acc.add(t.segments[static_cast<std::size_t>(si)], w + line * length + begin, g ? g + gr.start : g,
                gr.stride, n);
      });
    };
    if constexpr (Fn::uses_gradient) {
      with_dtype(grads[i]->dtype, grads[i]->data, pass);
    } else {
      pass(static_cast<const Scalar*>(nullptr));
    }
  }
  return std::move(acc).finish();
}

/// Checks that `weights` cover every Q, K, V and O unit of `L` exactly once and that each one's
/// segment widths add up to its head axis.
inline void check_line_weights(const HeadLayout& L, const std::vector<LinedWeight>& weights,
                               const char* who) {
  const Index units[4] = {L.heads(), L.kv_heads(), L.kv_heads(), L.heads()};
  std::array<std::vector<int>, 4> seen;
  for (std::size_t k = 0; k < 4; ++k) seen[k].assign(static_cast<std::size_t>(units[k]), 0);
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const LinedWeight& t = weights[i];
    Index total = 0;
    for (const Segment& s : t.segments) {
      total += s.width;
      const int k = role_slot(s.role);
      if (k < 0) continue;
      if (s.unit < 0 || s.unit >= units[k]) {
        throw shape_error(message(who, ": lined weight ", i, ": ", to_string(s.role), " unit ", s.unit,
                                  " is outside [0, ", units[k], ")"));
      }
      ++seen[static_cast<std::size_t>(k)][static_cast<std::size_t>(s.unit)];
    }
    const Index axis = t.heads_on_lines ? t.lines : t.length;
    if (t.lines < 0 || t.length < 0 || total != axis) {
      throw shape_error(message(who, ": lined weight ", i, " of ", t.lines, " lines of ", t.length,
                                " elements: its segments add up to ", total,
                                " along the head axis, which has ", axis));
    }
  }
  const Role roles[4] = {Role::query, Role::key, Role::value, Role::output};
  for (std::size_t k = 0; k < 4; ++k) {
    for (std::size_t u = 0; u < seen[k].size(); ++u) {
      if (seen[k][u] != 1) {
        throw shape_error(message(who, ": the ", to_string(roles[k]), " weight ",
                                  seen[k][u] == 0 ? "is missing" : "is given more than once", " for unit ",
                                  u));
      }
    }
  }
}

template <typename Fn, Reduction R, typename LineFn>
RoleNumbers line_numbers_impl(const HeadLayout& L, const std::vector<LinedWeight>& weights, LineFn& line_of) {
  RoleAccumulator<Fn, R> acc(L);
  for (std::size_t i = 0; i < weights.size(); ++i) {
    const LinedWeight& t = weights[i];
    Index current = -1;
    const float* data = nullptr;
    for_each_run(LineGeometry{t.lines, t.length, t.heads_on_lines}, t.segments,
                 [&](Index si, Index line, Index begin, Index n, Index) {
                   if (role_slot(t.segments[static_cast<std::size_t>(si)].role) < 0) return;
                   if (line != current) {
                     data = line_of(i, line);
                     current = line;
                   }
                   acc.add(t.segments[static_cast<std::size_t>(si)], data + begin,
                           static_cast<const float*>(nullptr), 1, n);
                 });
  }
  return std::move(acc).finish();
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
  return detail::with_reduction(
      reduce, [&](auto r) { return detail::slice_numbers_impl<Fn, decltype(r)::value>(block, grads); });
}

/// `element_wise_numbers` for weights read one line at a time: the same numbers, bit for bit, as
/// binding the same values in memory (same runs, same order of additions), without ever holding a
/// whole tensor. For element functions that read only the weight.
///
/// @param weights the block's Q, K, V and O weights (separate or fused), in the order a block binds
///        them (Q, K, V, O) for numbers identical to the bound block's.
/// @param line_of `const float* line_of(std::size_t weight, Index line)`: line `line` of
///        `weights[weight]` (`length` floats), valid until the next call. Lines are asked for in
///        ascending order, each once.
/// @throws shape_error when `weights` do not cover each Q, K, V and O unit of `layout` once, or a
///         weight's segments do not add up to its head axis; what `line_of` throws.
template <typename Fn, typename LineFn>
RoleNumbers element_wise_numbers_by_line(const HeadLayout& layout, const std::vector<LinedWeight>& weights,
                                         LineFn&& line_of, Reduction reduce, const char* who = Fn::name) {
  static_assert(!Fn::uses_gradient, "element_wise_numbers_by_line: the element function reads gradients");
  detail::check_line_weights(layout, weights, who);
  return detail::with_reduction(reduce, [&](auto r) {
    return detail::line_numbers_impl<Fn, decltype(r)::value>(layout, weights, line_of);
  });
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

  /// `scores` of weights read one line at a time (see `element_wise_numbers_by_line`), for element
  /// functions that read only the weight.
  template <typename LineFn>
  Eigen::VectorXd scores_by_line(const HeadLayout& layout, const std::vector<LinedWeight>& weights,
                                 LineFn&& line_of) const {
    return combine_roles(layout, element_wise_numbers_by_line<Fn>(layout, weights, line_of, reduce_),
                         weights_);
  }

 private:
  Reduction reduce_ = Reduction::mean;
  RoleWeights weights_{};
};

}  // namespace mhaprune
