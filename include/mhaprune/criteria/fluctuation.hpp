// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/criteria/evidence.hpp"
#include "mhaprune/criteria/output_channels.hpp"

namespace mhaprune {

/// FLAP's weighted input feature variance (An et al. 2024, "WIFV"): channel j of O's input scores
/// s_j = Var(X_j) · ‖O[:, j]‖₂², with X the O input over the calibration tokens and Var the SAMPLE
/// variance (n - 1); a head's score is the MEAN of its d channels' scores. A head whose output barely
/// varies can be replaced by a constant (FLAP's bias compensation), so it scores low.
///
/// FLAP standardises each layer's scores before a global ranking; that is a pruner policy, not done here.
///
/// Evidence: `with_activations(stats)` with H*d (or original_heads*d) channels and at least two tokens.
/// Stateless. @throws evidence_error (no statistics, or statistics without moments: sums of squares
/// only, as from a llama-imatrix file without in_sum), shape_error (channel count), calibration_error
/// (fewer than two tokens), and what `AttentionBlock::validate` throws.
class Fluctuation {
 public:
  static constexpr const char* name() noexcept { return "fluctuation"; }

  template <typename Scalar>
  Eigen::VectorXd scores(const AttentionBlock<Scalar>& block, const Evidence& ev) const {
    block.validate();
    const ActivationStats& stats = detail::require_activations(ev, block, name(), 2);
    if (!stats.has_moments()) {
      throw evidence_error(detail::message(
          name(), ": block \"", block.name(),
          "\": needs the variance of O's input, but the activation statistics hold only sums of squares "
          "(a llama-imatrix file stores the mean only when written with in_sum); use wanda_sp, or "
          "statistics collected by mhaprune"));
    }
    const auto channels = detail::activation_channels(block, stats);
    const OutputChannelNorms o = output_channel_norms(block);
    const Eigen::VectorXd var = stats.variance();
    const HeadLayout& L = block.layout();
    const Index d = L.head_dim();
    Eigen::VectorXd s = Eigen::VectorXd::Zero(L.heads());
    for (Index j = 0; j < L.query_width(); ++j)
      s(j / d) += var(channels[static_cast<std::size_t>(j)]) * o.squared_norm(j);
    return s / static_cast<double>(d);
  }
};

}  // namespace mhaprune
