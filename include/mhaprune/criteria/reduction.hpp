// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#include "mhaprune/core/detail/name_table.hpp"
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

/// The names of the reductions, in `all_reductions` order: mean, sum, max, l2.
inline constexpr detail::NameTable<Reduction, 4> reduction_table{
    {{{Reduction::mean, "mean"}, {Reduction::sum, "sum"}, {Reduction::max, "max"}, {Reduction::l2, "l2"}}}};

inline const char* to_string(Reduction r) noexcept { return reduction_table.name(r); }

/// "mean|sum|max|l2", for messages and help texts.
inline std::string reduction_names() { return reduction_table.joined("|"); }

/// The reduction named `name` (exactly, lower case), for configuration files.
/// @throws config_error naming the valid reductions when there is none of that name.
inline Reduction parse_reduction(std::string_view name) {
  if (const auto r = reduction_table.find(name)) return *r;
  throw config_error(
      detail::message("parse_reduction(): unknown reduction \"", name, "\"; valid: ", reduction_names()));
}

}  // namespace mhaprune
