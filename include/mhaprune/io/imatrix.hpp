// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mhaprune/calibration/activation_stats.hpp"
#include "mhaprune/error.hpp"
#include "mhaprune/io/byte_sink.hpp"
#include "mhaprune/io/byte_span.hpp"
#include "mhaprune/io/detail/ggml_scalar.hpp"
#include "mhaprune/io/detail/text.hpp"
#include "mhaprune/io/ggml_type.hpp"
#include "mhaprune/io/gguf_reader.hpp"
#include "mhaprune/io/gguf_value.hpp"
#include "mhaprune/io/gguf_writer.hpp"
#include "mhaprune/io/mapped_file.hpp"

/// # llama.cpp importance matrices (llama-imatrix output)
///
/// llama-imatrix runs a model over calibration text and records, for every weight W that multiplies
/// activations X (`blk.*` weights; `output.weight` with --process-output), per input column j of W
/// (ne[0] of W, the PyTorch in-feature) the sum of squares Σ_tokens x_j² and the number of tokens.
/// For `blk.N.attn_output.weight` the input is the concatenated head outputs, in O's column order:
/// exactly the ‖X_j‖² that Wanda-style criteria need. Mixture-of-experts weights have one row of
/// sums and one count per expert matrix (n_mat > 1).
///
/// Two file forms, told apart by the GGUF magic (a .dat never starts with "GGUF": that would be an
/// entry count of 1.18e9):
///
/// **GGUF form** (llama-imatrix's default; `save_imatrix` in tools/imatrix/imatrix.cpp): KVs
/// `general.type` = "imatrix", `imatrix.datasets` (string array), `imatrix.chunk_count` and
/// `imatrix.chunk_size` (UINT32; chunk_size is the tokens per chunk, n_ctx / n_parallel). Per weight
/// `<name>`, in name order: `<name>.in_sum2` F32 {n_cols, n_mat} (Σx²), `<name>.counts` F32 {1, n_mat}
/// (tokens, integers stored as float), and in newer builds `<name>.in_sum` F32 {n_cols, n_mat} (Σx).
/// ggml drops trailing 1-dims, so a dense weight's tensors are {n_cols} and {1}.
///
/// **Legacy .dat form** (`--output-format dat`, `save_imatrix_legacy`), little-endian:
///
///     i32 n_entries; n_entries × { i32 len; char name[len]; i32 ncall; i32 nval; f32 value[nval] }
///     [i32 last_chunk [i32 len; char dataset[len]]]          (optional trailer)
///
/// where ncall = ceil(max count / chunk_size) and value[i] = (Σx²_i / count) · ncall, i.e. the mean
/// square E[x²] times the number of chunks (a matrix with no tokens stores 1 · ncall). The chunk size
/// is not stored; llama-imatrix's own loader (`load_imatrix_legacy`) rebuilds Σx² = value · chunk_size
/// and count = ncall · chunk_size with its current n_ctx / n_parallel, and llama-quantize uses
/// E[x²] = value / ncall. `read_imatrix` does the same with `ReadImatrixOptions::legacy_chunk_size`
/// (512, llama-imatrix's default context): **sum2 = value · chunk_size, count = ncall · chunk_size**, so
/// that sum2 / count = value / ncall = E[x²] exactly as llama-quantize sees it, and the scale of the
/// sums is that of the GGUF form of the same run (up to rounding the token count up to whole chunks).
/// n_mat is not stored in a .dat, so its entries are read with n_mat = 1 (nval columns).
namespace mhaprune::io {

/// One weight's statistics.
struct ImatrixEntry {
  /// The weight's GGUF tensor name, e.g. "blk.3.attn_output.weight".
  std::string name;
  /// Σ x² per input column, n_mat rows of n_cols values (matrix-major: matrix m, column j at
  /// m * n_cols + j); each finite and >= 0.
  std::vector<double> sum2;
  /// Σ x, same layout, when the file has it (GGUF `in_sum`); the mean is sum / count.
  std::optional<std::vector<double>> sum;
  /// Tokens behind the sums (for n_mat > 1: the largest per-matrix count, see `counts`).
  double count = 0;
  /// Number of matrices (experts) sharing the entry; sum2.size() = n_mat * n_cols.
  std::int64_t n_mat = 1;
  /// Per-matrix token counts (n_mat values), or empty: every matrix has `count`. `read_imatrix`
  /// fills it when n_mat > 1 and the file stores one count per matrix.
  std::vector<double> counts;

  /// Input columns per matrix (ne[0] of the weight).
  std::int64_t columns() const noexcept {
    return n_mat > 0 ? static_cast<std::int64_t>(sum2.size()) / n_mat : 0;
  }
  /// The token count of matrix `m` (0-based).
  double count_of(std::int64_t m) const noexcept {
    return counts.empty() ? count : counts[static_cast<std::size_t>(m)];
  }
};

/// A whole imatrix file.
struct Imatrix {
  /// In name order (as both file forms store them).
  std::vector<ImatrixEntry> entries;
  /// The calibration text files (`imatrix.datasets`; the .dat trailer's one name).
  std::vector<std::string> datasets;
  /// `imatrix.chunk_count` (the .dat trailer's last_chunk), and tokens per chunk
  /// (`imatrix.chunk_size`; for a .dat, `ReadImatrixOptions::legacy_chunk_size`).
  std::uint32_t chunk_count = 0, chunk_size = 0;

  /// The entry of weight `name`, or nullptr.
  const ImatrixEntry* find(std::string_view name) const noexcept {
    for (const ImatrixEntry& e : entries)
      if (e.name == name) return &e;
    return nullptr;
  }
};

/// How `read_imatrix` reads what a file does not say.
struct ReadImatrixOptions {
  /// Tokens per chunk assumed for a legacy .dat (which does not store it): the n_ctx / n_parallel
  /// of the llama-imatrix run, 512 by default as in llama-imatrix. Only scales sum2 and count
  /// together; E[x²] = sum2 / count does not depend on it. Must be >= 1.
  std::uint32_t legacy_chunk_size = 512;
};

namespace detail {

inline constexpr std::string_view imatrix_sum2_suffix = ".in_sum2";
inline constexpr std::string_view imatrix_counts_suffix = ".counts";
inline constexpr std::string_view imatrix_sum_suffix = ".in_sum";

inline bool imatrix_ends_with(std::string_view s, std::string_view suffix) noexcept {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

/// The checks every entry must pass, whichever form it came from; `fail(parts...)` throws.
template <typename Fail>
void check_imatrix_entry(const ImatrixEntry& e, const Fail& fail) {
  if (e.n_mat < 1) fail("n_mat is ", e.n_mat, "; expected >= 1");
  if (e.sum2.empty() || e.sum2.size() % static_cast<std::size_t>(e.n_mat) != 0)
    fail(e.sum2.size(), " sums of squares are not n_mat = ", e.n_mat, " rows of at least one column");
  if (e.sum && e.sum->size() != e.sum2.size())
    fail(e.sum->size(), " sums (in_sum) but ", e.sum2.size(), " sums of squares (in_sum2): lengths differ");
  if (!e.counts.empty() && e.counts.size() != static_cast<std::size_t>(e.n_mat))
    fail(e.counts.size(), " per-matrix counts for n_mat = ", e.n_mat, " matrices");
  const auto n_cols = static_cast<std::size_t>(e.columns());
  for (std::int64_t m = 0; m < e.n_mat; ++m) {
    const double c = e.count_of(m);
    if (!std::isfinite(c) || c < 0)
      fail("token count", e.n_mat > 1 ? mhaprune::detail::message(" of matrix ", m) : std::string(), " is ",
           c, "; expected a finite value >= 0");
    for (std::size_t j = 0; j < n_cols; ++j) {
      const std::size_t k = static_cast<std::size_t>(m) * n_cols + j;
      const double v = e.sum2[k];
      if (!std::isfinite(v) || v < 0)
        fail("sum of squares of column ", j, e.n_mat > 1 ? mhaprune::detail::message(" of matrix ", m) : "",
             " is ", v, "; expected a finite value >= 0");
      if (c == 0 && v != 0)
        fail("sum of squares of column ", j, " is ", v, " with a token count of 0 (no tokens, no sums)");
      if (e.sum) {
        const double s = (*e.sum)[k];
        if (!std::isfinite(s)) fail("sum (in_sum) of column ", j, " is ", s, "; expected a finite value");
        if (c == 0 && s != 0) fail("sum (in_sum) of column ", j, " is ", s, " with a token count of 0");
      }
    }
  }
}

/// Reads `n` little-endian F32 values from `p` as doubles.
inline std::vector<double> read_f32_values(const std::byte* p, std::size_t n) {
  std::vector<double> out(n);
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<double>(float_from_bits(le32(p + 4 * i)));
  return out;
}

inline Imatrix read_imatrix_gguf(const std::string& path) {
  const GgufReader in(path);
  const auto fail_key = [&](std::string_view key, const auto&... what) {
    throw corrupt_file_error(mhaprune::detail::message(path, ": imatrix key ", quoted(key), ": ", what...));
  };
  Imatrix out;
  if (const GgufValue* v = in.find("general.type")) {
    const auto type = v->as_string();
    if (!type) fail_key("general.type", "type ", to_string(v->type()), ", expected STRING");
    if (*type != "imatrix")
      fail_key("general.type", "is ", quoted(*type),
               ", not \"imatrix\": this GGUF file is not an importance matrix");
  }
  if (const GgufValue* v = in.find("imatrix.datasets")) {
    auto names = v->as_string_array();
    if (!names) fail_key("imatrix.datasets", "type ", to_string(v->type()), ", expected an array of STRING");
    out.datasets = std::move(*names);
  }
  const auto u32_key = [&](const char* key) -> std::uint32_t {
    const GgufValue* v = in.find(key);
    if (v == nullptr) return 0;
    const auto i = v->as_int();
    if (!i || *i < 0 || *i > static_cast<std::int64_t>(std::numeric_limits<std::uint32_t>::max()))
      fail_key(key, "expected an integer in [0, 2^32) (UINT32), got ", v->to_display_string());
    return static_cast<std::uint32_t>(*i);
  };
  out.chunk_count = u32_key("imatrix.chunk_count");
  out.chunk_size = u32_key("imatrix.chunk_size");

  // Group the tensors by entry name; other suffixes are ignored (room for future additions).
  struct Parts {
    const GgufTensorInfo* sum2 = nullptr;
    const GgufTensorInfo* counts = nullptr;
    const GgufTensorInfo* sum = nullptr;
  };
  std::map<std::string, Parts> parts;
  for (const GgufTensorInfo& t : in.tensors()) {
    const GgufTensorInfo** slot = nullptr;
    std::string_view suffix;
    if (imatrix_ends_with(t.name, imatrix_sum2_suffix)) {
      suffix = imatrix_sum2_suffix;
    } else if (imatrix_ends_with(t.name, imatrix_counts_suffix)) {
      suffix = imatrix_counts_suffix;
    } else if (imatrix_ends_with(t.name, imatrix_sum_suffix)) {
      suffix = imatrix_sum_suffix;
    } else {
      continue;
    }
    const std::string name = t.name.substr(0, t.name.size() - suffix.size());
    if (name.empty()) {
      throw corrupt_file_error(mhaprune::detail::message(path, ": imatrix tensor ", quoted(t.name),
                                                         ": no weight name before ", quoted(suffix)));
    }
    Parts& p = parts[name];
    slot = suffix == imatrix_sum2_suffix ? &p.sum2 : suffix == imatrix_counts_suffix ? &p.counts : &p.sum;
    *slot = &t;
  }
  if (parts.empty()) {
    throw corrupt_file_error(mhaprune::detail::message(
        path, ": holds no imatrix entries (no tensor named <weight>.in_sum2 / <weight>.counts)"));
  }

  for (const auto& [name, p] : parts) {
    const auto fail = [&, &name = name](const auto&... what) {
      throw corrupt_file_error(
          mhaprune::detail::message(path, ": imatrix entry ", quoted(name), ": ", what...));
    };
    if (p.sum2 == nullptr)
      fail("tensor ", quoted(name + std::string(imatrix_sum2_suffix)), " is missing (every entry needs ",
           imatrix_sum2_suffix, " and ", imatrix_counts_suffix, ")");
    if (p.counts == nullptr)
      fail("tensor ", quoted(name + std::string(imatrix_counts_suffix)), " is missing (every entry needs ",
           imatrix_sum2_suffix, " and ", imatrix_counts_suffix, ")");
    for (const GgufTensorInfo* t : {p.sum2, p.counts, p.sum}) {
      if (t != nullptr && t->type != GgmlType::F32)
        fail("tensor ", quoted(t->name), " has type ", to_string(t->type), "; imatrix tensors are f32");
    }
    const GgufTensorInfo& s2 = *p.sum2;
    if (s2.ne.size() > 2)
      fail("tensor ", quoted(s2.name), " has shape ", shape_string(s2.ne),
           "; expected {n_cols} or {n_cols, n_mat}");
    ImatrixEntry e;
    e.name = name;
    e.n_mat = s2.ne.size() == 2 ? static_cast<std::int64_t>(s2.ne[1]) : 1;
    const GgufTensorInfo& c = *p.counts;
    const std::uint64_t n_counts = c.element_count();
    const bool counts_shape_ok = (c.ne.size() == 1 || (c.ne.size() == 2 && c.ne[0] == 1)) &&
                                 (n_counts == static_cast<std::uint64_t>(e.n_mat) || n_counts == 1);
    if (!counts_shape_ok)
      fail("tensor ", quoted(c.name), " has shape ", shape_string(c.ne),
           "; expected {1, n_mat} or {n_mat} with n_mat = ", e.n_mat, " (the rows of ", quoted(s2.name), " ",
           shape_string(s2.ne), ")");
    if (p.sum != nullptr && p.sum->element_count() != s2.element_count())
      fail("tensor ", quoted(p.sum->name), " has shape ", shape_string(p.sum->ne), " but ", quoted(s2.name),
           " has ", shape_string(s2.ne), ": lengths differ");

    e.sum2 = read_f32_values(in.bytes(s2).data(), static_cast<std::size_t>(s2.element_count()));
    const std::vector<double> counts =
        read_f32_values(in.bytes(c).data(), static_cast<std::size_t>(n_counts));
    // One count for several matrices is an older file's dense 3-D weight: every matrix saw it.
    if (e.n_mat == 1 || counts.size() == 1) {
      e.count = counts[0];
    } else {
      e.counts = counts;
      e.count = *std::max_element(counts.begin(), counts.end());
      if (std::isnan(e.count)) e.count = counts[0];  // the check below names the NaN
    }
    if (p.sum != nullptr)
      e.sum = read_f32_values(in.bytes(*p.sum).data(), static_cast<std::size_t>(p.sum->element_count()));
    for (std::int64_t m = 0; m < static_cast<std::int64_t>(counts.size()); ++m) {
      if (!std::isfinite(counts[static_cast<std::size_t>(m)]) || counts[static_cast<std::size_t>(m)] < 0)
        fail("tensor ", quoted(c.name), ": token count ", m, " is ", counts[static_cast<std::size_t>(m)],
             "; expected a finite value >= 0");
    }
    check_imatrix_entry(e, fail);
    out.entries.push_back(std::move(e));
  }
  return out;  // std::map iteration: entries in name order
}

/// A little-endian reader over a .dat file's bytes whose failures name the file and what was read.
class ImatrixDatCursor {
 public:
  ImatrixDatCursor(ByteSpan bytes, const std::string& path) : bytes_(bytes), path_(path) {}
  std::size_t position() const noexcept { return at_; }
  std::size_t remaining() const noexcept { return bytes_.size() - at_; }

  template <typename... What>
  [[noreturn]] void fail(const What&... what) const {
    throw corrupt_file_error(mhaprune::detail::message(path_, ": ", what...));
  }
  /// Throws (naming `what` and the offset) unless `n` more bytes are there.
  template <typename... What>
  void need(std::size_t n, const What&... what) const {
    if (remaining() < n)
      fail("truncated: ", what..., " needs ", n, " bytes at offset ", at_, ", the file has ", remaining(),
           " left (", bytes_.size(), " bytes in all)");
  }
  template <typename... What>
  std::int32_t i32(const What&... what) {
    need(4, what...);
    const auto v = static_cast<std::int32_t>(le32(bytes_.data() + at_));
    at_ += 4;
    return v;
  }
  const std::byte* take(std::size_t n) noexcept {
    const std::byte* p = bytes_.data() + at_;
    at_ += n;
    return p;
  }

 private:
  ByteSpan bytes_;
  const std::string& path_;
  std::size_t at_ = 0;
};

inline Imatrix read_imatrix_dat(ByteSpan bytes, const std::string& path, const ReadImatrixOptions& options) {
  if (options.legacy_chunk_size < 1)
    throw mhaprune::error(
        mhaprune::detail::message(path, ": ReadImatrixOptions::legacy_chunk_size is 0; expected >= 1"));
  ImatrixDatCursor in(bytes, path);
  const std::int32_t n_entries = in.i32("the entry count (int32)");
  if (n_entries < 1) in.fail("the entry count is ", n_entries, "; expected at least 1 (legacy .dat imatrix)");
  const double chunk = options.legacy_chunk_size;
  Imatrix out;
  out.chunk_size = options.legacy_chunk_size;
  for (std::int32_t i = 0; i < n_entries; ++i) {
    const std::string which = mhaprune::detail::message("imatrix entry ", i, " of ", n_entries);
    const std::int32_t len = in.i32(which, ": its name length (int32)");
    if (len < 1) in.fail(which, ": name length ", len, "; expected >= 1");
    in.need(static_cast<std::size_t>(len), which, ": its name");
    const char* name_bytes = reinterpret_cast<const char*>(in.take(static_cast<std::size_t>(len)));
    std::string name(name_bytes, static_cast<std::size_t>(len));
    const std::string entry =
        mhaprune::detail::message("imatrix entry ", quoted(name), " (", i, " of ", n_entries, ")");
    const std::int32_t ncall = in.i32(entry, ": its ncall (int32)");
    if (ncall < 0) in.fail(entry, ": ncall is ", ncall, "; expected >= 0");
    const std::int32_t nval = in.i32(entry, ": its value count (int32)");
    if (nval < 1) in.fail(entry, ": value count is ", nval, "; expected >= 1");
    in.need(4 * static_cast<std::size_t>(nval), entry, ": its ", nval, " float values");
    const std::vector<double> values =
        read_f32_values(in.take(4 * static_cast<std::size_t>(nval)), static_cast<std::size_t>(nval));
    for (const ImatrixEntry& prev : out.entries)
      if (prev.name == name) in.fail(entry, ": the name appears twice");
    ImatrixEntry e;
    e.name = std::move(name);
    e.count = static_cast<double>(ncall) * chunk;
    e.sum2.resize(values.size());
    for (std::size_t k = 0; k < values.size(); ++k) e.sum2[k] = values[k] * chunk;
    check_imatrix_entry(e, [&](const auto&... what) { in.fail(entry, ": ", what...); });
    out.entries.push_back(std::move(e));
  }
  // Optional trailer, as llama-imatrix's loader reads it: last_chunk, then the dataset name.
  if (in.remaining() > 0) {
    const std::int32_t last_chunk = in.i32("the trailer's chunk count (int32)");
    if (last_chunk < 0) in.fail("the trailer's chunk count is ", last_chunk, "; expected >= 0");
    out.chunk_count = static_cast<std::uint32_t>(last_chunk);
    if (in.remaining() > 0) {
      const std::int32_t len = in.i32("the trailer's dataset name length (int32)");
      if (len < 0) in.fail("the trailer's dataset name length is ", len, "; expected >= 0");
      in.need(static_cast<std::size_t>(len), "the trailer's dataset name");
      const char* p = reinterpret_cast<const char*>(in.take(static_cast<std::size_t>(len)));
      // llama.cpp reads the name as a C string: stop at a NUL.
      std::string dataset(p, std::find(p, p + len, '\0'));
      if (!dataset.empty()) out.datasets.push_back(std::move(dataset));
      if (in.remaining() > 0)
        in.fail(in.remaining(), " bytes follow the trailer at offset ", in.position(),
                " (expected the end of the file)");
    }
  }
  std::sort(out.entries.begin(), out.entries.end(),
            [](const ImatrixEntry& a, const ImatrixEntry& b) { return a.name < b.name; });
  return out;
}

}  // namespace detail

/// Reads a llama-imatrix file of either form (told apart by the GGUF magic; see the top of this
/// header for both layouts and how a .dat's values become sums and counts). Entries come out in
/// name order. For the GGUF form, tensors with other suffixes are ignored; `imatrix.*` KVs that
/// are absent read as empty / 0.
///
/// Strict: every entry needs `.in_sum2` and `.counts` (F32, shapes {n_cols[, n_mat]} and
/// {[1, ]n_mat}, or a single count for every matrix), an `.in_sum` must have in_sum2's length,
/// sums of squares and counts must be finite and >= 0, sums finite, and a count of 0 must come
/// with zero sums; a .dat must hold at least one entry, no name twice, and end exactly after its
/// entries, after the trailer's chunk count, or after the trailer's dataset name.
///
/// @throws io_error when the file cannot be opened or mapped (with the system's reason);
///         corrupt_file_error naming the file, the entry (name, and index in a .dat) and the check
///         that failed, for anything else (including every truncation of a .dat and every problem
///         the GGUF reader finds); unsupported_dtype_error for an unknown ggml type in a GGUF file.
inline Imatrix read_imatrix(const std::string& path, const ReadImatrixOptions& options = {}) {
  const MappedFile file(path);
  const ByteSpan bytes = file.bytes();
  if (bytes.size() >= 4 && std::memcmp(bytes.data(), "GGUF", 4) == 0) return detail::read_imatrix_gguf(path);
  return detail::read_imatrix_dat(bytes, path, options);
}

/// Writes `imatrix` in the GGUF form, exactly as llama-imatrix's `save_imatrix` lays it out, so that
/// `llama-quantize --imatrix` and `llama-imatrix --in-file` accept it: KVs general.type =
/// "imatrix", imatrix.datasets (string array, possibly empty), imatrix.chunk_count and
/// imatrix.chunk_size (UINT32; llama-quantize requires all three); then per entry in name order
/// `<name>.in_sum2` {n_cols[, n_mat]}, `<name>.counts` {1[, n_mat]} and, when the entry has sums,
/// `<name>.in_sum`, all F32 (values rounded to float, as llama-imatrix stores them). The file
/// appears atomically (temporary file + rename; fsynced when `options.durable`).
/// @throws io_error naming the path and the entry when an entry is invalid (the checks
///         `read_imatrix` makes, plus: empty or duplicate names, names too long for GGUF, values
///         that overflow float) — nothing is written then — or when the file cannot be written.
inline void write_imatrix_gguf(const Imatrix& imatrix, const std::string& path,
                               const WriteOptions& options = {}) {
  std::vector<const ImatrixEntry*> order;
  order.reserve(imatrix.entries.size());
  for (const ImatrixEntry& e : imatrix.entries) order.push_back(&e);
  std::sort(order.begin(), order.end(),
            [](const ImatrixEntry* a, const ImatrixEntry* b) { return a->name < b->name; });
  if (order.empty())
    throw io_error(mhaprune::detail::message(path, ": an imatrix without entries cannot be written"));

  // Everything is checked and converted before the writer sees it.
  struct Encoded {
    const ImatrixEntry* entry;
    std::vector<float> sum2, counts, sum;
  };
  std::vector<Encoded> encoded;
  encoded.reserve(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    const ImatrixEntry& e = *order[i];
    const auto fail = [&](const auto&... what) {
      throw io_error(
          mhaprune::detail::message(path, ": imatrix entry ", detail::quoted(e.name), ": ", what...));
    };
    if (e.name.empty()) fail("empty name");
    if (i > 0 && order[i - 1]->name == e.name) fail("the name appears twice");
    if (e.name.size() + detail::imatrix_sum2_suffix.size() > gguf_max_name_bytes)
      fail("name is ", e.name.size(), " bytes long; with \".in_sum2\" it must fit GGUF's ",
           gguf_max_name_bytes, "-byte tensor names");
    detail::check_imatrix_entry(e, fail);
    const auto to_float = [&](const std::vector<double>& v, const char* what) {
      std::vector<float> out(v.size());
      for (std::size_t k = 0; k < v.size(); ++k) {
        out[k] = static_cast<float>(v[k]);
        if (!std::isfinite(out[k])) fail(what, " ", k, " is ", v[k], ", beyond float's range");
      }
      return out;
    };
    Encoded enc{&e, to_float(e.sum2, "sum of squares"), {}, {}};
    std::vector<double> counts(static_cast<std::size_t>(e.n_mat));
    for (std::int64_t m = 0; m < e.n_mat; ++m) counts[static_cast<std::size_t>(m)] = e.count_of(m);
    enc.counts = to_float(counts, "token count");
    if (e.sum) enc.sum = to_float(*e.sum, "sum");
    encoded.push_back(std::move(enc));
  }

  GgufWriter out(3);
  out.add_kv("general.type", GgufValue::string("imatrix"));
  out.add_kv("imatrix.datasets", GgufValue::string_array(imatrix.datasets));
  out.add_kv("imatrix.chunk_count", GgufValue::uint32(imatrix.chunk_count));
  out.add_kv("imatrix.chunk_size", GgufValue::uint32(imatrix.chunk_size));
  const auto shape = [](std::uint64_t ne0, std::int64_t n_mat) {
    // ggml_n_dims drops a trailing 1: a dense weight's tensors are 1-D.
    return n_mat == 1 ? std::vector<std::uint64_t>{ne0}
                      : std::vector<std::uint64_t>{ne0, static_cast<std::uint64_t>(n_mat)};
  };
  const auto as_bytes = [](const std::vector<float>& v) {
    return ByteSpan(v.data(), v.size() * sizeof(float));
  };
  static_assert(sizeof(float) == 4 && std::numeric_limits<float>::is_iec559, "imatrix files hold IEEE f32");
  for (const Encoded& enc : encoded) {
    const ImatrixEntry& e = *enc.entry;
    const auto n_cols = static_cast<std::uint64_t>(e.columns());
    out.add_tensor(e.name + std::string(detail::imatrix_sum2_suffix), GgmlType::F32, shape(n_cols, e.n_mat),
                   as_bytes(enc.sum2));
    out.add_tensor(e.name + std::string(detail::imatrix_counts_suffix), GgmlType::F32, shape(1, e.n_mat),
                   as_bytes(enc.counts));
    if (e.sum)
      out.add_tensor(e.name + std::string(detail::imatrix_sum_suffix), GgmlType::F32, shape(n_cols, e.n_mat),
                     as_bytes(enc.sum));
  }
  out.write(path, options);
}

/// The entry restricted to the input columns `kept_columns`, in that order (column j of the result
/// is column kept_columns[j] of `entry`), in every matrix; counts unchanged. This is what an
/// imatrix entry of a pruned model's `attn_output` weight is: O keeps the columns of the kept
/// heads, and their inputs are unchanged.
/// @throws mhaprune::error naming the entry when `kept_columns` is empty, holds a column outside
///         [0, n_cols) or holds one twice, or when the entry itself is malformed.
inline ImatrixEntry slice_columns(const ImatrixEntry& entry, const std::vector<std::int64_t>& kept_columns) {
  const auto fail = [&](const auto&... what) {
    throw mhaprune::error(mhaprune::detail::message("slice_columns: imatrix entry ",
                                                    detail::quoted(entry.name), ": ", what...));
  };
  detail::check_imatrix_entry(entry, fail);
  const std::int64_t n_cols = entry.columns();
  if (kept_columns.empty()) fail("no column kept (an imatrix entry needs at least one)");
  std::vector<char> seen(static_cast<std::size_t>(n_cols), 0);
  for (const std::int64_t c : kept_columns) {
    if (c < 0 || c >= n_cols) fail("column ", c, " is outside [0, ", n_cols, ")");
    if (seen[static_cast<std::size_t>(c)]++ != 0) fail("column ", c, " is kept twice");
  }
  ImatrixEntry out;
  out.name = entry.name;
  out.count = entry.count;
  out.n_mat = entry.n_mat;
  out.counts = entry.counts;
  const auto gather = [&](const std::vector<double>& v) {
    std::vector<double> g;
    g.reserve(kept_columns.size() * static_cast<std::size_t>(entry.n_mat));
    for (std::int64_t m = 0; m < entry.n_mat; ++m)
      for (const std::int64_t c : kept_columns) g.push_back(v[static_cast<std::size_t>(m * n_cols + c)]);
    return g;
  };
  out.sum2 = gather(entry.sum2);
  if (entry.sum) out.sum = gather(*entry.sum);
  return out;
}

/// The O-input statistics an imatrix holds, as the calibration statistics of the library: one
/// `ActivationStats` per entry named `blk.<N>.attn_output.weight`, keyed by the name minus
/// ".weight" ("blk.3.attn_output"), with channels = the entry's columns (O's input features, head h
/// owning [h·d, (h+1)·d)). Other entries are not O inputs and are skipped.
///
///  - count = the entry's token count, rounded to an integer as llama.cpp reads it (std::llround);
///  - sum_squares = in_sum2 (Σ x²): enough for `wanda_sp` (‖X_j‖₂ = sqrt(Σ x²));
///  - with in_sum (Σ x): mean = Σx / count and M2 = Σx² − (Σx)²/count, clamped at 0 (llama-imatrix
///    sums in float, so the variance loses precision when |mean| ≫ std); `fluctuation` and the
///    `bias` compensation can then use them;
///  - without in_sum (older files, every .dat): `ActivationStats::from_sum_squares`, whose mean, M2
///    and variance throw: `fluctuation` and every compensation fail with a message saying the
///    statistics hold only sums of squares, instead of using moments nobody measured;
///  - never a Gram matrix (an imatrix has none): `obs` and the Gram-based compensations (scale, lsq,
///    bias_lsq, obs) fail saying so.
///
/// For a .dat, count and Σx² are both scaled by the assumed chunk size (see the top of this
/// header); E[x²] and every criterion that normalises per token are unaffected, and sum_squares
/// are on the scale of the same run's GGUF form.
/// @throws mhaprune::error naming the entry when an attn_output entry has n_mat != 1 or fails the
///         entry checks; calibration_error from ActivationStats if its values are not usable.
inline std::map<std::string, ActivationStats> imatrix_to_stats(const Imatrix& imatrix) {
  std::map<std::string, ActivationStats> out;
  constexpr std::string_view prefix = "blk.", suffix = ".attn_output.weight";
  for (const ImatrixEntry& e : imatrix.entries) {
    const std::string_view name = e.name;
    if (name.size() <= prefix.size() + suffix.size() || name.substr(0, prefix.size()) != prefix ||
        !detail::imatrix_ends_with(name, suffix))
      continue;
    const std::string_view layer = name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
    if (!std::all_of(layer.begin(), layer.end(), [](char ch) { return ch >= '0' && ch <= '9'; })) continue;
    const auto fail = [&](const auto&... what) {
      throw mhaprune::error(mhaprune::detail::message("imatrix_to_stats: imatrix entry ",
                                                      detail::quoted(e.name), ": ", what...));
    };
    detail::check_imatrix_entry(e, fail);
    if (e.n_mat != 1) fail("has ", e.n_mat, " matrices; an attention output weight has 1");
    const std::int64_t n = std::llround(e.count);
    const Eigen::Index c = static_cast<Eigen::Index>(e.sum2.size());
    const Eigen::VectorXd sumsq = Eigen::Map<const Eigen::VectorXd>(e.sum2.data(), c);
    const std::string key(name.substr(0, name.size() - std::string_view(".weight").size()));
    if (!e.sum) {
      out.emplace(key, ActivationStats::from_sum_squares(n, sumsq));
      continue;
    }
    const Eigen::VectorXd sum = Eigen::Map<const Eigen::VectorXd>(e.sum->data(), c);
    Eigen::VectorXd mean = Eigen::VectorXd::Zero(c), m2 = Eigen::VectorXd::Zero(c);
    if (n > 0) {
      mean = sum / static_cast<double>(n);
      m2 = (sumsq - sum.cwiseProduct(mean)).cwiseMax(0.0);
    }
    out.emplace(key, ActivationStats::from_moments(n, mean, m2, sumsq));
  }
  return out;
}

}  // namespace mhaprune::io
