// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The BlockScores a score-driven selection policy sees, built by hand for the selection tests.

#include <Eigen/Core>
#include <mhaprune/selection/block_scores.hpp>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

namespace mhaprune_test {

/// A block that had `original` query heads and `original_kv` key/value heads, and now has `kv_heads`
/// key/value heads and the query heads of `ids`.
inline mhaprune::BlockScores pruned_block(std::string name, mhaprune::Index original,
                                          mhaprune::Index original_kv, mhaprune::Index kv_heads,
                                          std::vector<mhaprune::Index> ids,
                                          const std::vector<double>& scores) {
  mhaprune::BlockScores b;
  b.name = std::move(name);
  b.heads = static_cast<mhaprune::Index>(ids.size());
  b.kv_heads = kv_heads;
  b.original_heads = original;
  b.original_kv_heads = original_kv;
  b.head_ids = std::move(ids);
  b.scores = Eigen::Map<const Eigen::VectorXd>(scores.data(), static_cast<mhaprune::Index>(scores.size()));
  return b;
}

/// A block nothing was removed from yet: one query head per score, `kv_heads` key/value heads.
inline mhaprune::BlockScores fresh_block(std::string name, mhaprune::Index kv_heads,
                                         const std::vector<double>& scores) {
  std::vector<mhaprune::Index> ids(scores.size());
  std::iota(ids.begin(), ids.end(), mhaprune::Index{0});
  const auto heads = static_cast<mhaprune::Index>(scores.size());
  return pruned_block(std::move(name), heads, kv_heads, kv_heads, std::move(ids), scores);
}

}  // namespace mhaprune_test
