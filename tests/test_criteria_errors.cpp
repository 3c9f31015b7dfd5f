// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Bad input for every entry point of the criteria: the error type, a message that names the block,
// the tensor and the shapes, and no state changed.

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <mhaprune/mhaprune.hpp>
#include <string>

#include "test_criteria_blocks.hpp"

namespace test_criteria_errors {

using namespace criteria_test;
using Catch::Contains;
using mhaprune::Evidence;

namespace {

struct GradsA {
  RowMat<float> q, k, v, o;
  GradsA() {
    const Weights g = gradients_a();
    q = g.q.cast<float>();
    k = g.k.cast<float>();
    v = g.v.cast<float>();
    o = g.o.cast<float>();
  }
};

}  // namespace

TEST_CASE("gradients: missing or mis-shaped", "[criteria][errors]") {
  Separate<float> a("layers.7", layout_a(), weights_a());
  const GradsA g;
  Evidence three;
  three.with_gradient("query.weight", g.q)
      .with_gradient("key.weight", g.k)
      .with_gradient("value.weight", g.v);
  for (const char* name : {"gradient", "snip"}) {
    INFO(name);
    mhaprune::AnyCriterion c = mhaprune::criterion_from_name(name);
    CHECK_THROWS_AS(c.scores(a.block, three), mhaprune::evidence_error);
    CHECK_THROWS_WITH(c.scores(a.block, three), Contains(name) && Contains("block \"layers.7\"") &&
                                                    Contains("tensor \"output.weight\"") &&
                                                    Contains("no gradient") && Contains("[2, 2]") &&
                                                    Contains("\"query.weight\""));
    CHECK_THROWS_WITH(c.scores(a.block, Evidence{}), Contains("tensor \"query.weight\"") && Contains("none"));

    const RowMat<float> wrong = RowMat<float>::Zero(2, 3);
    Evidence bad = three;
    bad.with_gradient("output.weight", wrong);
    CHECK_THROWS_AS(c.scores(a.block, bad), mhaprune::shape_error);
    CHECK_THROWS_WITH(c.scores(a.block, bad), Contains("block \"layers.7\"") &&
                                                  Contains("tensor \"output.weight\"") &&
                                                  Contains("[2, 3]") && Contains("[2, 2]"));
  }
  // A gradient under another name than the block's tensor (a fused block).
  RowMat<float> qkv = RowMat<float>::Ones(6, 2), o = RowMat<float>::Ones(2, 2);
  mhaprune::AttentionBlock<float> fused("layers.8", layout_a());
  fused.add(mhaprune::layout::qkv_concat(qkv)).add(mhaprune::layout::output(o));
  Evidence separate = three;
  separate.with_gradient("output.weight", g.o);
  CHECK_THROWS_WITH(mhaprune::Snip().scores(fused, separate),
                    Contains("tensor \"qkv.weight\"") && Contains("[6, 2]") && Contains("\"query.weight\""));
  // A gradient whose lines are not contiguous.
  float raw[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  Eigen::Map<Eigen::MatrixXf, 0, Eigen::InnerStride<2>> strided(raw, 2, 2);
  CHECK_THROWS_AS(Evidence().with_gradient("output.weight", strided), mhaprune::storage_error);
  // A gradient view with no data.
  Evidence null_data = three;
  null_data.with_gradient("output.weight", mhaprune::GradientView{nullptr, mhaprune::Dtype::float32, 2, 2,
                                                                  mhaprune::StorageOrder::row_major, 2});
  CHECK_THROWS_AS(mhaprune::Snip().scores(a.block, null_data), mhaprune::storage_error);
}

TEST_CASE("gate gradients: missing, wrong length, not finite; state unchanged", "[criteria][errors]") {
  Separate<float> a("layers.3", layout_a(), weights_a());
  mhaprune::Taylor taylor;
  mhaprune::Fisher fisher;
  CHECK_THROWS_AS(taylor.scores(a.block), mhaprune::evidence_error);
  CHECK_THROWS_WITH(taylor.scores(a.block), Contains("taylor") && Contains("\"layers.3\""));

  Evidence ok;
  ok.with_gate_gradients(Eigen::Vector2d(1, 2));
  taylor.update(a.block, ok);
  fisher.update(a.block, ok);
  const auto taylor_before = *taylor.state("layers.3");
  const auto fisher_before = *fisher.state("layers.3");

  CHECK_THROWS_AS(taylor.update(a.block, Evidence{}), mhaprune::evidence_error);
  CHECK_THROWS_WITH(fisher.update(a.block, Evidence{}), Contains("fisher") && Contains("\"layers.3\"") &&
                                                            Contains("no gate gradients") && Contains("2]"));

  Evidence three;
  three.with_gate_gradients(Eigen::Vector3d(1, 2, 3));
  CHECK_THROWS_AS(taylor.update(a.block, three), mhaprune::shape_error);
  CHECK_THROWS_WITH(fisher.update(a.block, three),
                    Contains("\"layers.3\"") && Contains("[1, 3]") && Contains("2"));

  Evidence nan;
  nan.with_gate_gradients(Eigen::Vector2d(1, std::numeric_limits<double>::quiet_NaN()));
  CHECK_THROWS_AS(taylor.update(a.block, nan), mhaprune::evidence_error);
  CHECK_THROWS_WITH(taylor.update(a.block, nan), Contains("head 1") && Contains("batch 0"));

  CHECK(*taylor.state("layers.3") == taylor_before);
  CHECK(*fisher.state("layers.3") == fisher_before);
  CHECK(taylor.scores(a.block).isApprox(Eigen::Vector2d(1, 2)));
}

TEST_CASE("activation statistics: missing, wrong channel count, too few tokens", "[criteria][errors]") {
  Separate<float> a("layers.4", layout_a(), weights_a());
  for (const char* name : {"wanda_sp", "fluctuation"}) {
    INFO(name);
    mhaprune::AnyCriterion c = mhaprune::criterion_from_name(name);
    CHECK_THROWS_AS(c.scores(a.block, Evidence{}), mhaprune::evidence_error);
    CHECK_THROWS_WITH(c.scores(a.block, Evidence{}),
                      Contains(name) && Contains("\"layers.4\"") && Contains("no activation statistics"));

    mhaprune::ActivationStats three(3);
    three.add(Eigen::MatrixXf::Ones(2, 3));
    Evidence ev3;
    ev3.with_activations(three);
    CHECK_THROWS_AS(c.scores(a.block, ev3), mhaprune::shape_error);
    CHECK_THROWS_WITH(c.scores(a.block, ev3),
                      Contains("\"layers.4\"") && Contains("3 channels") && Contains("2"));

    mhaprune::ActivationStats empty(2);
    Evidence ev0;
    ev0.with_activations(empty);
    CHECK_THROWS_AS(c.scores(a.block, ev0), mhaprune::calibration_error);
    CHECK_THROWS_WITH(c.scores(a.block, ev0), Contains("\"layers.4\"") && Contains("0 tokens"));
  }
  // The sample variance needs two tokens.
  mhaprune::ActivationStats one(2);
  one.add(Eigen::MatrixXf::Ones(1, 2));
  Evidence ev1;
  ev1.with_activations(one);
  CHECK_NOTHROW(mhaprune::WandaSp().scores(a.block, ev1));
  CHECK_THROWS_AS(mhaprune::Fluctuation().scores(a.block, ev1), mhaprune::calibration_error);
}

TEST_CASE("names: unknown criterion, unknown reduction, duplicate registration",
          "[criteria][errors][registry]") {
  CHECK_THROWS_AS(mhaprune::criterion_from_name("magnitud"), mhaprune::config_error);
  CHECK_THROWS_WITH(
      mhaprune::criterion_from_name("magnitud"),
      Contains("unknown criterion \"magnitud\"") && Contains("fisher, fluctuation, gradient, magnitude, "
                                                             "obs, random, snip, snip_momentum, taylor, "
                                                             "wanda_sp"));
  CHECK_THROWS_WITH(mhaprune::CriterionRegistry().make("magnitude"), Contains("none registered"));

  mhaprune::CriterionOptions opt;
  opt.reduce = "avg";
  for (const char* name : {"magnitude", "gradient", "snip", "snip_momentum"}) {
    INFO(name);
    CHECK_THROWS_AS(mhaprune::criterion_from_name(name, opt), mhaprune::config_error);
    CHECK_THROWS_WITH(mhaprune::criterion_from_name(name, opt),
                      Contains(name) && Contains("\"avg\"") && Contains("mean|sum|max|l2"));
  }
  CHECK_THROWS_WITH(mhaprune::parse_reduction("Mean"), Contains("\"Mean\"") && Contains("mean|sum|max|l2"));
  CHECK(mhaprune::parse_reduction("l2") == mhaprune::Reduction::l2);

  opt = mhaprune::CriterionOptions{};
  opt.weights = mhaprune::RoleWeights{0, 0, 0, 0};
  CHECK_THROWS_WITH(mhaprune::criterion_from_name("magnitude", opt), Contains("all zero"));
  opt.weights = mhaprune::RoleWeights{1, std::numeric_limits<double>::infinity(), 1, 1};
  CHECK_THROWS_AS(mhaprune::criterion_from_name("snip", opt), mhaprune::config_error);
  opt = mhaprune::CriterionOptions{};
  opt.alpha = -1;
  CHECK_THROWS_AS(mhaprune::criterion_from_name("snip_momentum", opt), mhaprune::config_error);

  mhaprune::CriterionRegistry reg = mhaprune::CriterionRegistry::with_builtins();
  const auto names = reg.names();
  auto factory = [](const mhaprune::CriterionOptions&) { return mhaprune::AnyCriterion(); };
  CHECK_THROWS_AS(reg.add("snip", factory), mhaprune::config_error);
  CHECK_THROWS_WITH(reg.add("snip", factory), Contains("\"snip\"") && Contains("already registered"));
  CHECK_THROWS_AS(reg.add("", factory), mhaprune::config_error);
  CHECK_THROWS_AS(reg.add("x", mhaprune::CriterionFactory{}), mhaprune::config_error);
  CHECK(reg.names() == names);
}

TEST_CASE("a criterion that returns the wrong number of scores; group_scores of the wrong size",
          "[criteria][errors]") {
  Separate<float> a("layers.9", layout_a(), weights_a());
  auto three =
      mhaprune::make_criterion([](const auto&, const Evidence&) { return Eigen::VectorXd::Zero(3); });
  CHECK_THROWS_AS(mhaprune::score_heads(three, a.block), mhaprune::shape_error);
  CHECK_THROWS_WITH(mhaprune::score_heads(three, a.block), Contains("lambda") && Contains("\"layers.9\"") &&
                                                               Contains("3 scores") && Contains("2 current"));
  CHECK_THROWS_WITH(mhaprune::AnyCriterion(three).scores(a.block), Contains("3 scores"));
  CHECK_THROWS_AS(mhaprune::group_scores(a.block, Eigen::VectorXd::Zero(3)), mhaprune::shape_error);
  CHECK_THROWS_WITH(mhaprune::group_scores(a.block, Eigen::VectorXd::Zero(3)),
                    Contains("\"layers.9\"") && Contains("3 head scores"));
}

TEST_CASE("a block changed behind its back is reported before scoring", "[criteria][errors]") {
  Separate<float> a("layers.1", layout_a(), weights_a());
  a.o.resize(2, 3);
  CHECK_THROWS_AS(mhaprune::Magnitude().scores(a.block), mhaprune::shape_error);
  CHECK_THROWS_AS(mhaprune::WandaSp().scores(a.block, Evidence{}), mhaprune::shape_error);
}

}  // namespace test_criteria_errors
