// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <string>
#include <string_view>
#include <vector>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/detail/name_table.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// What a mask policy knows of one block: its head counts now and originally, and one score per
/// current query head (higher = keep). Policies never see weights; data flows one way.
struct BlockScores {
  std::string name;
  Index heads = 0;              ///< current query heads
  Index kv_heads = 0;           ///< current key/value heads
  Index original_heads = 0;     ///< query heads before any removal
  std::vector<Index> head_ids;  ///< original id of each current query head
  Eigen::VectorXd scores;       ///< one per current query head
  /// Key/value heads before any removal (0: unknown, see `grouped`). It tells a grouped-query block,
  /// whose key/value heads `uniform_per_group` never removes, from a multi-head one.
  Index original_kv_heads = 0;

  Index group_size() const noexcept { return heads / kv_heads; }
  Index already_removed() const noexcept { return original_heads - heads; }
  /// True for grouped-query attention: fewer key/value heads than query heads, originally. When
  /// `original_kv_heads` is 0 (unknown) the current counts decide.
  bool grouped() const noexcept {
    return original_kv_heads > 0 ? original_kv_heads < original_heads : kv_heads < heads;
  }

  /// The scores of a block, with its head counts and ids.
  template <typename Scalar>
  static BlockScores of(const AttentionBlock<Scalar>& block, Eigen::VectorXd scores) {
    BlockScores b{block.name(),     block.layout().heads(), block.layout().kv_heads(), block.original_heads(),
                  block.head_ids(), std::move(scores),      block.original_kv_heads()};
    b.check();
    return b;
  }

  /// Throws `shape_error` when the counts or the scores disagree, `error` on a non-finite score.
  void check() const {
    if (heads <= 0 || kv_heads <= 0 || heads % kv_heads != 0 || original_heads < heads ||
        static_cast<Index>(head_ids.size()) != heads || scores.size() != heads) {
      throw shape_error(detail::message("block \"", name, "\": scores for ", scores.size(), " heads and ",
                                        head_ids.size(), " ids, but the block has ", heads, " heads in ",
                                        kv_heads, " key/value groups (originally ", original_heads, ")"));
    }
    for (Index h = 0; h < heads; ++h) {
      if (!std::isfinite(scores(h))) {
        throw error(detail::message("block \"", name, "\": the score of head ", h, " (original id ",
                                    head_ids[static_cast<std::size_t>(h)], ") is not finite"));
      }
    }
  }
};

/// How grouped-query attention blocks lose heads.
enum class GqaMode {
  /// Every key/value group loses the same number of its lowest query heads; K and V stay.
  uniform_per_group,
  /// Key/value groups compete by group score (mean of their query heads' scores); a removed group
  /// takes its query heads, K/V rows and O columns with it.
  whole_groups,
};

/// Rescaling of each block's scores before blocks compete in a global ranking.
enum class Normalization {
  none,
  l2,           ///< divide by the block's L2 norm (Michel et al. 2019)
  standardize,  ///< (s - mean) / std per block (FLAP)
};

/// The names of the GQA modes: uniform_per_group, whole_groups.
inline constexpr detail::NameTable<GqaMode, 2> gqa_mode_names{
    {{{GqaMode::uniform_per_group, "uniform_per_group"}, {GqaMode::whole_groups, "whole_groups"}}}};

/// The names of the normalisations: none, l2, standardize.
inline constexpr detail::NameTable<Normalization, 3> normalization_names{
    {{{Normalization::none, "none"},
      {Normalization::l2, "l2"},
      {Normalization::standardize, "standardize"}}}};

inline const char* to_string(GqaMode m) noexcept { return gqa_mode_names.name(m); }
inline const char* to_string(Normalization n) noexcept { return normalization_names.name(n); }

/// The GQA mode named `name` exactly.
/// @throws config_error naming the text and listing the valid names.
inline GqaMode parse_gqa_mode(std::string_view name) {
  if (const auto m = gqa_mode_names.find(name)) return *m;
  throw config_error(detail::message("unknown GQA mode \"", name, "\"; valid: ", gqa_mode_names.joined()));
}

/// The normalisation named `name` exactly.
/// @throws config_error naming the text and listing the valid names.
inline Normalization parse_normalization(std::string_view name) {
  if (const auto n = normalization_names.find(name)) return *n;
  throw config_error(
      detail::message("unknown normalization \"", name, "\"; valid: ", normalization_names.joined()));
}

/// Guards every mask policy honours, and how GQA blocks are treated.
///
/// Precedence when they conflict: `min_heads` and `max_ratio_per_block` are hard caps on how many
/// heads a block may lose; `round_to` then lowers a block's removal until the number of heads it keeps
/// is a multiple of `round_to` (a block that cannot reach such a count within the caps loses nothing).
/// The target is met as closely as these allow, from below; with `exact_target` a shortfall throws
/// `constraint_error` instead.
struct SelectionOptions {
  Index min_heads = 1;               ///< a block keeps at least this many query heads (>= 1)
  double max_ratio_per_block = 1.0;  ///< a block loses at most floor(this * original heads) in all
  Index round_to = 1;                ///< heads kept per block: a multiple of this
  GqaMode gqa_mode = GqaMode::uniform_per_group;
  Normalization normalization = Normalization::none;
  bool exact_target = false;

  /// Throws `error` naming the field for values out of range.
  void check() const {
    if (min_heads < 1) throw error(detail::message("min_heads must be >= 1, got ", min_heads));
    if (!(max_ratio_per_block >= 0.0 && max_ratio_per_block <= 1.0)) {
      throw error(detail::message("max_ratio_per_block must be in [0, 1], got ", max_ratio_per_block));
    }
    if (round_to < 1) throw error(detail::message("round_to must be >= 1, got ", round_to));
  }
};

namespace detail {
/// floor(ratio * n), tolerant of the rounding in the product, so that 0.29 of 100 heads is 29.
inline Index floor_count(double ratio, Index n) noexcept {
  return static_cast<Index>(std::floor(ratio * static_cast<double>(n) + 1e-9));
}
}  // namespace detail

/// What a mask policy decides: for each block, the current positions of the heads to remove, ascending.
using Selection = std::vector<std::vector<Index>>;

}  // namespace mhaprune
