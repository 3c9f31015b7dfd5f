// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <type_traits>
#include <utility>

#include "mhaprune/calibration/activation_stats.hpp"
#include "mhaprune/core/scalar.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// What O should produce, paired token by token with what O is given: statistics for refitting O to
/// targets other than its own current output (`remove_heads_to_targets`).
///
/// Why: `ActivationStats` of O's input can only ask the kept heads to reproduce what the block
/// itself would output on that input. When layers are pruned one after another (sequential
/// calibration), the input already carries the errors of the layers before; a better target is what
/// the UNPRUNED model has in the residual stream after this attention block. For a residual block
/// `h = x + O(z)` with x the block's input, run the unpruned and the partly pruned model on the same
/// tokens and add, per token,
///
///     inputs  = z_pruned                                   [tokens, C]   (C = H*d current channels)
///     targets = (x_unpruned + O_unpruned(z_unpruned)) - x_pruned      [tokens, D]   (bias included)
///
/// so that the refitted O also cancels the drift the earlier layers left in x, as far as the kept
/// heads can express it. With `targets = O(inputs)` (bias included) the refit equals the plain
/// `lsq` / `bias+lsq` compensation.
///
/// Accumulated in double whatever the input type: the input statistics (mean, M2, Gram matrix) as
/// `ActivationStats` does, the targets' mean, and the cross moment Σ y zᵀ `[D, C]`. Accumulators fed
/// parts of the data `merge` into the one-pass result up to rounding.
///
/// Shapes are fixed by the constructor. Every mutating member validates everything before it
/// changes anything (strong exception guarantee). Not thread-safe for concurrent mutation.
class OutputTargets {
 public:
  /// @param channels C, O's input width (the block's current H*d); > 0.
  /// @param outputs D, O's output width; > 0.
  /// @throws shape_error when either is not positive.
  OutputTargets(Index channels, Index outputs)
      : inputs_(checked(channels, outputs), GramTracking::on),
        targets_(outputs),
        cross_(Eigen::MatrixXd::Zero(outputs, channels)) {}

  /// Adds one batch of tokens: `inputs` `[tokens, C]` and `targets` `[tokens, D]`, row n of each the
  /// same token.
  /// @tparam DerivedZ, DerivedY Eigen dense expressions of float, double, Eigen::half or
  ///         Eigen::bfloat16, each evaluated once.
  /// @throws shape_error when the widths are not (C, D) or the token counts differ.
  /// @throws calibration_error when either holds a NaN or an infinity (naming the batch, row, column).
  /// Strong guarantee.
  template <typename DerivedZ, typename DerivedY>
  void add(const Eigen::MatrixBase<DerivedZ>& inputs, const Eigen::MatrixBase<DerivedY>& targets) {
    if (inputs.cols() != channels() || targets.cols() != outputs() || inputs.rows() != targets.rows()) {
      throw shape_error(detail::message("OutputTargets::add(): batch ", inputs_.batches(),
                                        " (0-based): expected inputs [tokens, ", channels(),
                                        "] and targets [tokens, ", outputs(), "] of the same tokens, got ",
                                        detail::shape_string(inputs.rows(), inputs.cols()), " and ",
                                        detail::shape_string(targets.rows(), targets.cols())));
    }
    if (inputs.rows() == 0) return;
    const Eigen::MatrixXd z = to_double(inputs), y = to_double(targets);
    // Work on copies and swap them in: a throw from either accumulator leaves this one as it was.
    ActivationStats in = inputs_, out = targets_;
    in.add(z);
    out.add(y);
    Eigen::MatrixXd cross = cross_;
    cross.noalias() += y.transpose() * z;
    inputs_ = std::move(in);
    targets_ = std::move(out);
    cross_ = std::move(cross);
  }

  /// Adds another accumulator's tokens. @throws shape_error when the shapes differ. Strong guarantee.
  void merge(const OutputTargets& other) {
    if (other.channels() != channels() || other.outputs() != outputs()) {
      throw shape_error(detail::message("OutputTargets::merge(): shapes differ: C=", channels(),
                                        ", D=", outputs(), " here, C=", other.channels(),
                                        ", D=", other.outputs(), " there"));
    }
    ActivationStats in = inputs_, out = targets_;
    in.merge(other.inputs_);
    out.merge(other.targets_);
    Eigen::MatrixXd cross = cross_ + other.cross_;
    inputs_ = std::move(in);
    targets_ = std::move(out);
    cross_ = std::move(cross);
  }

  Index channels() const noexcept { return inputs_.channels(); }
  Index outputs() const noexcept { return targets_.channels(); }
  std::int64_t count() const noexcept { return inputs_.count(); }

  /// Statistics of O's input, with the Gram matrix (as `ActivationStats` with `GramTracking::on`).
  const ActivationStats& inputs() const noexcept { return inputs_; }
  /// Per-dimension statistics of the targets (mean, M2, sum of squares).
  const ActivationStats& targets() const noexcept { return targets_; }
  /// Σ over tokens of y zᵀ, `[D, C]` (a sum, not a mean).
  const Eigen::MatrixXd& cross_sum() const noexcept { return cross_; }

 private:
  static Index checked(Index channels, Index outputs) {
    if (channels <= 0 || outputs <= 0) {
      throw shape_error(detail::message("OutputTargets: channels (", channels, ") and outputs (", outputs,
                                        ") must be positive"));
    }
    return channels;
  }

  template <typename Derived>
  static Eigen::MatrixXd to_double(const Eigen::MatrixBase<Derived>& m) {
    using In = typename Derived::Scalar;
    static_assert(is_supported_scalar_v<In>,
                  "OutputTargets::add(): scalars must be float, double, Eigen::half or Eigen::bfloat16");
    if constexpr (std::is_floating_point_v<In>) {
      return m.template cast<double>();
    } else {
      return m.unaryExpr([](In v) { return detail::to_double(v); });
    }
  }

  ActivationStats inputs_, targets_;
  Eigen::MatrixXd cross_;
};

}  // namespace mhaprune
