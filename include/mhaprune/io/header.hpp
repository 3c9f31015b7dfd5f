// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <numeric>
#include <string>
#include <string_view>
#include <tuple>
#include <utility>
#include <vector>

#include "mhaprune/error.hpp"
#include "mhaprune/io/byte_span.hpp"
#include "mhaprune/io/detail/text.hpp"
#include "mhaprune/io/dtype.hpp"

namespace mhaprune::io {

/// A tensor's shape as the file stores it, outermost dimension first (row-major, "C" order).
using Shape = std::vector<std::uint64_t>;

/// One tensor of a safetensors file, as its header describes it. Everything here has been checked
/// against the file: the byte range lies inside the data section and holds exactly
/// `elements × bits / 8` bytes.
struct TensorInfo {
  std::string name;
  Dtype dtype = Dtype::F32;
  Shape shape;
  /// `data_offsets` of the header: the tensor's bytes are [begin, end) of the data section, which
  /// starts `Header::data_offset()` bytes into the file.
  std::uint64_t begin = 0;
  std::uint64_t end = 0;

  std::uint64_t byte_size() const noexcept { return end - begin; }
  /// Product of the shape (1 for a scalar, whose shape is empty).
  std::uint64_t element_count() const noexcept {
    return std::accumulate(shape.begin(), shape.end(), std::uint64_t{1}, std::multiplies<>());
  }
  std::size_t rank() const noexcept { return shape.size(); }
};

/// How strict the parser is where the format leaves room.
struct ParseOptions {
  /// The reference reader (Hugging Face's `safetensors`) requires the tensors' byte ranges to be
  /// contiguous, to start at 0 and to end exactly at the end of the file, and so does this parser
  /// by default: a file it accepts is one every other reader accepts. Set this to accept files whose
  /// tensors leave unused bytes between or after them (padding by some other writer). Overlapping
  /// ranges are always an error.
  bool allow_gaps = false;
  /// A header longer than this is refused before anything is allocated for it. 100 MB is the
  /// reference reader's limit; real headers are well under 10 MB.
  std::uint64_t max_header_bytes = 100'000'000;
};

/// The parsed and fully checked header of one safetensors file:
///
///     [8 bytes: N, little-endian u64][N bytes: UTF-8 JSON object][data section]
///
/// The JSON maps each tensor name to `{"dtype": "F32", "shape": [r, c], "data_offsets": [b, e]}`,
/// plus an optional `"__metadata__"` object of string values. A `Header` owns no tensor data: pair
/// it with the bytes it was parsed from (`bytes()`), or use `SafetensorsReader`, which keeps both.
class Header {
 public:
  /// The file name (or any label) given to `parse_header`; every message starts with it.
  const std::string& source() const noexcept { return source_; }
  /// N: the length of the JSON header, padding included.
  std::uint64_t header_length() const noexcept { return data_offset_ - 8; }
  /// Where the data section starts in the file: 8 + N.
  std::uint64_t data_offset() const noexcept { return data_offset_; }
  std::uint64_t data_size() const noexcept { return data_size_; }
  /// Total file size the header was checked against: `data_offset() + data_size()`.
  std::uint64_t file_size() const noexcept { return data_offset_ + data_size_; }

  /// Every tensor, sorted by name.
  const std::vector<TensorInfo>& tensors() const noexcept { return tensors_; }
  /// The `__metadata__` entries (empty if the file has none).
  const std::map<std::string, std::string>& metadata() const noexcept { return metadata_; }

  /// The tensor called `name`, or null.
  const TensorInfo* find(std::string_view name) const noexcept {
    auto it = std::lower_bound(tensors_.begin(), tensors_.end(), name,
                               [](const TensorInfo& t, std::string_view n) { return t.name < n; });
    return it != tensors_.end() && it->name == name ? &*it : nullptr;
  }
  bool contains(std::string_view name) const noexcept { return find(name) != nullptr; }

  /// The tensor called `name`.
  /// @throws missing_tensor_error naming the file and listing similar names it does hold.
  const TensorInfo& at(std::string_view name) const {
    if (const TensorInfo* t = find(name)) return *t;
    std::vector<std::string_view> names;
    names.reserve(tensors_.size());
    for (const auto& t : tensors_) names.push_back(t.name);
    throw missing_tensor_error(
        mhaprune::detail::message(source_, ": no tensor ", detail::quoted(name), " (the file has ",
                                  tensors_.size(), " tensor", tensors_.size() == 1 ? "" : "s",
                                  names.empty() ? "" : ", e.g. ", detail::similar_names(names, name), ")"));
  }

  /// The bytes of `tensor` inside `file`, the bytes this header was parsed from; no copy.
  /// @throws io_error if `file` does not have the size the header was checked against.
  ByteSpan bytes(const TensorInfo& tensor, ByteSpan file) const {
    if (file.size() != file_size()) {
      throw io_error(mhaprune::detail::message(source_, ": header checked against ", file_size(),
                                               " bytes used with a buffer of ", file.size()));
    }
    return file.subspan(static_cast<std::size_t>(data_offset_ + tensor.begin),
                        static_cast<std::size_t>(tensor.byte_size()));
  }

 private:
  friend Header parse_header(ByteSpan, std::string, const ParseOptions&);

  std::string source_;
  std::uint64_t data_offset_ = 8;
  std::uint64_t data_size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
};

namespace detail {

inline std::uint64_t read_u64_le(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}

inline bool checked_mul(std::uint64_t a, std::uint64_t b, std::uint64_t& out) noexcept {
  if (a != 0 && b > UINT64_MAX / a) return false;
  out = a * b;
  return true;
}

inline std::string known_dtype_list() {
  std::string out;
  for (const auto& t : dtype_table) {
    if (!out.empty()) out += ", ";
    out += t.name;
  }
  return out;
}

/// What a JSON value is, for "expected X, got Y" messages.
inline std::string describe_json(const nlohmann::json& v) {
  std::string text = v.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  if (text.size() > 40) text = text.substr(0, 40) + "...";
  return mhaprune::detail::message(v.type_name(), ' ', text);
}

/// Nesting deeper than this is refused: a valid header nests three levels.
inline constexpr int max_header_depth = 64;

/// Builds a nlohmann::json document from SAX events, refusing what nlohmann::json::parse would
/// accept silently: a key twice in one object (the last would win, hiding a tensor) and absurd
/// nesting. (The parser-callback route would do the same checks in quadratic time: nlohmann 3.11
/// rescans an object's members after each nested object, 17 s for a 20,000-tensor header.)
class StrictJsonBuilder final : public nlohmann::json_sax<nlohmann::json> {
 public:
  using json = nlohmann::json;
  StrictJsonBuilder(json& root, const std::string& source, const char* what)
      : root_(root), source_(source), what_(what) {}

  bool null() override { return put(nullptr); }
  bool boolean(bool v) override { return put(v); }
  bool number_integer(number_integer_t v) override { return put(v); }
  bool number_unsigned(number_unsigned_t v) override { return put(v); }
  bool number_float(number_float_t v, const string_t&) override { return put(v); }
  bool string(string_t& v) override { return put(std::move(v)); }
  bool binary(binary_t& v) override { return put(json::binary(std::move(v))); }
  bool start_object(std::size_t) override { return open(json::object()); }
  bool start_array(std::size_t) override { return open(json::array()); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    json& object = *stack_.back();
    if (object.contains(k)) {
      throw corrupt_file_error(
          mhaprune::detail::message(source_, ": ", what_, " has the key ", quoted(k), " twice",
                                    stack_.size() == 1 ? " in its top-level object" : ""));
    }
    slot_ = &object[std::move(k)];
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const json::exception& e) override {
    throw corrupt_file_error(
        mhaprune::detail::message(source_, ": ", what_, " is not valid JSON: ", e.what()));
  }

 private:
  template <typename V>
  json* place(V&& value) {
    if (stack_.empty()) {
      root_ = json(std::forward<V>(value));
      return &root_;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(json(std::forward<V>(value)));
      return &parent.back();
    }
    *slot_ = json(std::forward<V>(value));
    return slot_;
  }
  template <typename V>
  bool put(V&& value) {
    place(std::forward<V>(value));
    return true;
  }
  bool open(json&& container) {
    if (stack_.size() >= static_cast<std::size_t>(max_header_depth)) {
      throw corrupt_file_error(mhaprune::detail::message(source_, ": ", what_, " JSON nests deeper than ",
                                                         max_header_depth, " levels"));
    }
    // Only the innermost open container ever grows, so the pointers to its ancestors stay valid.
    stack_.push_back(place(std::move(container)));
    return true;
  }
  bool close() {
    stack_.pop_back();
    return true;
  }

  json& root_;
  const std::string& source_;
  const char* what_;
  std::vector<json*> stack_;
  json* slot_ = nullptr;
};

/// Parses JSON text that a file claims is `what` ("header", "index") with StrictJsonBuilder.
/// @throws corrupt_file_error "<source>: <what> is not valid JSON: ...", "... has the key ... twice",
///         "... nests deeper than 64 levels".
inline nlohmann::json parse_strict_json(std::string_view text, const std::string& source, const char* what) {
  nlohmann::json root;
  StrictJsonBuilder builder(root, source, what);
  nlohmann::json::sax_parse(text.begin(), text.end(), &builder);
  return root;
}

}  // namespace detail

/// Parses and checks the header of a whole safetensors file held in memory (`file_bytes` is the
/// complete file: the data section is needed to check every tensor's byte range). This is the one
/// parser: `SafetensorsReader` runs it over its memory map, and the fuzz target over raw bytes.
///
/// Every check, in order; the first that fails throws, naming the file (`source_name`), the check
/// and, when there is one, the tensor:
///  - the file holds the 8-byte length N, N does not run past the end of the file and is at most
///    `options.max_header_bytes` (so a length of 2^63 is a clean error, never an allocation);
///  - the header starts with `{`, is valid UTF-8 and valid JSON, with no key twice in one object
///    (two tensors with one name) and no nesting past 64 levels;
///  - `__metadata__`, if present, is an object of strings;
///  - every other entry is an object with `dtype` (a known dtype name), `shape` (an array of
///    non-negative integers whose product does not overflow) and `data_offsets` (two non-negative
///    integers, begin ≤ end ≤ size of the data section), and `end - begin` is exactly
///    `elements × bits / 8` (whole bytes for the sub-byte dtypes); other fields are ignored;
///  - sorted by offset, the byte ranges do not overlap, and (unless `options.allow_gaps`) they
///    start at 0, leave no gap and end exactly at the end of the file.
///
/// @throws corrupt_file_error for any broken check above.
/// @throws unsupported_dtype_error for a dtype name this version does not know (e.g. "Q4").
inline Header parse_header(ByteSpan file_bytes, std::string source_name, const ParseOptions& options = {}) {
  using mhaprune::detail::message;
  using nlohmann::json;
  Header h;
  h.source_ = std::move(source_name);
  const std::string& src = h.source_;
  const auto fail = [&src](auto&&... parts) {
    return corrupt_file_error(message(src, ": ", std::forward<decltype(parts)>(parts)...));
  };

  const std::uint64_t file_size = file_bytes.size();
  if (file_size < 8) {
    throw fail("file is ", file_size, " byte", file_size == 1 ? "" : "s",
               " long, too short for the 8-byte header length that starts a safetensors file");
  }
  const std::uint64_t n = detail::read_u64_le(file_bytes.data());
  if (n > file_size - 8) {
    throw fail("header length ", n, " runs past the end of the file: only ", file_size - 8,
               " bytes follow the 8-byte length (file truncated, or not a safetensors file)");
  }
  if (n > options.max_header_bytes) {
    throw fail("header length ", n, " exceeds the limit of ", options.max_header_bytes, " bytes");
  }
  h.data_offset_ = 8 + n;
  h.data_size_ = file_size - h.data_offset_;

  const std::string_view text(reinterpret_cast<const char*>(file_bytes.data()) + 8,
                              static_cast<std::size_t>(n));
  if (text.empty()) throw fail("header is empty (length 0); it must be a JSON object");
  if (text.front() != '{') {
    const auto c = static_cast<unsigned char>(text.front());
    throw fail("header is not a JSON object: it starts with ",
               c >= 0x20 && c < 0x7F ? message('\'', text.front(), '\'') : message("byte ", unsigned{c}),
               " instead of '{'");
  }
  if (const std::size_t bad = detail::utf8_error_offset(text); bad != text.size()) {
    throw fail("header is not valid UTF-8: byte ", unsigned{static_cast<unsigned char>(text[bad])},
               " at header offset ", bad, " does not start a valid sequence");
  }

  json root = detail::parse_strict_json(text, src, "header");
  if (!root.is_object()) throw fail("header is not a JSON object");

  h.tensors_.reserve(root.size());
  for (auto& [key, entry] : root.items()) {
    if (key == "__metadata__") {
      if (!entry.is_object())
        throw fail("\"__metadata__\" is ", detail::describe_json(entry), ", not an object");
      for (auto& [mkey, mvalue] : entry.items()) {
        if (!mvalue.is_string()) {
          throw fail("\"__metadata__\" entry ", detail::quoted(mkey), " is ", detail::describe_json(mvalue),
                     ", not a string");
        }
        h.metadata_.emplace(mkey, mvalue.get<std::string>());
      }
      continue;
    }
    // Messages are built only on failure: a header may list tens of thousands of tensors.
    const std::string& key_ref = key;  // lambdas cannot capture structured bindings in C++17
    const auto name = [&key_ref] { return detail::quoted(key_ref); };
    if (!entry.is_object())
      throw fail("tensor ", name(), ": entry is ", detail::describe_json(entry), ", not an object");

    TensorInfo t;
    t.name = key;
    const auto dtype_it = entry.find("dtype");
    if (dtype_it == entry.end()) throw fail("tensor ", name(), ": missing \"dtype\"");
    if (!dtype_it->is_string())
      throw fail("tensor ", name(), ": \"dtype\" is ", detail::describe_json(*dtype_it), ", not a string");
    const auto& dtype_name = dtype_it->get_ref<const std::string&>();
    const auto dtype = dtype_from_string(dtype_name);
    if (!dtype) {
      throw unsupported_dtype_error(message(src, ": tensor ", name(), ": unknown dtype ",
                                            detail::quoted(dtype_name),
                                            " (known: ", detail::known_dtype_list(), ")"));
    }
    t.dtype = *dtype;

    const auto shape_it = entry.find("shape");
    if (shape_it == entry.end()) throw fail("tensor ", name(), ": missing \"shape\"");
    if (!shape_it->is_array())
      throw fail("tensor ", name(), ": \"shape\" is ", detail::describe_json(*shape_it), ", not an array");
    t.shape.reserve(shape_it->size());
    std::uint64_t elements = 1;
    for (std::size_t i = 0; i < shape_it->size(); ++i) {
      const json& d = (*shape_it)[i];
      if (!d.is_number_unsigned()) {
        throw fail("tensor ", name(), ": shape entry ", i, " is ", detail::describe_json(d),
                   ", not a non-negative integer");
      }
      t.shape.push_back(d.get<std::uint64_t>());
    }
    for (std::uint64_t d : t.shape) {
      if (!detail::checked_mul(elements, d, elements)) {
        throw fail("tensor ", name(), ": shape ", detail::shape_string(t.shape),
                   " has 2^64 elements or more");
      }
    }

    const auto offsets_it = entry.find("data_offsets");
    if (offsets_it == entry.end()) throw fail("tensor ", name(), ": missing \"data_offsets\"");
    if (!offsets_it->is_array() || offsets_it->size() != 2) {
      throw fail("tensor ", name(), ": \"data_offsets\" is ", detail::describe_json(*offsets_it),
                 ", not an array of two integers");
    }
    for (const json& o : *offsets_it) {
      if (!o.is_number_unsigned()) {
        throw fail("tensor ", name(), ": \"data_offsets\" entry is ", detail::describe_json(o),
                   ", not a non-negative integer");
      }
    }
    t.begin = (*offsets_it)[0].get<std::uint64_t>();
    t.end = (*offsets_it)[1].get<std::uint64_t>();
    const auto offsets = [&t] { return message("data_offsets [", t.begin, ", ", t.end, "]"); };
    if (t.end < t.begin) throw fail("tensor ", name(), ": ", offsets(), " end before they begin");

    std::uint64_t bits = 0;
    if (!detail::checked_mul(elements, dtype_bits(t.dtype), bits)) {
      throw fail("tensor ", name(), ": shape ", detail::shape_string(t.shape), " of ", to_string(t.dtype),
                 " overflows a 64-bit byte count");
    }
    if (bits % 8 != 0) {
      throw fail("tensor ", name(), ": shape ", detail::shape_string(t.shape), " of ", to_string(t.dtype),
                 " does not fill a whole number of bytes");
    }
    if (bits / 8 != t.byte_size()) {
      throw fail("tensor ", name(), ": shape ", detail::shape_string(t.shape), " of ", to_string(t.dtype),
                 " needs ", bits / 8, " bytes but ", offsets(), " hold ", t.byte_size());
    }
    if (t.end > h.data_size_) {
      throw fail("tensor ", name(), ": ", offsets(), " run past the end of the data section, which has ",
                 h.data_size_, " bytes (file truncated?)");
    }
    h.tensors_.push_back(std::move(t));
  }

  // Byte ranges in file order: no overlap, and (by default) no gap.
  std::vector<const TensorInfo*> by_offset(h.tensors_.size());
  for (std::size_t i = 0; i < by_offset.size(); ++i) by_offset[i] = &h.tensors_[i];
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) {
    return std::tie(a->begin, a->end, a->name) < std::tie(b->begin, b->end, b->name);
  });
  std::uint64_t covered = 0;         // end of the data covered so far
  const TensorInfo* last = nullptr;  // the tensor that reaches `covered`
  for (const TensorInfo* t : by_offset) {
    if (t->begin < covered) {
      throw fail("tensors ", detail::quoted(last->name), " (data_offsets [", last->begin, ", ", last->end,
                 "]) and ", detail::quoted(t->name), " (data_offsets [", t->begin, ", ", t->end,
                 "]) overlap");
    }
    if (t->begin > covered && !options.allow_gaps) {
      throw fail("tensor ", detail::quoted(t->name), ": data_offsets [", t->begin, ", ", t->end, "] leave ",
                 t->begin - covered, " unused bytes before it",
                 last ? message(" (after ", detail::quoted(last->name), ")") : std::string(" (at the start)"),
                 "; tensors must cover the data section contiguously");
    }
    if (t->end >= covered) {
      covered = t->end;
      last = t;
    }
  }
  if (covered != h.data_size_ && !options.allow_gaps) {
    throw fail("the data section has ", h.data_size_, " bytes but the tensors cover only the first ", covered,
               "; tensors must cover the data section exactly");
  }

  std::sort(h.tensors_.begin(), h.tensors_.end(),
            [](const TensorInfo& a, const TensorInfo& b) { return a.name < b.name; });
  return h;
}

}  // namespace mhaprune::io
