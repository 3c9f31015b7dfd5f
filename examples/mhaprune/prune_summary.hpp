// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// What `mhaprune prune` prints when it is done: what went where, the heads and parameters before
// and after, and per block the heads removed.
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>

#include "mhaprune/pruner/prune_report.hpp"
#include "table_text.hpp"

namespace mhaprune_cli {

/// What the summary says besides the report.
struct PruneSummary {
  std::string model_path, output, architecture;
  std::string how;                     ///< "explicit heads", or the criterion, scope and target
  std::uint64_t model_parameters = 0;  ///< of the whole input model
  long original_heads = 0;             ///< before any pruning, also an earlier round's
  bool explicit_heads = false;         ///< --heads named the heads (no sparsity target)
};

namespace detail {

/// One block's line: heads and key/value heads before -> after, the original ids removed.
inline void append_removed_line(std::string& out, std::size_t index, const mhaprune::BlockReport& b) {
  fmt::format_to(std::back_inserter(out), "{:<6} {} {:<9} {:<9} {}\n", index, left_aligned(b.name, 40),
                 fmt::format("{} -> {}", b.before.heads, b.after.heads),
                 fmt::format("{} -> {}", b.before.kv_heads, b.after.kv_heads),
                 b.removed.empty() ? "-" : id_ranges(b.removed));
}

}  // namespace detail

/// The summary of a prune, as printed on stdout.
inline std::string prune_summary(const PruneSummary& s, const mhaprune::PruneReport& report) {
  const mhaprune::BlockCost before = report.total(false), after = report.total(true);
  const std::uint64_t model_after =
      s.model_parameters - static_cast<std::uint64_t>(before.parameters - after.parameters);
  const double fraction_removed =
      s.model_parameters ? 1.0 - static_cast<double>(model_after) / static_cast<double>(s.model_parameters)
                         : 0.0;
  std::string out = fmt::format("pruned {} -> {} ({}; {})\n", s.model_path, s.output, s.architecture, s.how);
  const auto to_out = std::back_inserter(out);
  fmt::format_to(to_out, "heads       {} -> {} ({} removed)\n", before.heads, after.heads,
                 before.heads - after.heads);
  fmt::format_to(to_out, "kv heads    {} -> {}\n", before.kv_heads, after.kv_heads);
  if (!s.explicit_heads && before.heads == after.heads &&
      s.original_heads > static_cast<long>(before.heads)) {
    // Re-pruning at or below the fraction an earlier round removed is not an error, but looks like one.
    fmt::format_to(
        to_out,
        "note: nothing removed: --sparsity counts the original model's {} heads, and an earlier pruning "
        "already removed {} of them\n",
        s.original_heads, s.original_heads - static_cast<long>(before.heads));
  }
  fmt::format_to(to_out, "parameters  {} -> {} (-{}; attention {} -> {})\n", grouped(s.model_parameters),
                 grouped(model_after), percent(fraction_removed),
                 grouped(static_cast<std::uint64_t>(before.parameters)),
                 grouped(static_cast<std::uint64_t>(after.parameters)));
  fmt::format_to(to_out, "{:<6} {:<40} {:<9} {:<9} {}\n", "block", "name", "heads", "kv_heads",
                 "removed (original ids)");
  for (std::size_t i = 0; i < report.blocks.size(); ++i)
    detail::append_removed_line(out, i, report.blocks[i]);
  return out;
}

}  // namespace mhaprune_cli
