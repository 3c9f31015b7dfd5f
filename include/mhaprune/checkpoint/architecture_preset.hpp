// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "mhaprune/core/types.hpp"

namespace mhaprune::checkpoint {

/// How a block stores its Q, K and V projections.
enum class QkvLayout {
  separate,     ///< three tensors: Q `[H*d, D]`, K and V `[H_kv*d, D]` (BERT, ViT, LLaMA)
  concat,       ///< one tensor, rows `[Q | K | V]` (GPT-2 `c_attn`, stored `[D, 3D]`)
  interleaved,  ///< one tensor, rows `[q_h; k_h; v_h]` per head (GPT-NeoX `query_key_value`)
  grouped,      ///< one tensor, rows `[q_1..q_r, k, v]` per key/value group (Falcon)
};

/// How the output config.json tells a loader the new head counts (besides the `mhaprune` section,
/// which is always written).
enum class ConfigUpdate {
  /// Nothing else: the family's loader cannot build pruned layers from its config (GPT-NeoX
  /// derives the head width from `hidden_size / num_attention_heads` and sizes `query_key_value`
  /// from `hidden_size`).
  none,
  /// Hugging Face's `pruned_heads` {"layer": [original ids]}, merged with any already there; the
  /// head counts stay those of the unpruned model, since the loader builds full layers and prunes
  /// them again (BERT, RoBERTa, ViT, GPT-2).
  pruned_heads,
  /// `num_attention_heads`, `num_key_value_heads` and an explicit `head_dim`, when every layer has
  /// the same counts; left alone when layers differ (LLaMA, Mistral, Qwen2 read `head_dim`).
  counts,
};

/// Whether a block can gain an O-projection bias it does not have (compensation may create one).
enum class OutputBiasSupport {
  always,       ///< the family always has one
  config_flag,  ///< a config key turns every q/k/v/o bias on (`ArchitecturePreset::output_bias_key`)
  never,        ///< the family's modules have no O bias (Qwen2, Mistral)
};

/// Where one architecture keeps its attention tensors and head counts. Its JSON form is a preset
/// document (see `preset_from_json` in user_preset.hpp): a user's `--preset` file, or one of the
/// built-in documents of builtin_presets.hpp.
///
/// A block is found from its O weight: every tensor named `<block>.<o_weight>` whose `<block>`
/// matches `block_pattern` is one block, `<block>` its name. Every other tensor of the block is
/// `<block>.<relative name>`; empty names are tensors the family does not have. Weights are
/// required, biases bound when present.
struct ArchitecturePreset {
  /// A built-in preset's name ("bert", "vit", "gpt2", "llama", ...), or a user preset's.
  std::string name;
  /// The block name: literal text with `{layer}` (the layer number: one or more digits), `*` (any
  /// text, possibly empty) and `{prefix}` (nothing, or any text ending with '.': "bert.",
  /// "roberta.", "model.", ...). Blocks are ordered by layer number (in order of discovery when
  /// the pattern has no `{layer}`).
  std::string block_pattern;
  QkvLayout qkv = QkvLayout::separate;
  /// `Orientation::in_out` for GPT-2's Conv1D (weights stored `[in, out]`).
  bool in_out = false;
  std::string q_weight, k_weight, v_weight, qkv_weight, o_weight;
  std::string q_bias, k_bias, v_bias, qkv_bias, o_bias;

  /// config.json keys read for the counts, first present wins.
  std::vector<std::string> heads_keys{"num_attention_heads"};
  std::vector<std::string> kv_heads_keys{"num_key_value_heads"};
  std::vector<std::string> hidden_keys{"hidden_size"};
  std::string head_dim_key;  ///< empty: the family has none (d = hidden / heads)
  /// Fixed counts (a user preset's), which take precedence over config.json.
  std::optional<Index> heads, kv_heads, head_dim;

  ConfigUpdate config_update = ConfigUpdate::none;
  OutputBiasSupport output_bias = OutputBiasSupport::always;
  std::string output_bias_key;  ///< for `config_flag`: "attention_bias"
};

}  // namespace mhaprune::checkpoint
