// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include "mhaprune/core/tensor_spec.hpp"
#include "mhaprune/layouts/segments.hpp"

/// Layout adapters: each turns one of the caller's tensors into a `TensorSpec` for
/// `AttentionBlock::add`. The core only ever sees segments.
namespace mhaprune::layout {

namespace internal {
template <typename T>
TensorSpec<typename T::Scalar> projection(T& tensor, const char* name, TensorKind kind, Role role) {
  TensorSpec<typename T::Scalar> spec;
  spec.name = name;
  spec.kind = kind;
  spec.heads_on_output_features = role != Role::output;
  spec.ref = bind(tensor);
  spec.segments = [role](const HeadLayout& L) { return segments::single(L, role); };
  return spec;
}
}  // namespace internal

/// Q weight `[H*d, D]` (BERT `query`, LLaMA `q_proj`). `T`: any type `bind` accepts.
template <typename T>
auto query(T& w) {
  return internal::projection(w, "query.weight", TensorKind::weight, Role::query);
}
/// K weight `[H_kv*d, D]`.
template <typename T>
auto key(T& w) {
  return internal::projection(w, "key.weight", TensorKind::weight, Role::key);
}
/// V weight `[H_kv*d, D]`.
template <typename T>
auto value(T& w) {
  return internal::projection(w, "value.weight", TensorKind::weight, Role::value);
}
/// O weight `[D, H*d]`: heads are its input columns.
template <typename T>
auto output(T& w) {
  return internal::projection(w, "output.weight", TensorKind::weight, Role::output);
}
/// Q bias `[H*d]`.
template <typename T>
auto query_bias(T& b) {
  return internal::projection(b, "query.bias", TensorKind::bias, Role::query);
}
/// K bias `[H_kv*d]`.
template <typename T>
auto key_bias(T& b) {
  return internal::projection(b, "key.bias", TensorKind::bias, Role::key);
}
/// V bias `[H_kv*d]`.
template <typename T>
auto value_bias(T& b) {
  return internal::projection(b, "value.bias", TensorKind::bias, Role::value);
}

/// O bias `[D]`: read by the reference forward, never sliced (it is added after the heads are summed).
template <typename T>
auto output_bias(T& b) {
  TensorSpec<typename T::Scalar> spec;
  spec.name = "output.bias";
  spec.kind = TensorKind::bias;
  spec.ref = bind(b);
  return spec;
}

}  // namespace mhaprune::layout
