// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/checkpoint/block_info.hpp"
#include "mhaprune/core/head_layout.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/io/ggml_type.hpp"
#include "mhaprune/io/gguf_split.hpp"

namespace mhaprune::checkpoint {

/// The tensors of one GGUF attention block besides those `BlockInfo::tensors` names (Q/K/V or the
/// fused QKV, O, their biases): per-head norms and attention sinks. Empty: the block has none.
struct GgufExtraTensors {
  std::string q_norm, k_norm;  ///< set only when sized over all heads (`{H*d}` or `{d, H}`)
  std::string sinks;           ///< `{H}`: one logit per query head
};

namespace detail {

inline std::string gguf_layer_name(Index layer) { return mhaprune::detail::message("blk.", layer); }

/// A per-layer count: a scalar broadcast to every layer, or an integer array of one value per layer.
inline std::vector<Index> gguf_counts(const io::GgufModelFiles& files, const std::string& key,
                                      std::uint64_t layers, const std::string& path) {
  const io::GgufValue* v = files.find(key);
  if (v == nullptr) throw preset_error(mhaprune::detail::message(path, ": key \"", key, "\" is missing"));
  if (const auto scalar = v->as_int()) {
    if (*scalar < 0)
      throw preset_error(mhaprune::detail::message(path, ": key \"", key, "\" is negative (", *scalar, ")"));
    return std::vector<Index>(layers, static_cast<Index>(*scalar));
  }
  const auto array = v->as_int_array();
  if (!array) {
    throw preset_error(mhaprune::detail::message(path, ": key \"", key, "\" is ", io::to_string(v->type()),
                                                 "; expected an integer or an integer array"));
  }
  if (array->size() != layers) {
    throw preset_error(mhaprune::detail::message(path, ": key \"", key, "\" has ", array->size(),
                                                 " values, but the model has ", layers, " layers"));
  }
  std::vector<Index> out;
  for (const std::int64_t x : *array) {
    if (x < 0)
      throw preset_error(
          mhaprune::detail::message(path, ": key \"", key, "\" holds a negative count (", x, ")"));
    out.push_back(static_cast<Index>(x));
  }
  return out;
}

inline std::optional<std::int64_t> gguf_int(const io::GgufModelFiles& files, const std::string& key,
                                            const std::string& path) {
  const io::GgufValue* v = files.find(key);
  if (v == nullptr) return std::nullopt;
  const auto x = v->as_int();
  if (!x || *x <= 0) {
    throw preset_error(mhaprune::detail::message(
        path, ": key \"", key, "\" must be a positive integer, it is ", v->to_display_string()));
  }
  return x;
}

inline std::string gguf_ne_string(const std::vector<std::uint64_t>& ne) {
  std::string s = "[";
  for (std::size_t i = 0; i < ne.size(); ++i) s += (i ? ", " : "") + std::to_string(ne[i]);
  return s + "]";
}

}  // namespace detail

/// A GGUF model (llama.cpp's format: one file or a split set) opened for inspection, scoring and
/// pruning: its architecture, per-layer head counts and every attention block, found by llama.cpp's
/// tensor names (`blk.N.attn_q|attn_k|attn_v|attn_qkv|attn_output`, `.weight`/`.bias`,
/// `attn_q_norm`/`attn_k_norm`, `attn_sinks`) and checked against the counts. Nothing is decoded.
///
/// Head counts come from `<arch>.attention.head_count` / `head_count_kv` (a scalar, or one value per
/// layer as `deci` stores them; a layer with 0 heads has no attention and is not a block), the head
/// width from `<arch>.attention.key_length`, else `embedding_length / head_count` of layer 0, as
/// llama.cpp derives it. A file mhaprune wrote carries `mhaprune.*` keys with the original counts and
/// the original ids of the heads each layer kept, so ids stay original ids across prunings.
class GgufModel {
 public:
  /// Opens `path` (a `.gguf` file, or any shard of a split set) and finds its attention blocks.
  /// @throws io_error / corrupt_file_error / unsupported_dtype_error for unreadable or broken files;
  ///         preset_error (a corrupt_file_error) when keys are missing or disagree with the tensors.
  static GgufModel open(const std::string& path) {
    GgufModel m;
    m.path_ = path;
    m.files_ = std::make_unique<io::GgufModelFiles>(io::GgufModelFiles::open(path));
    const io::GgufModelFiles& f = *m.files_;
    const io::GgufValue* arch = f.find("general.architecture");
    if (arch == nullptr || !arch->as_string())
      throw preset_error(
          mhaprune::detail::message(path, ": key \"general.architecture\" (STRING) is missing"));
    m.architecture_ = *arch->as_string();
    const std::string p = m.architecture_ + ".";
    const auto layers = detail::gguf_int(f, p + "block_count", path);
    if (!layers)
      throw preset_error(mhaprune::detail::message(path, ": key \"", p, "block_count\" is missing"));
    if (*layers > 100000)
      throw preset_error(mhaprune::detail::message(path, ": key \"", p, "block_count\" is ", *layers));
    m.block_count_ = static_cast<std::uint64_t>(*layers);
    const auto embd = detail::gguf_int(f, p + "embedding_length", path);
    if (!embd)
      throw preset_error(mhaprune::detail::message(path, ": key \"", p, "embedding_length\" is missing"));
    m.model_dim_ = static_cast<Index>(*embd);
    m.heads_ = detail::gguf_counts(f, p + "attention.head_count", m.block_count_, path);
    m.kv_heads_ = f.find(p + "attention.head_count_kv")
                      ? detail::gguf_counts(f, p + "attention.head_count_kv", m.block_count_, path)
                      : m.heads_;
    m.read_head_dim(p);
    m.read_history();
    for (std::uint64_t layer = 0; layer < m.block_count_; ++layer) {
      if (m.heads_[layer] == 0) continue;  // a deci layer without attention
      m.add_block(static_cast<Index>(layer));
    }
    if (m.blocks_.empty())
      throw preset_error(mhaprune::detail::message(path, ": no layer has attention heads"));
    return m;
  }

  /// The path given to `open`.
  const std::string& path() const noexcept { return path_; }
  const io::GgufModelFiles& files() const noexcept { return *files_; }
  /// `general.architecture`, e.g. "llama", "qwen2", "deci".
  const std::string& architecture() const noexcept { return architecture_; }
  /// The architecture before an earlier mhaprune renamed it (`mhaprune.original_architecture`), else
  /// `architecture()`.
  const std::string& original_architecture() const noexcept {
    return original_architecture_.empty() ? architecture_ : original_architecture_;
  }
  std::uint64_t block_count() const noexcept { return block_count_; }
  Index head_dim() const noexcept { return head_dim_; }
  Index model_dim() const noexcept { return model_dim_; }
  /// Current query / key-value heads per layer (0: no attention in that layer).
  const std::vector<Index>& layer_heads() const noexcept { return heads_; }
  const std::vector<Index>& layer_kv_heads() const noexcept { return kv_heads_; }
  /// The unpruned model's counts per layer.
  const std::vector<Index>& original_layer_heads() const noexcept { return original_heads_; }
  const std::vector<Index>& original_layer_kv_heads() const noexcept { return original_kv_heads_; }
  /// True when the file carries mhaprune's record of an earlier pruning.
  bool pruned_before() const noexcept { return pruned_before_; }
  /// Every block with attention, in layer order.
  const std::vector<BlockInfo>& blocks() const noexcept { return blocks_; }
  /// The per-head norms and sinks of block `index` (same order as `blocks()`).
  const GgufExtraTensors& extras(std::size_t index) const { return extras_.at(index); }
  /// True for a tensor some block binds (weights, biases, per-head norms, sinks).
  bool is_block_tensor(const std::string& name) const { return block_tensors_.count(name) != 0; }
  /// Elements of every tensor of the model.
  std::uint64_t parameter_count() const {
    std::uint64_t n = 0;
    for (const auto& shard : files_->shards())
      for (const auto& t : shard.tensors()) n += t.element_count();
    return n;
  }

 private:
  GgufModel() = default;

  void read_head_dim(const std::string& p) {
    const auto key = detail::gguf_int(*files_, p + "attention.key_length", path_);
    const auto value = detail::gguf_int(*files_, p + "attention.value_length", path_);
    if (key && value && *key != *value) {
      throw preset_error(mhaprune::detail::message(
          path_, ": key_length (", *key, ") differs from value_length (", *value,
          "); heads whose keys and values have different widths cannot be pruned by mhaprune"));
    }
    if (key || value) {
      head_dim_ = static_cast<Index>(key ? *key : *value);
      return;
    }
    if (heads_.front() == 0 || model_dim_ % heads_.front() != 0) {
      throw preset_error(
          mhaprune::detail::message(path_, ": no \"", p, "attention.key_length\" and embedding_length ",
                                    model_dim_, " does not split into layer 0's ", heads_.front(), " heads"));
    }
    head_dim_ = model_dim_ / heads_.front();
  }

  void read_history() {
    original_heads_ = heads_;
    original_kv_heads_ = kv_heads_;
    const io::GgufModelFiles& f = *files_;
    if (const io::GgufValue* a = f.find("mhaprune.original_architecture"); a && a->as_string())
      original_architecture_ = *a->as_string();
    if (f.find("mhaprune.original_head_count") == nullptr) return;
    pruned_before_ = true;
    original_heads_ = detail::gguf_counts(f, "mhaprune.original_head_count", block_count_, path_);
    original_kv_heads_ = detail::gguf_counts(f, "mhaprune.original_head_count_kv", block_count_, path_);
  }

  /// The original ids of the heads layer `layer` holds: from `mhaprune.<what>.<layer>`, else 0..n-1.
  std::vector<Index> ids(const char* what, Index layer, Index now, Index original) const {
    std::vector<Index> out;
    const std::string key = mhaprune::detail::message("mhaprune.", what, ".", layer);
    const io::GgufValue* v = pruned_before_ ? files_->find(key) : nullptr;
    if (v == nullptr) {
      if (now != original) {
        throw preset_error(mhaprune::detail::message(path_, ": layer ", layer, " has ", now, " ", what,
                                                     " of originally ", original, " but key \"", key,
                                                     "\" is missing"));
      }
      for (Index i = 0; i < now; ++i) out.push_back(i);
      return out;
    }
    const auto array = v->as_int_array();
    if (!array || static_cast<Index>(array->size()) != now) {
      throw preset_error(mhaprune::detail::message(path_, ": key \"", key, "\" must list ", now,
                                                   " original ids (the layer's current count)"));
    }
    for (const std::int64_t id : *array) {
      if (id < 0 || id >= original || (!out.empty() && id <= out.back())) {
        throw preset_error(
            mhaprune::detail::message(path_, ": key \"", key, "\" must hold ascending ids below ", original));
      }
      out.push_back(static_cast<Index>(id));
    }
    return out;
  }

  /// The tensor `name` if the model has it.
  const io::GgufTensorInfo* find(const std::string& name) const { return files_->find_tensor(name); }

  void expect_shape(const std::string& name, const std::vector<std::uint64_t>& want, Index layer) const {
    const io::GgufTensorInfo& t = files_->tensor(name);
    std::vector<std::uint64_t> have = t.ne;
    while (have.size() > want.size() && have.back() == 1) have.pop_back();
    if (have != want) {
      throw preset_error(mhaprune::detail::message(
          path_, ": tensor \"", name, "\" has ne ", detail::gguf_ne_string(t.ne), " but layer ", layer,
          " with ", heads_[static_cast<std::size_t>(layer)], " heads and ",
          kv_heads_[static_cast<std::size_t>(layer)], " key/value heads of width ", head_dim_, " needs ",
          detail::gguf_ne_string(want)));
    }
  }

  /// A per-head norm or the sinks: its name when sized over every head, "" when shared by all heads.
  std::string per_head(const std::string& name, Index heads, Index layer, bool may_be_shared) const {
    const io::GgufTensorInfo* t = find(name);
    if (t == nullptr) return {};
    const auto H = static_cast<std::uint64_t>(heads), d = static_cast<std::uint64_t>(head_dim_);
    if (may_be_shared && t->element_count() == d && H != 1) return {};
    if (may_be_shared) {
      if (t->ne.size() >= 2 && t->ne[0] == d && t->ne[1] == H && t->element_count() == H * d) return name;
      if (t->element_count() == H * d && t->ne[0] == H * d) return name;
    } else if (t->element_count() == H && t->ne[0] == H) {
      return name;
    }
    throw preset_error(mhaprune::detail::message(path_, ": tensor \"", name, "\" has ne ",
                                                 detail::gguf_ne_string(t->ne), ", which fits neither one ",
                                                 may_be_shared ? "head" : "value", " per head of layer ",
                                                 layer, " (", heads, " heads of width ", head_dim_, ")"));
  }

  void add_block(Index layer) {
    const auto L = static_cast<std::size_t>(layer);
    const Index H = heads_[L], Hkv = kv_heads_[L];
    if (Hkv <= 0 || H % Hkv != 0) {
      throw preset_error(mhaprune::detail::message(path_, ": layer ", layer, " has ", H, " heads and ", Hkv,
                                                   " key/value heads; the heads must be a multiple"));
    }
    BlockInfo b;
    b.index = static_cast<Index>(blocks_.size());
    b.layer = layer;
    b.name = detail::gguf_layer_name(layer);
    b.layout = HeadLayout(H, Hkv, head_dim_, model_dim_);
    b.original_heads = original_heads_[L];
    b.original_kv_heads = original_kv_heads_[L];
    b.head_ids = ids("head_ids", layer, H, b.original_heads);
    b.kv_head_ids = ids("kv_head_ids", layer, Hkv, b.original_kv_heads);
    const std::string n = b.name + ".";
    const auto D = static_cast<std::uint64_t>(model_dim_), d = static_cast<std::uint64_t>(head_dim_);
    const std::uint64_t q_rows = static_cast<std::uint64_t>(H) * d,
                        kv_rows = static_cast<std::uint64_t>(Hkv) * d;
    BlockTensorNames& t = b.tensors;
    const auto take = [&](std::string& slot, const std::string& name, std::vector<std::uint64_t> ne) {
      if (find(name) == nullptr) return;
      expect_shape(name, ne, layer);
      slot = name;
    };
    if (find(n + "attn_q.weight") != nullptr) {
      take(t.q, n + "attn_q.weight", {D, q_rows});
      take(t.k, n + "attn_k.weight", {D, kv_rows});
      take(t.v, n + "attn_v.weight", {D, kv_rows});
      take(t.q_bias, n + "attn_q.bias", {q_rows});
      take(t.k_bias, n + "attn_k.bias", {kv_rows});
      take(t.v_bias, n + "attn_v.bias", {kv_rows});
      if (t.k.empty() || t.v.empty()) {
        throw preset_error(mhaprune::detail::message(path_, ": layer ", layer, " has \"", t.q, "\" but no \"",
                                                     t.k.empty() ? n + "attn_k.weight" : n + "attn_v.weight",
                                                     "\""));
      }
      b.qkv = QkvLayout::separate;
    } else if (find(n + "attn_qkv.weight") != nullptr) {
      take(t.qkv, n + "attn_qkv.weight", {D, q_rows + 2 * kv_rows});
      take(t.qkv_bias, n + "attn_qkv.bias", {q_rows + 2 * kv_rows});
      b.qkv = QkvLayout::concat;
    } else {
      throw preset_error(mhaprune::detail::message(path_, ": layer ", layer, " has ", H,
                                                   " heads but neither \"", n, "attn_q.weight\" nor \"", n,
                                                   "attn_qkv.weight\" (attention in another form, e.g. "
                                                   "multi-head latent attention, is not supported)"));
    }
    if (find(n + "attn_output.weight") == nullptr) {
      throw preset_error(
          mhaprune::detail::message(path_, ": layer ", layer, " has no \"", n, "attn_output.weight\""));
    }
    take(t.o, n + "attn_output.weight", {q_rows, D});
    take(t.o_bias, n + "attn_output.bias", {D});
    GgufExtraTensors extra;
    extra.q_norm = per_head(n + "attn_q_norm.weight", H, layer, true);
    extra.k_norm = per_head(n + "attn_k_norm.weight", Hkv, layer, true);
    extra.sinks = per_head(n + "attn_sinks.weight", H, layer, false);
    if (extra.sinks.empty()) extra.sinks = per_head(n + "attn_sinks", H, layer, false);
    b.o_weight_name = t.o;
    b.tensor_names = t.all();
    for (const std::string* s : {&extra.q_norm, &extra.k_norm, &extra.sinks})
      if (!s->empty()) b.tensor_names.push_back(*s);
    block_tensors_.insert(b.tensor_names.begin(), b.tensor_names.end());
    blocks_.push_back(std::move(b));
    extras_.push_back(std::move(extra));
  }

  std::string path_, architecture_, original_architecture_;
  std::unique_ptr<io::GgufModelFiles> files_;
  std::uint64_t block_count_ = 0;
  Index head_dim_ = 0, model_dim_ = 0;
  std::vector<Index> heads_, kv_heads_, original_heads_, original_kv_heads_;
  bool pruned_before_ = false;
  std::vector<BlockInfo> blocks_;
  std::vector<GgufExtraTensors> extras_;
  std::set<std::string> block_tensors_;
};

}  // namespace mhaprune::checkpoint
