// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

#include "mhaprune/error.hpp"

// Intel Neural Compressor's pruning configs, as `config_from_json` and `pruning_plan_from_json` read
// them: the keys INC knows and what mhaprune makes of each, and INC's layout of a config (one object,
// or global keys plus a `pruning_configs` list of local objects that inherit them).
namespace mhaprune {

/// What mhaprune does with one key of an INC pruning config.
enum class IncKeyUse {
  honoured,              ///< the same meaning as in INC's MHA pruner
  honoured_differently,  ///< read, with the difference `IncKey::how` says
  ignored,               ///< accepted (INC's MHA path accepts it too) and ignored, with one warning
};

/// One key of an INC pruning config.
struct IncKey {
  const char* name;
  IncKeyUse use;
  const char* how;  ///< for the README's table and the warning
};

/// Every key INC's `WeightPruningConfig` knows for a local or global pruning config, and what mhaprune
/// does with it. Keys INC and mhaprune share keep INC's meaning when the config names a `pattern`.
inline const std::vector<IncKey>& inc_keys() {
  static const std::vector<IncKey> keys{
      {"pattern", IncKeyUse::honoured_differently,
       "must be \"mha\" (mhaprune prunes attention heads); its presence selects INC's defaults"},
      {"target_sparsity", IncKeyUse::honoured,
       "fraction of the heads of the config's blocks; INC default 0.9"},
      {"pruning_scope", IncKeyUse::honoured, "global or local; INC default global"},
      {"criterion_type", IncKeyUse::honoured,
       "any criterion of mhaprune's registry; INC default snip_momentum (needs gradients)"},
      {"criterion_reduce_type", IncKeyUse::honoured,
       "mean, sum, max (broken in INC) or l2; INC default mean"},
      {"sparsity_decay_type", IncKeyUse::honoured, "linear, cube, cos, exp; INC default exp"},
      {"start_step", IncKeyUse::honoured, "INC default 0"},
      {"end_step", IncKeyUse::honoured, "INC default 0 (start == end: one-shot)"},
      {"pruning_frequency", IncKeyUse::honoured, "INC default 1"},
      {"max_sparsity_ratio_per_op", IncKeyUse::honoured_differently,
       "as INC's MHA path: caps an iterative schedule's target (INC default 0.98), not a block's loss"},
      {"op_names", IncKeyUse::honoured_differently,
       "regexes searched in block names (AttentionBlock::name(), a checkpoint's block names), not "
       "module names"},
      {"excluded_op_names", IncKeyUse::honoured_differently,
       "regexes searched in block names; a matching block is left out"},
      {"pruning_type", IncKeyUse::ignored, "INC's MHA pruner does not read it"},
      {"min_sparsity_ratio_per_op", IncKeyUse::ignored, "INC's MHA path does not read it"},
      {"pruning_op_types", IncKeyUse::ignored, "mhaprune prunes attention blocks"},
      {"low_memory_usage", IncKeyUse::ignored, "no training-time state to trade"},
      {"lock_init_sparsity", IncKeyUse::ignored, "mhaprune starts from the block's current heads"},
      {"resume_from_pruned_checkpoint", IncKeyUse::ignored, "earlier removals are read from the model"},
      {"reg_type", IncKeyUse::ignored, "no regularisation"},
      {"reg_coeff", IncKeyUse::ignored, "no regularisation"},
      {"parameters", IncKeyUse::ignored, "INC's per-pruner extras (reg_coeff)"},
  };
  return keys;
}

/// The entry of `name` in `inc_keys()`, or nullptr.
inline const IncKey* find_inc_key(std::string_view name) {
  for (const IncKey& k : inc_keys())
    if (name == k.name) return &k;
  return nullptr;
}

namespace detail {

/// Levenshtein distance (insertions, deletions, substitutions), for "did you mean".
inline std::size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diagonal = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = up;
    }
  }
  return row[b.size()];
}

/// The candidate nearest `key`: among the candidates that contain `key` or are contained in it (a
/// shortened or lengthened key, "gqa" for "gqa_mode"), else among all, the one at the least edit
/// distance (the first of equals); "" when there are none.
inline std::string closest_name(std::string_view key, const std::vector<std::string>& candidates) {
  const auto related = [&](const std::string& c) {
    return !key.empty() && (c.find(key) != std::string::npos || key.find(c) != std::string_view::npos);
  };
  const bool any_related = std::any_of(candidates.begin(), candidates.end(), related);
  std::string best;
  std::size_t best_distance = 0;
  for (const std::string& c : candidates) {
    if (any_related && !related(c)) continue;
    const std::size_t d = edit_distance(key, c);
    if (best.empty() || d < best_distance) {
      best = c;
      best_distance = d;
    }
  }
  return best;
}

/// INC's layout: `j` itself, or, when it has `pruning_configs`, one object per local config with the
/// global keys (every key of `j` but `pruning_configs`) under its own; a local key set to null takes
/// the global value, as in INC. An empty list is one config of the global keys.
/// @throws config_error when `pruning_configs` is not a list of objects, or a local config has its own.
inline std::vector<nlohmann::json> inc_local_objects(const nlohmann::json& j) {
  if (!j.contains("pruning_configs")) return {j};
  const nlohmann::json& list = j.at("pruning_configs");
  if (!list.is_array()) {
    throw config_error(
        message("config key \"pruning_configs\": expected a list of config objects, got ", list.dump()));
  }
  nlohmann::json global = j;
  global.erase("pruning_configs");
  if (list.empty()) return {global};
  std::vector<nlohmann::json> out;
  for (std::size_t i = 0; i < list.size(); ++i) {
    const nlohmann::json& local = list[i];
    if (!local.is_object()) {
      throw config_error(message("pruning_configs[", i, "]: expected a config object, got ", local.dump()));
    }
    if (local.contains("pruning_configs"))
      throw config_error(message("pruning_configs[", i, "]: a local config cannot hold pruning_configs"));
    nlohmann::json merged = global;
    for (const auto& item : local.items())
      if (!item.value().is_null()) merged[item.key()] = item.value();
    out.push_back(std::move(merged));
  }
  return out;
}

}  // namespace detail
}  // namespace mhaprune
