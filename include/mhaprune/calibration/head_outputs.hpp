// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <optional>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/attention_options.hpp"
#include "mhaprune/core/scalar.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

namespace detail {

/// A bound tensor's logical contents in double, read through an Eigen Map of its storage order.
template <typename Scalar>
Eigen::MatrixXd widened_contents(const TensorRef<Scalar>& ref) {
  const auto widen = [](const Scalar& v) { return to_double(v); };
  if (ref.order() == StorageOrder::row_major) {
    using Stored = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
    return Eigen::Map<const Stored>(ref.data(), ref.rows(), ref.cols()).unaryExpr(widen);
  }
  using Stored = Eigen::Matrix<Scalar, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
  return Eigen::Map<const Stored>(ref.data(), ref.rows(), ref.cols()).unaryExpr(widen);
}

/// Q `[T, H*d]`, K and V `[T, H_kv*d]` of one sequence, each head's d columns at its current position.
struct QkvProjections {
  Eigen::MatrixXd query, key, value;

  /// Where a segment of `role` goes; nullptr for roles that are not projected (O, extras).
  Eigen::MatrixXd* of(Role role) noexcept {
    switch (role) {
      case Role::query:
        return &query;
      case Role::key:
        return &key;
      case Role::value:
        return &value;
      default:
        return nullptr;
    }
  }
};

/// Projects `X` `[T, D]` through every Q/K/V weight with one product per bound tensor (a fused QKV
/// tensor is one product for all three) and routes the product's columns by the tensor's segments;
/// then adds the biases the same way. The block must be validated: each head is covered exactly once.
template <typename Scalar>
QkvProjections project_qkv(const Eigen::MatrixXd& X, const AttentionBlock<Scalar>& block) {
  const HeadLayout& L = block.layout();
  const Index T = X.rows(), d = L.head_dim();
  QkvProjections p{Eigen::MatrixXd::Zero(T, L.query_width()), Eigen::MatrixXd::Zero(T, L.kv_width()),
                   Eigen::MatrixXd::Zero(T, L.kv_width())};
  const auto feeds_qkv = [&p](const BoundTensor<Scalar>& t) {
    return std::any_of(t.segments.begin(), t.segments.end(),
                       [&p](const Segment& s) { return p.of(s.role) != nullptr; });
  };
  for (const auto& t : block.tensors()) {
    if (t.kind != TensorKind::weight || !feeds_qkv(t)) continue;
    const Eigen::MatrixXd W = widened_contents(t.ref);
    // Heads along the rows: Linear's [out, in], so X Wᵀ; along the columns: Conv1D's [in, out], X W.
    const Eigen::MatrixXd product =
        t.head_axis == Axis::rows ? Eigen::MatrixXd(X * W.transpose()) : Eigen::MatrixXd(X * W);
    Index offset = 0;
    for (const Segment& s : t.segments) {
      if (Eigen::MatrixXd* to = p.of(s.role))
        to->middleCols(s.unit * d, s.width) = product.middleCols(offset, s.width);
      offset += s.width;
    }
  }
  // Biases go on after every product is in place, whichever order the tensors were bound in.
  for (const auto& t : block.tensors()) {
    if (t.kind != TensorKind::bias || !feeds_qkv(t)) continue;
    const Eigen::VectorXd b = widened_contents(t.ref).reshaped();  // a vector either way round
    Index offset = 0;
    for (const Segment& s : t.segments) {
      if (Eigen::MatrixXd* to = p.of(s.role))
        to->middleCols(s.unit * d, s.width).rowwise() += b.segment(offset, s.width).transpose();
      offset += s.width;
    }
  }
  return p;
}

/// One value per current query head from the first extra bound with `role` (ALiBi slopes, sinks):
/// each head's slice starts with its value. Empty when the block has no such extra.
template <typename Scalar>
std::optional<Eigen::VectorXd> per_query_head_value(const AttentionBlock<Scalar>& block, Role role) {
  for (const auto& t : block.tensors()) {
    if (t.kind != TensorKind::extra || t.segments.empty() || t.segments.front().role != role) continue;
    // Slopes and sinks are vectors, so the k-th element along the head axis is the k-th in memory.
    Eigen::VectorXd values = Eigen::VectorXd::Zero(block.layout().heads());
    Index offset = 0;
    for (const Segment& s : t.segments) {
      values(s.unit) = to_double(t.ref.data()[offset]);
      offset += s.width;
    }
    return values;
  }
  return std::nullopt;
}

}  // namespace detail

/// O's input for one sequence, as calibration computes it: the concatenated head outputs `[T, H*d]`,
/// zero columns for masked heads, arithmetic in double. Calibration's own forward, written apart from
/// `reference::head_outputs` (the tests' oracle, which it must agree with up to rounding).
///
/// Per current query head h, reading key/value head `h / group_size`: logits `q_i·k_j * scale`, minus
/// `slope_h * |i - j|` when the block has ALiBi slopes (`Role::alibi_slope`), over the keys j <= i
/// when causal; a softmax shifted by its largest logit, with one extra logit in the denominator when
/// the block has attention sinks (`Role::attention_sink`); the output is the softmax-weighted sum of V.
///
/// @tparam Scalar the block's element type.
/// @tparam Derived any Eigen dense expression of `float`, `double`, `Eigen::half` or `Eigen::bfloat16`.
/// @param x the sequence `[T, D]`, T >= 0 tokens of model width D; evaluated once.
/// @param block the attention block; Q, K, V must be bound (O too: the block must validate).
/// @param options causal mask, heads to mask (one entry per current head), logit scale (1/sqrt(d) if unset).
/// @returns `[T, H*d]`, head h in columns `h*d .. h*d+d-1`.
/// @throws what `AttentionBlock::validate` throws (a projection missing or bound twice, a tensor changed
///         behind the block's back), and `shape_error` naming the block when `x` is not `[T, D]` or
///         the mask's length is not H.
template <typename Scalar, typename Derived>
Eigen::MatrixXd attention_head_outputs(const Eigen::MatrixBase<Derived>& x,
                                       const AttentionBlock<Scalar>& block,
                                       const AttentionOptions& options = {}) {
  block.validate();
  const HeadLayout& L = block.layout();
  if (x.cols() != L.model_dim()) {
    throw shape_error(detail::message("attention_head_outputs(): block \"", block.name(),
                                      "\": expected input [T, ", L.model_dim(), "], got ",
                                      detail::shape_string(x.rows(), x.cols())));
  }
  if (options.mask && options.mask->heads() != L.heads()) {
    throw shape_error(detail::message("attention_head_outputs(): block \"", block.name(), "\": the mask has ",
                                      options.mask->heads(), " entries, the block has ", L.heads(),
                                      " heads"));
  }
  using InputScalar = typename Derived::Scalar;
  const Eigen::MatrixXd X = x.unaryExpr([](const InputScalar& v) { return detail::to_double(v); });
  const Index T = X.rows(), d = L.head_dim();
  const detail::QkvProjections p = detail::project_qkv(X, block);
  const std::optional<Eigen::VectorXd> slopes = detail::per_query_head_value(block, Role::alibi_slope);
  const std::optional<Eigen::VectorXd> sinks = detail::per_query_head_value(block, Role::attention_sink);
  const double scale = options.scale ? *options.scale : 1.0 / std::sqrt(static_cast<double>(d));

  Eigen::MatrixXd out = Eigen::MatrixXd::Zero(T, L.query_width());
  Eigen::VectorXd logits(T);
  for (Index h = 0; h < L.heads(); ++h) {
    if (options.mask && !options.mask->keeps(h)) continue;
    const Index g = L.kv_head_of(h);
    const Eigen::MatrixXd scores =
        (p.query.middleCols(h * d, d) * scale) * p.key.middleCols(g * d, d).transpose();
    for (Index i = 0; i < T; ++i) {
      const Index visible = options.causal ? i + 1 : T;  // never 0: a token always sees itself
      logits.head(visible) = scores.row(i).head(visible).transpose();
      if (slopes) {
        for (Index j = 0; j < visible; ++j) logits(j) -= (*slopes)(h)*std::abs(static_cast<double>(i - j));
      }
      // Shifting by the largest logit keeps exp() from overflowing; the sink takes part in the max.
      double shift = logits.head(visible).maxCoeff();
      if (sinks) shift = std::max(shift, (*sinks)(h));
      const Eigen::VectorXd weights = (logits.head(visible).array() - shift).exp().matrix();
      const double denominator = weights.sum() + (sinks ? std::exp((*sinks)(h)-shift) : 0.0);
      out.block(i, h * d, 1, d) = (weights.transpose() * p.value.block(0, g * d, visible, d)) / denominator;
    }
  }
  return out;
}

}  // namespace mhaprune
