// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "mhaprune/error.hpp"
#include "mhaprune/io/byte_span.hpp"
#include "mhaprune/io/ggml_quants.hpp"
#include "mhaprune/io/ggml_type.hpp"
#include "mhaprune/io/gguf_writer.hpp"
#include "mhaprune/io/mapped_file.hpp"

namespace mhaprune::checkpoint::detail {

/// `count` consecutive indices from `begin`: kept rows of a weight, or kept columns (elements of a
/// row) of O and of 1-D tensors, written as one copy each.
struct IndexRun {
  std::uint64_t begin = 0, count = 0;
};

/// The kept indices, in output order, as runs of consecutive source indices.
inline std::vector<IndexRun> index_runs(const std::vector<std::uint64_t>& source) {
  std::vector<IndexRun> runs;
  for (const std::uint64_t i : source) {
    if (!runs.empty() && runs.back().begin + runs.back().count == i) {
      ++runs.back().count;
    } else {
      runs.push_back({i, 1});
    }
  }
  return runs;
}

/// True when every run starts and ends on a multiple of `block`, so whole blocks can be copied.
inline bool runs_block_aligned(const std::vector<IndexRun>& runs, std::uint64_t block) {
  for (const IndexRun& r : runs)
    if (r.begin % block != 0 || r.count % block != 0) return false;
  return true;
}

/// The first run that does not start and end on a block boundary (for messages); runs must not be
/// aligned.
inline IndexRun first_unaligned_run(const std::vector<IndexRun>& runs, std::uint64_t block) {
  for (const IndexRun& r : runs)
    if (r.begin % block != 0 || r.count % block != 0) return r;
  return {};
}

/// Writes rows (or other units, such as heads) of `row_bytes` each, the runs in order: the bytes of
/// the kept ones, unchanged. `data` lies in `file`'s map: each run is one range copy (inside the
/// kernel when large, see `ByteSink::append_mapped`).
inline void emit_rows(io::ByteSink& sink, const io::MappedFile& file, io::ByteSpan data,
                      std::uint64_t row_bytes, const std::vector<IndexRun>& runs) {
  for (const IndexRun& r : runs)
    sink.append_mapped(file, data.subspan(static_cast<std::size_t>(r.begin * row_bytes),
                                          static_cast<std::size_t>(r.count * row_bytes)));
}

/// Writes, for each of `rows` rows of `ne0` elements of type `type`, the column runs (each a
/// whole number of blocks: check `runs_block_aligned` first) as the input's blocks, unchanged.
inline void emit_columns(io::ByteSink& sink, io::ByteSpan data, io::GgmlType type, std::uint64_t ne0,
                         std::uint64_t rows, const std::vector<IndexRun>& runs) {
  const io::GgmlTypeTraits& t = io::ggml_traits(type);
  const std::uint64_t row_bytes = ne0 / t.block_size * t.type_size;
  for (std::uint64_t row = 0; row < rows; ++row) {
    const std::byte* base = data.data() + row * row_bytes;
    for (const IndexRun& r : runs) {
      sink.append(base + r.begin / t.block_size * t.type_size,
                  static_cast<std::size_t>(r.count / t.block_size * t.type_size));
    }
  }
}

/// Writes each row's column runs re-encoded: the row is decoded, the kept columns gathered and
/// encoded as `to` (ggml's reference rule). The kept width must be a whole number of `to`'s blocks.
/// @throws unsupported_dtype_error when `from` cannot be decoded or `to` encoded.
inline void emit_columns_reencoded(io::ByteSink& sink, io::ByteSpan data, io::GgmlType from,
                                   std::uint64_t ne0, std::uint64_t rows, const std::vector<IndexRun>& runs,
                                   io::GgmlType to) {
  const std::uint64_t in_row = *io::row_bytes(from, ne0);
  std::uint64_t kept = 0;
  for (const IndexRun& r : runs) kept += r.count;
  const std::uint64_t out_row = *io::row_bytes(to, kept);
  std::vector<float> decoded(static_cast<std::size_t>(ne0)), gathered(static_cast<std::size_t>(kept));
  std::vector<std::byte> encoded(static_cast<std::size_t>(out_row));
  for (std::uint64_t row = 0; row < rows; ++row) {
    io::dequantize_row(from, data.data() + row * in_row, decoded.data(), static_cast<std::int64_t>(ne0));
    std::size_t at = 0;
    for (const IndexRun& r : runs) {
      std::memcpy(gathered.data() + at, decoded.data() + r.begin,
                  static_cast<std::size_t>(r.count) * sizeof(float));
      at += static_cast<std::size_t>(r.count);
    }
    io::quantize_row(to, gathered.data(), encoded.data(), static_cast<std::int64_t>(kept));
    sink.append(encoded.data(), encoded.size());
  }
}

}  // namespace mhaprune::checkpoint::detail
