// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <vector>

#include "mhaprune/calibration/activation_stats.hpp"
#include "mhaprune/compensation/detail/checked_stats.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// The Gram matrix of the per-head outputs: A[h, k] = Σ_tokens ⟨Y_h, Y_k⟩ / n with Y_h = X_h O_hᵀ the
/// `[tokens, D]` contribution of head h to the block's output, computed from the statistics alone:
/// A[h, k] = trace(O_h G_hk O_kᵀ) = Σ_ab (OᵀO)_{h*d+a, k*d+b} · G_{h*d+a, k*d+b}.
///
/// @param W O as `[D, H*d]`. @param G second moments of O's input XᵀX / n, `[H*d, H*d]`.
/// @param d head dimension. @returns A `[H, H]`, symmetric.
/// Cost: one rank-D update OᵀO (C²·D flops) and one pass over G.
inline Eigen::MatrixXd head_output_gram(const Eigen::MatrixXd& W, const Eigen::MatrixXd& G, Index d) {
  const Index C = W.cols(), H = C / d;
  Eigen::MatrixXd P = Eigen::MatrixXd::Zero(C, C);
  P.selfadjointView<Eigen::Lower>().rankUpdate(W.transpose());
  Eigen::MatrixXd A(H, H);
  for (Index k = 0; k < H; ++k) {
    for (Index h = k; h < H; ++h) {
      double s = 0;
      for (Index b = 0; b < d; ++b) {
        for (Index a = 0; a < d; ++a) {
          const Index i = h * d + a, j = k * d + b;
          s += (i >= j ? P(i, j) : P(j, i)) * G(i, j);  // P holds only its lower triangle
        }
      }
      A(h, k) = A(k, h) = s;
    }
  }
  return A;
}

/// Kwon et al.'s mask tuning in closed form: the multipliers s of the kept heads minimising
/// ‖Σ_all Y_h - Σ_kept s_h Y_h‖² + ρ‖s - 1‖², i.e. (A[K, K] + ρI) s = A[K, :]·1 + ρ·1, with
/// ρ = ridge · mean(diag A[K, K]) (ridge towards 1: heads whose outputs the data cannot tell apart
/// keep their weight).
///
/// @param A the head-output Gram matrix (`head_output_gram`). @param kept kept head positions.
/// @param ridge relative ridge, >= 0. @returns one multiplier per kept head, in `kept` order.
/// @throws compensation_error when the system is singular (ridge 0 and a head with no output).
inline Eigen::VectorXd kept_head_scales(const Eigen::MatrixXd& A, const std::vector<Index>& kept,
                                        double ridge) {
  const Index k = static_cast<Index>(kept.size());
  Eigen::MatrixXd M(k, k);
  Eigen::VectorXd rhs(k);
  for (Index a = 0; a < k; ++a) {
    rhs(a) = A.row(kept[static_cast<std::size_t>(a)]).sum();
    for (Index b = 0; b < k; ++b)
      M(a, b) = A(kept[static_cast<std::size_t>(a)], kept[static_cast<std::size_t>(b)]);
  }
  const double rho = ridge * detail::mean_diagonal(M);
  M.diagonal().array() += rho;
  rhs.array() += rho;
  Eigen::LLT<Eigen::MatrixXd> llt(M);
  if (llt.info() != Eigen::Success) {
    throw compensation_error(detail::message(
        "compensation \"scale\": the least-squares system of the kept heads is singular (a kept head "
        "contributes nothing on the calibration data); use a scale_ridge > 0, got ",
        ridge));
  }
  return llt.solve(rhs);
}

}  // namespace mhaprune
