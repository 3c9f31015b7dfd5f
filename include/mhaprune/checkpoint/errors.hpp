// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include "mhaprune/io/io_error.hpp"

namespace mhaprune::checkpoint {

/// A checkpoint whose config.json or tensors do not fit its architecture preset (head counts that
/// do not divide the width, tensors missing or shaped otherwise, an unknown architecture, a bad
/// user preset or `mhaprune` section). A `corrupt_file_error`, so callers treat it as bad input.
class preset_error : public corrupt_file_error {
 public:
  using corrupt_file_error::corrupt_file_error;
};

}  // namespace mhaprune::checkpoint
