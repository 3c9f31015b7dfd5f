// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>
#include <string>
#include <string_view>

#include "mhaprune/core/detail/name_table.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// How the target rises from the initial sparsity to the final one over the pruning steps.
enum class Decay { linear, cube, cos, exp };

/// The names of the decays, in the order messages list them: linear, cube, cos, exp.
inline constexpr detail::NameTable<Decay, 4> decay_names{
    {{{Decay::linear, "linear"}, {Decay::cube, "cube"}, {Decay::cos, "cos"}, {Decay::exp, "exp"}}}};

inline const char* to_string(Decay d) noexcept { return decay_names.name(d); }

/// Parses "linear", "cube", "cos" or "exp"; throws `error` listing them otherwise.
inline Decay parse_decay(std::string_view name) {
  if (const auto d = decay_names.find(name)) return *d;
  throw error(detail::message("unknown sparsity decay \"", name, "\"; valid: ", decay_names.joined()));
}

/// The target after pruning step `i` of `n` (0 <= i <= n, n >= 1), rising from `initial` to `final`;
/// the reference pruner's formulas:
/// linear `s0 + (s - s0) i/n`, cube `s0 + (s - s0) (i/n)^3`, cos `s0 + (s - s0)(1 - cos(i/n pi/2))`,
/// exp `1 - (1 - s0) ((1 - s)/(1 - s0))^(i/n)`.
inline double decayed_target(Decay decay, double initial, double final_target, long i, long n) noexcept {
  const double f = static_cast<double>(i) / static_cast<double>(n);
  const double pi = 3.14159265358979323846;
  switch (decay) {
    case Decay::linear:
      return initial + (final_target - initial) * f;
    case Decay::cube:
      return initial + (final_target - initial) * f * f * f;
    case Decay::cos:
      return initial + (final_target - initial) * (1.0 - std::cos(f * pi / 2.0));
    case Decay::exp:
      if (initial >= 1.0) return 1.0;
      return 1.0 - (1.0 - initial) * std::pow((1.0 - final_target) / (1.0 - initial), f);
  }
  return final_target;
}

}  // namespace mhaprune
