// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/detail/output_access.hpp"
#include "mhaprune/core/head_layout.hpp"
#include "mhaprune/core/scalar.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// Why a head whose O columns are zero stays in the block (see `plan_zeroed_removal`).
enum class ZeroedKeptReason : std::uint8_t {
  /// Grouped-query attention: every key/value group that survives keeps the same number of query
  /// heads, and another group has fewer zeroed heads.
  gqa_balance,
  /// Every head of the block is zeroed, and a block keeps at least one head (the core refuses an
  /// empty block; a model whose layer has no attention heads is not something loaders build).
  min_heads,
};

inline const char* to_string(ZeroedKeptReason r) noexcept {
  return r == ZeroedKeptReason::gqa_balance ? "gqa_balance" : "min_heads";
}

/// A zeroed head that is not removed: its original id, the reason, and a sentence saying it.
struct KeptZeroedHead {
  Index id = 0;
  ZeroedKeptReason reason = ZeroedKeptReason::gqa_balance;
  std::string why;
};

/// What `find_zeroed_heads` found in one block. Every id is an ORIGINAL id, every list ascending.
struct ZeroedHeads {
  std::string block;
  /// Query heads whose O columns are all within the tolerance of zero: they contribute nothing to
  /// the block's output, whatever their Q/K/V weights and biases (the head's whole output, V's bias
  /// included, is multiplied by those zero columns), so removing them changes no output.
  std::vector<Index> zeroed;
  /// The zeroed heads that can go together under the grouped-query rules (a subset of `zeroed`).
  std::vector<Index> removable;
  /// Key/value heads that go with them: those whose every query head is removable.
  std::vector<Index> removable_kv;
  /// Zeroed heads that stay, with the reason (`zeroed` = `removable` + these).
  std::vector<KeptZeroedHead> kept;
  /// Query heads whose O columns are NOT zero but whose Q rows are (weights, and the Q bias where
  /// the block has one): reported, never removed (such a head attends uniformly, it still adds V).
  std::vector<Index> zero_q;
  /// Key/value heads read by at least one head whose O columns are not zero, whose K (resp. V) rows
  /// are zero (weights and bias): reported, never removed.
  std::vector<Index> zero_k, zero_v;

  bool anything_to_remove() const noexcept { return !removable.empty(); }
};

/// Decides which of a block's zeroed heads can be removed together, from the head structure alone.
///
/// @param block   the block's name, for the report.
/// @param layout  current head counts (H query heads, H_kv key/value heads, group size r = H/H_kv).
/// @param head_ids, kv_head_ids  original ids of the current heads (H and H_kv of them).
/// @param zeroed  by current query position (H entries): nonzero when that head's O columns are zero.
///
/// Rules (those of the core's removal): a key/value head goes only with all r query heads of its
/// group, and every group that stays keeps the same number of query heads. So: every group whose r
/// heads are all zeroed goes whole; from each other group the same number m goes, m being the
/// smallest number of zeroed heads of any such group (the most that can go), taking the zeroed
/// heads of lowest id; the other zeroed heads stay with reason `gqa_balance`. When every head is
/// zeroed, the block keeps one: the first head of the first group (reason `min_heads`), and every
/// other head goes. With multi-head attention (r = 1) every zeroed head goes, except that one.
/// `zero_q`, `zero_k` and `zero_v` are left empty (they need the weights).
///
/// @throws shape_error when `head_ids`, `kv_head_ids` or `zeroed` do not match the layout's counts.
inline ZeroedHeads plan_zeroed_removal(std::string block, const HeadLayout& layout,
                                       const std::vector<Index>& head_ids,
                                       const std::vector<Index>& kv_head_ids,
                                       const std::vector<char>& zeroed) {
  const Index H = layout.heads(), Hkv = layout.kv_heads(), r = layout.group_size();
  if (static_cast<Index>(head_ids.size()) != H || static_cast<Index>(kv_head_ids.size()) != Hkv ||
      static_cast<Index>(zeroed.size()) != H) {
    throw shape_error(detail::message("plan_zeroed_removal: block \"", block, "\" has ", H, " query and ",
                                      Hkv, " key/value heads, got ", head_ids.size(), " query ids, ",
                                      kv_head_ids.size(), " key/value ids and ", zeroed.size(),
                                      " zeroed flags"));
  }
  ZeroedHeads out;
  out.block = std::move(block);
  const auto id = [&](Index p) { return head_ids[static_cast<std::size_t>(p)]; };
  const auto is_zeroed = [&](Index p) { return zeroed[static_cast<std::size_t>(p)] != 0; };
  std::vector<Index> count(static_cast<std::size_t>(Hkv), 0);
  for (Index p = 0; p < H; ++p) {
    if (!is_zeroed(p)) continue;
    out.zeroed.push_back(id(p));
    ++count[static_cast<std::size_t>(layout.kv_head_of(p))];
  }
  if (out.zeroed.empty()) return out;

  std::vector<char> remove(static_cast<std::size_t>(H), 0);
  std::vector<char> whole(static_cast<std::size_t>(Hkv), 0);
  Index full_groups = 0;
  for (Index g = 0; g < Hkv; ++g) {
    if (count[static_cast<std::size_t>(g)] == r) {
      whole[static_cast<std::size_t>(g)] = 1;
      ++full_groups;
    }
  }
  const bool all_zeroed = full_groups == Hkv;
  // The group that limits the others (the fewest zeroed heads among groups that stay), and m.
  Index m = r, limiting = -1;
  for (Index g = 0; g < Hkv; ++g) {
    if (whole[static_cast<std::size_t>(g)]) continue;
    if (count[static_cast<std::size_t>(g)] < m) {
      m = count[static_cast<std::size_t>(g)];
      limiting = g;
    }
  }
  if (all_zeroed) whole[0] = 0;  // group 0 stays, with its first head only
  for (Index g = 0; g < Hkv; ++g) {
    Index taken = 0;
    for (Index p = g * r; p < (g + 1) * r; ++p) {
      if (!is_zeroed(p)) continue;
      const bool the_one_kept = all_zeroed && p == 0;
      if (!the_one_kept && (whole[static_cast<std::size_t>(g)] || taken < m)) {
        remove[static_cast<std::size_t>(p)] = 1;
        ++taken;
        continue;
      }
      KeptZeroedHead k;
      k.id = id(p);
      if (all_zeroed) {
        k.reason = ZeroedKeptReason::min_heads;
        k.why = detail::message(
            "every head of the block is zeroed and a block keeps at least one head; head ", k.id, " stays");
      } else {
        k.reason = ZeroedKeptReason::gqa_balance;
        k.why = detail::message(
            "grouped-query attention: every key/value group that stays keeps the same number of query heads, "
            "and key/value head ",
            kv_head_ids[static_cast<std::size_t>(limiting)], " has only ", m, " zeroed of its ", r,
            " query heads, so each group loses ", m);
      }
      out.kept.push_back(std::move(k));
    }
  }
  for (Index p = 0; p < H; ++p)
    if (remove[static_cast<std::size_t>(p)]) out.removable.push_back(id(p));
  for (Index g = 0; g < Hkv; ++g)
    if (whole[static_cast<std::size_t>(g)])
      out.removable_kv.push_back(kv_head_ids[static_cast<std::size_t>(g)]);
  return out;
}

namespace detail {

/// Per unit (query head for Role::query/output, key/value head for key/value): nonzero when every
/// element of that unit's segments of `role`, in the weights and (unless `weights_only`) the
/// biases, is within `tolerance` of zero. Units with no segment of the role are never zero.
template <typename Scalar>
std::vector<char> units_within(const AttentionBlock<Scalar>& block, Role role, double tolerance,
                               bool weights_only) {
  const Index units =
      (role == Role::key || role == Role::value) ? block.layout().kv_heads() : block.layout().heads();
  std::vector<char> seen(static_cast<std::size_t>(units), 0), zero(static_cast<std::size_t>(units), 1);
  const auto small = [tolerance](Scalar v) { return std::abs(to_double(v)) <= tolerance; };
  for_each_segment_of(block, role, [&](auto& view, Index offset, Index unit, Index width) {
    seen[static_cast<std::size_t>(unit)] = 1;
    char& z = zero[static_cast<std::size_t>(unit)];
    for (Index j = offset; j < offset + width && z; ++j)
      for (Index i = 0; i < view.rows() && z; ++i)
        if (!small(view(i, j))) z = 0;
  });
  if (!weights_only) {
    for (const BoundTensor<Scalar>& t : block.tensors()) {
      if (t.kind != TensorKind::bias || !t.sliced()) continue;
      Index offset = 0;
      for (const Segment& s : t.segments) {
        if (s.role == role) {
          char& z = zero[static_cast<std::size_t>(s.unit)];
          for (Index j = offset; j < offset + s.width && z; ++j)
            if (!small(t.ref.data()[j])) z = 0;
        }
        offset += s.width;
      }
    }
  }
  for (std::size_t u = 0; u < zero.size(); ++u) zero[u] = static_cast<char>(zero[u] && seen[u]);
  return zero;
}

}  // namespace detail

/// The heads of `block` whose O columns are all within `tolerance` of zero, and which of them can be
/// removed together (the rules of `plan_zeroed_removal`). Such a head contributes nothing to the
/// block's output (the head's output, V's bias included, is multiplied by those columns; O's bias
/// is not per head), so removing it with `remove_heads(block, OriginalIds(result.removable))` gives
/// exactly the output the block computes now. Also reports heads whose Q, K or V rows are zero
/// while O's columns are not (`zero_q`, `zero_k`, `zero_v`), which are kept.
///
/// @tparam Scalar the block's element type; values are compared as doubles.
/// @param tolerance absolute, on the stored values: |w| <= tolerance counts as zero (0: exactly
///        zero, -0.0 included; NaN never counts as zero).
/// @throws config_error when `tolerance` is negative or not finite; what `block.validate()` throws.
template <typename Scalar>
ZeroedHeads find_zeroed_heads(const AttentionBlock<Scalar>& block, double tolerance = 0) {
  if (!(tolerance >= 0.0) || !std::isfinite(tolerance)) {
    throw config_error(detail::message("find_zeroed_heads: block \"", block.name(), "\": tolerance ",
                                       tolerance, " must be finite and >= 0"));
  }
  block.validate();
  const HeadLayout& L = block.layout();
  const std::vector<char> o_zero =
      detail::units_within(block, Role::output, tolerance, /*weights_only=*/true);
  ZeroedHeads out = plan_zeroed_removal(block.name(), L, block.head_ids(), block.kv_head_ids(), o_zero);
  const std::vector<char> q_zero = detail::units_within(block, Role::query, tolerance, false);
  const std::vector<char> k_zero = detail::units_within(block, Role::key, tolerance, false);
  const std::vector<char> v_zero = detail::units_within(block, Role::value, tolerance, false);
  std::vector<char> read_by_live(static_cast<std::size_t>(L.kv_heads()), 0);
  for (Index p = 0; p < L.heads(); ++p) {
    if (o_zero[static_cast<std::size_t>(p)]) continue;
    read_by_live[static_cast<std::size_t>(L.kv_head_of(p))] = 1;
    if (q_zero[static_cast<std::size_t>(p)])
      out.zero_q.push_back(block.head_ids()[static_cast<std::size_t>(p)]);
  }
  for (Index g = 0; g < L.kv_heads(); ++g) {
    if (!read_by_live[static_cast<std::size_t>(g)]) continue;
    const Index kv = block.kv_head_ids()[static_cast<std::size_t>(g)];
    if (k_zero[static_cast<std::size_t>(g)]) out.zero_k.push_back(kv);
    if (v_zero[static_cast<std::size_t>(g)]) out.zero_v.push_back(kv);
  }
  return out;
}

}  // namespace mhaprune
