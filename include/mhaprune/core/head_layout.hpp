// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// The head geometry of one attention block.
///
/// - `heads` (H): query heads. `kv_heads` (H_kv): key/value heads; equal to H for multi-head
///   attention, a divisor of H for grouped-query attention, 1 for multi-query attention.
/// - Query head `h` reads key/value head `h / group_size()`, with `group_size() = H / H_kv`.
/// - `head_dim` (d): width of one head. `model_dim` (D): the residual width, input of Q/K/V and
///   output of O. Q is `[H*d, D]`, K and V are `[H_kv*d, D]`, O is `[D, H*d]`.
///
/// Throws `layout_error` on construction when any count is not positive or `H % H_kv != 0`.
class HeadLayout {
 public:
  HeadLayout(Index heads, Index kv_heads, Index head_dim, Index model_dim)
      : heads_(heads), kv_heads_(kv_heads), head_dim_(head_dim), model_dim_(model_dim) {
    if (heads <= 0 || kv_heads <= 0 || head_dim <= 0 || model_dim <= 0) {
      throw layout_error(detail::message("HeadLayout: every count must be positive, got heads=", heads,
                                         ", kv_heads=", kv_heads, ", head_dim=", head_dim,
                                         ", model_dim=", model_dim));
    }
    if (heads % kv_heads != 0) {
      throw layout_error(detail::message("HeadLayout: heads (", heads, ") must be a multiple of kv_heads (",
                                         kv_heads,
                                         ") so that every key/value head serves the same number "
                                         "of query heads"));
    }
  }

  /// Multi-head attention: as many key/value heads as query heads.
  static HeadLayout mha(Index heads, Index head_dim, Index model_dim) {
    return HeadLayout(heads, heads, head_dim, model_dim);
  }

  Index heads() const noexcept { return heads_; }
  Index kv_heads() const noexcept { return kv_heads_; }
  Index head_dim() const noexcept { return head_dim_; }
  Index model_dim() const noexcept { return model_dim_; }
  /// Query heads per key/value head (r).
  Index group_size() const noexcept { return heads_ / kv_heads_; }
  /// The key/value head that query head `h` reads.
  Index kv_head_of(Index h) const noexcept { return h / group_size(); }
  /// Rows of Q, columns of O: H*d.
  Index query_width() const noexcept { return heads_ * head_dim_; }
  /// Rows of K and of V: H_kv*d.
  Index kv_width() const noexcept { return kv_heads_ * head_dim_; }

  friend bool operator==(const HeadLayout& a, const HeadLayout& b) noexcept {
    return a.heads_ == b.heads_ && a.kv_heads_ == b.kv_heads_ && a.head_dim_ == b.head_dim_ &&
           a.model_dim_ == b.model_dim_;
  }
  friend bool operator!=(const HeadLayout& a, const HeadLayout& b) noexcept { return !(a == b); }

 private:
  Index heads_;
  Index kv_heads_;
  Index head_dim_;
  Index model_dim_;
};

}  // namespace mhaprune
