// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
// Bad checkpoints, bad destinations and failures mid-write: clear errors, nothing left behind.

#include <catch2/catch.hpp>

#include "test_checkpoint_support.hpp"

namespace test_checkpoint_errors {

using namespace test_checkpoint_support;

// The directory holds only what it held before (no output, no temporary sibling).
void check_untouched(const std::string& dir, const std::vector<std::string>& before) {
  CHECK(list_dir(dir) == before);
}

TEST_CASE("checkpoint errors: heads that do not divide the width name the tensor", "[checkpoint]") {
  TempDir tmp;
  mkdir((tmp / "in").c_str(), 0777);
  Spec s;
  s.prefix = "bert.";
  make_bert(tmp / "in", s);
  auto config = read_json(tmp / "in/config.json");
  config["num_attention_heads"] = 5;
  write_file(tmp / "in/config.json", config.dump());
  try {
    ck::Checkpoint::open(tmp / "in");
    FAIL("expected preset_error");
  } catch (const ck::preset_error& e) {
    const std::string what = e.what();
    CHECK_THAT(what, Catch::Contains("bert.encoder.layer.0.attention"));
    CHECK_THAT(what, Catch::Contains("does not split into 5 heads"));
    CHECK_THAT(what, Catch::Contains("output.dense.weight"));
  }
  // preset_error is "bad input" for callers that map errors to exit codes.
  CHECK_THROWS_AS(ck::Checkpoint::open(tmp / "in"), mhaprune::corrupt_file_error);
}

TEST_CASE("checkpoint errors: tensors that disagree with the config name layer, tensor and shapes",
          "[checkpoint]") {
  TempDir tmp;
  mkdir((tmp / "in").c_str(), 0777);
  Spec s;
  s.prefix = "model.";
  s.heads = 4;
  s.kv_heads = 4;
  make_llama(tmp / "in", s);
  auto config = read_json(tmp / "in/config.json");
  config["num_key_value_heads"] = 2;
  write_file(tmp / "in/config.json", config.dump());
  CHECK_THROWS_WITH(ck::Checkpoint::open(tmp / "in"),
                    Catch::Contains("model.layers.0.self_attn") && Catch::Contains("k_proj.weight") &&
                        Catch::Contains("[16, 16]") && Catch::Contains("expected [8, 16]"));
  config["num_key_value_heads"] = 4;
  config["hidden_size"] = 32;
  write_file(tmp / "in/config.json", config.dump());
  CHECK_THROWS_WITH(ck::Checkpoint::open(tmp / "in"), Catch::Contains("hidden size is 32"));
  config["hidden_size"] = 16;
  config["model_type"] = "t5";
  config.erase("num_attention_heads");
  write_file(tmp / "in/config.json", config.dump());
  // An unsupported model_type falls back to the names (LLaMA here), whose count is then missing.
  CHECK_THROWS_WITH(ck::Checkpoint::open(tmp / "in"), Catch::Contains("no head count"));

  TempDir other;
  io::SafetensorsWriter w;
  w.add("encoder.block.0.layer.0.SelfAttention.q.weight", Eigen::MatrixXf::Zero(4, 4).eval());
  w.write(other / "model.safetensors", io::WriteOptions{false});
  write_file(other / "config.json", R"({"model_type": "t5", "num_heads": 2})");
  CHECK_THROWS_WITH(ck::Checkpoint::open(other.path()),
                    Catch::Contains("unknown architecture") && Catch::Contains("\"t5\""));
}

TEST_CASE("checkpoint errors: a mhaprune section that disagrees with the tensors is refused",
          "[checkpoint]") {
  TempDir tmp;
  const auto in = ck::Checkpoint::open(MHAPRUNE_TEST_SOURCE_DIR "/data/tiny-bert");
  ck::prune_checkpoint(in, tmp / "out", sparsity(0.25, "local"));
  auto config = read_json(tmp / "out/config.json");
  config["mhaprune"]["layers"][1]["removed_heads"] = nlohmann::json::array();
  config["mhaprune"]["layers"][1].erase("head_ids");
  config["mhaprune"]["layers"][1].erase("num_attention_heads");
  write_file(tmp / "out/config.json", config.dump());
  CHECK_THROWS_WITH(ck::Checkpoint::open(tmp / "out"),
                    Catch::Contains("bert.encoder.layer.1.attention") && Catch::Contains("mhaprune section"));
}

TEST_CASE("checkpoint errors: the output may not be the input, inside it, or an existing directory",
          "[checkpoint]") {
  TempDir tmp;
  mkdir((tmp / "in").c_str(), 0777);
  Spec s;
  make_bert(tmp / "in", s);
  const auto in = ck::Checkpoint::open(tmp / "in");
  const auto input_files = list_dir(tmp / "in");
  const auto input_bytes = read_file(tmp / "in/model.safetensors");

  CHECK_THROWS_WITH(ck::prune_checkpoint(in, tmp / "in", sparsity(0.5)), Catch::Contains("is the input"));
  CHECK_THROWS_WITH(ck::prune_checkpoint(in, tmp / "in/", sparsity(0.5)), Catch::Contains("is the input"));
  CHECK_THROWS_WITH(ck::prune_checkpoint(in, tmp / "in/sub", sparsity(0.5)),
                    Catch::Contains("inside the input"));
  CHECK_THROWS_AS(ck::prune_checkpoint(in, tmp / "in/sub", sparsity(0.5)), mhaprune::io_error);
  check_untouched(tmp / "in", input_files);

  mkdir((tmp / "out").c_str(), 0777);
  write_file(tmp / "out/old.txt", "old");
  CHECK_THROWS_WITH(ck::prune_checkpoint(in, tmp / "out", sparsity(0.5)), Catch::Contains("already exists"));
  CHECK(list_dir(tmp / "out") == std::vector<std::string>{"old.txt"});
  auto options = sparsity(0.5);
  options.overwrite = true;
  ck::prune_checkpoint(in, tmp / "out", options);
  CHECK(list_dir(tmp / "out") == std::vector<std::string>{"config.json", "model.safetensors"});
  // Overwriting a directory that holds the input would delete it.
  CHECK_THROWS_WITH(ck::prune_checkpoint(in, tmp.path(), options), Catch::Contains("contains the input"));
  check_untouched(tmp.path(), std::vector<std::string>{"in", "out"});
  CHECK(read_file(tmp / "in/model.safetensors") == input_bytes);
  CHECK(list_dir(tmp / "in") == input_files);
}

TEST_CASE("checkpoint errors: a failure while writing leaves no output directory", "[checkpoint]") {
  TempDir tmp;
  const auto in = ck::Checkpoint::open(MHAPRUNE_TEST_SOURCE_DIR "/data/tiny-qwen2");
  auto options = sparsity(0.25);
  options.progress = [](const ck::Progress& p) {
    if (p.stage == "write" && p.done == 2) throw std::runtime_error("interrupted");
  };
  CHECK_THROWS_WITH(ck::prune_checkpoint(in, tmp / "out", options), "interrupted");
  check_untouched(tmp.path(), {});

  // Constraints that cannot be met, and explicit heads that empty a block: before any output.
  auto exact = sparsity(0.3);
  exact.config.exact_target = true;
  exact.config.min_heads = 8;
  CHECK_THROWS_AS(ck::prune_checkpoint(in, tmp / "out", exact), mhaprune::constraint_error);
  auto all = sparsity(0);
  all.explicit_heads = std::map<Index, std::vector<Index>>{{1, {0, 1, 2, 3, 4, 5, 6, 7}}};
  CHECK_THROWS_AS(ck::prune_checkpoint(in, tmp / "out", all), mhaprune::removal_error);
  auto ragged = sparsity(0);
  ragged.explicit_heads = std::map<Index, std::vector<Index>>{{1, {0}}};
  CHECK_THROWS_AS(ck::prune_checkpoint(in, tmp / "out", ragged), mhaprune::removal_error);
  auto unknown = sparsity(0);
  unknown.explicit_heads = std::map<Index, std::vector<Index>>{{4, {0}}};
  CHECK_THROWS_WITH(ck::prune_checkpoint(in, tmp / "out", unknown), Catch::Contains("block index 4"));
  auto bad = sparsity(0.25);
  bad.config.criterion_type = "no_such_criterion";
  CHECK_THROWS_AS(ck::prune_checkpoint(in, tmp / "out", bad), mhaprune::config_error);
  check_untouched(tmp.path(), {});
}

TEST_CASE("checkpoint errors: a single-file checkpoint opened by its file name", "[checkpoint]") {
  TempDir tmp;
  const auto in = ck::Checkpoint::open(MHAPRUNE_TEST_SOURCE_DIR "/data/tiny-bert/model.safetensors");
  CHECK(in.architecture() == "bert");
  CHECK_FALSE(in.opened_as_directory());
  ck::prune_checkpoint(in, tmp / "out", sparsity(0.25));
  // Only the weights and config.json: the file's neighbours are not part of what was opened.
  CHECK(list_dir(tmp / "out") == std::vector<std::string>{"config.json", "model.safetensors"});
  check_pruned(in, ck::Checkpoint::open(tmp / "out"));

  // Any file name: the output is a checkpoint directory with model.safetensors.
  mkdir((tmp / "loose").c_str(), 0777);
  write_file(tmp / "loose/weights.safetensors",
             read_file(MHAPRUNE_TEST_SOURCE_DIR "/data/tiny-bert/model.safetensors"));
  write_file(tmp / "loose/config.json", read_file(MHAPRUNE_TEST_SOURCE_DIR "/data/tiny-bert/config.json"));
  const auto loose = ck::Checkpoint::open(tmp / "loose/weights.safetensors");
  ck::prune_checkpoint(loose, tmp / "loose-out", sparsity(0.5));
  CHECK(list_dir(tmp / "loose-out") == std::vector<std::string>{"config.json", "model.safetensors"});
  check_pruned(loose, ck::Checkpoint::open(tmp / "loose-out"));
}

TEST_CASE("checkpoint streaming: one block at a time, even when dtypes interleave blocks", "[checkpoint]") {
  TempDir tmp;
  // BF16 weights with F32 biases: the file order is every F32 bias, then every BF16 weight, so each
  // block's tensors are written in two separate runs.
  const Index layers = 6, H = 4, d = 4, D = 16;
  Weights rng(5);
  io::SafetensorsWriter w;
  for (Index l = 0; l < layers; ++l) {
    const std::string b = "model.layers." + std::to_string(l) + ".self_attn.";
    for (const char* p : {"q", "k", "v", "o"})
      w.add(b + p + "_proj.weight", rng.matrix(D, D), io::Dtype::BF16);
    for (const char* p : {"q", "k", "v"}) w.add(b + p + "_proj.bias", rng.vector(H * d), io::Dtype::F32);
  }
  mkdir((tmp / "in").c_str(), 0777);
  write_model(tmp / "in", w, {{"model_type", "llama"}, {"num_attention_heads", H}, {"hidden_size", D}});
  const auto in = ck::Checkpoint::open(tmp / "in");
  REQUIRE(in.blocks().size() == static_cast<std::size_t>(layers));

  // The streamed writer directly: it holds at most two blocks and reads each block twice at most.
  std::vector<ck::BlockPlan> plans;
  for (const auto& b : in.blocks()) plans.push_back(ck::plan_block(b, {1}));
  auto options = sparsity(0);
  ck::StreamedBlocks streamed(in, plans, options);
  io::SafetensorsWriter out;
  for (std::size_t i = 0; i < plans.size(); ++i)
    for (const auto& [name, shape] : plans[i].shapes_after)
      out.add_streamed(name, in.reader().info(name).dtype, shape,
                       [&streamed, i, name = name](io::ByteSink& sink) { streamed.emit(i, name, sink); });
  out.write(tmp / "streamed.safetensors", io::WriteOptions{false});
  CHECK(streamed.peak_held() <= 2);
  CHECK(streamed.materialized() > static_cast<std::size_t>(layers));
  CHECK(streamed.materialized() <= 2 * static_cast<std::size_t>(layers));

  // The pipeline gives the right values all the same.
  auto explicit_options = sparsity(0);
  explicit_options.explicit_heads = std::map<Index, std::vector<Index>>{{0, {1}}, {3, {0, 3}}, {5, {2}}};
  ck::prune_checkpoint(in, tmp / "out", explicit_options);
  const auto result = ck::Checkpoint::open(tmp / "out");
  check_pruned(in, result, true);
  CHECK(result.blocks()[3].head_ids == std::vector<Index>{1, 2});
  CHECK(result.reader().info("model.layers.3.self_attn.q_proj.bias").dtype == io::Dtype::F32);
}

}  // namespace test_checkpoint_errors
