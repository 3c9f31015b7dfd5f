// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// `mhaprune inspect` as a table for people: a summary of the model, then one line per block. Drawn
// from the JSON `inspect --json` writes, so the two never disagree.
#pragma once

#include <fmt/format.h>

#include <cstdint>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "mhaprune/core/types.hpp"
#include "table_text.hpp"

namespace mhaprune_cli {

namespace detail {

/// "model         PATH": a summary line, its value in the 15th column.
inline void append_summary_line(std::string& out, const std::string& key, const std::string& value) {
  fmt::format_to(std::back_inserter(out), "{:<13} {}\n", key, value);
}

/// "F32: 12 tensors, 1,234 parameters, BF16: ...".
inline std::string dtypes_text(const nlohmann::json& dtypes) {
  std::string out;
  for (const auto& [name, d] : dtypes.items()) {
    out += out.empty() ? "" : ", ";
    fmt::format_to(std::back_inserter(out), "{}: {} tensors, {} parameters", name,
                   d.at("tensors").get<std::uint64_t>(), grouped(d.at("parameters").get<std::uint64_t>()));
  }
  return out;
}

/// One block's line: "NOW/ORIGINAL" head counts, sizes, dtype, parameters, the head ids present.
inline void append_block_line(std::string& out, const nlohmann::json& b) {
  const auto count = [&b](const char* now, const char* was) {
    return fmt::format("{}/{}", b.at(now).get<mhaprune::Index>(), b.at(was).get<mhaprune::Index>());
  };
  fmt::format_to(std::back_inserter(out), "{:<6} {} {:<9} {:<9} {:<5} {:<6} {:<11} {:>12}  {}\n",
                 b.at("index").get<long>(), left_aligned(b.at("name").get<std::string>(), 40),
                 count("heads", "original_heads"), count("kv_heads", "original_kv_heads"),
                 b.at("head_dim").get<long>(), b.at("model_dim").get<long>(),
                 b.at("dtype").get<std::string>(), grouped(b.at("parameters").get<std::uint64_t>()),
                 id_ranges(b.at("head_ids").get<std::vector<mhaprune::Index>>()));
}

}  // namespace detail

/// `inspect_json`'s content (of a checkpoint or a GGUF model) as a table for people.
/// @param j what `inspect_json` returns
/// @param architecture the second line's text
/// @param pruned_note what follows the head count (may be "")
inline std::string inspect_table(const nlohmann::json& j, const std::string& architecture,
                                 const std::string& pruned_note) {
  std::string out;
  detail::append_summary_line(out, "model", j.at("path").get<std::string>());
  detail::append_summary_line(out, "architecture", architecture);
  const nlohmann::json& files = j.at("files");
  detail::append_summary_line(out, "files",
                              fmt::format("{} ({}{})", files.size(), files.at(0).get<std::string>(),
                                          files.size() > 1 ? ", ..." : ""));
  detail::append_summary_line(out, "tensors",
                              fmt::format("{}, {} parameters, {} of them in attention blocks",
                                          grouped(j.at("tensors").get<std::uint64_t>()),
                                          grouped(j.at("parameters").get<std::uint64_t>()),
                                          grouped(j.at("attention_parameters").get<std::uint64_t>())));
  detail::append_summary_line(out, "dtypes", detail::dtypes_text(j.at("dtypes")));
  mhaprune::Index heads = 0, original = 0;
  for (const auto& b : j.at("blocks")) {
    heads += b.at("heads").get<mhaprune::Index>();
    original += b.at("original_heads").get<mhaprune::Index>();
  }
  detail::append_summary_line(
      out, "heads",
      fmt::format("{} of {} in {} blocks{}", heads, original, j.at("blocks").size(), pruned_note));
  fmt::format_to(std::back_inserter(out), "\n{:<6} {:<40} {:<9} {:<9} {:<5} {:<6} {:<11} {:>12}  {}\n",
                 "block", "name", "heads", "kv_heads", "d", "D", "dtype", "parameters", "head ids present");
  for (const auto& b : j.at("blocks")) detail::append_block_line(out, b);
  return out;
}

}  // namespace mhaprune_cli
