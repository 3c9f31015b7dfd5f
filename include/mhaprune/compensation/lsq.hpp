// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <vector>

#include "mhaprune/compensation/detail/checked_stats.hpp"
#include "mhaprune/compensation/method.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

namespace detail {

/// Solves (A + damping·I) X = B in place of B (A symmetric, `[k, k]`; B `[k, m]`) with one Cholesky
/// factorisation of the damped A, never an explicit inverse.
/// @throws compensation_error, saying `what` and `lambda`, when the damped A is not positive definite.
inline void damped_solve_in_place(Eigen::MatrixXd A, double damping, Eigen::MatrixXd& B, const char* what,
                                  double lambda) {
  A.diagonal().array() += damping;
  Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>> llt(A);  // factorises A in place
  if (llt.info() != Eigen::Success) {
    throw compensation_error(message(what,
                                     ": G[K, K] + lambda' I is not positive definite (the kept channels are "
                                     "linearly dependent on the calibration data and lambda is ",
                                     lambda, "); use lambda > 0"));
  }
  llt.solveInPlace(B);
}

}  // namespace detail

/// Least-squares refit of O's kept columns so that the kept channels reproduce the full output:
/// minimises ‖X Oᵀ - X_K O_K'ᵀ‖² over the calibration tokens, damped by λ' = lambda · mean(diag G):
/// - `RidgeTarget::zero`:     O_K' = O · G[:, K] · (G[K, K] + λ'I)⁻¹
/// - `RidgeTarget::original`: O_K' = O_K + O_R · G[R, K] · (G[K, K] + λ'I)⁻¹
/// Both are computed as O_K + B · (G[K, K] + λ'I)⁻¹ with B = O_R G[R, K] (- λ' O_K for `zero`, since
/// O G[:, K] = O_K (G[K, K] + λ'I) + B), which needs only |R|·|K|·D flops besides the solve, not a
/// full O · G[:, K]; the solve is one Cholesky factorisation (LLT, never an explicit inverse) and a
/// triangular solve with D right-hand sides.
///
/// @param W O as `[D, C]`. @param G second moments `[C, C]` (uncentred XᵀX / n, or the covariance for
///        the centred refit). @param kept, removed channel indices, disjoint, ascending.
/// @returns O_K' `[D, |K|]`, columns in `kept` order.
/// @throws compensation_error when G[K, K] + λ'I is not positive definite (lambda 0 and a singular
///         G[K, K], e.g. duplicated channels): raise lambda.
inline Eigen::MatrixXd lsq_refit(const Eigen::MatrixXd& W, const Eigen::MatrixXd& G,
                                 const std::vector<Index>& kept, const std::vector<Index>& removed,
                                 double lambda, RidgeTarget target = RidgeTarget::zero) {
  const double damping = lambda * detail::mean_diagonal(G);
  const Eigen::MatrixXd W_K = detail::gather_columns(W, kept);
  // Bᵀ = G[K, R] O_Rᵀ: built transposed, as the solve wants it.
  Eigen::MatrixXd Bt(static_cast<Index>(kept.size()), W.rows());
  if (removed.empty()) {
    Bt.setZero();
  } else {
    Bt.noalias() = G(kept, removed) * detail::gather_columns(W, removed).transpose();
  }
  if (target == RidgeTarget::zero) Bt -= damping * W_K.transpose();
  detail::damped_solve_in_place(G(kept, kept), damping, Bt, "least-squares refit", lambda);
  return W_K + Bt.transpose();
}

}  // namespace mhaprune
