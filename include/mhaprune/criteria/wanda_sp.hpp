// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/criteria/evidence.hpp"
#include "mhaprune/criteria/output_channels.hpp"

namespace mhaprune {

/// Structured Wanda (Wanda-sp, as in FLAP's code): channel j of O's input scores
/// s_j = mean_i |O[i, j]| · ‖X_j‖₂, with X the O input over the calibration tokens; a head's score is
/// the SUM of its d channels' scores.
///
/// Evidence: `with_activations(stats)`, statistics of O's input with H*d channels (or original_heads*d,
/// collected before removals; see `detail::activation_channels`) and at least one token.
/// Stateless. @throws evidence_error (no statistics), shape_error (channel count), calibration_error
/// (no tokens), and what `AttentionBlock::validate` throws.
class WandaSp {
 public:
  static constexpr const char* name() noexcept { return "wanda_sp"; }

  template <typename Scalar>
  Eigen::VectorXd scores(const AttentionBlock<Scalar>& block, const Evidence& ev) const {
    block.validate();
    const ActivationStats& stats = detail::require_activations(ev, block, name(), 1);
    const auto channels = detail::activation_channels(block, stats);
    const OutputChannelNorms o = output_channel_norms(block);
    const Eigen::VectorXd x = stats.l2_norms();
    const HeadLayout& L = block.layout();
    const Index d = L.head_dim();
    Eigen::VectorXd s = Eigen::VectorXd::Zero(L.heads());
    for (Index j = 0; j < L.query_width(); ++j)
      s(j / d) += o.abs_mean(j) * x(channels[static_cast<std::size_t>(j)]);
    return s;
  }
};

}  // namespace mhaprune
