// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// The criterion concept: built-ins and user criteria (a class, a lambda) pass the same trait, work in a
// pruner-like policy template, inside AnyCriterion and through the registry.

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <map>
#include <memory>
#include <mhaprune/mhaprune.hpp>
#include <string>
#include <vector>

#include "test_criteria_blocks.hpp"

namespace test_criteria_user {

using namespace criteria_test;
using mhaprune::AnyCriterion;
using mhaprune::CriterionOptions;
using mhaprune::CriterionRegistry;
using mhaprune::Evidence;

namespace {

/// A user criterion class: each head's O columns' L2 norm (read through the reference gather).
struct OutputNorm {
  int calls = 0;
  static constexpr const char* name() { return "output_norm"; }
  template <typename Scalar>
  Eigen::VectorXd scores(const mhaprune::AttentionBlock<Scalar>& block, const Evidence&) {
    ++calls;
    const Eigen::MatrixXd o = mhaprune::reference::weight(block, mhaprune::Role::output);
    const Index d = block.layout().head_dim();
    Eigen::VectorXd s(block.layout().heads());
    for (Index h = 0; h < s.size(); ++h) s(h) = o.middleCols(h * d, d).norm();
    return s;
  }
};

/// A stateful user criterion: scores = number of updates its block has had, per head.
struct CountUpdates {
  std::map<std::string, int> updates;
  template <typename Scalar>
  Eigen::VectorXd scores(const mhaprune::AttentionBlock<Scalar>& block, const Evidence&) {
    return Eigen::VectorXd::Constant(block.layout().heads(), updates[block.name()]);
  }
  template <typename Scalar>
  void update(const mhaprune::AttentionBlock<Scalar>& block, const Evidence&) {
    ++updates[block.name()];
  }
};

/// Only float blocks.
struct FloatOnly {
  Eigen::VectorXd scores(const mhaprune::AttentionBlock<float>& block, const Evidence&) {
    return Eigen::VectorXd::Zero(block.layout().heads());
  }
};

struct NotACriterion {
  int scores(int) { return 0; }
};
struct WrongArguments {
  template <typename Scalar>
  Eigen::VectorXd scores(const mhaprune::AttentionBlock<Scalar>&) {
    return {};
  }
};

/// Stands in for the next issue's MhaPruner<Criterion, ...>: takes a criterion type as a policy.
template <typename Criterion = mhaprune::Magnitude>
struct PolicyUser {
  static_assert(mhaprune::check_criterion<Criterion>());
  Criterion criterion;
  template <typename Scalar>
  Eigen::VectorXd step(const mhaprune::AttentionBlock<Scalar>& block, const Evidence& ev) {
    mhaprune::update_criterion(criterion, block, ev);
    return mhaprune::score_heads(criterion, block, ev);
  }
};

auto ids_lambda() {
  return [](const auto& block, const Evidence&) {
    Eigen::VectorXd s(block.layout().heads());
    for (Index h = 0; h < s.size(); ++h)
      s(h) = static_cast<double>(block.head_ids()[static_cast<std::size_t>(h)]);
    return s;
  };
}

}  // namespace

// --- the trait, the static check, the C++20 concept ---------------------------------------------------
static_assert(mhaprune::is_criterion_v<mhaprune::Magnitude, float>);
static_assert(mhaprune::is_criterion_v<mhaprune::Magnitude, Eigen::bfloat16>);
static_assert(mhaprune::is_criterion_v<mhaprune::Gradient, double>);
static_assert(mhaprune::is_criterion_v<mhaprune::Snip, Eigen::half>);
static_assert(mhaprune::is_criterion_v<mhaprune::SnipMomentum, float>);
static_assert(mhaprune::is_criterion_v<mhaprune::Taylor, float>);
static_assert(mhaprune::is_criterion_v<mhaprune::Fisher, float>);
static_assert(mhaprune::is_criterion_v<mhaprune::WandaSp, float>);
static_assert(mhaprune::is_criterion_v<mhaprune::Fluctuation, float>);
static_assert(mhaprune::is_criterion_v<mhaprune::Random, float>);
static_assert(mhaprune::is_criterion_v<AnyCriterion, Eigen::bfloat16>);
static_assert(mhaprune::is_criterion_v<OutputNorm, double>);
static_assert(mhaprune::is_criterion_v<decltype(mhaprune::make_criterion(ids_lambda())), float>);
static_assert(mhaprune::is_criterion_v<FloatOnly, float>);
static_assert(!mhaprune::is_criterion_v<FloatOnly, double>);
static_assert(!mhaprune::is_criterion_v<int, float>);
static_assert(!mhaprune::is_criterion_v<NotACriterion, float>);
static_assert(!mhaprune::is_criterion_v<WrongArguments, float>);
static_assert(mhaprune::has_update_v<mhaprune::SnipMomentum, float>);
static_assert(mhaprune::has_update_v<mhaprune::Taylor, Eigen::half>);
static_assert(mhaprune::has_update_v<CountUpdates, float>);
static_assert(!mhaprune::has_update_v<mhaprune::Magnitude, float>);
static_assert(!mhaprune::has_update_v<decltype(mhaprune::make_criterion(ids_lambda())), float>);
static_assert(std::is_default_constructible_v<mhaprune::Magnitude>);
static_assert(mhaprune::check_criterion<mhaprune::Magnitude>());
static_assert(mhaprune::check_criterion<OutputNorm, Eigen::bfloat16>());
// The C++20 concepts are checked in test_policy_concepts.cpp, the one file built as C++20 too.

TEST_CASE("a pruner-like policy template takes built-in and user criteria alike", "[criteria][concept]") {
  Separate<float> a("layers.0", layout_a(), weights_a());
  PolicyUser<> by_default;  // Magnitude, mean
  CHECK(by_default.step(a.block, Evidence{}).isApprox(mhaprune::Magnitude().scores(a.block)));

  PolicyUser<OutputNorm> user;
  // O columns (1, -2) and (0, 5).
  CHECK(user.step(a.block, Evidence{}).isApprox(Eigen::Vector2d(std::sqrt(5.0), 5.0)));
  CHECK(user.criterion.calls == 1);

  PolicyUser<CountUpdates> stateful;
  stateful.step(a.block, Evidence{});
  CHECK(stateful.step(a.block, Evidence{}) == Eigen::Vector2d(2, 2));

  auto lambda = mhaprune::make_criterion(ids_lambda());
  PolicyUser<decltype(lambda)> with_lambda{lambda};
  CHECK(with_lambda.step(a.block, Evidence{}) == Eigen::Vector2d(0, 1));

  PolicyUser<AnyCriterion> any{AnyCriterion(mhaprune::Random(5))};
  CHECK(any.step(a.block, Evidence{}) == mhaprune::Random(5).scores(a.block));
}

TEST_CASE("lambda criteria: stateless and with an update step", "[criteria][lambda]") {
  Separate<Eigen::bfloat16> a("layers.0", layout_a(), weights_a());
  auto ids = mhaprune::make_criterion(ids_lambda()).named("ids");
  CHECK(ids.name() == "ids");
  CHECK(mhaprune::score_heads(ids, a.block) == Eigen::Vector2d(0, 1));
  mhaprune::remove_heads(a.block, mhaprune::OriginalIds{0});
  CHECK(mhaprune::score_heads(ids, a.block) == Eigen::VectorXd::Constant(1, 1.0));

  auto count = std::make_shared<int>(0);
  auto counting = mhaprune::make_criterion(
      [count](const auto& block, const Evidence&) {
        return Eigen::VectorXd::Constant(block.layout().heads(), *count);
      },
      [count](const auto&, const Evidence&) { ++*count; });
  static_assert(mhaprune::has_update_v<decltype(counting), Eigen::bfloat16>);
  mhaprune::update_criterion(counting, a.block, Evidence{});
  mhaprune::update_criterion(counting, a.block, Evidence{});
  CHECK(mhaprune::score_heads(counting, a.block)(0) == 2.0);
}

TEST_CASE("AnyCriterion: holds any criterion, copies its state, forwards every scalar type",
          "[criteria][any]") {
  Separate<float> a("layers.0", layout_a(), weights_a());
  Separate<Eigen::half> ah("layers.0", layout_a(), weights_a());

  AnyCriterion by_default;
  CHECK(by_default.name() == "magnitude");
  CHECK_FALSE(by_default.stateful());
  CHECK(by_default.scores(a.block).isApprox(mhaprune::Magnitude().scores(a.block)));
  CHECK(by_default.scores(ah.block).isApprox(mhaprune::Magnitude().scores(a.block)));
  by_default.update(a.block, Evidence{});  // a no-op for a stateless criterion

  AnyCriterion counting(CountUpdates{});
  CHECK(counting.name() == "criterion");
  CHECK(counting.stateful());
  counting.update(a.block, Evidence{});
  AnyCriterion copy = counting;
  copy.update(ah.block, Evidence{});
  CHECK(counting.scores(a.block) == Eigen::Vector2d(1, 1));
  CHECK(copy.scores(a.block) == Eigen::Vector2d(2, 2));
  REQUIRE(copy.target<CountUpdates>() != nullptr);
  CHECK(copy.target<CountUpdates>()->updates.at("layers.0") == 2);
  CHECK(copy.target<mhaprune::Magnitude>() == nullptr);

  AnyCriterion float_only(FloatOnly{}, "float_only");
  CHECK(float_only.scores(a.block) == Eigen::Vector2d(0, 0));
  Separate<double> ad("layers.0", layout_a(), weights_a());
  CHECK_THROWS_AS(float_only.scores(ad.block), mhaprune::config_error);
  CHECK_THROWS_WITH(float_only.scores(ad.block), Catch::Contains("float_only") && Catch::Contains("double"));
}

TEST_CASE("registry: every built-in by name, with options", "[criteria][registry]") {
  const CriterionRegistry reg = CriterionRegistry::with_builtins();
  CHECK(reg.names() == std::vector<std::string>{"fisher", "fluctuation", "gradient", "magnitude", "obs",
                                                "random", "snip", "snip_momentum", "taylor", "wanda_sp"});
  Separate<float> a("layers.0", layout_a(), weights_a());
  const Weights gd = gradients_a();
  const RowMat<float> q = gd.q.cast<float>(), k = gd.k.cast<float>(), v = gd.v.cast<float>(),
                      o = gd.o.cast<float>();
  const Evidence grads = separate_gradients(q, k, v, o);

  CHECK(reg.make("magnitude").scores(a.block).isApprox(mhaprune::Magnitude().scores(a.block)));
  for (mhaprune::Reduction r : mhaprune::all_reductions) {
    CriterionOptions opt;
    opt.reduce = mhaprune::to_string(r);
    opt.weights.output = 3;
    const mhaprune::RoleWeights w = opt.weights;
    CHECK(reg.make("magnitude", opt).scores(a.block).isApprox(mhaprune::Magnitude(r, w).scores(a.block)));
    CHECK(reg.make("gradient", opt)
              .scores(a.block, grads)
              .isApprox(mhaprune::Gradient(r, w).scores(a.block, grads)));
    CHECK(reg.make("snip", opt).scores(a.block, grads).isApprox(mhaprune::Snip(r, w).scores(a.block, grads)));
  }

  CriterionOptions opt;
  opt.alpha = 0.5;
  opt.beta = 2;
  opt.reduce = "max";
  AnyCriterion sm = reg.make("snip_momentum", opt);
  CHECK(sm.name() == "snip_momentum");
  CHECK(sm.stateful());
  REQUIRE(sm.target<mhaprune::SnipMomentum>() != nullptr);
  CHECK(sm.target<mhaprune::SnipMomentum>()->options().alpha == 0.5);
  CHECK(sm.target<mhaprune::SnipMomentum>()->options().reduce == mhaprune::Reduction::max);
  sm.update(a.block, grads);
  CHECK(sm.scores(a.block).isApprox(2.0 * Eigen::Vector2d(1.5, 3.5)));

  opt.normalize = true;
  AnyCriterion taylor = reg.make("taylor", opt);
  Evidence gates;
  gates.with_gate_gradients(Eigen::Vector2d(3, -4));
  taylor.update(a.block, gates);
  CHECK(taylor.scores(a.block).isApprox(Eigen::Vector2d(0.6, 0.8)));
  AnyCriterion fisher = reg.make("fisher");
  fisher.update(a.block, gates);
  CHECK(fisher.scores(a.block).isApprox(Eigen::Vector2d(9, 16)));

  opt.seed = 99;
  CHECK(reg.make("random", opt).scores(a.block) == mhaprune::Random(99).scores(a.block));

  mhaprune::ActivationStats stats;
  stats.add(Eigen::MatrixXf::Random(4, 2));
  Evidence ev;
  ev.with_activations(stats);
  CHECK(reg.make("wanda_sp").scores(a.block, ev).isApprox(mhaprune::WandaSp().scores(a.block, ev)));
  CHECK(reg.make("fluctuation").scores(a.block, ev).isApprox(mhaprune::Fluctuation().scores(a.block, ev)));
}

TEST_CASE("registry: user criteria by name, a class and a lambda", "[criteria][registry]") {
  CriterionRegistry reg = CriterionRegistry::with_builtins();
  reg.add("output_norm", [](const CriterionOptions&) { return AnyCriterion(OutputNorm{}); });
  reg.add("ids",
          [](const CriterionOptions&) { return AnyCriterion(mhaprune::make_criterion(ids_lambda())); });
  CHECK(reg.contains("output_norm"));
  Separate<Eigen::bfloat16> a("layers.0", layout_a(), weights_a());
  AnyCriterion norm = reg.make("output_norm");
  CHECK(norm.name() == "output_norm");
  CHECK(norm.scores(a.block).isApprox(Eigen::Vector2d(std::sqrt(5.0), 5.0)));
  CHECK(norm.target<OutputNorm>()->calls == 1);
  CHECK(reg.make("ids").scores(a.block) == Eigen::Vector2d(0, 1));
  CHECK(reg.remove("ids"));
  CHECK_FALSE(reg.remove("ids"));
  CHECK_FALSE(reg.contains("ids"));

  // The process-wide registry, which configuration files use.
  const std::string name = "test_criteria_user.ids";
  mhaprune::criterion_registry().add(
      name, [](const CriterionOptions&) { return AnyCriterion(mhaprune::make_criterion(ids_lambda())); });
  CHECK(mhaprune::criterion_from_name(name).scores(a.block) == Eigen::Vector2d(0, 1));
  CHECK(mhaprune::criterion_from_name("magnitude")
            .scores(a.block)
            .isApprox(mhaprune::Magnitude().scores(a.block)));
  CHECK(mhaprune::criterion_registry().remove(name));
}

}  // namespace test_criteria_user
