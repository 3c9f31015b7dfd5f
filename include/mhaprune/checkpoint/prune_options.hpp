// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "mhaprune/calibration/activation_stats.hpp"
#include "mhaprune/compensation/method.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/pruner/config.hpp"

namespace mhaprune::io {
class GradientsFile;
}  // namespace mhaprune::io

namespace mhaprune::checkpoint {

/// Where a long call is: `stage` "score" (reading and scoring blocks) or "write" (writing the
/// pruned checkpoint); `done` of `total` blocks, `block` the one just finished.
struct Progress {
  std::string stage;
  std::size_t done = 0, total = 0;
  std::string block;
};

/// What `score_checkpoint` and `prune_checkpoint` do.
struct PruneOptions {
  /// Criterion, scope ("global": one ranking over every block, "local": each block alone), target
  /// sparsity (a fraction of the ORIGINAL heads, cumulative over earlier prunings), guards.
  PrunerConfig config;
  /// Instead of a sparsity: block index (model order) → ORIGINAL ids of the query heads to remove.
  std::optional<std::map<Index, std::vector<Index>>> explicit_heads;
  /// O-input statistics keyed by P (the O weight's name minus ".weight"), for criteria that need
  /// activations (wanda_sp, fluctuation, obs) and for compensation. Must outlive the call.
  const std::map<std::string, ActivationStats>* stats = nullptr;
  /// Gradient evidence for gradient, snip, snip_momentum, taylor and fisher (`io/gradients_file.hpp`;
  /// scored as `score_with_gradients` does); checked against every block before any is read. Must
  /// outlive the call. Checkpoints only (not read by the GGUF path).
  const io::GradientsFile* gradients = nullptr;
  /// How kept heads make up for removed ones (method none by default).
  CompensationOptions compensation;
  /// Called after each block of each stage; may be empty.
  std::function<void(const Progress&)> progress;
  /// Replace an existing output directory.
  bool overwrite = false;
  /// fsync every file and directory before the final rename.
  bool durable = true;
};

}  // namespace mhaprune::checkpoint
