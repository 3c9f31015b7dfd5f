// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cmath>

#include "mhaprune/selection/block_scores.hpp"

namespace mhaprune {

/// A block's scores after `n`. `l2` leaves an all-zero block as it is; `standardize` (sample standard
/// deviation, n - 1, as torch.std) makes a block of equal scores all zeros, so it neither wins nor
/// loses by accident.
inline Eigen::VectorXd normalized(const Eigen::VectorXd& scores, Normalization n) {
  switch (n) {
    case Normalization::none:
      return scores;
    case Normalization::l2: {
      const double norm = scores.norm();
      return norm > 0.0 ? Eigen::VectorXd(scores / norm) : scores;
    }
    case Normalization::standardize: {
      const double mean = scores.mean();
      const Eigen::Index n_heads = scores.size();
      if (n_heads < 2) return Eigen::VectorXd::Zero(n_heads);
      const double sd = std::sqrt((scores.array() - mean).square().sum() / static_cast<double>(n_heads - 1));
      if (!(sd > 0.0)) return Eigen::VectorXd::Zero(n_heads);
      return (scores.array() - mean) / sd;
    }
  }
  return scores;
}

}  // namespace mhaprune
