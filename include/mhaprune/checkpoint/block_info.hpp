// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "mhaprune/checkpoint/preset.hpp"
#include "mhaprune/core/head_layout.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/io/dtype.hpp"
#include "mhaprune/io/header.hpp"

namespace mhaprune::checkpoint {

/// The full tensor names of one block, by role; empty: the block has no such tensor.
struct BlockTensorNames {
  std::string q, k, v, qkv, o;
  std::string q_bias, k_bias, v_bias, qkv_bias, o_bias;

  /// Every non-empty name, in the order above.
  std::vector<std::string> all() const {
    std::vector<std::string> out;
    for (const std::string* n : {&q, &k, &v, &qkv, &o, &q_bias, &k_bias, &v_bias, &qkv_bias, &o_bias})
      if (!n->empty()) out.push_back(*n);
    return out;
  }
};

namespace detail {
/// Each role ("q", "k", ..., "o_bias") with its name in `n`.
inline std::vector<std::pair<std::string, const std::string*>> roles(const BlockTensorNames& n) {
  return {{"q", &n.q},           {"k", &n.k},           {"v", &n.v},
          {"qkv", &n.qkv},       {"o", &n.o},           {"q_bias", &n.q_bias},
          {"k_bias", &n.k_bias}, {"v_bias", &n.v_bias}, {"qkv_bias", &n.qkv_bias},
          {"o_bias", &n.o_bias}};
}
}  // namespace detail

/// One attention block of a checkpoint, in model order, as found and checked when it was opened
/// (no weights are read for this).
struct BlockInfo {
  Index index = 0;                ///< 0.. in model order
  Index layer = 0;                ///< the layer number in the tensor names
  std::string name;               ///< e.g. "model.layers.0.self_attn", "bert.encoder.layer.0.attention"
  HeadLayout layout{1, 1, 1, 1};  ///< current H, H_kv, d, D
  std::vector<Index> head_ids, kv_head_ids;  ///< original ids of the heads present, ascending
  Index original_heads = 0, original_kv_heads = 0;
  std::vector<std::string> tensor_names;  ///< every tensor the block binds
  std::string o_weight_name;              ///< stats key P = this minus ".weight"
  io::Dtype dtype = io::Dtype::F32;       ///< dtype of the Q (or fused QKV) weight
  BlockTensorNames tensors;               ///< the same names, by role
  QkvLayout qkv = QkvLayout::separate;
  bool in_out = false;  ///< weights stored `[in, out]` (GPT-2 Conv1D)

  /// The key of this block's O-input statistics: the O weight's name without ".weight".
  std::string stats_key() const {
    const std::string suffix = ".weight";
    if (o_weight_name.size() > suffix.size() &&
        o_weight_name.compare(o_weight_name.size() - suffix.size(), suffix.size(), suffix) == 0)
      return o_weight_name.substr(0, o_weight_name.size() - suffix.size());
    return o_weight_name;
  }
};

/// The shape a block tensor has for a head layout: `role` is one of the names of
/// `BlockTensorNames` ("q", "k", ..., "o_bias").
inline io::Shape block_tensor_shape(const std::string& role, QkvLayout qkv, bool in_out,
                                    const HeadLayout& L) {
  const auto d = static_cast<std::uint64_t>(L.head_dim()), D = static_cast<std::uint64_t>(L.model_dim());
  const auto H = static_cast<std::uint64_t>(L.heads()), Hkv = static_cast<std::uint64_t>(L.kv_heads());
  const std::uint64_t fused = qkv == QkvLayout::interleaved ? 3 * H * d : (H + 2 * Hkv) * d;
  const auto weight = [in_out, D](std::uint64_t out) {
    return in_out ? io::Shape{D, out} : io::Shape{out, D};
  };
  if (role == "q") return weight(H * d);
  if (role == "k" || role == "v") return weight(Hkv * d);
  if (role == "qkv") return weight(fused);
  if (role == "o") return in_out ? io::Shape{H * d, D} : io::Shape{D, H * d};
  if (role == "q_bias") return {H * d};
  if (role == "k_bias" || role == "v_bias") return {Hkv * d};
  if (role == "qkv_bias") return {fused};
  return {D};  // o_bias
}

}  // namespace mhaprune::checkpoint
