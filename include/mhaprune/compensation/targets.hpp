// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <optional>
#include <utility>
#include <vector>

#include "mhaprune/calibration/output_targets.hpp"
#include "mhaprune/compensation/detail/checked_stats.hpp"
#include "mhaprune/compensation/detail/commit.hpp"
#include "mhaprune/compensation/lsq.hpp"
#include "mhaprune/compensation/method.hpp"
#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/detail/output_access.hpp"
#include "mhaprune/core/head_selection.hpp"
#include "mhaprune/core/remove_heads.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

namespace detail {

/// Checks that `targets` fit `block` and `method` (see `remove_heads_to_targets`).
template <typename Scalar>
void check_output_targets(const AttentionBlock<Scalar>& block, const OutputTargets& targets,
                          CompensationMethod method) {
  const auto fail = [&](const auto&... what) {
    throw compensation_error(message("compensation \"", to_string(method), "\" to targets: block \"",
                                     block.name(), "\": ", what...));
  };
  if (method == CompensationMethod::scale || method == CompensationMethod::obs) {
    fail(
        "not available with output targets (it fits the block to its own output); use bias, lsq or "
        "bias+lsq");
  }
  const HeadLayout& L = block.layout();
  if (targets.channels() != L.query_width() || targets.outputs() != L.model_dim()) {
    fail("the targets are for C=", targets.channels(), " input channels and D=", targets.outputs(),
         " outputs; the block's O is [D=", L.model_dim(), ", H*d=", L.query_width(),
         "] (current heads: H=", L.heads(), ", d=", L.head_dim(), ")");
  }
  if (targets.count() <= 0) fail("the targets hold no tokens (count is 0)");
  const ActivationStats& z = targets.inputs();
  if (!z.mean().allFinite() || !z.m2().allFinite() || !z.gram().allFinite() ||
      !targets.targets().mean().allFinite() || !targets.cross_sum().allFinite()) {
    fail("the accumulated moments are not finite");
  }
}

/// O refitted to the targets (see `remove_heads_to_targets` for the formulas), in double.
inline CompensatedOutput fit_output_to_targets(const Eigen::MatrixXd& W, const Eigen::VectorXd& bias,
                                               const OutputTargets& targets, const std::vector<Index>& kept,
                                               const CompensationOptions& options) {
  const ActivationStats& z = targets.inputs();
  const double n = static_cast<double>(targets.count());
  const Eigen::VectorXd mu_z = z.mean()(kept);
  const Eigen::VectorXd& mu_y = targets.targets().mean();
  CompensatedOutput out;
  out.weight = W;
  const Eigen::MatrixXd W_K = gather_columns(W, kept);
  if (options.method == CompensationMethod::bias) {
    out.bias = mu_y - W_K * mu_z;
    return out;
  }
  const bool centred = options.method == CompensationMethod::bias_lsq;
  const Eigen::MatrixXd S = centred ? covariance(z) : second_moments(z);
  const double damping = options.lambda * mean_diagonal(S);
  // Right-hand side, transposed for the solve: E[(y - c) z_Kᵀ]ᵀ with c = E[y] (centred) or the bias
  // O keeps (uncentred), plus λ' O_K when the ridge pulls towards the current columns.
  Eigen::MatrixXd rhs_t = gather_columns(targets.cross_sum(), kept).transpose() / n;
  rhs_t.noalias() -= mu_z * (centred ? mu_y : bias).transpose();
  if (options.ridge_target == RidgeTarget::original) rhs_t += damping * W_K.transpose();
  damped_solve_in_place(S(kept, kept), damping, rhs_t, "least-squares refit to targets", options.lambda);
  for (std::size_t j = 0; j < kept.size(); ++j) out.weight.col(kept[j]) = rhs_t.row(static_cast<Index>(j));
  if (centred) out.bias = mu_y - rhs_t.transpose() * mu_z;
  return out;
}

/// E‖y - O_K' z_K - b'‖² over the tokens, from the moments: with e = y - b' - O_K' z_K,
/// E‖e‖² = tr Σ_y + ‖μ_y - b' - O_K' μ_K‖² - 2 tr(O_K' Σ_Ky) + tr(O_K' Σ_KK O_K'ᵀ), Σ the covariances.
inline double refit_mean_squared_error(const CompensatedOutput& out, const Eigen::VectorXd& bias,
                                       const OutputTargets& targets, const std::vector<Index>& kept) {
  const ActivationStats& z = targets.inputs();
  const double n = static_cast<double>(targets.count());
  const Eigen::VectorXd mu_z = z.mean()(kept);
  const Eigen::VectorXd& mu_y = targets.targets().mean();
  const Eigen::MatrixXd W_K = gather_columns(out.weight, kept);
  const Eigen::VectorXd& b = out.bias ? *out.bias : bias;
  const Eigen::MatrixXd cov_yz =
      gather_columns(targets.cross_sum(), kept) / n - mu_y * mu_z.transpose();  // [D, K]
  const Eigen::MatrixXd S = covariance(z)(kept, kept);
  const double mean_error = (mu_y - b - W_K * mu_z).squaredNorm();
  return targets.targets().m2().sum() / n + mean_error - 2.0 * (W_K.cwiseProduct(cov_yz)).sum() +
         (W_K * S).cwiseProduct(W_K).sum();
}

}  // namespace detail

/// Removes query heads and refits O so that the kept heads reproduce given TARGETS rather than the
/// block's own output: the compensation for sequential calibration, where the targets come from the
/// unpruned model and may also cancel the drift earlier pruned layers left in the residual stream
/// (see `OutputTargets` for how to build them). With z the block's O input over the calibration
/// tokens, y the targets, K the kept channels and λ' = lambda · mean(diag) of the matrix solved with:
///
/// | method     | new O bias             | new kept columns O_K'                                  |
/// |------------|------------------------|--------------------------------------------------------|
/// | `none`     | unchanged              | unchanged (exactly `remove_heads`; targets ignored)     |
/// | `bias`     | E[y] - O_K E[z_K]      | unchanged                                              |
/// | `lsq`      | unchanged (b)          | E[(y - b) z_Kᵀ] (E[z_K z_Kᵀ] + λ'I)⁻¹                   |
/// | `bias+lsq` | E[y] - O_K' E[z_K]     | Cov(y, z_K) (Cov(z_K) + λ'I)⁻¹                         |
///
/// With `RidgeTarget::original` the ridge pulls O_K' towards O_K (λ' O_K is added to the right-hand
/// factor). `scale` and `obs` fit the block to its own output and are refused here.
///
/// @tparam Scalar the block's element type; everything is computed in double and rounded once.
/// @param heads current positions of the heads to remove (equal groups under grouped-query attention,
///        as `remove_heads`). EMPTY IS ALLOWED and still refits: a layer that loses no heads can still
///        cancel the drift of the layers before it.
/// @param targets inputs of exactly the block's current H*d channels, targets of width D (the model
///        width), count > 0, all moments finite.
/// @returns the removed original ids and, when the block binds no O bias but the method sets one
///          (`bias`, `bias+lsq`), that bias as `created_bias` for the caller to store.
/// @throws compensation_error for bad options, a method other than none/bias/lsq/bias+lsq, targets of
///         the wrong shape, without tokens or not finite, a failed factorisation, or a result the
///         element type cannot hold; head_id_error / removal_error as `remove_heads`.
/// Strong guarantee: everything is checked and computed before the first write.
/// Cost: one C'×C' Cholesky factorisation and a solve with D right-hand sides (C' = kept channels).
template <typename Scalar>
CompensationOutcome remove_heads_to_targets(AttentionBlock<Scalar>& block, const Positions& heads,
                                            const OutputTargets& targets,
                                            const CompensationOptions& options) {
  detail::check_compensation_options(options);
  RemovalPlan plan = plan_removal(block, heads);
  if (options.method == CompensationMethod::none) return detail::without_compensation(block, std::move(plan));
  detail::check_output_targets(block, targets, options.method);

  const HeadLayout& L = block.layout();
  std::vector<char> keep(static_cast<std::size_t>(L.heads()), 1);
  for (Index h : heads.ids) keep[static_cast<std::size_t>(h)] = 0;
  std::vector<Index> kept;
  for (Index h = 0; h < L.heads(); ++h)
    if (keep[static_cast<std::size_t>(h)])
      for (Index a = 0; a < L.head_dim(); ++a) kept.push_back(h * L.head_dim() + a);

  const std::optional<Eigen::VectorXd> bias = detail::read_output_bias(block);
  detail::CompensatedOutput out = detail::fit_output_to_targets(
      detail::read_output_weight(block), bias.value_or(Eigen::VectorXd::Zero(L.model_dim())), targets, kept,
      options);
  return detail::commit_compensated(block, std::move(plan), keep, std::move(out), bias.has_value(),
                                    to_string(options.method));
}

/// What removing each head costs after the refit: greedy backward elimination by the calibration
/// residual of `remove_heads_to_targets` (structured OBS with the targets as the objective). Starting
/// from all current heads, each step removes the head whose removal leaves the smallest mean squared
/// error E‖y - O'z - b'‖² over the calibration tokens, after O (and with `bias+lsq` the bias) is
/// refitted as `options.method` would; ties go to the lower position. Under grouped-query attention
/// (several query heads per key/value head) a step takes one head from every key/value group (the
/// cheapest of each group, group by group), so the groups stay equal.
///
/// @param count how many heads to remove: a multiple of the group count under GQA, < the heads.
/// @param options method lsq or bias+lsq (others: compensation_error), lambda, ridge target.
/// @returns current positions, in the order removed.
/// @throws compensation_error as `remove_heads_to_targets` (bad targets or options); removal_error for a
///         count that cannot be removed. Changes nothing.
/// Cost: per step, one C'×C' factorisation per candidate head (C' = kept channels).
template <typename Scalar>
std::vector<Index> cheapest_heads_to_remove(const AttentionBlock<Scalar>& block, Index count,
                                            const OutputTargets& targets,
                                            const CompensationOptions& options) {
  detail::check_compensation_options(options);
  if (options.method != CompensationMethod::lsq && options.method != CompensationMethod::bias_lsq) {
    throw compensation_error(detail::message("cheapest_heads_to_remove(): block \"", block.name(),
                                             "\": needs compensation lsq or bias+lsq, got ",
                                             to_string(options.method)));
  }
  detail::check_output_targets(block, targets, options.method);
  const HeadLayout& L = block.layout();
  // Multi-head attention: every head its own key/value head, so any head may go; one pool.
  const Index groups = L.group_size() == 1 ? 1 : L.kv_heads(), per_group = L.heads() / groups;
  if (count < 0 || count >= L.heads() || count % groups != 0) {
    throw removal_error(detail::message("cheapest_heads_to_remove(): block \"", block.name(),
                                        "\": cannot remove ", count, " of ", L.heads(), " heads (", groups,
                                        " key/value groups must stay equal and one head must stay)"));
  }
  const Eigen::MatrixXd W = detail::read_output_weight(block);
  const Eigen::VectorXd bias = detail::read_output_bias(block).value_or(Eigen::VectorXd::Zero(L.model_dim()));
  const auto residual = [&](const std::vector<char>& keep) {
    std::vector<Index> kept;
    for (Index h = 0; h < L.heads(); ++h)
      if (keep[static_cast<std::size_t>(h)])
        for (Index a = 0; a < L.head_dim(); ++a) kept.push_back(h * L.head_dim() + a);
    const detail::CompensatedOutput out = detail::fit_output_to_targets(W, bias, targets, kept, options);
    return detail::refit_mean_squared_error(out, bias, targets, kept);
  };
  std::vector<char> keep(static_cast<std::size_t>(L.heads()), 1);
  std::vector<Index> order;
  while (static_cast<Index>(order.size()) < count) {
    for (Index g = 0; g < groups; ++g) {
      Index best = -1;
      double best_cost = 0.0;
      for (Index h = g * per_group; h < (g + 1) * per_group; ++h) {
        if (!keep[static_cast<std::size_t>(h)]) continue;
        keep[static_cast<std::size_t>(h)] = 0;
        const double cost = residual(keep);
        keep[static_cast<std::size_t>(h)] = 1;
        if (best < 0 || cost < best_cost) best = h, best_cost = cost;
      }
      keep[static_cast<std::size_t>(best)] = 0;
      order.push_back(best);
    }
  }
  return order;
}

/// As above, with the heads named by original id; throws `head_id_error` for an id that never existed
/// or was already removed, before anything else.
template <typename Scalar>
CompensationOutcome remove_heads_to_targets(AttentionBlock<Scalar>& block, const OriginalIds& heads,
                                            const OutputTargets& targets,
                                            const CompensationOptions& options) {
  return remove_heads_to_targets(block, detail::current_positions(block, heads), targets, options);
}

}  // namespace mhaprune
