// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// The command line's exit codes, and which exception means which. Scripts branch on these numbers,
// so they are part of the tool's interface: never renumber them.
#pragma once

#include <exception>
#include <new>
#include <stdexcept>
#include <string>

#include "mhaprune/error.hpp"
#include "mhaprune/selection/block_scores.hpp"

namespace mhaprune_cli {

enum ExitCode : int {
  exit_ok = 0,
  exit_failure = 1,     ///< anything unexpected: out of memory, a bug
  exit_usage = 2,       ///< bad options or option values; nothing was read or written
  exit_bad_input = 3,   ///< the model, its config, a preset or the stats file cannot be used
  exit_constraint = 4,  ///< the pruning constraints cannot all be met
  /// `slim` only: the model has no head that can be removed (none zeroed, or none that the grouped-query
  /// and one-head-per-layer rules let go); what was found is printed, nothing was written. Not 0, so
  /// that a script does not go on to use an output that does not exist.
  exit_nothing_to_do = 5,
};

/// A mistake on the command line that CLI11 cannot see (a bad --heads spec, a side output that would
/// overwrite the input, --config that is not JSON, ...).
class usage_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// The exit code for an exception that ended a command.
///
/// Bad input is anything about the files read: io errors (which include the checkpoint presets'
/// errors: heads not dividing the width, unknown architecture) and shapes or statistics that do not
/// fit the model. Usage is anything the user can fix by changing options: unknown names, out-of-range
/// values, a criterion without the evidence it needs, a head id the model does not have.
inline int exit_code_for(const std::exception& e) {
  if (dynamic_cast<const usage_error*>(&e)) return exit_usage;
  if (dynamic_cast<const mhaprune::io_error*>(&e)) return exit_bad_input;
  if (dynamic_cast<const mhaprune::constraint_error*>(&e)) return exit_constraint;
  if (dynamic_cast<const mhaprune::removal_error*>(&e)) return exit_constraint;
  if (dynamic_cast<const mhaprune::config_error*>(&e)) return exit_usage;
  if (dynamic_cast<const mhaprune::evidence_error*>(&e)) return exit_usage;
  if (dynamic_cast<const mhaprune::head_id_error*>(&e)) return exit_usage;
  if (dynamic_cast<const mhaprune::calibration_error*>(&e)) return exit_bad_input;
  if (dynamic_cast<const mhaprune::error*>(&e)) return exit_bad_input;
  return exit_failure;
}

/// `text` on one line: line breaks and tabs become spaces, trailing blanks go. A message that spans
/// lines would break scripts that read the first line of stderr.
inline std::string one_line(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

}  // namespace mhaprune_cli
