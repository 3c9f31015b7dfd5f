// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mhaprune::detail {

/// The one list of an enum's names: `to_string`, the parser, the JSON reader and writer and the
/// tool's option choices all read it, so that a name is written down once.
///
/// @tparam Enum the enumeration
/// @tparam N    how many values it has (each listed once, in the order messages list them)
template <typename Enum, std::size_t N>
struct NameTable {
  std::array<std::pair<Enum, const char*>, N> entries;

  /// The name of `value`; "?" for a value outside the table (a cast from an out-of-range integer).
  constexpr const char* name(Enum value) const noexcept {
    for (const auto& e : entries)
      if (e.first == value) return e.second;
    return "?";
  }

  /// The value named exactly `text`, if any.
  constexpr std::optional<Enum> find(std::string_view text) const noexcept {
    for (const auto& e : entries)
      if (text == e.second) return e.first;
    return std::nullopt;
  }

  /// Every name, in table order.
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& e : entries) out.emplace_back(e.second);
    return out;
  }

  /// Every name joined by `separator`: "a, b, c" or "a|b|c".
  std::string joined(std::string_view separator = ", ") const {
    std::string out;
    for (const auto& e : entries) {
      if (!out.empty()) out += separator;
      out += e.second;
    }
    return out;
  }
};

}  // namespace mhaprune::detail
