// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <limits>
#include <tuple>
#include <vector>

#include "mhaprune/selection/block_scores.hpp"
#include "mhaprune/selection/detail/target_check.hpp"
#include "mhaprune/selection/removal_ladder.hpp"

namespace mhaprune {

/// Mask policy: all blocks' heads compete; `k = floor(target * all original heads)` heads are gone
/// afterwards, counting those removed before. Never more than k: ties are broken by (score, block
/// order, head position), unlike a `score <= threshold` rule, which removes every tied head.
///
/// With one-head steps (MHA, `round_to` 1) the weakest heads go one by one within each block's
/// guards. When blocks can only lose heads in steps (GQA modes, `round_to`), an exact dynamic
/// programme picks the per-block counts that remove the most heads up to k and, among those, the
/// lowest total score (equal totals: the earlier block loses more, as with one-head steps). The
/// interface of a mask policy: selection/concept.hpp.
///
/// Throws `error` for a target outside [0, 1], bad options or inconsistent block scores, and
/// `constraint_error` when `exact_target` cannot be met.
class GlobalSelection {
 public:
  static constexpr const char* name = "global";

  Selection select(const std::vector<BlockScores>& blocks, double target,
                   const SelectionOptions& options) const {
    detail::check_selection_inputs(blocks, target, options);
    std::vector<RemovalLadder> ladders;
    ladders.reserve(blocks.size());
    Index original = 0, removed = 0;
    bool unit = true;
    for (const BlockScores& b : blocks) {
      ladders.push_back(make_ladder(b, options));
      original += b.original_heads;
      removed += b.already_removed();
      unit = unit && ladders.back().unit_steps;
    }
    const Index k = std::max<Index>(0, detail::floor_count(target, original) - removed);
    const std::vector<Index> counts = unit ? greedy(ladders, k) : exact(ladders, k);
    Index total = 0;
    for (Index c : counts) total += c;
    if (options.exact_target && total != k) {
      throw constraint_error(detail::message("global selection: the target asks to remove ", k,
                                             " more heads, but the guards and the layouts allow only ",
                                             total));
    }
    Selection out;
    for (std::size_t i = 0; i < ladders.size(); ++i) out.push_back(ladders[i].heads_for(counts[i]));
    return out;
  }

 private:
  static std::vector<Index> greedy(const std::vector<RemovalLadder>& ladders, Index k) {
    std::vector<std::tuple<double, std::size_t, Index>> heads;  // (score, block, position)
    for (std::size_t b = 0; b < ladders.size(); ++b)
      for (Index i = 0; i < ladders[b].max_removal(); ++i) {
        const Index p = ladders[b].order[static_cast<std::size_t>(i)];
        heads.emplace_back(ladders[b].scores(p), b, p);
      }
    // A block's heads are listed weakest first, so any prefix of the sorted list takes a prefix of
    // each block's order: the caps already limited what is listed.
    std::sort(heads.begin(), heads.end());
    std::vector<Index> counts(ladders.size(), 0);
    for (std::size_t i = 0; i < heads.size() && static_cast<Index>(i) < k; ++i)
      ++counts[std::get<1>(heads[i])];
    return counts;
  }

  static std::vector<Index> exact(const std::vector<RemovalLadder>& ladders, Index k) {
    const double inf = std::numeric_limits<double>::infinity();
    const std::size_t B = ladders.size(), K = static_cast<std::size_t>(k) + 1;
    // best[b][t]: lowest cost of removing exactly t heads from blocks >= b; pick[b][t]: count of block b.
    // Built from the last block so that the counts are read from the first: for a given u, t rises and
    // c falls, so on equal costs the first found, the larger count of the earlier block, stays.
    std::vector<std::vector<double>> best(B + 1, std::vector<double>(K, inf));
    std::vector<std::vector<Index>> pick(B + 1, std::vector<Index>(K, 0));
    best[B][0] = 0.0;
    for (std::size_t b = B; b-- > 0;) {
      for (std::size_t t = 0; t < K; ++t) {
        if (best[b + 1][t] == inf) continue;
        for (Index c : ladders[b].allowed) {
          const std::size_t u = t + static_cast<std::size_t>(c);
          if (u >= K) break;
          const double v = best[b + 1][t] + ladders[b].cost[static_cast<std::size_t>(c)];
          if (v < best[b][u]) {
            best[b][u] = v;
            pick[b][u] = c;
          }
        }
      }
    }
    std::size_t t = K - 1;
    while (best[0][t] == inf) --t;  // t = 0 is always reachable
    std::vector<Index> counts(B, 0);
    for (std::size_t b = 0; b < B; ++b) {
      counts[b] = pick[b][t];
      t -= static_cast<std::size_t>(counts[b]);
    }
    return counts;
  }
};

}  // namespace mhaprune
