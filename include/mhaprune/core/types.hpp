// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cstdint>

namespace mhaprune {

/// Sizes and indices, the same type Eigen uses.
using Index = Eigen::Index;

/// An axis of a 2-D tensor as the user's Eigen object sees it (not its memory order).
enum class Axis : std::uint8_t { rows, cols };

/// How a tensor's elements are laid out in memory.
enum class StorageOrder : std::uint8_t { row_major, col_major };

/// How a weight is stored: PyTorch `Linear` keeps `[out_features, in_features]`, GPT-2's `Conv1D`
/// keeps the transpose `[in_features, out_features]`.
enum class Orientation : std::uint8_t { out_in, in_out };

/// What a slice of a tensor is, for the reference forward and for scoring.
enum class Role : std::uint8_t { query, key, value, output, alibi_slope, attention_sink, extra };

/// Who owns a slice: a query head (Q rows, O columns, most extras) or a key/value head (K/V rows).
enum class Owner : std::uint8_t { query_head, kv_head };

/// What kind of tensor a block holds.
enum class TensorKind : std::uint8_t { weight, bias, extra };

inline const char* to_string(Role role) {
  switch (role) {
    case Role::query:
      return "query";
    case Role::key:
      return "key";
    case Role::value:
      return "value";
    case Role::output:
      return "output";
    case Role::alibi_slope:
      return "alibi_slope";
    case Role::attention_sink:
      return "attention_sink";
    case Role::extra:
      return "extra";
  }
  return "?";
}

}  // namespace mhaprune
