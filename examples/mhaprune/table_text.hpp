// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// How numbers and names appear in the tables the tool prints (inspect, score, prune).
#pragma once

#include <fmt/format.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mhaprune/core/types.hpp"

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

/// "12.5%" for 0.125: four significant digits.
inline std::string percent(double fraction) { return fmt::format("{:.4g}%", 100.0 * fraction); }

/// `text` padded with blanks to `width` bytes. {fmt} pads to a display width, which differs from
/// the byte count for non-ASCII text; tensor names are padded by bytes as they always were, so that
/// the tables stay the same byte for byte whatever the names.
inline std::string left_aligned(std::string_view text, std::size_t width) {
  std::string out(text);
  if (out.size() < width) out.append(width - out.size(), ' ');
  return out;
}

}  // namespace mhaprune_cli
