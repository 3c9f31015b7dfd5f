// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// `mhaprune inspect`: what the library made of a checkpoint, as JSON (and as the table drawn from it).
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "inspect_table.hpp"
#include "mhaprune/checkpoint/open.hpp"
#include "mhaprune/io/dtype.hpp"

namespace mhaprune_cli {

/// Elements of the tensors a block binds.
inline std::uint64_t block_parameters(const mhaprune::checkpoint::Checkpoint& ck,
                                      const mhaprune::checkpoint::BlockInfo& b) {
  std::uint64_t n = 0;
  for (const auto& t : b.tensor_names) n += ck.reader().info(t).element_count();
  return n;
}

/// Counts one tensor of `type` with `elements` elements into `inspect_json`'s "dtypes".
inline void tally(nlohmann::json& dtypes, const std::string& type, std::uint64_t elements) {
  nlohmann::json& d = dtypes[type];
  if (d.is_null()) d = {{"tensors", std::uint64_t{0}}, {"parameters", std::uint64_t{0}}};
  d["tensors"] = d["tensors"].get<std::uint64_t>() + 1;
  d["parameters"] = d["parameters"].get<std::uint64_t>() + elements;
}

/// One block of `inspect_json`'s "blocks".
inline nlohmann::json block_json(const mhaprune::checkpoint::BlockInfo& b, const std::string& dtype,
                                 std::uint64_t parameters) {
  return {{"index", b.index},
          {"name", b.name},
          {"layer", b.layer},
          {"heads", b.layout.heads()},
          {"kv_heads", b.layout.kv_heads()},
          {"original_heads", b.original_heads},
          {"original_kv_heads", b.original_kv_heads},
          {"head_dim", b.layout.head_dim()},
          {"model_dim", b.layout.model_dim()},
          {"head_ids", b.head_ids},
          {"kv_head_ids", b.kv_head_ids},
          {"dtype", dtype},
          {"parameters", parameters},
          {"tensors", b.tensor_names}};
}

/// Everything `inspect` shows, as JSON: {"path", "architecture", "detected_from", "files",
/// "tensors", "parameters", "attention_parameters", "dtypes": {DTYPE: {"tensors", "parameters"}},
/// "pruned_before", "blocks": [{"index", "name", "layer", "heads", "kv_heads", "original_heads",
/// "original_kv_heads", "head_dim", "model_dim", "head_ids", "kv_head_ids", "dtype", "parameters",
/// "tensors"}]}.
inline nlohmann::json inspect_json(const mhaprune::checkpoint::Checkpoint& ck) {
  using nlohmann::json;
  const auto& reader = ck.reader();
  json dtypes = json::object();
  std::uint64_t tensors = 0;
  for (const auto& [name, file] : reader.weight_map()) {
    const auto& info = reader.info(name);
    tally(dtypes, std::string(mhaprune::io::to_string(info.dtype)), info.element_count());
    ++tensors;
  }
  json blocks = json::array();
  std::uint64_t attention = 0;
  for (const auto& b : ck.blocks()) {
    const std::uint64_t params = block_parameters(ck, b);
    attention += params;
    blocks.push_back(block_json(b, std::string(mhaprune::io::to_string(b.dtype)), params));
  }
  return {{"path", ck.path()},
          {"architecture", ck.architecture()},
          {"detected_from", ck.detected_from()},
          {"files", reader.shard_files()},
          {"tensors", tensors},
          {"parameters", ck.parameter_count()},
          {"attention_parameters", attention},
          {"dtypes", dtypes},
          {"pruned_before", ck.history() ? json(ck.history()->source) : json(nullptr)},
          {"blocks", blocks}};
}

/// A checkpoint as a table for people.
inline std::string inspect_table(const mhaprune::checkpoint::Checkpoint& ck) {
  return inspect_table(inspect_json(ck), ck.architecture() + " (from " + ck.detected_from() + ")",
                       ck.history() ? " (pruned before; from its " + ck.history()->source + ")" : "");
}

}  // namespace mhaprune_cli
