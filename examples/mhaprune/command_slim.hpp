// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// `mhaprune slim MODEL -o OUT [--tolerance T]`: remove the heads a masked model already silenced
// (O columns all zero), write the smaller model, and say which heads were found, which went, which
// stayed and why. Its own options live here (those it shares with prune are cli_options.hpp's
// `add_model_options` and `add_output_options`): main.cpp registers the command with
// `define_slim_command` and runs it with `run_slim`.
#pragma once

#include <fmt/core.h>
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstddef>
#include <cstdio>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli_options.hpp"
#include "exit_codes.hpp"
#include "mhaprune/checkpoint/checkpoint.hpp"
#include "mhaprune/checkpoint/prune_gguf.hpp"
#include "mhaprune/checkpoint/slim_checkpoint.hpp"
#include "mhaprune/io/ggml_type.hpp"
#include "mhaprune/pruner/report_json.hpp"
#include "model_inputs.hpp"
#include "output_paths.hpp"
#include "progress.hpp"
#include "prune_summary.hpp"
#include "table_text.hpp"

namespace mhaprune_cli {

/// Options of `slim`.
struct SlimArgs : OutputArgs {
  double tolerance = 0.0;
};

/// Adds the `slim` subcommand to `app`; the values land in `a`, which must outlive parsing.
inline CLI::App* define_slim_command(CLI::App& app, SlimArgs& a) {
  CLI::App* slim = app.add_subcommand(
      "slim", "Remove the heads whose O columns are all zero (a masked model) and write the smaller model");
  detail::add_model_options(*slim, a);
  slim->add_option("--tolerance", a.tolerance,
                   "A weight counts as zero when |w| <= T (absolute, on the stored values; decoded for "
                   "quantized GGUF types)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str()
      ->option_text("T");
  detail::add_output_options(*slim, a, "Write the report JSON (what was found, removed and kept)");
  slim->footer(
      "A head whose O columns are all zero contributes nothing (its whole output, V's bias included, is "
      "multiplied by zero), so the slimmed model computes exactly what the masked one does. Grouped-query "
      "layers lose the same number of heads from each key/value group; a layer keeps at least one head; "
      "the heads that stay are listed with the reason. Exit 5 (nothing written) when no head can go.");
  return slim;
}

namespace detail {

inline nlohmann::json slim_block_json(const mhaprune::ZeroedHeads& z) {
  nlohmann::json kept = nlohmann::json::array();
  for (const mhaprune::KeptZeroedHead& k : z.kept)
    kept.push_back({{"id", k.id}, {"reason", mhaprune::to_string(k.reason)}, {"why", k.why}});
  return {{"name", z.block}, {"zeroed", z.zeroed}, {"removed", z.removable}, {"removed_kv", z.removable_kv},
          {"kept", kept},    {"zero_q", z.zero_q}, {"zero_k", z.zero_k},     {"zero_v", z.zero_v}};
}

/// The findings that are not in the prune summary: zeroed heads kept, and Q/K/V rows zero while O
/// is not. Empty when there are none.
inline std::string slim_findings(const std::vector<mhaprune::ZeroedHeads>& blocks) {
  std::string out;
  const auto to_out = std::back_inserter(out);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    for (const mhaprune::KeptZeroedHead& k : blocks[i].kept)
      fmt::format_to(to_out, "kept   block {} ({}): zeroed head {} stays: {}\n", i, blocks[i].block, k.id,
                     k.why);
  }
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    const mhaprune::ZeroedHeads& z = blocks[i];
    const auto line = [&](const char* what, const char* unit, const std::vector<mhaprune::Index>& ids) {
      if (ids.empty()) return;
      fmt::format_to(to_out,
                     "note   block {} ({}): {} rows are zero while O is not, for {} {} (reported, kept)\n", i,
                     z.block, what, unit, id_ranges(ids));
    };
    line("Q", "query heads", z.zero_q);
    line("K", "key/value heads", z.zero_k);
    line("V", "key/value heads", z.zero_v);
  }
  return out;
}

}  // namespace detail

/// Runs `slim`; returns the exit code (exit_nothing_to_do when no head can go). Throws what the
/// library throws (see exit_codes.hpp).
inline int run_slim(const SlimArgs& a, ProgressPrinter& progress) {
  namespace ckpt = mhaprune::checkpoint;
  ckpt::SlimOptions o;
  o.tolerance = a.tolerance;
  o.overwrite = a.force;
  o.durable = !a.no_sync;
  o.progress = [&progress](const ckpt::Progress& p) { progress.update(p.stage, p.done, p.total, p.block); };
  ckpt::SlimResult result;
  PruneSummary summary;
  summary.output = a.output;
  summary.explicit_heads = true;
  summary.how = fmt::format("zeroed heads, tolerance {}", a.tolerance);
  nlohmann::json report_json = {{"tolerance", a.tolerance}};
  if (is_gguf(a.model)) {
    if (!a.preset.empty()) throw usage_error("--preset applies to safetensors checkpoints, not GGUF models");
    const ckpt::GgufModel m = ckpt::GgufModel::open(a.model);
    check_output_file(a.output, m, a.force);
    check_side_output("--report", a.report, m.path(), a.force);
    ckpt::GgufPruneOptions g;
    if (!a.requantize.empty()) g.requantize = mhaprune::io::parse_ggml_type(a.requantize);
    result = ckpt::slim_gguf(m, a.output, o, g);
    report_json["output_files"] = result.output_files;
    report_json["architecture"] = result.architecture;
    report_json["requantized"] = result.requantized;
    summary.model_path = m.path();
    summary.architecture = !result.written || m.architecture() == result.architecture
                               ? m.architecture()
                               : m.architecture() + " -> " + result.architecture;
    summary.model_parameters = m.parameter_count();
  } else {
    if (!a.requantize.empty()) throw usage_error("--requantize applies to GGUF models");
    const ckpt::Checkpoint ck = open_model(a.model, a.preset);
    check_output_directory(a.output, ck, a.force);
    check_side_output("--report", a.report, input_of(ck), a.force);
    result = ckpt::slim_checkpoint(ck, a.output, o);
    summary.model_path = ck.path();
    summary.architecture = ck.architecture();
    summary.model_parameters = ck.parameter_count();
  }
  progress.finish();

  nlohmann::json blocks = nlohmann::json::array();
  for (const mhaprune::ZeroedHeads& z : result.blocks) blocks.push_back(detail::slim_block_json(z));
  report_json["blocks"] = blocks;
  report_json["written"] = result.written;
  if (result.written) report_json["prune"] = result.report;
  if (!a.report.empty()) write_output(a.report, report_json.dump(2) + "\n", o.durable);

  std::size_t zeroed = 0;
  for (const mhaprune::ZeroedHeads& z : result.blocks) zeroed += z.zeroed.size();
  if (result.written) {
    for (const std::string& t : result.requantized)
      fmt::print("re-encoded {} as {} (its removed heads are not whole blocks)\n", t, a.requantize);
    std::fputs(prune_summary(summary, result.report).c_str(), stdout);
  }
  std::fputs(detail::slim_findings(result.blocks).c_str(), stdout);
  if (!result.written) {
    fmt::print(
        "nothing to slim in {}: {} zeroed head{} (|w| <= {} in every O column of the head), none that "
        "can be removed; nothing written\n",
        summary.model_path, zeroed, zeroed == 1 ? "" : "s", a.tolerance);
    return exit_nothing_to_do;
  }
  return exit_ok;
}

}  // namespace mhaprune_cli
