// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>

#include "mhaprune/criteria/element_wise.hpp"

namespace mhaprune {

/// Element function |W ⊙ G|, the first-order Taylor estimate of the loss change when the weight goes.
struct SnipFn {
  static constexpr const char* name = "snip";
  static constexpr bool uses_weight = true;
  static constexpr bool uses_gradient = true;
  template <typename T>
  static T apply(T w, T g) noexcept {
    return std::abs(w * g);
  }
};

/// SNIP (Lee et al. 2019; LLM-Pruner's first-order term): reductions of |W ⊙ ∂L/∂W| over each head's
/// slices. Needs a gradient for every Q/K/V/O weight tensor of the block.
using Snip = ElementWise<SnipFn>;

}  // namespace mhaprune
