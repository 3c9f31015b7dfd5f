// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "evaluate.hpp"
#include "prune.hpp"

namespace tiny_lm {

/// How many heads each layer loses, found by a greedy search on the CALIBRATION NLL: starting from
/// none, each step removes one more head (one per key/value group under grouped-query attention) from
/// the layer where that costs least, each candidate pruned and refitted as RemovalOrder::
/// sequential_targets would (heads within a layer chosen by the criterion). Ties go to the lower
/// layer. Global scope only: local scope fixes the counts. Never looks at held-out text.
///
/// Cost: about layers × steps pruning runs, each a few forward passes over the calibration text.
template <typename Model>
std::vector<Index> search_layer_counts(const std::string& dir, const PruneSettings& settings,
                                       const Calibration& calibration) {
  const Model shape(dir);
  Index total = 0;
  std::vector<Index> step(static_cast<std::size_t>(shape.layers())), heads(step.size());
  for (Index l = 0; l < shape.layers(); ++l) {
    const auto& L = shape.attention(l).block.layout();
    heads[static_cast<std::size_t>(l)] = L.heads();
    step[static_cast<std::size_t>(l)] = L.group_size() == 1 ? 1 : L.kv_heads();
    total += L.heads();
  }
  const auto goal = static_cast<Index>(std::floor(settings.sparsity * static_cast<double>(total) + 1e-9));
  PruneSettings trial = settings;
  trial.order = RemovalOrder::sequential_targets;
  std::vector<Index> counts(step.size(), 0);
  for (Index removed = 0;;) {
    Index best = -1;
    double best_nll = 0.0;
    for (std::size_t l = 0; l < counts.size(); ++l) {
      // At least one head per key/value group stays, and the goal is not overshot.
      if (counts[l] + step[l] > heads[l] - step[l] || removed + step[l] > goal) continue;
      trial.layer_counts = counts;
      trial.layer_counts[l] += step[l];
      Model model(dir);
      prune(model, trial, calibration);
      const double nll = evaluate(model, calibration.batch).mean;
      if (best < 0 || nll < best_nll) best = static_cast<Index>(l), best_nll = nll;
    }
    if (best < 0) break;
    counts[static_cast<std::size_t>(best)] += step[static_cast<std::size_t>(best)];
    removed += step[static_cast<std::size_t>(best)];
  }
  return counts;
}

/// Which heads each layer loses: starting from what `settings` removes as RemovalOrder::
/// sequential_targets (with `settings.layer_counts` when set), one pass of coordinate descent on the
/// CALIBRATION NLL, layer by layer: every swap of one removed head for one kept head of the same
/// key/value group is tried, with the other layers' heads fixed and every layer refitted again, and
/// the best swap is kept when it lowers the NLL. Never looks at held-out text.
///
/// Cost: per layer, removed × kept-in-group pruning runs.
template <typename Model>
std::vector<std::vector<Index>> search_layer_heads(const std::string& dir, const PruneSettings& settings,
                                                   const Calibration& calibration) {
  PruneSettings trial = settings;
  trial.order = RemovalOrder::sequential_targets;
  trial.layer_heads.clear();
  const auto nll_of = [&](Model& model) { return evaluate(model, calibration.batch).mean; };
  std::vector<std::vector<Index>> plan;
  double best_nll = 0.0;
  Index original_heads = 0, group = 1;
  {
    Model model(dir);
    original_heads = model.attention(0).block.original_heads();
    group = original_heads / model.attention(0).block.original_kv_heads();
    plan = prune(model, trial, calibration);
    best_nll = nll_of(model);
  }
  if (group == 1) group = original_heads;  // multi-head attention: any head may take any head's place
  for (std::size_t l = 0; l < plan.size(); ++l) {
    std::vector<Index> best_layer = plan[l];
    for (Index out : plan[l]) {
      for (Index in = (out / group) * group; in < (out / group + 1) * group; ++in) {
        if (std::find(plan[l].begin(), plan[l].end(), in) != plan[l].end()) continue;
        trial.layer_heads = plan;
        auto& ids = trial.layer_heads[l];
        std::replace(ids.begin(), ids.end(), out, in);
        std::sort(ids.begin(), ids.end());
        Model model(dir);
        prune(model, trial, calibration);
        const double nll = nll_of(model);
        if (nll < best_nll) best_nll = nll, best_layer = ids;
      }
    }
    plan[l] = best_layer;
  }
  return plan;
}

}  // namespace tiny_lm
