// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// ActivationStats: the moments against two-pass references (hand-computed on a small batch, long
// double on 10^6 offset values), merge against one pass, the Gram matrix against XᵀX, every input
// type, and every error path with its message and the state left untouched.

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <iomanip>
#include <limits>
#include <mhaprune/calibration/activation_stats.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <type_traits>
#include <vector>

#include "support/stats_snapshot.hpp"

namespace test_activation_stats {

namespace {

using mhaprune_test::StatsSnapshot;

using Catch::Matchers::Contains;
using mhaprune::ActivationStats;
using mhaprune::calibration_error;
using mhaprune::GramTracking;
using mhaprune::Index;
using mhaprune::shape_error;
using RowMajorXf = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Scientific notation for CAPTURE: Catch prints doubles in fixed notation, 1e-13 as 0.0.
std::string sci(double v) {
  std::ostringstream out;
  out << std::scientific << std::setprecision(3) << v;
  return out.str();
}

/// Largest |a - b| over the largest |b|: one number per matrix, as BLAS error bounds are stated.
double relative_error(const Eigen::MatrixXd& a, const Eigen::MatrixXd& b) {
  return (a - b).cwiseAbs().maxCoeff() / b.cwiseAbs().maxCoeff();
}

/// Two-pass statistics of a column-major double matrix, in long double.
struct TwoPass {
  Eigen::VectorXd mean, m2, sum_squares;
  Eigen::MatrixXd gram;
};

TwoPass two_pass(const Eigen::MatrixXd& x, bool with_gram) {
  const Index n = x.rows(), c = x.cols();
  TwoPass r{Eigen::VectorXd(c), Eigen::VectorXd(c), Eigen::VectorXd(c), Eigen::MatrixXd()};
  for (Index j = 0; j < c; ++j) {
    long double sum = 0, sq = 0;
    for (Index i = 0; i < n; ++i) sum += x(i, j), sq += static_cast<long double>(x(i, j)) * x(i, j);
    const long double mean = sum / static_cast<long double>(n);
    long double m2 = 0;
    for (Index i = 0; i < n; ++i) m2 += (x(i, j) - mean) * (x(i, j) - mean);
    r.mean(j) = static_cast<double>(mean);
    r.m2(j) = static_cast<double>(m2);
    r.sum_squares(j) = static_cast<double>(sq);
  }
  if (with_gram) {
    r.gram.resize(c, c);
    for (Index a = 0; a < c; ++a)
      for (Index b = 0; b < c; ++b) {
        long double g = 0;
        for (Index i = 0; i < n; ++i) g += static_cast<long double>(x(i, a)) * x(i, b);
        r.gram(a, b) = static_cast<double>(g);
      }
  }
  return r;
}

/// Feeds rows [0, n) of `x` in batches whose sizes cycle through `sizes`.
template <typename Matrix>
void feed(ActivationStats& s, const Matrix& x, const std::vector<Index>& sizes) {
  Index row = 0;
  for (std::size_t k = 0; row < x.rows(); ++k) {
    const Index take = std::min(sizes[k % sizes.size()], x.rows() - row);
    s.add(x.middleRows(row, take));
    row += take;
  }
}

Eigen::MatrixXf random_float(Index rows, Index cols, float offset, std::uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Eigen::MatrixXf x(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) x(i, j) = offset + normal(gen);
  return x;
}

}  // namespace

/// Checks relative_error(a, b) < tolerance, printing both in scientific notation on failure.
#define CHECK_RELATIVE(a, b, tolerance)                                      \
  do {                                                                       \
    const double relative_error_ = relative_error((a), (b));                 \
    INFO("relative error " << sci(relative_error_) << " vs " << #tolerance); \
    CHECK(relative_error_ < (tolerance));                                    \
  } while (false)

TEST_CASE("ActivationStats: hand-computed statistics of a small batch", "[calibration][stats]") {
  // Channel 0: 1, 3, 5 -> mean 3, deviations -2 0 2, M2 8. Channel 1: 2, 4, 9 -> mean 5, M2 9+1+16.
  Eigen::MatrixXd x(3, 2);
  x << 1, 2, 3, 4, 5, 9;
  ActivationStats s(0, GramTracking::on);
  CHECK(s.channels() == 0);
  s.add(x);
  CHECK(s.channels() == 2);
  CHECK(s.count() == 3);
  CHECK(s.batches() == 1);
  CHECK(s.mean()(0) == Approx(3.0));
  CHECK(s.mean()(1) == Approx(5.0));
  CHECK(s.m2()(0) == Approx(8.0));
  CHECK(s.m2()(1) == Approx(26.0));
  CHECK(s.variance()(0) == Approx(4.0));
  CHECK(s.variance()(1) == Approx(13.0));
  CHECK(s.population_variance()(0) == Approx(8.0 / 3.0));
  CHECK(s.population_variance()(1) == Approx(26.0 / 3.0));
  CHECK(s.sum_squares()(0) == Approx(35.0));   // 1 + 9 + 25
  CHECK(s.sum_squares()(1) == Approx(101.0));  // 4 + 16 + 81
  CHECK(s.l2_norms()(0) == Approx(std::sqrt(35.0)));
  CHECK(s.l2_norms()(1) == Approx(std::sqrt(101.0)));
  REQUIRE(s.has_gram());
  const Eigen::MatrixXd& g = s.gram();
  REQUIRE(g.rows() == 2);
  REQUIRE(g.cols() == 2);
  CHECK(g(0, 0) == Approx(35.0));
  CHECK(g(1, 1) == Approx(101.0));
  CHECK(g(1, 0) == Approx(59.0));  // 1*2 + 3*4 + 5*9
  CHECK(g(0, 1) == g(1, 0));

  // The same tokens one at a time give the same answers.
  ActivationStats t(2, GramTracking::on);
  for (Index i = 0; i < 3; ++i) t.add(x.row(i));
  CHECK(t.batches() == 3);
  CHECK_RELATIVE(t.mean(), s.mean(), 1e-15);
  CHECK_RELATIVE(t.m2(), s.m2(), 1e-14);
  CHECK_RELATIVE(t.gram(), s.gram(), 1e-15);
}

TEST_CASE("ActivationStats: Welford/Chan matches two-pass on 10^6 float values offset by 1e4",
          "[calibration][stats][accuracy]") {
  // 10^6 tokens of 1e4 + N(0,1) in float, and a second channel at -1e4 to check the sign, fed in
  // ~1500 batches of 1 to 4096 tokens. Float holds 1e4 with a resolution of ~1e-3 (ulp 2^-10), so the
  // values the accumulator sees are the float-rounded ones, and so is the reference: a long-double
  // two-pass over the same floats.
  // Tolerance: 1e-10 relative on the variance. The accumulation is in double (eps 1.1e-16): per batch
  // the corrected two-pass loses ~eps relative, and each Chan merge adds ~eps·|mean| = 1e-12 to the
  // mean difference, i.e. ~1e-12 absolute on an M2 of ~1e6 per merge: ~1e-15 relative each, ~1e-13
  // after ~1500 merges (measured: ~1e-14). 1e-10 keeps a margin of 1000 over that bound, yet the
  // naive one-pass Σx² - n·mean² in double misses it (checked below: the cancellation of two ~1e14
  // sums whose ulp is 0.016 leaves ~1e-8 relative), and any float accumulation misses it by far.
  const Index n = 1'000'000;
  Eigen::MatrixXf x(n, 2);
  x.col(0) = random_float(n, 1, 1.0e4f, 1u + Catch::rngSeed());
  x.col(1) = random_float(n, 1, -1.0e4f, 2u + Catch::rngSeed());
  const TwoPass ref = two_pass(x.cast<double>(), false);

  ActivationStats s;
  feed(s, x, {1, 7, 1000, 3, 4096, 2, 333, 1});
  REQUIRE(s.count() == n);
  CAPTURE(s.batches());

  const Eigen::VectorXd var_ref = ref.m2 / static_cast<double>(n - 1);
  const double var_error = ((s.variance() - var_ref).array() / var_ref.array()).abs().maxCoeff();
  const double mean_error = ((s.mean() - ref.mean).array() / ref.mean.array()).abs().maxCoeff();
  const double sumsq_error =
      ((s.sum_squares() - ref.sum_squares).array() / ref.sum_squares.array()).abs().maxCoeff();
  CAPTURE(sci(var_error), sci(mean_error), sci(sumsq_error), var_ref(0), var_ref(1));
  CHECK(var_error < 1e-10);
  const Eigen::VectorXd naive =
      (s.sum_squares() - static_cast<double>(n) * s.mean().cwiseAbs2()) / static_cast<double>(n - 1);
  const double naive_error = ((naive - var_ref).array() / var_ref.array()).abs().maxCoeff();
  CAPTURE(sci(naive_error));
  CHECK(naive_error > 1e-10);  // the tolerance tells a stable algorithm from a naive one
  CHECK(mean_error < 1e-14);
  CHECK(sumsq_error < 1e-12);
  // The data is what it claims to be: N(0,1) around the offset.
  CHECK(var_ref(0) == Approx(1.0).epsilon(0.01));
  CHECK(s.mean()(1) == Approx(-1.0e4).epsilon(1e-5));
}

TEST_CASE("ActivationStats: the result does not depend on how the tokens are batched",
          "[calibration][stats]") {
  const Eigen::MatrixXf x = random_float(3000, 5, 50.0f, 3u + Catch::rngSeed());
  ActivationStats one(5, GramTracking::on), many(5, GramTracking::on);
  one.add(x);
  feed(many, x, {1, 7, 1000, 13});
  CHECK(many.count() == one.count());
  CHECK_RELATIVE(many.mean(), one.mean(), 1e-14);
  CHECK_RELATIVE(many.m2(), one.m2(), 1e-11);
  CHECK_RELATIVE(many.sum_squares(), one.sum_squares(), 1e-14);
  CHECK_RELATIVE(many.gram(), one.gram(), 1e-9);
}

TEST_CASE("ActivationStats: merging two halves equals one pass", "[calibration][stats][merge]") {
  const Eigen::MatrixXf x = random_float(4001, 6, 1.0e3f, 4u + Catch::rngSeed());
  for (auto gram : {GramTracking::off, GramTracking::on}) {
    ActivationStats all(0, gram), first(0, gram), second(6, gram);
    feed(all, x, {100, 33});
    feed(first, x.topRows(1500), {100, 33});
    feed(second, x.bottomRows(2501), {7});
    const std::int64_t batches = first.batches() + second.batches();
    first.merge(second);
    CHECK(first.count() == all.count());
    CHECK(first.batches() == batches);
    CHECK_RELATIVE(first.mean(), all.mean(), 1e-14);
    CHECK_RELATIVE(first.m2(), all.m2(), 1e-10);
    CHECK_RELATIVE(first.variance(), all.variance(), 1e-10);
    CHECK_RELATIVE(first.sum_squares(), all.sum_squares(), 1e-14);
    CHECK(first.has_gram() == (gram == GramTracking::on));
    if (first.has_gram()) CHECK_RELATIVE(first.gram(), all.gram(), 1e-9);
  }
}

TEST_CASE("ActivationStats: merge with empty accumulators and with itself", "[calibration][stats][merge]") {
  Eigen::MatrixXd x(4, 2);
  x << 1, -1, 2, 0, 4, 5, 7, 2;
  ActivationStats full(0, GramTracking::on);
  full.add(x);
  const StatsSnapshot before(full);

  SECTION("merging an empty accumulator is a no-op") {
    full.merge(ActivationStats(0, GramTracking::on));
    full.merge(ActivationStats(2, GramTracking::on));
    CHECK(StatsSnapshot(full) == before);
  }
  SECTION("merging into an unfixed empty accumulator takes the other's channels and statistics") {
    ActivationStats empty(0, GramTracking::on);
    empty.merge(full);
    CHECK(StatsSnapshot(empty) == before);
  }
  SECTION("merging into a reset accumulator") {
    ActivationStats reset = full;
    reset.reset();
    reset.merge(full);
    CHECK(StatsSnapshot(reset) == before);
  }
  SECTION("merging with itself counts every sample twice") {
    full.merge(full);
    CHECK(full.count() == 8);
    CHECK(full.batches() == 2);
    CHECK(full.mean() == before.mean.value());
    CHECK_RELATIVE(full.m2(), 2 * before.m2.value(), 1e-15);
    CHECK_RELATIVE(full.sum_squares(), 2 * before.sum_squares.value(), 1e-15);
    CHECK_RELATIVE(full.gram(), 2 * before.gram.value(), 1e-15);
  }
}

TEST_CASE("ActivationStats: the Gram matrix equals XᵀX", "[calibration][stats][gram]") {
  SECTION("float input with an offset, several batches") {
    // The per-batch kernel runs in float on the centred batch (see add()), so its error is float's
    // relative to the spread, ~sqrt(tokens)·6e-8 of it, not to the offset's part of XᵀX.
    const Eigen::MatrixXf x = random_float(700, 24, 1.0e4f, 5u + Catch::rngSeed());
    ActivationStats s(0, GramTracking::on);
    feed(s, x, {300, 1, 99});
    const TwoPass ref = two_pass(x.cast<double>(), true);
    CHECK_RELATIVE(s.gram(), ref.gram, 1e-12);
    CHECK(s.gram() == s.gram().transpose());
    // The covariance read back from the Gram matrix survives the 1e8 offset: XᵀX - n·μμᵀ = M2 on
    // the diagonal to float's relative precision (~sqrt(n)·6e-8, measured ~4e-7), where a plain
    // float XᵀX would be off by ~6e-8·1e8·n, 10^4 times M2.
    const double n = static_cast<double>(s.count());
    const Eigen::MatrixXd centred = s.gram() - n * s.mean() * s.mean().transpose();
    const Eigen::VectorXd diag = centred.diagonal();
    CHECK_RELATIVE(diag, ref.m2, 1e-5);
  }
  SECTION("double input gets a double kernel") {
    Eigen::MatrixXd x = Eigen::MatrixXd::Random(300, 17);
    x.array() += 3.0;
    ActivationStats s(17, GramTracking::on);
    feed(s, x, {64, 5});
    const TwoPass ref = two_pass(x, true);
    CHECK_RELATIVE(s.gram(), ref.gram, 1e-14);
    CHECK(s.gram() == s.gram().transpose());
  }
  SECTION("tiny and huge values are scaled into float's range") {
    for (const float scale : {1e-30f, 1e30f}) {
      CAPTURE(scale);
      const Eigen::MatrixXf x = random_float(200, 9, 0.5f, 6u + Catch::rngSeed()) * scale;
      ActivationStats s(0, GramTracking::on);
      s.add(x);
      REQUIRE(s.gram().allFinite());
      const TwoPass ref = two_pass(x.cast<double>(), true);
      CHECK_RELATIVE(s.gram(), ref.gram, 1e-5);
    }
  }
  SECTION("a constant batch") {
    const Eigen::MatrixXf x = Eigen::MatrixXf::Constant(10, 3, 2.5f);
    ActivationStats s(0, GramTracking::on);
    s.add(x);
    CHECK(s.gram() == Eigen::MatrixXd::Constant(3, 3, 62.5));
    CHECK(s.m2() == Eigen::VectorXd::Zero(3));
  }
}

TEMPLATE_TEST_CASE("ActivationStats: every input type gives the statistics of its values",
                   "[calibration][stats]", float, double, Eigen::half, Eigen::bfloat16) {
  // Quarters in [-8, 8] fit bfloat16's 8 significant bits, so every type holds the same values.
  std::mt19937 gen(7u + Catch::rngSeed());
  std::uniform_int_distribution<int> quarters(-32, 32);
  Eigen::MatrixXd values(57, 6);
  for (Index j = 0; j < values.cols(); ++j)
    for (Index i = 0; i < values.rows(); ++i) values(i, j) = quarters(gen) / 4.0;
  const Eigen::Matrix<TestType, Eigen::Dynamic, Eigen::Dynamic> x =
      values.unaryExpr([](double v) { return static_cast<TestType>(static_cast<float>(v)); });

  ActivationStats s(0, GramTracking::on);
  feed(s, x, {20, 1, 36});
  const TwoPass ref = two_pass(values, true);
  CHECK(s.count() == 57);
  CHECK_RELATIVE(s.mean(), ref.mean, 1e-15);
  CHECK_RELATIVE(s.m2(), ref.m2, 1e-14);
  CHECK_RELATIVE(s.sum_squares(), ref.sum_squares, 1e-15);
  CHECK_RELATIVE(s.gram(), ref.gram, 1e-6);

  // Expressions are accepted as they are: a row-major map, a block, a scaled product.
  ActivationStats e(6);
  const RowMajorXf row_major = values.cast<float>();
  e.add(Eigen::Map<const RowMajorXf>(row_major.data(), 57, 6));
  e.add(values.topRows(10).cast<float>() * 2.0f);
  CHECK(e.count() == 67);
  CHECK(e.mean()(0) == Approx((values.col(0).sum() + 2 * values.col(0).head(10).sum()) / 67).margin(1e-12));
}

TEST_CASE("ActivationStats: an empty batch is a no-op", "[calibration][stats]") {
  ActivationStats unfixed;
  unfixed.add(Eigen::MatrixXf(0, 5));
  CHECK(unfixed.channels() == 0);
  CHECK(unfixed.batches() == 0);

  ActivationStats s(3, GramTracking::on);
  s.add(Eigen::MatrixXf::Ones(2, 3));
  const StatsSnapshot before(s);
  s.add(Eigen::MatrixXf(0, 3));
  CHECK(StatsSnapshot(s) == before);
  // Its channel count still has to agree once fixed.
  CHECK_THROWS_AS(s.add(Eigen::MatrixXf(0, 4)), shape_error);
  CHECK(StatsSnapshot(s) == before);
}

TEST_CASE("ActivationStats: reset keeps the channels and the Gram setting", "[calibration][stats]") {
  const Eigen::MatrixXf x = random_float(50, 4, 2.0f, 8u + Catch::rngSeed());
  ActivationStats s(0, GramTracking::on);
  s.add(x * 3.0f);
  s.reset();
  CHECK(s.channels() == 4);
  CHECK(s.has_gram());
  CHECK(s.count() == 0);
  CHECK(s.batches() == 0);
  CHECK_THROWS_AS(s.mean(), calibration_error);
  CHECK_THROWS_AS(s.add(Eigen::MatrixXf::Ones(1, 5)), shape_error);
  s.add(x);
  ActivationStats fresh(0, GramTracking::on);
  fresh.add(x);
  CHECK(StatsSnapshot(s) == StatsSnapshot(fresh));
}

TEST_CASE("ActivationStats: from_moments restores stored statistics", "[calibration][stats]") {
  const Eigen::MatrixXf a = random_float(80, 5, 10.0f, 9u + Catch::rngSeed());
  const Eigen::MatrixXf b = random_float(30, 5, -3.0f, 10u + Catch::rngSeed());
  ActivationStats original(0, GramTracking::on);
  original.add(a);
  ActivationStats restored = ActivationStats::from_moments(original.count(), original.mean(), original.m2(),
                                                           original.sum_squares(), original.gram());
  CHECK(restored.channels() == 5);
  CHECK(restored.batches() == 1);
  CHECK(StatsSnapshot(restored) == StatsSnapshot(original));
  // It goes on like the original.
  original.add(b);
  restored.add(b);
  CHECK(StatsSnapshot(restored) == StatsSnapshot(original));

  // Without a Gram matrix, and the lower triangle is what counts.
  Eigen::MatrixXd g = Eigen::MatrixXd::Zero(5, 5);
  g(3, 1) = 2.0;
  g(1, 3) = 99.0;
  const ActivationStats lower = ActivationStats::from_moments(original.count(), original.mean(),
                                                              original.m2(), original.sum_squares(), g);
  CHECK(lower.gram()(1, 3) == 2.0);
  const ActivationStats plain =
      ActivationStats::from_moments(original.count(), original.mean(), original.m2(), original.sum_squares());
  CHECK_FALSE(plain.has_gram());
  CHECK(plain.mean() == original.mean());

  const ActivationStats nothing = ActivationStats::from_moments(
      0, Eigen::VectorXd::Zero(3), Eigen::VectorXd::Zero(3), Eigen::VectorXd::Zero(3));
  CHECK(nothing.channels() == 3);
  CHECK(nothing.count() == 0);
  CHECK(nothing.batches() == 0);
}

TEST_CASE("ActivationStats: errors name the cause and change nothing", "[calibration][stats][errors]") {
  Eigen::MatrixXf good(4, 3);
  good << 1, 2, 3, 4, 5, 6, 7, 8, 10, -1, 0, 1;
  ActivationStats s(0, GramTracking::on);
  s.add(good);
  s.add(good.topRows(2));
  const StatsSnapshot before(s);
  REQUIRE(before.mean.has_value());

  SECTION("a channel-count change") {
    CHECK_THROWS_MATCHES(s.add(Eigen::MatrixXf::Ones(5, 4)), shape_error,
                         Catch::Matchers::Predicate<shape_error>([](const shape_error& e) {
                           const std::string m = e.what();
                           return m.find("expected 3 channels") != std::string::npos &&
                                  m.find("got 4") != std::string::npos &&
                                  m.find("batch 2") != std::string::npos;
                         }));
    CHECK_THROWS_AS(s.add(Eigen::MatrixXf::Ones(5, 2)), shape_error);
  }
  SECTION("a batch without channels") {
    ActivationStats unfixed;
    CHECK_THROWS_WITH(unfixed.add(Eigen::MatrixXf(3, 0)), Contains("at least one channel"));
    CHECK(unfixed.channels() == 0);
  }
  SECTION("NaN, +Inf and -Inf name the batch, the token row and the channel") {
    const float bad_values[] = {std::numeric_limits<float>::quiet_NaN(),
                                std::numeric_limits<float>::infinity(),
                                -std::numeric_limits<float>::infinity()};
    for (const float bad : bad_values) {
      CAPTURE(bad);
      Eigen::MatrixXf x = good;
      x(2, 1) = bad;
      x(3, 0) = bad;  // a later row: the first one in row-major order is reported
      CHECK_THROWS_AS(s.add(x), calibration_error);
      CHECK_THROWS_WITH(s.add(x), Contains("batch 2") && Contains("token row 2") && Contains("channel 1"));
      CHECK(StatsSnapshot(s) == before);
    }
    Eigen::MatrixXf inf_last = good;
    inf_last(3, 2) = -std::numeric_limits<float>::infinity();
    CHECK_THROWS_WITH(s.add(inf_last), Contains("-inf") && Contains("token row 3") && Contains("channel 2"));
  }
  SECTION("NaN in half and bfloat16 input") {
    Eigen::Matrix<Eigen::half, Eigen::Dynamic, Eigen::Dynamic> h = good.cast<Eigen::half>();
    h(0, 2) = Eigen::half(std::numeric_limits<float>::quiet_NaN());
    CHECK_THROWS_WITH(s.add(h), Contains("batch 2") && Contains("token row 0") && Contains("channel 2"));
    Eigen::Matrix<Eigen::bfloat16, Eigen::Dynamic, Eigen::Dynamic> b = good.cast<Eigen::bfloat16>();
    b(1, 0) = Eigen::bfloat16(std::numeric_limits<float>::infinity());
    CHECK_THROWS_WITH(s.add(b), Contains("token row 1") && Contains("channel 0"));
  }
  SECTION("a first batch with NaN leaves the channels unfixed") {
    ActivationStats unfixed(0, GramTracking::on);
    Eigen::MatrixXf x = good;
    x(0, 0) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_WITH(unfixed.add(x),
                      Contains("batch 0") && Contains("token row 0") && Contains("channel 0"));
    CHECK(unfixed.channels() == 0);
    CHECK(unfixed.count() == 0);
    unfixed.add(good.leftCols(2));
    CHECK(unfixed.channels() == 2);
  }
  SECTION("a double batch whose squares overflow") {
    Eigen::MatrixXd x = good.cast<double>();
    x(1, 1) = 1e200;
    CHECK_THROWS_WITH(s.add(x), Contains("overflows") && Contains("channel 1"));
    // Also when only the running sum overflows.
    ActivationStats big;
    big.add(Eigen::RowVector2d(1.0, 1.0e154));
    const StatsSnapshot big_before(big);
    CHECK_THROWS_WITH(big.add(Eigen::RowVector2d(1.0, 1.0e154)),
                      Contains("batch 1") && Contains("channel 1"));
    CHECK(StatsSnapshot(big) == big_before);
  }
  SECTION("merging a different Gram setting or channel count") {
    ActivationStats no_gram(3);
    no_gram.add(good);
    CHECK_THROWS_WITH(s.merge(no_gram), Contains("Gram"));
    CHECK_THROWS_AS(s.merge(no_gram), calibration_error);
    CHECK_THROWS_AS(no_gram.merge(s), calibration_error);
    CHECK_THROWS_AS(s.merge(ActivationStats()), calibration_error);  // empty, but still a mismatch
    ActivationStats wide(0, GramTracking::on);
    wide.add(Eigen::MatrixXf::Ones(2, 5));
    CHECK_THROWS_AS(s.merge(wide), shape_error);
    CHECK_THROWS_WITH(s.merge(wide), Contains("expected 3") && Contains("got 5"));
    CHECK_THROWS_AS(s.merge(ActivationStats(5, GramTracking::on)), shape_error);
  }
  SECTION("from_moments with bad sizes or values") {
    const Eigen::VectorXd mean = s.mean(), m2 = s.m2(), sq = s.sum_squares();
    const Eigen::MatrixXd g = s.gram();
    const std::int64_t n = s.count();
    using Eigen::VectorXd;
    CHECK_THROWS_AS(ActivationStats::from_moments(n, VectorXd(), VectorXd(), VectorXd()), shape_error);
    CHECK_THROWS_WITH(ActivationStats::from_moments(n, mean, m2.head(2), sq),
                      Contains("length 3") && Contains("got 2 and 3"));
    CHECK_THROWS_AS(ActivationStats::from_moments(n, mean, m2, VectorXd(4)), shape_error);
    CHECK_THROWS_WITH(ActivationStats::from_moments(n, mean, m2, sq, Eigen::MatrixXd(g.topRows(2))),
                      Contains("[3, 3]") && Contains("[2, 3]"));
    CHECK_THROWS_WITH(ActivationStats::from_moments(-1, mean, m2, sq), Contains("count >= 0"));
    VectorXd nan_mean = mean;
    nan_mean(1) = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_WITH(ActivationStats::from_moments(n, nan_mean, m2, sq), Contains("mean of channel 1"));
    VectorXd inf_m2 = m2;
    inf_m2(2) = std::numeric_limits<double>::infinity();
    CHECK_THROWS_AS(ActivationStats::from_moments(n, mean, inf_m2, sq), calibration_error);
    VectorXd negative = sq;
    negative(0) = -1.0;
    CHECK_THROWS_WITH(ActivationStats::from_moments(n, mean, m2, negative),
                      Contains("sum of squares of channel 0") && Contains(">= 0"));
    Eigen::MatrixXd bad_gram = g;
    bad_gram(2, 0) = -std::numeric_limits<double>::infinity();
    CHECK_THROWS_WITH(ActivationStats::from_moments(n, mean, m2, sq, bad_gram), Contains("(2, 0)"));
    CHECK_THROWS_WITH(ActivationStats::from_moments(0, mean, m2, sq), Contains("count of 0"));
  }
  SECTION("a negative channel count") { CHECK_THROWS_AS(ActivationStats(-1), shape_error); }
  CHECK(StatsSnapshot(s) == before);
}

TEST_CASE("ActivationStats: reading statistics that do not exist", "[calibration][stats][errors]") {
  ActivationStats empty(3, GramTracking::on);
  CHECK_THROWS_WITH(empty.mean(), Contains("no samples were added"));
  CHECK_THROWS_WITH(empty.m2(), Contains("no samples were added"));
  CHECK_THROWS_WITH(empty.variance(), Contains("no samples were added"));
  CHECK_THROWS_WITH(empty.population_variance(), Contains("no samples were added"));
  CHECK_THROWS_WITH(empty.sum_squares(), Contains("no samples were added"));
  CHECK_THROWS_WITH(empty.l2_norms(), Contains("no samples were added"));
  CHECK_THROWS_WITH(empty.gram(), Contains("no samples were added"));
  CHECK_THROWS_AS(empty.mean(), calibration_error);

  ActivationStats one(0, GramTracking::off);
  one.add(Eigen::RowVector3f(1, 2, 3));
  CHECK_THROWS_AS(one.variance(), calibration_error);
  CHECK_THROWS_WITH(one.variance(), Contains("at least 2 samples") && Contains("got 1"));
  CHECK(one.population_variance() == Eigen::VectorXd::Zero(3));
  CHECK_THROWS_WITH(one.gram(), Contains("not tracked"));
  CHECK_THROWS_AS(one.gram(), calibration_error);
  CHECK_FALSE(one.has_gram());
}

}  // namespace test_activation_stats
