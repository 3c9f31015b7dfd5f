// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "attention_layer.hpp"
#include "calibration.hpp"
#include "mhaprune/calibration/activation_stats.hpp"
#include "mhaprune/compensation/compensate.hpp"
#include "mhaprune/compensation/targets.hpp"
#include "mhaprune/compensation/value_refit.hpp"
#include "mhaprune/pruner/config.hpp"
#include "mhaprune/selection/local_selection.hpp"
#include "token_batch.hpp"

namespace tiny_lm {

/// In which order heads are chosen and removed.
enum class RemovalOrder {
  /// All at once, scored and compensated with statistics of the unpruned model.
  one_shot,
  /// Layer by layer: each layer loses as many heads as in `one_shot`, but they are scored and
  /// compensated with statistics collected after the layers before it were pruned and compensated
  /// (as SparseGPT and Wanda do).
  sequential,
  /// As `sequential`, but each layer's O is refitted to what the UNPRUNED model had in the residual
  /// stream after that attention block, so that it also cancels the drift the layers before left
  /// (`mhaprune::remove_heads_to_targets`); layers that lose no heads are refitted too. Compensation
  /// none, bias, lsq or bias+lsq.
  sequential_targets,
  /// As `sequential_targets`, with the heads found by a search on the calibration NLL (search.hpp:
  /// PruneSettings::layer_heads, or with global scope at least layer_counts, must hold them).
  searched_targets,
  /// One policy step at a time (a head, or one per key/value group), re-scoring the shrunken blocks
  /// after each step; with criterion "obs" and compensation obs this is ZipLM's greedy structured OBS.
  greedy,
};

/// What to prune and how to make up for it.
struct PruneSettings {
  std::string criterion = "wanda_sp";  ///< a mhaprune::criterion_registry() name
  std::string scope = "local";         ///< "local" (same share per layer) or "global" (heads compete)
  double sparsity = 0.5;               ///< fraction of all attention heads removed
  std::uint64_t seed = 0;              ///< for "random"
  mhaprune::CompensationMethod compensation = mhaprune::CompensationMethod::none;
  RemovalOrder order = RemovalOrder::one_shot;
  /// sequential_targets only: heads to remove from each layer, instead of the counts the criterion's
  /// policy gives (see search.hpp, which finds them). Empty: the policy's.
  std::vector<Index> layer_counts;
  /// sequential_targets only: the original ids of the heads to remove from each layer, instead of
  /// choosing them (see search.hpp). Empty: chosen by the criterion. Overrides `layer_counts`.
  std::vector<std::vector<Index>> layer_heads;
  /// sequential_targets only: after each layer's removal, refit its kept heads' V and O together
  /// (`mhaprune::refit_values`), unless the compensation is none.
  bool refit_values = false;
};

/// What pruning may use, gathered from the calibration text once.
struct Calibration {
  TokenBatch batch;                                // the calibration sequences
  std::vector<mhaprune::ActivationStats> o_input;  // per layer, from the unpruned model
  std::vector<GateGradients> gate_gradients;       // per layer, from the training script
  std::vector<Matrix> original_residual;  // per layer, for sequential_targets (collect_attention_residuals)
};

namespace detail {

/// Taylor and Fisher accumulate gate gradients batch by batch (`update`, one row per batch); the file
/// holds their sums over the calibration sequences, which one pseudo-batch reproduces exactly:
/// Taylor sums |g| (so pass Σ|g|), Fisher sums g² (so pass sqrt(Σg²)).
inline void feed_gate_gradients(mhaprune::AnyCriterion& criterion,
                                const mhaprune::AttentionBlock<float>& block, const GateGradients& g) {
  const bool taylor = criterion.name() == "taylor", fisher = criterion.name() == "fisher";
  if (!taylor && !fisher) return;
  Eigen::RowVectorXd row(block.layout().heads());
  for (Index h = 0; h < row.size(); ++h) {
    const Index id = block.head_ids()[static_cast<std::size_t>(h)];
    row(h) = taylor ? g.abs_sum(id) : std::sqrt(g.sq_sum(id));
  }
  criterion.update(block, mhaprune::Evidence().with_gate_gradients(row));
}

/// The library only knows the bound tensors; a bias created by compensation is the layer's own, added
/// up over several removals from the same layer.
inline void keep_created_bias(AttentionLayer& a, const mhaprune::CompensationOutcome& outcome) {
  if (outcome.created_bias.size() == 0) return;
  const Vector shift = outcome.created_bias.cast<float>();
  a.o_bias = a.o_bias.size() > 0 ? Vector(a.o_bias + shift) : shift;
}

/// Removes the heads at `positions` of layer l, compensating from `o_input`; returns their original
/// ids. Qwen2 has no O bias: a bias shift the compensation creates is kept in the layer (the in-memory
/// model adds it), and added up over several removals from the same layer.
template <typename Model>
std::vector<Index> remove_layer_heads(Model& model, Index l, const std::vector<Index>& positions,
                                      const mhaprune::ActivationStats& o_input,
                                      mhaprune::CompensationMethod method) {
  AttentionLayer& a = model.attention(l);
  mhaprune::OriginalIds ids;
  for (Index p : positions) ids.ids.push_back(a.block.head_ids()[static_cast<std::size_t>(p)]);
  mhaprune::CompensationOptions options;
  options.method = method;
  const mhaprune::CompensationOutcome outcome =
      mhaprune::remove_heads_compensated(a.block, ids, o_input, options);
  keep_created_bias(a, outcome);
  return outcome.removed.heads;
}

/// Layer l's targets for RemovalOrder::sequential_targets: its O input (and with `with_attended` its
/// attended inputs) as the model is now, paired with what O should add to reach the unpruned model's
/// residual stream; for the last layer only at the positions the loss reads.
template <typename Model>
LayerTargets layer_targets(const Model& model, Index l, const Calibration& calibration, bool with_attended) {
  const AttentionLayer& a = model.attention(l);
  return collect_layer_targets(model, calibration.batch, l,
                               calibration.original_residual[static_cast<std::size_t>(l)],
                               a.o_bias_bound ? Vector() : a.o_bias, l == model.layers() - 1, with_attended);
}

}  // namespace detail

/// Removes `settings.sparsity` of the model's attention heads, in place: the library's criterion scores
/// every head, its local or global policy picks them (at least one head per layer, GQA groups kept
/// even), and each layer is compensated from statistics of its O input. Returns the removed original
/// head ids of each layer.
template <typename Model>
std::vector<std::vector<Index>> prune(Model& model, const PruneSettings& settings,
                                      const Calibration& calibration) {
  mhaprune::PrunerConfig config;
  config.criterion_type = settings.criterion;
  config.pruning_scope = mhaprune::parse_pruning_scope(settings.scope);
  config.target_sparsity = settings.sparsity;
  config.min_heads = 1;
  config.seed = settings.seed;
  auto pruner = mhaprune::make_pruner<float>(config);

  std::vector<mhaprune::AttentionBlock<float>*> blocks;
  mhaprune::EvidenceMap evidence;
  for (Index l = 0; l < model.layers(); ++l) {
    auto& block = model.attention(l).block;
    blocks.push_back(&block);
    evidence[block.name()].with_activations(calibration.o_input[static_cast<std::size_t>(l)]);
    detail::feed_gate_gradients(pruner.criterion(), block,
                                calibration.gate_gradients[static_cast<std::size_t>(l)]);
  }
  // Scores every block and lets the policy pick; the removal itself goes through the compensation.
  const auto select = [&](double target) {
    const std::vector<Eigen::VectorXd> scores = pruner.score(blocks, evidence);
    std::vector<mhaprune::BlockScores> summary;
    for (std::size_t l = 0; l < blocks.size(); ++l)
      summary.push_back(mhaprune::BlockScores::of(*blocks[l], scores[l]));
    return pruner.policy().select(summary, target, pruner.options());
  };
  std::vector<std::vector<Index>> removed(blocks.size());
  const auto remove = [&](Index l, const std::vector<Index>& positions,
                          const mhaprune::ActivationStats& o_input) {
    const auto ids = detail::remove_layer_heads(
        model, l, positions, current_channels(o_input, *blocks[static_cast<std::size_t>(l)]),
        settings.compensation);
    auto& list = removed[static_cast<std::size_t>(l)];
    list.insert(list.end(), ids.begin(), ids.end());
    std::sort(list.begin(), list.end());
  };

  switch (settings.order) {
    case RemovalOrder::one_shot: {
      const mhaprune::Selection chosen = select(settings.sparsity);
      for (Index l = 0; l < model.layers(); ++l)
        remove(l, chosen[static_cast<std::size_t>(l)], calibration.o_input[static_cast<std::size_t>(l)]);
      break;
    }
    case RemovalOrder::sequential: {
      const mhaprune::Selection one_shot = select(settings.sparsity);
      for (Index l = 0; l < model.layers(); ++l) {
        auto& block = *blocks[static_cast<std::size_t>(l)];
        const mhaprune::ActivationStats now = collect_o_input_stats(model, calibration.batch, l);
        mhaprune::EvidenceMap layer_evidence;
        layer_evidence[block.name()].with_activations(now);
        std::vector<mhaprune::AttentionBlock<float>*> one{&block};
        const Eigen::VectorXd scores = pruner.score(one, layer_evidence).front();
        const double share = static_cast<double>(one_shot[static_cast<std::size_t>(l)].size()) /
                             static_cast<double>(block.original_heads());
        remove(l,
               mhaprune::LocalSelection()
                   .select({mhaprune::BlockScores::of(block, scores)}, share, pruner.options())
                   .front(),
               now);
      }
      break;
    }
    case RemovalOrder::sequential_targets:
    case RemovalOrder::searched_targets: {
      if (calibration.original_residual.size() != static_cast<std::size_t>(model.layers()))
        throw std::invalid_argument("sequential-targets: Calibration::original_residual is not collected");
      std::vector<Index> counts = settings.layer_counts;
      if (!settings.layer_heads.empty()) {
        counts.clear();
        for (const auto& ids : settings.layer_heads) counts.push_back(static_cast<Index>(ids.size()));
      }
      if (counts.empty() && settings.order == RemovalOrder::searched_targets)
        throw std::invalid_argument(
            "searched-targets: PruneSettings::layer_counts is empty (see search.hpp)");
      if (counts.empty())
        for (const auto& chosen : select(settings.sparsity))
          counts.push_back(static_cast<Index>(chosen.size()));
      if (counts.size() != blocks.size())
        throw std::invalid_argument("sequential-targets: one head count per layer expected");
      mhaprune::CompensationOptions options;
      options.method = settings.compensation;
      for (Index l = 0; l < model.layers(); ++l) {
        auto& block = *blocks[static_cast<std::size_t>(l)];
        const Index count = counts[static_cast<std::size_t>(l)];
        const mhaprune::OutputTargets targets = detail::layer_targets(model, l, calibration, false).o_input;
        std::vector<Index> positions;
        if (!settings.layer_heads.empty()) {
          for (Index id : settings.layer_heads.at(static_cast<std::size_t>(l)))
            positions.push_back(block.position_of(id));
        } else if (count > 0 && settings.criterion == "obs") {
          // OBS with the targets as its objective: the heads whose removal the refit covers best.
          mhaprune::CompensationOptions ranking;
          ranking.method = settings.compensation == mhaprune::CompensationMethod::lsq
                               ? mhaprune::CompensationMethod::lsq
                               : mhaprune::CompensationMethod::bias_lsq;
          positions = mhaprune::cheapest_heads_to_remove(block, count, targets, ranking);
        } else if (count > 0) {
          // Scored on the layer's input as it is now, like `sequential`.
          mhaprune::EvidenceMap layer_evidence;
          layer_evidence[block.name()].with_activations(targets.inputs());
          std::vector<mhaprune::AttentionBlock<float>*> one{&block};
          const Eigen::VectorXd scores = pruner.score(one, layer_evidence).front();
          positions = mhaprune::LocalSelection()
                          .select({mhaprune::BlockScores::of(block, scores)},
                                  static_cast<double>(count) / static_cast<double>(block.original_heads()),
                                  pruner.options())
                          .front();
        }
        AttentionLayer& a = model.attention(l);
        const mhaprune::CompensationOutcome outcome =
            mhaprune::remove_heads_to_targets(block, mhaprune::Positions(positions), targets, options);
        detail::keep_created_bias(a, outcome);
        removed[static_cast<std::size_t>(l)] = outcome.removed.heads;
        if (settings.refit_values && settings.compensation != mhaprune::CompensationMethod::none) {
          // The kept heads' V and O together, on statistics of the pruned layer.
          const LayerTargets after = detail::layer_targets(model, l, calibration, true);
          detail::keep_created_bias(a, mhaprune::refit_values(block, after.o_input, *after.attended));
        }
        std::sort(removed[static_cast<std::size_t>(l)].begin(), removed[static_cast<std::size_t>(l)].end());
      }
      break;
    }
    case RemovalOrder::greedy: {
      Index total = 0;
      for (const auto* b : blocks) total += b->original_heads();
      const auto goal = static_cast<Index>(std::floor(settings.sparsity * static_cast<double>(total) + 1e-9));
      for (Index k = 1; k <= goal; ++k) {
        const mhaprune::Selection chosen = select(static_cast<double>(k) / static_cast<double>(total));
        for (Index l = 0; l < model.layers(); ++l)
          if (!chosen[static_cast<std::size_t>(l)].empty())
            remove(l, chosen[static_cast<std::size_t>(l)], calibration.o_input[static_cast<std::size_t>(l)]);
      }
      break;
    }
  }
  return removed;
}

}  // namespace tiny_lm
