// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/head_selection.hpp"

namespace mhaprune {

/// Sizes of one block that the report compares before and after.
struct BlockCost {
  Index heads = 0;
  Index kv_heads = 0;
  std::int64_t parameters = 0;  ///< elements of every bound tensor (weights, biases, extras)
  /// Multiply-adds times two of the four projections for one token: 2*D*d*(2H + 2H_kv).
  std::int64_t projection_flops_per_token = 0;
  /// Score and context FLOPs per token per token of context: 4*H*d.
  std::int64_t attention_flops_per_context_token = 0;

  template <typename Scalar>
  static BlockCost of(const AttentionBlock<Scalar>& block) {
    const HeadLayout& L = block.layout();
    BlockCost c;
    c.heads = L.heads();
    c.kv_heads = L.kv_heads();
    for (const auto& t : block.tensors()) c.parameters += static_cast<std::int64_t>(t.rows) * t.cols;
    c.projection_flops_per_token = 2 * L.model_dim() * L.head_dim() * (2 * L.heads() + 2 * L.kv_heads());
    c.attention_flops_per_context_token = 4 * L.heads() * L.head_dim();
    return c;
  }
};

/// What one block went through in a pruning call.
struct BlockReport {
  std::string name;
  BlockCost before;
  BlockCost after;
  std::vector<Index> removed;     ///< original ids of the query heads removed by this call, ascending
  std::vector<Index> removed_kv;  ///< original ids of the key/value heads removed by this call
  std::vector<Index> head_ids;    ///< original ids of the heads present before, ascending
  std::vector<double> scores;     ///< one per head present before, in `head_ids` order
};

/// A pruning step that the training-loop hooks skipped (see `MhaPruner::on_step_begin()`), and why.
struct SkippedStep {
  long step = 0;       ///< the step, as the hooks counted it (optimizer steps since `attach`)
  std::string reason;  ///< why, naming the criterion and what it lacked
};

/// The result of a pruning call; `to_json` (mhaprune/pruner/report_json.hpp) writes it in the stable
/// format other tools read.
struct PruneReport {
  std::vector<BlockReport> blocks;
  double target = 0.0;  ///< the cumulative target this call aimed at
  /// The pruning steps the hooks skipped since `attach` (or the previous `finalize`), in order; empty
  /// for `MhaPruner::prune`, which never skips.
  std::vector<SkippedStep> skipped_steps;

  BlockCost total(bool after) const {
    BlockCost t;
    for (const auto& b : blocks) {
      const BlockCost& c = after ? b.after : b.before;
      t.heads += c.heads;
      t.kv_heads += c.kv_heads;
      t.parameters += c.parameters;
      t.projection_flops_per_token += c.projection_flops_per_token;
      t.attention_flops_per_context_token += c.attention_flops_per_context_token;
    }
    return t;
  }
  /// How many pruning steps the hooks skipped (`skipped_steps.size()`).
  std::size_t steps_skipped() const noexcept { return skipped_steps.size(); }
  Index heads_removed() const {
    Index n = 0;
    for (const auto& b : blocks) n += static_cast<Index>(b.removed.size());
    return n;
  }
};

namespace detail {
/// The report entry of a block before a removal: ids ascending and the scores in that order.
template <typename Scalar>
BlockReport begin_block_report(const AttentionBlock<Scalar>& block, const Eigen::VectorXd& scores) {
  BlockReport r;
  r.name = block.name();
  r.before = BlockCost::of(block);
  std::vector<std::pair<Index, double>> by_id;
  for (Index h = 0; h < block.layout().heads(); ++h)
    by_id.emplace_back(block.head_ids()[static_cast<std::size_t>(h)], h < scores.size() ? scores(h) : 0.0);
  std::sort(by_id.begin(), by_id.end());
  for (const auto& [id, s] : by_id) {
    r.head_ids.push_back(id);
    r.scores.push_back(s);
  }
  return r;
}

template <typename Scalar>
void finish_block_report(BlockReport& r, const AttentionBlock<Scalar>& block, RemovedHeads removed) {
  r.after = BlockCost::of(block);
  r.removed = std::move(removed.heads);
  r.removed_kv = std::move(removed.kv_heads);
  std::sort(r.removed.begin(), r.removed.end());
  std::sort(r.removed_kv.begin(), r.removed_kv.end());
}
}  // namespace detail

}  // namespace mhaprune
