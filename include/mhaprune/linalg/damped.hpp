// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>

#include "mhaprune/error.hpp"

/// Damping of second-moment matrices G = XᵀX / n, relative to their scale, shared by the criteria
/// that read G (obs) and the compensations that solve with it.
namespace mhaprune {

namespace detail {
/// The damping scale of a second-moment matrix: the mean of its diagonal, or 1 when that is 0
/// (all-zero activations), so that a relative damping still damps.
inline double mean_diagonal(const Eigen::MatrixXd& G) {
  const double m = G.rows() > 0 ? G.diagonal().mean() : 0.0;
  return m > 0 ? m : 1.0;
}
}  // namespace detail

/// H⁻¹ = (G + λ'I)⁻¹ with λ' = lambda · mean(diag G), exactly symmetric.
/// @throws compensation_error when G + λ'I is not positive definite (lambda 0 on a singular G).
inline Eigen::MatrixXd damped_inverse(const Eigen::MatrixXd& G, double lambda) {
  Eigen::MatrixXd H = G;
  H.diagonal().array() += lambda * detail::mean_diagonal(G);
  Eigen::LLT<Eigen::Ref<Eigen::MatrixXd>> llt(H);
  if (llt.info() != Eigen::Success) {
    throw compensation_error(detail::message(
        "obs: G + lambda' I is not positive definite (linearly dependent channels and lambda ", lambda,
        "); use lambda > 0"));
  }
  Eigen::MatrixXd inv = Eigen::MatrixXd::Identity(G.rows(), G.cols());
  llt.solveInPlace(inv);
  return (inv + inv.transpose()) * 0.5;
}

}  // namespace mhaprune
