// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>

#include "mhaprune/criteria/element_wise.hpp"

namespace mhaprune {

/// Element function |G|, G = ∂L/∂W.
struct GradientFn {
  static constexpr const char* name = "gradient";
  static constexpr bool uses_weight = false;
  static constexpr bool uses_gradient = true;
  template <typename T>
  static T apply(T, T g) noexcept {
    return std::abs(g);
  }
};

/// Gradient magnitude: reductions of |∂L/∂W| over each head's slices. The evidence must hold a
/// gradient for every Q/K/V/O weight tensor of the block (the caller's accumulated gradients; the
/// weights themselves are not read).
using Gradient = ElementWise<GradientFn>;

}  // namespace mhaprune
