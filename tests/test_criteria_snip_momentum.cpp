// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// snip_momentum: S <- alpha*S + beta*|W ⊙ G| over several steps, checked by hand at each step, its
// state following a head removal, and a failed update changing nothing.

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <mhaprune/mhaprune.hpp>
#include <vector>

#include "test_criteria_blocks.hpp"

namespace test_criteria_snip_momentum {

using namespace criteria_test;
using mhaprune::Evidence;
using mhaprune::Reduction;
using mhaprune::Role;
using mhaprune::SnipMomentum;

namespace {

template <typename S>
struct Grads {
  RowMat<S> q, k, v, o;
  explicit Grads(double scale) {
    const Weights g = gradients_a();
    q = (scale * g.q).cast<float>().cast<S>();
    k = (scale * g.k).cast<float>().cast<S>();
    v = (scale * g.v).cast<float>().cast<S>();
    o = (scale * g.o).cast<float>().cast<S>();
  }
  Evidence evidence() const { return separate_gradients(q, k, v, o); }
};

double sum_of(const SnipMomentum& c, Role role, Index id) {
  const auto* st = c.state("layers.0");
  REQUIRE(st != nullptr);
  const auto it = st->sums.find({role, id});
  REQUIRE(it != st->sums.end());
  return it->second;
}

std::vector<float> elements_of(const SnipMomentum& c, Role role, Index id) {
  const auto* st = c.state("layers.0");
  REQUIRE(st != nullptr);
  const auto it = st->elements.find({role, id});
  REQUIRE(it != st->elements.end());
  return it->second;
}

void check_pair(const std::vector<float>& got, double a, double b) {
  REQUIRE(got.size() == 2);
  CHECK(got[0] == Approx(a).epsilon(1e-6).margin(1e-12));
  CHECK(got[1] == Approx(b).epsilon(1e-6).margin(1e-12));
}

}  // namespace

// Block A's |W ⊙ G| slice sums (head 0 | head 1): Q 3 | 4, K 0 | 3, V 2 | 3, O 3 | 5; per element, Q
// head 0 is (1, 2) and O head 1 is (0, 5). Steps: G, then 2G, then 0. So S = x, 2.9x, 2.61x.
TEMPLATE_TEST_CASE("snip_momentum: mean keeps slice sums of S, step by step", "[criteria][snip_momentum]",
                   float, double, Eigen::bfloat16) {
  Separate<TestType> a("layers.0", layout_a(), weights_a());
  SnipMomentum c;  // alpha 0.9, beta 1, mean
  CHECK(c.options().alpha == 0.9);
  CHECK(c.options().beta == 1.0);
  const Grads<TestType> g1(1.0), g2(2.0), g3(0.0);

  c.update(a.block, g1.evidence());
  CHECK(c.state("layers.0")->steps == 1);
  CHECK(sum_of(c, Role::query, 0) == Approx(3.0));
  CHECK(sum_of(c, Role::query, 1) == Approx(4.0));
  CHECK(sum_of(c, Role::key, 0) == Approx(0.0).margin(1e-12));
  CHECK(sum_of(c, Role::output, 1) == Approx(5.0));
  CHECK(c.scores(a.block).isApprox(Eigen::Vector2d(1.0, 1.875), 1e-6));

  c.update(a.block, g2.evidence());
  CHECK(c.state("layers.0")->steps == 2);
  CHECK(sum_of(c, Role::query, 0) == Approx(0.9 * 3 + 6));
  CHECK(sum_of(c, Role::value, 1) == Approx(0.9 * 3 + 6));
  CHECK(sum_of(c, Role::output, 1) == Approx(0.9 * 5 + 10));
  CHECK(c.scores(a.block).isApprox(2.9 * Eigen::Vector2d(1.0, 1.875), 1e-6));

  c.update(a.block, g3.evidence());
  CHECK(sum_of(c, Role::query, 0) == Approx(0.9 * 8.7));
  CHECK(sum_of(c, Role::output, 1) == Approx(0.9 * 14.5));
  CHECK(c.scores(a.block).isApprox(2.61 * Eigen::Vector2d(1.0, 1.875), 1e-6));
  CHECK(c.state("layers.0")->elements.empty());

  // sum: the same state read without dividing by d*D = 2.
  SnipMomentum s(Reduction::sum);
  s.update(a.block, g1.evidence());
  CHECK(s.scores(a.block).isApprox(Eigen::Vector2d(2.0, 3.75), 1e-6));
}

TEMPLATE_TEST_CASE("snip_momentum: max and l2 keep S per element, step by step", "[criteria][snip_momentum]",
                   float, double, Eigen::half) {
  Separate<TestType> a("layers.0", layout_a(), weights_a());
  SnipMomentum c(Reduction::max);
  SnipMomentum l(Reduction::l2, 0.5, 2.0);
  const Grads<TestType> g1(1.0), g2(2.0), g3(0.0);

  c.update(a.block, g1.evidence());
  l.update(a.block, g1.evidence());
  check_pair(elements_of(c, Role::query, 0), 1, 2);
  check_pair(elements_of(c, Role::output, 1), 0, 5);
  CHECK(c.state("layers.0")->sums.empty());
  // max of |W ⊙ G| per head: (2 + 0 + 2 + 2) / 4 | (4 + 2 + 3 + 5) / 4.
  CHECK(c.scores(a.block).isApprox(Eigen::Vector2d(1.5, 3.5), 1e-6));
  // l2 with alpha 0.5, beta 2: S = 2x.
  const double r5 = std::sqrt(5.0);
  CHECK(
      l.scores(a.block).isApprox(2.0 * Eigen::Vector2d((r5 + 0 + 2 + r5) / 4, (4 + r5 + 3 + 5) / 4.0), 1e-6));

  c.update(a.block, g2.evidence());
  l.update(a.block, g2.evidence());
  check_pair(elements_of(c, Role::query, 0), 2.9, 5.8);
  check_pair(elements_of(c, Role::output, 1), 0, 14.5);
  CHECK(c.scores(a.block).isApprox(2.9 * Eigen::Vector2d(1.5, 3.5), 1e-6));
  // l2: S = 0.5 * 2x + 2 * 2x = 5x.
  CHECK(
      l.scores(a.block).isApprox(5.0 * Eigen::Vector2d((r5 + 0 + 2 + r5) / 4, (4 + r5 + 3 + 5) / 4.0), 1e-6));

  c.update(a.block, g3.evidence());
  check_pair(elements_of(c, Role::query, 0), 2.61, 5.22);
  check_pair(elements_of(c, Role::output, 1), 0, 13.05);
  CHECK(c.state("layers.0")->steps == 3);
}

TEMPLATE_TEST_CASE("snip_momentum: state follows a head removal by original id", "[criteria][snip_momentum]",
                   float, Eigen::bfloat16) {
  for (Reduction r : {Reduction::mean, Reduction::max}) {
    INFO(mhaprune::to_string(r));
    Separate<TestType> a("layers.0", layout_a(), weights_a());
    SnipMomentum c(r);
    const Grads<TestType> g1(1.0);
    c.update(a.block, g1.evidence());

    mhaprune::remove_heads(a.block, mhaprune::OriginalIds{0});
    REQUIRE(a.block.layout().heads() == 1);
    REQUIRE(a.block.head_ids() == std::vector<Index>{1});
    // Scoring right after the removal reads original head 1's state.
    const double before = r == Reduction::mean ? 1.875 : 3.5;
    CHECK(c.scores(a.block)(0) == Approx(before));

    // The next step's gradients are shaped like the pruned block: head 1's rows and column of 2G.
    const Weights g = gradients_a();
    const RowMat<TestType> q = (2 * g.q.middleRows(1, 1)).cast<float>().cast<TestType>(),
                           k = (2 * g.k.middleRows(1, 1)).cast<float>().cast<TestType>(),
                           v = (2 * g.v.middleRows(1, 1)).cast<float>().cast<TestType>(),
                           o = (2 * g.o.middleCols(1, 1)).cast<float>().cast<TestType>();
    c.update(a.block, separate_gradients(q, k, v, o));
    const auto* st = c.state("layers.0");
    REQUIRE(st != nullptr);
    CHECK(st->steps == 2);
    if (r == Reduction::mean) {
      CHECK(st->sums.size() == 4);  // head 0's four slices are gone
      CHECK(sum_of(c, Role::query, 1) == Approx(2.9 * 4));
      CHECK(sum_of(c, Role::key, 1) == Approx(2.9 * 3));
      CHECK(sum_of(c, Role::output, 1) == Approx(2.9 * 5));
      CHECK(st->sums.count({Role::query, 0}) == 0);
    } else {
      CHECK(st->elements.size() == 4);
      check_pair(elements_of(c, Role::query, 1), 0, 2.9 * 4);
      check_pair(elements_of(c, Role::output, 1), 0, 2.9 * 5);
      CHECK(st->elements.count({Role::output, 0}) == 0);
    }
    CHECK(c.scores(a.block)(0) == Approx(2.9 * before));
  }
}

TEST_CASE("snip_momentum: blocks are kept apart by name, reset forgets", "[criteria][snip_momentum]") {
  Separate<float> a("layers.0", layout_a(), weights_a());
  Separate<float> b("layers.1", layout_a(), weights_a());
  SnipMomentum c;
  const Grads<float> g1(1.0), g2(2.0);
  c.update(a.block, g1.evidence());
  c.update(b.block, g2.evidence());
  CHECK(c.scores(a.block).isApprox(Eigen::Vector2d(1.0, 1.875), 1e-6));
  CHECK(c.scores(b.block).isApprox(2.0 * Eigen::Vector2d(1.0, 1.875), 1e-6));
  c.reset("layers.1");
  CHECK(c.state("layers.1") == nullptr);
  CHECK(c.state("layers.0") != nullptr);
  CHECK_THROWS_AS(c.scores(b.block), mhaprune::evidence_error);
  c.reset();
  CHECK(c.state("layers.0") == nullptr);
}

TEST_CASE("snip_momentum: a failed update changes nothing", "[criteria][snip_momentum][errors]") {
  for (Reduction r : {Reduction::mean, Reduction::l2}) {
    INFO(mhaprune::to_string(r));
    Separate<float> a("layers.0", layout_a(), weights_a());
    SnipMomentum c(r);
    const Grads<float> g1(1.0);
    c.update(a.block, g1.evidence());
    const SnipMomentum::BlockState before = *c.state("layers.0");

    // The last tensor's gradient is mis-shaped: nothing of the first three may be folded in.
    const RowMat<float> wrong = RowMat<float>::Ones(3, 2);
    Evidence bad = g1.evidence();
    bad.with_gradient("output.weight", wrong);
    CHECK_THROWS_AS(c.update(a.block, bad), mhaprune::shape_error);
    CHECK(*c.state("layers.0") == before);

    // A missing gradient.
    Evidence missing;
    missing.with_gradient("query.weight", g1.q)
        .with_gradient("key.weight", g1.k)
        .with_gradient("value.weight", g1.v);
    CHECK_THROWS_AS(c.update(a.block, missing), mhaprune::evidence_error);
    CHECK(*c.state("layers.0") == before);

    // A first update that fails creates no state for its block.
    Separate<float> b("layers.1", layout_a(), weights_a());
    CHECK_THROWS_AS(c.update(b.block, missing), mhaprune::evidence_error);
    CHECK(c.state("layers.1") == nullptr);
  }
}

TEST_CASE("snip_momentum: scoring before any update, and a block whose shape changed",
          "[criteria][snip_momentum][errors]") {
  Separate<float> a("layers.0", layout_a(), weights_a());
  SnipMomentum c;
  CHECK_THROWS_WITH(c.scores(a.block), Catch::Contains("snip_momentum") && Catch::Contains("\"layers.0\"") &&
                                           Catch::Contains("no running scores"));
  CHECK_THROWS_AS(c.scores(a.block), mhaprune::evidence_error);
  c.update(a.block, Grads<float>(1.0).evidence());

  // Another block under the same name with another head size.
  Weights w;
  w.q = Eigen::MatrixXd::Ones(4, 2);
  w.k = w.q;
  w.v = w.q;
  w.o = Eigen::MatrixXd::Ones(2, 4);
  Separate<float> other("layers.0", mhaprune::HeadLayout::mha(2, 2, 2), w);
  CHECK_THROWS_AS(c.scores(other.block), mhaprune::shape_error);
  CHECK_THROWS_WITH(c.scores(other.block), Catch::Contains("d=2") && Catch::Contains("d=1"));
}

TEST_CASE("snip_momentum: options are checked", "[criteria][snip_momentum][errors]") {
  CHECK_THROWS_AS(SnipMomentum(Reduction::mean, -0.1), mhaprune::config_error);
  CHECK_THROWS_AS(SnipMomentum(Reduction::mean, 0.9, std::nan("")), mhaprune::config_error);
  CHECK_THROWS_WITH(SnipMomentum(Reduction::mean, 0.9, -1.0), Catch::Contains("beta = -1"));
  mhaprune::RoleWeights w;
  w.key = -1;
  CHECK_THROWS_WITH(SnipMomentum(Reduction::mean, 0.9, 1.0, w),
                    Catch::Contains("key") && Catch::Contains("-1"));
}

}  // namespace test_criteria_snip_momentum
