// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/checkpoint/preset.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune::checkpoint {

/// The head counts of the unpruned model, as config.json (or a user preset) gives them.
struct HeadCounts {
  Index heads = 0;
  Index kv_heads = 0;
  std::optional<Index> head_dim;  ///< explicit `head_dim`; else hidden / heads
  std::optional<Index> hidden;    ///< `hidden_size` / `n_embd`, when given
};

/// The heads one block still has after earlier pruning, by original id.
struct LayerRecord {
  Index heads = 0;
  Index kv_heads = 0;
  std::vector<Index> head_ids;     ///< ascending
  std::vector<Index> kv_head_ids;  ///< ascending
};

/// What an earlier pruning left in config.json: mhaprune's own section, or Hugging Face's
/// `pruned_heads` for a family that uses it.
struct PruneHistory {
  Index original_heads = 0;
  Index original_kv_heads = 0;
  std::optional<Index> head_dim;
  std::map<std::string, LayerRecord> by_block;  ///< from a `mhaprune` section, by block name
  std::map<Index, LayerRecord> by_layer;        ///< from `pruned_heads`, by layer number
  std::string source;                           ///< "mhaprune section" or "pruned_heads", for messages
};

namespace detail {

inline std::optional<Index> config_count(const nlohmann::json& config, const std::vector<std::string>& keys,
                                         std::string* found = nullptr) {
  if (!config.is_object()) return std::nullopt;
  for (const auto& key : keys) {
    const auto it = config.find(key);
    if (it == config.end() || it->is_null()) continue;
    if (!it->is_number_integer() || it->get<long long>() <= 0) {
      throw preset_error(mhaprune::detail::message("config.json: \"", key,
                                                   "\" must be a positive integer, got ", it->dump()));
    }
    if (found) *found = key;
    return static_cast<Index>(it->get<long long>());
  }
  return std::nullopt;
}

inline std::vector<Index> id_list(const nlohmann::json& j, const std::string& where) {
  if (!j.is_array())
    throw preset_error(mhaprune::detail::message(where, " must be a list of head ids, got ", j.dump()));
  std::vector<Index> out;
  for (const auto& v : j) {
    if (!v.is_number_integer() || v.get<long long>() < 0) {
      throw preset_error(mhaprune::detail::message(where, " holds ", v.dump(), ", not a head id"));
    }
    out.push_back(static_cast<Index>(v.get<long long>()));
  }
  return out;
}

// The ids of [0, n) not in `removed`, which must be distinct and in range.
inline std::vector<Index> complement(Index n, const std::vector<Index>& removed, const std::string& where) {
  std::vector<char> gone(static_cast<std::size_t>(n), 0);
  for (Index id : removed) {
    if (id >= n)
      throw preset_error(mhaprune::detail::message(where, ": head id ", id, " is outside [0, ", n, ")"));
    if (gone[static_cast<std::size_t>(id)]) {
      throw preset_error(mhaprune::detail::message(where, ": head id ", id, " is listed twice"));
    }
    gone[static_cast<std::size_t>(id)] = 1;
  }
  std::vector<Index> kept;
  for (Index h = 0; h < n; ++h)
    if (!gone[static_cast<std::size_t>(h)]) kept.push_back(h);
  return kept;
}

}  // namespace detail

/// The model's head counts: the preset's fixed counts, else config.json's keys (see
/// `ArchitecturePreset`), else the original counts of its `mhaprune` section; key/value heads
/// default to the query heads.
/// @throws preset_error when the query head count is nowhere, or a value is not a positive integer.
inline HeadCounts read_head_counts(const nlohmann::json& config, const ArchitecturePreset& preset) {
  HeadCounts c;
  auto heads = preset.heads ? preset.heads : detail::config_count(config, preset.heads_keys);
  // A checkpoint mhaprune wrote without a config.json of its own still has its section.
  const auto section = config.is_object() ? config.find("mhaprune") : config.end();
  const bool has_section = config.is_object() && section != config.end() && section->is_object();
  if (!heads && has_section) heads = detail::config_count(*section, {"original_num_attention_heads"});
  if (!heads) {
    std::string keys;
    for (const auto& k : preset.heads_keys) keys += (keys.empty() ? "\"" : ", \"") + k + "\"";
    // Without a config.json (an empty object here) the head count is nowhere to be found.
    const bool no_config = !config.is_object() || config.empty();
    throw preset_error(mhaprune::detail::message(
        no_config ? "no config.json" : "config.json", ": no head count for architecture \"", preset.name,
        "\" (expected ", keys.empty() ? "a count in the preset" : keys, ")",
        no_config ? "; add a config.json, or a --preset with \"num_attention_heads\"" : ""));
  }
  c.heads = *heads;
  auto kv = preset.kv_heads ? preset.kv_heads : detail::config_count(config, preset.kv_heads_keys);
  if (!kv && has_section) kv = detail::config_count(*section, {"original_num_key_value_heads"});
  c.kv_heads = kv ? *kv : c.heads;
  c.head_dim = preset.head_dim;
  if (!c.head_dim && !preset.head_dim_key.empty())
    c.head_dim = detail::config_count(config, {preset.head_dim_key});
  c.hidden = detail::config_count(config, preset.hidden_keys);
  if (c.heads % c.kv_heads != 0) {
    throw preset_error(mhaprune::detail::message(
        "config.json: ", c.heads, " attention heads do not split into ", c.kv_heads, " key/value groups"));
  }
  return c;
}

/// The earlier pruning recorded in config.json, if any: the `mhaprune` section (preferred) or, for
/// a family whose loader uses it, Hugging Face's `pruned_heads`.
///
/// `mhaprune` section: {"version", "original_num_attention_heads", "original_num_key_value_heads",
/// "head_dim", "layers": [{"name", "num_attention_heads", "num_key_value_heads", "head_ids",
/// "removed_heads", "removed_kv_heads"}, ...]}.
/// @throws preset_error for a malformed section (missing keys, ids out of range or repeated,
///         counts disagreeing with the ids).
inline std::optional<PruneHistory> read_prune_history(const nlohmann::json& config,
                                                      const ArchitecturePreset& preset,
                                                      const HeadCounts& counts) {
  if (!config.is_object()) return std::nullopt;
  if (const auto it = config.find("mhaprune"); it != config.end()) {
    const nlohmann::json& s = *it;
    const auto fail = [](auto&&... parts) {
      return preset_error(mhaprune::detail::message("config.json \"mhaprune\" section: ",
                                                    std::forward<decltype(parts)>(parts)...));
    };
    if (!s.is_object() || !s.contains("layers") || !s.at("layers").is_array()) {
      throw fail("must be an object with a \"layers\" list");
    }
    PruneHistory h;
    h.source = "mhaprune section";
    h.original_heads = detail::config_count(s, {"original_num_attention_heads"}).value_or(counts.heads);
    h.original_kv_heads =
        detail::config_count(s, {"original_num_key_value_heads"}).value_or(h.original_heads);
    h.head_dim = detail::config_count(s, {"head_dim"});
    for (const auto& layer : s.at("layers")) {
      if (!layer.is_object() || !layer.contains("name") || !layer.at("name").is_string()) {
        throw fail("every layer needs a \"name\", got ", layer.dump());
      }
      const std::string name = layer.at("name").get<std::string>();
      const std::string where = mhaprune::detail::message("config.json \"mhaprune\" layer \"", name, "\"");
      if (!layer.contains("removed_heads")) throw fail("layer \"", name, "\" has no \"removed_heads\"");
      LayerRecord r;
      r.head_ids = detail::complement(h.original_heads,
                                      detail::id_list(layer.at("removed_heads"), where + " removed_heads"),
                                      where + " removed_heads");
      const auto removed_kv = layer.contains("removed_kv_heads")
                                  ? detail::id_list(layer.at("removed_kv_heads"), where + " removed_kv_heads")
                                  : std::vector<Index>{};
      r.kv_head_ids = detail::complement(h.original_kv_heads, removed_kv, where + " removed_kv_heads");
      r.heads = static_cast<Index>(r.head_ids.size());
      r.kv_heads = static_cast<Index>(r.kv_head_ids.size());
      if (layer.contains("head_ids") &&
          detail::id_list(layer.at("head_ids"), where + " head_ids") != r.head_ids) {
        throw fail("layer \"", name, "\": \"head_ids\" is not the complement of \"removed_heads\"");
      }
      const auto stated = detail::config_count(layer, {"num_attention_heads"});
      const auto stated_kv = detail::config_count(layer, {"num_key_value_heads"});
      if ((stated && *stated != r.heads) || (stated_kv && *stated_kv != r.kv_heads)) {
        throw fail("layer \"", name, "\": num_attention_heads/num_key_value_heads disagree with the ",
                   r.heads, "/", r.kv_heads, " heads its ids leave");
      }
      if (!h.by_block.emplace(name, std::move(r)).second) throw fail("layer \"", name, "\" is listed twice");
    }
    return h;
  }
  if (preset.config_update != ConfigUpdate::pruned_heads) return std::nullopt;
  const auto it = config.find("pruned_heads");
  if (it == config.end() || !it->is_object() || it->empty()) return std::nullopt;
  PruneHistory h;
  h.source = "pruned_heads";
  h.original_heads = counts.heads;
  h.original_kv_heads = counts.kv_heads;
  for (const auto& item : it->items()) {
    const std::string where = mhaprune::detail::message("config.json pruned_heads \"", item.key(), "\"");
    Index layer = 0;
    try {
      std::size_t used = 0;
      layer = static_cast<Index>(std::stol(item.key(), &used));
      if (used != item.key().size() || layer < 0) throw std::invalid_argument("layer");
    } catch (const std::exception&) {
      throw preset_error(mhaprune::detail::message(where, ": the key is not a layer number"));
    }
    LayerRecord r;
    r.head_ids = detail::complement(counts.heads, detail::id_list(item.value(), where), where);
    if (counts.kv_heads != counts.heads) {
      throw preset_error(mhaprune::detail::message(where, ": pruned_heads needs multi-head attention"));
    }
    r.kv_head_ids = r.head_ids;
    r.heads = r.kv_heads = static_cast<Index>(r.head_ids.size());
    h.by_layer[layer] = std::move(r);
  }
  return h;
}

}  // namespace mhaprune::checkpoint
