// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/calibration/activation_stats.hpp"
#include "mhaprune/compensation/bias.hpp"
#include "mhaprune/compensation/detail/checked_stats.hpp"
#include "mhaprune/compensation/detail/commit.hpp"
#include "mhaprune/compensation/lsq.hpp"
#include "mhaprune/compensation/method.hpp"
#include "mhaprune/compensation/obs.hpp"
#include "mhaprune/compensation/scale.hpp"
#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/detail/output_access.hpp"
#include "mhaprune/core/head_selection.hpp"
#include "mhaprune/core/remove_heads.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

namespace detail {

inline CompensatedOutput compensate_output(Eigen::MatrixXd W, const Eigen::VectorXd& bias,
                                           const ActivationStats& stats, const std::vector<char>& keep,
                                           Index d, const CompensationOptions& options) {
  std::vector<Index> kept_heads, removed_heads, kept, removed;
  for (std::size_t h = 0; h < keep.size(); ++h) {
    (keep[h] ? kept_heads : removed_heads).push_back(static_cast<Index>(h));
    for (Index a = 0; a < d; ++a) (keep[h] ? kept : removed).push_back(static_cast<Index>(h) * d + a);
  }
  CompensatedOutput out;
  switch (options.method) {
    case CompensationMethod::none:
      break;
    case CompensationMethod::bias:
      out.bias = bias + bias_shift(W, stats.mean(), removed);
      break;
    case CompensationMethod::scale: {
      const Eigen::VectorXd s =
          kept_head_scales(head_output_gram(W, second_moments(stats), d), kept_heads, options.scale_ridge);
      for (std::size_t i = 0; i < kept_heads.size(); ++i)
        W.middleCols(kept_heads[i] * d, d) *= s(static_cast<Index>(i));
      break;
    }
    case CompensationMethod::lsq: {
      const Eigen::MatrixXd W_K =
          lsq_refit(W, second_moments(stats), kept, removed, options.lambda, options.ridge_target);
      for (std::size_t j = 0; j < kept.size(); ++j) W.col(kept[j]) = W_K.col(static_cast<Index>(j));
      break;
    }
    case CompensationMethod::bias_lsq: {
      // The best affine refit: fit the centred parts, then carry the means in the bias:
      // b' = b + O μ - O_K' μ_K.
      const Eigen::VectorXd& mu = stats.mean();
      const Eigen::MatrixXd W_K =
          lsq_refit(W, covariance(stats), kept, removed, options.lambda, options.ridge_target);
      Eigen::VectorXd b = bias + W * mu;
      for (std::size_t j = 0; j < kept.size(); ++j) {
        W.col(kept[j]) = W_K.col(static_cast<Index>(j));
        b -= W.col(kept[j]) * mu(kept[j]);
      }
      out.bias = std::move(b);
      break;
    }
    case CompensationMethod::obs: {
      Eigen::MatrixXd Hinv = damped_inverse(second_moments(stats), options.lambda);
      obs_remove_heads(W, Hinv, d, removed_heads);
      break;
    }
  }
  out.weight = std::move(W);
  return out;
}

}  // namespace detail

/// Removes query heads (current positions) from a block and compensates for them from statistics of
/// O's input, so that the pruned block's output stays close to the unpruned one's on data like the
/// calibration data (see `CompensationMethod` for the methods and what each needs).
///
/// @tparam Scalar the block's element type (float, double, Eigen::half, Eigen::bfloat16). Everything
///         is computed in double and each changed element is rounded to Scalar once.
/// @param block any layout; O is found by its `Role::output` segments (a Linear `[D, H*d]` or a
///        Conv1D stored `[H*d, D]`); its bias, when bound (`layout::output_bias`), receives bias shifts.
/// @param heads positions of the query heads to remove. With grouped-query attention the removal must
///        leave equal groups (as `remove_heads`); compensation works per query head.
/// @param o_input statistics of O's input over the calibration tokens: exactly the block's CURRENT
///        H*d channels (column h*d + a = channel a of current head h, as `reference::head_outputs`),
///        count > 0, and the Gram matrix for scale, lsq, bias+lsq and obs. nullptr only for `none`.
/// @returns the removed original ids and, when the method shifted the bias of a block that has no O
///        bias tensor, that bias (`created_bias`, size D) for the caller to store (the block's output
///        is only compensated once it is added).
/// @throws head_id_error, removal_error and what `AttentionBlock::validate` throws, as `remove_heads`;
///         compensation_error for bad options, unusable statistics (see `compensation_error`), a failed
///         factorisation, or a result that does not fit Scalar (e.g. beyond half's ±65504).
/// Strong guarantee: everything is checked and computed before the first write; on any throw
/// (std::bad_alloc included) the block's tensors are unchanged, bit for bit. Method `none` is exactly
/// `remove_heads` and ignores the statistics. Removing no heads changes nothing.
/// Cost (C = H*d, D = model width): bias O(D·C); lsq one C'×C' Cholesky and a solve with D right-hand
/// sides (C' = kept channels); scale one C²·D rank update; obs one C×C inverse and C²·d per head.
template <typename Scalar>
CompensationOutcome remove_heads_compensated(AttentionBlock<Scalar>& block, const Positions& heads,
                                             const ActivationStats* o_input,
                                             const CompensationOptions& options) {
  detail::check_compensation_options(options);
  RemovalPlan plan = plan_removal(block, heads);
  if (options.method == CompensationMethod::none) return detail::without_compensation(block, std::move(plan));
  const ActivationStats& stats = detail::check_compensation_stats(block, o_input, options.method);
  if (plan.empty()) return {};

  const HeadLayout& L = block.layout();
  std::vector<char> keep(static_cast<std::size_t>(L.heads()), 1);
  for (Index h : heads.ids) keep[static_cast<std::size_t>(h)] = 0;
  const std::optional<Eigen::VectorXd> bias = detail::read_output_bias(block);
  detail::CompensatedOutput out = detail::compensate_output(
      detail::read_output_weight(block), bias.value_or(Eigen::VectorXd::Zero(L.model_dim())), stats, keep,
      L.head_dim(), options);

  return detail::commit_compensated(block, std::move(plan), keep, std::move(out), bias.has_value(),
                                    to_string(options.method));
}

/// As above, with the heads named by original id (see `OriginalIds`); throws `head_id_error` for an
/// id that never existed or was already removed, before anything else.
template <typename Scalar>
CompensationOutcome remove_heads_compensated(AttentionBlock<Scalar>& block, const OriginalIds& heads,
                                             const ActivationStats& o_input,
                                             const CompensationOptions& options) {
  return remove_heads_compensated(block, detail::current_positions(block, heads), &o_input, options);
}

/// As above, with the statistics optional (nullptr: only method `none` works).
template <typename Scalar>
CompensationOutcome remove_heads_compensated(AttentionBlock<Scalar>& block, const OriginalIds& heads,
                                             const ActivationStats* o_input,
                                             const CompensationOptions& options) {
  return remove_heads_compensated(block, detail::current_positions(block, heads), o_input, options);
}

/// As above, with positions and statistics by reference.
template <typename Scalar>
CompensationOutcome remove_heads_compensated(AttentionBlock<Scalar>& block, const Positions& heads,
                                             const ActivationStats& o_input,
                                             const CompensationOptions& options) {
  return remove_heads_compensated(block, heads, &o_input, options);
}

}  // namespace mhaprune
