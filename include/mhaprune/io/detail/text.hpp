// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mhaprune::io::detail {

/// Offset of the first byte that breaks UTF-8 (overlong forms, surrogates and code points past
/// U+10FFFF included), or `text.size()` if there is none.
inline std::size_t utf8_error_offset(std::string_view text) noexcept {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    const unsigned char c = s[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t len;
    unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      len = 3;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      len = 4;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
    } else {
      return i;
    }
    if (n - i < len) return i;
    if (s[i + 1] < lo || s[i + 1] > hi) return i;
    for (std::size_t k = 2; k < len; ++k) {
      if (s[i + k] < 0x80 || s[i + k] > 0xBF) return i;
    }
    i += len;
  }
  return n;
}

/// A name as a JSON string literal (quoted, control characters escaped, bad UTF-8 replaced), cut to
/// a readable length: names come from files and may be anything.
inline std::string quoted(std::string_view name) {
  constexpr std::size_t max_chars = 160;
  std::string shown(name.substr(0, max_chars));
  std::string out = nlohmann::json(shown).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (name.size() > max_chars) out += "...";
  return out;
}

/// "[2, 3, 4]"; "[]" for a scalar.
inline std::string shape_string(const std::vector<std::uint64_t>& shape) {
  std::string out = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i != 0) out += ", ";
    out += std::to_string(shape[i]);
  }
  out += ']';
  return out;
}

/// Up to `count` of `names` (sorted), those sharing the longest prefix with `wanted` first, as a
/// quoted comma-separated list: what a "no such tensor" message offers instead.
inline std::string similar_names(const std::vector<std::string_view>& names, std::string_view wanted,
                                 std::size_t count = 5) {
  std::vector<std::pair<std::size_t, std::size_t>> ranked;  // (-prefix length, index)
  ranked.reserve(names.size());
  for (std::size_t i = 0; i < names.size(); ++i) {
    std::size_t p = 0;
    while (p < names[i].size() && p < wanted.size() && names[i][p] == wanted[p]) ++p;
    ranked.emplace_back(~p, i);  // larger prefix sorts first
  }
  const std::size_t k = std::min(count, ranked.size());
  std::partial_sort(ranked.begin(), ranked.begin() + static_cast<std::ptrdiff_t>(k), ranked.end());
  std::string out;
  for (std::size_t j = 0; j < k; ++j) {
    if (j != 0) out += ", ";
    out += quoted(names[ranked[j].second]);
  }
  if (names.size() > k) out += ", ...";
  return out;
}

}  // namespace mhaprune::io::detail
