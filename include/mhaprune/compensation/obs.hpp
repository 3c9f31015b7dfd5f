// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Cholesky>
#include <Eigen/Core>
#include <limits>
#include <vector>

#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/linalg/obs_cost.hpp"

/// The greedy OBS removal of whole heads; the cost it is greedy on, and why the result is the joint
/// optimum, are in linalg/obs_cost.hpp.
namespace mhaprune {

/// Removes `heads` (positions, d channels each) from O `[D, H*d]` greedily: at each step the head of
/// `heads` with the least ρ (ties: lowest position) goes, and O and H⁻¹ are updated. The removed
/// columns and H⁻¹'s rows and columns of removed channels end as zeros.
/// @returns the positions in the order they were removed.
/// @throws compensation_error as `obs_cost`; `W` and `Hinv` are then partly updated (pass copies).
inline std::vector<Index> obs_remove_heads(Eigen::MatrixXd& W, Eigen::MatrixXd& Hinv, Index d,
                                           std::vector<Index> heads) {
  std::vector<Index> order;
  order.reserve(heads.size());
  while (!heads.empty()) {
    std::size_t best = 0;
    double best_cost = std::numeric_limits<double>::infinity();
    for (std::size_t i = 0; i < heads.size(); ++i) {
      const double c = obs_cost(W, Hinv, heads[i] * d, d);
      if (c < best_cost || (c == best_cost && heads[i] < heads[best])) best = i, best_cost = c;
    }
    const Index first = heads[best] * d;
    heads.erase(heads.begin() + static_cast<std::ptrdiff_t>(best));
    order.push_back(first / d);

    const Eigen::LLT<Eigen::MatrixXd> llt = detail::block_factor(Hinv, first, d);
    Eigen::MatrixXd T = Hinv.middleRows(first, d);  // [(H⁻¹)_SS]⁻¹ (H⁻¹)_{S,:}, [d, C]
    llt.solveInPlace(T);
    const Eigen::MatrixXd W_S = W.middleCols(first, d);
    const Eigen::MatrixXd Hinv_S = Hinv.middleCols(first, d);
    W.noalias() -= W_S * T;
    Hinv.noalias() -= Hinv_S * T;
    W.middleCols(first, d).setZero();
    Hinv.middleCols(first, d).setZero();
    Hinv.middleRows(first, d).setZero();
  }
  return order;
}

}  // namespace mhaprune
