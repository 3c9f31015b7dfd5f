// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// tiny_lm: mhaprune inside a small inference program. It loads a trained transformer from safetensors,
// measures its held-out NLL, calibrates on other text, removes attention heads in place with a
// criterion of the library, compensates the heads that stay, and measures again.
//
//   mhaprune_tiny_lm --model tests/data/tiny-qwen2 --criterion wanda_sp --sparsity 0.5 --compensate lsq
//   mhaprune_tiny_lm --model tests/data/tiny-bert --check     # unpruned NLL vs the training script's

#include <CLI/CLI.hpp>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>

#include "bert.hpp"
#include "calibration.hpp"
#include "evaluate.hpp"
#include "mhaprune/io/stats_file.hpp"
#include "prune.hpp"
#include "qwen2.hpp"
#include "search.hpp"

namespace {

struct Options {
  std::string model_dir;
  tiny_lm::PruneSettings prune;
  std::string order = "one-shot";  // as given, for the printout
  bool check = false;              // only compare the unpruned NLL with the reference
  std::string write_stats;         // where to save the calibration statistics, for `mhaprune --stats`
};

template <typename Model>
int run(const Options& options) {
  using namespace tiny_lm;
  const std::string& dir = options.model_dir;

  // 1. Load. Each layer's Q/K/V/O weights are Eigen matrices bound into a mhaprune::AttentionBlock.
  Model model(dir);
  const TokenBatch heldout = Model::batch(read_sequences(dir + "/text/heldout.txt"));

  // 2. The unpruned model, against the NLL the training script computed in float64.
  const double reference = read_json(dir + "/reference_nll.json").at("nll_float64").get<double>();
  const Nll unpruned = evaluate(model, heldout);
  std::printf("%s: held-out NLL %.6f nats (%ld predictions), reference %.6f, |difference| %.2e\n",
              dir.c_str(), unpruned.mean, static_cast<long>(unpruned.predictions), reference,
              std::abs(unpruned.mean - reference));
  if (options.check) return std::abs(unpruned.mean - reference) <= 1e-4 ? 0 : 1;

  // 3. Calibrate on text disjoint from the held-out text: O-input statistics of every layer, and the
  //    head-gate gradients the training script saved (for taylor / fisher).
  Calibration calibration;
  calibration.batch = Model::batch(read_sequences(dir + "/text/calibration.txt"));
  calibration.o_input = collect_o_input_stats(model, calibration.batch);
  calibration.gate_gradients = read_gate_gradients(model, dir + "/head_gate_grads.safetensors");
  if (options.prune.order == RemovalOrder::sequential_targets ||
      options.prune.order == RemovalOrder::searched_targets)
    calibration.original_residual = collect_attention_residuals(model, calibration.batch);
  PruneSettings settings = options.prune;
  if (settings.order == RemovalOrder::searched_targets) {
    if (settings.scope == "global")
      settings.layer_counts = search_layer_counts<Model>(dir, settings, calibration);
    settings.layer_heads = search_layer_heads<Model>(dir, settings, calibration);
  }
  if (!options.write_stats.empty()) {
    // The statistics file other engines can write too, so the `mhaprune` tool can prune the
    // checkpoint with activation criteria and compensation without running the model itself.
    std::map<std::string, mhaprune::ActivationStats> by_key;
    for (Index l = 0; l < model.layers(); ++l)
      by_key.emplace(Model::stats_key(l), calibration.o_input[static_cast<std::size_t>(l)]);
    mhaprune::io::write_stats_file(options.write_stats, by_key);
    std::printf("calibration statistics of %ld layers written to %s\n", static_cast<long>(model.layers()),
                options.write_stats.c_str());
  }

  // 4. Prune and compensate, in place.
  const auto removed = prune(model, settings, calibration);

  // 5. The pruned model.
  const Nll pruned = evaluate(model, heldout);
  for (Index l = 0; l < model.layers(); ++l) {
    const auto& block = model.attention(l).block;
    std::printf("  %s: %ld heads kept, removed original heads {", block.name().c_str(),
                static_cast<long>(block.layout().heads()));
    for (Index id : removed[static_cast<std::size_t>(l)]) std::printf(" %ld", static_cast<long>(id));
    std::printf(" }\n");
  }
  std::printf("pruned (%s, %s, %.0f%% of heads, compensation %s, %s): held-out NLL %.6f (%+.6f +- %.6f)\n",
              options.prune.criterion.c_str(), options.prune.scope.c_str(), 100.0 * options.prune.sparsity,
              std::string(mhaprune::to_string(options.prune.compensation)).c_str(), options.order.c_str(),
              pruned.mean, pruned.mean - unpruned.mean, paired_standard_error(pruned, unpruned));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Options options;
  options.model_dir = TINY_LM_DATA_DIR "/tiny-qwen2";
  std::string compensation = "none";
  CLI::App app{"tiny_lm: prune the attention heads of a small trained transformer and measure the cost"};
  app.add_option("--model", options.model_dir, "checkpoint directory (tests/data/tiny-qwen2 or tiny-bert)");
  app.add_option("--criterion", options.prune.criterion, "head-importance criterion (a registry name)");
  app.add_option("--scope", options.prune.scope, "local | global")->check(CLI::IsMember({"local", "global"}));
  app.add_option("--sparsity", options.prune.sparsity, "fraction of heads removed")
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--seed", options.prune.seed, "seed of the random criterion");
  app.add_option("--compensate", compensation, "none | bias | scale | lsq | obs | bias+lsq");
  app.add_option(
         "--order", options.order,
         "one-shot | sequential (collect each layer's statistics after pruning the ones before) | "
         "sequential-targets (as sequential, and refit each layer to the unpruned model's residual stream; "
         "compensation none, bias, lsq or bias+lsq) | search (as sequential-targets, with the heads per "
         "layer found by "
         "a greedy search on the calibration NLL; global scope) | greedy (one step at a time, re-scoring in "
         "between)")
      ->check(CLI::IsMember({"one-shot", "sequential", "sequential-targets", "search", "greedy"}));
  app.add_flag("--refit-values", options.prune.refit_values,
               "sequential-targets and search: also refit the kept heads' V with O (mhaprune::refit_values)");
  app.add_flag("--check", options.check,
               "only check the unpruned NLL against reference_nll.json (exit 1 if > 1e-4)");
  app.add_option("--write-stats", options.write_stats,
                 "also save the O-input statistics of the calibration text as a calibration statistics "
                 "file (for `mhaprune prune --stats`)");
  CLI11_PARSE(app, argc, argv);

  try {
    options.prune.compensation = mhaprune::parse_compensation(compensation);
    options.prune.order = options.order == "sequential"           ? tiny_lm::RemovalOrder::sequential
                          : options.order == "sequential-targets" ? tiny_lm::RemovalOrder::sequential_targets
                          : options.order == "search"             ? tiny_lm::RemovalOrder::searched_targets
                          : options.order == "greedy"             ? tiny_lm::RemovalOrder::greedy
                                                                  : tiny_lm::RemovalOrder::one_shot;
    const auto type =
        tiny_lm::read_json(options.model_dir + "/config.json").at("model_type").get<std::string>();
    if (type == "qwen2") return run<tiny_lm::Qwen2>(options);
    if (type == "bert") return run<tiny_lm::Bert>(options);
    std::fprintf(stderr, "%s: model_type \"%s\" is not qwen2 or bert\n", options.model_dir.c_str(),
                 type.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
  }
  return 2;
}
