// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// A snapshot of everything an ActivationStats shows through its readers, to check that a call that
// threw changed nothing.

#include <Eigen/Core>
#include <cstdint>
#include <mhaprune/calibration/activation_stats.hpp>
#include <optional>

namespace mhaprune_test {

/// Everything a reader can show, or the fact that it throws; two equal snapshots mean no observable
/// state changed.
struct StatsSnapshot {
  using Index = mhaprune::Index;

  Index channels;
  std::int64_t count, batches;
  bool has_gram;
  std::optional<Eigen::VectorXd> mean, m2, variance, population_variance, sum_squares, l2_norms;
  std::optional<Eigen::MatrixXd> gram;

  template <typename Read>
  static auto attempt(Read read) -> std::optional<decltype(read())> {
    try {
      return read();
    } catch (const mhaprune::calibration_error&) {
      return std::nullopt;
    }
  }

  explicit StatsSnapshot(const mhaprune::ActivationStats& s)
      : channels(s.channels()),
        count(s.count()),
        batches(s.batches()),
        has_gram(s.has_gram()),
        mean(attempt([&] { return Eigen::VectorXd(s.mean()); })),
        m2(attempt([&] { return Eigen::VectorXd(s.m2()); })),
        variance(attempt([&] { return s.variance(); })),
        population_variance(attempt([&] { return s.population_variance(); })),
        sum_squares(attempt([&] { return Eigen::VectorXd(s.sum_squares()); })),
        l2_norms(attempt([&] { return s.l2_norms(); })),
        gram(attempt([&] { return Eigen::MatrixXd(s.gram()); })) {}
};

template <typename T>
inline bool same(const std::optional<T>& a, const std::optional<T>& b) {
  if (a.has_value() != b.has_value()) return false;
  if (!a) return true;
  return a->rows() == b->rows() && a->cols() == b->cols() && *a == *b;  // bit-for-bit
}

inline bool operator==(const StatsSnapshot& a, const StatsSnapshot& b) {
  return a.channels == b.channels && a.count == b.count && a.batches == b.batches &&
         a.has_gram == b.has_gram && same(a.mean, b.mean) && same(a.m2, b.m2) &&
         same(a.variance, b.variance) && same(a.population_variance, b.population_variance) &&
         same(a.sum_squares, b.sum_squares) && same(a.l2_norms, b.l2_norms) && same(a.gram, b.gram);
}

}  // namespace mhaprune_test
