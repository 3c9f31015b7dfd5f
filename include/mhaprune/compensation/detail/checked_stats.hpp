// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <vector>

#include "mhaprune/calibration/activation_stats.hpp"
#include "mhaprune/compensation/method.hpp"
#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/linalg/damped.hpp"

namespace mhaprune::detail {

/// Checks that `stats` can drive `method` on `block`: present, with tokens, exactly the block's
/// current H*d channels, finite mean, and a finite Gram matrix when the method needs one.
/// @throws compensation_error naming the block, the method and the problem.
template <typename Scalar>
const ActivationStats& check_compensation_stats(const AttentionBlock<Scalar>& block,
                                                const ActivationStats* stats, CompensationMethod method) {
  const auto fail = [&](const auto&... what) {
    throw compensation_error(
        message("compensation \"", to_string(method), "\": block \"", block.name(), "\": ", what...));
  };
  const Index C = block.layout().query_width();
  if (stats == nullptr) fail("no statistics of O's input given (expected ", C, " channels)");
  if (stats->count() <= 0) fail("the statistics of O's input hold no tokens (count is 0)");
  if (stats->channels() != C) {
    fail("the statistics of O's input have ", stats->channels(), " channels; expected H*d = ", C,
         " (the block's current heads: H=", block.layout().heads(), ", d=", block.layout().head_dim(), ")");
  }
  if (!stats->has_moments()) {
    fail(
        "needs the mean of O's input, but the statistics hold only sums of squares (a llama-imatrix file "
        "without in_sum); no compensation can use them");
  }
  if (!stats->mean().allFinite() || !stats->m2().allFinite())
    fail("the mean or M2 of O's input is not finite");
  if (needs_gram(method)) {
    if (!stats->has_gram()) {
      fail(
          "needs the Gram matrix of O's input, but the statistics do not track it "
          "(collect them with GramTracking::on, or store P.input.gram in the statistics file; a "
          "llama-imatrix file never holds it)");
    }
    if (!stats->gram().allFinite()) fail("the Gram matrix of O's input is not finite");
  }
  return *stats;
}

/// The uncentred second moments G = XᵀX / n, `[C, C]`.
inline Eigen::MatrixXd second_moments(const ActivationStats& stats) {
  return stats.gram() / static_cast<double>(stats.count());
}

/// The (population) covariance Σ = XᵀX / n - μμᵀ, `[C, C]`, with its diagonal taken from M2 / n, which
/// the accumulator computes more accurately than the difference.
inline Eigen::MatrixXd covariance(const ActivationStats& stats) {
  const double n = static_cast<double>(stats.count());
  Eigen::MatrixXd S = stats.gram() / n;
  S.noalias() -= stats.mean() * stats.mean().transpose();
  S.diagonal() = stats.m2() / n;
  return S;
}

/// The columns `idx` of `W`, in that order.
inline Eigen::MatrixXd gather_columns(const Eigen::MatrixXd& W, const std::vector<Index>& idx) {
  Eigen::MatrixXd out(W.rows(), static_cast<Index>(idx.size()));
  for (std::size_t j = 0; j < idx.size(); ++j) out.col(static_cast<Index>(j)) = W.col(idx[j]);
  return out;
}
}  // namespace mhaprune::detail
