// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
// The bundled tiny checkpoints: detection, pruning, read-back, config sections, re-pruning.

#include <catch2/catch.hpp>

#include "test_checkpoint_support.hpp"

namespace test_checkpoint_bundled {

using namespace test_checkpoint_support;

const std::string qwen2_dir = MHAPRUNE_TEST_SOURCE_DIR "/data/tiny-qwen2";
const std::string bert_dir = MHAPRUNE_TEST_SOURCE_DIR "/data/tiny-bert";

TEST_CASE("checkpoint: tiny-qwen2 is detected with its GQA layout", "[checkpoint]") {
  const auto c = ck::Checkpoint::open(qwen2_dir);
  CHECK(c.architecture() == "llama");
  CHECK(c.detected_from() == "config.json model_type \"qwen2\"");
  REQUIRE(c.blocks().size() == 4);
  const auto& b = c.blocks()[2];
  CHECK(b.index == 2);
  CHECK(b.layer == 2);
  CHECK(b.name == "model.layers.2.self_attn");
  CHECK(b.layout == mhaprune::HeadLayout(8, 2, 16, 128));
  CHECK(b.o_weight_name == "model.layers.2.self_attn.o_proj.weight");
  CHECK(b.stats_key() == "model.layers.2.self_attn.o_proj");
  CHECK(b.dtype == io::Dtype::BF16);
  CHECK(b.tensor_names.size() == 7);  // q/k/v/o weights, q/k/v biases
  CHECK(b.head_ids == std::vector<Index>{0, 1, 2, 3, 4, 5, 6, 7});
  CHECK(b.kv_head_ids == std::vector<Index>{0, 1});
  CHECK(c.parameter_count() > 0);
}

TEST_CASE("checkpoint: tiny-qwen2 pruned globally reads back with kept values bit-identical (BF16)",
          "[checkpoint]") {
  TempDir tmp;
  const auto in = ck::Checkpoint::open(qwen2_dir);
  std::vector<ck::Progress> seen;
  auto options = sparsity(0.25);
  options.progress = [&seen](const ck::Progress& p) { seen.push_back(p); };
  const auto report = ck::prune_checkpoint(in, tmp / "out", options);
  CHECK(report.heads_removed() == 8);  // 25% of 32
  REQUIRE(seen.size() == 8);
  CHECK(seen.front().stage == "score");
  CHECK(seen.back().stage == "write");
  CHECK(seen.back().done == 4);

  const auto out = ck::Checkpoint::open(tmp / "out");
  check_pruned(in, out, /*causal=*/true);
  // Kept Q rows bit-identical, read straight from the files.
  for (std::size_t i = 0; i < in.blocks().size(); ++i) {
    const auto& bo = out.blocks()[i];
    const auto qi = in.reader().tensor(in.blocks()[i].tensors.q).bytes();
    const auto qo = out.reader().tensor(bo.tensors.q).bytes();
    const std::size_t row = 128 * 2;  // bytes of one BF16 row
    for (std::size_t p = 0; p < bo.head_ids.size(); ++p) {
      const auto id = static_cast<std::size_t>(bo.head_ids[p]);
      CHECK(std::memcmp(qo.data() + p * 16 * row, qi.data() + id * 16 * row, 16 * row) == 0);
    }
  }
  // Everything but the weights and config.json is copied through.
  CHECK(list_dir(tmp / "out") == list_dir(qwen2_dir));
  CHECK(read_file(tmp / "out/reference_nll.json") == read_file(qwen2_dir + "/reference_nll.json"));
  CHECK(out.reader().shard(out.reader().shard_files().front()).metadata() ==
        in.reader().shard(in.reader().shard_files().front()).metadata());

  const auto config = read_json(tmp / "out/config.json");
  const auto& section = config.at("mhaprune");
  CHECK(section.at("original_num_attention_heads") == 8);
  CHECK(section.at("original_num_key_value_heads") == 2);
  CHECK(section.at("head_dim") == 16);
  REQUIRE(section.at("layers").size() == 4);
  // The magnitude scores decide. A GQA block loses one head per key/value group at a time
  // (uniform_per_group), and the exact programme takes the 4 such pairs of least total score. Every
  // head of layer 0 scores below every head of the other layers (at most 0.036, against 0.037 and
  // up), so layer 0 gives three pairs, down to its best head of each group (3 and 7; a fourth pair
  // would empty its groups); the cheapest pair elsewhere is layer 1's weakest of each group, heads 2
  // and 4 (0.080, against 0.085 in layer 2 and 0.092 in layer 3).
  const std::vector<std::vector<Index>> removed{{0, 1, 2, 4, 5, 6}, {2, 4}, {}, {}};
  const Index heads[] = {2, 6, 8, 8};
  for (std::size_t i = 0; i < 4; ++i) {
    const auto& l = section.at("layers")[i];
    CHECK(report.blocks[i].removed == removed[i]);
    CHECK(out.blocks()[i].layout.heads() == heads[i]);
    CHECK(l.at("name") == out.blocks()[i].name);
    CHECK(l.at("num_attention_heads") == heads[i]);
    CHECK(l.at("head_ids").get<std::vector<Index>>() == out.blocks()[i].head_ids);
    CHECK(l.at("removed_heads").get<std::vector<Index>>() == removed[i]);
  }
  // The layers differ in head count, so the top-level count stays the original one; the per-layer
  // counts are in the mhaprune section.
  CHECK(config.at("num_attention_heads") == 8);
  CHECK(config.at("num_key_value_heads") == 2);
  CHECK_FALSE(config.contains("pruned_heads"));
  CHECK(config.at("model_type") == "qwen2");
}

TEST_CASE("checkpoint: tiny-qwen2 local scope gives uniform layers and updated counts", "[checkpoint]") {
  TempDir tmp;
  const auto in = ck::Checkpoint::open(qwen2_dir);
  const auto report = ck::prune_checkpoint(in, tmp / "out", sparsity(0.5, "local"));
  CHECK(report.heads_removed() == 16);
  const auto out = ck::Checkpoint::open(tmp / "out");
  check_pruned(in, out, true);
  const auto config = read_json(tmp / "out/config.json");
  CHECK(config.at("num_attention_heads") == 4);
  CHECK(config.at("num_key_value_heads") == 2);
  CHECK(config.at("head_dim") == 16);
  CHECK(config.at("hidden_size") == 128);
  for (const auto& b : out.blocks()) CHECK(b.layout == mhaprune::HeadLayout(4, 2, 16, 128));
}

TEST_CASE("checkpoint: tiny-bert pruned, re-pruned with original ids, pruned_heads merged (F32)",
          "[checkpoint]") {
  TempDir tmp;
  const auto in = ck::Checkpoint::open(bert_dir);
  CHECK(in.architecture() == "bert");
  REQUIRE(in.blocks().size() == 4);
  CHECK(in.blocks()[0].name == "bert.encoder.layer.0.attention");
  CHECK(in.blocks()[0].layout == mhaprune::HeadLayout(4, 4, 16, 64));

  auto options = sparsity(0);
  options.explicit_heads = std::map<Index, std::vector<Index>>{{0, {1, 3}}, {2, {0}}};
  const auto first = ck::prune_checkpoint(in, tmp / "once", options);
  CHECK(first.blocks[0].removed == std::vector<Index>{1, 3});
  CHECK(first.blocks[2].removed == std::vector<Index>{0});
  const auto once = ck::Checkpoint::open(tmp / "once");
  check_pruned(in, once);
  CHECK(once.blocks()[0].head_ids == std::vector<Index>{0, 2});
  CHECK(once.blocks()[0].layout.heads() == 2);
  // Kept Q rows bit-identical, straight from the files (F32 rows of 64 values).
  const auto qi = in.reader().tensor("bert.encoder.layer.0.attention.self.query.weight").bytes();
  const auto qo = once.reader().tensor("bert.encoder.layer.0.attention.self.query.weight").bytes();
  CHECK(std::memcmp(qo.data(), qi.data(), 16 * 256) == 0);
  CHECK(std::memcmp(qo.data() + 16 * 256, qi.data() + 2 * 16 * 256, 16 * 256) == 0);

  auto config = read_json(tmp / "once/config.json");
  CHECK(config.at("num_attention_heads") == 4);  // BERT's loader re-applies pruned_heads
  CHECK(config.at("pruned_heads") == nlohmann::json{{"0", {1, 3}}, {"2", {0}}});

  // Second round: ids stay original; the report, sections and pruned_heads are cumulative.
  auto again = sparsity(0);
  again.explicit_heads = std::map<Index, std::vector<Index>>{{0, {2}}, {1, {3}}};
  const auto second = ck::prune_checkpoint(once, tmp / "twice", again);
  CHECK(second.blocks[0].head_ids == std::vector<Index>{0, 2});
  CHECK(second.blocks[0].removed == std::vector<Index>{2});
  const auto twice = ck::Checkpoint::open(tmp / "twice");
  check_pruned(once, twice);
  CHECK(twice.blocks()[0].head_ids == std::vector<Index>{0});
  CHECK(twice.blocks()[1].head_ids == std::vector<Index>{0, 1, 2});
  config = read_json(tmp / "twice/config.json");
  CHECK(config.at("pruned_heads") == nlohmann::json{{"0", {1, 2, 3}}, {"1", {3}}, {"2", {0}}});
  CHECK(config.at("mhaprune").at("layers")[0].at("removed_heads") == nlohmann::json{1, 2, 3});
  CHECK(config.at("mhaprune").at("layers")[3].at("removed_heads") == nlohmann::json::array());

  // An id already removed is refused, naming it; nothing is written.
  auto gone = sparsity(0);
  gone.explicit_heads = std::map<Index, std::vector<Index>>{{0, {1}}};
  CHECK_THROWS_AS(ck::prune_checkpoint(twice, tmp / "thrice", gone), mhaprune::head_id_error);
  CHECK_FALSE(exists(tmp / "thrice"));
}

TEST_CASE("checkpoint: score_checkpoint removes nothing and reports every head", "[checkpoint]") {
  const auto in = ck::Checkpoint::open(bert_dir);
  ck::PruneOptions options;
  const auto report = ck::score_checkpoint(in, options);
  REQUIRE(report.blocks.size() == 4);
  CHECK(report.heads_removed() == 0);
  CHECK(report.blocks[1].scores.size() == 4);
  CHECK(report.blocks[1].after.parameters == report.blocks[1].before.parameters);
  // 4 * 64 * 64 weights + 4 * 64 biases.
  CHECK(report.blocks[1].before.parameters == 4 * 64 * 64 + 4 * 64);
}

TEST_CASE("checkpoint: a criterion that needs statistics names the block and the key", "[checkpoint]") {
  TempDir tmp;
  const auto in = ck::Checkpoint::open(qwen2_dir);
  auto options = sparsity(0.25);
  options.config.criterion_type = "wanda_sp";
  try {
    ck::prune_checkpoint(in, tmp / "out", options);
    FAIL("expected evidence_error");
  } catch (const mhaprune::evidence_error& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("model.layers.0.self_attn"));
    CHECK_THAT(what, Catch::Contains("\"model.layers.0.self_attn.o_proj\""));
  }
  CHECK_FALSE(exists(tmp / "out"));
}

}  // namespace test_checkpoint_bundled
