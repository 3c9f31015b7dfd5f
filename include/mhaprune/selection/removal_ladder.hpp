// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "mhaprune/selection/block_scores.hpp"
#include "mhaprune/selection/normalization.hpp"

namespace mhaprune {

/// The removals one block can make, weakest first: removing `c` heads removes `order[0..c)`, and `c`
/// must be one of `allowed` (ascending, always starting with 0). `cost[c]` is the sum of the scores of
/// those heads, what a global ranking minimises.
///
/// The ladder is where the GQA modes and the guards live, so that the local, global and schedule
/// code never repeat them: plain MHA steps one head at a time; `uniform_per_group` one head from
/// every group at a time; `whole_groups` one whole group at a time; the guards cut the top;
/// `round_to` drops the counts whose kept-head count is not a multiple of it. In a grouped-query block
/// `uniform_per_group` never empties a group, so a block down to one query head per group loses no more.
struct RemovalLadder {
  std::vector<Index> order;  ///< current positions, in removal order
  std::vector<Index> allowed;
  std::vector<double> cost;  ///< prefix sums of the scores along `order`, size order.size() + 1
  Eigen::VectorXd scores;    ///< the block's scores after normalisation, by current position
  bool unit_steps = false;   ///< every count 0..allowed.back() is allowed

  Index max_removal() const noexcept { return allowed.back(); }
  /// The largest allowed count not above `target` (0 when none is).
  Index best_at_most(Index target) const noexcept {
    Index best = 0;
    for (Index c : allowed)
      if (c <= target) best = c;
    return best;
  }
  std::vector<Index> heads_for(Index count) const {
    std::vector<Index> out(order.begin(), order.begin() + count);
    std::sort(out.begin(), out.end());
    return out;
  }
};

namespace detail {
/// Positions sorted by (score, position): the deterministic weakest-first order.
inline std::vector<Index> ascending(const Eigen::VectorXd& s, std::vector<Index> positions) {
  std::stable_sort(positions.begin(), positions.end(),
                   [&](Index a, Index b) { return s(a) < s(b) || (s(a) == s(b) && a < b); });
  return positions;
}
}  // namespace detail

/// Builds the ladder of one block under `options` (already checked).
inline RemovalLadder make_ladder(const BlockScores& block, const SelectionOptions& options) {
  const Eigen::VectorXd s = normalized(block.scores, options.normalization);
  const Index H = block.heads, Hkv = block.kv_heads, r = block.group_size();
  RemovalLadder ladder;
  Index step = 1;  // heads per rung
  Index rungs = H;
  if (!block.grouped()) {
    // Multi-head attention: every head is its own group, all modes agree.
    std::vector<Index> all(static_cast<std::size_t>(H));
    std::iota(all.begin(), all.end(), Index{0});
    ladder.order = detail::ascending(s, all);
    rungs = H - 1;
  } else if (options.gqa_mode == GqaMode::uniform_per_group) {
    // Rung m takes the m-th weakest head of every group, groups in order.
    std::vector<std::vector<Index>> per_group(static_cast<std::size_t>(Hkv));
    for (Index g = 0; g < Hkv; ++g) {
      std::vector<Index> members(static_cast<std::size_t>(r));
      std::iota(members.begin(), members.end(), g * r);
      per_group[static_cast<std::size_t>(g)] = detail::ascending(s, members);
    }
    for (Index m = 0; m < r; ++m)
      for (Index g = 0; g < Hkv; ++g)
        ladder.order.push_back(per_group[static_cast<std::size_t>(g)][static_cast<std::size_t>(m)]);
    step = Hkv;
    rungs = r - 1;
  } else {
    // Groups by mean score of their query heads, weakest first, ties by group index.
    Eigen::VectorXd group(Hkv);
    for (Index g = 0; g < Hkv; ++g) group(g) = s.segment(g * r, r).mean();
    std::vector<Index> groups(static_cast<std::size_t>(Hkv));
    std::iota(groups.begin(), groups.end(), Index{0});
    for (Index g : detail::ascending(group, groups))
      for (Index i = 0; i < r; ++i) ladder.order.push_back(g * r + i);
    step = r;
    rungs = Hkv - 1;
  }

  const Index by_min = H - options.min_heads;
  const Index by_ratio =
      detail::floor_count(options.max_ratio_per_block, block.original_heads) - block.already_removed();
  const Index cap = std::max<Index>(0, std::min({rungs * step, by_min, by_ratio}));
  for (Index c = 0; c <= cap; c += step) {
    if (c == 0 || (H - c) % options.round_to == 0) ladder.allowed.push_back(c);
  }
  ladder.unit_steps = step == 1 && options.round_to == 1;
  ladder.cost.assign(ladder.order.size() + 1, 0.0);
  for (std::size_t i = 0; i < ladder.order.size(); ++i)
    ladder.cost[i + 1] = ladder.cost[i] + s(ladder.order[i]);
  ladder.scores = s;
  return ladder;
}

}  // namespace mhaprune
