// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <vector>

#include "mhaprune/core/head_layout.hpp"
#include "mhaprune/core/segment.hpp"
#include "mhaprune/error.hpp"

/// Segment lists of the head axis of each layout real checkpoints use.
namespace mhaprune::layout::segments {

/// `count` consecutive slices of `width`, one per head, owned by query or key/value heads.
inline void append_heads(std::vector<Segment>& out, Role role, Owner owner, Index count, Index width) {
  for (Index u = 0; u < count; ++u) out.push_back({role, owner, u, width});
}

/// One projection of its own: Q (query heads) or K/V (key/value heads), or O's input features.
inline std::vector<Segment> single(const HeadLayout& L, Role role) {
  std::vector<Segment> s;
  const bool kv = role == Role::key || role == Role::value;
  append_heads(s, role, kv ? Owner::kv_head : Owner::query_head, kv ? L.kv_heads() : L.heads(), L.head_dim());
  return s;
}

/// `[Q | K | V]` along the output features: PyTorch `nn.MultiheadAttention` `in_proj`, timm, Phi-3,
/// GPT-2's `c_attn` (stored transposed).
inline std::vector<Segment> qkv_concat(const HeadLayout& L) {
  std::vector<Segment> s;
  append_heads(s, Role::query, Owner::query_head, L.heads(), L.head_dim());
  append_heads(s, Role::key, Owner::kv_head, L.kv_heads(), L.head_dim());
  append_heads(s, Role::value, Owner::kv_head, L.kv_heads(), L.head_dim());
  return s;
}

/// `[H, 3, d]`: q, k, v of each head together (GPT-NeoX, BLOOM). Multi-head attention only.
inline std::vector<Segment> qkv_interleaved(const HeadLayout& L) {
  if (L.kv_heads() != L.heads()) {
    throw layout_error(
        ::mhaprune::detail::message("qkv_interleaved: the per-head [H, 3, d] layout needs as many "
                                    "key/value heads as query heads, got H=",
                                    L.heads(), ", H_kv=", L.kv_heads(), "; use qkv_grouped"));
  }
  std::vector<Segment> s;
  for (Index h = 0; h < L.heads(); ++h) {
    s.push_back({Role::query, Owner::query_head, h, L.head_dim()});
    s.push_back({Role::key, Owner::kv_head, h, L.head_dim()});
    s.push_back({Role::value, Owner::kv_head, h, L.head_dim()});
  }
  return s;
}

/// Per key/value group `[q_1 .. q_r, k, v]` (Falcon's new decoder architecture).
inline std::vector<Segment> qkv_grouped(const HeadLayout& L) {
  std::vector<Segment> s;
  const Index r = L.group_size();
  for (Index g = 0; g < L.kv_heads(); ++g) {
    for (Index i = 0; i < r; ++i) s.push_back({Role::query, Owner::query_head, g * r + i, L.head_dim()});
    s.push_back({Role::key, Owner::kv_head, g, L.head_dim()});
    s.push_back({Role::value, Owner::kv_head, g, L.head_dim()});
  }
  return s;
}

/// An extra with one equal slice per head along an axis of `extent` elements. When `extent` does not
/// divide, the widths do not add up to it and `AttentionBlock::add` reports the shape.
inline std::vector<Segment> per_head(const HeadLayout& L, Role role, Owner owner, Index extent) {
  const Index units = owner == Owner::kv_head ? L.kv_heads() : L.heads();
  std::vector<Segment> s;
  if (extent % units != 0) return s;
  append_heads(s, role, owner, units, extent / units);
  return s;
}

}  // namespace mhaprune::layout::segments
