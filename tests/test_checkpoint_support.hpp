// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
// Helpers of the tests/test_checkpoint_*.cpp files: temporary directories, small synthetic
// checkpoints of every built-in architecture, and the checks every pruned checkpoint must pass.
#pragma once

#include <stdlib.h>
#include <sys/stat.h>

#include <Eigen/Core>
#include <catch2/catch.hpp>
#include <cstring>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "mhaprune/checkpoint/checkpoint.hpp"
#include "mhaprune/core/mask_heads.hpp"
#include "mhaprune/io/safetensors.hpp"
#include "mhaprune/reference/attention.hpp"

namespace test_checkpoint_support {

namespace ck = mhaprune::checkpoint;
namespace io = mhaprune::io;
using mhaprune::Index;

/// A fresh directory under /tmp, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/mhaprune-ckpt-test-XXXXXX";
    const char* made = ::mkdtemp(pattern);
    REQUIRE(made != nullptr);
    path_ = made;
  }
  ~TempDir() { ck::detail::remove_tree(path_); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string operator/(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

inline bool exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

inline std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> out;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (const dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n != "." && n != "..") out.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

inline std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

inline nlohmann::json read_json(const std::string& path) { return nlohmann::json::parse(read_file(path)); }

/// Random weights, reproducible.
class Weights {
 public:
  explicit Weights(unsigned seed) : rng_(seed) {}
  Eigen::MatrixXf matrix(Index rows, Index cols) {
    Eigen::MatrixXf m(rows, cols);
    for (Index j = 0; j < cols; ++j)
      for (Index i = 0; i < rows; ++i) m(i, j) = dist_(rng_);
    return m;
  }
  Eigen::VectorXf vector(Index n) {
    Eigen::VectorXf v(n);
    for (Index i = 0; i < n; ++i) v(i) = dist_(rng_);
    return v;
  }

 private:
  std::mt19937 rng_;
  std::normal_distribution<float> dist_{0.0f, 0.3f};
};

/// The shape of a small synthetic model.
struct Spec {
  Index layers = 3, heads = 4, kv_heads = 4, head_dim = 4;
  io::Dtype dtype = io::Dtype::F32;
  bool biases = true;
  std::string prefix;  ///< "bert.", "model.", ...
  Index model_dim() const { return heads * head_dim; }
};

/// Adds the non-attention tensors every synthetic model has (copied through untouched).
inline void add_others(io::SafetensorsWriter& w, Weights& rng, const Spec& s,
                       const std::string& layer_prefix) {
  w.add(s.prefix + "embeddings.weight", rng.matrix(32, s.model_dim()), s.dtype);
  for (Index l = 0; l < s.layers; ++l)
    w.add(layer_prefix + std::to_string(l) + ".mlp.weight", rng.matrix(2 * s.model_dim(), s.model_dim()),
          s.dtype);
  // A non-float tensor, copied through byte for byte.
  static const std::int64_t ids[4] = {0, 1, 2, 3};
  w.add(s.prefix + "position_ids", io::Dtype::I64, {1, 4},
        io::ByteSpan(reinterpret_cast<const std::byte*>(ids), 32));
}

inline void write_model(const std::string& dir, io::SafetensorsWriter& w, const nlohmann::json& config,
                        std::uint64_t shard_bytes = 0) {
  w.set_metadata({{"format", "pt"}});
  if (shard_bytes == 0) {
    w.write(dir + "/model.safetensors", io::WriteOptions{false});
  } else {
    io::ShardOptions o;
    o.max_shard_bytes = shard_bytes;
    o.write.durable = false;
    const auto result = io::write_sharded(w, dir, o);
    REQUIRE(result.shard_files.size() > 1);
  }
  if (!config.is_null()) write_file(dir + "/config.json", config.dump(2));
}

/// BERT-style ("bert.encoder.layer.N.attention.self.query", ...); `vit` for ViT's names.
inline void make_bert(const std::string& dir, const Spec& s, bool vit = false, std::uint64_t shard_bytes = 0,
                      bool with_config = true) {
  Weights rng(11);
  io::SafetensorsWriter w;
  const Index D = s.model_dim();
  const std::string self = vit ? "attention.attention." : "attention.self.";
  for (Index l = 0; l < s.layers; ++l) {
    const std::string b = s.prefix + "encoder.layer." + std::to_string(l) + ".";
    for (const char* r : {"query", "key", "value"}) {
      w.add(b + self + r + ".weight", rng.matrix(D, D), s.dtype);
      w.add(b + self + r + ".bias", rng.vector(D), s.dtype);
    }
    w.add(b + "attention.output.dense.weight", rng.matrix(D, D), s.dtype);
    w.add(b + "attention.output.dense.bias", rng.vector(D), s.dtype);
    w.add(b + "attention.output.LayerNorm.weight", rng.vector(D), s.dtype);
  }
  add_others(w, rng, s, s.prefix + "encoder.layer.");
  nlohmann::json config;
  if (with_config) {
    config = {{"model_type", vit ? "vit" : "bert"},
              {"num_attention_heads", s.heads},
              {"hidden_size", D},
              {"num_hidden_layers", s.layers}};
  }
  write_model(dir, w, config, shard_bytes);
}

/// GPT-2 style: Conv1D c_attn [D, 3D] + bias, c_proj [D, D] + bias, stored [in, out].
inline void make_gpt2(const std::string& dir, const Spec& s, bool with_config = true) {
  Weights rng(12);
  io::SafetensorsWriter w;
  const Index D = s.model_dim();
  for (Index l = 0; l < s.layers; ++l) {
    const std::string b = s.prefix + "h." + std::to_string(l) + ".attn.";
    w.add(b + "c_attn.weight", rng.matrix(D, 3 * D), s.dtype);
    w.add(b + "c_attn.bias", rng.vector(3 * D), s.dtype);
    w.add(b + "c_proj.weight", rng.matrix(D, D), s.dtype);
    w.add(b + "c_proj.bias", rng.vector(D), s.dtype);
  }
  add_others(w, rng, s, s.prefix + "h.");
  nlohmann::json config;
  if (with_config)
    config = {{"model_type", "gpt2"}, {"n_head", s.heads}, {"n_embd", D}, {"n_layer", s.layers}};
  write_model(dir, w, config);
}

/// LLaMA / Qwen2 style: q/k/v/o_proj, GQA, optional q/k/v biases, no o bias.
inline void make_llama(const std::string& dir, const Spec& s, const std::string& model_type = "llama",
                       std::uint64_t shard_bytes = 0) {
  Weights rng(13);
  io::SafetensorsWriter w;
  const Index D = s.model_dim(), d = s.head_dim;
  for (Index l = 0; l < s.layers; ++l) {
    const std::string b = s.prefix + "layers." + std::to_string(l) + ".self_attn.";
    w.add(b + "q_proj.weight", rng.matrix(s.heads * d, D), s.dtype);
    w.add(b + "k_proj.weight", rng.matrix(s.kv_heads * d, D), s.dtype);
    w.add(b + "v_proj.weight", rng.matrix(s.kv_heads * d, D), s.dtype);
    w.add(b + "o_proj.weight", rng.matrix(D, s.heads * d), s.dtype);
    if (s.biases) {
      w.add(b + "q_proj.bias", rng.vector(s.heads * d), s.dtype);
      w.add(b + "k_proj.bias", rng.vector(s.kv_heads * d), s.dtype);
      w.add(b + "v_proj.bias", rng.vector(s.kv_heads * d), s.dtype);
    }
  }
  add_others(w, rng, s, s.prefix + "layers.");
  nlohmann::json config = {{"model_type", model_type},
                           {"num_attention_heads", s.heads},
                           {"num_key_value_heads", s.kv_heads},
                           {"hidden_size", D},
                           {"num_hidden_layers", s.layers}};
  write_model(dir, w, config, shard_bytes);
}

/// GPT-NeoX style: query_key_value [3D, D] interleaved per head + bias, dense [D, D] + bias.
inline void make_neox(const std::string& dir, const Spec& s) {
  Weights rng(14);
  io::SafetensorsWriter w;
  const Index D = s.model_dim();
  for (Index l = 0; l < s.layers; ++l) {
    const std::string b = s.prefix + "layers." + std::to_string(l) + ".attention.";
    w.add(b + "query_key_value.weight", rng.matrix(3 * D, D), s.dtype);
    w.add(b + "query_key_value.bias", rng.vector(3 * D), s.dtype);
    w.add(b + "dense.weight", rng.matrix(D, D), s.dtype);
    w.add(b + "dense.bias", rng.vector(D), s.dtype);
  }
  add_others(w, rng, s, s.prefix + "layers.");
  write_model(dir, w,
              {{"model_type", "gpt_neox"},
               {"num_attention_heads", s.heads},
               {"hidden_size", D},
               {"num_hidden_layers", s.layers}});
}

/// The bytes of every tensor of a checkpoint, by name.
inline std::map<std::string, std::vector<std::byte>> all_bytes(const io::ShardedReader& r) {
  std::map<std::string, std::vector<std::byte>> out;
  for (const auto& [name, file] : r.weight_map()) {
    const auto view = r.tensor(name);
    out[name].assign(view.bytes().begin(), view.bytes().end());
  }
  return out;
}

/// Checks a pruned checkpoint against the one it came from, block by block:
/// - the blocks and their names agree, every output block's heads are a subset of the input's;
/// - every tensor outside the blocks is byte-identical, every block tensor has the dtype it had;
/// - every kept head's values are bit-identical (the input block pruned by the core and written
///   in the same dtype gives exactly the output's bytes);
/// - the output block's reference forward equals the input block's with the removed heads masked.
inline void check_pruned(const ck::Checkpoint& in, const ck::Checkpoint& out, bool causal = false) {
  REQUIRE(in.blocks().size() == out.blocks().size());
  CHECK(in.architecture() == out.architecture());
  const auto& ri = in.reader();
  const auto& ro = out.reader();
  for (const auto& [name, file] : ri.weight_map()) {
    REQUIRE(ro.contains(name));
    CHECK(ro.info(name).dtype == ri.info(name).dtype);
    if (in.is_block_tensor(name)) continue;
    const auto a = ri.tensor(name).bytes(), b = ro.tensor(name).bytes();
    REQUIRE(a.size() == b.size());
    CHECK(std::memcmp(a.data(), b.data(), a.size()) == 0);
  }
  for (std::size_t i = 0; i < in.blocks().size(); ++i) {
    const ck::BlockInfo& bi = in.blocks()[i];
    const ck::BlockInfo& bo = out.blocks()[i];
    INFO("block " << bi.name);
    REQUIRE(bi.name == bo.name);
    CHECK(bo.original_heads == bi.original_heads);
    CHECK(bo.original_kv_heads == bi.original_kv_heads);
    std::vector<Index> removed;
    for (Index id : bi.head_ids)
      if (std::find(bo.head_ids.begin(), bo.head_ids.end(), id) == bo.head_ids.end()) removed.push_back(id);
    CHECK(static_cast<Index>(removed.size() + bo.head_ids.size()) == bi.layout.heads());

    // Bit-identical kept values: the core's removal of the same heads, written in the same dtypes.
    ck::LoadedBlock<float> pruned(ri, bi);
    mhaprune::remove_heads(pruned.block(), mhaprune::OriginalIds(removed));
    CHECK(pruned.block().head_ids() == bo.head_ids);
    CHECK(pruned.block().kv_head_ids() == bo.kv_head_ids);
    for (const auto& name : bi.tensor_names) {
      INFO("tensor " << name);
      io::SafetensorsWriter w;
      w.add_streamed("t", pruned.dtype(name), pruned.shape(name),
                     [&](io::ByteSink& sink) { pruned.emit(name, sink); });
      TempDir scratch;
      w.write(scratch / "t.safetensors", io::WriteOptions{false});
      io::SafetensorsReader expected(scratch / "t.safetensors");
      const auto e = expected.tensor("t");
      const auto got = ro.tensor(name);
      REQUIRE(got.shape() == e.shape());
      REQUIRE(got.bytes().size() == e.bytes().size());
      CHECK(std::memcmp(got.bytes().data(), e.bytes().data(), e.bytes().size()) == 0);
    }

    // Forward equivalence with the masked original.
    ck::LoadedBlock<float> original(ri, bi);
    ck::LoadedBlock<float> result(ro, bo);
    mhaprune::HeadMask mask(bi.layout.heads());
    for (Index id : removed) mask.remove(original.block().position_of(id));
    Weights rng(99);
    const Eigen::MatrixXd x = rng.matrix(5, bi.layout.model_dim()).cast<double>();
    mhaprune::reference::AttentionOptions masked_options;
    masked_options.causal = causal;
    masked_options.mask = mask;
    mhaprune::reference::AttentionOptions plain;
    plain.causal = causal;
    const Eigen::MatrixXd want = mhaprune::reference::attention(x, original.block(), masked_options);
    const Eigen::MatrixXd got = mhaprune::reference::attention(x, result.block(), plain);
    REQUIRE(got.rows() == want.rows());
    CHECK((got - want).cwiseAbs().maxCoeff() <= 1e-9 + 1e-9 * want.cwiseAbs().maxCoeff());
  }
}

// Prunes `dir` with `options`, reads the result back and checks it against the input.
inline ck::Checkpoint prune_and_check(const std::string& dir, const std::string& out,
                                      const ck::PruneOptions& options, bool causal = false) {
  const auto in = ck::Checkpoint::open(dir);
  const auto report = ck::prune_checkpoint(in, out, options);
  CHECK(report.heads_removed() > 0);
  auto result = ck::Checkpoint::open(out);
  check_pruned(in, result, causal);
  return result;
}

/// Options for a plain magnitude prune.
inline ck::PruneOptions sparsity(double target, const std::string& scope = "global") {
  ck::PruneOptions o;
  o.config.target_sparsity = target;
  o.config.pruning_scope = mhaprune::parse_pruning_scope(scope);
  o.durable = false;
  return o;
}

}  // namespace test_checkpoint_support
