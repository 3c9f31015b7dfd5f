// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>
#include <string>
#include <string_view>

#include "mhaprune/error.hpp"

namespace mhaprune {

/// How the target rises from the initial sparsity to the final one over the pruning steps.
enum class Decay { linear, cube, cos, exp };

inline const char* to_string(Decay d) noexcept {
  switch (d) {
    case Decay::linear:
      return "linear";
    case Decay::cube:
      return "cube";
    case Decay::cos:
      return "cos";
    case Decay::exp:
      return "exp";
  }
  return "?";
}

/// Parses "linear", "cube", "cos" or "exp"; throws `error` listing them otherwise.
inline Decay parse_decay(std::string_view name) {
  for (Decay d : {Decay::linear, Decay::cube, Decay::cos, Decay::exp})
    if (name == to_string(d)) return d;
  throw error(detail::message("unknown sparsity decay \"", name, "\"; valid: linear, cube, cos, exp"));
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
