// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/checkpoint/block_info.hpp"
#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/remove_heads.hpp"
#include "mhaprune/layouts/separate_qkv.hpp"
#include "mhaprune/pruner/prune_report.hpp"

namespace mhaprune::checkpoint {

/// What pruning will do to one block, decided before any output is written: the heads to
/// remove, the layout and ids afterwards, and every tensor written for it with its final shape.
struct BlockPlan {
  std::vector<Index> remove;  ///< original ids of the query heads to remove, ascending
  RemovedHeads removed;       ///< what the removal takes (query and whole key/value heads)
  HeadLayout after{1, 1, 1, 1};
  std::vector<Index> head_ids_after, kv_head_ids_after;
  /// Tensors the block gains (zero q/k/v biases, an O bias made by compensation), by role
  /// ("q_bias", ..., "o_bias") → full name.
  std::map<std::string, std::string> created;
  /// Every tensor written for the block → its shape in the output.
  std::map<std::string, io::Shape> shapes_after;
};

/// Plans the removal of the heads at current `positions` of `info`, with exactly the checks of
/// `plan_removal` (a stand-in block of the same head structure and 1-wide tensors is planned, so
/// no weight is read).
/// @throws head_id_error, removal_error (every head, or ragged key/value groups) as `plan_removal`.
inline BlockPlan plan_block(const BlockInfo& info, const std::vector<Index>& positions) {
  const HeadLayout& L = info.layout;
  AttentionBlock<float> probe(info.name, HeadLayout(L.heads(), L.kv_heads(), 1, 1), info.head_ids,
                              info.kv_head_ids, info.original_heads, info.original_kv_heads);
  Eigen::MatrixXf q = Eigen::MatrixXf::Zero(L.heads(), 1), k = Eigen::MatrixXf::Zero(L.kv_heads(), 1),
                  v = Eigen::MatrixXf::Zero(L.kv_heads(), 1), o = Eigen::MatrixXf::Zero(1, L.heads());
  probe.add(layout::query(q)).add(layout::key(k)).add(layout::value(v)).add(layout::output(o));
  BlockPlan plan;
  for (Index p : positions) {
    if (p >= 0 && p < L.heads()) plan.remove.push_back(info.head_ids[static_cast<std::size_t>(p)]);
  }
  std::sort(plan.remove.begin(), plan.remove.end());
  plan.removed = apply_removal(probe, plan_removal(probe, Positions(positions)));
  std::sort(plan.removed.heads.begin(), plan.removed.heads.end());
  std::sort(plan.removed.kv_heads.begin(), plan.removed.kv_heads.end());
  plan.after = HeadLayout(probe.layout().heads(), probe.layout().kv_heads(), L.head_dim(), L.model_dim());
  plan.head_ids_after = probe.head_ids();
  plan.kv_head_ids_after = probe.kv_head_ids();
  for (const auto& [role, full] : detail::roles(info.tensors)) {
    if (!full->empty())
      plan.shapes_after[*full] = block_tensor_shape(role, info.qkv, info.in_out, plan.after);
  }
  return plan;
}

/// Sizes of a block with layout `L` and these tensors (by role), as the report counts them.
inline BlockCost block_cost(const BlockInfo& info, const HeadLayout& L,
                            const std::vector<std::string>& roles) {
  BlockCost c;
  c.heads = L.heads();
  c.kv_heads = L.kv_heads();
  for (const auto& role : roles) {
    std::int64_t n = 1;
    for (std::uint64_t d : block_tensor_shape(role, info.qkv, info.in_out, L))
      n *= static_cast<std::int64_t>(d);
    c.parameters += n;
  }
  c.projection_flops_per_token = 2 * L.model_dim() * L.head_dim() * (2 * L.heads() + 2 * L.kv_heads());
  c.attention_flops_per_context_token = 4 * L.heads() * L.head_dim();
  return c;
}

/// The roles of the tensors a block has.
inline std::vector<std::string> present_roles(const BlockInfo& info) {
  std::vector<std::string> out;
  for (const auto& [role, full] : detail::roles(info.tensors))
    if (!full->empty()) out.push_back(role);
  return out;
}

}  // namespace mhaprune::checkpoint
