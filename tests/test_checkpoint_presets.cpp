// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
// Every built-in preset on small synthetic checkpoints: detection, pruning, read-back, config.

#include <catch2/catch.hpp>

#include "test_checkpoint_support.hpp"

namespace test_checkpoint_presets {

using namespace test_checkpoint_support;

TEST_CASE("checkpoint presets: BERT with any prefix", "[checkpoint]") {
  for (const std::string prefix : {"bert.", "roberta.", ""}) {
    INFO("prefix \"" << prefix << "\"");
    TempDir tmp;
    Spec s;
    s.prefix = prefix;
    mkdir((tmp / "in").c_str(), 0777);
    make_bert(tmp / "in", s);
    const auto in = ck::Checkpoint::open(tmp / "in");
    CHECK(in.architecture() == "bert");
    REQUIRE(in.blocks().size() == 3);
    CHECK(in.blocks()[1].name == prefix + "encoder.layer.1.attention");
    CHECK(in.blocks()[1].tensor_names.size() == 8);
    const auto out = prune_and_check(tmp / "in", tmp / "out", sparsity(0.5));
    const auto config = read_json(tmp / "out/config.json");
    CHECK(config.at("num_attention_heads") == 4);
    CHECK(config.at("pruned_heads").size() >= 1);
    // The non-attention tensors, I64 included, are there unchanged (check_pruned compared bytes).
    CHECK(out.reader().info(prefix + "position_ids").dtype == io::Dtype::I64);
  }
}

TEST_CASE("checkpoint presets: ViT, detected from config and from tensor names", "[checkpoint]") {
  TempDir tmp;
  Spec s;
  s.prefix = "vit.";
  s.dtype = io::Dtype::F16;
  mkdir((tmp / "in").c_str(), 0777);
  make_bert(tmp / "in", s, /*vit=*/true);
  const auto in = ck::Checkpoint::open(tmp / "in");
  CHECK(in.architecture() == "vit");
  CHECK(in.blocks()[0].dtype == io::Dtype::F16);
  const auto out = prune_and_check(tmp / "in", tmp / "out", sparsity(0.25, "local"));
  CHECK(out.blocks()[0].layout.heads() == 3);
  CHECK(read_json(tmp / "out/config.json").at("pruned_heads").size() == 3);

  mkdir((tmp / "bare").c_str(), 0777);
  make_bert(tmp / "bare", s, true, 0, /*with_config=*/false);
  // No config.json: names say ViT, but the head count is nowhere.
  CHECK_THROWS_AS(ck::Checkpoint::open(tmp / "bare"), ck::preset_error);
}

TEST_CASE("checkpoint presets: GPT-2 Conv1D c_attn/c_proj", "[checkpoint]") {
  TempDir tmp;
  Spec s;
  s.prefix = "transformer.";
  mkdir((tmp / "in").c_str(), 0777);
  make_gpt2(tmp / "in", s);
  const auto in = ck::Checkpoint::open(tmp / "in");
  CHECK(in.architecture() == "gpt2");
  const auto& b = in.blocks()[0];
  CHECK(b.name == "transformer.h.0.attn");
  CHECK(b.in_out);
  CHECK(b.qkv == ck::QkvLayout::concat);
  CHECK(b.layout == mhaprune::HeadLayout(4, 4, 4, 16));
  auto options = sparsity(0);
  options.explicit_heads = std::map<Index, std::vector<Index>>{{0, {0, 2}}, {2, {3}}};
  const auto out = prune_and_check(tmp / "in", tmp / "out", options, /*causal=*/true);
  CHECK(out.reader().info("transformer.h.0.attn.c_attn.weight").shape == io::Shape{16, 24});
  CHECK(out.reader().info("transformer.h.0.attn.c_attn.bias").shape == io::Shape{24});
  CHECK(out.reader().info("transformer.h.0.attn.c_proj.weight").shape == io::Shape{8, 16});
  CHECK(out.reader().info("transformer.h.1.attn.c_proj.weight").shape == io::Shape{16, 16});
  const auto config = read_json(tmp / "out/config.json");
  CHECK(config.at("n_head") == 4);  // GPT-2's loader sizes c_attn from n_embd and re-applies pruned_heads
  CHECK(config.at("pruned_heads") == nlohmann::json{{"0", {0, 2}}, {"2", {3}}});
}

TEST_CASE("checkpoint presets: LLaMA with GQA, with and without biases, and Mistral", "[checkpoint]") {
  for (const bool biases : {true, false}) {
    INFO("biases " << biases);
    TempDir tmp;
    Spec s;
    s.prefix = "model.";
    s.heads = 8;
    s.kv_heads = 2;
    s.head_dim = 4;
    s.biases = biases;
    s.dtype = io::Dtype::BF16;
    mkdir((tmp / "in").c_str(), 0777);
    make_llama(tmp / "in", s);
    const auto in = ck::Checkpoint::open(tmp / "in");
    CHECK(in.architecture() == "llama");
    CHECK(in.blocks()[0].layout == mhaprune::HeadLayout(8, 2, 4, 32));
    CHECK(in.blocks()[0].tensor_names.size() == (biases ? 7u : 4u));
    auto options = sparsity(0.5);
    options.config.gqa_mode = mhaprune::GqaMode::whole_groups;
    const auto out = prune_and_check(tmp / "in", tmp / "out", options, true);
    const auto config = read_json(tmp / "out/config.json");
    std::size_t kv_removed = 0;
    for (const auto& l : config.at("mhaprune").at("layers")) kv_removed += l.at("removed_kv_heads").size();
    CHECK(kv_removed == 3);  // whole groups of 4 query heads: 12 of 24 heads are 3 groups
  }
  TempDir tmp;
  Spec s;
  s.prefix = "model.";
  s.heads = 4;
  s.kv_heads = 1;
  s.biases = false;
  mkdir((tmp / "in").c_str(), 0777);
  make_llama(tmp / "in", s, "mistral");
  const auto out = prune_and_check(tmp / "in", tmp / "out", sparsity(0.25, "local"), true);
  const auto config = read_json(tmp / "out/config.json");
  CHECK(config.at("num_attention_heads") == 3);
  CHECK(config.at("num_key_value_heads") == 1);
  CHECK(config.at("head_dim") == 4);
  CHECK(config.at("hidden_size") == 16);
}

TEST_CASE("checkpoint presets: GPT-NeoX interleaved query_key_value", "[checkpoint]") {
  TempDir tmp;
  Spec s;
  s.prefix = "gpt_neox.";
  mkdir((tmp / "in").c_str(), 0777);
  make_neox(tmp / "in", s);
  const auto in = ck::Checkpoint::open(tmp / "in");
  CHECK(in.architecture() == "gpt_neox");
  CHECK(in.blocks()[0].qkv == ck::QkvLayout::interleaved);
  const auto out = prune_and_check(tmp / "in", tmp / "out", sparsity(0.5), true);
  const auto config = read_json(tmp / "out/config.json");
  CHECK(config.at("num_attention_heads") == 4);  // NeoX's loader cannot build smaller layers from counts
  CHECK_FALSE(config.contains("pruned_heads"));
  CHECK(config.at("mhaprune").at("layers").size() == 3);
}

TEST_CASE("checkpoint presets: sharded input gives sharded output with a matching index", "[checkpoint]") {
  TempDir tmp;
  Spec s;
  s.prefix = "model.";
  s.heads = 4;
  s.kv_heads = 2;
  s.layers = 4;
  mkdir((tmp / "in").c_str(), 0777);
  make_llama(tmp / "in", s, "qwen2", /*shard_bytes=*/6000);
  write_file(tmp / "in/tokenizer.json", "{\"tokens\": []}");
  mkdir((tmp / "in/extra").c_str(), 0777);
  write_file(tmp / "in/extra/notes.txt", "kept");
  const auto in = ck::Checkpoint::open(tmp / "in");
  REQUIRE(in.reader().shard_files().size() > 1);
  const auto out = prune_and_check(tmp / "in", tmp / "out", sparsity(0.5, "local"), true);
  CHECK(out.reader().shard_files() == in.reader().shard_files());
  for (const auto& [name, file] : in.reader().weight_map()) CHECK(out.reader().shard_of(name) == file);
  const auto index = read_json(tmp / "out/model.safetensors.index.json");
  std::uint64_t total = 0;
  for (const auto& [name, file] : out.reader().weight_map()) total += out.reader().info(name).byte_size();
  CHECK(index.at("metadata").at("total_size") == total);
  CHECK(read_file(tmp / "out/tokenizer.json") == "{\"tokens\": []}");
  CHECK(read_file(tmp / "out/extra/notes.txt") == "kept");
  CHECK_FALSE(exists(tmp / "out/model.safetensors"));
}

TEST_CASE("checkpoint presets: F64 blocks are pruned in double, bit-identical", "[checkpoint]") {
  TempDir tmp;
  Spec s;
  s.prefix = "bert.";
  s.dtype = io::Dtype::F64;
  mkdir((tmp / "in").c_str(), 0777);
  make_bert(tmp / "in", s);
  const auto in = ck::Checkpoint::open(tmp / "in");
  CHECK(ck::needs_double(in.reader(), in.blocks()[0]));
  const auto out = prune_and_check(tmp / "in", tmp / "out", sparsity(0.5));
  CHECK(out.reader().info("bert.encoder.layer.0.attention.self.query.weight").dtype == io::Dtype::F64);
}

TEST_CASE("checkpoint presets: a user preset describes another architecture", "[checkpoint]") {
  TempDir tmp;
  Spec s;
  s.prefix = "net.";
  mkdir((tmp / "in").c_str(), 0777);
  make_gpt2(tmp / "in", s, /*with_config=*/false);  // tensor names say gpt2, but no config.json
  write_file(tmp / "preset.json", R"({
    "name": "conv1d_net",
    "block": "{prefix}h.{layer}.attn",
    "layout": "qkv_concat",
    "orientation": "in_out",
    "tensors": {"qkv": "c_attn.weight", "qkv_bias": "c_attn.bias", "o": "c_proj.weight", "o_bias": "c_proj.bias"},
    "num_attention_heads": 4
  })");
  ck::OpenOptions open;
  open.preset_file = tmp / "preset.json";
  const auto in = ck::Checkpoint::open(tmp / "in", open);
  CHECK(in.architecture() == "conv1d_net");
  CHECK(in.blocks().size() == 3);
  CHECK(in.blocks()[0].layout == mhaprune::HeadLayout(4, 4, 4, 16));
  const auto report = ck::prune_checkpoint(in, tmp / "out", sparsity(0.25));
  CHECK(report.heads_removed() == 3);
  // Reopened with the same preset: counts and ids come from the mhaprune section.
  const auto out = ck::Checkpoint::open(tmp / "out", open);
  check_pruned(in, out);
  // Without the preset, the names say GPT-2 and the counts come from the mhaprune section.
  const auto detected = ck::Checkpoint::open(tmp / "out");
  CHECK(detected.architecture() == "gpt2");
  CHECK_THAT(detected.detected_from(), Catch::Contains("tensor names"));
  for (std::size_t i = 0; i < 3; ++i) CHECK(detected.blocks()[i].head_ids == out.blocks()[i].head_ids);

  write_file(tmp / "glob.json", R"({"name": "r", "block": "n*.h.{layer}.attn", "layout": "qkv_concat",
    "orientation": "in_out", "tensors": {"qkv": "c_attn.weight", "o": "c_proj.weight"}, "num_attention_heads": 2})");
  open.preset_file = tmp / "glob.json";
  const auto by_glob = ck::Checkpoint::open(tmp / "in", open);
  CHECK(by_glob.blocks()[2].layer == 2);
  CHECK(by_glob.blocks()[2].layout == mhaprune::HeadLayout(2, 2, 8, 16));
  CHECK(by_glob.blocks()[2].tensor_names.size() == 2);  // biases not named in this preset

  write_file(tmp / "bad.json",
             R"({"name": "x", "block": "h.{layer}", "tensors": {"o": "o.weight"}, "typo": 1})");
  open.preset_file = tmp / "bad.json";
  CHECK_THROWS_WITH(ck::Checkpoint::open(tmp / "in", open), Catch::Contains("unknown key \"typo\""));
}

TEST_CASE("checkpoint presets: block patterns", "[checkpoint]") {
  namespace d = mhaprune::checkpoint::detail;
  std::string layer;
  const auto bert = d::parse_pattern("{prefix}encoder.layer.{layer}.attention");
  CHECK(d::match_pattern(bert, "bert.encoder.layer.11.attention", layer));
  CHECK(layer == "11");
  CHECK(d::match_pattern(bert, "encoder.layer.0.attention", layer));
  CHECK(layer == "0");
  CHECK(d::match_pattern(bert, "a.b.encoder.layer.3.attention", layer));
  CHECK_FALSE(d::match_pattern(bert, "xencoder.layer.3.attention", layer));
  CHECK_FALSE(d::match_pattern(bert, "bert.encoder.layer.x.attention", layer));
  CHECK_FALSE(d::match_pattern(bert, "bert.encoder.layer.1.attention.self", layer));
  const auto glob = d::parse_pattern("*blocks.{layer}.*attn");
  CHECK(d::match_pattern(glob, "vis.blocks.7.self_attn", layer));
  CHECK(layer == "7");
  CHECK(d::match_pattern(glob, "blocks.12.attn", layer));
  CHECK(layer == "12");
}

TEST_CASE("checkpoint presets: a BERT pruned by Hugging Face is read from pruned_heads", "[checkpoint]") {
  TempDir tmp;
  const auto in = ck::Checkpoint::open(MHAPRUNE_TEST_SOURCE_DIR "/data/tiny-bert");
  auto options = sparsity(0);
  options.explicit_heads = std::map<Index, std::vector<Index>>{{1, {0, 2}}, {3, {3}}};
  ck::prune_checkpoint(in, tmp / "out", options);
  auto config = read_json(tmp / "out/config.json");
  config.erase("mhaprune");  // what save_pretrained of a model pruned with prune_heads leaves
  write_file(tmp / "out/config.json", config.dump());
  const auto out = ck::Checkpoint::open(tmp / "out");
  REQUIRE(out.history());
  CHECK(out.history()->source == "pruned_heads");
  CHECK(out.blocks()[1].head_ids == std::vector<Index>{1, 3});
  CHECK(out.blocks()[3].head_ids == std::vector<Index>{0, 1, 2});
  CHECK(out.blocks()[0].head_ids == std::vector<Index>{0, 1, 2, 3});
  check_pruned(in, out);
}

}  // namespace test_checkpoint_presets
