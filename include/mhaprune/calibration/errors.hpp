// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include "mhaprune/error.hpp"

namespace mhaprune {

/// Calibration data that cannot be used: a NaN or infinity in a batch, statistics read before any
/// sample was added, a sample variance asked of one sample, or stored moments that cannot be real.
class calibration_error : public error {
 public:
  using error::error;
};

}  // namespace mhaprune
