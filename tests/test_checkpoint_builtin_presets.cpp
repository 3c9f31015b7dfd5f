// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
// The built-in presets are preset documents in the user-preset schema: each, saved to a file, reads
// back through `read_user_preset` as the built-in preset and opens a checkpoint the same way.

#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "mhaprune/checkpoint/builtin_presets.hpp"
#include "test_checkpoint_support.hpp"

namespace test_checkpoint_builtin_presets {

using namespace test_checkpoint_support;
namespace documents = ck::presets::documents;

// Every field of the preset, one per line, so that a failed comparison shows which one differs.
// A field added to ArchitecturePreset belongs here too.
std::string describe(const ck::ArchitecturePreset& p) {
  std::ostringstream out;
  const auto list = [&out](const char* key, const std::vector<std::string>& v) {
    out << key << " =";
    for (const auto& s : v) out << " \"" << s << '"';
    out << '\n';
  };
  const auto count = [&out](const char* key, const std::optional<Index>& v) {
    out << key << " = " << (v ? std::to_string(*v) : "none") << '\n';
  };
  out << "name = " << p.name << "\nblock_pattern = " << p.block_pattern
      << "\nqkv = " << static_cast<int>(p.qkv) << "\nin_out = " << p.in_out << "\nq_weight = " << p.q_weight
      << "\nk_weight = " << p.k_weight << "\nv_weight = " << p.v_weight << "\nqkv_weight = " << p.qkv_weight
      << "\no_weight = " << p.o_weight << "\nq_bias = " << p.q_bias << "\nk_bias = " << p.k_bias
      << "\nv_bias = " << p.v_bias << "\nqkv_bias = " << p.qkv_bias << "\no_bias = " << p.o_bias << '\n';
  list("heads_keys", p.heads_keys);
  list("kv_heads_keys", p.kv_heads_keys);
  list("hidden_keys", p.hidden_keys);
  out << "head_dim_key = " << p.head_dim_key << '\n';
  count("heads", p.heads);
  count("kv_heads", p.kv_heads);
  count("head_dim", p.head_dim);
  out << "config_update = " << static_cast<int>(p.config_update)
      << "\noutput_bias = " << static_cast<int>(p.output_bias) << "\noutput_bias_key = " << p.output_bias_key
      << '\n';
  return out.str();
}

struct Builtin {
  const char* id;                 // the document's name in ck::presets::documents
  std::string_view document;      // its JSON
  ck::ArchitecturePreset preset;  // what the library builds from it
};

std::vector<Builtin> every_builtin() {
  return {{"bert", documents::bert, ck::presets::bert()},
          {"vit", documents::vit, ck::presets::vit()},
          {"gpt2", documents::gpt2, ck::presets::gpt2()},
          {"llama", documents::llama, ck::presets::llama()},
          {"llama_without_output_bias", documents::llama_without_output_bias, ck::presets::llama("qwen2")},
          {"gpt_neox", documents::gpt_neox, ck::presets::gpt_neox()},
          {"distilbert", documents::distilbert, ck::presets::distilbert()},
          {"opt", documents::opt, ck::presets::opt()},
          {"phi3", documents::phi3, ck::presets::phi3()}};
}

TEST_CASE("builtin presets: each document, saved as a file, reads back as the built-in preset",
          "[checkpoint]") {
  TempDir tmp;
  std::set<std::string> names;
  for (const auto& b : every_builtin()) {
    INFO("documents::" << b.id);
    const std::string path = tmp / (std::string(b.id) + ".json");
    write_file(path, std::string(b.document));
    CHECK(describe(ck::read_user_preset(path)) == describe(b.preset));
    names.insert(b.preset.name);
  }
  // A built-in preset added to all() without a document checked here fails.
  for (const auto& p : ck::presets::all()) {
    INFO("presets::all() has \"" << p.name << "\"");
    CHECK(names.count(p.name) == 1);
  }
}

TEST_CASE("builtin presets: what only C++ used to say is in the documents", "[checkpoint]") {
  const auto gpt2 = ck::presets::gpt2();
  CHECK(gpt2.heads_keys == std::vector<std::string>{"n_head", "num_attention_heads"});
  CHECK(gpt2.kv_heads_keys.empty());
  CHECK(gpt2.hidden_keys == std::vector<std::string>{"n_embd", "hidden_size"});
  CHECK(gpt2.head_dim_key.empty());
  CHECK(ck::presets::bert().head_dim_key.empty());
  CHECK(ck::presets::llama().head_dim_key == "head_dim");
  CHECK(ck::presets::llama().output_bias == ck::OutputBiasSupport::config_flag);
  CHECK(ck::presets::llama().output_bias_key == "attention_bias");
  for (const char* type : {"qwen2", "mistral", "mixtral"}) {
    INFO(type);
    CHECK(ck::presets::llama(type).name == "llama");
    CHECK(ck::presets::llama(type).output_bias == ck::OutputBiasSupport::never);
    CHECK(ck::presets::llama(type).output_bias_key.empty());
  }
  CHECK(ck::presets::phi3().output_bias == ck::OutputBiasSupport::never);
}

TEST_CASE("builtin presets: a user preset without the new keys reads as before", "[checkpoint]") {
  const auto p = ck::preset_from_json(nlohmann::json::parse(R"({"name": "n", "block": "b.{layer}", "tensors":
    {"q": "q.weight", "k": "k.weight", "v": "v.weight", "o": "o.weight", "o_bias": "o.bias"}})"),
                                      "test");
  CHECK(p.heads_keys == std::vector<std::string>{"num_attention_heads"});
  CHECK(p.kv_heads_keys == std::vector<std::string>{"num_key_value_heads"});
  CHECK(p.hidden_keys == std::vector<std::string>{"hidden_size"});
  CHECK(p.head_dim_key == "head_dim");
  CHECK(p.output_bias == ck::OutputBiasSupport::always);
  CHECK(p.output_bias_key.empty());
}

TEST_CASE("builtin presets: config_keys and output_bias are checked like every other key", "[checkpoint]") {
  // A separate-layout preset with `extra` keys after "tensors", and an O bias unless told otherwise.
  const std::string o_bias = R"(, "o_bias": "o.bias")";
  const auto read = [&o_bias](const std::string& extra, bool with_o_bias = true) {
    const std::string tensors = R"("q": "q.weight", "k": "k.weight", "v": "v.weight", "o": "o.weight")";
    const std::string text = R"({"name": "n", "block": "b.{layer}", "tensors": {)" + tensors +
                             (with_o_bias ? o_bias : "") + "}" + extra + "}";
    return ck::preset_from_json(nlohmann::json::parse(text), "p.json");
  };
  const auto throws = [&read](const std::string& extra, const std::string& what, bool with_o_bias = true) {
    INFO(extra);
    CHECK_THROWS_AS(read(extra, with_o_bias), ck::preset_error);
    CHECK_THROWS_WITH(read(extra, with_o_bias),
                      Catch::StartsWith("p.json: preset ") && Catch::Contains(what));
  };
  throws(R"(, "config_keys": ["n_head"])", "\"config_keys\" must be an object");
  throws(R"(, "config_keys": {"layers": []})", "\"config_keys.layers\" is unknown");
  throws(R"(, "config_keys": {"heads": "n_head"})", "\"config_keys.heads\" must be an array");
  throws(R"(, "config_keys": {"hidden": ["dim", ""]})", "\"config_keys.hidden\" must be an array");
  throws(R"(, "config_keys": {"head_dim": ""})", "\"config_keys.head_dim\" must be a non-empty string");
  throws(R"(, "output_bias": "sometimes")", "is not one of always, config_flag, never");
  throws(R"(, "output_bias": "always")", "needs \"tensors.o_bias\"", false);
  throws(R"(, "output_bias": "config_flag", "output_bias_key": "attention_bias")", "needs \"tensors.o_bias\"",
         false);
  throws(R"(, "output_bias": "config_flag")", "needs \"output_bias_key\"");
  throws(R"(, "output_bias_key": "attention_bias")", "only for \"output_bias\": \"config_flag\"");

  const auto keys = read(R"(, "config_keys": {"heads": ["n_head"], "kv_heads": [], "head_dim": null})");
  CHECK(keys.heads_keys == std::vector<std::string>{"n_head"});
  CHECK(keys.kv_heads_keys.empty());
  CHECK(keys.hidden_keys == std::vector<std::string>{"hidden_size"});
  CHECK(keys.head_dim_key.empty());
  CHECK(read(R"(, "output_bias": "never")").output_bias == ck::OutputBiasSupport::never);
  CHECK(read("", false).output_bias == ck::OutputBiasSupport::never);
}

TEST_CASE("builtin presets: a saved document opens a checkpoint as detection does", "[checkpoint]") {
  TempDir tmp;
  Spec s;
  s.prefix = "model.";
  s.kv_heads = 2;
  mkdir((tmp / "in").c_str(), 0777);
  make_llama(tmp / "in", s, "qwen2");
  write_file(tmp / "preset.json", std::string(documents::llama_without_output_bias));
  ck::OpenOptions open;
  open.preset_file = tmp / "preset.json";
  const auto detected = ck::Checkpoint::open(tmp / "in");
  const auto by_file = ck::Checkpoint::open(tmp / "in", open);
  CHECK(describe(by_file.preset()) == describe(detected.preset()));
  CHECK(by_file.architecture() == detected.architecture());
  REQUIRE(by_file.blocks().size() == detected.blocks().size());
  for (std::size_t i = 0; i < detected.blocks().size(); ++i) {
    CHECK(by_file.blocks()[i].name == detected.blocks()[i].name);
    CHECK(by_file.blocks()[i].tensor_names == detected.blocks()[i].tensor_names);
    CHECK(by_file.blocks()[i].layout == detected.blocks()[i].layout);
  }
}

}  // namespace test_checkpoint_builtin_presets
