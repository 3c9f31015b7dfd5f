// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Bodies of ActivationStats; include "mhaprune/calibration/activation_stats.hpp", not this file.

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <type_traits>
#include <utility>

#include "mhaprune/calibration/activation_stats.hpp"
#include "mhaprune/core/scalar.hpp"
#include "mhaprune/core/types.hpp"
#include "mhaprune/error.hpp"

namespace mhaprune {

namespace detail {

/// Copies the strictly lower triangle of a square matrix onto its upper triangle. Tiles of 32x32
/// keep both the read and the transposed write in cache (a plain loop or Eigen's triangular
/// assignment is 6x slower at 4096²).
inline void mirror_lower(Eigen::MatrixXd& g) noexcept {
  constexpr Index tile = 32;
  const Index n = g.rows();
  for (Index jb = 0; jb < n; jb += tile) {
    for (Index ib = jb; ib < n; ib += tile) {
      const Index ie = std::min(n, ib + tile), je = std::min(n, jb + tile);
      if (ib != jb && ie - ib == tile && je - jb == tile) {
        g.block<tile, tile>(jb, ib) = g.block<tile, tile>(ib, jb).transpose();
        continue;
      }
      for (Index j = jb; j < je; ++j)
        for (Index i = std::max(ib, j + 1); i < ie; ++i) g(j, i) = g(i, j);
    }
  }
}

/// Chan et al.'s merge of two (count, mean, M2) summaries; stable when one side is much larger.
inline void chan_merge(double n_a, const Eigen::VectorXd& mean_a, const Eigen::VectorXd& m2_a, double n_b,
                       const Eigen::VectorXd& mean_b, const Eigen::VectorXd& m2_b, Eigen::VectorXd& mean,
                       Eigen::VectorXd& m2) {
  const double n = n_a + n_b;
  const Eigen::VectorXd delta = mean_b - mean_a;
  mean = mean_a + delta * (n_b / n);
  m2 = m2_a + m2_b + delta.cwiseAbs2() * (n_a * n_b / n);
}

/// Throws the calibration_error for the first non-finite value of `x` in row-major order (the token
/// the user would reach first reading the batch), if there is one.
inline void check_finite(const Eigen::MatrixXd& x, std::int64_t batch) {
  if (x.allFinite()) return;
  Index row = x.rows(), col = 0;
  for (Index j = 0; j < x.cols(); ++j) {
    for (Index i = 0; i < std::min(row, x.rows()); ++i) {
      if (!std::isfinite(x(i, j))) {
        if (i < row) row = i, col = j;
        break;
      }
    }
  }
  throw calibration_error(message("ActivationStats::add(): batch ", batch, " (0-based) holds ", x(row, col),
                                  " at token row ", row, ", channel ", col,
                                  "; calibration activations must be finite, nothing was added"));
}

/// Adds to the lower triangle of `g` the Gram matrix of a batch X given as its column mean `mu`, the
/// column sums `s` of its centred values Xc = X - 1μᵀ (zero up to rounding) and the lower triangle
/// of XcᵀXc as a kernel computed it, times `unscale` (the kernel's own scale undone):
///   XᵀX = (Xc + 1μᵀ)ᵀ(Xc + 1μᵀ) = XcᵀXc + sμᵀ + μsᵀ + n μμᵀ.
/// Only XcᵀXc carries the kernel's rounding, relative to the spread of X, not to its offset.
/// One pass over the triangle, no allocation.
template <typename Kernel>
void add_centred_gram(Eigen::MatrixXd& g, const Kernel* centred_gram, double unscale,
                      const Eigen::VectorXd& mu, const Eigen::VectorXd& s, double n) noexcept {
  const Index c = g.rows();
  for (Index j = 0; j < c; ++j) {
    const Index len = c - j;
    auto col = g.col(j).tail(len);
    const double coef = s(j) + n * mu(j);
    if (centred_gram) {
      col += centred_gram->col(j).tail(len).template cast<double>() * unscale + s.tail(len) * mu(j) +
             mu.tail(len) * coef;
    } else {
      col += s.tail(len) * mu(j) + mu.tail(len) * coef;
    }
  }
}

}  // namespace detail

inline ActivationStats::ActivationStats(Index channels, GramTracking gram) : gram_tracking_(gram) {
  if (channels < 0) {
    throw shape_error(
        detail::message("ActivationStats::ActivationStats(): expected a channel count >= 0, got ", channels));
  }
  channels_ = channels;
  mean_ = Eigen::VectorXd::Zero(channels);
  m2_ = Eigen::VectorXd::Zero(channels);
  sum_squares_ = Eigen::VectorXd::Zero(channels);
  if (has_gram()) gram_ = Eigen::MatrixXd::Zero(channels, channels);
}

template <typename Derived>
void ActivationStats::add(const Eigen::MatrixBase<Derived>& batch) {
  using In = typename Derived::Scalar;
  static_assert(is_supported_scalar_v<In>,
                "ActivationStats::add(): the batch's scalar must be float, double, Eigen::half or "
                "Eigen::bfloat16");
  const Index tokens = batch.rows(), cols = batch.cols();
  if (channels_ != 0 && cols != channels_) {
    throw shape_error(detail::message("ActivationStats::add(): batch ", batches_, " (0-based): expected ",
                                      channels_,
                                      " channels (fixed by the constructor or the first batch), got ", cols,
                                      "; batch shape ", detail::shape_string(tokens, cols)));
  }
  if (tokens == 0) return;
  if (cols == 0) {
    throw shape_error(detail::message("ActivationStats::add(): batch ", batches_,
                                      " (0-based): expected at least one channel, got batch shape ",
                                      detail::shape_string(tokens, cols)));
  }

  // Evaluated once, in double: the moments need it, and `batch` may be a costly expression.
  Eigen::MatrixXd x;
  if constexpr (std::is_floating_point_v<In>) {
    x = batch.template cast<double>();
  } else {
    x = batch.unaryExpr([](In v) { return detail::to_double(v); });
  }
  detail::check_finite(x, batches_);

  const double n_b = static_cast<double>(tokens);
  const Eigen::VectorXd sumsq_b = x.colwise().squaredNorm().transpose();
  Eigen::VectorXd mean_b = x.colwise().mean().transpose();
  x.rowwise() -= mean_b.transpose();
  // Corrected two-pass M2: subtracting (Σ d)²/n removes the error of the rounded mean.
  const Eigen::VectorXd dsum = x.colwise().sum().transpose();
  Eigen::VectorXd m2_b = (x.colwise().squaredNorm().transpose() - dsum.cwiseAbs2() / n_b).cwiseMax(0.0);

  const bool fresh = channels_ == 0;
  const Index c = cols;
  Eigen::VectorXd mean, m2, sumsq;
  if (count_ == 0) {
    mean = mean_b, m2 = m2_b, sumsq = sumsq_b;
  } else {
    detail::chan_merge(static_cast<double>(count_), mean_, m2_, n_b, mean_b, m2_b, mean, m2);
    sumsq = sum_squares_ + sumsq_b;
  }
  // In practice only double input overflows (float's largest square is 1e77), and M2 and the Gram
  // matrix are bounded by the sums of squares (Cauchy-Schwarz), so this one check covers them all.
  if (!sumsq.allFinite()) {
    Index j = 0;
    while (std::isfinite(sumsq(j))) ++j;
    throw calibration_error(detail::message("ActivationStats::add(): batch ", batches_,
                                            " (0-based): the sum of squares of channel ", j,
                                            " overflows double; nothing was added"));
  }

  Eigen::MatrixXd fresh_gram;
  if (has_gram()) {
    if (fresh) fresh_gram = Eigen::MatrixXd::Zero(c, c);
    Eigen::MatrixXd& g = fresh ? fresh_gram : gram_;
    if constexpr (std::is_same_v<In, double>) {
      // Double input gets a double kernel; Eigen allocates its workspace before writing into g.
      g.selfadjointView<Eigen::Lower>().rankUpdate(x.transpose());
      detail::add_centred_gram<Eigen::MatrixXd>(g, nullptr, 1.0, mean_b, dsum, n_b);
    } else {
      // float, half and bfloat16 carry 24 significant bits or fewer, so the per-batch Gram runs in
      // float (twice the speed of double, and half the flops of a GEMM as a rank update) on the
      // centred batch, where float's error is relative to the spread, not to the offset; the
      // offset's part nμμᵀ and the batches are summed in double. A power-of-two scale keeps every
      // product of the centred values inside float's range without rounding them.
      const double top = m2_b.maxCoeff();
      int e = 0;
      if (top > 0) std::frexp(std::sqrt(top), &e);
      const Eigen::MatrixXf xf = (x * std::ldexp(1.0, -e)).template cast<float>();
      Eigen::MatrixXf kernel = Eigen::MatrixXf::Zero(c, c);
      kernel.selfadjointView<Eigen::Lower>().rankUpdate(xf.transpose());
      detail::add_centred_gram(g, &kernel, std::ldexp(1.0, 2 * e), mean_b, dsum, n_b);
    }
    detail::mirror_lower(g);
  }

  // Commit: nothing below throws.
  if (fresh) {
    channels_ = c;
    gram_.swap(fresh_gram);
  }
  mean_.swap(mean);
  m2_.swap(m2);
  sum_squares_.swap(sumsq);
  count_ += tokens;
  ++batches_;
}

inline void ActivationStats::merge(const ActivationStats& other) {
  if (has_gram() != other.has_gram()) {
    throw calibration_error(detail::message(
        "ActivationStats::merge(): expected ",
        has_gram() ? "an accumulator that tracks" : "one that does not track",
        " the Gram matrix, like this one; got one that ", other.has_gram() ? "does" : "does not"));
  }
  if (channels_ != 0 && other.channels_ != 0 && channels_ != other.channels_) {
    throw shape_error(detail::message("ActivationStats::merge(): expected ", channels_, " channels, got ",
                                      other.channels_));
  }
  if (other.count_ == 0) return;
  if (count_ == 0) {
    ActivationStats copy(other);
    copy.batches_ += batches_;
    *this = std::move(copy);
    return;
  }
  Eigen::VectorXd mean, m2;
  detail::chan_merge(static_cast<double>(count_), mean_, m2_, static_cast<double>(other.count_), other.mean_,
                     other.m2_, mean, m2);
  Eigen::VectorXd sumsq = sum_squares_ + other.sum_squares_;
  if (has_gram()) gram_ += other.gram_;  // same size: no allocation, cannot throw
  has_moments_ = has_moments_ && other.has_moments_;
  mean_.swap(mean);
  m2_.swap(m2);
  sum_squares_.swap(sumsq);
  count_ += other.count_;
  batches_ += other.batches_;
}

inline void ActivationStats::reset() noexcept {
  mean_.setZero();
  m2_.setZero();
  sum_squares_.setZero();
  gram_.setZero();
  count_ = 0;
  batches_ = 0;
  has_moments_ = true;
}

inline void ActivationStats::require_samples(const char* caller) const {
  if (count_ == 0) {
    throw calibration_error(
        detail::message("ActivationStats::", caller, "(): no samples were added yet (count() is 0)"));
  }
}

inline void ActivationStats::require_moments(const char* caller) const {
  if (!has_moments_) {
    throw calibration_error(detail::message(
        "ActivationStats::", caller,
        "(): these statistics hold only per-channel sums of squares and the token count (from_sum_squares, "
        "e.g. a llama-imatrix file without in_sum): the mean and variance of the activations are unknown"));
  }
}

inline const Eigen::VectorXd& ActivationStats::mean() const {
  require_samples("mean");
  require_moments("mean");
  return mean_;
}

inline const Eigen::VectorXd& ActivationStats::m2() const {
  require_samples("m2");
  require_moments("m2");
  return m2_;
}

inline Eigen::VectorXd ActivationStats::variance() const {
  require_samples("variance");
  require_moments("variance");
  if (count_ < 2) {
    throw calibration_error(
        detail::message("ActivationStats::variance(): the sample variance needs at least 2 "
                        "samples, got ",
                        count_, "; population_variance() is defined for one"));
  }
  return m2_ / static_cast<double>(count_ - 1);
}

inline Eigen::VectorXd ActivationStats::population_variance() const {
  require_samples("population_variance");
  require_moments("population_variance");
  return m2_ / static_cast<double>(count_);
}

inline const Eigen::VectorXd& ActivationStats::sum_squares() const {
  require_samples("sum_squares");
  return sum_squares_;
}

inline Eigen::VectorXd ActivationStats::l2_norms() const {
  require_samples("l2_norms");
  return sum_squares_.cwiseSqrt();
}

inline const Eigen::MatrixXd& ActivationStats::gram() const {
  if (!has_gram()) {
    throw calibration_error(
        "ActivationStats::gram(): the Gram matrix is not tracked (construct with GramTracking::on)");
  }
  require_samples("gram");
  return gram_;
}

inline ActivationStats ActivationStats::from_moments(std::int64_t count, const Eigen::VectorXd& mean,
                                                     const Eigen::VectorXd& m2,
                                                     const Eigen::VectorXd& sum_squares,
                                                     const std::optional<Eigen::MatrixXd>& gram) {
  const Index c = mean.size();
  const char* here = "ActivationStats::from_moments(): ";
  if (c == 0) throw shape_error(detail::message(here, "expected at least one channel, got an empty mean"));
  if (m2.size() != c || sum_squares.size() != c) {
    throw shape_error(detail::message(here, "expected m2 and sum_squares of length ", c, " like mean, got ",
                                      m2.size(), " and ", sum_squares.size()));
  }
  if (gram && (gram->rows() != c || gram->cols() != c)) {
    throw shape_error(detail::message(here, "expected a Gram matrix ", detail::shape_string(c, c), ", got ",
                                      detail::shape_string(gram->rows(), gram->cols())));
  }
  if (count < 0) throw calibration_error(detail::message(here, "expected a count >= 0, got ", count));
  const auto check = [&](const Eigen::VectorXd& v, const char* name, bool non_negative) {
    for (Index j = 0; j < c; ++j) {
      if (!std::isfinite(v(j)) || (non_negative && v(j) < 0) || (count == 0 && v(j) != 0)) {
        throw calibration_error(detail::message(here, name, " of channel ", j, " is ", v(j), "; expected ",
                                                count == 0     ? "0 with a count of 0"
                                                : non_negative ? "a finite value >= 0"
                                                               : "a finite value"));
      }
    }
  };
  check(mean, "the mean", false);
  check(m2, "the M2", true);
  check(sum_squares, "the sum of squares", true);
  if (gram) {
    for (Index j = 0; j < c; ++j) {
      for (Index i = j; i < c; ++i) {
        const double v = (*gram)(i, j);
        if (!std::isfinite(v) || (count == 0 && v != 0)) {
          throw calibration_error(detail::message(here, "the Gram matrix's entry (", i, ", ", j, ") is ", v,
                                                  "; expected ",
                                                  count == 0 ? "0 with a count of 0" : "a finite value"));
        }
      }
    }
  }

  ActivationStats s(c, gram ? GramTracking::on : GramTracking::off);
  s.mean_ = mean;
  s.m2_ = m2;
  s.sum_squares_ = sum_squares;
  if (gram) {
    s.gram_.triangularView<Eigen::Lower>() = *gram;
    detail::mirror_lower(s.gram_);
  }
  s.count_ = count;
  s.batches_ = count > 0 ? 1 : 0;
  return s;
}

inline ActivationStats ActivationStats::from_sum_squares(std::int64_t count,
                                                         const Eigen::VectorXd& sum_squares) {
  const Index c = sum_squares.size();
  const char* here = "ActivationStats::from_sum_squares(): ";
  if (c == 0)
    throw shape_error(detail::message(here, "expected at least one channel, got empty sums of squares"));
  if (count < 0) throw calibration_error(detail::message(here, "expected a count >= 0, got ", count));
  for (Index j = 0; j < c; ++j) {
    const double v = sum_squares(j);
    if (!std::isfinite(v) || v < 0 || (count == 0 && v != 0)) {
      throw calibration_error(detail::message(here, "the sum of squares of channel ", j, " is ", v,
                                              "; expected ",
                                              count == 0 ? "0 with a count of 0" : "a finite value >= 0"));
    }
  }
  ActivationStats s(c);
  s.sum_squares_ = sum_squares;
  s.count_ = count;
  s.batches_ = count > 0 ? 1 : 0;
  s.has_moments_ = count == 0;  // with no tokens nothing is unknown; adding batches then gives moments
  return s;
}

}  // namespace mhaprune
