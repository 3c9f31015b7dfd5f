// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <regex>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/criteria/registry.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/pruner/config.hpp"
#include "mhaprune/pruner/inc_config.hpp"
#include "mhaprune/selection/block_scores.hpp"
#include "mhaprune/selection/global_selection.hpp"
#include "mhaprune/selection/local_selection.hpp"

namespace mhaprune {

/// One config of a plan and the blocks it takes.
///
/// A block is taken when its name contains a match of one of `op_names` (every block when the list
/// is empty, as INC's `[".*"]`) and of none of `excluded_op_names`; `std::regex_search` with the
/// ECMAScript grammar, i.e. INC's `re.search` for the usual patterns. The names are the blocks' names:
/// `AttentionBlock::name()` for blocks in memory, a checkpoint's block names (`mhaprune inspect`
/// lists them: the attention module's prefix, e.g. "model.layers.3.self_attn", or "blk.3" in a GGUF
/// model). INC matches module names instead ("...self_attn.q_proj"): a pattern that names a whole
/// attention module's prefix matches the same layers.
struct PlanEntry {
  PrunerConfig config;
  std::vector<std::string> op_names;
  std::vector<std::string> excluded_op_names;

  /// Whether this config takes the block named `block_name`.
  bool takes(const std::string& block_name) const {
    const auto found = [&](const std::vector<std::string>& patterns) {
      for (const std::string& p : patterns)
        if (std::regex_search(block_name, std::regex(p))) return true;
      return false;
    };
    return (op_names.empty() || found(op_names)) && !found(excluded_op_names);
  }
};

/// A list of configs, each pruning its own group of blocks by its own settings: INC's
/// `pruning_configs`. A global-scope config ranks the heads of its group against each other only,
/// and its target is a fraction of its group's heads; a block no config takes is left alone; a block
/// two configs take is an error (`owners`). `PrunerConfig` stays the single-config type: a plan with
/// one config that takes every block is that config.
struct PruningPlan {
  std::vector<PlanEntry> configs;
  /// For the caller to show once: INC keys accepted and ignored (one message listing them all).
  std::vector<std::string> warnings;

  /// Whether the plan is one config taking every block (then `configs[0].config` says it all).
  bool is_single() const {
    return configs.size() == 1 && configs[0].op_names.empty() && configs[0].excluded_op_names.empty();
  }

  /// For each block name, the index of the config that takes it, or -1 when none does.
  /// @throws config_error naming the block and both configs (their index and op_names) when two
  ///         configs take one block.
  std::vector<std::ptrdiff_t> owners(const std::vector<std::string>& block_names) const {
    std::vector<std::ptrdiff_t> out(block_names.size(), -1);
    for (std::size_t b = 0; b < block_names.size(); ++b) {
      for (std::size_t k = 0; k < configs.size(); ++k) {
        if (!configs[k].takes(block_names[b])) continue;
        if (out[b] >= 0) {
          throw config_error(detail::message(
              "block \"", block_names[b], "\" is taken by pruning_configs[", out[b], "] (",
              describe(static_cast<std::size_t>(out[b])), ") and by pruning_configs[", k, "] (", describe(k),
              "); give each block to one config (op_names, excluded_op_names)"));
        }
        out[b] = static_cast<std::ptrdiff_t>(k);
      }
    }
    return out;
  }

  /// "op_names [a, b], excluded_op_names [c]" for config `k`, for messages.
  std::string describe(std::size_t k) const {
    const PlanEntry& e = configs.at(k);
    std::string s = "op_names [" + detail::joined(e.op_names) + "]";
    if (!e.excluded_op_names.empty())
      s += ", excluded_op_names [" + detail::joined(e.excluded_op_names) + "]";
    return s;
  }
};

/// Reads a config document into a plan: one config object, or INC's `{"pruning_configs": [...],
/// <global keys>}` where each local config inherits the global keys. Each config is read as
/// `config_from_json` reads one (INC's defaults and meaning where it has `pattern`), with
/// "pruning_configs[i]: " before the message of an error in local config i. Strong guarantee.
/// @throws config_error as `config_from_json`, and for a `pruning_configs` that is not a list of objects.
inline PruningPlan pruning_plan_from_json(const nlohmann::json& j,
                                          const CriterionRegistry& registry = criterion_registry()) {
  if (!j.is_object())
    throw config_error(detail::message("a pruner config must be a JSON object, got ", j.dump()));
  const std::vector<nlohmann::json> objects = detail::inc_local_objects(j);
  const bool listed = j.contains("pruning_configs") && !j.at("pruning_configs").empty();
  PruningPlan plan;
  std::vector<std::string> ignored;
  for (std::size_t i = 0; i < objects.size(); ++i) {
    detail::ReadConfig r = detail::read_config_object(
        objects[i], registry, listed ? detail::message("pruning_configs[", i, "]: ") : std::string());
    ignored.insert(ignored.end(), r.ignored_keys.begin(), r.ignored_keys.end());
    plan.configs.push_back(
        PlanEntry{std::move(r.config), std::move(r.op_names), std::move(r.excluded_op_names)});
  }
  const std::string w = detail::ignored_keys_warning(ignored);
  if (!w.empty()) plan.warnings.push_back(w);
  return plan;
}

/// The heads a plan removes: each config's policy (its scope, target and guards) chooses among the
/// blocks it takes, scored by that config's criterion.
///
/// @param plan    the configs
/// @param owners  `plan.owners(names)` of the blocks, one per block
/// @param scores  `scores[k]`: the blocks' scores under config k's criterion, one `BlockScores` per
///                block in model order (only the entries of the blocks config k takes are read; a
///                config that takes no block may have an empty list)
/// @returns for each block, the current positions to remove (empty for blocks no config takes)
/// @throws config_error when `owners` or a used `scores[k]` has the wrong length; what the policies
///         throw (`constraint_error` for an exact target that cannot be met, ...).
inline Selection select_by_plan(const PruningPlan& plan, const std::vector<std::ptrdiff_t>& owners,
                                const std::vector<std::vector<BlockScores>>& scores) {
  if (scores.size() != plan.configs.size()) {
    throw config_error(detail::message("select_by_plan(): ", scores.size(), " score lists for ",
                                       plan.configs.size(), " configs"));
  }
  Selection out(owners.size());
  for (std::size_t k = 0; k < plan.configs.size(); ++k) {
    std::vector<BlockScores> group;
    std::vector<std::size_t> where;
    for (std::size_t b = 0; b < owners.size(); ++b) {
      if (owners[b] != static_cast<std::ptrdiff_t>(k)) continue;
      if (scores[k].size() != owners.size()) {
        throw config_error(detail::message("select_by_plan(): config ", k, " has scores for ",
                                           scores[k].size(), " blocks, the plan places ", owners.size()));
      }
      group.push_back(scores[k][b]);
      where.push_back(b);
    }
    if (group.empty()) continue;
    const PrunerConfig& c = plan.configs[k].config;
    const SelectionOptions o = c.selection_options();
    const Selection chosen = c.pruning_scope == PruningScope::local
                                 ? LocalSelection{}.select(group, c.target_sparsity, o)
                                 : GlobalSelection{}.select(group, c.target_sparsity, o);
    for (std::size_t g = 0; g < where.size(); ++g) out[where[g]] = chosen[g];
  }
  return out;
}

}  // namespace mhaprune
