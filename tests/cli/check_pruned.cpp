// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// mhaprune_check_pruned ORIGINAL_DIR PRUNED_DIR [--expect-removed N]
//
// An independent check of a checkpoint the `mhaprune` tool wrote from ORIGINAL_DIR (Qwen2/LLaMA-
// or BERT-style, unpruned). It does not use the library's presets: tensor names and head counts come
// from config.json by the Hugging Face conventions, so a preset bug cannot hide itself. It checks
//   - the `mhaprune` section of config.json: per layer, counts agree with ids, kept + removed ids are
//     exactly the original heads, the key/value heads kept are those the kept query heads use; for
//     BERT also Hugging Face's `pruned_heads` and the unchanged `num_attention_heads`;
//   - every tensor: block tensors have the pruned shapes and hold exactly the original rows/columns
//     of the kept heads; every other tensor is byte-identical; no tensor is missing or added;
//   - every pruned block's reference forward (mhaprune::reference::attention, double) equals the
//     original block's forward with the removed heads masked, on random inputs.
// Exit 0 and "OK" when all holds; 1 and the first failure otherwise.

#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <mhaprune/io/sharded.hpp>
#include <mhaprune/layouts/separate_qkv.hpp>
#include <mhaprune/reference/attention.hpp>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

using mhaprune::Index;
using Matrix = mhaprune::io::RowMatrix<double>;
using Vector = mhaprune::io::Vector<double>;

struct failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename... Parts>
[[noreturn]] void fail(Parts&&... parts) {
  throw failure(mhaprune::detail::message(std::forward<Parts>(parts)...));
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail(path, ": cannot be read");
  std::stringstream text;
  text << in.rdbuf();
  return nlohmann::json::parse(text.str());
}

Index count(const nlohmann::json& config, const char* key, Index fallback) {
  const auto it = config.find(key);
  return it == config.end() || it->is_null() ? fallback : it->get<Index>();
}

/// The tensor names of one layer by the Hugging Face conventions.
struct LayerNames {
  std::string block, q, k, v, o, q_bias, k_bias, v_bias, o_bias;
  std::vector<std::string> all() const {
    std::vector<std::string> out;
    for (const std::string* n : {&q, &k, &v, &o, &q_bias, &k_bias, &v_bias, &o_bias})
      if (!n->empty()) out.push_back(*n);
    return out;
  }
};

LayerNames layer_names(bool bert, Index i, const mhaprune::io::ShardedReader& r) {
  LayerNames n;
  const std::string p = bert ? "bert.encoder.layer." + std::to_string(i) + ".attention"
                             : "model.layers." + std::to_string(i) + ".self_attn";
  n.block = p;
  const auto optional = [&r](const std::string& name) { return r.contains(name) ? name : std::string(); };
  if (bert) {
    n.q = p + ".self.query.weight", n.k = p + ".self.key.weight", n.v = p + ".self.value.weight";
    n.o = p + ".output.dense.weight";
    n.q_bias = optional(p + ".self.query.bias"), n.k_bias = optional(p + ".self.key.bias");
    n.v_bias = optional(p + ".self.value.bias"), n.o_bias = optional(p + ".output.dense.bias");
  } else {
    n.q = p + ".q_proj.weight", n.k = p + ".k_proj.weight", n.v = p + ".v_proj.weight",
    n.o = p + ".o_proj.weight";
    n.q_bias = optional(p + ".q_proj.bias"), n.k_bias = optional(p + ".k_proj.bias");
    n.v_bias = optional(p + ".v_proj.bias"), n.o_bias = optional(p + ".o_proj.bias");
  }
  return n;
}

/// One block's tensors in double, owned, and a block over them.
struct OwnedBlock {
  Matrix q, k, v, o;
  Vector qb, kb, vb, ob;
  mhaprune::AttentionBlock<double> block;

  OwnedBlock(const mhaprune::io::ShardedReader& r, const LayerNames& n, const mhaprune::HeadLayout& L)
      : block(n.block, L) {
    q = r.tensor(n.q).read_matrix<double>(), k = r.tensor(n.k).read_matrix<double>();
    v = r.tensor(n.v).read_matrix<double>(), o = r.tensor(n.o).read_matrix<double>();
    namespace layout = mhaprune::layout;
    block.add(layout::query(q).named(n.q)).add(layout::key(k).named(n.k));
    block.add(layout::value(v).named(n.v)).add(layout::output(o).named(n.o));
    if (!n.q_bias.empty()) block.add(layout::query_bias(qb = r.tensor(n.q_bias).read_vector<double>()));
    if (!n.k_bias.empty()) block.add(layout::key_bias(kb = r.tensor(n.k_bias).read_vector<double>()));
    if (!n.v_bias.empty()) block.add(layout::value_bias(vb = r.tensor(n.v_bias).read_vector<double>()));
    if (!n.o_bias.empty()) block.add(layout::output_bias(ob = r.tensor(n.o_bias).read_vector<double>()));
  }
  OwnedBlock(const OwnedBlock&) = delete;
  OwnedBlock& operator=(const OwnedBlock&) = delete;
};

/// Rows [id*d, (id+1)*d) of `m` for each id, stacked.
Matrix head_rows(const Matrix& m, const std::vector<Index>& ids, Index d) {
  Matrix out(static_cast<Index>(ids.size()) * d, m.cols());
  for (std::size_t i = 0; i < ids.size(); ++i)
    out.middleRows(static_cast<Index>(i) * d, d) = m.middleRows(ids[i] * d, d);
  return out;
}
Vector head_entries(const Vector& b, const std::vector<Index>& ids, Index d) {
  Vector out(static_cast<Index>(ids.size()) * d);
  for (std::size_t i = 0; i < ids.size(); ++i)
    out.segment(static_cast<Index>(i) * d, d) = b.segment(ids[i] * d, d);
  return out;
}

template <typename A, typename B>
void same(const A& got, const B& want, const std::string& what) {
  if (got.rows() != want.rows() || got.cols() != want.cols())
    fail(what, ": shape ", mhaprune::detail::shape_string(got.rows(), got.cols()), ", expected ",
         mhaprune::detail::shape_string(want.rows(), want.cols()));
  if (!(got.array() == want.array()).all()) fail(what, ": values differ from the original's kept heads");
}

std::vector<Index> ids_of(const nlohmann::json& j, const std::string& where) {
  if (!j.is_array()) fail(where, " is not a list");
  std::vector<Index> out = j.get<std::vector<Index>>();
  for (std::size_t i = 1; i < out.size(); ++i)
    if (out[i] <= out[i - 1]) fail(where, " is not strictly ascending");
  return out;
}

int run(const std::string& original_dir, const std::string& pruned_dir, long expect_removed) {
  const nlohmann::json oc = read_json(original_dir + "/config.json");
  const nlohmann::json pc = read_json(pruned_dir + "/config.json");
  const std::string type = oc.value("model_type", "");
  const bool bert = type == "bert" || type == "roberta";
  if (!bert && type != "qwen2" && type != "llama" && type != "mistral")
    fail("unsupported model_type \"", type, "\"");
  const Index H = count(oc, "num_attention_heads", 0), Hkv = count(oc, "num_key_value_heads", H);
  const Index D = count(oc, "hidden_size", 0), d = count(oc, "head_dim", D / H);
  const Index layers = count(oc, "num_hidden_layers", 0);
  const Index group = H / Hkv;

  const auto orig = mhaprune::io::ShardedReader::open(original_dir);
  const auto pruned = mhaprune::io::ShardedReader::open(pruned_dir);

  if (!pc.contains("mhaprune") || !pc.at("mhaprune").contains("layers"))
    fail("config.json has no mhaprune section");
  std::map<std::string, nlohmann::json> section;
  for (const auto& l : pc.at("mhaprune").at("layers")) section[l.at("name").get<std::string>()] = l;
  if (bert && count(pc, "num_attention_heads", -1) != H)
    fail("BERT config.json: num_attention_heads must stay ", H, " for pruned_heads to be re-applied");

  std::set<std::string> block_tensors;
  long removed_total = 0;
  std::mt19937 rng(1234);
  std::normal_distribution<double> normal(0.0, 1.0);
  for (Index i = 0; i < layers; ++i) {
    const LayerNames n = layer_names(bert, i, orig);
    for (const auto& t : n.all()) block_tensors.insert(t);
    std::vector<Index> kept, removed, kept_kv;
    const auto it = section.find(n.block);
    if (it == section.end()) {
      for (Index h = 0; h < H; ++h) kept.push_back(h);
    } else {
      const nlohmann::json& s = it->second;
      kept = ids_of(s.at("head_ids"), n.block + " head_ids");
      removed = ids_of(s.at("removed_heads"), n.block + " removed_heads");
      if (count(s, "num_attention_heads", -1) != static_cast<Index>(kept.size()))
        fail(n.block, ": num_attention_heads disagrees with head_ids");
      std::vector<Index> all(kept);
      all.insert(all.end(), removed.begin(), removed.end());
      std::sort(all.begin(), all.end());
      for (Index h = 0; h < H; ++h)
        if (static_cast<Index>(all.size()) != H || all[static_cast<std::size_t>(h)] != h)
          fail(n.block, ": head_ids and removed_heads do not partition [0, ", H, ")");
    }
    if (kept.empty()) fail(n.block, ": no head left");
    for (const Index h : kept)
      if (kept_kv.empty() || kept_kv.back() != h / group) kept_kv.push_back(h / group);
    if (it != section.end()) {
      if (count(it->second, "num_key_value_heads", -1) != static_cast<Index>(kept_kv.size()))
        fail(n.block, ": num_key_value_heads is not the number of key/value heads the kept heads use");
      if (it->second.contains("kv_head_ids") &&
          ids_of(it->second.at("kv_head_ids"), "kv_head_ids") != kept_kv)
        fail(n.block, ": kv_head_ids are not those the kept heads use");
    }
    if (bert) {
      const auto ph = pc.find("pruned_heads");
      const std::string key = std::to_string(i);
      std::vector<Index> listed;
      if (ph != pc.end() && ph->contains(key)) listed = ph->at(key).get<std::vector<Index>>();
      std::sort(listed.begin(), listed.end());
      if (listed != removed) fail(n.block, ": pruned_heads[\"", key, "\"] does not list the removed heads");
    }
    removed_total += static_cast<long>(removed.size());

    const Index Hp = static_cast<Index>(kept.size()), Hkvp = static_cast<Index>(kept_kv.size());
    if (Hp % Hkvp != 0) fail(n.block, ": ", Hp, " heads do not split evenly over ", Hkvp, " key/value heads");
    const OwnedBlock a(orig, n, mhaprune::HeadLayout(H, Hkv, d, D));
    const OwnedBlock b(pruned, n, mhaprune::HeadLayout(Hp, Hkvp, d, D));
    // Heads keep their place within a key/value group: the i-th kept head of a group uses the
    // group's kv head, which is what the pruned layout assumes.
    for (std::size_t p = 0; p < kept.size(); ++p)
      if (kept_kv[static_cast<std::size_t>(static_cast<Index>(p) / (Hp / Hkvp))] != kept[p] / group)
        fail(n.block, ": the kept heads are not spread evenly over the key/value heads");
    same(b.q, head_rows(a.q, kept, d), n.q);
    same(b.k, head_rows(a.k, kept_kv, d), n.k);
    same(b.v, head_rows(a.v, kept_kv, d), n.v);
    same(b.o.transpose(), head_rows(a.o.transpose(), kept, d), n.o);
    if (!n.q_bias.empty()) same(b.qb, head_entries(a.qb, kept, d), n.q_bias);
    if (!n.k_bias.empty()) same(b.kb, head_entries(a.kb, kept_kv, d), n.k_bias);
    if (!n.v_bias.empty()) same(b.vb, head_entries(a.vb, kept_kv, d), n.v_bias);
    if (!n.o_bias.empty()) same(b.ob, a.ob, n.o_bias);

    mhaprune::reference::AttentionOptions masked, plain;
    masked.causal = plain.causal = !bert;
    masked.mask = mhaprune::HeadMask(H);
    for (const Index h : removed) masked.mask->remove(h);
    double worst = 0, scale = 0;
    for (int trial = 0; trial < 3; ++trial) {
      const Eigen::MatrixXd x = Eigen::MatrixXd::NullaryExpr(7, D, [&] { return normal(rng); });
      const Eigen::MatrixXd want = mhaprune::reference::attention(x, a.block, masked);
      const Eigen::MatrixXd got = mhaprune::reference::attention(x, b.block, plain);
      worst = std::max(worst, (got - want).cwiseAbs().maxCoeff());
      scale = std::max(scale, want.cwiseAbs().maxCoeff());
    }
    if (!(worst <= 1e-10 * std::max(1.0, scale)))
      fail(n.block, ": pruned forward differs from the masked original by ", worst, " (scale ", scale, ")");
    std::printf("%s: heads %ld -> %ld, kv heads %ld -> %ld, forward max|diff| %.3g (scale %.3g)\n",
                n.block.c_str(), static_cast<long>(H), static_cast<long>(Hp), static_cast<long>(Hkv),
                static_cast<long>(Hkvp), worst, scale);
  }

  for (const auto& [name, file] : orig.weight_map()) {
    if (!pruned.contains(name)) fail("tensor \"", name, "\" is missing from the pruned checkpoint");
    if (block_tensors.count(name)) continue;
    const auto x = orig.tensor(name), y = pruned.tensor(name);
    if (x.dtype() != y.dtype() || x.shape() != y.shape() || x.bytes().size() != y.bytes().size() ||
        std::memcmp(x.bytes().data(), y.bytes().data(), x.bytes().size()) != 0)
      fail("tensor \"", name, "\" is not byte-identical to the original's");
  }
  for (const auto& [name, file] : pruned.weight_map())
    if (!orig.contains(name)) fail("the pruned checkpoint has a tensor the original has not: \"", name, "\"");
  if (expect_removed >= 0 && removed_total != expect_removed)
    fail("expected ", expect_removed, " heads removed in all, found ", removed_total);
  std::printf("OK: %ld heads removed, %zu tensors checked\n", removed_total, orig.weight_map().size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3 && !(argc == 5 && std::strcmp(argv[3], "--expect-removed") == 0)) {
    std::fprintf(stderr, "usage: %s ORIGINAL_DIR PRUNED_DIR [--expect-removed N]\n", argv[0]);
    return 2;
  }
  try {
    return run(argv[1], argv[2], argc == 5 ? std::stol(argv[4]) : -1);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "check_pruned: FAIL: %s\n", e.what());
    return 1;
  }
}
