// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstddef>
#include <utility>

#include "mhaprune/calibration/activation_stats.hpp"
#include "mhaprune/calibration/head_outputs.hpp"
#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/attention_options.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// Collects statistics of O's input (the concatenated head outputs) over calibration sequences, by
/// running calibration's own forward (`attention_head_outputs`): slow and exact, for tests, examples
/// and small models. Inference code of one's own can feed `ActivationStats::add` directly instead.
///
/// @tparam Scalar the block's element type.
/// @tparam Range anything a range-for walks whose elements are Eigen matrices or expressions `[T, D]`
///         of a supported scalar (e.g. `std::vector<Eigen::MatrixXf>`); T may differ between them.
/// @param block the attention block; Q, K, V and O must be bound.
/// @param sequences calibration inputs `[T, D]`, one per sequence; each is one batch of T tokens.
/// @param stats the accumulator to add to; its channel count must be H*d (the block's current heads
///        times the head dimension) or not fixed yet (0).
/// @param options the forward's options (causal mask, head mask, logit scale).
/// @throws shape_error when `stats` has a channel count other than H*d, and what
///         `attention_head_outputs` throws (the block is incomplete or changed, a sequence is not
///         `[T, D]`, the mask has the wrong length) and what `ActivationStats::add` throws (a non-finite
///         head output); a `shape_error` or `calibration_error` raised for one sequence names it
///         (0-based) before the original message. Strong guarantee: the sequences go into a copy of `stats`,
///         which replaces it only once all of them went in, so on any throw `stats` is unchanged.
template <typename Scalar, typename Range>
void collect_output_input(const AttentionBlock<Scalar>& block, const Range& sequences, ActivationStats& stats,
                          const AttentionOptions& options = {}) {
  const HeadLayout& layout = block.layout();
  const Index channels = layout.query_width();
  if (stats.channels() != 0 && stats.channels() != channels) {
    throw shape_error(detail::message("collect_output_input(): block \"", block.name(),
                                      "\": expected stats of ", channels, " channels (H*d = ", layout.heads(),
                                      "*", layout.head_dim(), "), got ", stats.channels()));
  }
  ActivationStats next(stats);
  std::size_t index = 0;
  for (const auto& x : sequences) {
    // Which sequence failed is what the caller can act on; the accumulator only knows batch numbers.
    const auto where = [&] {
      return detail::message("collect_output_input(): block \"", block.name(), "\", sequence ", index,
                             " (0-based): ");
    };
    try {
      next.add(attention_head_outputs(x, block, options));
    } catch (const shape_error& e) {
      throw shape_error(where() + e.what());
    } catch (const calibration_error& e) {
      throw calibration_error(where() + e.what());
    }
    ++index;
  }
  stats = std::move(next);
}

}  // namespace mhaprune
