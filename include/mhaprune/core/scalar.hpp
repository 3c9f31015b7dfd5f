// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <type_traits>

namespace mhaprune {

/// The element types mhaprune slices and scores.
template <typename Scalar>
inline constexpr bool is_supported_scalar_v =
    std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double> || std::is_same_v<Scalar, Eigen::half> ||
    std::is_same_v<Scalar, Eigen::bfloat16>;

namespace detail {
/// Widens any supported element to double; half and bfloat16 go through float, their exact superset.
template <typename Scalar>
double to_double(Scalar x) noexcept {
  if constexpr (std::is_floating_point_v<Scalar>) {
    return static_cast<double>(x);
  } else {
    return static_cast<double>(static_cast<float>(x));
  }
}
}  // namespace detail

}  // namespace mhaprune
