// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string_view>

/// The built-in presets as preset documents, in exactly the schema of a user's `--preset` file
/// (see `preset_from_json`, which reads both). Saved to a file, any of them is a user preset that
/// opens the same checkpoints the same way: a starting point for a new architecture.
namespace mhaprune::checkpoint::presets::documents {

/// BERT, RoBERTa, XLM-R, ELECTRA...: `{prefix}encoder.layer.N.attention` with
/// `self.{query,key,value}` and `output.dense`, all with biases.
inline constexpr std::string_view bert = R"json({
  "name": "bert",
  "block": "{prefix}encoder.layer.{layer}.attention",
  "tensors": {
    "q": "self.query.weight", "k": "self.key.weight", "v": "self.value.weight",
    "o": "output.dense.weight",
    "q_bias": "self.query.bias", "k_bias": "self.key.bias", "v_bias": "self.value.bias",
    "o_bias": "output.dense.bias"
  },
  "config_keys": {"head_dim": null},
  "config_update": "pruned_heads"
})json";

/// ViT, DeiT, DINOv2...: `{prefix}encoder.layer.N.attention` with `attention.{query,key,value}`
/// and `output.dense`.
inline constexpr std::string_view vit = R"json({
  "name": "vit",
  "block": "{prefix}encoder.layer.{layer}.attention",
  "tensors": {
    "q": "attention.query.weight", "k": "attention.key.weight", "v": "attention.value.weight",
    "o": "output.dense.weight",
    "q_bias": "attention.query.bias", "k_bias": "attention.key.bias", "v_bias": "attention.value.bias",
    "o_bias": "output.dense.bias"
  },
  "config_keys": {"head_dim": null},
  "config_update": "pruned_heads"
})json";

/// GPT-2: `{prefix}h.N.attn` with Conv1D `c_attn` `[D, 3D]` (+ bias `[3D]`) and `c_proj` `[D, D]`,
/// stored `[in, out]`.
inline constexpr std::string_view gpt2 = R"json({
  "name": "gpt2",
  "block": "{prefix}h.{layer}.attn",
  "layout": "qkv_concat",
  "orientation": "in_out",
  "tensors": {
    "qkv": "c_attn.weight", "qkv_bias": "c_attn.bias",
    "o": "c_proj.weight", "o_bias": "c_proj.bias"
  },
  "config_keys": {
    "heads": ["n_head", "num_attention_heads"],
    "kv_heads": [],
    "hidden": ["n_embd", "hidden_size"],
    "head_dim": null
  },
  "config_update": "pruned_heads"
})json";

/// LLaMA: `{prefix}layers.N.self_attn` with `{q,k,v,o}_proj`, biases optional, grouped-query
/// attention; `attention_bias` in config.json turns every q/k/v/o bias on.
inline constexpr std::string_view llama = R"json({
  "name": "llama",
  "block": "{prefix}layers.{layer}.self_attn",
  "tensors": {
    "q": "q_proj.weight", "k": "k_proj.weight", "v": "v_proj.weight", "o": "o_proj.weight",
    "q_bias": "q_proj.bias", "k_bias": "k_proj.bias", "v_bias": "v_proj.bias", "o_bias": "o_proj.bias"
  },
  "config_update": "counts",
  "output_bias": "config_flag",
  "output_bias_key": "attention_bias"
})json";

/// Mistral, Mixtral, Qwen2: LLaMA's tensors, but their modules cannot hold an O bias (Qwen2 has
/// q/k/v biases only).
inline constexpr std::string_view llama_without_output_bias = R"json({
  "name": "llama",
  "block": "{prefix}layers.{layer}.self_attn",
  "tensors": {
    "q": "q_proj.weight", "k": "k_proj.weight", "v": "v_proj.weight", "o": "o_proj.weight",
    "q_bias": "q_proj.bias", "k_bias": "k_proj.bias", "v_bias": "v_proj.bias", "o_bias": "o_proj.bias"
  },
  "config_update": "counts",
  "output_bias": "never"
})json";

/// GPT-NeoX, Pythia: `{prefix}layers.N.attention` with `query_key_value` interleaved per head and
/// `dense`, both with biases.
inline constexpr std::string_view gpt_neox = R"json({
  "name": "gpt_neox",
  "block": "{prefix}layers.{layer}.attention",
  "layout": "qkv_interleaved",
  "tensors": {
    "qkv": "query_key_value.weight", "qkv_bias": "query_key_value.bias",
    "o": "dense.weight", "o_bias": "dense.bias"
  },
  "config_keys": {"kv_heads": [], "head_dim": null}
})json";

/// DistilBERT: `{prefix}transformer.layer.N.attention` with `{q,k,v,out}_lin`, all with biases;
/// its loader re-applies `pruned_heads` like BERT's.
inline constexpr std::string_view distilbert = R"json({
  "name": "distilbert",
  "block": "{prefix}transformer.layer.{layer}.attention",
  "tensors": {
    "q": "q_lin.weight", "k": "k_lin.weight", "v": "v_lin.weight", "o": "out_lin.weight",
    "q_bias": "q_lin.bias", "k_bias": "k_lin.bias", "v_bias": "v_lin.bias", "o_bias": "out_lin.bias"
  },
  "config_keys": {
    "heads": ["n_heads", "num_attention_heads"],
    "kv_heads": [],
    "hidden": ["dim", "hidden_size"],
    "head_dim": null
  },
  "config_update": "pruned_heads"
})json";

/// OPT: `{prefix}decoder.layers.N.self_attn` with `{q,k,v,out}_proj`, all with biases. Its loader
/// sizes every projection from `hidden_size`, so only the `mhaprune` section tells.
inline constexpr std::string_view opt = R"json({
  "name": "opt",
  "block": "{prefix}decoder.layers.{layer}.self_attn",
  "tensors": {
    "q": "q_proj.weight", "k": "k_proj.weight", "v": "v_proj.weight", "o": "out_proj.weight",
    "q_bias": "q_proj.bias", "k_bias": "k_proj.bias", "v_bias": "v_proj.bias", "o_bias": "out_proj.bias"
  },
  "config_keys": {"kv_heads": [], "head_dim": null}
})json";

/// Phi-3: `{prefix}layers.N.self_attn` with one `qkv_proj` (rows Q, then K, then V; grouped-query)
/// and `o_proj`, no biases.
inline constexpr std::string_view phi3 = R"json({
  "name": "phi3",
  "block": "{prefix}layers.{layer}.self_attn",
  "layout": "qkv_concat",
  "tensors": {"qkv": "qkv_proj.weight", "o": "o_proj.weight"},
  "config_update": "counts",
  "output_bias": "never"
})json";

}  // namespace mhaprune::checkpoint::presets::documents
