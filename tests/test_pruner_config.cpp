// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// PrunerConfig: JSON round trips (defaults, every key set, the full seed range); make_pruner building
// working pruners (global and local scope, one-shot and iterative, every option passed through) that
// prune as the statically typed pruner does; and a table of bad configs, each refused with a
// config_error whose message names the key and the allowed values or range.

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cstdint>
#include <mhaprune/mhaprune.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/message_of.hpp"
#include "support/pruner_model.hpp"

namespace test_pruner_config {

namespace {

using mhaprune::config_error;
using mhaprune::config_from_json;
using mhaprune::Decay;
using mhaprune::GqaMode;
using mhaprune::HeadLayout;
using mhaprune::Index;
using mhaprune::make_pruner;
using mhaprune::Normalization;
using mhaprune::PrunerConfig;
using mhaprune::PruneReport;
using mhaprune::PruningScope;
using mhaprune::Reduction;
using mhaprune_test::exact_message;
using nlohmann::json;
using pruner_test::Model;

void check_same(const PrunerConfig& a, const PrunerConfig& b) {
  CHECK(a.target_sparsity == b.target_sparsity);
  CHECK(a.pruning_scope == b.pruning_scope);
  CHECK(a.criterion_type == b.criterion_type);
  CHECK(a.criterion_reduce_type == b.criterion_reduce_type);
  CHECK(a.sparsity_decay_type == b.sparsity_decay_type);
  CHECK(a.start_step == b.start_step);
  CHECK(a.end_step == b.end_step);
  CHECK(a.pruning_frequency == b.pruning_frequency);
  CHECK(a.max_sparsity_ratio_per_op == b.max_sparsity_ratio_per_op);
  CHECK(a.min_heads == b.min_heads);
  CHECK(a.round_to == b.round_to);
  CHECK(a.gqa_mode == b.gqa_mode);
  CHECK(a.normalization == b.normalization);
  CHECK(a.seed == b.seed);
  CHECK(a.exact_target == b.exact_target);
  CHECK(a.compensation == b.compensation);
}

/// `c` → JSON object → config, and `c` → JSON text → parsed → config: both give `c` back.
void check_round_trip(const PrunerConfig& c) {
  const json j = c;
  REQUIRE(j.is_object());
  CHECK(j.size() == 16);  // every key is written
  check_same(config_from_json(j), c);
  check_same(config_from_json(json::parse(j.dump())), c);
  CHECK(json(config_from_json(j)) == j);
}

// Every key set, none to its default.
const char* const kEveryKey = R"({
  "target_sparsity": 0.35,
  "pruning_scope": "local",
  "criterion_type": "snip_momentum",
  "criterion_reduce_type": "l2",
  "sparsity_decay_type": "cos",
  "start_step": 3,
  "end_step": 11,
  "pruning_frequency": 4,
  "max_sparsity_ratio_per_op": 0.5,
  "min_heads": 2,
  "round_to": 2,
  "gqa_mode": "whole_groups",
  "normalization": "standardize",
  "seed": 12345,
  "exact_target": true,
  "compensation": "bias"
})";

}  // namespace

TEST_CASE("PrunerConfig: defaults and every key round-trip through JSON", "[pruner][config]") {
  SECTION("defaults") {
    const PrunerConfig defaults;
    check_round_trip(defaults);
    check_same(config_from_json(json::object()), defaults);
    CHECK(defaults.pruning_scope == PruningScope::global);
    CHECK(defaults.criterion_type == "magnitude");
    CHECK(defaults.criterion_reduce_type == Reduction::mean);
  }
  SECTION("every key") {
    const PrunerConfig c = config_from_json(json::parse(kEveryKey));
    CHECK(c.target_sparsity == 0.35);
    CHECK(c.pruning_scope == PruningScope::local);
    CHECK(c.criterion_type == "snip_momentum");
    CHECK(c.criterion_reduce_type == Reduction::l2);
    CHECK(c.sparsity_decay_type == Decay::cos);
    CHECK(c.start_step == 3);
    CHECK(c.end_step == 11);
    CHECK(c.pruning_frequency == 4);
    CHECK(c.max_sparsity_ratio_per_op == 0.5);
    CHECK(c.min_heads == 2);
    CHECK(c.round_to == 2);
    CHECK(c.gqa_mode == GqaMode::whole_groups);
    CHECK(c.normalization == Normalization::standardize);
    CHECK(c.seed == 12345u);
    CHECK(c.exact_target);
    CHECK(c.compensation == mhaprune::CompensationMethod::bias);
    check_round_trip(c);
    CHECK(json(c) == json::parse(kEveryKey));
  }
  SECTION("the whole range of the 64-bit seed, and integers made in code rather than parsed") {
    PrunerConfig c;
    c.seed = UINT64_MAX;
    check_round_trip(c);
    check_same(config_from_json(json::parse(R"({"seed": 18446744073709551615})")), c);
    // json{{"seed", 7}} holds a signed integer, a parsed 7 an unsigned one.
    CHECK(config_from_json(json{{"seed", 7}, {"min_heads", 3}}).seed == 7u);
    CHECK(config_from_json(json{{"seed", 7}, {"min_heads", 3}}).min_heads == 3);
    CHECK(make_pruner<float>(c).criterion().name() == "magnitude");
  }
}

TEST_CASE("make_pruner: global and local scope prune as the typed pruners do", "[pruner][config]") {
  const auto specs = pruner_test::uniform_specs(3, HeadLayout::mha(4, 2, 8));
  Model<float> model(specs, 101), twin(specs, 101);
  PrunerConfig c;
  c.target_sparsity = 0.5;
  PruneReport got, want;

  SECTION("global") {
    auto p = make_pruner<float>(c);
    CHECK(p.policy().name() == "global");
    CHECK(p.schedule().name() == "oneshot");
    CHECK(p.criterion().name() == "magnitude");
    got = p.prune(model.blocks, c.target_sparsity);
    want = mhaprune::MhaPruner<>().prune(twin.blocks, 0.5);
  }
  SECTION("local") {
    c.pruning_scope = PruningScope::local;
    auto p = make_pruner<float>(c);
    CHECK(p.policy().name() == "local");
    got = p.prune(model.blocks, c.target_sparsity);
    want = mhaprune::MhaPruner<mhaprune::Magnitude, mhaprune::LocalSelection>().prune(twin.blocks, 0.5);
    for (const auto& b : got.blocks) CHECK(b.removed.size() == 2);
  }
  REQUIRE(got.blocks.size() == 3);
  CHECK(got.heads_removed() == 6);
  for (std::size_t i = 0; i < 3; ++i) {
    CHECK(got.blocks[i].removed == want.blocks[i].removed);
    CHECK(got.blocks[i].scores == want.blocks[i].scores);
  }
  CHECK(pruner_test::snapshot(model) == pruner_test::snapshot(twin));
}

TEST_CASE("make_pruner: one-shot at a step, and iterative through the hooks", "[pruner][config]") {
  const auto specs = pruner_test::uniform_specs(4, HeadLayout::mha(4, 2, 8));
  Model<double> model(specs, 103);

  SECTION("start_step == end_step: one-shot at that step") {
    const PrunerConfig c = config_from_json(json::parse(R"({"start_step": 3, "end_step": 3})"));
    auto p = make_pruner<double>(c);
    CHECK(p.schedule().name() == "oneshot");
    p.attach(model.blocks, 0.25);
    for (long step = 0; step < 6; ++step) {
      CHECK(p.on_step_begin(step) == (step == 3));
      p.on_before_optimizer_step();
      p.on_after_optimizer_step();
    }
    Index masked = 0;
    for (const auto& m : p.masks()) masked += m.removed_count();
    CHECK(masked == 4);
    CHECK(p.finalize().heads_removed() == 4);
  }
  SECTION("start_step < end_step: iterative, with the decay and frequency of the config") {
    const PrunerConfig c = config_from_json(json::parse(
        R"({"target_sparsity": 0.5, "start_step": 1, "end_step": 5, "pruning_frequency": 2,
            "sparsity_decay_type": "linear"})"));
    auto p = make_pruner<double>(c);
    CHECK(p.schedule().name() == "iterative");
    p.attach(model.blocks, c.target_sparsity);
    // Pruning steps 1, 3, 5: targets 0, 0.25, 0.5 of 16 heads.
    const std::vector<Index> expected{0, 0, 0, 4, 4, 8, 8};
    for (long step = 0; step <= 6; ++step) {
      INFO("step " << step);
      p.on_step_begin(step);
      Index masked = 0;
      for (const auto& m : p.masks()) masked += m.removed_count();
      CHECK(masked == expected[static_cast<std::size_t>(step)]);
      p.on_before_optimizer_step();
      p.on_after_optimizer_step();
    }
    const PruneReport r = p.finalize();
    CHECK(r.heads_removed() == 8);
    CHECK(r.total(true).heads == 8);
  }
  SECTION("other decays") {
    for (const char* decay : {"cube", "cos", "exp"}) {
      PrunerConfig c;
      c.start_step = 0;
      c.end_step = 4;
      c.sparsity_decay_type = mhaprune::parse_decay(decay);
      auto p = make_pruner<double>(c);
      const mhaprune::IterativeSchedule reference(0, 4, 1, mhaprune::parse_decay(decay));
      for (long step = 0; step <= 5; ++step) {
        CHECK(p.schedule().is_pruning_step(step) == reference.is_pruning_step(step));
        CHECK(p.schedule().target_at(step, 0.6) == reference.target_at(step, 0.6));
      }
    }
  }
}

TEST_CASE("make_pruner: every option reaches the pruner", "[pruner][config]") {
  const PrunerConfig c = config_from_json(json::parse(kEveryKey));
  auto p = make_pruner<float>(c);
  const mhaprune::SelectionOptions& o = p.options();
  CHECK(o.min_heads == 2);
  CHECK(o.round_to == 2);
  CHECK(o.max_ratio_per_block == 0.5);
  CHECK(o.gqa_mode == GqaMode::whole_groups);
  CHECK(o.normalization == Normalization::standardize);
  CHECK(o.exact_target);
  CHECK(p.criterion().name() == "snip_momentum");
  REQUIRE(p.criterion().target<mhaprune::SnipMomentum>() != nullptr);
  CHECK(p.criterion().target<mhaprune::SnipMomentum>()->options().reduce == mhaprune::Reduction::l2);
  CHECK(p.policy().name() == "local");
  CHECK(p.schedule().name() == "iterative");
  CHECK(p.schedule().is_pruning_step(7));
  CHECK_FALSE(p.schedule().is_pruning_step(9));

  PrunerConfig r;
  r.criterion_type = "random";
  r.seed = 99;
  r.criterion_reduce_type = Reduction::max;
  auto pr = make_pruner<double>(r);
  REQUIRE(pr.criterion().target<mhaprune::Random>() != nullptr);
  CHECK(pr.criterion().target<mhaprune::Random>()->seed() == 99u);
  r.criterion_type = "magnitude";
  auto pm = make_pruner<float>(r);
  REQUIRE(pm.criterion().target<mhaprune::Magnitude>() != nullptr);
  CHECK(pm.criterion().target<mhaprune::Magnitude>()->reduction() == mhaprune::Reduction::max);
  r.normalization = Normalization::l2;
  r.gqa_mode = GqaMode::uniform_per_group;
  CHECK(make_pruner<float>(r).options().normalization == Normalization::l2);
  CHECK(make_pruner<float>(r).options().gqa_mode == GqaMode::uniform_per_group);
}

TEST_CASE("make_pruner: a config made in code gets the same checks, and a custom registry its names",
          "[pruner][config]") {
  PrunerConfig c;
  c.min_heads = 0;
  CHECK_THROWS_AS(make_pruner<float>(c), config_error);
  c = PrunerConfig{};
  c.pruning_scope = static_cast<PruningScope>(7);  // no such scope: written as "?"
  CHECK_THROWS_WITH(make_pruner<float>(c),
                    Catch::Contains("pruning_scope") && Catch::Contains("global, local"));
  c = PrunerConfig{};
  c.end_step = 2;
  c.start_step = 5;
  CHECK_THROWS_AS(make_pruner<float>(c), config_error);

  mhaprune::CriterionRegistry mine;
  mine.add("mine",
           [](const mhaprune::CriterionOptions&) { return mhaprune::AnyCriterion(mhaprune::Random(3)); });
  const json j = json::parse(R"({"criterion_type": "mine"})");
  CHECK_THROWS_WITH(config_from_json(j), Catch::Contains("\"mine\" is not one of"));
  const PrunerConfig own = config_from_json(j, mine);
  CHECK(own.criterion_type == "mine");
  auto p = make_pruner<float>(own, mine);
  CHECK(p.criterion().name() == "mine");
  // The default criterion, "magnitude", is not in that registry.
  CHECK_THROWS_WITH(make_pruner<float>(PrunerConfig{}, mine),
                    Catch::Contains("\"magnitude\" is not one of: mine"));
}

namespace {

struct BadConfig {
  const char* json_text;
  std::vector<std::string> message_parts;
};

}  // namespace

TEST_CASE("config_from_json: bad configs throw config_error naming the key and what is allowed",
          "[pruner][config]") {
  const std::string criteria =
      "fisher, fluctuation, gradient, magnitude, obs, random, snip, snip_momentum, taylor, wanda_sp";
  const std::vector<BadConfig> table{
      // Unknown key: lists the valid ones.
      {R"({"target_sparsty": 0.3})",
       {"unknown config key \"target_sparsty\"", "valid keys: target_sparsity, pruning_scope",
        "exact_target"}},
      // Wrong types.
      {R"({"target_sparsity": "0.3"})", {"\"target_sparsity\"", "expected a number in [0, 1]", "\"0.3\""}},
      {R"({"target_sparsity": null})", {"\"target_sparsity\"", "expected a number in [0, 1]", "null"}},
      {R"({"max_sparsity_ratio_per_op": [0.5]})",
       {"\"max_sparsity_ratio_per_op\"", "expected a number in [0, 1]"}},
      {R"({"pruning_scope": 1})", {"\"pruning_scope\"", "expected a string, one of: global, local", "got 1"}},
      {R"({"criterion_type": 3})", {"\"criterion_type\"", "expected a string, one of: " + criteria}},
      {R"({"gqa_mode": true})", {"\"gqa_mode\"", "uniform_per_group, whole_groups"}},
      {R"({"start_step": 1.5})", {"\"start_step\"", "expected an integer >= 0", "1.5"}},
      {R"({"end_step": "4"})", {"\"end_step\"", "expected an integer >= 0"}},
      {R"({"min_heads": 2.0})", {"\"min_heads\"", "expected an integer >= 1", "2.0"}},
      {R"({"pruning_frequency": "2"})", {"\"pruning_frequency\"", "expected an integer >= 1"}},
      {R"({"round_to": 1.5})", {"\"round_to\"", "expected an integer >= 1"}},
      {R"({"seed": 1.5})", {"\"seed\"", "expected an integer in [0, 2^64)", "1.5"}},
      {R"({"seed": -1})", {"\"seed\"", "expected an integer in [0, 2^64)", "-1"}},
      {R"({"exact_target": 1})", {"\"exact_target\"", "expected true or false", "got 1"}},
      {R"({"exact_target": "true"})", {"\"exact_target\"", "expected true or false", "\"true\""}},
      // Out of range.
      {R"({"target_sparsity": -0.1})", {"\"target_sparsity\"", "-0.1 is outside [0, 1]"}},
      {R"({"target_sparsity": 1.5})", {"\"target_sparsity\"", "1.5 is outside [0, 1]"}},
      {R"({"max_sparsity_ratio_per_op": 2})", {"\"max_sparsity_ratio_per_op\"", "2 is outside [0, 1]"}},
      {R"({"min_heads": 0})", {"\"min_heads\"", "0 is below the minimum 1"}},
      {R"({"round_to": 0})", {"\"round_to\"", "0 is below the minimum 1"}},
      {R"({"pruning_frequency": 0})", {"\"pruning_frequency\"", "0 is below the minimum 1"}},
      {R"({"start_step": -2})", {"\"start_step\"", "-2 is below the minimum 0"}},
      {R"({"start_step": 9223372036854775808})",
       {"\"start_step\"", "9223372036854775808 is above the maximum"}},
      {R"({"start_step": 5, "end_step": 3})",
       {"\"start_step\" (5)", "\"end_step\" (3)", "end_step must not be before start_step"}},
      {R"({"end_step": 0, "start_step": 1})", {"end_step must not be before start_step"}},
      // Unknown names: list the valid ones.
      {R"({"criterion_type": "magnitud"})",
       {"\"criterion_type\"", "\"magnitud\" is not one of: " + criteria}},
      {R"({"criterion_reduce_type": "median"})",
       {"\"criterion_reduce_type\"", "\"median\" is not one of: mean, sum, max, l2"}},
      {R"({"pruning_scope": "layer"})", {"\"pruning_scope\"", "\"layer\" is not one of: global, local"}},
      {R"({"sparsity_decay_type": "quadratic"})",
       {"\"sparsity_decay_type\"", "\"quadratic\" is not one of: linear, cube, cos, exp"}},
      {R"({"gqa_mode": "per_group"})",
       {"\"gqa_mode\"", "\"per_group\" is not one of: uniform_per_group, whole_groups"}},
      {R"({"normalization": "zscore"})",
       {"\"normalization\"", "\"zscore\" is not one of: none, l2, standardize"}},
      // Not an object.
      {R"([])", {"must be a JSON object", "[]"}},
      {R"([{"target_sparsity": 0.3}])", {"must be a JSON object"}},
      {R"(0.3)", {"must be a JSON object", "0.3"}},
      {R"("global")", {"must be a JSON object"}},
      {R"(null)", {"must be a JSON object", "null"}},
      {R"(true)", {"must be a JSON object"}},
  };
  for (const BadConfig& bad : table) {
    INFO("config " << bad.json_text);
    const json j = json::parse(bad.json_text);
    const std::string what = exact_message<config_error>([&] { config_from_json(j); });
    for (const std::string& part : bad.message_parts) {
      INFO("message: " << what);
      CHECK_THAT(what, Catch::Contains(part));
    }
  }
}

}  // namespace test_pruner_config
