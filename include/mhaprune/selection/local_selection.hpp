// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <vector>

#include "mhaprune/selection/block_scores.hpp"
#include "mhaprune/selection/detail/target_check.hpp"
#include "mhaprune/selection/removal_ladder.hpp"

namespace mhaprune {

/// Mask policy: every block loses `floor(target * its original heads)` heads in all (those it already
/// lost count), its weakest by score, ties by position. The guards and GQA mode of `SelectionOptions`
/// apply through `make_ladder`.
///
/// Use this class as the template for your own policy: a mask policy is any class with
/// `Selection select(const std::vector<BlockScores>&, double target, const SelectionOptions&) const`
/// returning, per block, the ascending current positions of the heads to remove; `target` is the
/// fraction of all original heads that should be gone once this selection is applied. The optional
/// static `name` names it in messages and in `AnyMaskPolicy`. The whole contract, and the check the
/// pruner makes (`is_mask_policy`, the C++20 concept `MaskPolicy`): selection/concept.hpp.
///
/// Throws `error` for a target outside [0, 1], bad options or inconsistent block scores, and
/// `constraint_error` when `exact_target` cannot be met.
class LocalSelection {
 public:
  static constexpr const char* name = "local";

  Selection select(const std::vector<BlockScores>& blocks, double target,
                   const SelectionOptions& options) const {
    detail::check_selection_inputs(blocks, target, options);
    Selection out;
    out.reserve(blocks.size());
    for (const BlockScores& b : blocks) {
      const RemovalLadder ladder = make_ladder(b, options);
      const Index want =
          std::max<Index>(0, detail::floor_count(target, b.original_heads) - b.already_removed());
      const Index got = ladder.best_at_most(want);
      if (options.exact_target && got != want)
        detail::throw_shortfall(detail::message("block \"", b.name, "\""), want, got, ladder);
      out.push_back(ladder.heads_for(got));
    }
    return out;
  }
};

}  // namespace mhaprune
