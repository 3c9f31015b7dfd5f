// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <limits>
#include <optional>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/attention_options.hpp"
#include "mhaprune/core/head_selection.hpp"
#include "mhaprune/reference/gather.hpp"

namespace mhaprune::reference {

/// Options of the oracle forward: the library's `AttentionOptions`, under the name the tests know.
using AttentionOptions = ::mhaprune::AttentionOptions;

namespace detail {

/// Validates, projects, and calls `f(h, g, A, X, V)` for every current query head h that is not
/// masked: g its key/value head, A its attention weights `[T, T]` (rows sum to 1, or less with a
/// sink), X the input in double `[T, D]`, V the projected values `[T, H_kv*d]`.
template <typename Scalar, typename Derived, typename F>
void for_each_head_attention(const Eigen::MatrixBase<Derived>& x, const AttentionBlock<Scalar>& block,
                             const AttentionOptions& options, F&& f) {
  block.validate();
  const HeadLayout& L = block.layout();
  const Index T = x.rows(), d = L.head_dim(), H = L.heads();
  if (x.cols() != L.model_dim()) {
    throw shape_error(::mhaprune::detail::message("reference::attention: block \"", block.name(),
                                                  "\": input must be [T, ", L.model_dim(), "], got ",
                                                  ::mhaprune::detail::shape_string(x.rows(), x.cols())));
  }
  if (options.mask && options.mask->heads() != H) {
    throw shape_error(::mhaprune::detail::message("reference::attention: block \"", block.name(),
                                                  "\": the mask has ", options.mask->heads(),
                                                  " entries, the block has ", H, " heads"));
  }
  Eigen::MatrixXd X(T, L.model_dim());
  for (Index i = 0; i < T; ++i)
    for (Index j = 0; j < L.model_dim(); ++j) X(i, j) = ::mhaprune::detail::to_double(x(i, j));

  auto project = [&](Role role) {
    Eigen::MatrixXd P = X * weight(block, role).transpose();
    if (auto b = bias(block, role)) P.rowwise() += b->transpose();
    return P;
  };
  const Eigen::MatrixXd Q = project(Role::query), K = project(Role::key), V = project(Role::value);
  const auto slopes = per_head_values(block, Role::alibi_slope);
  const auto sinks = per_head_values(block, Role::attention_sink);
  const double scale = options.scale.value_or(1.0 / std::sqrt(static_cast<double>(d)));

  for (Index h = 0; h < H; ++h) {
    if (options.mask && !options.mask->keeps(h)) continue;
    const Index g = L.kv_head_of(h);
    Eigen::MatrixXd S = Q.middleCols(h * d, d) * K.middleCols(g * d, d).transpose() * scale;
    for (Index i = 0; i < T; ++i) {
      double top = -std::numeric_limits<double>::infinity();
      for (Index j = 0; j < T; ++j) {
        if (options.causal && j > i) {
          S(i, j) = -std::numeric_limits<double>::infinity();
          continue;
        }
        if (slopes) S(i, j) -= (*slopes)(h)*std::abs(static_cast<double>(i - j));
        top = std::max(top, S(i, j));
      }
      if (sinks) top = std::max(top, (*sinks)(h));
      double sum = sinks ? std::exp((*sinks)(h)-top) : 0.0;
      for (Index j = 0; j < T; ++j) {
        S(i, j) = std::exp(S(i, j) - top);
        sum += S(i, j);
      }
      S.row(i) /= sum;
    }
    f(h, g, S, X, V);
  }
}

}  // namespace detail

/// O's input for one sequence: the concatenated head outputs `[T, H*d]` (zero columns for masked
/// heads). `x` is `[T, D]`, any Eigen expression of any supported scalar; the arithmetic is in double.
///
/// Scaled dot-product attention per query head h with key/value head `h / group_size`; ALiBi slopes
/// (`Role::alibi_slope`, bias `-slope*|i-j|`) and attention sinks (`Role::attention_sink`, one extra
/// logit in the softmax denominator) when the block has them. Throws what `AttentionBlock::validate`
/// throws, and `shape_error` when `x` is not `[T, D]` or the mask has the wrong length.
template <typename Scalar, typename Derived>
Eigen::MatrixXd head_outputs(const Eigen::MatrixBase<Derived>& x, const AttentionBlock<Scalar>& block,
                             const AttentionOptions& options = {}) {
  const HeadLayout& L = block.layout();
  const Index d = L.head_dim();
  Eigen::MatrixXd out = Eigen::MatrixXd::Zero(x.rows(), L.heads() * d);
  detail::for_each_head_attention(
      x, block, options,
      [&](Index h, Index g, const Eigen::MatrixXd& A, const Eigen::MatrixXd&, const Eigen::MatrixXd& V) {
        out.middleCols(h * d, d) = A * V.middleCols(g * d, d);
      });
  return out;
}

/// The input of V as each head's attention weights mix it, `[T, H*D]`: columns h*D..(h+1)*D are
/// A_h x, so that head h's output is (A_h x) V_hᵀ plus its value bias times the row sums of A_h (1
/// without sinks). What `refit_values` needs (zero columns for masked heads). Options and throws as
/// `head_outputs`.
template <typename Scalar, typename Derived>
Eigen::MatrixXd attended_inputs(const Eigen::MatrixBase<Derived>& x, const AttentionBlock<Scalar>& block,
                                const AttentionOptions& options = {}) {
  const HeadLayout& L = block.layout();
  const Index D = L.model_dim();
  Eigen::MatrixXd out = Eigen::MatrixXd::Zero(x.rows(), L.heads() * D);
  detail::for_each_head_attention(x, block, options,
                                  [&](Index h, Index, const Eigen::MatrixXd& A, const Eigen::MatrixXd& X,
                                      const Eigen::MatrixXd&) { out.middleCols(h * D, D) = A * X; });
  return out;
}

/// The oracle: the block's output `[T, D]` for one sequence `x` `[T, D]`, with the options of
/// `head_outputs`. Slow and obvious on purpose; every exactness claim of mhaprune is checked against it.
template <typename Scalar, typename Derived>
Eigen::MatrixXd attention(const Eigen::MatrixBase<Derived>& x, const AttentionBlock<Scalar>& block,
                          const AttentionOptions& options = {}) {
  // head_outputs validates the block; it must run before weight() reads O (operands of * are unsequenced).
  const Eigen::MatrixXd heads = head_outputs(x, block, options);
  Eigen::MatrixXd Y = heads * weight(block, Role::output).transpose();
  if (auto b = bias(block, Role::output)) Y.rowwise() += b->transpose();
  return Y;
}

}  // namespace mhaprune::reference
