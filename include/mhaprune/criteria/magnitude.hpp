// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>

#include "mhaprune/criteria/element_wise.hpp"

namespace mhaprune {

/// Element function |W|.
struct MagnitudeFn {
  static constexpr const char* name = "magnitude";
  static constexpr bool uses_weight = true;
  static constexpr bool uses_gradient = false;
  template <typename T>
  static T apply(T w, T) noexcept {
    return std::abs(w);
  }
};

/// Weight magnitude: a head's score is the role-weighted average of the reductions (default: mean) of
/// |W| over its slices of Q, K, V and O. Needs no evidence. Default-constructed it is the reference
/// pruner's "magnitude" criterion with mean reduction, and the pruner's default criterion.
/// For an element-wise criterion of your own, give `ElementWise` an element function like
/// `MagnitudeFn`; for any other, see mhaprune/criteria/concept.hpp.
using Magnitude = ElementWise<MagnitudeFn>;

}  // namespace mhaprune
