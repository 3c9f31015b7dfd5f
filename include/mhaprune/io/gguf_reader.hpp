// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <ostream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "mhaprune/error.hpp"
#include "mhaprune/io/byte_span.hpp"
#include "mhaprune/io/detail/system_error.hpp"
#include "mhaprune/io/detail/text.hpp"
#include "mhaprune/io/ggml_type.hpp"
#include "mhaprune/io/gguf_value.hpp"
#include "mhaprune/io/mapped_file.hpp"

namespace mhaprune::io {

namespace detail {

/// The element of `order` (indices) whose name(index) equals `wanted`, by binary search; `order`
/// is sorted by name. Returns the index, or size_t(-1).
template <typename NameOf>
std::size_t find_sorted(const std::vector<std::size_t>& order, std::string_view wanted,
                        NameOf name_of) noexcept {
  std::size_t lo = 0, hi = order.size();
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    if (name_of(order[mid]) < wanted) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo < order.size() && name_of(order[lo]) == wanted ? order[lo] : static_cast<std::size_t>(-1);
}

/// Indices 0..n-1 sorted by name_of(index).
template <typename NameOf>
std::vector<std::size_t> sorted_order(std::size_t n, NameOf name_of) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return name_of(a) < name_of(b); });
  return order;
}

/// Streams a name quoted as in every message (detail::quoted), built only when a message is.
struct QuotedName {
  const std::string& name;
  friend std::ostream& operator<<(std::ostream& out, const QuotedName& q) { return out << quoted(q.name); }
};

}  // namespace detail

/// ggml's limits that a GGUF file must respect (ggml.h).
inline constexpr std::size_t gguf_max_name_bytes = 63;       ///< GGML_MAX_NAME (64) minus the NUL
inline constexpr std::size_t gguf_max_dims = 4;              ///< GGML_MAX_DIMS
inline constexpr std::uint32_t gguf_default_alignment = 32;  ///< GGUF_DEFAULT_ALIGNMENT
inline constexpr std::string_view gguf_key_alignment = "general.alignment";

/// One tensor of a GGUF file, as its tensor info describes it, checked against the file.
struct GgufTensorInfo {
  std::string name;
  /// ne[0] first: the contiguous dimension (a PyTorch `[out, in]` weight is stored as `{in, out}`).
  /// 1 to 4 entries as stored (a file's 0-dimensional tensor, which ggml reads as one element, is
  /// given as {1}).
  std::vector<std::uint64_t> ne;
  GgmlType type = GgmlType::F32;
  /// Where the data starts, relative to the data section (`GgufHeader::data_offset()`).
  std::uint64_t offset = 0;
  /// rows() * row_bytes(): the bytes of data, without the padding that follows.
  std::uint64_t byte_size = 0;

  /// Bytes of one row of ne[0] elements (ne[0] / block size * type size).
  std::uint64_t row_bytes() const {
    const GgmlTypeTraits& t = ggml_traits(type);
    return (ne.empty() ? 1 : ne[0]) / t.block_size * t.type_size;
  }
  /// Product of ne[1..] (1 for a 1-D tensor).
  std::uint64_t rows() const {
    std::uint64_t r = 1;
    for (std::size_t i = 1; i < ne.size(); ++i) r *= ne[i];
    return r;
  }
  /// Product of every ne.
  std::uint64_t element_count() const { return (ne.empty() ? 1 : ne[0]) * rows(); }
};

/// How strict `parse_gguf` is where readers differ.
struct ParseGgufOptions {
  /// ggml's full read (`gguf_init_from_file` with data) reads the padded size of every tensor, the
  /// last one's padding included, and every writer (ggml, gguf-py, gguf-split, ours) writes it; so
  /// by default a file whose last padding is cut short is reported as truncated. llama.cpp's mmap
  /// loader only needs each tensor's own bytes: set this to accept such files too.
  bool allow_missing_final_padding = false;
  /// Counts above these are refused before anything is allocated for them. Each KV or tensor info
  /// costs far more memory parsed than its few bytes in the file, so without a limit a crafted file
  /// of tiny records could make the parser allocate many times its size. Real models have ~50 KVs
  /// (a tokenizer's vocabulary is one array KV) and at most tens of thousands of tensors.
  std::uint64_t max_kv_count = std::uint64_t{1} << 20;
  std::uint64_t max_tensor_count = std::uint64_t{1} << 22;
};

/// The parsed and fully checked header of one GGUF file (v2 or v3):
///
///     "GGUF" | u32 version | i64 n_tensors | i64 n_kv | n_kv × (key, u32 type, value)
///     | n_tensors × (name, u32 n_dims, i64 ne[n_dims], u32 ggml type, u64 offset)
///     | zero padding to the alignment | data (each tensor padded to the alignment)
///
/// A `GgufHeader` owns no tensor data: pair it with the bytes it was parsed from, or use
/// `GgufReader`, which keeps both.
class GgufHeader {
 public:
  /// The path (or label) given to `parse_gguf`; every message starts with it.
  const std::string& path() const noexcept { return path_; }
  std::uint32_t version() const noexcept { return version_; }
  /// `general.alignment` if the file has it, else 32.
  std::uint64_t alignment() const noexcept { return alignment_; }
  /// Bytes of the header proper: magic, counts, KVs and tensor infos, before the padding.
  std::uint64_t header_size() const noexcept { return header_size_; }
  /// File offset of the data section: header_size() rounded up to the alignment (ggml leaves it
  /// unrounded in a file with no tensor).
  std::uint64_t data_offset() const noexcept { return data_offset_; }
  /// Sum of the tensors' sizes, each padded to the alignment: the end of the data section (past the
  /// end of the file by the last padding if that was allowed to be missing).
  std::uint64_t data_size() const noexcept { return data_size_; }
  /// Size of the file the header was checked against.
  std::uint64_t file_size() const noexcept { return file_size_; }

  /// Every KV, in file order, with its type and exact bytes.
  const std::vector<GgufKv>& kvs() const noexcept { return kvs_; }
  /// Every tensor, in file (info) order, which is also data order.
  const std::vector<GgufTensorInfo>& tensors() const noexcept { return tensors_; }

  /// The value of `key`, or null.
  const GgufValue* find(std::string_view key) const noexcept {
    const std::size_t i = detail::find_sorted(
        kv_order_, key, [this](std::size_t k) -> std::string_view { return kvs_[k].key; });
    return i == npos ? nullptr : &kvs_[i].value;
  }
  /// The tensor called `name`, or null.
  const GgufTensorInfo* find_tensor(std::string_view name) const noexcept {
    const std::size_t i = detail::find_sorted(
        tensor_order_, name, [this](std::size_t k) -> std::string_view { return tensors_[k].name; });
    return i == npos ? nullptr : &tensors_[i];
  }
  /// The tensor called `name`.
  /// @throws missing_tensor_error naming the file and listing similar names it does hold.
  const GgufTensorInfo& tensor(std::string_view name) const {
    if (const GgufTensorInfo* t = find_tensor(name)) return *t;
    std::vector<std::string_view> names;
    names.reserve(tensors_.size());
    for (const auto& t : tensors_) names.push_back(t.name);
    throw missing_tensor_error(
        mhaprune::detail::message(path_, ": no tensor ", detail::quoted(name), " (the file has ",
                                  tensors_.size(), " tensor", tensors_.size() == 1 ? "" : "s",
                                  names.empty() ? "" : ", e.g. ", detail::similar_names(names, name), ")"));
  }

  /// The bytes of `info` inside `file`, the bytes this header was parsed from; no copy.
  /// @throws io_error if `file` does not have the size the header was checked against, or `info`
  ///         does not lie inside it (an info of another file).
  ByteSpan bytes(const GgufTensorInfo& info, ByteSpan file) const {
    if (file.size() != file_size_) {
      throw io_error(mhaprune::detail::message(path_, ": header checked against ", file_size_,
                                               " bytes used with a buffer of ", file.size()));
    }
    if (info.offset > file_size_ - data_offset_ || info.byte_size > file_size_ - data_offset_ - info.offset) {
      throw io_error(mhaprune::detail::message(path_, ": tensor ", detail::quoted(info.name), " (offset ",
                                               info.offset, ", ", info.byte_size,
                                               " bytes) does not lie inside this file"));
    }
    return file.subspan(static_cast<std::size_t>(data_offset_ + info.offset),
                        static_cast<std::size_t>(info.byte_size));
  }

 private:
  friend GgufHeader parse_gguf(ByteSpan, const std::string&, const ParseGgufOptions&);

  std::string path_;
  std::uint32_t version_ = 3;
  std::uint64_t alignment_ = gguf_default_alignment;
  std::uint64_t header_size_ = 0;
  std::uint64_t data_offset_ = 0;
  std::uint64_t data_size_ = 0;
  std::uint64_t file_size_ = 0;
  std::vector<GgufKv> kvs_;
  std::vector<GgufTensorInfo> tensors_;
  // Indices into kvs_ / tensors_ sorted by key / name: lookups that never allocate.
  std::vector<std::size_t> kv_order_;
  std::vector<std::size_t> tensor_order_;
  static constexpr std::size_t npos = static_cast<std::size_t>(-1);
};

namespace detail {

/// Reads a GGUF file front to back; every read is bounds-checked and names what it was reading.
class GgufCursor {
 public:
  GgufCursor(ByteSpan file, const std::string& path) : file_(file), path_(path) {}

  std::uint64_t position() const noexcept { return at_; }
  std::uint64_t remaining() const noexcept { return file_.size() - at_; }
  const std::byte* here() const noexcept { return file_.data() + at_; }
  void skip(std::size_t n) noexcept { at_ += n; }

  template <typename... Parts>
  corrupt_file_error fail(Parts&&... parts) const {
    return corrupt_file_error(mhaprune::detail::message(path_, ": ", std::forward<Parts>(parts)...));
  }

  /// Throws unless `n` more bytes exist; `what` says what they hold.
  template <typename... What>
  void need(std::uint64_t n, What&&... what) const {
    if (n > remaining()) {
      throw fail(std::forward<What>(what)..., " (", n, " byte", n == 1 ? "" : "s", " at offset ", at_,
                 ") runs past the end of the file (", file_.size(), " bytes): truncated");
    }
  }

  template <typename... What>
  std::uint64_t u64(What&&... what) {
    need(8, std::forward<What>(what)...);
    const std::uint64_t v = load_le(here(), 8);
    at_ += 8;
    return v;
  }
  template <typename... What>
  std::uint32_t u32(What&&... what) {
    need(4, std::forward<What>(what)...);
    const auto v = static_cast<std::uint32_t>(load_le(here(), 4));
    at_ += 4;
    return v;
  }
  /// A GGUF string (u64 length + bytes), its length checked against the rest of the file.
  template <typename... What>
  std::string string(What&&... what) {
    const std::uint64_t len = u64("length of ", what...);
    if (len > remaining()) {
      throw fail(what..., " is ", len, " bytes long, past the end of the file: only ", remaining(),
                 " bytes follow its length at offset ", at_ - 8, " (truncated or corrupt)");
    }
    std::string s(reinterpret_cast<const char*>(here()), static_cast<std::size_t>(len));
    at_ += len;
    return s;
  }

 private:
  ByteSpan file_;
  const std::string& path_;
  std::uint64_t at_ = 0;
};

/// a * b into `out`; false (out unchanged) if it overflows 64 bits.
inline bool gguf_checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return false;
  out = a * b;
  return true;
}

/// `v` rounded up to a multiple of the power of two `align`; false on overflow.
inline bool pad_to(std::uint64_t v, std::uint64_t align, std::uint64_t& out) noexcept {
  if (v > std::numeric_limits<std::uint64_t>::max() - (align - 1)) return false;
  out = (v + align - 1) & ~(align - 1);
  return true;
}

inline std::string ne_string(const std::vector<std::uint64_t>& ne) {
  std::string out = "{";
  for (std::size_t i = 0; i < ne.size(); ++i) out += (i ? ", " : "") + std::to_string(ne[i]);
  return out + "}";
}

inline std::string known_ggml_types() {
  std::string out;
  for (const auto& t : ggml_type_table) {
    if (!out.empty()) out += ", ";
    out += mhaprune::detail::message(static_cast<std::uint32_t>(t.type), ' ', t.name);
  }
  return out;
}

}  // namespace detail

/// Parses and fully checks a whole GGUF file held in memory (the data section is needed to check
/// every tensor's bytes lie inside it). This is the one parser: `GgufReader` runs it over its
/// memory map, and the fuzz target over raw bytes. The checks follow ggml's `gguf_init_from_file`
/// (src/gguf.cpp) and are at least as strict; the first that fails throws, naming the file, the
/// key or tensor, and the check:
///  - the magic "GGUF"; version 2 or 3 (0 or a version whose low 16 bits are 0 is reported as a
///    file of the other endianness; 1 is the old, unsupported v1 layout);
///  - n_tensors and n_kv are non-negative, within `options.max_tensor_count` / `max_kv_count` and
///    fit in the rest of the file (each KV takes at least 13 bytes, each tensor info 24), so a count
///    of 2^62 fails before anything is allocated;
///  - keys: non-empty, unique, their lengths inside the file; values: type 0-12, arrays of scalars
///    or strings (no nested arrays), every length and count inside the file;
///  - `general.alignment`, if present, is a UINT32 power of two;
///  - tensor names are under 64 bytes (GGML_MAX_NAME) and unique; at most 4 dims, each ne in
///    [0, 2^63), the element count below 2^63 and the byte size below 2^64; the type id is one ggml
///    defines; ne[0] is a whole number of blocks of that type;
///  - the data section starts at the header rounded up to the alignment; each tensor's offset is
///    exactly the sum of the padded sizes of the tensors before it (ggml's rule: in info order, no
///    gap, no overlap, so also a multiple of the alignment), and the data (with its padding, unless
///    `options.allow_missing_final_padding`) ends inside the file. Bytes after the data are ignored.
///
/// @param path the file's path (or any label) for messages.
/// @throws corrupt_file_error "<path>: key \"k\": ...", "<path>: tensor \"t\": ...", ...
/// @throws unsupported_dtype_error "<path>: tensor \"t\": unknown ggml type id N ..." for a type id
///         ggml does not define (today: 4, 5, 31-33, 36-38 were removed; 43 and up do not exist).
inline GgufHeader parse_gguf(ByteSpan file, const std::string& path, const ParseGgufOptions& options = {}) {
  using mhaprune::detail::message;
  GgufHeader h;
  h.path_ = path;
  h.file_size_ = file.size();
  detail::GgufCursor in(file, h.path_);

  // --- magic and version
  if (file.size() < 4) {
    throw in.fail("file is ", file.size(), " byte", file.size() == 1 ? "" : "s",
                  " long, too short for the 4-byte magic \"GGUF\" that starts a GGUF file");
  }
  if (std::memcmp(file.data(), "GGUF", 4) != 0) {
    std::string shown;
    for (int i = 0; i < 4; ++i) {
      const auto c = std::to_integer<unsigned char>(file.data()[i]);
      shown += c >= 0x20 && c < 0x7F ? static_cast<char>(c) : '?';
    }
    throw in.fail("bad magic \"", shown, "\": a GGUF file starts with \"GGUF\" (not a GGUF file)");
  }
  in.skip(4);
  h.version_ = in.u32("version");
  if (h.version_ == 0 || (h.version_ & 0xFFFFu) == 0) {
    throw in.fail("version ", h.version_,
                  " is not a GGUF version: the file was probably written on a machine of the other byte "
                  "order (only little-endian GGUF is read)");
  }
  if (h.version_ == 1) throw in.fail("version 1 (GGUFv1) is no longer supported; only versions 2 and 3 are");
  if (h.version_ > 3) throw in.fail("version ", h.version_, " is newer than this reader (versions 2 and 3)");

  const std::uint64_t n_tensors = in.u64("tensor count");
  const std::uint64_t n_kv = in.u64("KV count");
  if (n_tensors > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    throw in.fail("tensor count ", static_cast<std::int64_t>(n_tensors), " is negative");
  if (n_kv > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    throw in.fail("KV count ", static_cast<std::int64_t>(n_kv), " is negative");
  // Smallest records: a KV of a 1-byte key and a UINT8 value (8 + 1 + 4 + 1); a tensor info of an
  // empty name and no dims (8 + 4 + 4 + 8).
  constexpr std::uint64_t min_kv = 13, min_info = 24;
  if (n_kv > in.remaining() / min_kv) {
    throw in.fail("KV count ", n_kv, " cannot fit in the ", in.remaining(),
                  " bytes left in the file (each KV takes at least ", min_kv, "): corrupt or truncated");
  }
  if (n_tensors > (in.remaining() - n_kv * min_kv) / min_info) {
    throw in.fail("tensor count ", n_tensors, " cannot fit in the ", in.remaining(),
                  " bytes left in the file after ", n_kv, " KVs (each tensor info takes at least ", min_info,
                  "): corrupt or truncated");
  }
  if (n_kv > options.max_kv_count) {
    throw in.fail("KV count ", n_kv, " exceeds the limit of ", options.max_kv_count,
                  " (ParseGgufOptions::max_kv_count): corrupt, or raise the limit");
  }
  if (n_tensors > options.max_tensor_count) {
    throw in.fail("tensor count ", n_tensors, " exceeds the limit of ", options.max_tensor_count,
                  " (ParseGgufOptions::max_tensor_count): corrupt, or raise the limit");
  }

  // --- KVs
  h.kvs_.reserve(static_cast<std::size_t>(n_kv));
  std::unordered_map<std::string, std::size_t> kv_seen;  // for duplicates, named with both indices
  kv_seen.reserve(static_cast<std::size_t>(n_kv));
  for (std::uint64_t i = 0; i < n_kv; ++i) {
    std::string key = in.string("key of KV ", i);
    if (key.empty()) throw in.fail("key of KV ", i, " is empty");
    const auto [it, inserted] = kv_seen.emplace(key, h.kvs_.size());
    if (!inserted) {
      throw in.fail("key ", detail::quoted(key), " appears twice (KVs ", it->second, " and ", i,
                    "): duplicate key");
    }
    const std::uint32_t type = in.u32("key ", detail::quoted(key), ": value type");
    std::size_t consumed = 0;
    const std::string context = message(h.path_, ": key ", detail::quoted(key));
    GgufValue value = GgufValue::decode(type, ByteSpan(in.here(), static_cast<std::size_t>(in.remaining())),
                                        consumed, context);
    in.skip(consumed);
    h.kvs_.push_back(GgufKv{std::move(key), std::move(value)});
  }

  if (const auto found = kv_seen.find(std::string(gguf_key_alignment)); found != kv_seen.end()) {
    const GgufValue* a = &h.kvs_[found->second].value;
    if (a->type() != GgufType::UINT32) {
      throw in.fail("key \"general.alignment\" has type ",
                    a->is_array() ? "ARRAY of " + to_string(a->element_type()) : to_string(a->type()),
                    "; it must be UINT32");
    }
    const auto align = static_cast<std::uint64_t>(*a->as_int());
    if (align == 0 || (align & (align - 1)) != 0) {
      throw in.fail("key \"general.alignment\" is ", align, ", not a power of two");
    }
    h.alignment_ = align;
  }

  // --- tensor infos
  h.tensors_.reserve(static_cast<std::size_t>(n_tensors));
  std::unordered_map<std::string, std::size_t> tensor_seen;
  tensor_seen.reserve(static_cast<std::size_t>(n_tensors));
  for (std::uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensorInfo t;
    t.name = in.string("name of tensor info ", i);
    const detail::QuotedName q{t.name};
    if (t.name.size() > gguf_max_name_bytes) {
      throw in.fail("tensor ", q, ": name is ", t.name.size(), " bytes long; ggml allows at most ",
                    gguf_max_name_bytes, " (GGML_MAX_NAME 64 with the NUL)");
    }
    const auto [it, inserted] = tensor_seen.emplace(t.name, h.tensors_.size());
    if (!inserted) {
      throw in.fail("tensor ", q, " appears twice (tensor infos ", it->second, " and ", i,
                    "): duplicate tensor name");
    }
    const std::uint32_t n_dims = in.u32("tensor ", q, ": dimension count");
    if (n_dims > gguf_max_dims) {
      throw in.fail("tensor ", q, ": has ", n_dims, " dimensions; ggml allows at most ", gguf_max_dims);
    }
    std::uint64_t elements = 1;
    bool overflow = false;
    for (std::uint32_t d = 0; d < n_dims; ++d) {
      const std::uint64_t ne = in.u64("tensor ", q, ": ne[", d, "]");
      if (ne > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
        throw in.fail("tensor ", q, ": ne[", d, "] = ", static_cast<std::int64_t>(ne), " is negative");
      t.ne.push_back(ne);
      overflow = overflow || !detail::gguf_checked_mul(elements, ne, elements);
    }
    if (t.ne.empty()) t.ne.push_back(1);  // ggml reads 0 dims as one element
    if (overflow || elements >= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      throw in.fail("tensor ", q, ": shape ", detail::ne_string(t.ne),
                    " has an element count that overflows 63 bits (element count overflow)");
    }
    const std::uint32_t type_id = in.u32("tensor ", q, ": ggml type");
    const GgmlTypeTraits* traits = find_ggml_type(type_id);
    if (traits == nullptr) {
      throw unsupported_dtype_error(message(h.path_, ": tensor ", q, ": unknown ggml type id ", type_id,
                                            " (ggml types known here: ", detail::known_ggml_types(), ")"));
    }
    t.type = traits->type;
    if (t.ne[0] % traits->block_size != 0) {
      throw in.fail("tensor ", q, ": ne[0] = ", t.ne[0], " is not a multiple of the block size ",
                    traits->block_size, " of type ", traits->name, " (rows must be whole blocks)");
    }
    if (!detail::gguf_checked_mul(elements / traits->block_size, traits->type_size, t.byte_size)) {
      throw in.fail("tensor ", q, ": shape ", detail::ne_string(t.ne), " of ", traits->name,
                    " has a byte size that overflows 64 bits");
    }
    t.offset = in.u64("tensor ", q, ": data offset");
    h.tensors_.push_back(std::move(t));
  }
  h.header_size_ = in.position();

  // --- data section
  const std::uint64_t align = h.alignment_;
  h.data_offset_ = h.header_size_;
  if (n_tensors > 0) {
    detail::pad_to(h.header_size_, align, h.data_offset_);  // header_size <= file size < 2^63: no overflow
    if (h.data_offset_ > file.size()) {
      throw in.fail("data section would start at offset ", h.data_offset_, " (header of ", h.header_size_,
                    " bytes padded to the alignment ", align, "), past the end of the file (", file.size(),
                    " bytes): truncated");
    }
  }
  const std::uint64_t data_room = file.size() - h.data_offset_;
  std::uint64_t expected = 0;
  const GgufTensorInfo* previous = nullptr;
  for (const GgufTensorInfo& t : h.tensors_) {
    const detail::QuotedName q{t.name};
    if (t.offset != expected) {
      if (t.offset % align != 0) {
        throw in.fail("tensor ", q, ": data offset ", t.offset,
                      " is misaligned: not a multiple of the alignment ", align, " (ggml expects ", expected,
                      ", the padded end of the tensors before it)");
      }
      if (t.offset > expected) {
        throw in.fail("tensor ", q, ": data offset ", t.offset, " leaves a gap of ", t.offset - expected,
                      " bytes after ",
                      previous ? "tensor " + detail::quoted(previous->name) : "the data start",
                      " (ggml expects ", expected, ": tensors packed in info order)");
      }
      throw in.fail("tensor ", q, ": data offset ", t.offset, " overlaps ",
                    previous ? "tensor " + detail::quoted(previous->name) : "the data", ", which ends at ",
                    expected, " with its padding (ggml expects ", expected,
                    ": tensors packed in info order)");
    }
    // byte_size <= data_room < 2^63 whenever it matters, so the padded size cannot overflow.
    const bool bytes_fit = t.offset <= data_room && t.byte_size <= data_room - t.offset;
    std::uint64_t padded = 0;
    const bool padded_fit =
        bytes_fit && detail::pad_to(t.byte_size, align, padded) && padded <= data_room - t.offset;
    if (!padded_fit && !(bytes_fit && options.allow_missing_final_padding && &t == &h.tensors_.back())) {
      throw in.fail("tensor ", q, ": data (", t.byte_size, " bytes",
                    bytes_fit ? message(", ", padded, " with its padding") : std::string(), ") at offset ",
                    t.offset, " of the data section (file offset ", h.data_offset_, " + ", t.offset,
                    ") runs past the end of the file (", file.size(), " bytes): truncated");
    }
    expected = t.offset + padded;
    previous = &t;
  }
  h.data_size_ = expected;
  h.kv_order_ =
      detail::sorted_order(h.kvs_.size(), [&h](std::size_t i) -> std::string_view { return h.kvs_[i].key; });
  h.tensor_order_ = detail::sorted_order(
      h.tensors_.size(), [&h](std::size_t i) -> std::string_view { return h.tensors_[i].name; });
  return h;
}

/// A GGUF file memory-mapped read-only and checked whole (`parse_gguf`) when opened. Tensor data is
/// never copied: `bytes(info)` points into the map. The file descriptor stays open too (`fd()`) so
/// that a writer can copy ranges with `copy_file_range`; both are released by the destructor.
/// Move-only.
class GgufReader {
 public:
  /// Opens, maps and checks `path`.
  /// @throws io_error if it cannot be opened or mapped (message with the system's reason);
  ///         corrupt_file_error / unsupported_dtype_error as `parse_gguf`.
  explicit GgufReader(std::string path, const ParseGgufOptions& options = {}) : path_(std::move(path)) {
    do {
      fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    } while (fd_ < 0 && errno == EINTR);
    if (fd_ < 0) throw detail::system_failure(path_, "open for reading");
    try {
      map_ = MappedFile(path_);
      struct stat st;
      if (::fstat(fd_, &st) != 0) throw detail::system_failure(path_, "stat");
      if (static_cast<std::uint64_t>(st.st_size) != map_.size()) {
        throw io_error(mhaprune::detail::message(path_, ": file changed size while being opened (",
                                                 map_.size(), " then ", st.st_size, " bytes)"));
      }
      header_ = parse_gguf(map_.bytes(), path_, options);
    } catch (...) {
      ::close(fd_);
      throw;
    }
  }
  ~GgufReader() {
    if (fd_ >= 0) ::close(fd_);
  }
  GgufReader(const GgufReader&) = delete;
  GgufReader& operator=(const GgufReader&) = delete;
  GgufReader(GgufReader&& other) noexcept
      : path_(std::move(other.path_)),
        fd_(std::exchange(other.fd_, -1)),
        map_(std::move(other.map_)),
        header_(std::move(other.header_)) {}
  GgufReader& operator=(GgufReader&& other) noexcept {
    if (this != &other) {
      if (fd_ >= 0) ::close(fd_);
      path_ = std::move(other.path_);
      fd_ = std::exchange(other.fd_, -1);
      map_ = std::move(other.map_);
      header_ = std::move(other.header_);
    }
    return *this;
  }

  const std::string& path() const noexcept { return path_; }
  const GgufHeader& header() const noexcept { return header_; }
  const std::vector<GgufKv>& kvs() const noexcept { return header_.kvs(); }
  const std::vector<GgufTensorInfo>& tensors() const noexcept { return header_.tensors(); }
  const GgufValue* find(std::string_view key) const noexcept { return header_.find(key); }
  const GgufTensorInfo* find_tensor(std::string_view name) const noexcept {
    return header_.find_tensor(name);
  }
  /// @throws missing_tensor_error naming the file and similar tensor names.
  const GgufTensorInfo& tensor(std::string_view name) const { return header_.tensor(name); }

  /// The tensor's data (byte_size bytes, no padding) inside the map; no copy. Valid while this
  /// reader lives (moves keep it valid).
  /// @throws io_error if `info` does not lie inside this file (an info of another file).
  ByteSpan bytes(const GgufTensorInfo& info) const { return header_.bytes(info, map_.bytes()); }
  /// Drops the tensor's pages from this process's resident set (madvise; see MappedFile::release).
  void release(const GgufTensorInfo& info) const noexcept {
    if (info.offset > map_.size() - header_.data_offset() ||
        info.byte_size > map_.size() - header_.data_offset() - info.offset) {
      return;
    }
    map_.release(map_.bytes().subspan(static_cast<std::size_t>(header_.data_offset() + info.offset),
                                      static_cast<std::size_t>(info.byte_size)));
  }
  ByteSpan file_bytes() const noexcept { return map_.bytes(); }
  /// The mapped file (its open descriptor lets a writer copy a tensor by range, see
  /// `ByteSink::append_mapped`).
  const MappedFile& mapped_file() const noexcept { return map_; }
  /// The open read-only descriptor of the file (for copy_file_range); -1 after a move.
  int fd() const noexcept { return fd_; }

 private:
  std::string path_;
  int fd_ = -1;
  MappedFile map_;
  GgufHeader header_;
};

}  // namespace mhaprune::io
