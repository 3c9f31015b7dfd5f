// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "mhaprune/checkpoint/preset.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/version.hpp"

namespace mhaprune::checkpoint {

/// One block of a pruned checkpoint, as its config.json records it.
struct PrunedLayer {
  std::string name;
  Index layer = 0;
  Index heads = 0, kv_heads = 0;
  std::vector<Index> head_ids, kv_head_ids;  ///< original ids kept, ascending
};

/// What `output_config` needs beyond the blocks.
struct OutputConfigInput {
  Index original_heads = 0, original_kv_heads = 0, head_dim = 0;
  /// Set the preset's `output_bias_key` (LLaMA's `attention_bias`) to true: every block now has
  /// q/k/v/o biases.
  bool enable_output_bias = false;
};

namespace detail {
inline std::vector<Index> missing_ids(Index n, const std::vector<Index>& kept) {
  std::vector<Index> out;
  for (Index h = 0; h < n; ++h)
    if (!std::binary_search(kept.begin(), kept.end(), h)) out.push_back(h);
  return out;
}
}  // namespace detail

/// The config.json of a pruned checkpoint: `config` with
///
/// - always, a `mhaprune` section: {"version", "original_num_attention_heads",
///   "original_num_key_value_heads", "head_dim", "layers": [{"name", "layer", "num_attention_heads",
///   "num_key_value_heads", "head_ids" (original ids kept), "removed_heads", "removed_kv_heads"
///   (original ids, cumulative over every pruning)}, ...]} covering every block, pruned or not;
/// - for `ConfigUpdate::pruned_heads` (BERT, RoBERTa, ViT, GPT-2), Hugging Face's `pruned_heads`
///   {"<layer>": [original ids]}, merged with the entries already there; head counts untouched
///   (the loader builds full layers from them and prunes them again);
/// - for `ConfigUpdate::counts` (LLaMA, Mistral, Qwen2), `num_attention_heads`,
///   `num_key_value_heads` and `head_dim` set to the common counts when every block has the same;
///   when blocks differ no single count is right, so they are the unpruned model's counts (as in
///   the input, unless an earlier uniform pruning had changed them) and only the section tells;
/// - for `ConfigUpdate::none` (GPT-NeoX, user presets by default), only the section;
/// - the preset's `output_bias_key` set to true when `enable_output_bias`.
inline nlohmann::json output_config(const nlohmann::json& config, const ArchitecturePreset& preset,
                                    const std::vector<PrunedLayer>& layers, const OutputConfigInput& in) {
  nlohmann::json out = config.is_object() ? config : nlohmann::json::object();
  nlohmann::json section = nlohmann::json::object();
  section["version"] = MHAPRUNE_VERSION_STRING;
  section["original_num_attention_heads"] = in.original_heads;
  section["original_num_key_value_heads"] = in.original_kv_heads;
  section["head_dim"] = in.head_dim;
  nlohmann::json list = nlohmann::json::array();
  for (const auto& l : layers) {
    list.push_back({{"name", l.name},
                    {"layer", l.layer},
                    {"num_attention_heads", l.heads},
                    {"num_key_value_heads", l.kv_heads},
                    {"head_ids", l.head_ids},
                    {"removed_heads", detail::missing_ids(in.original_heads, l.head_ids)},
                    {"removed_kv_heads", detail::missing_ids(in.original_kv_heads, l.kv_head_ids)}});
  }
  section["layers"] = std::move(list);
  out["mhaprune"] = std::move(section);

  if (preset.config_update == ConfigUpdate::pruned_heads) {
    nlohmann::json pruned = out.contains("pruned_heads") && out["pruned_heads"].is_object()
                                ? out["pruned_heads"]
                                : nlohmann::json::object();
    for (const auto& l : layers) {
      const std::string key = std::to_string(l.layer);
      std::set<Index> ids;
      if (pruned.contains(key) && pruned[key].is_array())
        for (const auto& v : pruned[key])
          if (v.is_number_integer()) ids.insert(v.get<Index>());
      for (Index id : detail::missing_ids(in.original_heads, l.head_ids)) ids.insert(id);
      if (!ids.empty()) pruned[key] = std::vector<Index>(ids.begin(), ids.end());
    }
    out["pruned_heads"] = std::move(pruned);
  } else if (preset.config_update == ConfigUpdate::counts && !layers.empty()) {
    const bool uniform = std::all_of(layers.begin(), layers.end(), [&](const PrunedLayer& l) {
      return l.heads == layers.front().heads && l.kv_heads == layers.front().kv_heads;
    });
    const std::string heads_key =
        preset.heads_keys.empty() ? "num_attention_heads" : preset.heads_keys.front();
    const std::string kv_key =
        preset.kv_heads_keys.empty() ? "num_key_value_heads" : preset.kv_heads_keys.front();
    out[heads_key] = uniform ? layers.front().heads : in.original_heads;
    out[kv_key] = uniform ? layers.front().kv_heads : in.original_kv_heads;
    if (!preset.head_dim_key.empty()) out[preset.head_dim_key] = in.head_dim;
  }
  if (in.enable_output_bias && !preset.output_bias_key.empty()) out[preset.output_bias_key] = true;
  return out;
}

}  // namespace mhaprune::checkpoint
