// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Head-level criteria: taylor and fisher (gate gradients), wanda_sp and fluctuation (activation
// statistics of O's input), random (seeded), against hand-computed values.

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <mhaprune/mhaprune.hpp>
#include <vector>

#include "test_criteria_blocks.hpp"

namespace test_criteria_head_level {

using namespace criteria_test;
using mhaprune::Evidence;

namespace {

void check_scores(const Eigen::VectorXd& got, std::initializer_list<double> expected) {
  REQUIRE(got.size() == static_cast<Index>(expected.size()));
  Index i = 0;
  for (double e : expected) {
    INFO("head " << i);
    CHECK(got(i) == Approx(e).epsilon(1e-9).margin(1e-12));
    ++i;
  }
}

Evidence gates(std::initializer_list<double> g) {
  Eigen::VectorXd v(static_cast<Index>(g.size()));
  Index i = 0;
  for (double x : g) v(i++) = x;
  Evidence ev;
  ev.with_gate_gradients(v);
  return ev;
}

/// Block "B": H = 2, d = 2, D = 2, so each head has two O-input channels. O = [[1,-1,2,0],[3,1,0,-2]]:
/// column |.| means 2, 1, 1, 1; squared norms 10, 2, 4, 4.
Weights weights_b() {
  Weights w;
  w.q = dmat({{1, 2}, {3, 4}, {5, 6}, {7, 8}});
  w.k = w.q;
  w.v = w.q;
  w.o = dmat({{1, -1, 2, 0}, {3, 1, 0, -2}});
  return w;
}

/// O inputs over 3 tokens: per channel, sums of squares 3, 8, 8, 2 (norms √3, √8, √8, √2) and sample
/// variances 0, 4, 4/3, 1.
Eigen::MatrixXf tokens_b() {
  Eigen::MatrixXf x(3, 4);
  x << 1, 0, 2, -1,  //
      1, 2, 0, 1,    //
      1, -2, 2, 0;
  return x;
}

}  // namespace

// Block G has 4 query heads. Batches g1 = (1, -2, 0.5, 0), g2 = (-1, 1, 1, -3).
TEMPLATE_TEST_CASE("taylor and fisher sum gate gradients over batches", "[criteria][taylor][fisher]", float,
                   Eigen::bfloat16) {
  Separate<TestType> g("layers.2", layout_g(), weights_g());
  mhaprune::Taylor taylor;
  mhaprune::Fisher fisher;
  for (const Evidence& ev : {gates({1, -2, 0.5, 0}), gates({-1, 1, 1, -3})}) {
    taylor.update(g.block, ev);
    fisher.update(g.block, ev);
  }
  check_scores(taylor.scores(g.block), {2, 3, 1.5, 3});
  check_scores(fisher.scores(g.block, Evidence{}), {2, 5, 1.25, 9});
  CHECK(taylor.state("layers.2")->batches == 2);

  // Both batches at once, as rows of a [batches, H] matrix; per-layer L2 normalisation.
  Eigen::MatrixXd both(2, 4);
  both << 1, -2, 0.5, 0, -1, 1, 1, -3;
  Evidence ev;
  ev.with_gate_gradients(both);
  mhaprune::Taylor normalized(true);
  normalized.update(g.block, ev);
  const double norm = std::sqrt(4 + 9 + 2.25 + 9);
  check_scores(normalized.scores(g.block), {2 / norm, 3 / norm, 1.5 / norm, 3 / norm});
  CHECK(normalized.state("layers.2")->batches == 2);
  mhaprune::Fisher fisher_n(mhaprune::GateImportanceOptions{true});
  fisher_n.update(g.block, ev);
  CHECK(fisher_n.scores(g.block).norm() == Approx(1.0));
}

TEST_CASE("taylor: all-zero gate gradients normalise to zeros, not NaN", "[criteria][taylor]") {
  Separate<float> a("layers.0", layout_a(), weights_a());
  mhaprune::Taylor t(true);
  t.update(a.block, gates({0, 0}));
  check_scores(t.scores(a.block), {0, 0});
}

TEST_CASE("taylor: state follows a head removal by original id", "[criteria][taylor]") {
  Weights w;
  w.q = dmat({{1, 0}, {0, 1}, {1, 1}});
  w.k = w.q;
  w.v = w.q;
  w.o = dmat({{1, 0, 1}, {0, 1, 1}});
  Separate<float> b("layers.5", mhaprune::HeadLayout::mha(3, 1, 2), w);
  mhaprune::Taylor t;
  t.update(b.block, gates({1, 2, 3}));
  mhaprune::remove_heads(b.block, mhaprune::OriginalIds{1});
  REQUIRE(b.block.head_ids() == std::vector<Index>{0, 2});
  check_scores(t.scores(b.block), {1, 3});
  t.update(b.block, gates({10, -20}));
  check_scores(t.scores(b.block), {11, 23});
  const auto& sums = t.state("layers.5")->sums;
  CHECK(sums.size() == 2);
  CHECK(sums.count(1) == 0);
  CHECK(sums.at(2) == Approx(23));
}

TEMPLATE_TEST_CASE("wanda_sp and fluctuation by hand", "[criteria][wanda_sp][fluctuation]", float, double,
                   Eigen::half, Eigen::bfloat16) {
  Separate<TestType> b("layers.1", mhaprune::HeadLayout::mha(2, 2, 2), weights_b());
  mhaprune::ActivationStats stats;
  stats.add(tokens_b());
  Evidence ev;
  ev.with_activations(stats);
  const double r2 = std::sqrt(2.0), r3 = std::sqrt(3.0), r8 = std::sqrt(8.0);
  // wanda_sp: s_j = mean|O[:,j]| * ||X_j|| = 2√3, √8, √8, √2; a head sums its two channels.
  check_scores(mhaprune::WandaSp().scores(b.block, ev), {2 * r3 + r8, r8 + r2});
  // fluctuation: s_j = Var(X_j) * ||O[:,j]||² = 0, 8, 16/3, 4; a head averages its two channels.
  check_scores(mhaprune::Fluctuation().scores(b.block, ev), {4, 14.0 / 3});

  const mhaprune::OutputChannelNorms n = mhaprune::output_channel_norms(b.block);
  CHECK(n.abs_mean.isApprox(Eigen::Vector4d(2, 1, 1, 1)));
  CHECK(n.squared_norm.isApprox(Eigen::Vector4d(10, 2, 4, 4)));
}

TEST_CASE("wanda_sp and fluctuation read O in any layout", "[criteria][wanda_sp][fluctuation]") {
  const Weights w = weights_b();
  mhaprune::ActivationStats stats;
  stats.add(tokens_b());
  Evidence ev;
  ev.with_activations(stats);
  Separate<float> ref("ref", mhaprune::HeadLayout::mha(2, 2, 2), w);
  const Eigen::VectorXd wanda = mhaprune::WandaSp().scores(ref.block, ev);
  const Eigen::VectorXd fluct = mhaprune::Fluctuation().scores(ref.block, ev);

  // O stored column-major, and O stored transposed ([in, out], row-major): each channel one line.
  RowMat<float> q = w.q.cast<float>(), k = q, v = q;
  ColMat<float> o_col = w.o.cast<float>();
  RowMat<float> o_t = w.o.transpose().cast<float>();
  mhaprune::AttentionBlock<float> col("col", mhaprune::HeadLayout::mha(2, 2, 2));
  col.add(mhaprune::layout::query(q)).add(mhaprune::layout::key(k)).add(mhaprune::layout::value(v));
  col.add(mhaprune::layout::output(o_col));
  CHECK(mhaprune::WandaSp().scores(col, ev).isApprox(wanda));
  RowMat<float> q2 = q, k2 = q, v2 = q;
  mhaprune::AttentionBlock<float> tr("t", mhaprune::HeadLayout::mha(2, 2, 2));
  tr.add(mhaprune::layout::query(q2)).add(mhaprune::layout::key(k2)).add(mhaprune::layout::value(v2));
  tr.add(mhaprune::layout::output(o_t).stored_as(mhaprune::Orientation::in_out));
  CHECK(mhaprune::WandaSp().scores(tr, ev).isApprox(wanda));
  CHECK(mhaprune::Fluctuation().scores(tr, ev).isApprox(fluct));
}

TEST_CASE("wanda_sp and fluctuation after a removal: statistics of current or original channels",
          "[criteria][wanda_sp][fluctuation]") {
  Separate<float> b("layers.1", mhaprune::HeadLayout::mha(2, 2, 2), weights_b());
  mhaprune::remove_heads(b.block, mhaprune::OriginalIds{0});
  REQUIRE(b.block.layout().heads() == 1);
  const double r2 = std::sqrt(2.0), r8 = std::sqrt(8.0);

  // Statistics collected before the removal: 4 channels, original head 1 owns channels 2, 3.
  mhaprune::ActivationStats before;
  before.add(tokens_b());
  Evidence ev;
  ev.with_activations(before);
  check_scores(mhaprune::WandaSp().scores(b.block, ev), {r8 + r2});
  check_scores(mhaprune::Fluctuation().scores(b.block, ev), {14.0 / 3});

  // Statistics collected after it: the surviving head's 2 channels.
  mhaprune::ActivationStats after;
  after.add(tokens_b().rightCols(2));
  Evidence ev2;
  ev2.with_activations(after);
  check_scores(mhaprune::WandaSp().scores(b.block, ev2), {r8 + r2});
  check_scores(mhaprune::Fluctuation().scores(b.block, ev2), {14.0 / 3});
}

TEST_CASE("random: seeded, uniform, independent of call order and removals", "[criteria][random]") {
  Weights w;
  w.q = Eigen::MatrixXd::Ones(4, 2);
  w.k = w.q;
  w.v = w.q;
  w.o = Eigen::MatrixXd::Ones(2, 4);
  Separate<float> a("layers.0", mhaprune::HeadLayout::mha(4, 1, 2), w);
  Separate<Eigen::bfloat16> b("layers.1", mhaprune::HeadLayout::mha(4, 1, 2), w);

  const mhaprune::Random r(42);
  const Eigen::VectorXd sa = r.scores(a.block);
  const Eigen::VectorXd sb = r.scores(b.block);
  CHECK((sa.array() >= 0.0).all());
  CHECK((sa.array() < 1.0).all());
  CHECK(sa != sb);  // another block name, other scores
  // Another call order, another instance with the same seed: the same scores.
  const mhaprune::Random r2(42);
  CHECK(r2.scores(b.block) == sb);
  CHECK(r2.scores(a.block) == sa);
  // Another seed: other scores.
  CHECK(mhaprune::Random(43).scores(a.block) != sa);
  // The same name with another scalar type: the same scores.
  Separate<double> a_double("layers.0", mhaprune::HeadLayout::mha(4, 1, 2), w);
  CHECK(r.scores(a_double.block) == sa);
  // Original head ids keep their scores through a removal.
  mhaprune::remove_heads(a.block, mhaprune::OriginalIds{1, 2});
  const Eigen::VectorXd after = r.scores(a.block);
  REQUIRE(after.size() == 2);
  CHECK(after(0) == sa(0));
  CHECK(after(1) == sa(3));
}

}  // namespace test_criteria_head_level
