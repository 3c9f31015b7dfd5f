// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// One score per current key/value head, for policies that remove whole GQA groups (LLM-Pruner): the
/// MEAN of the scores of the r query heads that read it. A mean (not a sum) keeps group scores on the
/// scale of head scores whatever r is; for a fixed r the two rank groups the same way. With
/// multi-head attention (r = 1) it returns the head scores unchanged.
///
/// @param head_scores one score per current query head, as a criterion returns them.
/// @throws shape_error when `head_scores` does not have `block.layout().heads()` entries.
template <typename Scalar>
Eigen::VectorXd group_scores(const AttentionBlock<Scalar>& block, const Eigen::VectorXd& head_scores) {
  const HeadLayout& L = block.layout();
  if (head_scores.size() != L.heads()) {
    throw shape_error(detail::message("group_scores(): block \"", block.name(), "\": got ",
                                      head_scores.size(), " head scores for ", L.heads(),
                                      " current query heads"));
  }
  const Index r = L.group_size();
  Eigen::VectorXd g(L.kv_heads());
  for (Index k = 0; k < L.kv_heads(); ++k) g(k) = head_scores.segment(k * r, r).mean();
  return g;
}

}  // namespace mhaprune
