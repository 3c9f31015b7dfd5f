// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <optional>

#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/scalar.hpp"

/// Reading a block's weights back as plain double matrices, whatever their layout. Slow and
/// obvious on purpose: this is what the oracle forward and the tests trust.
namespace mhaprune::reference {

namespace detail {
template <typename Scalar>
double element(const TensorRef<Scalar>& t, Index i, Index j) noexcept {
  const Index k = t.order() == StorageOrder::row_major ? i * t.cols() + j : j * t.rows() + i;
  return ::mhaprune::detail::to_double(t.data()[k]);
}
}  // namespace detail

/// The logical weight of one projection in PyTorch `Linear` orientation: Q `[H*d, D]`,
/// K/V `[H_kv*d, D]`, O `[D, H*d]`, assembled from whichever tensors hold its segments.
template <typename Scalar>
Eigen::MatrixXd weight(const AttentionBlock<Scalar>& block, Role role) {
  block.validate();  // reads every tensor: refuse one the caller resized behind the block's back
  const HeadLayout& L = block.layout();
  const Index d = L.head_dim(), D = L.model_dim();
  const Index units = (role == Role::key || role == Role::value) ? L.kv_heads() : L.heads();
  const bool out = role == Role::output;
  Eigen::MatrixXd W = out ? Eigen::MatrixXd::Zero(D, units * d) : Eigen::MatrixXd::Zero(units * d, D);
  for (const auto& t : block.tensors()) {
    if (t.kind != TensorKind::weight) continue;
    Index offset = 0;
    for (const Segment& s : t.segments) {
      if (s.role == role) {
        for (Index a = 0; a < s.width; ++a) {
          for (Index b = 0; b < D; ++b) {
            const Index along = offset + a;
            const double v = t.head_axis == Axis::rows ? detail::element(t.ref, along, b)
                                                       : detail::element(t.ref, b, along);
            (out ? W(b, s.unit * d + a) : W(s.unit * d + a, b)) = v;
          }
        }
      }
      offset += s.width;
    }
  }
  return W;
}

/// The bias of Q, K or V (sliced, by segment) or of O (whole); empty when the block has none.
template <typename Scalar>
std::optional<Eigen::VectorXd> bias(const AttentionBlock<Scalar>& block, Role role) {
  block.validate();
  const HeadLayout& L = block.layout();
  std::optional<Eigen::VectorXd> b;
  for (const auto& t : block.tensors()) {
    if (t.kind != TensorKind::bias) continue;
    if (role == Role::output) {
      if (t.sliced()) continue;
      b = Eigen::VectorXd(t.ref.size());
      for (Index i = 0; i < t.ref.size(); ++i) (*b)(i) = ::mhaprune::detail::to_double(t.ref.data()[i]);
      continue;
    }
    Index offset = 0;
    for (const Segment& s : t.segments) {
      if (s.role == role) {
        if (!b) {
          const Index units = (role == Role::key || role == Role::value) ? L.kv_heads() : L.heads();
          b = Eigen::VectorXd::Zero(units * L.head_dim());
        }
        for (Index a = 0; a < s.width; ++a)
          (*b)(s.unit * s.width + a) = ::mhaprune::detail::to_double(t.ref.data()[offset + a]);
      }
      offset += s.width;
    }
  }
  return b;
}

/// A per-head extra with one value per query head (ALiBi slopes, sinks), by role; empty if absent.
template <typename Scalar>
std::optional<Eigen::VectorXd> per_head_values(const AttentionBlock<Scalar>& block, Role role) {
  block.validate();
  for (const auto& t : block.tensors()) {
    if (t.kind != TensorKind::extra || t.segments.empty() || t.segments.front().role != role) continue;
    Eigen::VectorXd v(static_cast<Index>(t.segments.size()));
    Index offset = 0;
    for (const Segment& s : t.segments) {
      v(s.unit) = ::mhaprune::detail::to_double(t.ref.data()[offset]);
      offset += s.width;
    }
    return v;
  }
  return std::nullopt;
}

}  // namespace mhaprune::reference
