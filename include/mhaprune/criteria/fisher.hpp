// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include "mhaprune/criteria/gate_importance.hpp"

namespace mhaprune {

/// (∂L/∂ξ_h)² for one batch.
struct FisherGateFn {
  static constexpr const char* name = "fisher";
  static double apply(double g) noexcept { return g * g; }
};

/// Kwon et al. 2022 ("A Fast Post-Training Pruning Framework for Transformers"): the diagonal of the
/// empirical Fisher information of the head gates, I_h = Σ_batches (∂L_b/∂ξ_h)². Feed it with `update`
/// once per batch (see `GateImportance`); `normalize` is available as for `Taylor`.
using Fisher = GateImportance<FisherGateFn>;

}  // namespace mhaprune
