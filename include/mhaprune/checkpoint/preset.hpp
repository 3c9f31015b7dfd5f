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
  config_flag,  ///< a config key turns every q/k/v/o bias on (`OutputBiasSupport` key below)
  never,        ///< the family's modules have no O bias (Qwen2, Mistral)
};

/// Where one architecture keeps its attention tensors and head counts.
///
/// A block is found from its O weight: every tensor named `<block>.<o_weight>` whose `<block>`
/// matches `block_pattern` is one block, `<block>` its name. Every other tensor of the block is
/// `<block>.<relative name>`; empty names are tensors the family does not have. Weights are
/// required, biases bound when present.
struct ArchitecturePreset {
  /// "bert", "vit", "gpt2", "llama", "gpt_neox", or a user preset's name.
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

/// The built-in presets. `model_type` refines the LLaMA family (Qwen2 and Mistral cannot hold an
/// O bias; LLaMA can, through `attention_bias`).
namespace presets {

/// BERT, RoBERTa, XLM-R, ELECTRA...: `{prefix}encoder.layer.N.attention` with
/// `self.{query,key,value}` and `output.dense`, all with biases.
inline ArchitecturePreset bert() {
  ArchitecturePreset p;
  p.name = "bert";
  p.block_pattern = "{prefix}encoder.layer.{layer}.attention";
  p.q_weight = "self.query.weight";
  p.k_weight = "self.key.weight";
  p.v_weight = "self.value.weight";
  p.o_weight = "output.dense.weight";
  p.q_bias = "self.query.bias";
  p.k_bias = "self.key.bias";
  p.v_bias = "self.value.bias";
  p.o_bias = "output.dense.bias";
  p.config_update = ConfigUpdate::pruned_heads;
  return p;
}

/// ViT, DeiT, DINOv2...: `{prefix}encoder.layer.N.attention` with `attention.{query,key,value}`
/// and `output.dense`.
inline ArchitecturePreset vit() {
  ArchitecturePreset p = bert();
  p.name = "vit";
  p.q_weight = "attention.query.weight";
  p.k_weight = "attention.key.weight";
  p.v_weight = "attention.value.weight";
  p.q_bias = "attention.query.bias";
  p.k_bias = "attention.key.bias";
  p.v_bias = "attention.value.bias";
  return p;
}

/// GPT-2: `{prefix}h.N.attn` with Conv1D `c_attn` `[D, 3D]` (+ bias `[3D]`) and `c_proj` `[D, D]`,
/// stored `[in, out]`.
inline ArchitecturePreset gpt2() {
  ArchitecturePreset p;
  p.name = "gpt2";
  p.block_pattern = "{prefix}h.{layer}.attn";
  p.qkv = QkvLayout::concat;
  p.in_out = true;
  p.qkv_weight = "c_attn.weight";
  p.qkv_bias = "c_attn.bias";
  p.o_weight = "c_proj.weight";
  p.o_bias = "c_proj.bias";
  p.heads_keys = {"n_head", "num_attention_heads"};
  p.kv_heads_keys = {};
  p.hidden_keys = {"n_embd", "hidden_size"};
  p.config_update = ConfigUpdate::pruned_heads;
  return p;
}

/// LLaMA, Mistral, Qwen2: `{prefix}layers.N.self_attn` with `{q,k,v,o}_proj`, biases optional,
/// grouped-query attention. `model_type` decides whether an O bias can be added.
inline ArchitecturePreset llama(const std::string& model_type = "llama") {
  ArchitecturePreset p;
  p.name = "llama";
  p.block_pattern = "{prefix}layers.{layer}.self_attn";
  p.q_weight = "q_proj.weight";
  p.k_weight = "k_proj.weight";
  p.v_weight = "v_proj.weight";
  p.o_weight = "o_proj.weight";
  p.q_bias = "q_proj.bias";
  p.k_bias = "k_proj.bias";
  p.v_bias = "v_proj.bias";
  p.o_bias = "o_proj.bias";
  p.head_dim_key = "head_dim";
  p.config_update = ConfigUpdate::counts;
  if (model_type == "qwen2" || model_type == "mistral" || model_type == "mixtral") {
    p.output_bias = OutputBiasSupport::never;
  } else {
    p.output_bias = OutputBiasSupport::config_flag;
    p.output_bias_key = "attention_bias";
  }
  return p;
}

/// GPT-NeoX, Pythia: `{prefix}layers.N.attention` with `query_key_value` interleaved per head and
/// `dense`, both with biases.
inline ArchitecturePreset gpt_neox() {
  ArchitecturePreset p;
  p.name = "gpt_neox";
  p.block_pattern = "{prefix}layers.{layer}.attention";
  p.qkv = QkvLayout::interleaved;
  p.qkv_weight = "query_key_value.weight";
  p.qkv_bias = "query_key_value.bias";
  p.o_weight = "dense.weight";
  p.o_bias = "dense.bias";
  p.kv_heads_keys = {};
  p.config_update = ConfigUpdate::none;
  return p;
}

/// DistilBERT: `{prefix}transformer.layer.N.attention` with `{q,k,v,out}_lin`, all with biases;
/// its loader re-applies `pruned_heads` like BERT's.
inline ArchitecturePreset distilbert() {
  ArchitecturePreset p;
  p.name = "distilbert";
  p.block_pattern = "{prefix}transformer.layer.{layer}.attention";
  p.q_weight = "q_lin.weight";
  p.k_weight = "k_lin.weight";
  p.v_weight = "v_lin.weight";
  p.o_weight = "out_lin.weight";
  p.q_bias = "q_lin.bias";
  p.k_bias = "k_lin.bias";
  p.v_bias = "v_lin.bias";
  p.o_bias = "out_lin.bias";
  p.heads_keys = {"n_heads", "num_attention_heads"};
  p.kv_heads_keys = {};
  p.hidden_keys = {"dim", "hidden_size"};
  p.config_update = ConfigUpdate::pruned_heads;
  return p;
}

/// OPT: `{prefix}decoder.layers.N.self_attn` with `{q,k,v,out}_proj`, all with biases. Its loader
/// sizes every projection from `hidden_size`, so only the `mhaprune` section tells.
inline ArchitecturePreset opt() {
  ArchitecturePreset p;
  p.name = "opt";
  p.block_pattern = "{prefix}decoder.layers.{layer}.self_attn";
  p.q_weight = "q_proj.weight";
  p.k_weight = "k_proj.weight";
  p.v_weight = "v_proj.weight";
  p.o_weight = "out_proj.weight";
  p.q_bias = "q_proj.bias";
  p.k_bias = "k_proj.bias";
  p.v_bias = "v_proj.bias";
  p.o_bias = "out_proj.bias";
  p.kv_heads_keys = {};
  p.config_update = ConfigUpdate::none;
  return p;
}

/// Phi-3: `{prefix}layers.N.self_attn` with one `qkv_proj` (rows Q, then K, then V; grouped-query)
/// and `o_proj`, no biases.
inline ArchitecturePreset phi3() {
  ArchitecturePreset p;
  p.name = "phi3";
  p.block_pattern = "{prefix}layers.{layer}.self_attn";
  p.qkv = QkvLayout::concat;
  p.qkv_weight = "qkv_proj.weight";
  p.o_weight = "o_proj.weight";
  p.head_dim_key = "head_dim";
  p.config_update = ConfigUpdate::counts;
  p.output_bias = OutputBiasSupport::never;
  return p;
}

/// Every built-in preset, in the order name-based detection tries them.
inline std::vector<ArchitecturePreset> all() {
  return {bert(), vit(), gpt2(), llama(), gpt_neox(), distilbert(), opt(), phi3()};
}

}  // namespace presets

}  // namespace mhaprune::checkpoint
