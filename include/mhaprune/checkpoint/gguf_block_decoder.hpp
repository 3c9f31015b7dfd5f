// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>

#include "mhaprune/checkpoint/block_info.hpp"
#include "mhaprune/checkpoint/gguf_model.hpp"
#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/io/ggml_quants.hpp"
#include "mhaprune/io/tensor_view.hpp"
#include "mhaprune/layouts/fused_qkv.hpp"
#include "mhaprune/layouts/separate_qkv.hpp"

namespace mhaprune::checkpoint {

/// Decodes GGUF attention blocks to float, one at a time, bound into an `AttentionBlock<float>`
/// for scoring (criteria read weight values). Pruning a GGUF file never goes through it: kept rows
/// and blocks are copied as bytes.
///
/// The float buffers are kept from one block to the next (blocks of one model have the same
/// shapes), so decoding a model touches fresh memory once instead of once per block: a LLaMA-7B
/// block is 256 MiB of floats, and faulting that in anew for every block cost more than decoding.
/// Memory: one block's Q/K/V/O as float; the file's pages are released after decoding.
class GgufBlockDecoder {
 public:
  using Matrix = io::RowMatrix<float>;
  using Vector = io::Vector<float>;

  /// Decodes every tensor of `info` (a block of `model`) and binds them; the block stays valid
  /// until the next call.
  /// @throws unsupported_dtype_error naming the block and tensor when its type cannot be decoded
  ///         (see `io::can_dequantize`); what binding throws.
  AttentionBlock<float>& decode(const GgufModel& model, const BlockInfo& info) {
    block_.reset();
    block_ = std::make_unique<AttentionBlock<float>>(info.name, info.layout, info.head_ids, info.kv_head_ids,
                                                     info.original_heads, info.original_kv_heads);
    const BlockTensorNames& n = info.tensors;
    for (const auto& [role, full] : detail::roles(n)) {
      if (full->empty()) continue;
      const io::GgufTensorInfo& t = model.files().tensor(*full);
      if (!io::can_dequantize(t.type)) {
        throw unsupported_dtype_error(mhaprune::detail::message(
            model.path(), ": block \"", info.name, "\": tensor \"", *full, "\" is ", io::to_string(t.type),
            ", which mhaprune cannot decode to score heads; name the heads to remove (--heads) instead"));
      }
      const io::ByteSpan bytes = model.files().bytes(*full);
      const auto cols = static_cast<Index>(t.ne[0]), rows = static_cast<Index>(t.rows());
      const std::uint64_t row_bytes = t.row_bytes();
      if (role == "q" || role == "k" || role == "v" || role == "qkv" || role == "o") {
        Matrix& m = buffer(matrices_, role);
        m.resize(rows, cols);  // keeps the allocation when the size is the same
        for (Index r = 0; r < rows; ++r) {
          io::dequantize_row(t.type, bytes.data() + static_cast<std::uint64_t>(r) * row_bytes,
                             m.data() + r * cols, cols);
        }
      } else {
        Vector& v = buffer(vectors_, role);
        v.resize(cols);
        io::dequantize_row(t.type, bytes.data(), v.data(), cols);
      }
      model.files().release(*full);
    }
    AttentionBlock<float>& b = *block_;
    if (info.qkv == QkvLayout::separate) {
      b.add(layout::query(*matrices_.at("q")).named(n.q));
      b.add(layout::key(*matrices_.at("k")).named(n.k));
      b.add(layout::value(*matrices_.at("v")).named(n.v));
      if (!n.q_bias.empty()) b.add(layout::query_bias(*vectors_.at("q_bias")).named(n.q_bias));
      if (!n.k_bias.empty()) b.add(layout::key_bias(*vectors_.at("k_bias")).named(n.k_bias));
      if (!n.v_bias.empty()) b.add(layout::value_bias(*vectors_.at("v_bias")).named(n.v_bias));
    } else {
      b.add(layout::qkv_concat(*matrices_.at("qkv")).named(n.qkv));
      if (!n.qkv_bias.empty()) b.add(layout::qkv_concat_bias(*vectors_.at("qkv_bias")).named(n.qkv_bias));
    }
    b.add(layout::output(*matrices_.at("o")).named(n.o));
    if (!n.o_bias.empty()) b.add(layout::output_bias(*vectors_.at("o_bias")).named(n.o_bias));
    b.validate();
    return b;
  }

 private:
  template <typename T>
  static T& buffer(std::map<std::string, std::unique_ptr<T>>& buffers, const std::string& role) {
    std::unique_ptr<T>& p = buffers[role];
    if (!p) p = std::make_unique<T>();
    return *p;
  }

  std::unique_ptr<AttentionBlock<float>> block_;
  std::map<std::string, std::unique_ptr<Matrix>> matrices_;
  std::map<std::string, std::unique_ptr<Vector>> vectors_;
};

}  // namespace mhaprune::checkpoint
