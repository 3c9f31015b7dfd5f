// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// `mhaprune prune MODEL -o OUT`: remove heads (by a sparsity target or named ones), write the
// smaller model, and say what went.
#pragma once

#include <fmt/core.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cli_options.hpp"
#include "exit_codes.hpp"
#include "heads_spec.hpp"
#include "heatmap_svg.hpp"
#include "mhaprune/checkpoint/checkpoint.hpp"
#include "mhaprune/checkpoint/prune_gguf.hpp"
#include "mhaprune/compensation/method.hpp"
#include "mhaprune/io/ggml_type.hpp"
#include "mhaprune/pruner/report_json.hpp"
#include "model_inputs.hpp"
#include "output_paths.hpp"
#include "plan_heads.hpp"
#include "progress.hpp"
#include "prune_summary.hpp"
#include "table_text.hpp"

namespace mhaprune_cli {

namespace detail {

/// --heads names GGUF layers by their number N in `blk.N`; the library takes block indices (they
/// differ only where a layer has no attention).
/// @throws usage_error for a layer the model does not have, or one without attention heads.
inline HeadsSpec gguf_blocks_of_layers(const HeadsSpec& by_layer, const mhaprune::checkpoint::GgufModel& m) {
  HeadsSpec out;
  for (const auto& [layer, ids] : by_layer) {
    mhaprune::Index index = -1;
    for (const auto& b : m.blocks())
      if (b.layer == layer) index = b.index;
    if (index < 0) {
      const bool layer_exists = layer >= 0 && static_cast<std::uint64_t>(layer) < m.block_count();
      throw usage_error("--heads names layer " + std::to_string(layer) + ", but " + m.path() + " has " +
                        std::to_string(m.block_count()) + " layers" +
                        (layer_exists ? " and that one has no attention heads" : ""));
    }
    out[index] = ids;
  }
  return out;
}

}  // namespace detail

/// Runs `prune`; returns the exit code. Throws what the library throws (see exit_codes.hpp).
inline int run_prune(const PruneArgs& a, ProgressPrinter& progress) {
  namespace ckpt = mhaprune::checkpoint;
  const bool have_heads = a.heads_option->count() > 0, have_sparsity = a.sparsity_option->count() > 0;
  if (!have_heads && !have_sparsity && a.config.config_file.empty())
    throw usage_error("prune needs --sparsity R, --heads SPEC or --config FILE (with target_sparsity)");
  const mhaprune::PruningPlan plan = make_plan(a.config);  // its warnings: once its blocks are checked
  if (have_heads && !plan.is_single())
    throw usage_error(
        "--heads cannot be combined with a --config that holds several pruning_configs or op_names");
  const mhaprune::PrunerConfig config = plan.configs.front().config;
  ckpt::PruneOptions o;
  o.config = config;
  if (have_heads) o.explicit_heads = parse_heads_spec(a.heads);
  o.compensation.method =
      a.compensate_option->count() > 0 ? mhaprune::parse_compensation(a.compensate) : plan_compensation(plan);
  o.compensation.lambda = a.compensate_lambda;
  o.overwrite = a.force;
  o.durable = !a.no_sync;

  o.progress = [&progress](const ckpt::Progress& p) { progress.update(p.stage, p.done, p.total, p.block); };
  Inputs in;
  mhaprune::PruneReport report;
  nlohmann::json report_json;
  PruneSummary summary;
  summary.output = a.output;
  summary.explicit_heads = have_heads;
  if (is_gguf(a.model)) {
    if (!a.preset.empty()) throw usage_error("--preset applies to safetensors checkpoints, not GGUF models");
    if (!a.grads.empty()) throw usage_error("--grads applies to safetensors checkpoints, not GGUF models");
    std::optional<mhaprune::io::Imatrix> matrix;
    load_gguf_stats(a.stats, a.imatrix, in, matrix);
    if (!a.imatrix_out.empty() && !matrix) throw usage_error("--imatrix-out needs --imatrix");
    if (in.have_stats) o.stats = &in.stats;
    const ckpt::GgufModel m = ckpt::GgufModel::open(a.model);
    check_output_file(a.output, m, a.force);
    check_side_output("--report", a.report, m.path(), a.force);
    check_side_output("--heatmap", a.heatmap, m.path(), a.force);
    check_side_output("--imatrix-out", a.imatrix_out, m.path(), a.force);
    if (o.explicit_heads) o.explicit_heads = detail::gguf_blocks_of_layers(*o.explicit_heads, m);
    if (!plan.is_single())
      o.explicit_heads = plan_heads(plan, m.blocks(), o,
                                    [&m](const ckpt::PruneOptions& p) { return ckpt::score_gguf(m, p); });
    print_warnings(plan);
    ckpt::GgufPruneOptions g;
    if (!a.requantize.empty()) g.requantize = mhaprune::io::parse_ggml_type(a.requantize);
    if (matrix) g.imatrix = &*matrix;
    g.imatrix_out = a.imatrix_out;
    ckpt::GgufPruneResult result = ckpt::prune_gguf(m, a.output, o, g);
    report = std::move(result.report);
    report_json = report;
    report_json["output_files"] = result.output_files;
    report_json["architecture"] = result.architecture;
    report_json["requantized"] = result.requantized;
    summary.model_path = m.path();
    summary.architecture = m.architecture() == result.architecture
                               ? m.architecture()
                               : m.architecture() + " -> " + result.architecture;
    summary.model_parameters = m.parameter_count();
    for (const auto& b : m.blocks()) summary.original_heads += static_cast<long>(b.original_heads);
    for (const std::string& t : result.requantized)
      fmt::print("re-encoded {} as {} (its removed heads are not whole blocks)\n", t, a.requantize);
  } else {
    if (!a.imatrix.empty() || !a.imatrix_out.empty() || !a.requantize.empty())
      throw usage_error("--imatrix, --imatrix-out and --requantize apply to GGUF models");
    load_stats(a.stats, in);
    load_grads(a.grads, in);
    if (in.grads) o.gradients = &*in.grads;
    if (in.have_stats) o.stats = &in.stats;
    const ckpt::Checkpoint ck = open_model(a.model, a.preset);
    check_output_directory(a.output, ck, a.force);
    check_side_output("--report", a.report, input_of(ck), a.force);
    check_side_output("--heatmap", a.heatmap, input_of(ck), a.force);
    if (!plan.is_single()) {
      o.explicit_heads = plan_heads(
          plan, ck.blocks(), o, [&ck](const ckpt::PruneOptions& p) { return ckpt::score_checkpoint(ck, p); });
    }
    print_warnings(plan);
    report = ckpt::prune_checkpoint(ck, a.output, o);
    report_json = report;
    summary.model_path = ck.path();
    summary.architecture = ck.architecture();
    summary.model_parameters = ck.parameter_count();
    for (const auto& b : ck.blocks()) summary.original_heads += static_cast<long>(b.original_heads);
  }
  progress.finish();

  if (!a.report.empty()) write_output(a.report, report_json.dump(2) + "\n", o.durable);
  summary.how = have_heads ? std::string("explicit heads")
                : !plan.is_single()
                    ? std::to_string(plan.configs.size()) + " pruning configs (--config)"
                    : config.criterion_type + ", " + mhaprune::to_string(config.pruning_scope) + ", target " +
                          percent(config.target_sparsity);
  if (!a.heatmap.empty()) {
    HeatmapOptions h;
    h.title = "mhaprune: heads removed from " + std::filesystem::path(summary.model_path).filename().string();
    h.subtitle =
        summary.how + " (" + mhaprune::to_string(config.criterion_reduce_type) + "); crossed out = removed";
    write_output(a.heatmap, heatmap_svg(report, h), o.durable);
  }
  std::fputs(prune_summary(summary, report).c_str(), stdout);
  return exit_ok;
}

}  // namespace mhaprune_cli
