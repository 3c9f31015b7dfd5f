// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/scalar.hpp"
#include "mhaprune/core/types.hpp"

/// Reading O (and its bias) out of a block as a plain double matrix, and writing refitted columns back,
/// whatever tensor and orientation hold it: O is found by its `Role::output` segments, so a
/// PyTorch `Linear` `[D, H*d]` and a GPT-2 `Conv1D` stored `[H*d, D]` look the same from here.
namespace mhaprune::detail {

/// Rounds a double to the block's element type, once for float and double (half and bfloat16 go
/// through float, as everywhere in mhaprune).
template <typename Scalar>
Scalar from_double(double v) noexcept {
  if constexpr (std::is_floating_point_v<Scalar>) {
    return static_cast<Scalar>(v);
  } else {
    return Scalar(static_cast<float>(v));
  }
}

/// The largest finite value of the element type, as a double.
template <typename Scalar>
double largest_finite() noexcept {
  return to_double(Eigen::NumTraits<Scalar>::highest());
}

/// Calls `f(view, offset, unit, width)` for every segment of `role` in the block's weights, where
/// `view` is the tensor seen with its head axis as columns (`[D, along]` for O, `[D_in, along]` for
/// Q/K/V: a writable Eigen expression, a Map or its transpose), `offset` the segment's first column in
/// it, `unit` its head (query head for O, key/value head for K/V) and `width` its channels.
template <typename Scalar, typename F>
void for_each_segment_of(const AttentionBlock<Scalar>& block, Role role, F&& f) {
  for (const BoundTensor<Scalar>& t : block.tensors()) {
    if (t.kind != TensorKind::weight) continue;
    bool has_role = false;
    for (const Segment& s : t.segments) has_role = has_role || s.role == role;
    if (!has_role) continue;
    const auto visit = [&](auto&& view) {
      Index offset = 0;
      for (const Segment& s : t.segments) {
        if (s.role == role) f(view, offset, s.unit, s.width);
        offset += s.width;
      }
    };
    const auto by_axis = [&](auto&& map) {
      if (t.head_axis == Axis::cols) {
        visit(map);
      } else {
        auto transposed = map.transpose();
        visit(transposed);
      }
    };
    if (t.ref.order() == StorageOrder::row_major) {
      Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> m(t.ref.data(),
                                                                                           t.rows, t.cols);
      by_axis(m);
    } else {
      Eigen::Map<Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>> m(t.ref.data(),
                                                                                           t.rows, t.cols);
      by_axis(m);
    }
  }
}

/// `for_each_segment_of(block, Role::output, f)`.
template <typename Scalar, typename F>
void for_each_output_segment(const AttentionBlock<Scalar>& block, F&& f) {
  for_each_segment_of(block, Role::output, std::forward<F>(f));
}

/// V transposed, `[D_in, H_kv*d]` in double: column g*d + a = channel a of current key/value head g.
/// The block must have been validated.
template <typename Scalar>
Eigen::MatrixXd read_value_weight_t(const AttentionBlock<Scalar>& block) {
  const Index d = block.layout().head_dim();
  Eigen::MatrixXd Vt;
  for_each_segment_of(block, Role::value, [&](auto& view, Index offset, Index unit, Index width) {
    if (Vt.size() == 0) Vt.setZero(view.rows(), block.layout().kv_width());
    Vt.middleCols(unit * d, width) =
        view.middleCols(offset, width).unaryExpr([](Scalar v) { return to_double(v); });
  });
  return Vt;
}

/// Writes V from its transpose `[D_in, H_kv*d]`, rounded once. Cannot fail (values checked before).
template <typename Scalar>
void write_value_weight_t(const AttentionBlock<Scalar>& block, const Eigen::MatrixXd& Vt) noexcept {
  const Index d = block.layout().head_dim();
  for_each_segment_of(block, Role::value, [&](auto& view, Index offset, Index unit, Index width) {
    view.middleCols(offset, width) =
        Vt.middleCols(unit * d, width).unaryExpr([](double v) { return from_double<Scalar>(v); });
  });
}

/// O as `[D, H*d]` in double, column h*d + a = channel a of current head h (O's input order).
/// The block must have been validated.
template <typename Scalar>
Eigen::MatrixXd read_output_weight(const AttentionBlock<Scalar>& block) {
  const HeadLayout& L = block.layout();
  const Index d = L.head_dim();
  Eigen::MatrixXd W(L.model_dim(), L.query_width());
  for_each_output_segment(block, [&](auto& view, Index offset, Index unit, Index width) {
    W.middleCols(unit * d, width) =
        view.middleCols(offset, width).unaryExpr([](Scalar v) { return to_double(v); });
  });
  return W;
}

/// The O bias tensor (a bias with no segments), or nullptr.
template <typename Scalar>
const BoundTensor<Scalar>* find_output_bias(const AttentionBlock<Scalar>& block) noexcept {
  for (const BoundTensor<Scalar>& t : block.tensors())
    if (t.kind == TensorKind::bias && !t.sliced()) return &t;
  return nullptr;
}

/// O's bias in double `[D]`, or nothing when the block has none.
template <typename Scalar>
std::optional<Eigen::VectorXd> read_output_bias(const AttentionBlock<Scalar>& block) {
  const BoundTensor<Scalar>* t = find_output_bias(block);
  if (t == nullptr) return std::nullopt;
  Eigen::VectorXd b(t->ref.size());
  for (Index i = 0; i < b.size(); ++i) b(i) = to_double(t->ref.data()[i]);
  return b;
}

/// Index of the first entry whose magnitude exceeds what the element type can hold (or that is not
/// finite), or -1.
template <typename Scalar, typename Derived>
Index first_unrepresentable(const Eigen::DenseBase<Derived>& x) {
  const double top = largest_finite<Scalar>();
  for (Index j = 0; j < x.cols(); ++j)
    for (Index i = 0; i < x.rows(); ++i) {
      const double v = x(i, j);
      if (!(std::abs(v) <= top)) return j * x.rows() + i;
    }
  return -1;
}

/// Writes the columns of the kept heads (`keep[h]` != 0) of `W` `[D, H*d]` into O, rounded once.
/// Cannot fail: the block was validated and the values checked by `first_unrepresentable`.
template <typename Scalar>
void write_output_columns(const AttentionBlock<Scalar>& block, const Eigen::MatrixXd& W,
                          const std::vector<char>& keep) noexcept {
  const Index d = block.layout().head_dim();
  for_each_output_segment(block, [&](auto& view, Index offset, Index unit, Index width) {
    if (!keep[static_cast<std::size_t>(unit)]) return;
    view.middleCols(offset, width) =
        W.middleCols(unit * d, width).unaryExpr([](double v) { return from_double<Scalar>(v); });
  });
}

/// Writes O's bias, rounded once. The block must have one (see `find_output_bias`).
template <typename Scalar>
void write_output_bias(const AttentionBlock<Scalar>& block, const Eigen::VectorXd& b) noexcept {
  const BoundTensor<Scalar>* t = find_output_bias(block);
  for (Index i = 0; i < b.size(); ++i) t->ref.data()[i] = from_double<Scalar>(b(i));
}

}  // namespace mhaprune::detail
