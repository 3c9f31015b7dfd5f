// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <Eigen/Eigenvalues>
#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>
#include <vector>

#include "mhaprune/calibration/output_targets.hpp"
#include "mhaprune/compensation/detail/checked_stats.hpp"
#include "mhaprune/compensation/detail/commit.hpp"
#include "mhaprune/compensation/method.hpp"
#include "mhaprune/compensation/targets.hpp"
#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/detail/output_access.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// Options of `refit_values`.
struct ValueRefitOptions {
  /// Relative ridge of both steps: O's is lambda · mean(diag Cov(z)), V's lambda · the mean diagonal
  /// of its normal equations, pulling V towards its current value. Finite, > 0.
  double lambda = 1e-3;
  /// Alternations of (refit every V head, refit O); >= 1.
  int sweeps = 3;
  /// Grouped-query attention only: a key/value head's refit solves a dense system of (d·D_in)²
  /// doubles; larger ones are refused.
  Index max_dense_unknowns = 8192;
};

namespace detail {

/// The refitted V (transposed) and O, in double.
struct ValueRefit {
  Eigen::MatrixXd value_t;  ///< [D_in, H_kv*d]
  CompensatedOutput output;
};

/// Alternating least squares for V and O of the current heads (see `refit_values`).
inline ValueRefit fit_values(Eigen::MatrixXd Vt, Eigen::MatrixXd W, const OutputTargets& o_targets,
                             const OutputTargets& attended, Index heads, Index kv_heads, Index d,
                             const ValueRefitOptions& options) {
  const Index D_in = Vt.rows(), r = heads / kv_heads;
  const ActivationStats& u = attended.inputs();
  const double n = static_cast<double>(attended.count());
  const Eigen::MatrixXd S = covariance(u);  // [H*D_in]²
  const Eigen::VectorXd& mu_y = attended.targets().mean();
  const Eigen::MatrixXd C = attended.cross_sum() / n - mu_y * u.mean().transpose();  // Cov(y, u) [D, H*D_in]
  const auto V_of = [&](Index h) { return Vt.middleCols((h / r) * d, d).transpose(); };  // [d, D_in]
  // Cov(z) and Cov(y, z) of the current V: z_h = V_g(h) u_h + const.
  const auto output_step = [&] {
    Eigen::MatrixXd B = Eigen::MatrixXd::Zero(heads * d, heads * D_in);
    for (Index h = 0; h < heads; ++h) B.block(h * d, h * D_in, d, D_in) = V_of(h);
    Eigen::MatrixXd Szz = B * S * B.transpose();
    Eigen::MatrixXd rhs_t = B * C.transpose();  // Cov(z, y) [H*d, D]
    damped_solve_in_place(Szz, options.lambda * mean_diagonal(Szz), rhs_t, "value refit (O step)",
                          options.lambda);
    W = rhs_t.transpose();
  };
  const auto value_step = [&](Index g) {
    // Heads of this key/value group read V_g; the others' contribution is fixed.
    Eigen::MatrixXd R = Eigen::MatrixXd::Zero(d, D_in);
    for (Index h = g * r; h < (g + 1) * r; ++h) {
      Eigen::MatrixXd cov = C.middleCols(h * D_in, D_in);  // Cov(y, u_h) [D, D_in]
      for (Index o = 0; o < heads; ++o) {
        if (o / r == g) continue;
        cov.noalias() -= W.middleCols(o * d, d) * (V_of(o) * S.block(o * D_in, h * D_in, D_in, D_in));
      }
      R.noalias() += W.middleCols(h * d, d).transpose() * cov;
    }
    const Eigen::MatrixXd V_old = V_of(g * r);
    Eigen::MatrixXd V_new;
    if (r == 1) {
      // P V Q + λ V = R + λ V_old with P = W_gᵀW_g, Q = Cov(u_g): diagonalise both.
      const Eigen::MatrixXd Wg = W.middleCols(g * d, d);
      Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> P(Wg.transpose() * Wg);
      Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> Q(S.block(g * D_in, g * D_in, D_in, D_in));
      const double lambda = options.lambda * std::max(P.eigenvalues().mean(), 1e-300) *
                            std::max(Q.eigenvalues().mean(), 1e-300);
      Eigen::MatrixXd T = P.eigenvectors().transpose() * (R + lambda * V_old) * Q.eigenvectors();
      for (Index j = 0; j < D_in; ++j)
        for (Index i = 0; i < d; ++i)
          T(i, j) /= std::max(P.eigenvalues()(i), 0.0) * std::max(Q.eigenvalues()(j), 0.0) + lambda;
      V_new = P.eigenvectors() * T * Q.eigenvectors().transpose();
    } else {
      // Σ_{h,h'} P_hh' V Q_h'h + λ V: dense in vec(V) (column-major), kron(Q_h'hᵀ, P_hh').
      Eigen::MatrixXd A = Eigen::MatrixXd::Zero(d * D_in, d * D_in);
      for (Index h = g * r; h < (g + 1) * r; ++h)
        for (Index o = g * r; o < (g + 1) * r; ++o) {
          const Eigen::MatrixXd P = W.middleCols(h * d, d).transpose() * W.middleCols(o * d, d);
          const auto Q = S.block(o * D_in, h * D_in, D_in, D_in);  // Cov(u_o, u_h)
          for (Index j = 0; j < D_in; ++j)
            for (Index i = 0; i < D_in; ++i) A.block(j * d, i * d, d, d) += Q(i, j) * P;
        }
      const double lambda = options.lambda * mean_diagonal(A);
      Eigen::MatrixXd rhs = R + lambda * V_old;
      Eigen::Map<Eigen::VectorXd> b(rhs.data(), rhs.size());
      A.diagonal().array() += lambda;
      Eigen::LDLT<Eigen::MatrixXd> ldlt(A);
      Eigen::VectorXd x = ldlt.solve(Eigen::VectorXd(b));
      V_new = Eigen::Map<Eigen::MatrixXd>(x.data(), d, D_in);
    }
    Vt.middleCols(g * d, d) = V_new.transpose();
  };

  const Eigen::MatrixXd Vt_before = Vt;
  output_step();
  for (int s = 0; s < options.sweeps; ++s) {
    for (Index g = 0; g < kv_heads; ++g) value_step(g);
    output_step();
  }
  // z's mean moved by (V_new - V_old) E[u]; the bias carries every mean: b = E[y] - O' E[z'].
  Eigen::VectorXd mu_z = o_targets.inputs().mean();
  for (Index h = 0; h < heads; ++h) {
    const Index g = h / r;
    mu_z.segment(h * d, d) += (Vt.middleCols(g * d, d) - Vt_before.middleCols(g * d, d)).transpose() *
                              u.mean().segment(h * D_in, D_in);
  }
  ValueRefit out;
  out.output.bias = o_targets.targets().mean() - W * mu_z;
  out.output.weight = std::move(W);
  out.value_t = std::move(Vt);
  return out;
}

}  // namespace detail

/// Refits V and O of the block's CURRENT heads together so that the block reproduces given targets:
/// after `remove_heads_to_targets`, the kept heads' value projections can take over part of what the
/// removed heads did, which refitting O alone cannot. Attention patterns (Q, K) stay as they are.
///
/// With u_h = A_h X the input of V as head h's attention weights mix it (`[D_in]` per token), head h's
/// output is z_h = V_g(h) u_h + b_v, and the block adds O z + b. Alternating least squares, all in
/// double, on centred moments: O ← ridge regression of y on z; then for every key/value head g, V_g ←
/// the least-squares V_g with O and the other V fixed, ridge-damped towards its current value (a
/// Sylvester equation solved by two eigendecompositions under multi-head attention; a dense
/// (d·D_in)² system when several query heads share g); `sweeps` times; O last; b ← E[y] - O E[z].
/// The calibration error never increases from one step to the next, up to the ridge.
///
/// @param o_targets O's input z (the block's current H*d channels) and the targets y, as for
///        `remove_heads_to_targets`, over the same tokens as `attended`.
/// @param attended the stacked u = [u_0 … u_{H-1}] `[tokens, H*D_in]` (current query heads in order,
///        D_in = V's input width) with the same targets y.
/// @returns `created_bias` when the block binds no O bias (for the caller to store); `removed` empty.
/// @throws compensation_error for bad options, statistics of the wrong shape, without tokens, not
///         finite or of different token counts, a grouped-query system larger than
///         `max_dense_unknowns`, a failed factorisation, or a result the element type cannot hold.
/// Strong guarantee: everything is computed and checked before the first write.
/// Memory: the covariance of u, (H·D_in)² doubles (BERT-base: 9216² ≈ 680 MB; a 7B LLaMA layer would
/// need 77 GB, so this is for models of BERT/GPT-2 size).
template <typename Scalar>
CompensationOutcome refit_values(AttentionBlock<Scalar>& block, const OutputTargets& o_targets,
                                 const OutputTargets& attended, const ValueRefitOptions& options = {}) {
  const HeadLayout& L = block.layout();
  const auto fail = [&](const auto&... what) {
    throw compensation_error(detail::message("value refit: block \"", block.name(), "\": ", what...));
  };
  if (!(options.lambda > 0.0) || !std::isfinite(options.lambda))
    fail("lambda must be finite and > 0, got ", options.lambda);
  if (options.sweeps < 1) fail("sweeps must be >= 1, got ", options.sweeps);
  detail::check_output_targets(block, o_targets, CompensationMethod::bias_lsq);
  const Eigen::MatrixXd Vt = detail::read_value_weight_t(block);
  const Index D_in = Vt.rows();
  if (attended.channels() != L.heads() * D_in || attended.outputs() != L.model_dim()) {
    fail("the attended inputs are for ", attended.channels(), " channels and ", attended.outputs(),
         " outputs; expected H*D_in = ", L.heads(), "*", D_in, " = ", L.heads() * D_in,
         " and D = ", L.model_dim());
  }
  if (attended.count() != o_targets.count()) {
    fail("the attended inputs hold ", attended.count(), " tokens and O's input ", o_targets.count(),
         "; they must be the same tokens");
  }
  if (!attended.inputs().gram().allFinite() || !attended.inputs().mean().allFinite() ||
      !attended.cross_sum().allFinite() || !attended.targets().mean().allFinite()) {
    fail("the attended-input moments are not finite");
  }
  if (L.group_size() > 1 && L.head_dim() * D_in > options.max_dense_unknowns) {
    fail("grouped-query value refit needs a dense system of ", L.head_dim() * D_in,
         " unknowns per key/value head (more than max_dense_unknowns = ", options.max_dense_unknowns, ")");
  }
  const std::optional<Eigen::VectorXd> bias = detail::read_output_bias(block);
  detail::ValueRefit fit = detail::fit_values(Vt, detail::read_output_weight(block), o_targets, attended,
                                              L.heads(), L.kv_heads(), L.head_dim(), options);
  if (detail::first_unrepresentable<Scalar>(fit.value_t) >= 0)
    fail("the refitted V does not fit the element type; nothing was changed");
  // Removing nothing: the plan is empty and commit writes O (checked there), then V.
  RemovalPlan plan = plan_removal(block, Positions(std::vector<Index>{}));
  const std::vector<char> keep(static_cast<std::size_t>(L.heads()), 1);
  CompensationOutcome outcome = detail::commit_compensated(
      block, std::move(plan), keep, std::move(fit.output), bias.has_value(), "value refit");
  detail::write_value_weight_t(block, fit.value_t);
  return outcome;
}

}  // namespace mhaprune
