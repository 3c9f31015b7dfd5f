// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// `mhaprune score MODEL`: every head's score, as a table, a report JSON and a heatmap; nothing is
// removed.
#pragma once

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "cli_options.hpp"
#include "exit_codes.hpp"
#include "heatmap_svg.hpp"
#include "mhaprune/checkpoint/checkpoint.hpp"
#include "mhaprune/checkpoint/prune_gguf.hpp"
#include "mhaprune/pruner/report_json.hpp"
#include "model_inputs.hpp"
#include "output_paths.hpp"
#include "progress.hpp"
#include "score_table.hpp"

namespace mhaprune_cli {

/// Runs `score`; returns the exit code. Throws what the library throws (see exit_codes.hpp).
inline int run_score(const ScoreArgs& a, ProgressPrinter& progress) {
  namespace ckpt = mhaprune::checkpoint;
  const mhaprune::PrunerConfig config = make_config(a.config, true);
  Inputs in;
  ckpt::PruneOptions o;
  o.config = config;
  o.progress = [&progress](const ckpt::Progress& p) { progress.update(p.stage, p.done, p.total, p.block); };
  mhaprune::PruneReport report;
  std::string model_path, architecture;
  if (is_gguf(a.model)) {
    if (!a.preset.empty()) throw usage_error("--preset applies to safetensors checkpoints, not GGUF models");
    if (!a.grads.empty()) throw usage_error("--grads applies to safetensors checkpoints, not GGUF models");
    std::optional<mhaprune::io::Imatrix> matrix;
    load_gguf_stats(a.stats, a.imatrix, in, matrix);
    const ckpt::GgufModel m = ckpt::GgufModel::open(a.model);
    check_side_output("--json", a.json, m.path(), true);
    check_side_output("--heatmap", a.heatmap, m.path(), true);
    if (in.have_stats) o.stats = &in.stats;
    report = ckpt::score_gguf(m, o);
    model_path = m.path();
    architecture = m.architecture();
  } else {
    if (!a.imatrix.empty())
      throw usage_error("--imatrix applies to GGUF models; use --stats for checkpoints");
    load_stats(a.stats, in);
    load_grads(a.grads, in);
    if (in.grads) o.gradients = &*in.grads;
    const ckpt::Checkpoint ck = open_model(a.model, a.preset);
    check_side_output("--json", a.json, input_of(ck), true);
    check_side_output("--heatmap", a.heatmap, input_of(ck), true);
    if (in.have_stats) o.stats = &in.stats;
    report = ckpt::score_checkpoint(ck, o);
    model_path = ck.path();
    architecture = ck.architecture();
  }
  progress.finish();

  if (!a.json.empty()) write_output(a.json, nlohmann::json(report).dump(2) + "\n", true);
  if (!a.heatmap.empty()) {
    HeatmapOptions h;
    h.title = "mhaprune head scores: " + std::filesystem::path(model_path).filename().string();
    h.subtitle = "criterion " + config.criterion_type + " (" +
                 mhaprune::to_string(config.criterion_reduce_type) + "), " + architecture;
    write_output(a.heatmap, heatmap_svg(report, h), true);
  }
  // With the JSON on stdout, a table there too would break it.
  if (a.json != "-") std::fputs(score_table(report, model_path, architecture, config).c_str(), stdout);
  return exit_ok;
}

}  // namespace mhaprune_cli
