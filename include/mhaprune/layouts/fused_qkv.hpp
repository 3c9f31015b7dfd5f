// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include "mhaprune/core/tensor_spec.hpp"
#include "mhaprune/layouts/segments.hpp"

namespace mhaprune::layout {

namespace internal {
template <typename T, typename SegmentFn>
TensorSpec<typename T::Scalar> fused(T& tensor, const char* name, TensorKind kind, SegmentFn fn) {
  TensorSpec<typename T::Scalar> spec;
  spec.name = name;
  spec.kind = kind;
  spec.ref = bind(tensor);
  spec.segments = fn;
  return spec;
}
}  // namespace internal

/// Fused QKV weight `[(H + 2*H_kv)*d, D]` with rows `[Q | K | V]` (PyTorch `nn.MultiheadAttention`,
/// timm, Phi-3). GPT-2's `c_attn` is this stored `[D, 3D]`: add `.stored_as(Orientation::in_out)`.
template <typename T>
auto qkv_concat(T& w) {
  return internal::fused(w, "qkv.weight", TensorKind::weight, segments::qkv_concat);
}
/// Its bias `[(H + 2*H_kv)*d]`.
template <typename T>
auto qkv_concat_bias(T& b) {
  return internal::fused(b, "qkv.bias", TensorKind::bias, segments::qkv_concat);
}

/// Fused QKV weight `[H*3*d, D]` interleaved per head, rows `3hd .. 3hd+3d` = q_h, k_h, v_h
/// (GPT-NeoX `query_key_value`, BLOOM). Multi-head attention only: `add` throws `layout_error` otherwise.
template <typename T>
auto qkv_interleaved(T& w) {
  return internal::fused(w, "query_key_value.weight", TensorKind::weight, segments::qkv_interleaved);
}
/// Its bias `[H*3*d]`.
template <typename T>
auto qkv_interleaved_bias(T& b) {
  return internal::fused(b, "query_key_value.bias", TensorKind::bias, segments::qkv_interleaved);
}

/// Fused QKV weight grouped per key/value head: `[q_1 .. q_r, k, v]` for each group, `(H + 2*H_kv)*d`
/// rows in all (Falcon's new decoder architecture).
template <typename T>
auto qkv_grouped(T& w) {
  return internal::fused(w, "query_key_value.weight", TensorKind::weight, segments::qkv_grouped);
}
/// Its bias.
template <typename T>
auto qkv_grouped_bias(T& b) {
  return internal::fused(b, "query_key_value.bias", TensorKind::bias, segments::qkv_grouped);
}

}  // namespace mhaprune::layout
