// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mhaprune/checkpoint/preset.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune::checkpoint {

/// One block a preset finds among tensor names: its name and layer number.
struct BlockName {
  std::string name;
  Index layer = 0;
};

namespace detail {

/// A block pattern split into pieces: literal text, `{layer}` (one or more digits, captured),
/// `{prefix}` (nothing, or any text ending with '.'), `*` (any text, possibly empty).
struct PatternPiece {
  enum Kind { literal, layer, prefix, any } kind;
  std::string text;
};

inline std::vector<PatternPiece> parse_pattern(const std::string& pattern) {
  std::vector<PatternPiece> out;
  std::string_view rest = pattern;
  const auto literal = [&out](char c) {
    if (out.empty() || out.back().kind != PatternPiece::literal) out.push_back({PatternPiece::literal, ""});
    out.back().text += c;
  };
  while (!rest.empty()) {
    if (rest.substr(0, 8) == "{prefix}") {
      out.push_back({PatternPiece::prefix, ""});
      rest.remove_prefix(8);
    } else if (rest.substr(0, 7) == "{layer}") {
      out.push_back({PatternPiece::layer, ""});
      rest.remove_prefix(7);
    } else if (rest.front() == '*') {
      out.push_back({PatternPiece::any, ""});
      rest.remove_prefix(1);
    } else {
      literal(rest.front());
      rest.remove_prefix(1);
    }
  }
  return out;
}

// Backtracking match of pieces[i..] against name[pos..]; `layer` receives the first {layer}'s digits.
inline bool match_from(const std::vector<PatternPiece>& pieces, std::size_t i, std::string_view name,
                       std::size_t pos, std::string_view& layer) {
  if (i == pieces.size()) return pos == name.size();
  const PatternPiece& p = pieces[i];
  switch (p.kind) {
    case PatternPiece::literal:
      return name.substr(pos, p.text.size()) == p.text &&
             match_from(pieces, i + 1, name, pos + p.text.size(), layer);
    case PatternPiece::layer: {
      std::size_t end = pos;
      while (end < name.size() && name[end] >= '0' && name[end] <= '9') ++end;
      for (std::size_t e = end; e > pos; --e) {
        std::string_view saved = layer;
        if (layer.empty()) layer = name.substr(pos, e - pos);
        if (match_from(pieces, i + 1, name, e, layer)) return true;
        layer = saved;
      }
      return false;
    }
    case PatternPiece::prefix:
      if (match_from(pieces, i + 1, name, pos, layer)) return true;
      for (std::size_t e = pos; e < name.size(); ++e)
        if (name[e] == '.' && match_from(pieces, i + 1, name, e + 1, layer)) return true;
      return false;
    case PatternPiece::any:
      for (std::size_t e = pos; e <= name.size(); ++e)
        if (match_from(pieces, i + 1, name, e, layer)) return true;
      return false;
  }
  return false;
}

/// Whether `name` matches `pattern` (see `ArchitecturePreset::block_pattern`); `layer` gets the
/// digits `{layer}` matched (empty if the pattern has none).
inline bool match_pattern(const std::vector<PatternPiece>& pieces, std::string_view name,
                          std::string& layer) {
  std::string_view digits;
  if (!match_from(pieces, 0, name, 0, digits)) return false;
  layer = std::string(digits);
  return true;
}

inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() > suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0 &&
         s[s.size() - suffix.size() - 1] == '.';
}

}  // namespace detail

/// The blocks `preset` finds among `tensor_names`, ordered by layer number then name: every
/// `<block>.<o_weight>` whose `<block>` matches the preset's block pattern (the Q or fused QKV
/// weight must exist too, which tells BERT's `self.query` from ViT's `attention.query`).
/// @throws preset_error if a layer number has more than 9 digits.
inline std::vector<BlockName> find_block_names(const ArchitecturePreset& preset,
                                               const std::vector<std::string>& tensor_names) {
  const std::vector<detail::PatternPiece> pattern = detail::parse_pattern(preset.block_pattern);
  const std::string& q = preset.qkv == QkvLayout::separate ? preset.q_weight : preset.qkv_weight;
  std::vector<BlockName> out;
  for (const auto& name : tensor_names) {
    if (!detail::ends_with(name, preset.o_weight)) continue;
    std::string block = name.substr(0, name.size() - preset.o_weight.size() - 1);
    std::string digits;
    if (!detail::match_pattern(pattern, block, digits)) continue;
    if (!std::binary_search(tensor_names.begin(), tensor_names.end(), block + "." + q)) continue;
    Index layer = static_cast<Index>(out.size());
    if (!digits.empty()) {
      if (digits.size() > 9) {
        throw preset_error(mhaprune::detail::message("preset \"", preset.name, "\": block \"", block,
                                                     "\": layer number ", digits, " is too large"));
      }
      layer = static_cast<Index>(std::stol(digits));
    }
    out.push_back(BlockName{std::move(block), layer});
  }
  std::sort(out.begin(), out.end(), [](const BlockName& a, const BlockName& b) {
    return a.layer != b.layer ? a.layer < b.layer : a.name < b.name;
  });
  return out;
}

/// The architecture of a checkpoint and how it was recognised.
struct Detection {
  ArchitecturePreset preset;
  std::string detected_from;  ///< e.g. "config.json model_type \"qwen2\"", "tensor names"
};

/// The built-in preset for a Hugging Face `model_type`, or nothing.
inline std::optional<ArchitecturePreset> preset_for_model_type(const std::string& t) {
  if (t == "bert" || t == "roberta" || t == "xlm-roberta" || t == "camembert" || t == "electra")
    return presets::bert();
  if (t == "vit" || t == "deit" || t == "vit_mae" || t == "vit_msn" || t == "dinov2") return presets::vit();
  if (t == "gpt2") return presets::gpt2();
  if (t == "llama" || t == "mistral" || t == "qwen2" || t == "mixtral") return presets::llama(t);
  if (t == "gpt_neox") return presets::gpt_neox();
  if (t == "distilbert") return presets::distilbert();
  if (t == "opt") return presets::opt();
  if (t == "phi3") return presets::phi3();
  return std::nullopt;
}

/// The model_type an `architectures` class name implies ("Qwen2ForCausalLM" → "qwen2"), or "".
inline std::string model_type_of_class(const std::string& cls) {
  static const std::vector<std::pair<std::string, std::string>> prefixes{{"XLMRoberta", "xlm-roberta"},
                                                                         {"Roberta", "roberta"},
                                                                         {"Camembert", "camembert"},
                                                                         {"Electra", "electra"},
                                                                         {"Bert", "bert"},
                                                                         {"ViT", "vit"},
                                                                         {"DeiT", "deit"},
                                                                         {"Dinov2", "dinov2"},
                                                                         {"GPT2", "gpt2"},
                                                                         {"GPTNeoX", "gpt_neox"},
                                                                         {"Llama", "llama"},
                                                                         {"Mistral", "mistral"},
                                                                         {"Mixtral", "mixtral"},
                                                                         {"Qwen2", "qwen2"},
                                                                         {"DistilBert", "distilbert"},
                                                                         {"OPT", "opt"},
                                                                         {"Phi3", "phi3"}};
  for (const auto& [prefix, type] : prefixes) {
    if (cls.compare(0, prefix.size(), prefix) != 0) continue;
    // "Qwen2MoeForCausalLM" is not Qwen2; the class continues with "For" or "Model" / "LMHead".
    const std::string rest = cls.substr(prefix.size());
    if (rest.rfind("For", 0) == 0 || rest.rfind("Model", 0) == 0 || rest.rfind("LMHead", 0) == 0) return type;
  }
  return "";
}

/// Detects the architecture from config.json's `model_type`, else its `architectures`, else from
/// the tensor names (the built-in preset that finds the most blocks). `tensor_names` sorted.
/// @throws preset_error naming what was seen when nothing matches (an unsupported `model_type`
///         whose tensors no preset recognises either).
inline Detection detect_architecture(const nlohmann::json& config,
                                     const std::vector<std::string>& tensor_names) {
  std::string seen;
  if (config.is_object()) {
    if (const auto it = config.find("model_type"); it != config.end() && it->is_string()) {
      const std::string t = it->get<std::string>();
      if (auto p = preset_for_model_type(t)) {
        return {*p, mhaprune::detail::message("config.json model_type \"", t, "\"")};
      }
      seen = mhaprune::detail::message("config.json model_type \"", t, "\"");
    }
    if (const auto it = config.find("architectures"); it != config.end() && it->is_array()) {
      for (const auto& cls : *it) {
        if (!cls.is_string()) continue;
        const std::string type = model_type_of_class(cls.get<std::string>());
        if (type.empty()) continue;
        return {*preset_for_model_type(type),
                mhaprune::detail::message("config.json architectures \"", cls.get<std::string>(), "\"")};
      }
    }
  }
  std::optional<ArchitecturePreset> best;
  std::size_t best_count = 0;
  for (const auto& p : presets::all()) {
    const std::size_t n = find_block_names(p, tensor_names).size();
    if (n > best_count) {
      best = p;
      best_count = n;
    }
  }
  if (best) return {*best, mhaprune::detail::message("tensor names (", best_count, " blocks)")};
  throw preset_error(mhaprune::detail::message(
      "unknown architecture: ", seen.empty() ? "" : seen + " is not supported and ",
      "no tensor names match a built-in preset (bert, vit, gpt2, llama, gpt_neox, distilbert, "
      "opt, phi3); "
      "describe the model with a user preset"));
}

}  // namespace mhaprune::checkpoint
