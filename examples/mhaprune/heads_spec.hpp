// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// `--heads LAYER:ID,ID;LAYER:ID`: the heads to remove, named by block index (model order) and
// original head id. Only the syntax is checked here; whether the layer and ids exist is the
// library's to say, since only it knows the model.
#pragma once

#include <algorithm>
#include <cctype>
#include <cstddef>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "exit_codes.hpp"
#include "mhaprune/core/types.hpp"

namespace mhaprune_cli {

using mhaprune::Index;
/// Block index -> original ids of the heads to remove, ascending and unique.
using HeadsSpec = std::map<Index, std::vector<Index>>;

namespace detail {

inline std::string_view trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

inline std::vector<std::string_view> split(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  for (;;) {
    const std::size_t at = s.find(sep);
    parts.push_back(s.substr(0, at));
    if (at == std::string_view::npos) return parts;
    s.remove_prefix(at + 1);
  }
}

[[noreturn]] inline void bad_heads(std::string_view spec, std::string_view token, const char* why) {
  throw usage_error("--heads \"" + std::string(spec) + "\": \"" + std::string(token) + "\" " + why +
                    " (expected LAYER:ID,ID;LAYER:ID, e.g. 0:1,5;3:2)");
}

inline Index parse_number(std::string_view spec, std::string_view token, const char* what) {
  const std::string_view t = trimmed(token);
  if (t.empty()) bad_heads(spec, token, what);
  Index value = 0;
  for (const char c : t) {
    if (c < '0' || c > '9') bad_heads(spec, t, what);
    if (value > (std::numeric_limits<Index>::max() - (c - '0')) / 10) bad_heads(spec, t, "is too large");
    value = value * 10 + (c - '0');
  }
  return value;
}

}  // namespace detail

/// Parses a --heads value. Blanks around tokens are ignored and a trailing ';' is allowed; a layer
/// may appear in several groups (their ids are merged).
/// @throws usage_error quoting the offending token: an empty spec, a group without ':', a layer or
///         id that is not a non-negative integer, a layer with no ids, an id named twice.
inline HeadsSpec parse_heads_spec(std::string_view spec) {
  HeadsSpec out;
  std::vector<std::string_view> groups = detail::split(spec, ';');
  if (groups.size() > 1 && detail::trimmed(groups.back()).empty()) groups.pop_back();
  for (const std::string_view group : groups) {
    const std::string_view g = detail::trimmed(group);
    if (g.empty()) detail::bad_heads(spec, group, "is an empty group");
    const std::size_t colon = g.find(':');
    if (colon == std::string_view::npos) detail::bad_heads(spec, g, "has no ':' between layer and ids");
    const Index layer = detail::parse_number(spec, g.substr(0, colon), "is not a layer number");
    const std::string_view ids = g.substr(colon + 1);
    if (detail::trimmed(ids).empty()) detail::bad_heads(spec, g, "names no head ids");
    std::vector<Index>& heads = out[layer];
    for (const std::string_view id_token : detail::split(ids, ',')) {
      const Index id = detail::parse_number(spec, id_token, "is not a head id");
      for (const Index seen : heads)
        if (seen == id) detail::bad_heads(spec, detail::trimmed(id_token), "is named twice for one layer");
      heads.push_back(id);
    }
  }
  for (auto& entry : out) std::sort(entry.second.begin(), entry.second.end());
  return out;
}

}  // namespace mhaprune_cli
