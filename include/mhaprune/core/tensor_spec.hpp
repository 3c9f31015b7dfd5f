// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/core/head_layout.hpp"
#include "mhaprune/core/segment.hpp"
#include "mhaprune/core/tensor_ref.hpp"
#include "mhaprune/core/types.hpp"

namespace mhaprune {

/// What a layout adapter hands to `AttentionBlock::add`: one of the caller's tensors, what it is,
/// and how its head axis divides into segments for a given head layout.
///
/// Layout adapters (`mhaprune/layouts/`) make these; a custom layout only needs a segment function.
/// `named` and `stored_as` refine a spec in place of long argument lists:
/// `layout::query(Wq).named("q_proj.weight")`, `layout::qkv_concat(c_attn).stored_as(Orientation::in_out)`.
template <typename Scalar>
struct TensorSpec {
  std::string name;
  TensorKind kind = TensorKind::weight;
  /// For weights: heads split the output features (Q, K, V) or the input features (O).
  bool heads_on_output_features = true;
  Orientation orientation = Orientation::out_in;
  /// For extras: the axis of the caller's tensor that holds the heads.
  Axis extra_axis = Axis::rows;
  TensorRef<Scalar> ref;
  /// Segments for a layout; empty function: the tensor is never sliced (O's bias).
  std::function<std::vector<Segment>(const HeadLayout&)> segments;

  TensorSpec named(std::string new_name) && {
    name = std::move(new_name);
    return std::move(*this);
  }
  TensorSpec stored_as(Orientation o) && {
    orientation = o;
    return std::move(*this);
  }
};

/// A tensor after `AttentionBlock::add` accepted it.
template <typename Scalar>
struct BoundTensor {
  std::string name;
  TensorKind kind;
  Axis head_axis;
  TensorRef<Scalar> ref;
  std::vector<Segment> segments;  ///< along `head_axis`; empty: never sliced
  Index rows;                     ///< shape when bound or last compacted, to notice outside changes
  Index cols;

  bool sliced() const noexcept { return !segments.empty(); }
  Index other_extent() const noexcept { return head_axis == Axis::rows ? cols : rows; }
};

}  // namespace mhaprune
