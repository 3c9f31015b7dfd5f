// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// prune_gguf on small GGUF models made here: which rows, blocks and keys the output holds, checked
// by index arithmetic on values that encode their own position (F32: layer*10000 + row*100 + col),
// and that every refused call leaves no output and the input as it was. llama.cpp's own verdict on
// real models is in tests/gguf (CTest label "gguf").

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "mhaprune/checkpoint/prune_gguf.hpp"
#include "mhaprune/io/gguf.hpp"
#include "support/message_of.hpp"

namespace test_gguf_prune {

namespace {

namespace ck = mhaprune::checkpoint;
namespace io = mhaprune::io;
using mhaprune::Index;

struct TinySpec {
  std::string arch = "llama";
  io::GgmlType type = io::GgmlType::F32;  // Q/K/V/O
  std::uint64_t layers = 2, embd = 64, heads = 4, kv_heads = 2, head_dim = 16;
  bool q_bias = false, key_length = true;
  std::uint64_t tensor_heads = 0;  // query heads the tensors are written for; 0: `heads`
  bool per_head_extras = false;    // attn_q_norm {d, H}, attn_k_norm {H_kv*d}, attn_sinks {H}
  bool fused_qkv = false;          // one attn_qkv [Q | K | V] instead of attn_q, attn_k, attn_v
};

float value_at(std::uint64_t layer, std::uint64_t tensor, std::uint64_t row, std::uint64_t col) {
  return static_cast<float>(layer * 100000 + tensor * 10000 + row * 100 + col);
}

/// A row-major [rows, cols] tensor of `type` whose values are `value_at`; for block types, encoded.
std::vector<std::byte> make_tensor(io::GgmlType type, std::uint64_t layer, std::uint64_t tensor,
                                   std::uint64_t rows, std::uint64_t cols) {
  const std::uint64_t row_bytes = *io::row_bytes(type, cols);
  std::vector<std::byte> out(rows * row_bytes);
  std::vector<float> row(cols);
  if (!io::can_quantize(type)) {  // a type mhaprune cannot encode (nor decode): fixed bytes
    for (std::size_t i = 0; i < out.size(); ++i) out[i] = static_cast<std::byte>(i % 251);
    return out;
  }
  for (std::uint64_t r = 0; r < rows; ++r) {
    for (std::uint64_t c = 0; c < cols; ++c) row[c] = value_at(layer, tensor, r, c) / 100000.0f;
    io::quantize_row(type, row.data(), out.data() + r * row_bytes, static_cast<std::int64_t>(cols));
  }
  return out;
}

struct TinyModel {
  std::string dir, path;
  std::vector<std::vector<std::byte>> storage;
};

std::string temp_dir() {
  char pattern[] = "/tmp/mhaprune-gguf-prune-XXXXXX";
  REQUIRE(::mkdtemp(pattern) != nullptr);
  return pattern;
}

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

/// Files in `dir` (to see that nothing, not even a temporary file, was left).
std::size_t entries_in(const std::string& dir) {
  std::FILE* p = ::popen(("ls -A " + dir + " | wc -l").c_str(), "r");
  int count = 0;
  if (p != nullptr) {
    if (std::fscanf(p, "%d", &count) != 1) count = -1;
    ::pclose(p);
  }
  return static_cast<std::size_t>(count);
}

TinyModel write_model(const TinySpec& s) {
  TinyModel m;
  m.dir = temp_dir();
  m.path = m.dir + "/model.gguf";
  io::GgufWriter w;
  const std::string p = s.arch + ".";
  w.add_kv("general.architecture", io::GgufValue::string(s.arch));
  w.add_kv("general.name", io::GgufValue::string("tiny"));
  w.add_kv(p + "block_count", io::GgufValue::uint32(static_cast<std::uint32_t>(s.layers)));
  w.add_kv(p + "embedding_length", io::GgufValue::uint32(static_cast<std::uint32_t>(s.embd)));
  w.add_kv(p + "attention.head_count", io::GgufValue::uint32(static_cast<std::uint32_t>(s.heads)));
  w.add_kv(p + "attention.head_count_kv", io::GgufValue::uint32(static_cast<std::uint32_t>(s.kv_heads)));
  if (s.key_length) {
    w.add_kv(p + "attention.key_length", io::GgufValue::uint32(static_cast<std::uint32_t>(s.head_dim)));
    w.add_kv(p + "attention.value_length", io::GgufValue::uint32(static_cast<std::uint32_t>(s.head_dim)));
  }
  w.add_kv(p + "rope.freq_base", io::GgufValue::float32(10000.0f));
  w.add_kv("tokenizer.ggml.tokens", io::GgufValue::string_array({"a", "b"}));
  const auto add = [&](const std::string& name, io::GgmlType type, std::uint64_t layer, std::uint64_t id,
                       std::uint64_t rows, std::uint64_t cols) {
    m.storage.push_back(make_tensor(type, layer, id, rows, cols));
    const std::vector<std::uint64_t> ne =
        rows == 1 ? std::vector<std::uint64_t>{cols} : std::vector<std::uint64_t>{cols, rows};
    w.add_tensor(name, type, ne, io::ByteSpan(m.storage.back().data(), m.storage.back().size()));
  };
  add("token_embd.weight", io::GgmlType::F32, 9, 0, 8, s.embd);
  const std::uint64_t q = (s.tensor_heads ? s.tensor_heads : s.heads) * s.head_dim,
                      kv = s.kv_heads * s.head_dim;
  for (std::uint64_t l = 0; l < s.layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", io::GgmlType::F32, l, 0, 1, s.embd);
    if (s.fused_qkv) {
      add(b + "attn_qkv.weight", s.type, l, 1, q + 2 * kv, s.embd);
    } else {
      add(b + "attn_q.weight", s.type, l, 1, q, s.embd);
      add(b + "attn_k.weight", s.type, l, 2, kv, s.embd);
      add(b + "attn_v.weight", s.type, l, 3, kv, s.embd);
    }
    if (s.q_bias) {
      add(b + "attn_q.bias", io::GgmlType::F32, l, 5, 1, q);
      add(b + "attn_k.bias", io::GgmlType::F32, l, 6, 1, kv);
    }
    add(b + "attn_output.weight", s.type, l, 4, s.embd, q);
    if (s.per_head_extras) {
      add(b + "attn_q_norm.weight", io::GgmlType::F32, l, 7, s.heads, s.head_dim);
      add(b + "attn_k_norm.weight", io::GgmlType::F32, l, 8, 1, kv);
      add(b + "attn_sinks.weight", io::GgmlType::F32, l, 9, 1, s.heads);
    }
  }
  add("output_norm.weight", io::GgmlType::F32, 9, 1, 1, s.embd);
  w.write(m.path);
  return m;
}

/// Row `r` of a 2-D tensor decoded to float, scaled back to `value_at` units.
std::vector<float> row_of(const io::GgufReader& r, const std::string& name, std::uint64_t row) {
  const io::GgufTensorInfo& t = r.tensor(name);
  std::vector<float> out(t.ne[0]);
  io::dequantize_row(t.type, r.bytes(t).data() + row * t.row_bytes(), out.data(),
                     static_cast<std::int64_t>(t.ne[0]));
  for (float& x : out) x = std::round(x * 100000.0f);
  return out;
}

using mhaprune_test::message_of;

ck::PruneOptions heads(std::map<Index, std::vector<Index>> ids) {
  ck::PruneOptions o;
  o.explicit_heads = std::move(ids);
  o.durable = false;
  return o;
}

}  // namespace

TEST_CASE("prune_gguf: uniform removal keeps the architecture, the kept rows and columns", "[gguf]") {
  const TinyModel m = write_model({});
  const ck::GgufModel model = ck::GgufModel::open(m.path);
  REQUIRE(model.blocks().size() == 2);
  const std::string out = m.dir + "/pruned.gguf";
  // One query head from each key/value group of every layer.
  const ck::GgufPruneResult result = ck::prune_gguf(model, out, heads({{0, {1, 3}}, {1, {0, 2}}}));
  CHECK(result.architecture == "llama");
  CHECK(result.requantized.empty());
  const io::GgufReader r(out);
  CHECK(r.find("general.architecture")->as_string() == "llama");
  CHECK(r.find("llama.attention.head_count")->type() == io::GgufType::UINT32);
  CHECK(r.find("llama.attention.head_count")->as_int() == 2);
  CHECK(r.find("llama.attention.head_count_kv")->as_int() == 2);
  CHECK(r.find("llama.attention.key_length")->as_int() == 16);
  CHECK(r.find("mhaprune.head_ids.0")->as_int_array() == std::vector<std::int64_t>{0, 2});
  CHECK(r.find("mhaprune.head_ids.1")->as_int_array() == std::vector<std::int64_t>{1, 3});
  CHECK(r.find("mhaprune.original_head_count")->as_int_array() == std::vector<std::int64_t>{4, 4});
  CHECK(r.kvs().front().key == "general.architecture");  // order kept
  const std::vector<std::uint64_t> kept0 = {0, 2}, kept1 = {1, 3};
  for (std::uint64_t l = 0; l < 2; ++l) {
    const std::vector<std::uint64_t>& kept = l == 0 ? kept0 : kept1;
    const std::string b = "blk." + std::to_string(l) + ".";
    CHECK(r.tensor(b + "attn_q.weight").ne == std::vector<std::uint64_t>{64, 32});
    CHECK(r.tensor(b + "attn_k.weight").ne == std::vector<std::uint64_t>{64, 32});
    CHECK(r.tensor(b + "attn_output.weight").ne == std::vector<std::uint64_t>{32, 64});
    for (std::uint64_t h = 0; h < 2; ++h)
      for (std::uint64_t j = 0; j < 16; ++j)
        CHECK(row_of(r, b + "attn_q.weight", h * 16 + j)[5] == value_at(l, 1, kept[h] * 16 + j, 5));
    for (std::uint64_t row : {0u, 17u, 63u}) {
      const std::vector<float> o = row_of(r, b + "attn_output.weight", row);
      for (std::uint64_t h = 0; h < 2; ++h)
        for (std::uint64_t j = 0; j < 16; ++j) CHECK(o[h * 16 + j] == value_at(l, 4, row, kept[h] * 16 + j));
    }
  }
  // Untouched tensors: byte for byte.
  const io::GgufReader in(m.path);
  for (const char* name : {"token_embd.weight", "blk.1.attn_norm.weight", "output_norm.weight"}) {
    const io::ByteSpan a = in.bytes(in.tensor(name)), b = r.bytes(r.tensor(name));
    CHECK(std::equal(a.begin(), a.end(), b.begin(), b.end()));
  }
}

TEST_CASE("prune_gguf: different counts per layer make a llama model deci, with per-layer arrays", "[gguf]") {
  const TinyModel m = write_model({});
  const std::string out = m.dir + "/pruned.gguf";
  const ck::GgufPruneResult result = ck::prune_gguf(ck::GgufModel::open(m.path), out, heads({{0, {1, 3}}}));
  CHECK(result.architecture == "deci");
  const io::GgufReader r(out);
  CHECK(r.find("general.architecture")->as_string() == "deci");
  CHECK(r.find("llama.attention.head_count") == nullptr);
  CHECK(r.find("deci.rope.freq_base") != nullptr);
  const io::GgufValue* counts = r.find("deci.attention.head_count");
  REQUIRE(counts != nullptr);
  CHECK(counts->element_type() == io::GgufType::INT32);
  CHECK(counts->as_int_array() == std::vector<std::int64_t>{2, 4});
  CHECK(r.find("deci.attention.head_count_kv")->as_int_array() == std::vector<std::int64_t>{2, 2});
  CHECK(r.find("mhaprune.original_architecture")->as_string() == "llama");

  // Pruned again, naming original ids: layer 0 keeps original heads 0 and 2, loses 2.
  const std::string again = m.dir + "/again.gguf";
  const ck::GgufModel pruned = ck::GgufModel::open(out);
  CHECK(pruned.original_architecture() == "llama");
  CHECK(pruned.blocks()[0].head_ids == std::vector<Index>{0, 2});
  ck::prune_gguf(pruned, again, heads({{0, {2}}, {1, {0, 2}}}));
  const io::GgufReader r2(again);
  CHECK(r2.find("mhaprune.head_ids.0")->as_int_array() == std::vector<std::int64_t>{0});
  CHECK(r2.find("mhaprune.kv_head_ids.0")->as_int_array() == std::vector<std::int64_t>{0});
  CHECK(row_of(r2, "blk.0.attn_q.weight", 3)[1] == value_at(0, 1, 3, 1));
  CHECK(row_of(r2, "blk.0.attn_k.weight", 3)[1] == value_at(0, 2, 3, 1));
}

TEST_CASE("prune_gguf: qwen2 to deci reorders kept Q/K rows from NEOX to NORM rotary order", "[gguf]") {
  TinySpec s;
  s.arch = "qwen2";
  s.q_bias = true;
  const TinyModel m = write_model(s);
  const std::string out = m.dir + "/pruned.gguf";
  ck::prune_gguf(ck::GgufModel::open(m.path), out, heads({{1, {0, 2}}}));
  const io::GgufReader r(out);
  CHECK(r.find("general.architecture")->as_string() == "deci");
  // Layer 1 keeps heads 1 and 3 (kv heads 0 and 1); layer 0 keeps all, reordered too.
  for (std::uint64_t j = 0; j < 16; ++j) {
    const std::uint64_t from = j % 2 == 0 ? j / 2 : 8 + j / 2;
    CHECK(row_of(r, "blk.1.attn_q.weight", 16 + j)[0] == value_at(1, 1, 3 * 16 + from, 0));
    CHECK(row_of(r, "blk.1.attn_k.weight", 16 + j)[0] == value_at(1, 2, 16 + from, 0));
    CHECK(row_of(r, "blk.1.attn_v.weight", 16 + j)[0] == value_at(1, 3, 16 + j, 0));  // V keeps its order
    CHECK(row_of(r, "blk.0.attn_q.weight", j)[0] == value_at(0, 1, from, 0));
    CHECK(row_of(r, "blk.1.attn_q.bias", 0)[16 + j] == value_at(1, 5, 0, 3 * 16 + from));
  }
  CHECK(row_of(r, "blk.1.attn_output.weight", 2)[17] == value_at(1, 4, 2, 3 * 16 + 1));  // O: no reorder

  // llama.cpp's qwen2 loader sizes Q and O by the embedding width: even uniform counts need deci.
  const std::string uniform = m.dir + "/uniform.gguf";
  const ck::GgufPruneResult result =
      ck::prune_gguf(ck::GgufModel::open(m.path), uniform, heads({{0, {0, 2}}, {1, {0, 2}}}));
  CHECK(result.architecture == "deci");
  const io::GgufReader u(uniform);
  CHECK(u.find("deci.attention.head_count")->as_int_array() == std::vector<std::int64_t>{2, 2});
  CHECK(row_of(u, "blk.0.attn_k.weight", 1)[0] == value_at(0, 2, 8, 0));
}

TEST_CASE("prune_gguf: O columns of quantized blocks: whole blocks copied, others refused or re-encoded",
          "[gguf]") {
  TinySpec s;
  s.type = io::GgmlType::Q8_0;
  const TinyModel m = write_model(s);
  const ck::GgufModel model = ck::GgufModel::open(m.path);
  const std::vector<char> before = file_bytes(m.path);
  const std::string out = m.dir + "/pruned.gguf";

  // 16-wide heads in 32-wide blocks: removing head 1 alone cuts a block.
  try {
    ck::prune_gguf(model, out, heads({{0, {1, 3}}, {1, {1, 3}}}));
    FAIL("no constraint_error");
  } catch (const mhaprune::constraint_error& e) {
    const std::string what = e.what();
    CHECK(what.find("blk.0.attn_output.weight") != std::string::npos);
    CHECK(what.find("q8_0") != std::string::npos);
    CHECK(what.find("blocks of 32") != std::string::npos);
  }
  CHECK_FALSE(exists(out));
  CHECK(entries_in(m.dir) == 1);
  CHECK(file_bytes(m.path) == before);

  // A whole key/value group (heads 2 and 3) fills one block of every row: copied as it is.
  ck::prune_gguf(model, out, heads({{0, {2, 3}}, {1, {2, 3}}}));
  {
    const io::GgufReader r(out), in(m.path);
    const io::GgufTensorInfo& o = r.tensor("blk.0.attn_output.weight");
    const io::GgufTensorInfo& o_in = in.tensor("blk.0.attn_output.weight");
    CHECK(o.type == io::GgmlType::Q8_0);
    for (std::uint64_t row = 0; row < 64; ++row)
      CHECK(std::memcmp(r.bytes(o).data() + row * 34, in.bytes(o_in).data() + row * 68, 34) == 0);
    CHECK(r.tensor("blk.0.attn_k.weight").ne == std::vector<std::uint64_t>{64, 16});
    CHECK(std::memcmp(r.bytes(r.tensor("blk.0.attn_k.weight")).data(),
                      in.bytes(in.tensor("blk.0.attn_k.weight")).data(), 16 * 68) == 0);
  }

  // With a re-encoding target the unaligned O alone is re-encoded; the values stay within Q8_0's step.
  ck::GgufPruneOptions g;
  g.requantize = io::GgmlType::Q8_0;
  ck::PruneOptions o = heads({{0, {1, 3}}, {1, {1, 3}}});
  o.overwrite = true;
  const ck::GgufPruneResult result = ck::prune_gguf(model, out, o, g);
  CHECK(result.requantized ==
        std::vector<std::string>{"blk.0.attn_output.weight", "blk.1.attn_output.weight"});
  const io::GgufReader r(out);
  CHECK(r.find("mhaprune.requantized")->as_string_array() == result.requantized);
  CHECK(r.tensor("blk.0.attn_q.weight").type == io::GgmlType::Q8_0);
  for (std::uint64_t row : {0u, 40u}) {
    const std::vector<float> got = row_of(r, "blk.1.attn_output.weight", row);
    for (std::uint64_t h = 0; h < 2; ++h)
      for (std::uint64_t j = 0; j < 16; ++j) {
        const float want = value_at(1, 4, row, (h * 2) * 16 + j);
        CHECK(std::abs(got[h * 16 + j] - want) <= 0.01f * std::abs(want) + 1.0f);
      }
  }
}

TEST_CASE("prune_gguf: refusals leave no output and the input unchanged", "[gguf]") {
  const TinyModel m = write_model({"gpt2"});
  const ck::GgufModel model = ck::GgufModel::open(m.path);
  const std::vector<char> before = file_bytes(m.path);
  const std::string out = m.dir + "/pruned.gguf";
  // Different counts per layer: only llama and qwen2 can become deci.
  CHECK_THAT(message_of<mhaprune::constraint_error>([&] {
               ck::prune_gguf(model, out, heads({{0, {1, 3}}}));
             }),
             Catch::Matchers::Contains("--scope local"));
  // Ragged groups and unknown ids.
  CHECK_THROWS_AS(ck::prune_gguf(model, out, heads({{0, {0}}})), mhaprune::removal_error);
  CHECK_THROWS_AS(ck::prune_gguf(model, out, heads({{0, {7}}})), mhaprune::head_id_error);
  // The input itself, and an existing file without overwrite.
  CHECK_THROWS_AS(ck::prune_gguf(model, m.path, heads({{0, {1, 3}}, {1, {1, 3}}})), mhaprune::io_error);
  { std::ofstream(m.dir + "/taken.gguf") << "x"; }
  CHECK_THROWS_AS(ck::prune_gguf(model, m.dir + "/taken.gguf", heads({{0, {1, 3}}, {1, {1, 3}}})),
                  mhaprune::io_error);
  // Compensation would change O's quantized values.
  ck::PruneOptions o = heads({{0, {1, 3}}, {1, {1, 3}}});
  o.compensation.method = mhaprune::CompensationMethod::bias;
  CHECK_THROWS_AS(ck::prune_gguf(model, out, o), mhaprune::config_error);
  CHECK_FALSE(exists(out));
  CHECK(entries_in(m.dir) == 2);
  CHECK(file_bytes(m.path) == before);
}

TEST_CASE("GgufModel: shapes that disagree with the head counts are named", "[gguf]") {
  TinySpec s;
  s.heads = 3;
  s.tensor_heads = 4;  // Q and O are written for 4 heads
  s.kv_heads = 1;
  s.key_length = false;  // and 64 / 3 is no width
  const TinyModel m = write_model(s);
  CHECK_THAT(message_of<ck::preset_error>([&] { ck::GgufModel::open(m.path); }),
             Catch::Matchers::Contains("does not split into layer 0's 3 heads"));
  s.key_length = true;
  const TinyModel m2 = write_model(s);
  CHECK_THAT(message_of<ck::preset_error>([&] { ck::GgufModel::open(m2.path); }),
             Catch::Matchers::Contains("blk.0.attn_q.weight\" has ne [64, 64]") &&
                 Catch::Matchers::Contains("needs [64, 48]"));
}

TEST_CASE("prune_gguf: scores quantized weights and keeps counts uniform in local scope", "[gguf]") {
  TinySpec s;
  s.type = io::GgmlType::Q8_0;
  s.head_dim = 32;
  s.heads = 4;
  s.kv_heads = 4;
  s.embd = 128;
  const TinyModel m = write_model(s);
  ck::PruneOptions o;
  o.config.target_sparsity = 0.5;
  o.config.pruning_scope = mhaprune::PruningScope::local;
  o.durable = false;
  const ck::GgufModel model = ck::GgufModel::open(m.path);
  const mhaprune::PruneReport scored = ck::score_gguf(model, o);
  REQUIRE(scored.blocks.size() == 2);
  CHECK(scored.blocks[0].scores.size() == 4);
  // Magnitude grows with the row index here, so the first heads are the weakest.
  CHECK(scored.blocks[0].scores[0] < scored.blocks[0].scores[3]);
  const ck::GgufPruneResult result = ck::prune_gguf(model, m.dir + "/pruned.gguf", o);
  CHECK(result.architecture == "llama");
  for (const auto& b : result.report.blocks) CHECK(b.removed == std::vector<Index>{0, 1});
}

TEST_CASE("prune_gguf: an imatrix scores with wanda_sp and is written sliced for the pruned model",
          "[gguf]") {
  const TinyModel m = write_model({});
  io::Imatrix im;
  im.chunk_count = 3;
  im.chunk_size = 512;
  im.datasets = {"calibration.txt"};
  for (std::uint64_t l = 0; l < 2; ++l) {
    io::ImatrixEntry o;
    o.name = "blk." + std::to_string(l) + ".attn_output.weight";
    o.count = 1536;
    // Head h's channels carry (h + 1)^2 energy in layer 0, reversed in layer 1.
    for (std::uint64_t c = 0; c < 64; ++c) {
      const double h = static_cast<double>(l == 0 ? c / 16 : 3 - c / 16);
      o.sum2.push_back((h + 1) * (h + 1) * 1536.0 + static_cast<double>(c % 16));
    }
    io::ImatrixEntry q = o;
    q.name = "blk." + std::to_string(l) + ".attn_q.weight";
    im.entries.push_back(q);
    im.entries.push_back(o);
  }
  std::sort(im.entries.begin(), im.entries.end(),
            [](const io::ImatrixEntry& a, const io::ImatrixEntry& b) { return a.name < b.name; });
  const std::map<std::string, mhaprune::ActivationStats> stats = io::imatrix_to_stats(im);
  REQUIRE(stats.count("blk.0.attn_output") == 1);

  ck::PruneOptions o;
  o.config.criterion_type = "wanda_sp";
  o.config.target_sparsity = 0.5;
  o.config.pruning_scope = mhaprune::PruningScope::local;
  o.stats = &stats;
  o.durable = false;
  ck::GgufPruneOptions g;
  g.imatrix = &im;
  g.imatrix_out = m.dir + "/pruned.imatrix.gguf";
  const ck::GgufPruneResult result =
      ck::prune_gguf(ck::GgufModel::open(m.path), m.dir + "/pruned.gguf", o, g);
  // One head per key/value group goes: the weaker of each pair by the imatrix's energy.
  CHECK(result.report.blocks[0].removed == std::vector<Index>{0, 2});
  CHECK(result.report.blocks[1].removed == std::vector<Index>{1, 3});

  const io::Imatrix out = io::read_imatrix(g.imatrix_out);
  REQUIRE(out.entries.size() == 4);
  const io::ImatrixEntry* o0 = out.find("blk.0.attn_output.weight");
  REQUIRE(o0 != nullptr);
  REQUIRE(o0->sum2.size() == 32);
  for (std::size_t c = 0; c < 32; ++c) {
    const std::size_t from = (c / 16 == 0 ? 16 : 48) + c % 16;  // heads 1 and 3 stay
    CHECK(o0->sum2[c] == Approx(im.find("blk.0.attn_output.weight")->sum2[from]));
  }
  CHECK(out.find("blk.1.attn_q.weight")->sum2.size() == 64);  // Q's input is the model width: unchanged
  CHECK(out.chunk_count == 3);

  // Methods that need a Gram matrix say the imatrix does not hold one.
  o.config.criterion_type = "obs";
  CHECK_THAT(message_of<mhaprune::evidence_error>(
                 [&] { ck::prune_gguf(ck::GgufModel::open(m.path), m.dir + "/other.gguf", o); }),
             Catch::Matchers::Contains("imatrix"));
  CHECK_FALSE(exists(m.dir + "/other.gguf"));
}

TEST_CASE("prune_gguf: a split model is read as a set and written as a set", "[gguf]") {
  const TinyModel m = write_model({});
  const io::GgufReader whole(m.path);
  const std::string prefix = m.dir + "/split";
  const auto total = static_cast<std::int64_t>(whole.tensors().size());
  for (int no = 1; no <= 2; ++no) {
    io::GgufWriter w;
    if (no == 1)
      for (const io::GgufKv& kv : whole.kvs()) w.add_kv(kv.key, kv.value);
    for (io::GgufKv& kv : io::gguf_split_kvs(no, 2, total)) w.add_kv(std::move(kv.key), std::move(kv.value));
    for (const io::GgufTensorInfo& t : whole.tensors()) {
      const bool second = t.name.rfind("blk.1.", 0) == 0 || t.name == "output_norm.weight";
      if (second == (no == 2)) w.add_tensor(t.name, t.type, t.ne, whole.bytes(t));
    }
    w.write(io::gguf_split_path(prefix, no, 2));
  }
  // Opened from its second shard; the output is named after -o.
  const ck::GgufModel model = ck::GgufModel::open(io::gguf_split_path(prefix, 2, 2));
  REQUIRE(model.blocks().size() == 2);
  const ck::GgufPruneResult result =
      ck::prune_gguf(model, m.dir + "/pruned.gguf", heads({{0, {1, 3}}, {1, {0, 2}}}));
  REQUIRE(result.output_files == std::vector<std::string>{m.dir + "/pruned-00001-of-00002.gguf",
                                                          m.dir + "/pruned-00002-of-00002.gguf"});
  const ck::GgufModel pruned = ck::GgufModel::open(result.output_files[0]);
  CHECK(pruned.files().is_split());
  CHECK(pruned.blocks()[1].head_ids == std::vector<Index>{1, 3});
  const io::GgufReader second(result.output_files[1]);
  CHECK(second.find("split.no")->as_int() == 1);      // 0-based, as gguf-split writes it
  CHECK(second.find("mhaprune.version") == nullptr);  // model keys stay in shard 1
  CHECK(second.tensor("blk.1.attn_q.weight").ne == std::vector<std::uint64_t>{64, 32});
  CHECK(row_of(second, "blk.1.attn_q.weight", 16)[2] == value_at(1, 1, 3 * 16, 2));
}

TEST_CASE("prune_gguf: per-head norms and attention sinks lose the removed heads", "[gguf]") {
  TinySpec s;
  s.per_head_extras = true;
  const TinyModel m = write_model(s);
  const ck::GgufModel model = ck::GgufModel::open(m.path);
  CHECK(model.extras(0).q_norm == "blk.0.attn_q_norm.weight");
  CHECK(model.extras(0).sinks == "blk.0.attn_sinks.weight");
  const std::string out = m.dir + "/pruned.gguf";
  // Layer 0 loses query heads 1 and 3; layer 1 loses the whole key/value group 1 (heads 2 and 3).
  ck::prune_gguf(model, out, heads({{0, {1, 3}}, {1, {2, 3}}}));
  const io::GgufReader r(out);
  CHECK(r.tensor("blk.0.attn_q_norm.weight").ne == std::vector<std::uint64_t>{16, 2});
  CHECK(row_of(r, "blk.0.attn_q_norm.weight", 1)[4] == value_at(0, 7, 2, 4));
  CHECK(r.tensor("blk.0.attn_k_norm.weight").ne == std::vector<std::uint64_t>{32});  // both K/V heads stay
  CHECK(r.tensor("blk.1.attn_k_norm.weight").ne == std::vector<std::uint64_t>{16});
  CHECK(row_of(r, "blk.1.attn_k_norm.weight", 0)[3] == value_at(1, 8, 0, 3));
  CHECK(row_of(r, "blk.0.attn_sinks.weight", 0) ==
        std::vector<float>{value_at(0, 9, 0, 0), value_at(0, 9, 0, 2)});
  CHECK(row_of(r, "blk.1.attn_sinks.weight", 0) ==
        std::vector<float>{value_at(1, 9, 0, 0), value_at(1, 9, 0, 1)});
}

TEST_CASE("prune_gguf: a fused attn_qkv loses the removed heads' rows in each of its segments", "[gguf]") {
  TinySpec s;
  s.fused_qkv = true;
  s.arch = "phi3";
  const TinyModel m = write_model(s);
  const std::string out = m.dir + "/pruned.gguf";
  // Layer 0 and 1 lose query heads 1 and 3 (one per group): both K/V heads stay.
  ck::prune_gguf(ck::GgufModel::open(m.path), out, heads({{0, {1, 3}}, {1, {1, 3}}}));
  const io::GgufReader r(out);
  CHECK(r.find("phi3.attention.head_count")->as_int() == 2);
  CHECK(r.tensor("blk.0.attn_qkv.weight").ne == std::vector<std::uint64_t>{64, 96});
  for (std::uint64_t j = 0; j < 16; ++j) {
    CHECK(row_of(r, "blk.0.attn_qkv.weight", j)[7] == value_at(0, 1, j, 7));             // Q head 0
    CHECK(row_of(r, "blk.0.attn_qkv.weight", 16 + j)[7] == value_at(0, 1, 32 + j, 7));   // Q head 2
    CHECK(row_of(r, "blk.0.attn_qkv.weight", 32 + j)[7] == value_at(0, 1, 64 + j, 7));   // K head 0
    CHECK(row_of(r, "blk.0.attn_qkv.weight", 80 + j)[7] == value_at(0, 1, 112 + j, 7));  // V head 1
  }
}

TEST_CASE("GgufBlockDecoder: magnitude read row by row equals the decoded block's, bit for bit", "[gguf]") {
  // Types with and without a min, separate and fused Q/K/V, GQA. The row path is the same for
  // every type (dequantize_row), so the types ggml can encode here stand for all.
  for (const io::GgmlType type : {io::GgmlType::F32, io::GgmlType::F16, io::GgmlType::BF16,
                                  io::GgmlType::Q8_0, io::GgmlType::Q4_1, io::GgmlType::Q5_0}) {
    for (const bool fused : {false, true}) {
      INFO(io::to_string(type) << (fused ? " fused" : " separate"));
      TinySpec s;
      s.type = type;
      s.embd = 256;
      s.head_dim = 64;
      s.fused_qkv = fused;
      if (fused) s.arch = "phi3";
      const TinyModel m = write_model(s);
      const ck::GgufModel model = ck::GgufModel::open(m.path);
      ck::GgufBlockDecoder decoder;
      for (const ck::BlockInfo& info : model.blocks()) {
        for (const mhaprune::Reduction r : mhaprune::all_reductions) {
          const mhaprune::Magnitude c(r, mhaprune::RoleWeights{1.0, 2.0, 0.5, 1.0});
          const Eigen::VectorXd by_row = decoder.score_by_row(c, model, info);
          const Eigen::VectorXd decoded = c.scores(decoder.decode(model, info));
          CHECK(by_row == decoded);
        }
      }
    }
  }
}

TEST_CASE("GgufBlockDecoder: magnitude by row against means computed here from the decoded rows", "[gguf]") {
  TinySpec s;  // llama, F32, 4 heads of 16, 2 K/V heads
  const TinyModel m = write_model(s);
  const ck::GgufModel model = ck::GgufModel::open(m.path);
  const io::GgufReader r(m.path);
  ck::GgufBlockDecoder decoder;
  const ck::BlockInfo& info = model.blocks()[1];
  const Eigen::VectorXd scores = decoder.score_by_row(mhaprune::Magnitude{}, model, info);
  REQUIRE(scores.size() == 4);
  const auto mean_abs = [&](const std::string& name, std::uint64_t row0, std::uint64_t rows,
                            std::uint64_t col0, std::uint64_t cols) {
    const io::GgufTensorInfo& t = r.tensor(name);
    std::vector<float> row(t.ne[0]);
    double sum = 0;
    for (std::uint64_t i = row0; i < row0 + rows; ++i) {
      io::dequantize_row(t.type, r.bytes(t).data() + i * t.row_bytes(), row.data(),
                         static_cast<std::int64_t>(t.ne[0]));
      for (std::uint64_t j = col0; j < col0 + cols; ++j) sum += std::abs(static_cast<double>(row[j]));
    }
    return sum / static_cast<double>(rows * cols);
  };
  for (std::uint64_t h = 0; h < 4; ++h) {
    const std::uint64_t kv = h / 2;
    const double expected = (mean_abs("blk.1.attn_q.weight", h * 16, 16, 0, 64) +
                             mean_abs("blk.1.attn_k.weight", kv * 16, 16, 0, 64) +
                             mean_abs("blk.1.attn_v.weight", kv * 16, 16, 0, 64) +
                             mean_abs("blk.1.attn_output.weight", 0, 64, h * 16, 16)) /
                            4;
    CHECK(scores(static_cast<Index>(h)) == Approx(expected).epsilon(1e-6));
  }
}

TEST_CASE("prune_gguf: weights of a type mhaprune cannot decode are named, whichever way it scores",
          "[gguf]") {
  TinySpec s;
  s.type = io::GgmlType::TQ2_0;  // 256-element blocks
  s.embd = 256;
  s.head_dim = 64;
  const TinyModel m = write_model(s);
  const ck::GgufModel model = ck::GgufModel::open(m.path);
  const std::vector<char> before = file_bytes(m.path);
  const std::string out = m.dir + "/pruned.gguf";
  // Magnitude reads row by row (GgufBlockDecoder::score_by_row); gradient-free criteria other than
  // magnitude decode the block (GgufBlockDecoder::decode): the same refusal.
  for (const char* criterion : {"magnitude", "random"}) {
    INFO(criterion);
    ck::PruneOptions o;
    o.config.target_sparsity = 0.5;
    o.config.pruning_scope = mhaprune::PruningScope::local;
    o.config.criterion_type = criterion;
    o.durable = false;
    CHECK(message_of<mhaprune::unsupported_dtype_error>([&] { ck::prune_gguf(model, out, o); }) ==
          m.path +
              ": block \"blk.0\": tensor \"blk.0.attn_q.weight\" is tq2_0, which mhaprune cannot decode to "
              "score heads; name the heads to remove (--heads) instead");
    CHECK_FALSE(exists(out));
  }
  CHECK(entries_in(m.dir) == 1);
  CHECK(file_bytes(m.path) == before);
}

}  // namespace test_gguf_prune
