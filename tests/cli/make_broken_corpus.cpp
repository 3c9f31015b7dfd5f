// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// mhaprune_make_broken_corpus BERT_DIR OUT_DIR
//
// Writes the corpus of broken checkpoints the CLI tests run `mhaprune prune` on, each a small edit
// of the tiny BERT checkpoint (tests/data/tiny-bert) in a directory of its own under OUT_DIR, plus
// calibration-statistics files (good and broken). Generated at test time so the repository holds no
// binary junk, and so every case says in code what is wrong with it.

#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using Bytes = std::string;
using nlohmann::json;

Bytes read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + ": cannot be read");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_file(const std::string& path, const Bytes& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) throw std::runtime_error(path + ": cannot be written");
}

void make_dir(const std::string& path) {
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST)
    throw std::runtime_error(path + ": cannot be created");
}

Bytes u64_le(std::uint64_t n) {
  Bytes b(8, '\0');
  for (int i = 0; i < 8; ++i) b[static_cast<std::size_t>(i)] = static_cast<char>((n >> (8 * i)) & 0xff);
  return b;
}

/// A safetensors file split into its header (parsed) and its data section.
struct Safetensors {
  json header;
  Bytes data;

  static Safetensors parse(const Bytes& file) {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(file[static_cast<std::size_t>(i)]);
    return {json::parse(file.substr(8, n)), file.substr(8 + n)};
  }
  Bytes bytes() const {
    Bytes text = header.dump();
    text.resize((text.size() + 7) / 8 * 8, ' ');
    return u64_le(text.size()) + text + data;
  }
};

struct Corpus {
  std::string out;
  Bytes config, model;

  /// OUT/name/{config.json, model.safetensors}.
  void add(const std::string& name, const Bytes& model_bytes, const Bytes& config_bytes) const {
    make_dir(out + "/" + name);
    write_file(out + "/" + name + "/config.json", config_bytes);
    write_file(out + "/" + name + "/model.safetensors", model_bytes);
  }
  void add(const std::string& name, const Bytes& model_bytes) const { add(name, model_bytes, config); }
  void add(const std::string& name, const Safetensors& st) const { add(name, st.bytes(), config); }
};

const std::string q0 = "bert.encoder.layer.0.attention.self.query.weight";
const std::string k0 = "bert.encoder.layer.0.attention.self.key.weight";
const std::string v0 = "bert.encoder.layer.0.attention.self.value.weight";
const std::string k1 = "bert.encoder.layer.1.attention.self.key.weight";

/// Statistics of the O projections' inputs, in the format of mhaprune/io/stats_file.hpp, from
/// random samples so that they are consistent (m2, sumsq and gram agree with the mean).
Safetensors stats_file(int layers, int width, bool with_gram) {
  std::mt19937 rng(5);
  std::normal_distribution<double> normal(0.0, 1.0);
  Safetensors st;
  st.header = json::object();
  const auto add = [&st](const std::string& name, const std::vector<std::uint64_t>& shape,
                         const std::vector<double>& values) {
    const std::uint64_t begin = st.data.size();
    st.data.append(reinterpret_cast<const char*>(values.data()), values.size() * sizeof(double));
    st.header[name] = {{"dtype", "F64"}, {"shape", shape}, {"data_offsets", {begin, st.data.size()}}};
  };
  const int samples = 32;
  for (int l = 0; l < layers; ++l) {
    const std::string p = "bert.encoder.layer." + std::to_string(l) + ".attention.output.dense.input.";
    std::vector<std::vector<double>> x(samples, std::vector<double>(static_cast<std::size_t>(width)));
    for (auto& row : x)
      for (std::size_t c = 0; c < row.size(); ++c) row[c] = normal(rng) * (1.0 + static_cast<double>(c % 7));
    const auto w = static_cast<std::size_t>(width);
    std::vector<double> mean(w, 0), m2(w, 0), sumsq(w, 0), gram(w * w, 0);
    for (const auto& row : x)
      for (std::size_t c = 0; c < w; ++c) {
        mean[c] += row[c] / samples;
        sumsq[c] += row[c] * row[c];
        for (std::size_t e = 0; e < w; ++e) gram[c * w + e] += row[c] * row[e];
      }
    for (const auto& row : x)
      for (std::size_t c = 0; c < w; ++c) m2[c] += (row[c] - mean[c]) * (row[c] - mean[c]);
    add(p + "count", {1}, {static_cast<double>(samples)});
    add(p + "mean", {w}, mean);
    add(p + "m2", {w}, m2);
    add(p + "sumsq", {w}, sumsq);
    if (with_gram) add(p + "gram", {w, w}, gram);
  }
  return st;
}

void run(const std::string& bert_dir, const std::string& out) {
  std::filesystem::remove_all(out);  // a fresh corpus each run
  std::filesystem::create_directories(out);
  const Corpus c{out, read_file(bert_dir + "/config.json"), read_file(bert_dir + "/model.safetensors")};
  const Safetensors good = Safetensors::parse(c.model);

  c.add("truncated", c.model.substr(0, c.model.size() / 2));
  c.add("empty_file", Bytes());
  c.add("header_past_eof", u64_le(c.model.size()) + c.model.substr(8));
  c.add("header_length_2p63", u64_le(std::uint64_t{1} << 63) + c.model.substr(8));
  {
    // query.weight claims key.weight's bytes (same size). key.weight comes first in the file, so the
    // overlap is met before the hole query.weight leaves.
    Safetensors st = good;
    st.header[q0]["data_offsets"] = st.header[k0]["data_offsets"];
    c.add("overlapping_offsets", st);
  }
  {
    Safetensors st = good;  // value.weight's bytes moved past the end of the data
    const std::uint64_t size = st.header[v0]["data_offsets"][1].get<std::uint64_t>() -
                               st.header[v0]["data_offsets"][0].get<std::uint64_t>();
    st.header[v0]["data_offsets"] = {st.data.size(), st.data.size() + size};
    c.add("out_of_range_offsets", st);
  }
  {
    Safetensors st = good;
    st.header[q0]["shape"] = {64, 63};
    c.add("shape_byte_mismatch", st);
  }
  {
    Bytes text = good.bytes();  // same length and data; the header's JSON is broken
    const std::string bad = R"({"__metadata__": {"format": "pt"},, "x": })";
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(text[static_cast<std::size_t>(i)]);
    text.replace(8, n, bad + std::string(n - bad.size(), ' '));
    c.add("bad_json", text);
  }
  {
    Safetensors st = good;
    st.header[q0]["dtype"] = "Q7";  // no such dtype: its size is unknown, so the file cannot be checked
    c.add("unknown_dtype", st);
  }
  {
    Safetensors st = good;
    st.header[q0]["dtype"] = "I32";  // a real dtype of the right size that cannot be pruned as floats
    c.add("integer_attention_weight", st);
  }
  {
    Safetensors st = good;  // an integer tensor the prune does not touch: copied through (exit 0)
    st.header["bert.embeddings.token_type_embeddings.weight"]["dtype"] = "I32";
    c.add("integer_passthrough_tensor", st);
  }
  {
    Safetensors st = good;
    st.header["bert.encoder.layer.1.attention.self.key_renamed.weight"] = st.header[k1];
    st.header.erase(k1);
    c.add("missing_attention_tensor", st);
  }
  {
    json config = json::parse(c.config);
    config["num_attention_heads"] = 5;  // 64 is not a multiple of 5
    c.add("heads_not_dividing_width", c.model, config.dump(2));
  }
  c.add("bad_config_json", c.model, c.config.substr(0, c.config.size() / 2));
  {
    make_dir(out + "/missing_shard");  // the index sends one tensor to a shard that is not there
    write_file(out + "/missing_shard/config.json", c.config);
    write_file(out + "/missing_shard/model-00001-of-00002.safetensors", c.model);
    json index = {{"metadata", {{"total_size", good.data.size()}}}, {"weight_map", json::object()}};
    for (const auto& item : good.header.items())
      if (item.key() != "__metadata__") index["weight_map"][item.key()] = "model-00001-of-00002.safetensors";
    index["weight_map"][k1] = "model-00002-of-00002.safetensors";
    write_file(out + "/missing_shard/model.safetensors.index.json", index.dump(2));
  }

  write_file(out + "/bad_config.json", R"({"sparsity": 0.2})");  // the key is "target_sparsity"

  const int layers = json::parse(c.config).at("num_hidden_layers").get<int>();
  const int width = json::parse(c.config).at("hidden_size").get<int>();
  const Safetensors stats = stats_file(layers, width, true);
  write_file(out + "/stats_good.safetensors", stats.bytes());
  write_file(out + "/stats_truncated.safetensors", stats.bytes().substr(0, stats.bytes().size() - 100));
  write_file(out + "/stats_garbage.safetensors", "this is not a safetensors file, just text. ");
  write_file(out + "/stats_wrong_width.safetensors", stats_file(layers, width - 1, false).bytes());
  {
    Safetensors st = stats;
    st.header.erase("bert.encoder.layer.2.attention.output.dense.input.m2");
    // The data section keeps m2's bytes, so declare them as padding: rewrite as a new file.
    Safetensors compact;
    compact.header = json::object();
    for (const auto& item : st.header.items()) {
      const auto b = item.value()["data_offsets"][0].get<std::uint64_t>();
      const auto e = item.value()["data_offsets"][1].get<std::uint64_t>();
      json entry = item.value();
      entry["data_offsets"] = {compact.data.size(), compact.data.size() + (e - b)};
      compact.data += st.data.substr(b, e - b);
      compact.header[item.key()] = entry;
    }
    write_file(out + "/stats_missing_m2.safetensors", compact.bytes());
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s BERT_DIR OUT_DIR\n", argv[0]);
    return 2;
  }
  try {
    run(argv[1], argv[2]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_broken_corpus: %s\n", e.what());
    return 1;
  }
  return 0;
}
