// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <map>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/checkpoint/block_info.hpp"
#include "mhaprune/checkpoint/detect.hpp"
#include "mhaprune/checkpoint/model_config.hpp"
#include "mhaprune/checkpoint/preset.hpp"
#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/io/detail/huge_pages.hpp"
#include "mhaprune/io/detail/text.hpp"
#include "mhaprune/io/safetensors_writer.hpp"
#include "mhaprune/io/sharded.hpp"
#include "mhaprune/io/tensor_view.hpp"
#include "mhaprune/layouts/fused_qkv.hpp"
#include "mhaprune/layouts/separate_qkv.hpp"

namespace mhaprune::checkpoint {

namespace detail {

inline std::string relative(const std::string& block, const std::string& rel) {
  return rel.empty() ? std::string() : block + "." + rel;
}

// Resolves one block's tensor names; weights must exist, biases are kept only when present.
inline BlockTensorNames resolve_names(const ArchitecturePreset& p, const std::string& block,
                                      const io::ShardedReader& reader) {
  BlockTensorNames n;
  const auto need = [&](const std::string& rel) {
    const std::string full = relative(block, rel);
    if (!full.empty() && !reader.contains(full)) {
      throw preset_error(mhaprune::detail::message("architecture \"", p.name, "\", block \"", block,
                                                   "\": tensor \"", full, "\" is missing"));
    }
    return full;
  };
  const auto optional = [&](const std::string& rel) {
    const std::string full = relative(block, rel);
    return !full.empty() && reader.contains(full) ? full : std::string();
  };
  if (p.qkv == QkvLayout::separate) {
    n.q = need(p.q_weight);
    n.k = need(p.k_weight);
    n.v = need(p.v_weight);
    n.q_bias = optional(p.q_bias);
    n.k_bias = optional(p.k_bias);
    n.v_bias = optional(p.v_bias);
  } else {
    n.qkv = need(p.qkv_weight);
    n.qkv_bias = optional(p.qkv_bias);
  }
  n.o = need(p.o_weight);
  n.o_bias = optional(p.o_bias);
  return n;
}

}  // namespace detail

/// Finds and checks every block of a checkpoint, without reading weights: names from `preset`, head
/// counts from `counts` and, for a checkpoint pruned before, per-layer counts and original ids from
/// `history`; every tensor's rank and shape is checked against them.
/// @throws preset_error naming the block, the tensor and the shapes when a tensor is missing or
///         shaped otherwise, the head width does not divide (hidden size not a multiple of the head
///         count, or a fused tensor not splitting into heads), or `history` lacks a block or
///         disagrees with the tensors; whatever the reader throws.
inline std::vector<BlockInfo> find_blocks(const io::ShardedReader& reader, const ArchitecturePreset& preset,
                                          const HeadCounts& counts,
                                          const std::optional<PruneHistory>& history) {
  using mhaprune::detail::message;
  std::vector<std::string> names;
  for (const auto& [name, file] : reader.weight_map()) names.push_back(name);
  std::vector<BlockInfo> out;
  for (const BlockName& bn : find_block_names(preset, names)) {
    BlockInfo b;
    b.index = static_cast<Index>(out.size());
    b.layer = bn.layer;
    b.name = bn.name;
    b.tensors = detail::resolve_names(preset, bn.name, reader);
    b.tensor_names = b.tensors.all();
    b.o_weight_name = b.tensors.o;
    b.qkv = preset.qkv;
    b.in_out = preset.in_out;
    const std::string where =
        message("architecture \"", preset.name, "\", block \"", b.name, "\" (layer ", b.layer, ")");
    for (const auto& [role, full] : detail::roles(b.tensors)) {
      if (full->empty()) continue;
      const std::size_t rank = reader.info(*full).rank();
      const std::size_t want = role.size() > 5 && role.compare(role.size() - 5, 5, "_bias") == 0 ? 1 : 2;
      if (rank != want) {
        throw preset_error(message(where, ": tensor \"", *full, "\" has shape ",
                                   io::detail::shape_string(reader.info(*full).shape), ", expected ", want,
                                   want == 1 ? " dimension" : " dimensions"));
      }
    }
    const io::TensorInfo& o = reader.info(b.tensors.o);
    const Index D = static_cast<Index>(preset.in_out ? o.shape[1] : o.shape[0]);
    if (counts.hidden && *counts.hidden != D) {
      throw preset_error(message(where, ": tensor \"", b.tensors.o, "\" has shape ",
                                 io::detail::shape_string(o.shape), ", but config.json's hidden size is ",
                                 *counts.hidden));
    }
    // The original head counts and the current ones.
    Index H0 = counts.heads, Hkv0 = counts.kv_heads;
    std::optional<Index> head_dim = counts.head_dim;
    const LayerRecord* record = nullptr;
    if (history) {
      H0 = history->original_heads;
      Hkv0 = history->original_kv_heads;
      if (history->head_dim) head_dim = history->head_dim;
      if (!history->by_block.empty() || history->source == "mhaprune section") {
        const auto it = history->by_block.find(b.name);
        if (it == history->by_block.end()) {
          throw preset_error(message(where, ": config.json's ", history->source, " has no entry for it"));
        }
        record = &it->second;
      } else if (const auto it = history->by_layer.find(b.layer); it != history->by_layer.end()) {
        record = &it->second;
      }
    }
    if (H0 % Hkv0 != 0) {
      throw preset_error(message(where, ": ", H0, " heads do not split into ", Hkv0, " key/value groups"));
    }
    if (!head_dim) {
      const Index width = counts.hidden ? *counts.hidden : D;
      if (width % H0 != 0) {
        throw preset_error(message(where, ": the hidden size ", width, " (tensor \"", b.tensors.o, "\" ",
                                   io::detail::shape_string(o.shape), ") does not split into ", H0,
                                   " heads; the head count or the head width is wrong"));
      }
      head_dim = width / H0;
    }
    b.original_heads = H0;
    b.original_kv_heads = Hkv0;
    if (record) {
      b.head_ids = record->head_ids;
      b.kv_head_ids = record->kv_head_ids;
    } else {
      b.head_ids.resize(static_cast<std::size_t>(H0));
      b.kv_head_ids.resize(static_cast<std::size_t>(Hkv0));
      std::iota(b.head_ids.begin(), b.head_ids.end(), Index{0});
      std::iota(b.kv_head_ids.begin(), b.kv_head_ids.end(), Index{0});
    }
    const std::string from = record ? message(" (from config.json's ", history->source, ")") : std::string();
    const Index H = static_cast<Index>(b.head_ids.size()), Hkv = static_cast<Index>(b.kv_head_ids.size());
    if (H == 0 || Hkv == 0 || H % Hkv != 0) {
      throw preset_error(
          message(where, ": ", H, " heads in ", Hkv, " key/value groups is not a valid layout", from));
    }
    if (preset.qkv == QkvLayout::interleaved && H != Hkv) {
      throw preset_error(message(where,
                                 ": an interleaved fused QKV tensor needs as many key/value heads as "
                                 "query heads, got ",
                                 H, " and ", Hkv));
    }
    b.layout = HeadLayout(H, Hkv, *head_dim, D);
    try {
      AttentionBlock<float> check(b.name, b.layout, b.head_ids, b.kv_head_ids, H0, Hkv0);
    } catch (const head_id_error& e) {
      throw preset_error(message(where, from, ": ", e.what()));
    }
    for (const auto& [role, full] : detail::roles(b.tensors)) {
      if (full->empty()) continue;
      const io::Shape want = block_tensor_shape(role, b.qkv, b.in_out, b.layout);
      const io::Shape& got = reader.info(*full).shape;
      if (got != want) {
        throw preset_error(message(where, ": tensor \"", *full, "\" has shape ",
                                   io::detail::shape_string(got), ", expected ",
                                   io::detail::shape_string(want), " for ", H, " heads (", Hkv,
                                   " key/value) of width ", *head_dim, " and hidden size ", D, from));
      }
    }
    b.dtype = reader.info(preset.qkv == QkvLayout::separate ? b.tensors.q : b.tensors.qkv).dtype;
    out.push_back(std::move(b));
  }
  return out;
}

/// One block's tensors read from a checkpoint into buffers it owns, converted to `Scalar`, and
/// bound into an `AttentionBlock<Scalar>` that can be scored and pruned in place; then each
/// tensor can be written back in its original dtype (`emit`).
///
/// `Scalar` is float or double: float keeps F32, F16 and BF16 values exactly, so the values of
/// kept heads are written back bit-identical; use double for F64 weights.
/// Memory: the block's tensors only; the reader's pages for them are released after reading.
template <typename Scalar>
class LoadedBlock {
 public:
  using Matrix = io::RowMatrix<Scalar>;
  using Vector = io::Vector<Scalar>;

  /// Reads and binds every tensor of `info`.
  /// @throws unsupported_dtype_error naming the tensor when it is not F64/F32/F16/BF16; whatever
  ///         reading or binding throws.
  LoadedBlock(const io::ShardedReader& reader, const BlockInfo& info)
      : block_(std::make_unique<AttentionBlock<Scalar>>(info.name, info.layout, info.head_ids,
                                                        info.kv_head_ids, info.original_heads,
                                                        info.original_kv_heads)),
        qkv_(info.qkv),
        in_out_(info.in_out) {
    const BlockTensorNames& n = info.tensors;
    for (const auto& [role, full] : detail::roles(n)) {
      if (full->empty()) continue;
      const io::TensorView view = reader.tensor(*full);
      if (!io::is_convertible(view.dtype())) {
        throw unsupported_dtype_error(mhaprune::detail::message(
            "block \"", info.name, "\": tensor \"", *full, "\" is ", io::to_string(view.dtype()),
            "; only F64, F32, F16 and BF16 tensors can be pruned"));
      }
      dtypes_[*full] = view.dtype();
      if (view.shape().size() == 2) {
        // Allocated, advised to use huge pages while still untouched, then filled: one page fault
        // per 2 MiB instead of per 4 KiB (see advise_huge_pages), the same values as read_matrix.
        auto m = std::make_unique<Matrix>(static_cast<Index>(view.shape()[0]),
                                          static_cast<Index>(view.shape()[1]));
        io::detail::advise_huge_pages(m->data(), static_cast<std::size_t>(m->size()) * sizeof(Scalar));
        view.decode_into(m->data());
        matrices_[*full] = std::move(m);
      } else {
        vectors_[*full] = std::make_unique<Vector>(view.template read_vector<Scalar>());
      }
      reader.shard(reader.shard_of(*full)).release(view.info());
    }
    bind(n);
  }

  AttentionBlock<Scalar>& block() noexcept { return *block_; }
  const AttentionBlock<Scalar>& block() const noexcept { return *block_; }

  /// The tensor's original dtype, and whether the block holds it.
  bool holds(const std::string& tensor) const { return dtypes_.count(tensor) != 0; }
  io::Dtype dtype(const std::string& tensor) const { return dtypes_.at(tensor); }
  /// The tensor's current shape (after any removal).
  io::Shape shape(const std::string& tensor) const {
    if (const auto it = matrices_.find(tensor); it != matrices_.end()) {
      return {static_cast<std::uint64_t>(it->second->rows()), static_cast<std::uint64_t>(it->second->cols())};
    }
    return {static_cast<std::uint64_t>(vectors_.at(tensor)->size())};
  }
  /// A weight's or bias's current values.
  const Matrix& matrix(const std::string& tensor) const { return *matrices_.at(tensor); }
  const Vector& vector(const std::string& tensor) const { return *vectors_.at(tensor); }

  /// Writes the tensor's current values to `sink` in its original dtype (or `stored_as`).
  void emit(const std::string& tensor, io::ByteSink& sink) const { emit(tensor, sink, dtypes_.at(tensor)); }
  void emit(const std::string& tensor, io::ByteSink& sink, io::Dtype stored_as) const {
    if (const auto it = matrices_.find(tensor); it != matrices_.end()) {
      sink.append_values(*it->second, stored_as);
    } else {
      sink.append_values(*vectors_.at(tensor), stored_as);
    }
  }

 private:
  template <typename Spec>
  void add(Spec spec, const std::string& name, bool weight) {
    spec = std::move(spec).named(name);
    if (weight && in_out_) spec = std::move(spec).stored_as(Orientation::in_out);
    block_->add(std::move(spec));
  }

  void bind(const BlockTensorNames& n) {
    if (qkv_ == QkvLayout::separate) {
      add(layout::query(*matrices_.at(n.q)), n.q, true);
      add(layout::key(*matrices_.at(n.k)), n.k, true);
      add(layout::value(*matrices_.at(n.v)), n.v, true);
      if (!n.q_bias.empty()) add(layout::query_bias(*vectors_.at(n.q_bias)), n.q_bias, false);
      if (!n.k_bias.empty()) add(layout::key_bias(*vectors_.at(n.k_bias)), n.k_bias, false);
      if (!n.v_bias.empty()) add(layout::value_bias(*vectors_.at(n.v_bias)), n.v_bias, false);
    } else {
      Matrix& w = *matrices_.at(n.qkv);
      Vector* b = n.qkv_bias.empty() ? nullptr : vectors_.at(n.qkv_bias).get();
      switch (qkv_) {
        case QkvLayout::concat:
          add(layout::qkv_concat(w), n.qkv, true);
          if (b) add(layout::qkv_concat_bias(*b), n.qkv_bias, false);
          break;
        case QkvLayout::interleaved:
          add(layout::qkv_interleaved(w), n.qkv, true);
          if (b) add(layout::qkv_interleaved_bias(*b), n.qkv_bias, false);
          break;
        default:
          add(layout::qkv_grouped(w), n.qkv, true);
          if (b) add(layout::qkv_grouped_bias(*b), n.qkv_bias, false);
          break;
      }
    }
    add(layout::output(*matrices_.at(n.o)), n.o, true);
    if (!n.o_bias.empty()) add(layout::output_bias(*vectors_.at(n.o_bias)), n.o_bias, false);
    block_->validate();
  }

  std::unique_ptr<AttentionBlock<Scalar>> block_;
  QkvLayout qkv_;
  bool in_out_;
  std::map<std::string, io::Dtype> dtypes_;
  std::map<std::string, std::unique_ptr<Matrix>> matrices_;
  std::map<std::string, std::unique_ptr<Vector>> vectors_;
};

/// Whether a block must be read as double to keep its values exactly: any F64 tensor.
inline bool needs_double(const io::ShardedReader& reader, const BlockInfo& info) {
  for (const auto& name : info.tensor_names)
    if (reader.info(name).dtype == io::Dtype::F64) return true;
  return false;
}

}  // namespace mhaprune::checkpoint
