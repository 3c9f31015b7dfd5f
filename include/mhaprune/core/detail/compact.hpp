// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstring>
#include <vector>

#include "mhaprune/core/segment.hpp"
#include "mhaprune/core/types.hpp"

namespace mhaprune::detail {

/// Moves the kept runs of one axis of a dense `rows x cols` buffer to its front, in order, leaving a
/// dense tensor of the new shape there. Every element moves to an address at or before its own and the
/// walk is in increasing address order, so `memmove` never reads what it has already overwritten: no
/// temporary is needed. `runs` are sorted, disjoint and inside the axis. Returns the new extent.
template <typename Scalar>
Index compact_axis(Scalar* data, Index rows, Index cols, StorageOrder order, Axis axis,
                   const std::vector<IndexRun>& runs) noexcept {
  Index kept = 0;
  for (const IndexRun& r : runs) kept += r.end - r.begin;
  const bool row_major = order == StorageOrder::row_major;
  const Index outer = row_major ? rows : cols;
  const Index inner = row_major ? cols : rows;
  const bool axis_is_outer = (axis == Axis::rows) == row_major;

  if (axis_is_outer) {
    // Kept outer lines are whole contiguous blocks: one move per run.
    Index dst = 0;
    for (const IndexRun& r : runs) {
      const Index n = (r.end - r.begin) * inner;
      const Index src = r.begin * inner;
      if (src != dst) std::memmove(data + dst, data + src, static_cast<std::size_t>(n) * sizeof(Scalar));
      dst += n;
    }
  } else {
    // Kept inner ranges repeat in every outer line; the new line is shorter, so it is packed tighter.
    Index dst = 0;
    for (Index o = 0; o < outer; ++o) {
      const Index line = o * inner;
      for (const IndexRun& r : runs) {
        const Index n = r.end - r.begin;
        const Index src = line + r.begin;
        if (src != dst) std::memmove(data + dst, data + src, static_cast<std::size_t>(n) * sizeof(Scalar));
        dst += n;
      }
    }
  }
  return kept;
}

}  // namespace mhaprune::detail
