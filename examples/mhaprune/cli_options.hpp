// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// The command line: three subcommands and their options, and the PrunerConfig they describe. Kept
// apart from main.cpp so the option tree and the flag -> config mapping can be tested without a model.
#pragma once

#include <CLI/CLI.hpp>
#include <cstdint>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "exit_codes.hpp"
#include "mhaprune/checkpoint/json_file.hpp"
#include "mhaprune/compensation/method.hpp"
#include "mhaprune/criteria/registry.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/pruner/config.hpp"
#include "mhaprune/pruner/pruning_plan.hpp"
#include "mhaprune/version.hpp"

namespace mhaprune_cli {

/// Options of `inspect`.
struct InspectArgs {
  std::string model, preset;
  std::string json;  ///< "" = table on stdout; "-" = JSON on stdout; else a JSON file
};

/// Options that shape the PrunerConfig. Each flag overrides the same key of --config when given;
/// `given` records which were.
struct ConfigArgs {
  std::string config_file;
  double sparsity = 0.0;
  std::string scope, criterion, reduce, gqa_mode, normalization;
  mhaprune::Index min_heads = 1, round_to = 1;
  double max_ratio = 1.0;
  std::uint64_t seed = 0;
  bool exact_target = false;
  std::vector<const CLI::Option*> given_options;  ///< filled by `add_config_options`
};

/// Options of `score`.
struct ScoreArgs {
  std::string model, preset, stats, heatmap;
  std::string imatrix;  ///< llama-imatrix file (GGUF models)
  std::string json;     ///< as InspectArgs::json
  bool quiet = false;
  ConfigArgs config;
  /// Gradients file for the gradient criteria (checkpoints).
  std::string grads;
};

/// The options `prune` and `slim` share: the model read, where the smaller model goes, and how it
/// is written. Registered by `add_model_options` and `add_output_options`, so both commands spell,
/// explain and default them alike.
struct OutputArgs {
  std::string model, output, preset, report;
  std::string requantize;  ///< "" or a ggml type name (GGUF models)
  bool force = false, quiet = false, no_sync = false;
};

/// Options of `prune`.
struct PruneArgs : OutputArgs {
  std::string stats, heads, heatmap;
  std::string compensate = "none";  ///< used when given; else the config's `compensation`
  double compensate_lambda = 1e-3;
  std::string imatrix, imatrix_out;  ///< llama-imatrix input and pruned output (GGUF models)
  ConfigArgs config;
  /// Gradients file for the gradient criteria (checkpoints).
  std::string grads;
  const CLI::Option* sparsity_option = nullptr;
  const CLI::Option* heads_option = nullptr;
  const CLI::Option* compensate_option = nullptr;
};

/// Which subcommand ran, and its options.
struct CommandLine {
  InspectArgs inspect;
  ScoreArgs score;
  PruneArgs prune;
  CLI::App* inspect_cmd = nullptr;
  CLI::App* score_cmd = nullptr;
  CLI::App* prune_cmd = nullptr;
};

namespace detail {

inline CLI::Option* track(ConfigArgs& c, CLI::Option* o) {
  c.given_options.push_back(o);
  return o;
}

/// --criterion, --reduce and --seed: what scoring needs (both score and prune).
inline void add_criterion_options(CLI::App& cmd, ConfigArgs& c) {
  const mhaprune::PrunerConfig defaults;
  c.criterion = defaults.criterion_type;
  c.reduce = mhaprune::to_string(defaults.criterion_reduce_type);
  track(c, cmd.add_option("--criterion", c.criterion, "Head importance criterion")
               ->check(CLI::IsMember(mhaprune::criterion_registry().names()))
               ->capture_default_str()
               ->option_text("NAME"));
  track(c, cmd.add_option("--reduce", c.reduce, "How a head's element scores are combined")
               ->check(CLI::IsMember(mhaprune::reduction_table.names()))
               ->capture_default_str()
               ->option_text(mhaprune::reduction_table.joined("|")));
  track(c, cmd.add_option("--seed", c.seed, "Seed of the random criterion")->capture_default_str());
  cmd.add_option("--config", c.config_file,
                 "Pruner config JSON: the library's PrunerConfig keys, or an Intel Neural Compressor "
                 "pruning config (pruning_configs, pattern \"mha\"); flags given override its keys")
      ->check(CLI::ExistingFile)
      ->option_text("FILE");
}

/// The selection flags of prune.
inline void add_selection_options(CLI::App& cmd, ConfigArgs& c) {
  const mhaprune::PrunerConfig defaults;
  c.scope = mhaprune::to_string(defaults.pruning_scope);
  c.gqa_mode = mhaprune::to_string(defaults.gqa_mode);
  c.normalization = mhaprune::to_string(defaults.normalization);
  c.min_heads = defaults.min_heads;
  c.round_to = defaults.round_to;
  c.max_ratio = defaults.max_sparsity_ratio_per_op;
  track(c, cmd.add_option("--scope", c.scope, "Rank heads across all layers or within each layer")
               ->check(CLI::IsMember(mhaprune::pruning_scope_names.names()))
               ->capture_default_str()
               ->option_text(mhaprune::pruning_scope_names.joined("|")));
  track(c, cmd.add_option("--min-heads", c.min_heads, "Heads every layer keeps at least")
               ->check(CLI::Range(mhaprune::Index{1}, mhaprune::Index{1} << 30))
               ->capture_default_str());
  track(c, cmd.add_option("--round-to", c.round_to, "Heads kept per layer: a multiple of this")
               ->check(CLI::Range(mhaprune::Index{1}, mhaprune::Index{1} << 30))
               ->capture_default_str());
  track(c, cmd.add_option("--gqa-mode", c.gqa_mode, "How grouped-query layers lose heads")
               ->check(CLI::IsMember(mhaprune::gqa_mode_names.names()))
               ->capture_default_str()
               ->option_text(mhaprune::gqa_mode_names.joined("|")));
  track(c,
        cmd.add_option("--normalization", c.normalization, "Per-layer score scaling before a global ranking")
            ->check(CLI::IsMember(mhaprune::normalization_names.names()))
            ->capture_default_str()
            ->option_text(mhaprune::normalization_names.joined("|")));
  track(c, cmd.add_option("--max-ratio-per-layer", c.max_ratio, "Fraction of a layer's heads that may go")
               ->check(CLI::Range(0.0, 1.0))
               ->capture_default_str()
               ->option_text("R"));
  track(c, cmd.add_flag("--exact-target", c.exact_target,
                        "Fail (exit 4) instead of removing fewer heads than --sparsity asks"));
}

/// MODEL and -o: the first options of a command that writes a smaller model.
inline void add_model_options(CLI::App& cmd, OutputArgs& a) {
  cmd.add_option("MODEL", a.model, "Checkpoint directory, safetensors file or index, or a GGUF file")
      ->required();
  cmd.add_option("-o,--output", a.output,
                 "Output directory (a file for GGUF; must not exist, unless --force)")
      ->required()
      ->option_text("DIR");
}

/// --requantize, --report (`report_help` says what it holds), --preset, --force, --no-sync and -q:
/// the last options of a command that writes a smaller model.
inline void add_output_options(CLI::App& cmd, OutputArgs& a, const char* report_help) {
  cmd.add_option("--requantize", a.requantize,
                 "GGUF: re-encode an O tensor whose removed heads are not whole blocks of its type, as this "
                 "type (that tensor only; the report lists it)")
      ->check(CLI::IsMember({"q8_0", "f16", "bf16", "f32"}))
      ->option_text("q8_0|f16|bf16|f32");
  cmd.add_option("--report", a.report, report_help)->option_text("FILE");
  cmd.add_option("--preset", a.preset, "Architecture preset JSON for an unknown model")->option_text("FILE");
  cmd.add_flag("--force", a.force, "Replace an existing output and report files");
  cmd.add_flag("--no-sync", a.no_sync,
               "Skip fsync before the final rename (faster; a crash may lose the output, never the input)");
  cmd.add_flag("-q,--quiet", a.quiet, "No progress on stderr");
}

/// "a, b, c" -> "a|b|c", for option texts.
inline std::string bar_separated(std::string list) {
  for (std::size_t at; (at = list.find(", ")) != std::string::npos;) list.replace(at, 2, "|");
  return list;
}

/// --config's JSON, read as the library reads every JSON file (`checkpoint::read_json_file`).
/// @throws usage_error, with the library's message after "--config ", when the file cannot be read
///         or is not valid JSON.
inline nlohmann::json read_config_file(const std::string& path) {
  try {
    return mhaprune::checkpoint::read_json_file(path, "pruner config");
  } catch (const mhaprune::io_error& e) {
    throw usage_error(std::string("--config ") + e.what());
  }
}

}  // namespace detail

/// The plan's warnings on stderr, each once, as "mhaprune: warning: ...".
inline void print_warnings(const mhaprune::PruningPlan& plan) {
  for (const std::string& w : plan.warnings) std::fprintf(stderr, "mhaprune: warning: %s\n", w.c_str());
}

/// The plan the options describe: --config's configs (one, or an INC config's `pruning_configs`, each
/// with the global keys), then every flag that was given, applied to each config.
/// @throws usage_error for a --config file that cannot be read or parsed; mhaprune::config_error for
///         bad keys or values (from `pruning_plan_from_json` and `config_from_json`, which also checks
///         each merged result).
inline mhaprune::PruningPlan make_plan(const ConfigArgs& a) {
  mhaprune::PruningPlan plan;
  if (a.config_file.empty()) {
    plan.configs.push_back(mhaprune::PlanEntry{});
  } else {
    plan = mhaprune::pruning_plan_from_json(detail::read_config_file(a.config_file));
  }
  const auto given = [&](const char* flag) {
    for (const CLI::Option* o : a.given_options)
      if (o->check_name(flag)) return o->count() > 0;
    return false;
  };
  for (mhaprune::PlanEntry& e : plan.configs) {
    mhaprune::PrunerConfig& c = e.config;
    if (given("--sparsity")) c.target_sparsity = a.sparsity;
    if (given("--scope")) c.pruning_scope = mhaprune::parse_pruning_scope(a.scope);
    if (given("--criterion")) c.criterion_type = a.criterion;
    if (given("--reduce")) c.criterion_reduce_type = mhaprune::parse_reduction(a.reduce);
    if (given("--seed")) c.seed = a.seed;
    if (given("--min-heads")) c.min_heads = a.min_heads;
    if (given("--round-to")) c.round_to = a.round_to;
    if (given("--gqa-mode")) c.gqa_mode = mhaprune::parse_gqa_mode(a.gqa_mode);
    if (given("--normalization")) c.normalization = mhaprune::parse_normalization(a.normalization);
    if (given("--max-ratio-per-layer")) c.max_sparsity_ratio_per_op = a.max_ratio;
    if (given("--exact-target")) c.exact_target = a.exact_target;
    c = mhaprune::config_from_json(nlohmann::json(c));
  }
  return plan;
}

/// The PrunerConfig the options describe: --config's keys, then every flag that was given.
/// @throws as `make_plan`, and mhaprune::config_error when --config holds several configs or selects
///         blocks (op_names), which only `prune` runs.
/// The INC keys it ignores are warned about on stderr when `warn`.
inline mhaprune::PrunerConfig make_config(const ConfigArgs& a, bool warn = false) {
  const mhaprune::PruningPlan plan = make_plan(a);
  if (!plan.is_single()) {
    throw mhaprune::config_error(
        "--config " + a.config_file + " holds " + std::to_string(plan.configs.size()) +
        " pruning_configs or selects blocks (op_names); only prune runs such a plan");
  }
  if (warn) print_warnings(plan);
  return plan.configs.front().config;
}

/// Builds the whole option tree into `app`; the values land in `cl`, which must outlive parsing.
inline void define_command_line(CLI::App& app, CommandLine& cl) {
  app.description("mhaprune " MHAPRUNE_VERSION_STRING
                  ": remove attention heads from a Hugging Face-style safetensors checkpoint or a "
                  "llama.cpp GGUF model");
  app.set_version_flag("--version", MHAPRUNE_VERSION_STRING);
  app.require_subcommand(1);
  app.footer(
      "Exit codes: 0 ok, 2 usage error, 3 bad input (unreadable or corrupt model, config, preset or "
      "stats), 4 the pruning constraints cannot be met.\nRun 'mhaprune COMMAND --help' for a "
      "command's options.");

  CLI::App* inspect = app.add_subcommand("inspect",
                                         "Show the detected architecture, blocks, head counts, "
                                         "dtypes and parameter counts");
  inspect
      ->add_option("MODEL", cl.inspect.model,
                   "Checkpoint directory, safetensors file or index, or a GGUF file")
      ->required();
  inspect->add_option("--json", cl.inspect.json, "Write JSON instead of a table (to FILE, or stdout if none)")
      ->expected(0, 1)
      ->default_str("-")
      ->option_text("[FILE]");
  inspect->add_option("--preset", cl.inspect.preset, "Architecture preset JSON for an unknown model")
      ->option_text("FILE");
  cl.inspect_cmd = inspect;

  CLI::App* score =
      app.add_subcommand("score", "Score every head; nothing is removed or written but reports");
  score
      ->add_option("MODEL", cl.score.model, "Checkpoint directory, safetensors file or index, or a GGUF file")
      ->required();
  detail::add_criterion_options(*score, cl.score.config);
  score->add_option("--stats", cl.score.stats, "Calibration statistics (safetensors) for activation criteria")
      ->option_text("FILE");
  score
      ->add_option("--grads", cl.score.grads,
                   "Gradients file (safetensors) for gradient, snip, snip_momentum, taylor and fisher")
      ->option_text("FILE");
  score->add_option("--json", cl.score.json, "Write the report JSON (to FILE, or stdout if none)")
      ->expected(0, 1)
      ->default_str("-")
      ->option_text("[FILE]");
  score
      ->add_option("--imatrix", cl.score.imatrix,
                   "llama-imatrix file (GGUF or .dat) of a GGUF model: O-input statistics for wanda_sp "
                   "(fluctuation too when it holds in_sum)")
      ->option_text("FILE");
  score->add_option("--heatmap", cl.score.heatmap, "Write an SVG heatmap of the scores")->option_text("FILE");
  score->add_option("--preset", cl.score.preset, "Architecture preset JSON for an unknown model")
      ->option_text("FILE");
  score->add_flag("-q,--quiet", cl.score.quiet, "No progress on stderr");
  cl.score_cmd = score;

  CLI::App* prune = app.add_subcommand("prune", "Remove heads and write a smaller checkpoint");
  PruneArgs& p = cl.prune;
  detail::add_model_options(*prune, p);
  p.sparsity_option = detail::track(
      p.config, prune->add_option("--sparsity", p.config.sparsity, "Fraction of all heads to remove")
                    ->check(CLI::Range(0.0, 1.0))
                    ->option_text("R"));
  p.heads_option = prune
                       ->add_option("--heads", p.heads,
                                    "Heads to remove instead of a sparsity: LAYER:ID,ID;LAYER:ID (layer = "
                                    "block index in model order, ids = original head ids)")
                       ->option_text("SPEC");
  prune->get_option("--heads")->excludes(prune->get_option("--sparsity"));
  detail::add_selection_options(*prune, p.config);
  detail::add_criterion_options(*prune, p.config);
  prune
      ->add_option("--stats", p.stats,
                   "Calibration statistics (safetensors) for activation criteria and "
                   "compensation")
      ->option_text("FILE");
  prune
      ->add_option("--grads", p.grads,
                   "Gradients file (safetensors) for gradient, snip, snip_momentum, taylor and fisher")
      ->option_text("FILE");
  p.compensate_option = prune
                            ->add_option("--compensate", p.compensate,
                                         "Adjust the O projection for the removed heads (needs --stats "
                                         "unless none)")
                            ->check(CLI::Validator(
                                [](std::string& name) {
                                  try {
                                    mhaprune::parse_compensation(name);
                                    return std::string();
                                  } catch (const mhaprune::config_error& e) {
                                    return std::string(e.what());
                                  }
                                },
                                "METHOD"))
                            ->capture_default_str()
                            ->option_text(detail::bar_separated(mhaprune::compensation_names()));
  prune->add_option("--compensate-lambda", p.compensate_lambda, "Ridge of lsq/obs, relative to mean(diag G)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  prune
      ->add_option("--imatrix", p.imatrix,
                   "llama-imatrix file (GGUF or .dat) of a GGUF model: O-input statistics for wanda_sp "
                   "(fluctuation too when it holds in_sum)")
      ->option_text("FILE");
  prune->add_option("--imatrix-out", p.imatrix_out, "Write the pruned GGUF model's imatrix (needs --imatrix)")
      ->option_text("FILE");
  prune->add_option("--heatmap", p.heatmap, "Write an SVG heatmap of the scores and removed heads")
      ->option_text("FILE");
  detail::add_output_options(*prune, p, "Write the report JSON");
  prune->footer(
      "Give --sparsity, --heads or a --config with target_sparsity. Every PrunerConfig key is "
      "reachable through --config; flags given override it.");
  cl.prune_cmd = prune;
}

}  // namespace mhaprune_cli
