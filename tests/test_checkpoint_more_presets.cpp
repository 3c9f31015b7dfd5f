// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
// The DistilBERT, OPT and Phi-3 presets on small synthetic checkpoints: detection from config.json
// and from tensor names, pruning, read-back against the masked original, and the output config.

#include <sys/stat.h>

#include <catch2/catch.hpp>

#include "test_checkpoint_support.hpp"

namespace test_checkpoint_more_presets {

using namespace test_checkpoint_support;

void make_distilbert(const std::string& dir, const Spec& s) {
  Weights rng(17);
  io::SafetensorsWriter w;
  const Index D = s.model_dim();
  for (Index l = 0; l < s.layers; ++l) {
    const std::string b = s.prefix + "transformer.layer." + std::to_string(l) + ".attention.";
    for (const char* r : {"q_lin", "k_lin", "v_lin", "out_lin"}) {
      w.add(b + r + ".weight", rng.matrix(D, D), s.dtype);
      w.add(b + r + ".bias", rng.vector(D), s.dtype);
    }
  }
  add_others(w, rng, s, s.prefix + "transformer.layer.");
  write_model(dir, w,
              {{"model_type", "distilbert"}, {"n_heads", s.heads}, {"dim", D}, {"n_layers", s.layers}});
}

void make_opt(const std::string& dir, const Spec& s, bool with_config) {
  Weights rng(19);
  io::SafetensorsWriter w;
  const Index D = s.model_dim();
  for (Index l = 0; l < s.layers; ++l) {
    const std::string b = s.prefix + "decoder.layers." + std::to_string(l) + ".self_attn.";
    for (const char* r : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      w.add(b + r + ".weight", rng.matrix(D, D), s.dtype);
      w.add(b + r + ".bias", rng.vector(D), s.dtype);
    }
  }
  add_others(w, rng, s, s.prefix + "decoder.layers.");
  nlohmann::json config = {{"num_attention_heads", s.heads}, {"hidden_size", D}};
  if (with_config) config["model_type"] = "opt";
  write_model(dir, w, config);
}

void make_phi3(const std::string& dir, const Spec& s) {
  Weights rng(23);
  io::SafetensorsWriter w;
  const Index D = s.model_dim(), d = s.head_dim;
  for (Index l = 0; l < s.layers; ++l) {
    const std::string b = s.prefix + "layers." + std::to_string(l) + ".self_attn.";
    w.add(b + "qkv_proj.weight", rng.matrix((s.heads + 2 * s.kv_heads) * d, D), s.dtype);
    w.add(b + "o_proj.weight", rng.matrix(D, s.heads * d), s.dtype);
  }
  add_others(w, rng, s, s.prefix + "layers.");
  write_model(dir, w,
              {{"architectures", {"Phi3ForCausalLM"}},
               {"num_attention_heads", s.heads},
               {"num_key_value_heads", s.kv_heads},
               {"hidden_size", D}});
}

TEST_CASE("checkpoint presets: DistilBERT q_lin/k_lin/v_lin/out_lin with pruned_heads", "[checkpoint]") {
  TempDir tmp;
  Spec s;
  s.prefix = "distilbert.";
  mkdir((tmp / "in").c_str(), 0777);
  make_distilbert(tmp / "in", s);
  const auto in = ck::Checkpoint::open(tmp / "in");
  CHECK(in.architecture() == "distilbert");
  REQUIRE(in.blocks().size() == 3);
  CHECK(in.blocks()[0].name == "distilbert.transformer.layer.0.attention");
  CHECK(in.blocks()[0].tensor_names.size() == 8);
  prune_and_check(tmp / "in", tmp / "out", sparsity(0.5), false);
  const auto config = read_json(tmp / "out/config.json");
  CHECK(config.at("n_heads") == 4);  // the loader builds full layers, then re-applies pruned_heads
  std::size_t pruned = 0;
  for (const auto& [layer, ids] : config.at("pruned_heads").items()) pruned += ids.size();
  CHECK(pruned == 6);
}

TEST_CASE("checkpoint presets: OPT out_proj, from config.json and from tensor names", "[checkpoint]") {
  for (const bool with_model_type : {true, false}) {
    INFO("model_type given: " << with_model_type);
    TempDir tmp;
    Spec s;
    s.prefix = "model.";
    mkdir((tmp / "in").c_str(), 0777);
    make_opt(tmp / "in", s, with_model_type);
    const auto in = ck::Checkpoint::open(tmp / "in");
    CHECK(in.architecture() == "opt");
    CHECK(in.blocks()[2].name == "model.decoder.layers.2.self_attn");
    prune_and_check(tmp / "in", tmp / "out", sparsity(0.25, "local"), true);
    const auto config = read_json(tmp / "out/config.json");
    CHECK(config.at("num_attention_heads") == 4);  // OPT sizes projections from hidden_size: left alone
    CHECK_FALSE(config.contains("pruned_heads"));
    CHECK(config.at("mhaprune").at("layers").at(0).at("num_attention_heads") == 3);
  }
}

TEST_CASE("checkpoint presets: Phi-3 fused grouped-query qkv_proj", "[checkpoint]") {
  TempDir tmp;
  Spec s;
  s.prefix = "model.";
  s.heads = 8;
  s.kv_heads = 2;
  s.biases = false;
  s.dtype = io::Dtype::BF16;
  mkdir((tmp / "in").c_str(), 0777);
  make_phi3(tmp / "in", s);
  const auto in = ck::Checkpoint::open(tmp / "in");
  CHECK(in.architecture() == "phi3");
  CHECK(in.blocks()[0].qkv == ck::QkvLayout::concat);
  CHECK(in.blocks()[0].layout == mhaprune::HeadLayout(8, 2, 4, 32));
  prune_and_check(tmp / "in", tmp / "out", sparsity(0.5, "local"), true);
  const auto config = read_json(tmp / "out/config.json");
  CHECK(config.at("num_attention_heads") == 4);
  CHECK(config.at("num_key_value_heads") == 2);
  CHECK(config.at("head_dim") == 4);
  const auto out = ck::Checkpoint::open(tmp / "out");
  CHECK(out.reader().tensor("model.layers.0.self_attn.qkv_proj.weight").shape() ==
        io::Shape{(4 + 2 * 2) * 4, 32});
}

}  // namespace test_checkpoint_more_presets
