// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// CMake reads these three lines to set the project version; keep their form.
#define MHAPRUNE_VERSION_MAJOR 0
#define MHAPRUNE_VERSION_MINOR 1
#define MHAPRUNE_VERSION_PATCH 0

#define MHAPRUNE_VERSION_STRING "0.1.0"

namespace mhaprune {

/// The library version as `major * 10000 + minor * 100 + patch`.
inline constexpr int version =
    MHAPRUNE_VERSION_MAJOR * 10000 + MHAPRUNE_VERSION_MINOR * 100 + MHAPRUNE_VERSION_PATCH;

}  // namespace mhaprune
