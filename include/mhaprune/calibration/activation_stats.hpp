// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <optional>

#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

/// Whether an `ActivationStats` also accumulates the Gram matrix XᵀX (channels² doubles of memory).
enum class GramTracking : std::uint8_t { off, on };

/// Running per-channel statistics of activations `X` `[tokens, channels]`, fed one batch of tokens at
/// a time: the token count, the mean and M2 (sum of squared deviations from the mean) of each channel,
/// each channel's sum of squares and, optionally, the Gram matrix XᵀX.
///
/// Everything is accumulated in double whatever the input type. Mean and M2 are merged batch by batch
/// with Chan et al.'s parallel formula (each batch's own two-pass mean and M2 merged into the running
/// ones), which stays accurate when the mean is large against the spread (1e4 + N(0,1) loses nothing
/// that the float input had) and is a few vectorised passes per batch. Two accumulators fed halves of
/// the data `merge` into the one-pass result up to rounding, so calibration can be split across
/// threads or processes.
///
/// Channels: fixed by the constructor, or by the first non-empty batch when constructed with 0; a
/// later change is an error. Every mutating member validates everything before it changes anything
/// (strong exception guarantee): on any throw, every reader returns what it returned before.
///
/// Not thread-safe for concurrent mutation; const members may be called concurrently.
class ActivationStats {
 public:
  /// @param channels number of channels; 0 lets the first non-empty batch fix it. Must be >= 0.
  /// @param gram whether to also accumulate XᵀX (allocated here when `channels` > 0).
  /// @throws shape_error when `channels` < 0.
  explicit ActivationStats(Index channels = 0, GramTracking gram = GramTracking::off);

  /// Adds one batch of tokens.
  ///
  /// @tparam Derived any Eigen dense expression whose scalar is `float`, `double`, `Eigen::half` or
  ///         `Eigen::bfloat16` (a matrix, a map, a block, a product...). It is evaluated once.
  /// @param batch `[tokens, channels]`: one row per token, one column per channel. A batch with 0
  ///        tokens is a no-op (its channel count is still checked when the accumulator's is fixed):
  ///        it neither fixes the channels nor counts as a batch.
  /// @throws shape_error when the batch has 0 channels (and some tokens), or a channel count other than
  ///         `channels()` once that is fixed; the message names the expected and actual counts.
  /// @throws calibration_error when the batch holds a NaN or an infinity; the message names the batch
  ///         number (`batches()` before this call, 0-based), the token row and the channel of the first
  ///         one in row-major order; also when a running sum of squares would overflow double (only
  ///         double input of magnitude ~1e154 can do that).
  /// Strong guarantee: on any throw (including std::bad_alloc) nothing changes.
  /// Cost: a few passes over the batch, plus with the Gram matrix one rank-`tokens` update (a SYRK,
  /// half the flops of the GEMM XᵀX). Transient memory: tokens×channels doubles, and with the Gram
  /// matrix of non-double input tokens×channels floats and channels² floats.
  template <typename Derived>
  void add(const Eigen::MatrixBase<Derived>& batch);

  /// Adds another accumulator's samples, as if its batches had been added here (Chan's formula).
  /// Afterwards `count()` and `batches()` are the sums. `merge(*this)` doubles every sample.
  ///
  /// @throws calibration_error when one tracks the Gram matrix and the other does not.
  /// @throws shape_error when both have a fixed channel count and the counts differ.
  /// Both checks come first; then merging an accumulator with no samples is a no-op. Merging into an
  /// accumulator whose channels are not fixed yet takes the other's. Strong guarantee.
  void merge(const ActivationStats& other);

  /// Forgets every sample; keeps the channel count (as fixed so far) and the Gram setting.
  void reset() noexcept;

  /// Number of channels, or 0 while not fixed yet.
  Index channels() const noexcept { return channels_; }
  /// Number of tokens (rows) added so far.
  std::int64_t count() const noexcept { return count_; }
  /// Number of non-empty batches added so far (merged accumulators add theirs; `from_moments` counts 1).
  std::int64_t batches() const noexcept { return batches_; }

  /// Whether the mean and M2 are known: true except for statistics rebuilt by `from_sum_squares`
  /// (sums of squares only, e.g. from a llama-imatrix file) and accumulators they were merged into.
  bool has_moments() const noexcept { return has_moments_; }

  /// Per-channel mean, `[channels]`.
  /// @throws calibration_error when `count()` is 0, or when `has_moments()` is false.
  const Eigen::VectorXd& mean() const;
  /// Per-channel M2 = Σ (x - mean)², `[channels]`.
  /// @throws calibration_error when `count()` is 0, or when `has_moments()` is false.
  const Eigen::VectorXd& m2() const;
  /// Per-channel sample variance M2 / (n - 1), `[channels]`.
  /// @throws calibration_error when `count()` is 0 or 1 (use `population_variance` for one sample), or
  ///         when `has_moments()` is false.
  Eigen::VectorXd variance() const;
  /// Per-channel population variance M2 / n, `[channels]`.
  /// @throws calibration_error when `count()` is 0, or when `has_moments()` is false.
  Eigen::VectorXd population_variance() const;
  /// Per-channel sum of squares Σ x², `[channels]`. @throws calibration_error when `count()` is 0.
  const Eigen::VectorXd& sum_squares() const;
  /// Per-channel L2 norm ‖X_j‖₂ = sqrt(Σ x²) over all tokens, `[channels]` (Wanda's activation norm).
  /// @throws calibration_error when `count()` is 0.
  Eigen::VectorXd l2_norms() const;

  /// Whether the Gram matrix is tracked (`GramTracking::on`).
  bool has_gram() const noexcept { return gram_tracking_ == GramTracking::on; }
  /// XᵀX over all tokens, not divided by the count: `[channels, channels]`, full and exactly symmetric.
  /// Precision: batches are summed in double. Within a batch, XᵀX = XcᵀXc + n·μμᵀ (+ rounding terms)
  /// with Xc the batch centred at its own mean; XcᵀXc is computed in the input's precision (float for
  /// float, half and bfloat16 input, which carry no more than float's 24 bits; double for double),
  /// so its rounding is relative to the spread of the activations, not to their offset: the
  /// covariance XᵀX/n - μμᵀ read back from it keeps float's relative precision even for activations
  /// like 1e4 + N(0,1), where a float XᵀX would lose it all.
  /// @throws calibration_error when the Gram matrix is not tracked, or when `count()` is 0.
  const Eigen::MatrixXd& gram() const;

  /// Rebuilds an accumulator from stored statistics (as written by a previous run), so that more
  /// batches can be added to it or it can be merged. The channel count is `mean.size()`; the Gram
  /// matrix is tracked when `gram` is given. `batches()` of the result is 1 (0 when `count` is 0).
  ///
  /// @param count number of tokens behind the statistics, >= 0.
  /// @param mean, m2, sum_squares `[channels]` each, channels >= 1.
  /// @param gram `[channels, channels]`; only its lower triangle is read (the result is symmetric).
  /// @throws shape_error when the sizes disagree, or channels is 0.
  /// @throws calibration_error when `count` < 0, a value is not finite, an M2 or a sum of squares is
  ///         negative, or `count` is 0 while some statistic is not zero.
  static ActivationStats from_moments(std::int64_t count, const Eigen::VectorXd& mean,
                                      const Eigen::VectorXd& m2, const Eigen::VectorXd& sum_squares,
                                      const std::optional<Eigen::MatrixXd>& gram = std::nullopt);

  /// Rebuilds statistics that know only each channel's sum of squares Σ x² and the token count, as
  /// a llama-imatrix file stores them (without its optional Σ x): enough for `sum_squares` and
  /// `l2_norms` (wanda_sp), while `mean`, `m2` and the variances throw, so that nothing uses moments
  /// that were never measured. `has_moments()` is false (true again after `reset`, or when `count`
  /// is 0, since then nothing is unknown). Batches can be added and accumulators merged; the result
  /// keeps summing squares and counting tokens and knows its moments only if every part did. No
  /// Gram matrix is tracked.
  ///
  /// @param count number of tokens behind the sums, >= 0.
  /// @param sum_squares `[channels]`, channels >= 1, each finite and >= 0 (all 0 when `count` is 0).
  /// @throws shape_error when `sum_squares` is empty.
  /// @throws calibration_error when `count` < 0, or a sum is negative, not finite, or not 0 with a
  ///         count of 0.
  static ActivationStats from_sum_squares(std::int64_t count, const Eigen::VectorXd& sum_squares);

 private:
  void require_samples(const char* caller) const;
  void require_moments(const char* caller) const;

  Index channels_ = 0;
  GramTracking gram_tracking_ = GramTracking::off;
  std::int64_t count_ = 0;
  std::int64_t batches_ = 0;
  Eigen::VectorXd mean_;
  Eigen::VectorXd m2_;
  Eigen::VectorXd sum_squares_;
  Eigen::MatrixXd gram_;     // [channels, channels] when tracked, else empty
  bool has_moments_ = true;  // false: mean_ and m2_ hold no information (see from_sum_squares)
};

}  // namespace mhaprune

#include "mhaprune/calibration/activation_stats_impl.hpp"
