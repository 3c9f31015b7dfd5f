// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// collect_output_input: the statistics of O's input it collects equal those of head outputs computed
// apart from the code under test, and a bad call leaves the statistics untouched.
//
// The expectations come from oracles that share no code with calibration's forward
// (attention_head_outputs, which collect_output_input calls): reference::head_outputs, the tests'
// oracle, and head outputs worked out by hand in this file.

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <mhaprune/calibration/activation_stats.hpp>
#include <mhaprune/calibration/collect.hpp>
#include <mhaprune/mhaprune.hpp>
#include <mhaprune/reference/attention.hpp>
#include <random>
#include <vector>

#include "support/stats_snapshot.hpp"

namespace test_collect {

namespace {

using Catch::Matchers::Contains;
using mhaprune::ActivationStats;
using mhaprune::AttentionBlock;
using mhaprune::calibration_error;
using mhaprune::GramTracking;
using mhaprune::HeadLayout;
using mhaprune::HeadMask;
using mhaprune::Index;
using mhaprune::shape_error;
using mhaprune::reference::AttentionOptions;
using mhaprune_test::StatsSnapshot;

Eigen::MatrixXf gaussian(Index rows, Index cols, std::mt19937& gen) {
  std::normal_distribution<float> normal(0.0f, 0.5f);
  Eigen::MatrixXf m(rows, cols);
  for (Index j = 0; j < cols; ++j)
    for (Index i = 0; i < rows; ++i) m(i, j) = normal(gen);
  return m;
}

/// A small GQA block (H=4, H_kv=2, d=3, D=8) over random float weights it owns.
struct SmallBlock {
  HeadLayout layout{4, 2, 3, 8};
  Eigen::MatrixXf q, k, v, o;
  AttentionBlock<float> block{"layers.0.attn", layout};

  explicit SmallBlock(std::mt19937& gen)
      : q(gaussian(12, 8, gen)), k(gaussian(6, 8, gen)), v(gaussian(6, 8, gen)), o(gaussian(8, 12, gen)) {
    namespace layout_ = mhaprune::layout;
    block.add(layout_::query(q)).add(layout_::key(k)).add(layout_::value(v)).add(layout_::output(o));
  }
  SmallBlock(const SmallBlock&) = delete;
  SmallBlock& operator=(const SmallBlock&) = delete;
};

std::vector<Eigen::MatrixXf> sequences(std::mt19937& gen) {
  std::vector<Eigen::MatrixXf> out;
  for (Index t : {5, 1, 9, 4}) out.push_back(gaussian(t, 8, gen));
  return out;
}

/// The head outputs of every sequence, stacked: the X whose statistics are collected.
Eigen::MatrixXd stacked_outputs(const AttentionBlock<float>& block, const std::vector<Eigen::MatrixXf>& xs,
                                const AttentionOptions& options) {
  std::vector<Eigen::MatrixXd> parts;
  Index rows = 0;
  for (const auto& x : xs) {
    parts.push_back(mhaprune::reference::head_outputs(x, block, options));
    rows += parts.back().rows();
  }
  Eigen::MatrixXd all(rows, parts.front().cols());
  Index row = 0;
  for (const auto& p : parts) {
    all.middleRows(row, p.rows()) = p;
    row += p.rows();
  }
  return all;
}

}  // namespace

TEST_CASE("collect_output_input: statistics of the reference head outputs", "[calibration][collect]") {
  std::mt19937 gen(11u + Catch::rngSeed());
  SmallBlock b(gen);
  const std::vector<Eigen::MatrixXf> xs = sequences(gen);

  AttentionOptions options;
  SECTION("plain") {}
  SECTION("causal, with a masked head") {
    options.causal = true;
    options.mask = HeadMask(4);
    options.mask->remove(2);
  }
  SECTION("a logit scale of its own") { options.scale = 1.7; }
  const Eigen::MatrixXd x = stacked_outputs(b.block, xs, options);
  REQUIRE(x.rows() == 19);
  REQUIRE(x.cols() == 12);
  const Eigen::VectorXd mean = x.colwise().mean().transpose();
  const Eigen::VectorXd m2 = (x.rowwise() - mean.transpose()).colwise().squaredNorm().transpose();

  ActivationStats stats(0, GramTracking::on);
  mhaprune::collect_output_input(b.block, xs, stats, options);
  CHECK(stats.channels() == 12);
  CHECK(stats.count() == 19);
  CHECK(stats.batches() == 4);
  const double scale = x.cwiseAbs().maxCoeff();
  REQUIRE(scale > 0.1);  // the outputs are not all zero, so the comparison means something
  CHECK((stats.mean() - mean).cwiseAbs().maxCoeff() <= 1e-12 * scale);
  CHECK((stats.m2() - m2).cwiseAbs().maxCoeff() <= 1e-12 * scale * scale);
  CHECK((stats.gram() - x.transpose() * x).cwiseAbs().maxCoeff() <= 1e-12 * scale * scale);
  if (options.mask) {
    // A masked head contributes nothing: its channels are exactly zero.
    CHECK(stats.sum_squares().segment(6, 3) == Eigen::VectorXd::Zero(3));
    CHECK(stats.sum_squares().head(6).minCoeff() > 0);
  }

  // Collecting again adds to what is there.
  mhaprune::collect_output_input(b.block, xs, stats, options);
  CHECK(stats.count() == 38);
  CHECK((stats.mean() - mean).cwiseAbs().maxCoeff() <= 1e-12 * scale);
}

TEST_CASE("collect_output_input: one-token sequences, head outputs worked out by hand",
          "[calibration][collect]") {
  // A single token attends to itself alone: its softmax is the one weight 1, whatever the scale or the
  // causal mask, so query head h outputs V_g x with g = h / 2 (H=4, H_kv=2), the plain product below.
  std::mt19937 gen(13u + Catch::rngSeed());
  SmallBlock b(gen);
  std::vector<Eigen::MatrixXf> xs;
  for (int n = 0; n < 5; ++n) xs.push_back(gaussian(1, 8, gen));
  AttentionOptions options;
  options.causal = true;
  options.scale = 3.0;
  options.mask = HeadMask(4);
  options.mask->remove(1);

  Eigen::MatrixXd x = Eigen::MatrixXd::Zero(5, 12);
  for (Index n = 0; n < 5; ++n) {
    for (Index h : {0, 2, 3}) {
      for (Index a = 0; a < 3; ++a) {
        double sum = 0.0;
        for (Index j = 0; j < 8; ++j)
          sum += static_cast<double>(b.v(h / 2 * 3 + a, j)) *
                 static_cast<double>(xs[static_cast<std::size_t>(n)](0, j));
        x(n, h * 3 + a) = sum;
      }
    }
  }
  const Eigen::VectorXd mean = x.colwise().mean().transpose();

  ActivationStats stats(0, GramTracking::on);
  mhaprune::collect_output_input(b.block, xs, stats, options);
  CHECK(stats.count() == 5);
  CHECK(stats.batches() == 5);
  const double scale = x.cwiseAbs().maxCoeff();
  REQUIRE(scale > 0.1);
  CHECK((stats.mean() - mean).cwiseAbs().maxCoeff() <= 1e-12 * scale);
  CHECK((stats.gram() - x.transpose() * x).cwiseAbs().maxCoeff() <= 1e-12 * scale * scale);
  CHECK(stats.sum_squares().segment(3, 3) == Eigen::VectorXd::Zero(3));
}

TEST_CASE("collect_output_input: bad calls leave the statistics unchanged",
          "[calibration][collect][errors]") {
  std::mt19937 gen(12u + Catch::rngSeed());
  SmallBlock b(gen);
  std::vector<Eigen::MatrixXf> xs = sequences(gen);

  ActivationStats stats(0, GramTracking::on);
  mhaprune::collect_output_input(b.block, xs, stats);
  const StatsSnapshot before(stats);
  REQUIRE(before.count == 19);

  SECTION("stats with another channel count") {
    ActivationStats wrong(10);
    const StatsSnapshot wrong_before(wrong);
    CHECK_THROWS_AS(mhaprune::collect_output_input(b.block, xs, wrong), shape_error);
    CHECK_THROWS_WITH(
        mhaprune::collect_output_input(b.block, xs, wrong),
        Contains("layers.0.attn") && Contains("expected stats of 12 channels") && Contains("got 10"));
    CHECK(StatsSnapshot(wrong) == wrong_before);
  }
  SECTION("a sequence of the wrong width after good ones") {
    xs.push_back(Eigen::MatrixXf::Ones(3, 7));
    CHECK_THROWS_AS(mhaprune::collect_output_input(b.block, xs, stats), shape_error);
    CHECK_THROWS_WITH(mhaprune::collect_output_input(b.block, xs, stats),
                      Contains("sequence 4") && Contains("[3, 7]"));
  }
  SECTION("a non-finite sequence after good ones") {
    xs.push_back(Eigen::MatrixXf::Ones(3, 8));
    xs.back()(1, 4) = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(mhaprune::collect_output_input(b.block, xs, stats), calibration_error);
    // stats held 4 batches and the 4 good sequences add 4 more: the bad one is sequence 4, batch 8.
    CHECK_THROWS_WITH(mhaprune::collect_output_input(b.block, xs, stats),
                      Contains("sequence 4") && Contains("batch 8") && Contains("nan"));
  }
  SECTION("a mask of the wrong length") {
    AttentionOptions options;
    options.mask = HeadMask(3);
    CHECK_THROWS_AS(mhaprune::collect_output_input(b.block, xs, stats, options), shape_error);
  }
  CHECK(StatsSnapshot(stats) == before);
}

}  // namespace test_collect
