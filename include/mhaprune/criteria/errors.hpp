// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include "mhaprune/error.hpp"

namespace mhaprune {

/// A criterion was asked to score or update a block without the evidence it needs: no gradient for one
/// of the block's weight tensors, no gate gradients, no activation statistics, or (for the criteria
/// that accumulate over steps) no accumulated state for the block yet. Mis-shaped evidence is a
/// `shape_error` instead.
class evidence_error : public error {
 public:
  using error::error;
};

/// A criterion configuration that cannot be used: an unknown criterion or reduction name, a name
/// registered twice, a role weight or momentum coefficient that is negative or not finite.
class config_error : public error {
 public:
  using error::error;
};

}  // namespace mhaprune
