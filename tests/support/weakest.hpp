// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cstddef>
#include <mhaprune/core/types.hpp>
#include <numeric>
#include <vector>

namespace mhaprune_test {

/// Positions of the `count` lowest scores, ties by position, ascending: the order in which the
/// selection policies' documentation says a block's heads go, written again without their code.
inline std::vector<mhaprune::Index> weakest(const Eigen::VectorXd& s, mhaprune::Index count) {
  std::vector<mhaprune::Index> order(static_cast<std::size_t>(s.size()));
  std::iota(order.begin(), order.end(), mhaprune::Index{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](mhaprune::Index a, mhaprune::Index b) { return s(a) < s(b); });
  order.resize(static_cast<std::size_t>(count));
  std::sort(order.begin(), order.end());
  return order;
}

}  // namespace mhaprune_test
