// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/checkpoint/architecture_preset.hpp"
#include "mhaprune/checkpoint/json_file.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune::checkpoint {

namespace detail {

/// A preset_error "<source>: preset <parts...>".
template <class... Parts>
preset_error preset_fault(const std::string& source, Parts&&... parts) {
  return preset_error(mhaprune::detail::message(source, ": preset ", std::forward<Parts>(parts)...));
}

/// `obj[key]` as a non-empty string; `where` is the key's path in messages ("", "tensors.").
/// @throws preset_error if it is anything else.
inline std::string preset_text(const nlohmann::json& obj, const std::string& key, const std::string& where,
                               const std::string& source) {
  const auto& v = obj.at(key);
  if (!v.is_string() || v.get_ref<const std::string&>().empty()) {
    throw preset_fault(source, "key \"", where, key, "\" must be a non-empty string, got ", v.dump());
  }
  return v.get<std::string>();
}

/// The document's "config_keys" into `p`'s `*_keys`; absent keys keep `p`'s values.
/// @throws preset_error for an unknown key or a value of the wrong type.
inline void read_config_keys(const nlohmann::json& j, const std::string& source, ArchitecturePreset& p) {
  if (!j.contains("config_keys")) return;
  const auto& keys = j.at("config_keys");
  if (!keys.is_object())
    throw preset_fault(source, "key \"config_keys\" must be an object, got ", keys.dump());
  const std::vector<std::pair<const char*, std::vector<std::string>*>> lists{
      {"heads", &p.heads_keys}, {"kv_heads", &p.kv_heads_keys}, {"hidden", &p.hidden_keys}};
  for (const auto& item : keys.items()) {
    if (item.key() == "head_dim") {
      // null, not "", says the family has no such key, so that a typo'd empty string is still an error.
      p.head_dim_key = item.value().is_null() ? "" : preset_text(keys, "head_dim", "config_keys.", source);
      continue;
    }
    const auto it = std::find_if(lists.begin(), lists.end(),
                                 [&key = item.key()](const auto& l) { return key == l.first; });
    if (it == lists.end()) {
      throw preset_fault(source, "key \"config_keys.", item.key(),
                         "\" is unknown; valid: heads, kv_heads, hidden, head_dim");
    }
    const auto& v = item.value();
    const bool strings = v.is_array() && std::all_of(v.begin(), v.end(), [](const nlohmann::json& e) {
                           return e.is_string() && !e.get_ref<const std::string&>().empty();
                         });
    if (!strings) {
      throw preset_fault(source, "key \"config_keys.", item.key(),
                         "\" must be an array of non-empty strings, got ", v.dump());
    }
    *it->second = v.get<std::vector<std::string>>();
  }
}

/// The document's "output_bias" and "output_bias_key" into `p` (`p.o_bias` already read).
/// @throws preset_error for an unknown value, or one the tensors or the other key contradict.
inline void read_output_bias(const nlohmann::json& j, const std::string& source, ArchitecturePreset& p) {
  std::string support = p.o_bias.empty() ? "never" : "always";
  if (j.contains("output_bias")) support = preset_text(j, "output_bias", "", source);
  if (support == "always") {
    p.output_bias = OutputBiasSupport::always;
  } else if (support == "config_flag") {
    p.output_bias = OutputBiasSupport::config_flag;
  } else if (support == "never") {
    p.output_bias = OutputBiasSupport::never;
  } else {
    throw preset_fault(source, "key \"output_bias\": \"", support,
                       "\" is not one of always, config_flag, never");
  }
  // Compensation can only create an O bias it has a name for.
  if (p.output_bias != OutputBiasSupport::never && p.o_bias.empty()) {
    throw preset_fault(source, "key \"output_bias\": \"", support, "\" needs \"tensors.o_bias\"");
  }
  const bool flag = p.output_bias == OutputBiasSupport::config_flag;
  if (flag != j.contains("output_bias_key")) {
    throw preset_fault(source, flag ? "with \"output_bias\": \"config_flag\" needs \"output_bias_key\""
                                    : "key \"output_bias_key\" is only for \"output_bias\": \"config_flag\"");
  }
  p.output_bias_key = flag ? preset_text(j, "output_bias_key", "", source) : "";
}

}  // namespace detail

/// Reads a preset document: a JSON object describing where an architecture keeps its attention
/// tensors. A user's `--preset` file is one; so is every built-in preset (builtin_presets.hpp), read
/// by this same function.
///
///     {
///       "name": "my_arch",                       // required; reported as the architecture
///       "block": "{prefix}blocks.{layer}.attn",  // required: the block name; {layer} = the layer
///                                                // number (digits), * = any text, {prefix} =
///                                                // nothing or any text ending in "."
///       "layout": "separate",                    // "separate" (default) | "qkv_concat" |
///                                                // "qkv_interleaved" | "qkv_grouped"
///       "orientation": "out_in",                 // "out_in" (PyTorch Linear, default) |
///                                                // "in_out" (Conv1D)
///       "tensors": {                             // names relative to the block name
///         "q": "q.weight", "k": "k.weight", "v": "v.weight",  // separate layout
///         "qkv": "qkv.weight",                                // fused layouts
///         "o": "proj.weight",                                 // required
///         "q_bias": "q.bias", "k_bias": "k.bias", "v_bias": "v.bias", "qkv_bias": "qkv.bias",
///         "o_bias": "proj.bias"                               // biases: optional
///       },
///       "num_attention_heads": 12,               // optional fixed counts, which take precedence
///       "num_key_value_heads": 4,                //   over config.json's
///       "head_dim": 64,
///       "config_keys": {                         // optional: the config.json keys the counts are
///         "heads": ["num_attention_heads"],      //   read from, first present wins; each defaults
///         "kv_heads": ["num_key_value_heads"],   //   to the value shown; kv_heads [] = as many as
///         "hidden": ["hidden_size"],             //   heads; head_dim null = none (d = hidden /
///         "head_dim": "head_dim"                 //   heads)
///       },
///       "config_update": "none",                 // "none" (default) | "pruned_heads" | "counts":
///                                                // what the output config.json says besides the
///                                                // `mhaprune` section (see ConfigUpdate)
///       "output_bias": "always",                 // whether compensation may give a block an O
///                                                // bias it lacks (see OutputBiasSupport):
///                                                // "always" (default with tensors.o_bias) |
///                                                // "never" (default without) | "config_flag"
///       "output_bias_key": "attention_bias"      // "config_flag" only, and required then: the
///                                                // config.json flag that turns every q/k/v/o
///                                                // bias on, set when compensation adds them
///     }
///
/// Every block is still checked against its tensors' shapes when the checkpoint is opened.
/// @param j the document.
/// @param source names the document in messages (a file's path).
/// @throws preset_error naming `source` and the key for anything missing, unknown, mistyped or
///         contradictory.
inline ArchitecturePreset preset_from_json(const nlohmann::json& j, const std::string& source) {
  const auto fail = [&source](auto&&... parts) {
    return detail::preset_fault(source, std::forward<decltype(parts)>(parts)...);
  };
  if (!j.is_object()) throw fail("must be a JSON object, got ", j.type_name());
  static const std::vector<std::string> keys{"name",
                                             "block",
                                             "layout",
                                             "orientation",
                                             "tensors",
                                             "num_attention_heads",
                                             "num_key_value_heads",
                                             "head_dim",
                                             "config_keys",
                                             "config_update",
                                             "output_bias",
                                             "output_bias_key"};
  for (const auto& item : j.items()) {
    if (std::find(keys.begin(), keys.end(), item.key()) == keys.end()) {
      std::string valid;
      for (const auto& k : keys) valid += (valid.empty() ? "" : ", ") + k;
      throw fail("has unknown key \"", item.key(), "\"; valid keys: ", valid);
    }
  }
  const auto text = [&source](const nlohmann::json& obj, const std::string& key, const std::string& where) {
    return detail::preset_text(obj, key, where, source);
  };
  ArchitecturePreset p;
  p.config_update = ConfigUpdate::none;
  if (!j.contains("name")) throw fail("needs a \"name\"");
  p.name = text(j, "name", "");
  if (!j.contains("block")) throw fail("needs a \"block\" pattern");
  p.block_pattern = text(j, "block", "");
  const std::string layout = j.contains("layout") ? text(j, "layout", "") : "separate";
  if (layout == "separate") {
    p.qkv = QkvLayout::separate;
  } else if (layout == "qkv_concat") {
    p.qkv = QkvLayout::concat;
  } else if (layout == "qkv_interleaved") {
    p.qkv = QkvLayout::interleaved;
  } else if (layout == "qkv_grouped") {
    p.qkv = QkvLayout::grouped;
  } else {
    throw fail("key \"layout\": \"", layout,
               "\" is not one of separate, qkv_concat, qkv_interleaved, qkv_grouped");
  }
  const std::string orientation = j.contains("orientation") ? text(j, "orientation", "") : "out_in";
  if (orientation != "out_in" && orientation != "in_out") {
    throw fail("key \"orientation\": \"", orientation, "\" is not one of out_in, in_out");
  }
  p.in_out = orientation == "in_out";
  if (!j.contains("tensors") || !j.at("tensors").is_object()) throw fail("needs a \"tensors\" object");
  const auto& t = j.at("tensors");
  const std::vector<std::pair<const char*, std::string*>> slots{
      {"q", &p.q_weight},        {"k", &p.k_weight},    {"v", &p.v_weight},    {"qkv", &p.qkv_weight},
      {"o", &p.o_weight},        {"q_bias", &p.q_bias}, {"k_bias", &p.k_bias}, {"v_bias", &p.v_bias},
      {"qkv_bias", &p.qkv_bias}, {"o_bias", &p.o_bias}};
  for (const auto& item : t.items()) {
    const auto it = std::find_if(slots.begin(), slots.end(),
                                 [&key = item.key()](const auto& s) { return key == s.first; });
    if (it == slots.end()) {
      throw fail("key \"tensors.", item.key(),
                 "\" is unknown; valid: q, k, v, qkv, o, q_bias, k_bias, v_bias, qkv_bias, o_bias");
    }
    *it->second = text(t, item.key(), "tensors.");
  }
  const bool separate = p.qkv == QkvLayout::separate;
  if (p.o_weight.empty()) throw fail("needs \"tensors.o\"");
  if (separate && (p.q_weight.empty() || p.k_weight.empty() || p.v_weight.empty())) {
    throw fail("with layout \"separate\" needs \"tensors.q\", \"tensors.k\" and \"tensors.v\"");
  }
  if (!separate && p.qkv_weight.empty()) throw fail("with layout \"", layout, "\" needs \"tensors.qkv\"");
  if (separate ? !p.qkv_weight.empty() || !p.qkv_bias.empty()
               : !p.q_weight.empty() || !p.k_weight.empty() || !p.v_weight.empty() || !p.q_bias.empty() ||
                     !p.k_bias.empty() || !p.v_bias.empty()) {
    throw fail("names tensors of another layout than \"", layout, "\"");
  }
  const auto count = [&](const char* key) -> std::optional<Index> {
    if (!j.contains(key)) return std::nullopt;
    const auto& v = j.at(key);
    if (!v.is_number_integer() || v.get<long long>() <= 0) {
      throw fail("key \"", key, "\" must be a positive integer, got ", v.dump());
    }
    return static_cast<Index>(v.get<long long>());
  };
  p.heads = count("num_attention_heads");
  p.kv_heads = count("num_key_value_heads");
  p.head_dim = count("head_dim");
  p.head_dim_key = "head_dim";
  detail::read_config_keys(j, source, p);
  const std::string update = j.contains("config_update") ? text(j, "config_update", "") : "none";
  if (update == "none") {
    p.config_update = ConfigUpdate::none;
  } else if (update == "pruned_heads") {
    p.config_update = ConfigUpdate::pruned_heads;
  } else if (update == "counts") {
    p.config_update = ConfigUpdate::counts;
  } else {
    throw fail("key \"config_update\": \"", update, "\" is not one of none, pruned_heads, counts");
  }
  detail::read_output_bias(j, source, p);
  return p;
}

/// Reads and parses a user preset file (see `preset_from_json`).
/// @param path the file.
/// @throws io_error if it cannot be read; preset_error if it is not valid JSON or not a valid preset.
inline ArchitecturePreset read_user_preset(const std::string& path) {
  return preset_from_json(read_json_file(path, "preset"), path);
}

}  // namespace mhaprune::checkpoint
