// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// `mhaprune inspect` of a GGUF model: the same JSON keys and table as for a checkpoint, with the
// ggml tensor types in place of dtypes and the metadata llama.cpp reads.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "inspect.hpp"
#include "inspect_table.hpp"
#include "mhaprune/checkpoint/gguf_model.hpp"

namespace mhaprune_cli {

/// Elements of the tensors a GGUF block binds, and the type of its first weight (Q or fused QKV).
inline std::uint64_t block_parameters(const mhaprune::checkpoint::GgufModel& m,
                                      const mhaprune::checkpoint::BlockInfo& b) {
  std::uint64_t n = 0;
  for (const auto& t : b.tensor_names) n += m.files().tensor(t).element_count();
  return n;
}

inline std::string block_type(const mhaprune::checkpoint::GgufModel& m,
                              const mhaprune::checkpoint::BlockInfo& b) {
  const std::string& first = b.tensors.q.empty() ? b.tensors.qkv : b.tensors.q;
  const std::string q = mhaprune::io::to_string(m.files().tensor(first).type);
  const std::string o = mhaprune::io::to_string(m.files().tensor(b.tensors.o).type);
  return q == o ? q : q + "/" + o;
}

/// `inspect --json` of a GGUF model: {"path", "format": "gguf", "architecture",
/// "original_architecture", "files", "tensors", "parameters", "attention_parameters",
/// "dtypes": {TYPE: {"tensors", "parameters"}}, "pruned_before", "head_dim", "model_dim",
/// "block_count", "blocks": [as for a checkpoint, "dtype" being "q/o" types]}.
inline nlohmann::json inspect_json(const mhaprune::checkpoint::GgufModel& m) {
  using nlohmann::json;
  json dtypes = json::object();
  std::uint64_t tensors = 0;
  json files = json::array();
  for (const auto& shard : m.files().shards()) {
    files.push_back(shard.path());
    for (const auto& info : shard.tensors()) {
      tally(dtypes, mhaprune::io::to_string(info.type), info.element_count());
      ++tensors;
    }
  }
  json blocks = json::array();
  std::uint64_t attention = 0;
  for (const auto& b : m.blocks()) {
    const std::uint64_t params = block_parameters(m, b);
    attention += params;
    blocks.push_back(block_json(b, block_type(m, b), params));
  }
  return {{"path", m.path()},
          {"format", "gguf"},
          {"architecture", m.architecture()},
          {"original_architecture", m.original_architecture()},
          {"files", files},
          {"tensors", tensors},
          {"parameters", m.parameter_count()},
          {"attention_parameters", attention},
          {"dtypes", dtypes},
          {"pruned_before", m.pruned_before() ? json("mhaprune.* keys") : json(nullptr)},
          {"head_dim", m.head_dim()},
          {"model_dim", m.model_dim()},
          {"block_count", m.block_count()},
          {"blocks", blocks}};
}

/// A GGUF model as a table for people ("dtype" shows the Q and O ggml types).
inline std::string inspect_table(const mhaprune::checkpoint::GgufModel& m) {
  const std::string renamed = m.original_architecture() != m.architecture()
                                  ? "; originally " + m.original_architecture()
                                  : std::string();
  return inspect_table(inspect_json(m), m.architecture() + " (GGUF general.architecture" + renamed + ")",
                       m.pruned_before() ? " (pruned before; from its mhaprune.* keys)" : "");
}

}  // namespace mhaprune_cli
