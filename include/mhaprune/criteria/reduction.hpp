// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "mhaprune/error.hpp"

namespace mhaprune {

/// How an element-wise criterion turns one head's slice of a weight (its `d x D` rows of Q, K or V,
/// or its `D x d` columns of O) into one number.
///
/// - `mean`: Σ s / (d·D), the reference pruner's default.
/// - `sum`: Σ s; for a block, `sum` = d·D·`mean`, so both rank heads the same way (see `RoleWeights`
///   for why GQA keeps that true).
/// - `max`: max s.
/// - `l2`: sqrt(Σ s²).
///
/// A NaN element score makes `mean`, `sum` and `l2` NaN; `max` skips it.
enum class Reduction : std::uint8_t { mean, sum, max, l2 };

/// Every reduction, in the order `reduction_names()` lists them.
inline constexpr std::array<Reduction, 4> all_reductions{Reduction::mean, Reduction::sum, Reduction::max,
                                                         Reduction::l2};

inline const char* to_string(Reduction r) noexcept {
  switch (r) {
    case Reduction::mean:
      return "mean";
    case Reduction::sum:
      return "sum";
    case Reduction::max:
      return "max";
    case Reduction::l2:
      return "l2";
  }
  return "?";
}

/// "mean|sum|max|l2", for messages and help texts.
inline std::string reduction_names() {
  std::string s;
  for (Reduction r : all_reductions) {
    s += s.empty() ? "" : "|";
    s += std::string(to_string(r));
  }
  return s;
}

/// The reduction named `name` (exactly, lower case), for configuration files.
/// @throws config_error naming the valid reductions when there is none of that name.
inline Reduction parse_reduction(std::string_view name) {
  for (Reduction r : all_reductions)
    if (name == to_string(r)) return r;
  throw config_error(
      detail::message("parse_reduction(): unknown reduction \"", name, "\"; valid: ", reduction_names()));
}

}  // namespace mhaprune
