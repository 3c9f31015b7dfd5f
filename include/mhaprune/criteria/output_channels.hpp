// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <vector>

#include "mhaprune/calibration/activation_stats.hpp"
#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/criteria/detail/run_kernels.hpp"
#include "mhaprune/criteria/element_wise.hpp"
#include "mhaprune/criteria/evidence.hpp"
#include "mhaprune/criteria/magnitude.hpp"
#include "mhaprune/error.hpp"

/// What the activation-aware criteria (wanda_sp, fluctuation) need from O: per input channel
/// j = h*d + a of O (the concatenated head outputs, current heads), statistics of its D weights; and
/// which channel of the caller's activation statistics matches each current channel.
namespace mhaprune {

/// Per current O-input channel (H*d entries, head h owns `h*d .. h*d+d`).
struct OutputChannelNorms {
  Eigen::VectorXd abs_mean;      ///< mean_i |O[i, j]| over the D outputs
  Eigen::VectorXd squared_norm;  ///< ‖O[:, j]‖₂² = Σ_i O[i, j]²
};

/// Reads O once, in storage order, whatever its layout.
/// @throws what `AttentionBlock::validate` throws.
template <typename Scalar>
OutputChannelNorms output_channel_norms(const AttentionBlock<Scalar>& block) {
  block.validate();
  const HeadLayout& L = block.layout();
  const Index d = L.head_dim();
  Eigen::VectorXd abs_sum = Eigen::VectorXd::Zero(L.query_width());
  Eigen::VectorXd sq_sum = Eigen::VectorXd::Zero(L.query_width());
  for (const BoundTensor<Scalar>& t : block.tensors()) {
    if (!detail::is_scored_weight(t)) continue;
    const detail::LineGeometry g = detail::line_geometry(t);
    const Scalar* data = t.ref.data();
    if (g.heads_on_lines) {
      // Each channel is one contiguous line.
      Index line = 0;
      for (const Segment& s : t.segments) {
        if (s.role == Role::output) {
          for (Index a = 0; a < s.width; ++a) {
            const Scalar* p = data + (line + a) * g.length;
            abs_sum(s.unit * d + a) = detail::reduce_run<MagnitudeFn, Reduction::sum>(p, p, 1, g.length);
            sq_sum(s.unit * d + a) = detail::reduce_run<detail::IdentityFn, Reduction::l2>(p, p, 1, g.length);
          }
        }
        line += s.width;
      }
    } else {
      // Each line crosses every channel: accumulate them side by side.
      Eigen::ArrayXd buf(g.length);
      for (Index line = 0; line < g.lines; ++line) {
        detail::load_block(data + line * g.length, 1, g.length, buf.data());
        Index begin = 0;
        for (const Segment& s : t.segments) {
          if (s.role == Role::output) {
            abs_sum.segment(s.unit * d, s.width).array() += buf.segment(begin, s.width).abs();
            sq_sum.segment(s.unit * d, s.width).array() += buf.segment(begin, s.width).square();
          }
          begin += s.width;
        }
      }
    }
  }
  return {abs_sum / static_cast<double>(L.model_dim()), sq_sum};
}

namespace detail {

/// The O-input statistics, checked: present, with at least `min_count` tokens, and `H*d` (current
/// heads) or `original_heads*d` (before removals) channels.
/// @throws evidence_error (missing), calibration_error (too few tokens), shape_error (channels).
template <typename Scalar>
const ActivationStats& require_activations(const Evidence& ev, const AttentionBlock<Scalar>& block,
                                           const char* who, std::int64_t min_count) {
  const ActivationStats* st = ev.activations();
  const HeadLayout& L = block.layout();
  if (st == nullptr) {
    throw evidence_error(message(who, ": block \"", block.name(),
                                 "\": no activation statistics of O's input given (expected ",
                                 L.query_width(), " channels; see Evidence::with_activations)"));
  }
  const Index current = L.query_width(), original = block.original_heads() * L.head_dim();
  if (st->channels() != current && st->channels() != original) {
    throw shape_error(message(who, ": block \"", block.name(), "\": activation statistics have ",
                              st->channels(), " channels; expected H*d = ", current, " (current heads)",
                              original != current
                                  ? message(" or ", original, " (original heads, before removals)")
                                  : std::string()));
  }
  if (st->count() < min_count) {
    throw calibration_error(message(who, ": block \"", block.name(), "\": activation statistics hold ",
                                    st->count(), " tokens; at least ", min_count, " needed"));
  }
  return *st;
}

/// For each current O-input channel, the matching channel of `stats`: the same index when the
/// statistics have H*d channels, else the channel of the same original head (statistics collected
/// before some heads were removed).
template <typename Scalar>
std::vector<Index> activation_channels(const AttentionBlock<Scalar>& block, const ActivationStats& stats) {
  const HeadLayout& L = block.layout();
  const Index d = L.head_dim();
  std::vector<Index> ch(static_cast<std::size_t>(L.query_width()));
  const bool by_original = stats.channels() != L.query_width();
  for (Index h = 0; h < L.heads(); ++h) {
    const Index base = by_original ? block.head_ids()[static_cast<std::size_t>(h)] * d : h * d;
    for (Index a = 0; a < d; ++a) ch[static_cast<std::size_t>(h * d + a)] = base + a;
  }
  return ch;
}

}  // namespace detail
}  // namespace mhaprune
