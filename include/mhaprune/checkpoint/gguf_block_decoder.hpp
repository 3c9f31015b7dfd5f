// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mhaprune/checkpoint/block_info.hpp"
#include "mhaprune/checkpoint/detail/score_by_row.hpp"
#include "mhaprune/checkpoint/gguf_model.hpp"
#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/io/ggml_quants.hpp"
#include "mhaprune/io/tensor_view.hpp"
#include "mhaprune/layouts/fused_qkv.hpp"
#include "mhaprune/layouts/separate_qkv.hpp"

namespace mhaprune::checkpoint {

/// Decodes GGUF attention blocks to float, one at a time, bound into an `AttentionBlock<float>`
/// for scoring (criteria read weight values); or, for element-wise criteria that read only weights
/// (magnitude), one row at a time (`score_by_row`). Pruning a GGUF file never goes through it: kept
/// rows and blocks are copied as bytes.
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
      const io::GgufTensorInfo& t = decodable(model, info, *full);
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

  /// The scores of `criterion` (an element-wise criterion that reads only weights, e.g. magnitude)
  /// for the block, decoding one row at a time into a buffer of one row instead of the block into
  /// float matrices: the same scores, bit for bit, as `criterion.scores(decode(model, info))`.
  /// Memory: one row of floats; each tensor's file pages are released once its rows are read.
  /// @throws unsupported_dtype_error as `decode`; what `element_wise_numbers_by_line` throws.
  template <typename Fn>
  Eigen::VectorXd score_by_row(const ElementWise<Fn>& criterion, const GgufModel& model,
                               const BlockInfo& info) {
    for (const std::string* name :
         {&info.tensors.q, &info.tensors.k, &info.tensors.v, &info.tensors.qkv, &info.tensors.o})
      if (!name->empty()) decodable(model, info, *name);
    Rows rows{model, row_, nullptr, nullptr, {}};
    return detail::score_by_row(criterion, info, rows);
  }

 private:
  /// The tensor `name` of the block, checked to be of a type mhaprune can decode.
  static const io::GgufTensorInfo& decodable(const GgufModel& model, const BlockInfo& info,
                                             const std::string& name) {
    const io::GgufTensorInfo& t = model.files().tensor(name);
    if (!io::can_dequantize(t.type)) {
      throw unsupported_dtype_error(mhaprune::detail::message(
          model.path(), ": block \"", info.name, "\": tensor \"", name, "\" is ", io::to_string(t.type),
          ", which mhaprune cannot decode to score heads; name the heads to remove (--heads) instead"));
    }
    return t;
  }

  /// A GGUF model's tensors, row by row, for `detail::score_by_row`.
  struct Rows {
    const GgufModel& model;
    std::vector<float>& buffer;
    const std::string* name = nullptr;  // the tensor being read, and where its rows are
    const io::GgufTensorInfo* tensor = nullptr;
    io::ByteSpan bytes;

    Index rows(const std::string& t) const { return static_cast<Index>(model.files().tensor(t).rows()); }
    Index cols(const std::string& t) const { return static_cast<Index>(model.files().tensor(t).ne[0]); }
    const float* row(const std::string& t, Index r) {
      if (name != &t) {
        name = &t;
        tensor = &model.files().tensor(t);
        bytes = model.files().bytes(t);
        buffer.resize(static_cast<std::size_t>(tensor->ne[0]));
      }
      io::dequantize_row(tensor->type, bytes.data() + static_cast<std::uint64_t>(r) * tensor->row_bytes(),
                         buffer.data(), static_cast<std::int64_t>(tensor->ne[0]));
      return buffer.data();
    }
    void done(const std::string& t) const { model.files().release(t); }
  };

  template <typename T>
  static T& buffer(std::map<std::string, std::unique_ptr<T>>& buffers, const std::string& role) {
    std::unique_ptr<T>& p = buffers[role];
    if (!p) p = std::make_unique<T>();
    return *p;
  }

  std::unique_ptr<AttentionBlock<float>> block_;
  std::map<std::string, std::unique_ptr<Matrix>> matrices_;
  std::map<std::string, std::unique_ptr<Vector>> vectors_;
  std::vector<float> row_;
};

}  // namespace mhaprune::checkpoint
