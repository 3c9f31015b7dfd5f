// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// `mhaprune inspect`: what the library made of a checkpoint, as a table or as JSON.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mhaprune/checkpoint/open.hpp"
#include "mhaprune/io/dtype.hpp"

namespace mhaprune_cli {

/// "0-3,5,7-8": ascending ids as ranges.
inline std::string id_ranges(const std::vector<mhaprune::Index>& ids) {
  std::string out;
  for (std::size_t i = 0; i < ids.size();) {
    std::size_t j = i;
    while (j + 1 < ids.size() && ids[j + 1] == ids[j] + 1) ++j;
    out += out.empty() ? "" : ",";
    out += std::to_string(ids[i]);
    if (j > i) out += (j == i + 1 ? "," : "-") + std::to_string(ids[j]);
    i = j + 1;
  }
  return out;
}

/// "1,234,567".
inline std::string grouped(std::uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (std::size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

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

/// `inspect_json`'s content as a table for people (checkpoints and GGUF models alike):
/// `architecture` is the second line's text, `pruned_note` what follows the head count (may be "").
inline std::string inspect_table(const nlohmann::json& j, const std::string& architecture,
                                 const std::string& pruned_note) {
  std::string out;
  char line[512];
  const auto add = [&out](const std::string& key, const std::string& value) {
    out += key;
    out += std::string(key.size() < 14 ? 14 - key.size() : 1, ' ');
    out += value + '\n';
  };
  add("model", j.at("path").get<std::string>());
  add("architecture", architecture);
  std::string dtypes;
  for (const auto& [name, d] : j.at("dtypes").items()) {
    dtypes += dtypes.empty() ? "" : ", ";
    dtypes += name + ": " + std::to_string(d.at("tensors").get<std::uint64_t>()) + " tensors, " +
              grouped(d.at("parameters").get<std::uint64_t>()) + " parameters";
  }
  add("files", std::to_string(j.at("files").size()) + " (" + j.at("files").at(0).get<std::string>() +
                   (j.at("files").size() > 1 ? ", ..." : "") + ")");
  add("tensors", grouped(j.at("tensors").get<std::uint64_t>()) + ", " +
                     grouped(j.at("parameters").get<std::uint64_t>()) + " parameters, " +
                     grouped(j.at("attention_parameters").get<std::uint64_t>()) + " of them in attention blocks");
  add("dtypes", dtypes);
  mhaprune::Index heads = 0, original = 0;
  for (const auto& b : j.at("blocks")) heads += b.at("heads").get<mhaprune::Index>(), original += b.at("original_heads").get<mhaprune::Index>();
  add("heads", std::to_string(heads) + " of " + std::to_string(original) + " in " +
                   std::to_string(j.at("blocks").size()) + " blocks" + pruned_note);
  out += '\n';
  std::snprintf(line, sizeof line, "%-6s %-40s %-9s %-9s %-5s %-6s %-11s %12s  %s\n", "block", "name", "heads",
                "kv_heads", "d", "D", "dtype", "parameters", "head ids present");
  out += line;
  for (const auto& b : j.at("blocks")) {
    const auto count = [&b](const char* now, const char* was) {
      return std::to_string(b.at(now).get<mhaprune::Index>()) + "/" + std::to_string(b.at(was).get<mhaprune::Index>());
    };
    std::snprintf(line, sizeof line, "%-6ld %-40s %-9s %-9s %-5ld %-6ld %-11s %12s  %s\n",
                  b.at("index").get<long>(), b.at("name").get<std::string>().c_str(),
                  count("heads", "original_heads").c_str(), count("kv_heads", "original_kv_heads").c_str(),
                  b.at("head_dim").get<long>(), b.at("model_dim").get<long>(), b.at("dtype").get<std::string>().c_str(),
                  grouped(b.at("parameters").get<std::uint64_t>()).c_str(),
                  id_ranges(b.at("head_ids").get<std::vector<mhaprune::Index>>()).c_str());
    out += line;
  }
  return out;
}

/// A checkpoint as a table for people.
inline std::string inspect_table(const mhaprune::checkpoint::Checkpoint& ck) {
  return inspect_table(inspect_json(ck), ck.architecture() + " (from " + ck.detected_from() + ")",
                       ck.history() ? " (pruned before; from its " + ck.history()->source + ")" : "");
}

}  // namespace mhaprune_cli
