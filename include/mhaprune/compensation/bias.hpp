// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <vector>

#include "mhaprune/core/types.hpp"

namespace mhaprune {

/// FLAP's bias compensation (An et al. 2024): the removed channels' average contribution to O's
/// output, O[:, R] · mean(X_R), to add to O's bias. After it, the pruned block's mean output over the
/// calibration tokens equals the unpruned block's exactly.
///
/// @param W O as `[D, C]` (column j = channel j of O's input).
/// @param mean the per-channel mean of O's input, `[C]`.
/// @param removed the removed channels (indices into `[0, C)`).
/// @returns the shift `[D]`.
inline Eigen::VectorXd bias_shift(const Eigen::MatrixXd& W, const Eigen::VectorXd& mean,
                                  const std::vector<Index>& removed) {
  Eigen::VectorXd shift = Eigen::VectorXd::Zero(W.rows());
  for (Index j : removed) shift += W.col(j) * mean(j);
  return shift;
}

}  // namespace mhaprune
