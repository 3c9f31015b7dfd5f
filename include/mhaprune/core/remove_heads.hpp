// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/detail/compact.hpp"
#include "mhaprune/core/head_selection.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

namespace detail {

/// Everything a removal will do to one tensor, computed before anything is touched.
struct TensorPlan {
  std::vector<IndexRun> runs;
  std::vector<Segment> segments;
  Index rows;
  Index cols;
};

inline std::string list_string(const std::vector<Index>& v) {
  std::string s = "{";
  for (std::size_t i = 0; i < v.size(); ++i) {
    s += i ? ", " : "";
    s += std::to_string(v[i]);
  }
  return s + "}";
}

template <typename Scalar>
TensorPlan plan_tensor(const BoundTensor<Scalar>& t, const std::vector<Index>& new_head,
                       const std::vector<Index>& new_kv) {
  TensorPlan p{{}, {}, t.rows, t.cols};
  Index offset = 0;
  for (const Segment& s : t.segments) {
    const auto& renumber = s.owner == Owner::query_head ? new_head : new_kv;
    const Index to = renumber[static_cast<std::size_t>(s.unit)];
    if (to >= 0) {
      if (!p.runs.empty() && p.runs.back().end == offset) {
        p.runs.back().end = offset + s.width;
      } else {
        p.runs.push_back({offset, offset + s.width});
      }
      p.segments.push_back({s.role, s.owner, to, s.width});
    }
    offset += s.width;
  }
  const Index kept = total_width(p.segments);
  (t.head_axis == Axis::rows ? p.rows : p.cols) = kept;
  return p;
}

}  // namespace detail

/// Everything a removal from one block will do, computed and checked before anything is touched;
/// made by `plan_removal`, carried out by `apply_removal`, which cannot fail.
struct RemovalPlan {
  const void* block = nullptr;  ///< the block it was made for, to refuse applying it elsewhere
  HeadLayout layout;
  std::vector<Index> head_ids;
  std::vector<Index> kv_head_ids;
  std::vector<detail::TensorPlan> tensors;
  RemovedHeads removed;

  bool empty() const noexcept { return removed.heads.empty(); }
};

/// Checks a removal of query heads (current positions) and plans it, without changing anything.
/// Throws `head_id_error` (id out of range or repeated), `removal_error` (every head, or ragged
/// groups), or what `AttentionBlock::validate` throws.
template <typename Scalar>
RemovalPlan plan_removal(const AttentionBlock<Scalar>& block, const Positions& heads) {
  block.validate();
  const HeadLayout& L = block.layout();
  const Index H = L.heads(), Hkv = L.kv_heads(), r = L.group_size();
  const std::string who = detail::message("block \"", block.name(), "\"");

  std::vector<char> drop(static_cast<std::size_t>(H), 0);
  for (Index h : heads.ids) {
    if (h < 0 || h >= H) {
      throw head_id_error(detail::message(who, ": head position ", h, " is out of range [0, ", H, ")"));
    }
    if (drop[static_cast<std::size_t>(h)]) {
      throw head_id_error(detail::message(who, ": head position ", h, " is named twice"));
    }
    drop[static_cast<std::size_t>(h)] = 1;
  }
  const Index removed = static_cast<Index>(heads.ids.size());
  if (removed == H) {
    throw removal_error(detail::message(who, ": removing all ", H, " heads would leave an empty block"));
  }

  std::vector<Index> left(static_cast<std::size_t>(Hkv), r);
  for (Index h = 0; h < H; ++h) left[static_cast<std::size_t>(h / r)] -= drop[static_cast<std::size_t>(h)];
  Index kept_groups = 0, per_group = -1;
  for (Index g = 0; g < Hkv; ++g) {
    const Index n = left[static_cast<std::size_t>(g)];
    if (n == 0) continue;
    ++kept_groups;
    if (per_group < 0) per_group = n;
    if (n != per_group) {
      throw removal_error(
          detail::message(who, ": the removal leaves key/value groups with different numbers of query heads ",
                          detail::list_string(left), " (group size ", r,
                          "); remove the same number from every group, or whole groups"));
    }
  }

  RemovalPlan plan{&block, L, {}, {}, {}, {}};
  if (removed == 0) return plan;
  std::vector<Index> new_head(static_cast<std::size_t>(H), -1), new_kv(static_cast<std::size_t>(Hkv), -1);
  for (Index h = 0, next = 0; h < H; ++h) {
    const Index id = block.head_ids()[static_cast<std::size_t>(h)];
    if (drop[static_cast<std::size_t>(h)]) {
      plan.removed.heads.push_back(id);
    } else {
      new_head[static_cast<std::size_t>(h)] = next++;
      plan.head_ids.push_back(id);
    }
  }
  for (Index g = 0, next = 0; g < Hkv; ++g) {
    const Index id = block.kv_head_ids()[static_cast<std::size_t>(g)];
    if (left[static_cast<std::size_t>(g)] == 0) {
      plan.removed.kv_heads.push_back(id);
    } else {
      new_kv[static_cast<std::size_t>(g)] = next++;
      plan.kv_head_ids.push_back(id);
    }
  }
  plan.layout = HeadLayout(H - removed, kept_groups, L.head_dim(), L.model_dim());
  plan.tensors.reserve(block.tensors().size());
  for (const auto& t : block.tensors()) plan.tensors.push_back(detail::plan_tensor(t, new_head, new_kv));
  return plan;
}

/// Carries out a plan made by `plan_removal` for this block, with nothing changed in between. Each
/// tensor is compacted inside its own buffer by forward `memmove`s, with no temporary of its size;
/// owning matrices are then shrunk, Maps and MatrixBuffers report the new shape. Cannot fail; the
/// plan is consumed. Returns the original ids removed.
template <typename Scalar>
RemovedHeads apply_removal(AttentionBlock<Scalar>& block, RemovalPlan&& plan) noexcept {
  if (plan.block != &block || plan.empty()) return {};
  auto& tensors = detail::BlockAccess::tensors(block);
  for (std::size_t i = 0; i < tensors.size(); ++i) {
    auto& t = tensors[i];
    auto& p = plan.tensors[i];
    if (!t.sliced()) continue;
    detail::compact_axis(t.ref.data(), t.rows, t.cols, t.ref.order(), t.head_axis, p.runs);
    t.ref.set_shape(p.rows, p.cols);
    t.rows = p.rows;
    t.cols = p.cols;
    t.segments.swap(p.segments);
  }
  detail::BlockAccess::commit(block, plan.layout, plan.head_ids, plan.kv_head_ids);
  return std::move(plan.removed);
}

/// Removes query heads (current positions) from a block, in place, and returns their original ids.
///
/// Q/K/V rows and their bias entries, O's columns and every attached extra lose the heads' slices;
/// O's bias is untouched. With grouped-query attention a key/value head (K/V rows, biases, extras it
/// owns) goes only when every query head of its group goes, and every surviving group must keep the
/// same number of query heads, since no standard kernel runs ragged groups.
///
/// Strong guarantee: `plan_removal` checks everything first and throws what it throws; then the
/// caller's tensors and the block are unchanged, bit for bit. Otherwise as `apply_removal`.
template <typename Scalar>
RemovedHeads remove_heads(AttentionBlock<Scalar>& block, const Positions& heads) {
  return apply_removal(block, plan_removal(block, heads));
}

/// Removes query heads named by original id (see `OriginalIds`). Throws `head_id_error` for an id
/// that never existed or was already removed, and otherwise as the `Positions` overload.
template <typename Scalar>
RemovedHeads remove_heads(AttentionBlock<Scalar>& block, const OriginalIds& heads) {
  std::vector<Index> positions;
  positions.reserve(heads.ids.size());
  for (Index id : heads.ids) {
    const Index p = block.position_of(id);
    if (p < 0) {
      throw head_id_error(detail::message(
          "block \"", block.name(), "\": original head ", id,
          id < 0 || id >= block.original_heads()
              ? detail::message(" does not exist (the block had ", block.original_heads(), " heads)")
              : std::string(" was already removed"),
          "; present: ", detail::list_string(block.head_ids())));
    }
    positions.push_back(p);
  }
  return remove_heads(block, Positions(std::move(positions)));
}

/// Removes the query heads a mask marks as removed. The mask must have one entry per current head.
template <typename Scalar>
RemovedHeads remove_heads(AttentionBlock<Scalar>& block, const HeadMask& mask) {
  detail::require_mask_covers(mask, block.name(), block.layout().heads());
  return remove_heads(block, mask.removed());
}

/// Removes whole key/value heads, named by original id, with every query head of their groups.
template <typename Scalar>
RemovedHeads remove_kv_heads(AttentionBlock<Scalar>& block, const OriginalIds& kv_heads) {
  const auto& ids = block.kv_head_ids();
  const Index r = block.layout().group_size();
  std::vector<Index> positions;
  for (Index id : kv_heads.ids) {
    Index g = -1;
    for (std::size_t i = 0; i < ids.size(); ++i)
      if (ids[i] == id) g = static_cast<Index>(i);
    if (g < 0) {
      throw head_id_error(detail::message("block \"", block.name(), "\": original key/value head ", id,
                                          " is not present; present: ", detail::list_string(ids)));
    }
    for (Index h = g * r; h < (g + 1) * r; ++h) positions.push_back(h);
  }
  return remove_heads(block, Positions(std::move(positions)));
}

}  // namespace mhaprune
