// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/linalg/damped.hpp"

/// Structured optimal brain surgeon over whole heads (ZipLM, Kurtic et al. 2023; SlimGPT), on the
/// layer-wise objective ‖X Oᵀ - X O'ᵀ‖² / n = trace((O' - O) G (O' - O)ᵀ) with the damped Hessian
/// H = G + λ'I (G = XᵀX / n, λ' = lambda · mean(diag G)).
///
/// Removing head h (channels S = h*d .. h*d+d) and updating the other columns optimally costs
///   ρ_h = trace(O[:, S] · [(H⁻¹)_SS]⁻¹ · O[:, S]ᵀ)   (output energy per token),
/// and the update is O ← O - O[:, S] [(H⁻¹)_SS]⁻¹ (H⁻¹)_{S,:}, H⁻¹ ← H⁻¹ - (H⁻¹)_{:,S} [(H⁻¹)_SS]⁻¹
/// (H⁻¹)_{S,:}. Removing several heads one after another this way gives exactly the joint optimum O_K' = O_K
/// + O_R G[R, K] (G[K, K] + λ'I)⁻¹ (the Schur complement identity), i.e. `lsq_refit` with
/// `RidgeTarget::original`; the greedy order only decides which head goes first when choosing.
namespace mhaprune {

namespace detail {
/// Cholesky factor of (H⁻¹)_SS; throws compensation_error when it is not positive definite, which
/// only rounding on a nearly singular H can cause.
inline Eigen::LLT<Eigen::MatrixXd> block_factor(const Eigen::MatrixXd& Hinv, Index first, Index width) {
  Eigen::LLT<Eigen::MatrixXd> llt(Hinv.block(first, first, width, width));
  if (llt.info() != Eigen::Success) {
    throw compensation_error(message("obs: the block of H^-1 of channels [", first, ", ", first + width,
                                     ") is not positive definite (G is too close to singular for this "
                                     "lambda); use a larger lambda"));
  }
  return llt;
}
}  // namespace detail

/// ρ for removing channels `[first, first + width)` of O `[D, C]` given H⁻¹ `[C, C]`.
/// @throws compensation_error as `detail::block_factor`.
inline double obs_cost(const Eigen::MatrixXd& W, const Eigen::MatrixXd& Hinv, Index first, Index width) {
  const Eigen::LLT<Eigen::MatrixXd> llt = detail::block_factor(Hinv, first, width);
  // trace(W_S M⁻¹ W_Sᵀ) = ‖L⁻¹ W_Sᵀ‖² with M = L Lᵀ.
  Eigen::MatrixXd Z = W.middleCols(first, width).transpose();
  llt.matrixL().solveInPlace(Z);
  return Z.squaredNorm();
}

/// ρ of every head (d channels each) of O `[D, H*d]`, with H⁻¹ from `damped_inverse`.
inline Eigen::VectorXd obs_head_costs(const Eigen::MatrixXd& W, const Eigen::MatrixXd& Hinv, Index d) {
  const Index H = W.cols() / d;
  Eigen::VectorXd rho(H);
  for (Index h = 0; h < H; ++h) rho(h) = obs_cost(W, Hinv, h * d, d);
  return rho;
}

}  // namespace mhaprune
