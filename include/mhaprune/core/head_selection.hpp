// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <initializer_list>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// Heads named by the id they had in the unpruned model (Hugging Face `prune_heads` semantics):
/// stable across rounds of removal.
struct OriginalIds {
  std::vector<Index> ids;
  OriginalIds() = default;
  OriginalIds(std::initializer_list<Index> list) : ids(list) {}
  explicit OriginalIds(std::vector<Index> list) : ids(std::move(list)) {}
};

/// Heads named by their current position in the block, 0 .. heads()-1.
struct Positions {
  std::vector<Index> ids;
  Positions() = default;
  Positions(std::initializer_list<Index> list) : ids(list) {}
  explicit Positions(std::vector<Index> list) : ids(std::move(list)) {}
};

/// A keep/remove flag for each current query head of a block (true = keep).
///
/// Throws `head_id_error` for a negative head count, and from `keeps`/`remove` for a head outside
/// `[0, heads())`.
class HeadMask {
 public:
  explicit HeadMask(Index heads) : keep_(checked_count(heads), true) {}

  Index heads() const noexcept { return static_cast<Index>(keep_.size()); }
  bool keeps(Index h) const { return keep_[checked(h)]; }
  HeadMask& remove(Index h) {
    keep_[checked(h)] = false;
    return *this;
  }
  /// Current positions of the heads this mask removes, ascending.
  Positions removed() const {
    std::vector<Index> out;
    for (std::size_t h = 0; h < keep_.size(); ++h)
      if (!keep_[h]) out.push_back(static_cast<Index>(h));
    return Positions(std::move(out));
  }
  Index removed_count() const noexcept {
    Index n = 0;
    for (bool k : keep_) n += k ? 0 : 1;
    return n;
  }

 private:
  // Every mhaprune exception is an mhaprune::error, so std::vector::at's std::out_of_range won't do.
  static std::size_t checked_count(Index heads) {
    if (heads < 0) {
      throw head_id_error(detail::message("HeadMask: the number of heads must not be negative, got ", heads));
    }
    return static_cast<std::size_t>(heads);
  }
  std::size_t checked(Index h) const {
    if (h < 0 || h >= heads()) {
      throw head_id_error(detail::message("HeadMask: head ", h, " is out of range [0, ", heads(), ")"));
    }
    return static_cast<std::size_t>(h);
  }

  std::vector<bool> keep_;
};

namespace detail {
/// Every call that takes a mask needs exactly one entry per current head of the block it names.
inline void require_mask_covers(const HeadMask& mask, const std::string& block_name, Index heads) {
  if (mask.heads() != heads) {
    throw head_id_error(message("block \"", block_name, "\": the head mask has ", mask.heads(),
                                " entries, the block has ", heads, " heads"));
  }
}
}  // namespace detail

/// What a removal took, as original ids.
struct RemovedHeads {
  std::vector<Index> heads;     ///< query heads
  std::vector<Index> kv_heads;  ///< key/value heads whose whole group went
};

}  // namespace mhaprune
