// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// Intel Neural Compressor's pruning configs read unchanged: INC's defaults and meaning where a config
// names `pattern`, the global keys inherited by each of `pruning_configs`, the keys mhaprune ignores
// warned about once, unknown keys answered with the closest known one; plans of several configs
// (which blocks each takes, and each group pruned by its own settings); and the name tables that feed
// to_string, parsing, the JSON reader and writer and the tool's choices.

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cstddef>
#include <mhaprune/mhaprune.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/message_of.hpp"
#include "support/selection_blocks.hpp"

namespace test_pruner_inc_config {

namespace {

using mhaprune::config_error;
using mhaprune::config_from_json;
using mhaprune::Decay;
using mhaprune::PrunerConfig;
using mhaprune::PruningPlan;
using mhaprune::PruningScope;
using mhaprune::Reduction;
using mhaprune_test::exact_message;
using mhaprune_test::fresh_block;
using nlohmann::json;

std::string error_of(const json& j) {
  return exact_message<config_error>([&] { config_from_json(j); });
}

std::string plan_error_of(const json& j) {
  return exact_message<config_error>([&] { mhaprune::pruning_plan_from_json(j); });
}

}  // namespace

TEST_CASE("INC config: a config with pattern mha gets INC's defaults for the keys it leaves out",
          "[pruner][config][inc]") {
  std::vector<std::string> warnings;
  const PrunerConfig c =
      config_from_json(json::parse(R"({"pattern": "mha"})"), mhaprune::criterion_registry(), &warnings);
  CHECK(c.target_sparsity == 0.9);
  CHECK(c.criterion_type == "snip_momentum");
  CHECK(c.pruning_scope == PruningScope::global);
  CHECK(c.criterion_reduce_type == Reduction::mean);
  CHECK(c.sparsity_decay_type == Decay::exp);
  CHECK(c.start_step == 0);
  CHECK(c.end_step == 0);
  CHECK(c.pruning_frequency == 1);
  // INC's MHA pruner caps no block; its 0.98 caps an iterative target, and this one is one-shot.
  CHECK(c.max_sparsity_ratio_per_op == 1.0);
  CHECK(warnings.empty());

  // Without pattern, mhaprune's own defaults stay.
  const PrunerConfig ours = config_from_json(json::object());
  CHECK(ours.target_sparsity == 0.0);
  CHECK(ours.criterion_type == "magnitude");
}

TEST_CASE("INC config: max_sparsity_ratio_per_op caps an iterative schedule's target, as INC's MHA pruner",
          "[pruner][config][inc]") {
  // INC's default cap, 0.98, under an iterative schedule with INC's default target 0.9: no effect.
  CHECK(config_from_json(json::parse(R"({"pattern": "mha", "end_step": 10})")).target_sparsity == 0.9);
  // The default cap binds a target above it.
  CHECK(config_from_json(json::parse(R"({"pattern": "mha", "end_step": 10, "target_sparsity": 0.99})"))
            .target_sparsity == 0.98);
  const PrunerConfig capped = config_from_json(json::parse(
      R"({"pattern": "mha", "end_step": 10, "target_sparsity": 0.8, "max_sparsity_ratio_per_op": 0.5})"));
  CHECK(capped.target_sparsity == 0.5);
  CHECK(capped.max_sparsity_ratio_per_op == 1.0);
  // One-shot: INC's one-shot scheduler returns the target uncapped.
  CHECK(config_from_json(
            json::parse(R"({"pattern": "mha", "target_sparsity": 0.8, "max_sparsity_ratio_per_op": 0.5})"))
            .target_sparsity == 0.8);
  // Without pattern the key is mhaprune's per-block cap and the target stays.
  const PrunerConfig ours = config_from_json(
      json::parse(R"({"end_step": 10, "target_sparsity": 0.8, "max_sparsity_ratio_per_op": 0.5})"));
  CHECK(ours.target_sparsity == 0.8);
  CHECK(ours.max_sparsity_ratio_per_op == 0.5);
  CHECK(ours.selection_options().max_ratio_per_block == 0.5);
}

TEST_CASE("INC config: keys mhaprune ignores are accepted and listed once in one warning",
          "[pruner][config][inc]") {
  const json j = json::parse(R"({
    "pruning_configs": [
      {"op_names": ["layers\\.0\\."], "reg_type": "group_lasso", "pruning_type": "snip_momentum"},
      {"op_names": ["layers\\.1\\."], "parameters": {"reg_coeff": 0.1}}
    ],
    "pattern": "mha", "pruning_type": "snip_momentum_progressive", "min_sparsity_ratio_per_op": 0.0,
    "pruning_op_types": ["Linear"], "low_memory_usage": false, "lock_init_sparsity": false,
    "criterion_type": "magnitude", "target_sparsity": 0.5
  })");
  const PruningPlan plan = mhaprune::pruning_plan_from_json(j);
  REQUIRE(plan.configs.size() == 2);
  REQUIRE(plan.warnings.size() == 1);
  CHECK(
      plan.warnings[0] ==
      "Intel Neural Compressor config keys accepted and ignored (mhaprune does not use them): pruning_type, "
      "min_sparsity_ratio_per_op, pruning_op_types, low_memory_usage, lock_init_sparsity, reg_type, "
      "parameters");
  // A single config warns through config_from_json's list.
  std::vector<std::string> warnings;
  config_from_json(json::parse(R"({"pattern": "mha", "reg_coeff": 0.2, "criterion_type": "magnitude"})"),
                   mhaprune::criterion_registry(), &warnings);
  REQUIRE(warnings.size() == 1);
  CHECK_THAT(warnings[0], Catch::EndsWith("(mhaprune does not use them): reg_coeff"));
}

TEST_CASE("INC config: pruning_configs inherit the global keys; each local key wins",
          "[pruner][config][inc]") {
  const json j = json::parse(R"({
    "pruning_configs": [
      {"op_names": ["layers\\.[01]\\."], "target_sparsity": 0.25, "pruning_scope": "local"},
      {"op_names": ["layers\\.[23]\\."], "criterion_reduce_type": "sum", "target_sparsity": null},
      {"excluded_op_names": ["layers\\.[0-3]\\."], "pattern": "mha"}
    ],
    "target_sparsity": 0.5, "criterion_type": "random", "sparsity_decay_type": "cos", "start_step": 2,
    "end_step": 6
  })");
  const PruningPlan plan = mhaprune::pruning_plan_from_json(j);
  REQUIRE(plan.configs.size() == 3);
  CHECK(plan.warnings.empty());
  const PrunerConfig& a = plan.configs[0].config;
  CHECK(a.target_sparsity == 0.25);
  CHECK(a.pruning_scope == PruningScope::local);
  CHECK(a.criterion_type == "random");
  CHECK(a.sparsity_decay_type == Decay::cos);
  CHECK(a.start_step == 2);
  CHECK(a.end_step == 6);
  CHECK(plan.configs[0].op_names == std::vector<std::string>{"layers\\.[01]\\."});
  const PrunerConfig& b = plan.configs[1].config;
  CHECK(b.target_sparsity == 0.5);  // null: the global value, as INC's reset_none_to_default
  CHECK(b.criterion_reduce_type == Reduction::sum);
  CHECK(b.pruning_scope == PruningScope::global);
  // The third names pattern: INC's defaults for what neither it nor the globals give, INC's meaning.
  const PrunerConfig& c = plan.configs[2].config;
  CHECK(c.criterion_type == "random");
  CHECK(c.target_sparsity == 0.5);
  CHECK(c.max_sparsity_ratio_per_op == 1.0);
  CHECK(plan.configs[2].op_names.empty());
  CHECK(plan.configs[2].excluded_op_names == std::vector<std::string>{"layers\\.[0-3]\\."});
  CHECK_FALSE(plan.is_single());

  // One local config, or an empty list: a single config, which config_from_json reads too.
  const json one =
      json::parse(R"({"pruning_configs": [{"target_sparsity": 0.3}], "pruning_scope": "local"})");
  CHECK(config_from_json(one).target_sparsity == 0.3);
  CHECK(config_from_json(one).pruning_scope == PruningScope::local);
  CHECK(mhaprune::pruning_plan_from_json(one).is_single());
  const json empty = json::parse(R"({"pruning_configs": [], "target_sparsity": 0.4})");
  CHECK(config_from_json(empty).target_sparsity == 0.4);
  // A plain mhaprune config is a plan of one.
  const PruningPlan plain = mhaprune::pruning_plan_from_json(json::parse(R"({"target_sparsity": 0.2})"));
  REQUIRE(plain.is_single());
  CHECK(plain.configs[0].config.target_sparsity == 0.2);
}

TEST_CASE("INC config: what a PrunerConfig cannot hold, other patterns and unknown keys are config errors",
          "[pruner][config][inc]") {
  const json two =
      json::parse(R"({"pruning_configs": [{"target_sparsity": 0.3}, {"target_sparsity": 0.4}]})");
  CHECK_THAT(error_of(two),
             Catch::Contains("holds 2 pruning_configs") && Catch::Contains("pruning_plan_from_json"));
  CHECK_THAT(error_of(json::parse(R"({"op_names": ["layers\\.0\\."]})")),
             Catch::Contains("selects blocks") && Catch::Contains("pruning_plan_from_json"));

  CHECK(error_of(json::parse(R"({"pattern": "4x1"})")) ==
        "config key \"pattern\": \"4x1\" is not supported: mhaprune prunes attention heads, which is INC's "
        "\"mha\" pattern; give \"pattern\": \"mha\" or leave the key out");
  CHECK_THAT(error_of(json::parse(R"({"pattern": 1})")), Catch::Contains("mhaprune prunes attention heads"));
  CHECK_THAT(plan_error_of(json::parse(R"({"pruning_configs": [{}, {"pattern": "channelx1"}]})")),
             Catch::StartsWith("pruning_configs[1]: config key \"pattern\": \"channelx1\""));

  // Unknown keys: the closest known key, mhaprune's or INC's.
  CHECK_THAT(error_of(json::parse(R"({"target_sparsty": 0.3})")),
             Catch::StartsWith("unknown config key \"target_sparsty\"; did you mean \"target_sparsity\"?"));
  CHECK_THAT(error_of(json::parse(R"({"pruning_tpye": "snip"})")),
             Catch::Contains("did you mean \"pruning_type\"?"));
  CHECK_THAT(error_of(json::parse(R"({"op_name": ["x"]})")), Catch::Contains("did you mean \"op_names\"?"));
  CHECK_THAT(error_of(json::parse(R"({"gqa": "whole_groups"})")),
             Catch::Contains("did you mean \"gqa_mode\"?"));
  CHECK_THAT(
      plan_error_of(json::parse(R"({"pruning_configs": [{"min_head": 2}]})")),
      Catch::StartsWith("pruning_configs[0]: unknown config key \"min_head\"; did you mean \"min_heads\"?"));

  // The layout and the block lists.
  CHECK_THAT(error_of(json::parse(R"({"pruning_configs": {"target_sparsity": 0.3}})")),
             Catch::Contains("\"pruning_configs\": expected a list of config objects"));
  CHECK_THAT(plan_error_of(json::parse(R"({"pruning_configs": [0.3]})")),
             Catch::Contains("pruning_configs[0]: expected a config object, got 0.3"));
  CHECK_THAT(plan_error_of(json::parse(R"({"pruning_configs": [{"pruning_configs": []}]})")),
             Catch::Contains("cannot hold pruning_configs"));
  CHECK_THAT(plan_error_of(json::parse(R"({"op_names": ["layers.(0"]})")),
             Catch::Contains("config key \"op_names\": \"layers.(0\" is not a valid regular expression"));
  CHECK_THAT(plan_error_of(json::parse(R"({"excluded_op_names": [1]})")),
             Catch::Contains("\"excluded_op_names\": expected a list of regular expressions"));
  // A bad value in a local config names it.
  CHECK_THAT(plan_error_of(json::parse(R"({"pruning_configs": [{}, {"target_sparsity": 2}]})")),
             Catch::StartsWith("pruning_configs[1]: config key \"target_sparsity\": 2 is outside [0, 1]"));
}

TEST_CASE("PruningPlan: which blocks each config takes, by regexes searched in block names",
          "[pruner][config][inc]") {
  const PruningPlan plan = mhaprune::pruning_plan_from_json(json::parse(R"({"pruning_configs": [
      {"op_names": ["layers\\.[01]\\.self_attn"]},
      {"op_names": ["layers\\.[23]\\."], "excluded_op_names": ["layers\\.3\\."]}
  ]})"));
  const std::vector<std::string> names{"model.layers.0.self_attn", "model.layers.1.self_attn",
                                       "model.layers.2.self_attn", "model.layers.3.self_attn",
                                       "model.layers.10.self_attn"};
  CHECK(plan.owners(names) == std::vector<std::ptrdiff_t>{0, 0, 1, -1, -1});
  CHECK(plan.describe(1) == "op_names [layers\\.[23]\\.], excluded_op_names [layers\\.3\\.]");

  // No op_names: every block (INC's [".*"]).
  const PruningPlan all =
      mhaprune::pruning_plan_from_json(json::parse(R"({"excluded_op_names": "blk\\.0$"})"));
  CHECK(all.owners({"blk.0", "blk.1", "blk.10"}) == std::vector<std::ptrdiff_t>{-1, 0, 0});

  const PruningPlan overlapping = mhaprune::pruning_plan_from_json(
      json::parse(R"({"pruning_configs": [{"op_names": ["layers\\.1"]}, {"op_names": ["self_attn"]}]})"));
  const std::string what = exact_message<config_error>([&] { overlapping.owners(names); });
  CHECK(what ==
        "block \"model.layers.1.self_attn\" is taken by pruning_configs[0] (op_names [layers\\.1]) and by "
        "pruning_configs[1] (op_names [self_attn]); give each block to one config (op_names, "
        "excluded_op_names)");
}

TEST_CASE("select_by_plan: each config prunes its own group of blocks by its own settings",
          "[pruner][config][inc]") {
  const PruningPlan plan = mhaprune::pruning_plan_from_json(json::parse(R"({"pruning_configs": [
      {"op_names": ["layers\\.[01]\\."], "target_sparsity": 0.5},
      {"op_names": ["layers\\.[23]\\."], "target_sparsity": 0.25, "pruning_scope": "local"}
  ]})"));
  const std::vector<mhaprune::BlockScores> blocks{
      fresh_block("model.layers.0.self_attn", 4, {0.1, 0.2, 5.0, 6.0}),
      fresh_block("model.layers.1.self_attn", 4, {7.0, 8.0, 0.3, 9.0}),
      fresh_block("model.layers.2.self_attn", 4, {1.0, 2.0, 3.0, 4.0}),
      fresh_block("model.layers.3.self_attn", 4, {0.05, 10.0, 11.0, 12.0}),
      fresh_block("model.layers.4.self_attn", 4, {0.01, 0.02, 0.03, 0.04}),
  };
  std::vector<std::string> names;
  for (const auto& b : blocks) names.push_back(b.name);
  const auto owners = plan.owners(names);
  REQUIRE(owners == std::vector<std::ptrdiff_t>{0, 0, 1, 1, -1});
  const mhaprune::Selection chosen = mhaprune::select_by_plan(plan, owners, {blocks, blocks});
  // Group 0, global, 4 of its 8 heads: 0.1, 0.2, 0.3 and 5.0 (block 0 keeps one head, its 6.0).
  // Group 1, local, 1 of 4 heads in each block: its lowest. Block 4 is in no group. A single global
  // ranking of all heads would have taken block 4's heads first.
  const mhaprune::Selection expected{{0, 1, 2}, {2}, {0}, {0}, {}};
  CHECK(chosen == expected);

  CHECK_THROWS_WITH(mhaprune::select_by_plan(plan, owners, {blocks}),
                    Catch::Contains("1 score lists for 2 configs"));
}

TEST_CASE("Name tables: one list of names per enum feeds to_string, parsing and the JSON reader",
          "[pruner][config]") {
  CHECK(mhaprune::pruning_scope_names.joined() == "global, local");
  CHECK(mhaprune::reduction_table.joined("|") == "mean|sum|max|l2");
  CHECK(mhaprune::decay_names.joined() == "linear, cube, cos, exp");
  CHECK(mhaprune::gqa_mode_names.joined() == "uniform_per_group, whole_groups");
  CHECK(mhaprune::normalization_names.joined() == "none, l2, standardize");
  CHECK(mhaprune::compensation_table.joined() == "none, bias, scale, lsq, obs, bias+lsq");
  for (const auto& e : mhaprune::pruning_scope_names.entries) {
    CHECK(mhaprune::parse_pruning_scope(e.second) == e.first);
    CHECK(config_from_json(json{{"pruning_scope", e.second}}).pruning_scope == e.first);
  }
  for (const auto& e : mhaprune::gqa_mode_names.entries) {
    CHECK(mhaprune::parse_gqa_mode(e.second) == e.first);
    CHECK(json(config_from_json(json{{"gqa_mode", e.second}}))["gqa_mode"] == e.second);
  }
  for (const auto& e : mhaprune::normalization_names.entries) {
    CHECK(std::string(mhaprune::to_string(e.first)) == e.second);
    CHECK(config_from_json(json{{"normalization", e.second}}).normalization == e.first);
  }
  for (const auto& e : mhaprune::compensation_table.entries)
    CHECK(config_from_json(json{{"compensation", e.second}}).compensation == e.first);
  CHECK(config_from_json(json{{"compensation", "lsq+bias"}}).compensation ==
        mhaprune::CompensationMethod::bias_lsq);
  CHECK_THAT(error_of(json{{"compensation", "ridge"}}),
             Catch::Contains("\"ridge\" is not one of: none, bias, scale, lsq, obs, bias+lsq"));
  CHECK_THAT(exact_message<config_error>([] { mhaprune::parse_gqa_mode("groups"); }),
             Catch::Contains("\"groups\"; valid: uniform_per_group, whole_groups"));
  CHECK_THAT(exact_message<config_error>([] { mhaprune::parse_normalization("zscore"); }),
             Catch::Contains("\"zscore\"; valid: none, l2, standardize"));
  CHECK_THAT(exact_message<config_error>([] { mhaprune::parse_pruning_scope("layer"); }),
             Catch::Contains("\"layer\"; valid: global, local"));
  CHECK(std::string(mhaprune::to_string(static_cast<PruningScope>(9))) == "?");
}

TEST_CASE("edit distance for \"did you mean\"", "[pruner][config][inc]") {
  using mhaprune::detail::edit_distance;
  CHECK(edit_distance("kitten", "sitting") == 3);
  CHECK(edit_distance("", "abc") == 3);
  CHECK(edit_distance("abc", "abc") == 0);
  CHECK(edit_distance("op_name", "op_names") == 1);
  CHECK(mhaprune::detail::closest_name("seeed", {"seed", "end_step"}) == "seed");
  // A key that is part of a known one is taken for it, though "seed" is fewer edits from "gqa".
  CHECK(mhaprune::detail::closest_name("gqa", {"seed", "gqa_mode"}) == "gqa_mode");
  CHECK(mhaprune::detail::closest_name("min_heads_per_block", {"min_heads", "round_to"}) == "min_heads");
}

}  // namespace test_pruner_inc_config
