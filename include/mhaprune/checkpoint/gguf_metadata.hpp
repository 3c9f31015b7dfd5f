// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/core/types.hpp"
#include "mhaprune/io/gguf_value.hpp"
#include "mhaprune/version.hpp"

namespace mhaprune::checkpoint {

/// What the pruned model's metadata says, decided before anything is written.
struct GgufMetadataPlan {
  std::string architecture;        ///< the input's `general.architecture`
  std::string output_architecture;  ///< "deci" when per-layer counts need it, else the input's
  std::string original_architecture;  ///< recorded in `mhaprune.original_architecture` when renamed
  bool per_layer_counts = false;    ///< write INT32 arrays instead of UINT32 scalars
  Index head_dim = 0;
  std::vector<Index> heads, kv_heads;                    ///< per layer, after pruning
  std::vector<Index> original_heads, original_kv_heads;  ///< per layer, of the unpruned model
  /// Per layer: original ids kept (empty vectors for layers without attention).
  std::vector<std::vector<Index>> head_ids, kv_head_ids;
  std::vector<std::string> requantized;  ///< tensors re-encoded
};

namespace detail {

inline io::GgufValue gguf_int32_array(const std::vector<Index>& values) {
  std::vector<std::int32_t> v;
  v.reserve(values.size());
  for (const Index x : values) v.push_back(static_cast<std::int32_t>(x));
  return io::GgufValue::int32_array(v);
}

inline bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

}  // namespace detail

/// The KVs of a pruned shard: the input's in their order, types and bytes, except
/// - earlier `mhaprune.*` keys, replaced by new ones at the end (first shard only);
/// - with a rename, `general.architecture` and every `<arch>.` key moved to the new architecture;
/// - `<arch>.attention.head_count` / `head_count_kv` with the new counts (UINT32 scalars when
///   every layer has the same, else INT32 arrays of one count per layer, as llama.cpp reads them),
///   and `key_length` / `value_length` (UINT32) always, since llama.cpp otherwise derives the head
///   width from layer 0's count. Keys the input lacks are added after its last `<arch>.` key.
/// Shards after the first carry only split keys in llama.cpp's layout; they are passed through
/// (renamed too, should they hold architecture keys) with `first_shard` false.
inline std::vector<io::GgufKv> pruned_gguf_kvs(const std::vector<io::GgufKv>& input, const GgufMetadataPlan& plan,
                                               bool first_shard) {
  const std::string in_prefix = plan.architecture + ".", out_prefix = plan.output_architecture + ".";
  const bool rename = plan.output_architecture != plan.architecture;
  const auto counts = [&](const std::vector<Index>& v) {
    return plan.per_layer_counts ? detail::gguf_int32_array(v)
                                 : io::GgufValue::uint32(static_cast<std::uint32_t>(v.front()));
  };
  std::vector<std::pair<std::string, io::GgufValue>> wanted;
  if (first_shard) {
    wanted = {{out_prefix + "attention.head_count", counts(plan.heads)},
              {out_prefix + "attention.head_count_kv", counts(plan.kv_heads)},
              {out_prefix + "attention.key_length", io::GgufValue::uint32(static_cast<std::uint32_t>(plan.head_dim))},
              {out_prefix + "attention.value_length",
               io::GgufValue::uint32(static_cast<std::uint32_t>(plan.head_dim))}};
  }
  std::vector<io::GgufKv> out;
  std::vector<bool> written(wanted.size(), false);
  std::size_t last_arch_key = 0;
  for (const io::GgufKv& kv : input) {
    if (detail::starts_with(kv.key, "mhaprune.")) continue;
    io::GgufKv next = kv;
    if (rename && detail::starts_with(kv.key, in_prefix)) next.key = out_prefix + kv.key.substr(in_prefix.size());
    if (rename && kv.key == "general.architecture") next.value = io::GgufValue::string(plan.output_architecture);
    for (std::size_t i = 0; i < wanted.size(); ++i) {
      if (next.key == wanted[i].first) {
        next.value = wanted[i].second;
        written[i] = true;
      }
    }
    out.push_back(std::move(next));
    if (detail::starts_with(out.back().key, out_prefix)) last_arch_key = out.size();
  }
  std::vector<io::GgufKv> missing;
  for (std::size_t i = 0; i < wanted.size(); ++i)
    if (!written[i]) missing.push_back({wanted[i].first, wanted[i].second});
  out.insert(out.begin() + static_cast<std::ptrdiff_t>(last_arch_key), missing.begin(), missing.end());
  if (!first_shard) return out;

  out.push_back({"mhaprune.version", io::GgufValue::string(MHAPRUNE_VERSION_STRING)});
  if (rename || !plan.original_architecture.empty()) {
    out.push_back({"mhaprune.original_architecture",
                   io::GgufValue::string(plan.original_architecture.empty() ? plan.architecture
                                                                            : plan.original_architecture)});
  }
  out.push_back({"mhaprune.original_head_count", detail::gguf_int32_array(plan.original_heads)});
  out.push_back({"mhaprune.original_head_count_kv", detail::gguf_int32_array(plan.original_kv_heads)});
  for (std::size_t layer = 0; layer < plan.head_ids.size(); ++layer) {
    if (plan.heads[layer] == 0) continue;
    out.push_back({mhaprune::detail::message("mhaprune.head_ids.", layer), detail::gguf_int32_array(plan.head_ids[layer])});
    out.push_back({mhaprune::detail::message("mhaprune.kv_head_ids.", layer),
                   detail::gguf_int32_array(plan.kv_head_ids[layer])});
  }
  if (!plan.requantized.empty())
    out.push_back({"mhaprune.requantized", io::GgufValue::string_array(plan.requantized)});
  return out;
}

}  // namespace mhaprune::checkpoint
