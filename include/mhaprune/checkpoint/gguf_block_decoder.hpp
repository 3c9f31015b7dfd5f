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
#include "mhaprune/checkpoint/gguf_model.hpp"
#include "mhaprune/core/attention_block.hpp"
#include "mhaprune/criteria/element_wise.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/io/ggml_quants.hpp"
#include "mhaprune/io/tensor_view.hpp"
#include "mhaprune/layouts/fused_qkv.hpp"
#include "mhaprune/layouts/segments.hpp"
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

  /// The scores of `criterion` for the block, decoding one row at a time into a buffer of one row
  /// instead of the block into float matrices: the same scores, bit for bit, as
  /// `criterion.scores(decode(model, info))` (the same rows, runs and order of additions), without
  /// writing and reading back a block of floats (256 MiB for a LLaMA-7B block; scoring a Q8_0 model
  /// this way reads each weight byte once and keeps the floats in cache).
  /// @throws unsupported_dtype_error as `decode`; what `element_wise_numbers_by_line` throws.
  template <typename Fn>
  Eigen::VectorXd score_by_row(const ElementWise<Fn>& criterion, const GgufModel& model,
                               const BlockInfo& info) {
    const BlockTensorNames& n = info.tensors;
    const HeadLayout& L = info.layout;
    struct Rows {
      const std::string* name;
      const io::GgufTensorInfo* tensor;
    };
    std::vector<Rows> rows;
    std::vector<LinedWeight> weights;
    const auto add = [&](const std::string& name, std::vector<Segment> segments, bool heads_on_rows) {
      const io::GgufTensorInfo& t = decodable(model, info, name);
      rows.push_back({&name, &t});
      weights.push_back(
          {std::move(segments), static_cast<Index>(t.rows()), static_cast<Index>(t.ne[0]), heads_on_rows});
    };
    if (info.qkv == QkvLayout::separate) {
      add(n.q, layout::segments::single(L, Role::query), true);
      add(n.k, layout::segments::single(L, Role::key), true);
      add(n.v, layout::segments::single(L, Role::value), true);
    } else {
      add(n.qkv, layout::segments::qkv_concat(L), true);
    }
    add(n.o, layout::segments::single(L, Role::output), false);

    std::size_t open = rows.size();  // the weight whose file pages are in use
    io::ByteSpan bytes;
    const auto line_of = [&](std::size_t w, Index r) -> const float* {
      const io::GgufTensorInfo& t = *rows[w].tensor;
      if (w != open) {
        if (open < rows.size()) model.files().release(*rows[open].name);
        bytes = model.files().bytes(*rows[w].name);
        open = w;
        row_.resize(static_cast<std::size_t>(t.ne[0]));
      }
      io::dequantize_row(t.type, bytes.data() + static_cast<std::uint64_t>(r) * t.row_bytes(), row_.data(),
                         static_cast<std::int64_t>(t.ne[0]));
      return row_.data();
    };
    Eigen::VectorXd scores = criterion.scores_by_line(L, weights, line_of);
    if (open < rows.size()) model.files().release(*rows[open].name);
    return scores;
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
