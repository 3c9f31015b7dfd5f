// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>

#include "mhaprune/criteria/gate_importance.hpp"

namespace mhaprune {

/// |∂L/∂ξ_h| for one batch.
struct TaylorGateFn {
  static constexpr const char* name = "taylor";
  static double apply(double g) noexcept { return std::abs(g); }
};

/// Michel et al. 2019 ("Are Sixteen Heads Really Better than One?"): I_h = Σ_batches |∂L/∂ξ_h|, the
/// expected first-order loss change when head h's gate goes to 0. They average over examples; a sum
/// ranks the same within a run. `GateImportanceOptions::normalize` applies their per-layer L2
/// normalisation. Feed it with `update` once per batch (see `GateImportance`).
using Taylor = GateImportance<TaylorGateFn>;

}  // namespace mhaprune
