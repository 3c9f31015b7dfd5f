// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// `prune --config` with a plan of several configs (INC's `pruning_configs`) or configs that select
// blocks (`op_names`): each config scores the model with its own criterion and chooses among the
// blocks it takes; the heads chosen are then removed as an explicit list.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "heads_spec.hpp"
#include "mhaprune/checkpoint/block_info.hpp"
#include "mhaprune/checkpoint/prune_options.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/pruner/prune_report.hpp"
#include "mhaprune/pruner/pruning_plan.hpp"
#include "mhaprune/selection/block_scores.hpp"

namespace mhaprune_cli {

/// The heads a plan removes, as block index -> original ids.
///
/// @param plan    the configs (not `is_single()`)
/// @param blocks  the model's blocks, in model order
/// @param base    the options every scoring pass shares (stats, progress); its config is replaced
/// @param score   `PruneReport score(const PruneOptions&)`: scores every block (score_checkpoint or
///                score_gguf), one report block per model block
/// @throws mhaprune::config_error when two configs take one block, or the configs ask for different
///         compensation methods; what scoring and selection throw.
template <typename Score>
HeadsSpec plan_heads(const mhaprune::PruningPlan& plan,
                     const std::vector<mhaprune::checkpoint::BlockInfo>& blocks,
                     const mhaprune::checkpoint::PruneOptions& base, Score&& score) {
  std::vector<std::string> names;
  for (const auto& b : blocks) names.push_back(b.name);
  const std::vector<std::ptrdiff_t> owners = plan.owners(names);
  std::vector<std::vector<mhaprune::BlockScores>> scores(plan.configs.size());
  for (std::size_t k = 0; k < plan.configs.size(); ++k) {
    bool used = false;
    for (std::ptrdiff_t o : owners) used = used || o == static_cast<std::ptrdiff_t>(k);
    if (!used) continue;
    mhaprune::checkpoint::PruneOptions o = base;
    o.config = plan.configs[k].config;
    const mhaprune::PruneReport report = score(o);
    for (std::size_t b = 0; b < blocks.size(); ++b) {
      const auto& info = blocks[b];
      Eigen::VectorXd s(static_cast<Eigen::Index>(report.blocks.at(b).scores.size()));
      for (Eigen::Index h = 0; h < s.size(); ++h) s(h) = report.blocks[b].scores[static_cast<std::size_t>(h)];
      mhaprune::BlockScores bs{
          info.name, info.layout.heads(),   info.layout.kv_heads(), info.original_heads, info.head_ids,
          s,         info.original_kv_heads};
      scores[k].push_back(std::move(bs));
    }
  }
  const mhaprune::Selection chosen = mhaprune::select_by_plan(plan, owners, scores);
  HeadsSpec out;
  for (std::size_t b = 0; b < chosen.size(); ++b) {
    if (chosen[b].empty()) continue;
    auto& ids = out[static_cast<mhaprune::Index>(b)];
    for (mhaprune::Index position : chosen[b])
      ids.push_back(blocks[b].head_ids.at(static_cast<std::size_t>(position)));
  }
  return out;
}

/// The one compensation method of a plan's configs.
/// @throws mhaprune::config_error naming two configs that differ.
inline mhaprune::CompensationMethod plan_compensation(const mhaprune::PruningPlan& plan) {
  const mhaprune::CompensationMethod m = plan.configs.front().config.compensation;
  for (std::size_t k = 1; k < plan.configs.size(); ++k) {
    if (plan.configs[k].config.compensation != m) {
      throw mhaprune::config_error("pruning_configs[0] and pruning_configs[" + std::to_string(k) +
                                   "] ask for different compensation (" +
                                   std::string(mhaprune::to_string(m)) + ", " +
                                   std::string(mhaprune::to_string(plan.configs[k].config.compensation)) +
                                   "); one prune uses one method");
    }
  }
  return m;
}

}  // namespace mhaprune_cli
