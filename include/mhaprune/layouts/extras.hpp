// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <string>
#include <utility>

#include "mhaprune/core/tensor_spec.hpp"
#include "mhaprune/layouts/segments.hpp"

namespace mhaprune::layout {

/// A per-head tensor that must shrink with the heads: one axis holds `heads * w` entries, `w` per head
/// (ALiBi slopes `[H]`, T5 relative-position bias `[buckets, H]` with `axis = Axis::cols`, attention
/// sinks `[H]`, per-head norm weights `[H*d]`). `owner = Owner::kv_head` for ones that follow the
/// key/value heads (a K norm of `[H_kv*d]`). `role` tells the reference forward what it is.
template <typename T>
TensorSpec<typename T::Scalar> per_head(std::string name, T& tensor, Axis axis = Axis::rows,
                                        Role role = Role::extra, Owner owner = Owner::query_head) {
  TensorSpec<typename T::Scalar> spec;
  spec.name = std::move(name);
  spec.kind = TensorKind::extra;
  spec.extra_axis = axis;
  spec.ref = bind(tensor);
  const Index extent = spec.ref.extent(axis);
  spec.segments = [role, owner, extent](const HeadLayout& L) {
    return segments::per_head(L, role, owner, extent);
  };
  return spec;
}

/// ALiBi slopes `[H]` (BLOOM, MPT): each survivor keeps its original slope.
template <typename T>
auto alibi_slopes(T& slopes) {
  return per_head("alibi_slopes", slopes, bind(slopes).cols() == 1 ? Axis::rows : Axis::cols,
                  Role::alibi_slope);
}

/// Attention sinks `[H]` (gpt-oss): one extra softmax logit per head.
template <typename T>
auto attention_sinks(T& sinks) {
  return per_head("sinks", sinks, bind(sinks).cols() == 1 ? Axis::rows : Axis::cols, Role::attention_sink);
}

}  // namespace mhaprune::layout
