// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/checkpoint/block_info.hpp"
#include "mhaprune/checkpoint/block_plan.hpp"
#include "mhaprune/checkpoint/prune_options.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/pruner/config.hpp"
#include "mhaprune/pruner/prune_report.hpp"
#include "mhaprune/selection/block_scores.hpp"
#include "mhaprune/selection/explicit_selection.hpp"

// The steps between scoring and writing that every checkpoint format shares: scores to the
// selection's input, the selection (a policy's or an explicit list), and a block's report.
namespace mhaprune::checkpoint::detail {

inline std::vector<BlockScores> block_scores(const std::vector<BlockInfo>& blocks,
                                             const std::vector<Eigen::VectorXd>& scores) {
  std::vector<BlockScores> out;
  for (std::size_t i = 0; i < scores.size(); ++i) {
    const BlockInfo& b = blocks[i];
    BlockScores s{b.name,     b.layout.heads(), b.layout.kv_heads(), b.original_heads,
                  b.head_ids, scores[i],        b.original_kv_heads};
    s.check();
    out.push_back(std::move(s));
  }
  return out;
}

inline BlockReport block_report(const BlockInfo& info, const Eigen::VectorXd& scores, const BlockPlan* plan) {
  BlockReport r;
  r.name = info.name;
  const std::vector<std::string> roles = present_roles(info);
  r.before = block_cost(info, info.layout, roles);
  r.head_ids = info.head_ids;  // ascending, and the scores are in this order
  for (Index h = 0; h < scores.size(); ++h) r.scores.push_back(scores(h));
  if (plan) {
    std::vector<std::string> after_roles = roles;
    for (const auto& [role, name] : plan->created) after_roles.push_back(role);
    r.after = block_cost(info, plan->after, after_roles);
    r.removed = plan->removed.heads;
    r.removed_kv = plan->removed.kv_heads;
  } else {
    r.after = r.before;
  }
  return r;
}

/// The current positions each block loses: an explicit list, or the policy's choice.
inline Selection choose(const std::vector<BlockInfo>& blocks, ConfiguredPruner<float>& pruner,
                        const std::vector<BlockScores>& scores, const PruneOptions& options) {
  if (!options.explicit_heads) {
    return pruner.policy().select(scores, options.config.target_sparsity, pruner.options());
  }
  ExplicitSelection explicit_selection;
  for (const auto& [index, ids] : *options.explicit_heads) {
    if (index < 0 || index >= static_cast<Index>(blocks.size())) {
      throw config_error(mhaprune::detail::message("explicit heads name block index ", index,
                                                   ", but the checkpoint has ", blocks.size(),
                                                   " blocks (0 to ", blocks.size() - 1, ")"));
    }
    explicit_selection.remove(static_cast<std::size_t>(index), OriginalIds(ids));
  }
  return explicit_selection.select(scores, 0.0, pruner.options());
}

}  // namespace mhaprune::checkpoint::detail
