// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/calibration/activation_stats.hpp"
#include "mhaprune/checkpoint/block_assembly.hpp"
#include "mhaprune/checkpoint/block_info.hpp"
#include "mhaprune/checkpoint/gradient_evidence.hpp"
#include "mhaprune/checkpoint/open.hpp"
#include "mhaprune/checkpoint/prune_options.hpp"
#include "mhaprune/compensation/detail/checked_stats.hpp"
#include "mhaprune/compensation/method.hpp"
#include "mhaprune/criteria/any_criterion.hpp"
#include "mhaprune/criteria/evidence.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune::checkpoint {

namespace detail {

/// The statistics of a block, or nullptr.
inline const ActivationStats* stats_for(const BlockInfo& info, const PruneOptions& options) {
  if (options.stats == nullptr) return nullptr;
  const auto it = options.stats->find(info.stats_key());
  return it == options.stats->end() ? nullptr : &it->second;
}

inline std::string stats_hint(const BlockInfo& info, const PruneOptions& options) {
  return mhaprune::detail::message(
      "the statistics for block \"", info.name, "\" are expected under key \"", info.stats_key(),
      "\" (tensors \"", info.stats_key(), ".input.*\"), ",
      options.stats == nullptr
          ? std::string("but no statistics were given")
          : mhaprune::detail::message("but the ", options.stats->size(), " given have no such key"));
}

/// The block's scores by `criterion`, with its statistics when given; a criterion that misses
/// them says under which key they were expected.
template <typename Block>
Eigen::VectorXd score_block(AnyCriterion& criterion, const Block& block, const BlockInfo& info,
                            const PruneOptions& options) {
  const ActivationStats* stats = stats_for(info, options);
  Evidence evidence;
  if (stats) evidence.with_activations(*stats);
  const GradientNeed need = gradient_need(criterion);
  if (options.gradients && need != GradientNeed::none)
    return score_with_gradients(criterion, block, *options.gradients, evidence);
  try {
    return score_heads(criterion, block, evidence);
  } catch (const evidence_error& e) {
    if (need != GradientNeed::none) {
      throw evidence_error(mhaprune::detail::message(
          e.what(), "; ", criterion.name(),
          " reads gradient evidence: give a gradients file (PruneOptions::gradients, the tool's --grads), "
          "see io/gradients_file.hpp"));
    }
    if (stats) throw;
    throw evidence_error(mhaprune::detail::message(e.what(), "; ", stats_hint(info, options)));
  }
}

/// Calls `f(loaded)` with the block read as LoadedBlock<float>, or <double> for F64 weights.
template <typename F>
void with_loaded_block(const Checkpoint& ckpt, const BlockInfo& info, F&& f) {
  if (needs_double(ckpt.reader(), info)) {
    LoadedBlock<double> loaded(ckpt.reader(), info);
    f(loaded);
  } else {
    LoadedBlock<float> loaded(ckpt.reader(), info);
    f(loaded);
  }
}

}  // namespace detail

/// Scores every block, one at a time (read, score, free: memory holds one block), with the
/// criterion `criterion`. Scores are in current head order, which is ascending original id.
/// With compensation requested, also checks each block's statistics (when given) against it, so
/// that a bad statistics file fails before any output exists.
/// With a gradients file, checks it against every block first (`check_gradients`) and scores the
/// gradient criteria with it (`score_with_gradients`).
/// @throws evidence_error naming the block and the expected statistics key when the criterion
///         needs activations and none are given (or saying a gradients file is needed);
///         corrupt_file_error for a gradients file that lacks a tensor or holds a bad one;
///         compensation_error for unusable statistics;
///         whatever reading or the criterion throws.
inline std::vector<Eigen::VectorXd> score_blocks(const Checkpoint& ckpt, AnyCriterion& criterion,
                                                 const PruneOptions& options) {
  if (options.gradients) check_gradients(ckpt, criterion, *options.gradients);
  std::vector<Eigen::VectorXd> scores;
  const auto& blocks = ckpt.blocks();
  for (const BlockInfo& info : blocks) {
    const ActivationStats* stats = detail::stats_for(info, options);
    detail::with_loaded_block(ckpt, info, [&](auto& loaded) {
      scores.push_back(detail::score_block(criterion, loaded.block(), info, options));
      if (stats && options.compensation.method != CompensationMethod::none) {
        mhaprune::detail::check_compensation_stats(loaded.block(), stats, options.compensation.method);
      }
    });
    if (options.progress) options.progress(Progress{"score", scores.size(), blocks.size(), info.name});
  }
  return scores;
}

}  // namespace mhaprune::checkpoint
