// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// `mhaprune score` as a table for people: per block the spread of its heads' scores and the heads
// that would go first.
#pragma once

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/core/types.hpp"
#include "mhaprune/pruner/config.hpp"
#include "mhaprune/pruner/prune_report.hpp"
#include "table_text.hpp"

namespace mhaprune_cli {

namespace detail {

/// One block's line: head count, min / mean / max score (nan without heads), the three lowest.
inline void append_score_line(std::string& out, std::size_t index, const mhaprune::BlockReport& b) {
  std::vector<std::pair<double, mhaprune::Index>> ranked;
  double sum = 0;
  for (std::size_t k = 0; k < b.scores.size(); ++k) {
    ranked.emplace_back(b.scores[k], b.head_ids[k]);
    sum += b.scores[k];
  }
  std::sort(ranked.begin(), ranked.end());
  std::string lowest;
  for (std::size_t k = 0; k < ranked.size() && k < 3; ++k)
    fmt::format_to(std::back_inserter(lowest), "{}{}:{:.4g}", k ? " " : "", ranked[k].second,
                   ranked[k].first);
  // Explicit '>': {fmt} 9 would align nan left.
  fmt::format_to(std::back_inserter(out), "{:<6} {} {:>6} {:>11.4g} {:>11.4g} {:>11.4g}  {}\n", index,
                 left_aligned(b.name, 40), b.scores.size(), ranked.empty() ? NAN : ranked.front().first,
                 ranked.empty() ? NAN : sum / static_cast<double>(ranked.size()),
                 ranked.empty() ? NAN : ranked.back().first, lowest);
}

}  // namespace detail

/// The scores of `report` as a table: a title line naming the model and criterion, then one line
/// per block.
inline std::string score_table(const mhaprune::PruneReport& report, const std::string& model_path,
                               const std::string& architecture, const mhaprune::PrunerConfig& config) {
  std::string out = fmt::format("{}: {}, criterion {} ({})\n", model_path, architecture,
                                config.criterion_type, mhaprune::to_string(config.criterion_reduce_type));
  fmt::format_to(std::back_inserter(out), "{:<6} {:<40} {:>6} {:>11} {:>11} {:>11}  {}\n", "block", "name",
                 "heads", "min", "mean", "max", "lowest (id:score)");
  for (std::size_t i = 0; i < report.blocks.size(); ++i) detail::append_score_line(out, i, report.blocks[i]);
  return out;
}

}  // namespace mhaprune_cli
