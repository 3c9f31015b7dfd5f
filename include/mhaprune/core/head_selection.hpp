// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <initializer_list>
#include <utility>
#include <vector>

#include "mhaprune/core/types.hpp"

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
class HeadMask {
 public:
  explicit HeadMask(Index heads) : keep_(static_cast<std::size_t>(heads), true) {}

  Index heads() const noexcept { return static_cast<Index>(keep_.size()); }
  bool keeps(Index h) const { return keep_.at(static_cast<std::size_t>(h)); }
  HeadMask& remove(Index h) {
    keep_.at(static_cast<std::size_t>(h)) = false;
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
  std::vector<bool> keep_;
};

/// What a removal took, as original ids.
struct RemovedHeads {
  std::vector<Index> heads;     ///< query heads
  std::vector<Index> kv_heads;  ///< key/value heads whose whole group went
};

}  // namespace mhaprune
