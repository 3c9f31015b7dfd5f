// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <vector>

#include "mhaprune/calibration/activation_stats.hpp"
#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/detail/output_access.hpp"
#include "mhaprune/criteria/evidence.hpp"
#include "mhaprune/criteria/output_channels.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/linalg/obs_cost.hpp"

namespace mhaprune {

/// Structured OBS cost of each head (ZipLM, Kurtic et al. 2023): the increase of the layer-wise
/// output error ‖X Oᵀ - X O'ᵀ‖² / n (per calibration token) when the head is removed and the other
/// heads' O columns are updated optimally,
///   ρ_h = trace(O[:, S] · [(H⁻¹)_SS]⁻¹ · O[:, S]ᵀ),  S = the head's d channels,
/// with H = G + λ'I the damped second moments of O's input (G = XᵀX / n, λ' = lambda · mean(diag G)).
/// Lower = cheaper to remove, like every criterion's score. See mhaprune/compensation/obs.hpp for the
/// matching compensation (`CompensationMethod::obs`), which removes heads in this order and applies
/// the update.
///
/// Evidence: `with_activations(stats)` with the Gram matrix (`GramTracking::on`), H*d channels (or
/// original_heads*d, collected before removals: the current heads' channels are used), >= 1 token.
/// Stateless. @throws evidence_error (no statistics, or no Gram matrix), shape_error (channel
/// count), calibration_error (no tokens), compensation_error (lambda 0 on a singular Gram matrix),
/// and what `AttentionBlock::validate` throws.
/// Cost: one C×C Cholesky and inverse (C = H*d), and D·d² per head.
class Obs {
 public:
  /// @param lambda relative damping, finite and >= 0. @throws config_error otherwise.
  explicit Obs(double lambda = 1e-3) : lambda_(lambda) {
    if (!std::isfinite(lambda) || lambda < 0) {
      throw config_error(detail::message("obs: lambda must be finite and >= 0, got ", lambda));
    }
  }

  static constexpr const char* name() noexcept { return "obs"; }
  double lambda() const noexcept { return lambda_; }

  template <typename Scalar>
  Eigen::VectorXd scores(const AttentionBlock<Scalar>& block, const Evidence& ev) const {
    block.validate();
    const ActivationStats& stats = detail::require_activations(ev, block, name(), 1);
    if (!stats.has_gram()) {
      throw evidence_error(detail::message(name(), ": block \"", block.name(),
                                           "\": the activation statistics do not track the Gram matrix "
                                           "(collect them with GramTracking::on; a llama-imatrix file never "
                                           "holds it)"));
    }
    const std::vector<Index> channels = detail::activation_channels(block, stats);
    const Eigen::MatrixXd G = stats.gram()(channels, channels) / static_cast<double>(stats.count());
    if (!G.allFinite()) {
      throw evidence_error(detail::message(name(), ": block \"", block.name(),
                                           "\": the Gram matrix of O's input is not finite"));
    }
    return obs_head_costs(detail::read_output_weight(block), damped_inverse(G, lambda_),
                          block.layout().head_dim());
  }

 private:
  double lambda_;
};

}  // namespace mhaprune
