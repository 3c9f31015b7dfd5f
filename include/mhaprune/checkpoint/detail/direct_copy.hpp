// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mhaprune/checkpoint/block_info.hpp"
#include "mhaprune/checkpoint/block_plan.hpp"
#include "mhaprune/checkpoint/detail/gguf_slice.hpp"
#include "mhaprune/io/byte_sink.hpp"
#include "mhaprune/io/sharded.hpp"

// A pruned tensor that is only a selection of the input's bytes (the kept heads' rows or columns,
// unchanged) is written straight from the input file: no block is read into floats for it, and
// large runs are copied inside the kernel (ByteSink::append_mapped).

namespace mhaprune::checkpoint::detail {

/// How a pruned tensor is cut from the input's bytes: the kept heads as `runs` of consecutive
/// source head positions, each head `unit` bytes, of the whole tensor (`rows == 0`: the head axis
/// is the outer one), or of each of `rows` rows of `row_bytes` (the head axis is the inner one: O
/// stored `[out, in]`, Q/K/V stored `[in, out]`).
struct DirectCopy {
  std::vector<IndexRun> runs;
  std::uint64_t unit = 0, rows = 0, row_bytes = 0;
};

/// How to write tensor `name` of a pruned block straight from the input, or nothing when it must be
/// computed from the pruned block: a tensor the block creates; O and its bias when `compensated`
/// (compensation changes them) and heads are removed; fused QKV tensors. Q/K/V weights and biases
/// of separate layouts are never changed by compensation, only cut to the kept heads.
/// Every result is checked against the planned shape (anything unexpected: nothing, and the block
/// path writes it).
inline std::optional<DirectCopy> direct_copy(const io::ShardedReader& reader, const BlockInfo& info,
                                             const BlockPlan& plan, const std::string& name,
                                             bool compensated) {
  if (!reader.contains(name)) return std::nullopt;
  const BlockTensorNames& n = info.tensors;
  const bool query = info.qkv == QkvLayout::separate && (name == n.q || name == n.q_bias);
  const bool key_value =
      info.qkv == QkvLayout::separate && (name == n.k || name == n.v || name == n.k_bias || name == n.v_bias);
  const bool output = name == n.o || name == n.o_bias;
  if (!query && !key_value && !output) return std::nullopt;
  if (output && compensated && !plan.remove.empty()) return std::nullopt;
  const auto planned = plan.shapes_after.find(name);
  if (planned == plan.shapes_after.end()) return std::nullopt;
  const io::TensorInfo& t = reader.info(name);
  if (name == n.o_bias) {  // O's bias is over the model width: unchanged
    if (planned->second != t.shape) return std::nullopt;
    return DirectCopy{{IndexRun{0, 1}}, t.byte_size(), 0, 0};
  }
  // Which head axis: rows of a bias and of Q/K/V `[out, in]` or O `[in, out]`; columns otherwise.
  const bool bias = t.shape.size() == 1;
  if (t.shape.empty() || t.shape.size() > 2) return std::nullopt;
  const bool head_rows = bias || (output == info.in_out);
  const std::size_t axis = head_rows ? 0 : 1;
  const std::vector<Index>& before = query || output ? info.head_ids : info.kv_head_ids;
  const std::vector<Index>& after = query || output ? plan.head_ids_after : plan.kv_head_ids_after;
  const std::uint64_t extent = t.shape[axis];
  if (extent == 0 || before.empty() || extent % before.size() != 0) return std::nullopt;
  const std::uint64_t width = extent / before.size();  // rows or columns of one head
  if (planned->second.size() != t.shape.size() || planned->second[axis] != width * after.size()) {
    return std::nullopt;
  }
  std::uint64_t elements = 1;
  for (const std::uint64_t d : t.shape) elements *= d;
  const std::uint64_t element_bytes = t.byte_size() / elements;
  // Bytes of one head: `width` rows of the whole row, or `width` elements of one row.
  const std::uint64_t unit = head_rows ? width * (t.byte_size() / t.shape[0]) : width * element_bytes;
  DirectCopy copy;
  copy.unit = unit;
  if (!head_rows) {
    copy.rows = t.shape[0];
    copy.row_bytes = t.shape[1] * element_bytes;
  }
  std::vector<std::uint64_t> kept;  // source positions of the kept heads, in output order
  for (const Index id : after) {
    const auto at = std::find(before.begin(), before.end(), id);
    if (at == before.end()) return std::nullopt;
    kept.push_back(static_cast<std::uint64_t>(at - before.begin()));
  }
  copy.runs = index_runs(kept);
  return copy;
}

/// Writes `copy` of `bytes` (a tensor's bytes in `file`'s map) to `sink`.
inline void emit_direct(const DirectCopy& copy, const io::MappedFile& file, io::ByteSpan bytes,
                        io::ByteSink& sink) {
  if (copy.rows == 0) {
    emit_rows(sink, file, bytes, copy.unit, copy.runs);
    return;
  }
  for (std::uint64_t row = 0; row < copy.rows; ++row) {
    emit_rows(sink, file,
              bytes.subspan(static_cast<std::size_t>(row * copy.row_bytes),
                            static_cast<std::size_t>(copy.row_bytes)),
              copy.unit, copy.runs);
  }
}

}  // namespace mhaprune::checkpoint::detail
