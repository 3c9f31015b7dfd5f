// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <vector>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/head_selection.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// Soft removal: zeroes the weights of the heads a mask removes, keeping every tensor's shape. Their
/// Q rows, Q bias entries and O columns become zero, and so do the K/V rows and bias entries of a
/// key/value head whose whole group is masked. A zero O column means the head adds nothing to the
/// output, so the masked block computes exactly what it computes after `remove_heads` of the same heads.
/// Extras (ALiBi slopes, sinks, norms) are left alone: they only act through the zeroed columns.
///
/// Throws `head_id_error` when the mask's length is not the block's head count, or what
/// `AttentionBlock::validate` throws; nothing is changed then.
template <typename Scalar>
void mask_heads(AttentionBlock<Scalar>& block, const HeadMask& mask) {
  block.validate();
  const HeadLayout& L = block.layout();
  detail::require_mask_covers(mask, block.name(), L.heads());
  std::vector<char> kv_masked(static_cast<std::size_t>(L.kv_heads()), 1);
  for (Index h = 0; h < L.heads(); ++h)
    if (mask.keeps(h)) kv_masked[static_cast<std::size_t>(L.kv_head_of(h))] = 0;

  for (const BoundTensor<Scalar>& t : block.tensors()) {
    if (t.kind == TensorKind::extra) continue;
    Scalar* data = t.ref.data();
    const bool row_major = t.ref.order() == StorageOrder::row_major;
    const Index other = t.other_extent();
    Index offset = 0;
    for (const Segment& s : t.segments) {
      const bool zero = s.owner == Owner::query_head ? !mask.keeps(s.unit)
                                                     : kv_masked[static_cast<std::size_t>(s.unit)] != 0;
      if (zero) {
        for (Index a = offset; a < offset + s.width; ++a) {
          for (Index b = 0; b < other; ++b) {
            const Index i = t.head_axis == Axis::rows ? a : b;
            const Index j = t.head_axis == Axis::rows ? b : a;
            data[row_major ? i * t.cols + j : j * t.rows + i] = Scalar(0);
          }
        }
      }
      offset += s.width;
    }
  }
}

}  // namespace mhaprune
