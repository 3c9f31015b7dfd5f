// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <vector>

#include "mhaprune/core/types.hpp"

namespace mhaprune {

/// One contiguous slice of a tensor's head axis and who owns it.
///
/// Every layout, however fused or interleaved, is a list of segments along one axis: separate Q is
/// H segments of width d owned by query heads; fused `[Q|K|V]` is H query segments, then H_kv key
/// segments, then H_kv value segments; GPT-NeoX interleaves `q_h, k_h, v_h` per head. Removal keeps
/// the segments whose owner survives, so the core never needs to know which model it is slicing.
struct Segment {
  Role role;
  Owner owner;
  Index unit;   ///< current position of the owning query head or key/value head
  Index width;  ///< elements along the head axis
};

/// A half-open range `[begin, end)` along an axis.
struct IndexRun {
  Index begin;
  Index end;
};

/// Sum of the segments' widths: the head axis length they describe.
inline Index total_width(const std::vector<Segment>& segments) noexcept {
  Index n = 0;
  for (const Segment& s : segments) n += s.width;
  return n;
}

}  // namespace mhaprune
