// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// The prune report and its JSON: the stable field names other tools read
// ({"blocks": [{"name", "heads_before", "heads_after", "removed", "scores", ...}], "totals": {...}}),
// with values checked against the blocks themselves: scores (computed here) one per head present
// before, in original-id order, on blocks pruned twice so that the ids have gaps; parameter and FLOP
// totals from the tensors' real sizes, biases and per-head extras included.

#include <Eigen/Core>
#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <mhaprune/mhaprune.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "support/pruner_model.hpp"
#include "support/random_block.hpp"

namespace test_prune_report {

namespace {

using mhaprune::ExplicitSelection;
using mhaprune::HeadLayout;
using mhaprune::Index;
using mhaprune::Magnitude;
using mhaprune::MhaPruner;
using mhaprune::OriginalIds;
using mhaprune::PruneReport;
using nlohmann::json;
using pruner_test::Model;

/// The ids in `before` that are not in `after`.
std::vector<Index> gone(const std::vector<Index>& before, const std::vector<Index>& after) {
  std::vector<Index> out;
  for (Index id : before)
    if (std::find(after.begin(), after.end(), id) == after.end()) out.push_back(id);
  return out;
}

void require_keys(const json& j, const std::vector<std::string>& keys) {
  for (const std::string& k : keys) {
    INFO("key " << k);
    CHECK(j.contains(k));
  }
}

const std::vector<std::string> kBlockKeys{
    "name",       "heads_before",      "heads_after",     "removed",
    "scores",     "head_ids",          "kv_heads_before", "kv_heads_after",
    "removed_kv", "parameters_before", "parameters_after"};
const std::vector<std::string> kTotalKeys{"heads_before",
                                          "heads_after",
                                          "heads_removed",
                                          "kv_heads_before",
                                          "kv_heads_after",
                                          "parameters_before",
                                          "parameters_after",
                                          "parameters_removed",
                                          "projection_flops_per_token_before",
                                          "projection_flops_per_token_after",
                                          "projection_flops_per_token_saved",
                                          "attention_flops_per_context_token_before",
                                          "attention_flops_per_context_token_after"};

}  // namespace

TEST_CASE("Report JSON: stable names, and values from a model pruned twice", "[pruner][report]") {
  const HeadLayout L = HeadLayout::mha(6, 2, 8);
  Model<float> model(pruner_test::uniform_specs(2, L), 201, /*biases=*/true);

  // First call: explicit ids, so that the second call sees gaps.
  MhaPruner<Magnitude, ExplicitSelection>(
      Magnitude{},
      ExplicitSelection().remove("layers.0", OriginalIds{1, 4}).remove("layers.1", OriginalIds{0, 5}))
      .prune(model.blocks, 0.0);
  REQUIRE(model.blocks[0].head_ids() == std::vector<Index>{0, 2, 3, 5});
  REQUIRE(model.blocks[1].head_ids() == std::vector<Index>{1, 2, 3, 4});

  // What the second call starts from, measured here.
  std::vector<std::vector<Index>> ids_before;
  std::vector<Eigen::VectorXd> scores_before;
  std::vector<std::int64_t> params_before, weights_before;
  for (std::size_t i = 0; i < 2; ++i) {
    ids_before.push_back(model.blocks[i].head_ids());
    scores_before.push_back(pruner_test::magnitude_scores(model.tensors(i), model.blocks[i].layout()));
    params_before.push_back(model.parameters(i));
    weights_before.push_back(model.weight_elements(i));
  }

  // 12 original heads, target 0.5: 6 gone in all, 4 already, so 2 more.
  const PruneReport report = MhaPruner<>().prune(model.blocks, 0.5);
  const json j = report;
  const json parsed = json::parse(j.dump());  // what another tool reads
  CHECK(parsed == j);

  REQUIRE(parsed.contains("blocks"));
  REQUIRE(parsed.contains("totals"));
  CHECK(parsed.at("target").get<double>() == 0.5);
  REQUIRE(parsed.at("blocks").is_array());
  REQUIRE(parsed.at("blocks").size() == 2);
  Index removed_total = 0;
  for (std::size_t i = 0; i < 2; ++i) {
    const json& b = parsed.at("blocks").at(i);
    INFO("block " << i);
    require_keys(b, kBlockKeys);
    CHECK(b.at("name").get<std::string>() == "layers." + std::to_string(i));
    CHECK(b.at("heads_before").get<Index>() == 4);
    CHECK(b.at("heads_after").get<Index>() == model.blocks[i].layout().heads());
    CHECK(b.at("heads_after").get<Index>() == model.tensors(i).q.rows() / 2);
    const auto removed = b.at("removed").get<std::vector<Index>>();
    CHECK(removed == gone(ids_before[i], model.blocks[i].head_ids()));
    CHECK(std::is_sorted(removed.begin(), removed.end()));
    removed_total += static_cast<Index>(removed.size());
    // Multi-head attention: each removed query head takes its own key/value head.
    CHECK(b.at("removed_kv").get<std::vector<Index>>() == removed);
    CHECK(b.at("head_ids").get<std::vector<Index>>() == ids_before[i]);
    // One score per head present before, in original-id order (ids with gaps).
    const auto scores = b.at("scores").get<std::vector<double>>();
    REQUIRE(scores.size() == ids_before[i].size());
    for (std::size_t k = 0; k < scores.size(); ++k)
      CHECK(scores[k] == Approx(scores_before[i](static_cast<Index>(k))).epsilon(1e-6));
    // The ranking was global, so within a block every removed head scored below every kept one.
    for (Index id : removed)
      for (Index keep : model.blocks[i].head_ids()) {
        const auto at = [&](Index x) {
          return static_cast<std::size_t>(std::find(ids_before[i].begin(), ids_before[i].end(), x) -
                                          ids_before[i].begin());
        };
        CHECK(scores[at(id)] < scores[at(keep)]);
      }
    CHECK(b.at("parameters_before").get<std::int64_t>() == params_before[i]);
    CHECK(b.at("parameters_after").get<std::int64_t>() == model.parameters(i));
    CHECK(b.at("kv_heads_after").get<Index>() == model.tensors(i).k.rows() / 2);
  }
  CHECK(removed_total == 2);

  const json& t = parsed.at("totals");
  require_keys(t, kTotalKeys);
  CHECK(t.at("heads_before").get<Index>() == 8);
  CHECK(t.at("heads_after").get<Index>() == 6);
  CHECK(t.at("heads_removed").get<Index>() == 2);
  CHECK(t.at("kv_heads_before").get<Index>() == 8);
  CHECK(t.at("kv_heads_after").get<Index>() == 6);
  const std::int64_t pb = params_before[0] + params_before[1], pa = model.parameters(0) + model.parameters(1);
  CHECK(t.at("parameters_before").get<std::int64_t>() == pb);
  CHECK(t.at("parameters_after").get<std::int64_t>() == pa);
  CHECK(t.at("parameters_removed").get<std::int64_t>() == pb - pa);
  // Projections: 2 FLOPs per weight element per token.
  const std::int64_t fb = 2 * (weights_before[0] + weights_before[1]);
  const std::int64_t fa = 2 * (model.weight_elements(0) + model.weight_elements(1));
  CHECK(t.at("projection_flops_per_token_before").get<std::int64_t>() == fb);
  CHECK(t.at("projection_flops_per_token_after").get<std::int64_t>() == fa);
  CHECK(t.at("projection_flops_per_token_saved").get<std::int64_t>() == fb - fa);
  // Scores and context: 4*H*d per token of context.
  CHECK(t.at("attention_flops_per_context_token_before").get<std::int64_t>() == 4 * 8 * 2);
  CHECK(t.at("attention_flops_per_context_token_after").get<std::int64_t>() ==
        4 * (model.tensors(0).q.rows() + model.tensors(1).q.rows()));
}

TEST_CASE("Report: parameters count every bound tensor, biases and extras, in any storage",
          "[pruner][report]") {
  using namespace mhaprune_test;
  BlockConfig config;
  config.name = "fused";
  config.heads = 8;
  config.kv_heads = 2;
  config.head_dim = 2;
  config.model_dim = 8;
  config.qkv = QkvLayout::concat;
  config.storage.container = Container::buffer;
  config.storage.slack = 3;  // capacity beyond the shape is not a parameter
  config.qkv_bias = true;
  config.output_bias = true;
  config.extras = true;
  RandomBlock<float> block(config, 7);
  auto elements = [&] {
    std::int64_t n = 0;
    for (const auto& e : block.entries()) n += e->tensor->rows() * e->tensor->cols();
    return n;
  };
  const std::int64_t initial = elements();
  std::vector<mhaprune::AttentionBlock<float>*> blocks{&block.block()};

  // Whole groups first: one of the two key/value groups goes with its 4 query heads.
  mhaprune::SelectionOptions o;
  o.gqa_mode = mhaprune::GqaMode::whole_groups;
  MhaPruner<Magnitude, mhaprune::LocalSelection> groups(Magnitude{}, mhaprune::LocalSelection{},
                                                        mhaprune::OneshotSchedule{}, o);
  const PruneReport first = groups.prune(blocks, 0.5);
  CHECK(block.check_contents() == "");
  REQUIRE(first.blocks.size() == 1);
  const auto& f = first.blocks[0];
  CHECK(f.before.parameters == initial);
  CHECK(f.after.parameters == elements());
  CHECK(f.before.kv_heads == 2);
  CHECK(f.after.kv_heads == 1);
  REQUIRE(f.removed_kv.size() == 1);
  const Index g = f.removed_kv[0];
  CHECK(f.removed == std::vector<Index>{4 * g, 4 * g + 1, 4 * g + 2, 4 * g + 3});

  // Then uniform per group: 0.75 of 8 is 6 gone, 4 already, so 2 more from the group left.
  o.gqa_mode = mhaprune::GqaMode::uniform_per_group;
  groups.set_options(o);
  const std::vector<Index> ids = block.block().head_ids();
  const PruneReport second = groups.prune(blocks, 0.75);
  CHECK(block.check_contents() == "");
  const json j = second;
  const json& b = j.at("blocks").at(0);
  CHECK(b.at("name") == "fused");
  CHECK(b.at("head_ids").get<std::vector<Index>>() == ids);
  CHECK(b.at("scores").size() == 4);
  CHECK(b.at("heads_before") == 4);
  CHECK(b.at("heads_after") == 2);
  CHECK(b.at("removed").get<std::vector<Index>>() == gone(ids, block.block().head_ids()));
  CHECK(b.at("removed_kv").empty());
  CHECK(b.at("kv_heads_after") == 1);
  CHECK(b.at("parameters_after").get<std::int64_t>() == elements());
  CHECK(j.at("totals").at("parameters_removed").get<std::int64_t>() ==
        b.at("parameters_before").get<std::int64_t>() - elements());
  // The fused [Q|K|V] rows and O columns give the projection FLOPs: 2 per weight element.
  const std::int64_t weights = block.tensor("qkv.weight").rows() * block.tensor("qkv.weight").cols() +
                               block.tensor("output.weight").rows() * block.tensor("output.weight").cols();
  CHECK(j.at("totals").at("projection_flops_per_token_after").get<std::int64_t>() == 2 * weights);
}

TEST_CASE("Report JSON: an empty call still has every field", "[pruner][report]") {
  const PruneReport empty;
  const json j = empty;
  CHECK(j.at("blocks").is_array());
  CHECK(j.at("blocks").empty());
  require_keys(j.at("totals"), kTotalKeys);
  CHECK(j.at("totals").at("heads_before") == 0);
  CHECK(j.at("totals").at("parameters_removed") == 0);

  // A call that removes nothing reports before == after.
  Model<double> model(pruner_test::uniform_specs(1, HeadLayout::mha(4, 2, 8)), 5);
  const json none =
      MhaPruner<Magnitude, mhaprune::GlobalSelection, mhaprune::OneshotSchedule, double>().prune(
          model.blocks, 0.1);  // floor(0.4) = 0
  const json& b = none.at("blocks").at(0);
  CHECK(b.at("removed").empty());
  CHECK(b.at("heads_before") == b.at("heads_after"));
  CHECK(b.at("scores").size() == 4);
  CHECK(none.at("totals").at("heads_removed") == 0);
  CHECK(none.at("totals").at("projection_flops_per_token_saved") == 0);
}

}  // namespace test_prune_report
