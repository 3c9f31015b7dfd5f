// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <vector>

#include "mhaprune/selection/block_scores.hpp"
#include "mhaprune/selection/removal_ladder.hpp"

namespace mhaprune::detail {

/// The checks every score-driven mask policy makes before it decides anything.
inline void check_selection_inputs(const std::vector<BlockScores>& blocks, double target,
                                   const SelectionOptions& options) {
  options.check();
  if (!(target >= 0.0 && target <= 1.0)) {
    throw error(message("the target sparsity must be in [0, 1], got ", target));
  }
  for (const BlockScores& b : blocks) b.check();
}

[[noreturn]] inline void throw_shortfall(const std::string& where, Index want, Index got,
                                         const RemovalLadder& ladder) {
  std::string counts;
  for (Index c : ladder.allowed) {
    counts += counts.empty() ? "" : ", ";
    counts += std::to_string(c);
  }
  throw constraint_error(message(where, ": the target asks to remove ", want,
                                 " heads, but the guards and "
                                 "the layout allow only {",
                                 counts, "}; the closest is ", got));
}

}  // namespace mhaprune::detail
