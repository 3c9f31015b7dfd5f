// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mhaprune/compensation/method.hpp"
#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/core/detail/output_access.hpp"
#include "mhaprune/core/head_selection.hpp"
#include "mhaprune/core/remove_heads.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune::detail {

/// O's new columns `[D, H*d]` (only the kept heads' columns matter) and O's new bias, computed in
/// double from O, its bias (when the block has one; else zero) and the statistics.
struct CompensatedOutput {
  Eigen::MatrixXd weight;
  std::optional<Eigen::VectorXd> bias;  ///< set when the method shifted the bias
};

/// Method `none`: the plain removal.
template <typename Scalar>
CompensationOutcome without_compensation(AttentionBlock<Scalar>& block, RemovalPlan plan) noexcept {
  CompensationOutcome outcome;
  outcome.removed = apply_removal(block, std::move(plan));
  return outcome;
}

/// Writes a compensated O into the block and removes the planned heads: the last step of every
/// compensated removal. First checks that every value written fits Scalar (half tops out at 65504),
/// then commits; nothing after the check throws. `keep[h]`: whether current head h stays.
/// `has_bias`: whether the block binds an O bias (else a bias shift is returned as `created_bias`).
/// @throws compensation_error naming the method, the block and the value that does not fit.
template <typename Scalar>
CompensationOutcome commit_compensated(AttentionBlock<Scalar>& block, RemovalPlan plan,
                                       const std::vector<char>& keep, CompensatedOutput out, bool has_bias,
                                       std::string_view method) {
  const HeadLayout& L = block.layout();
  const auto check_range = [&](const auto& values, const char* what) {
    const Index bad = first_unrepresentable<Scalar>(values);
    if (bad < 0) return;
    throw compensation_error(message("compensation \"", method, "\": block \"", block.name(),
                                     "\": the compensated ", what, " holds ",
                                     values(bad % values.rows(), bad / values.rows()),
                                     ", which the block's element type cannot hold (largest finite ",
                                     largest_finite<Scalar>(), "); nothing was changed"));
  };
  for (Index h = 0; h < L.heads(); ++h) {
    if (keep[static_cast<std::size_t>(h)])
      check_range(out.weight.middleCols(h * L.head_dim(), L.head_dim()), "O weight");
  }
  if (out.bias) check_range(*out.bias, "O bias");

  // Commit: nothing below throws.
  CompensationOutcome outcome;
  write_output_columns(block, out.weight, keep);
  if (out.bias) {
    if (has_bias) {
      write_output_bias(block, *out.bias);
    } else {
      outcome.created_bias = std::move(*out.bias);
    }
  }
  outcome.removed = apply_removal(block, std::move(plan));
  return outcome;
}

/// Current positions of heads named by original id; the same check and message as `remove_heads`.
template <typename Scalar>
Positions current_positions(const AttentionBlock<Scalar>& block, const OriginalIds& heads) {
  std::vector<Index> positions;
  positions.reserve(heads.ids.size());
  for (Index id : heads.ids) {
    const Index p = block.position_of(id);
    if (p < 0) {
      throw head_id_error(
          message("block \"", block.name(), "\": original head ", id,
                  id < 0 || id >= block.original_heads()
                      ? message(" does not exist (the block had ", block.original_heads(), " heads)")
                      : std::string(" was already removed"),
                  "; present: ", list_string(block.head_ids())));
    }
    positions.push_back(p);
  }
  return Positions(std::move(positions));
}

}  // namespace mhaprune::detail
