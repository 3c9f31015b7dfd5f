// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include "mhaprune/error.hpp"

namespace mhaprune {

/// A compensation that cannot be computed from what it was given: statistics that are missing, have
/// no tokens, have a channel count other than the block's current H*d, lack the Gram matrix a method
/// needs, or hold values that are not finite; options out of range; a factorisation that fails (a
/// damping of 0 on a singular matrix); or a result that does not fit the block's element type. The
/// block is unchanged when it is thrown.
class compensation_error : public error {
 public:
  using error::error;
};

}  // namespace mhaprune
