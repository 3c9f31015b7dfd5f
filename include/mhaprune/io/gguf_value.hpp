// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mhaprune/error.hpp"
#include "mhaprune/io/byte_span.hpp"
#include "mhaprune/io/detail/text.hpp"

namespace mhaprune::io {

/// The value types of GGUF metadata (`gguf_type` in ggml's gguf.h), with their ids as stored.
enum class GgufType : std::uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

namespace detail {

/// True for the ids 0-12 of GgufType.
constexpr bool is_gguf_type(std::uint32_t id) noexcept { return id <= 12; }

/// Bytes of one scalar of `type`; 0 for STRING, ARRAY and ids outside 0-12 (no fixed size).
constexpr std::size_t gguf_scalar_size(GgufType type) noexcept {
  switch (type) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::BOOL:
      return 1;
    case GgufType::UINT16:
    case GgufType::INT16:
      return 2;
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::FLOAT32:
      return 4;
    case GgufType::UINT64:
    case GgufType::INT64:
    case GgufType::FLOAT64:
      return 8;
    default:
      return 0;
  }
}

constexpr bool is_gguf_integer(GgufType type) noexcept {
  switch (type) {
    case GgufType::UINT8:
    case GgufType::INT8:
    case GgufType::UINT16:
    case GgufType::INT16:
    case GgufType::UINT32:
    case GgufType::INT32:
    case GgufType::UINT64:
    case GgufType::INT64:
      return true;
    default:
      return false;
  }
}

/// Little-endian unsigned integer of `n` (<= 8) bytes at `p`; host-independent.
inline std::uint64_t load_le(const std::byte* p, std::size_t n) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = n; i-- > 0;) v = (v << 8) | std::to_integer<std::uint64_t>(p[i]);
  return v;
}

/// Appends the `n` low bytes of `v`, little-endian.
inline void store_le(std::vector<std::byte>& out, std::uint64_t v, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<std::byte>((v >> (8 * i)) & 0xFFu));
}

/// Shortest decimal text that reads back as the same `T` (float or double).
template <typename T>
std::string shortest_float(T v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v < 0 ? "-inf" : "inf";
  for (int precision = 6; precision <= std::numeric_limits<T>::max_digits10; ++precision) {
    std::ostringstream out;
    out.precision(precision);
    out << v;
    std::istringstream in(out.str());
    long double back = 0;
    in >> back;
    if (static_cast<T>(back) == v) return out.str();
  }
  std::ostringstream out;
  out.precision(std::numeric_limits<T>::max_digits10);
  out << v;
  return out.str();
}

}  // namespace detail

/// The GGUF name of a value type ("UINT32", "STRING", ...); "type <id>" for an id outside 0-12.
inline std::string to_string(GgufType type) {
  static constexpr const char* names[] = {"UINT8",  "INT8",    "UINT16", "INT16",  "UINT32",
                                          "INT32",  "FLOAT32", "BOOL",   "STRING", "ARRAY",
                                          "UINT64", "INT64",   "FLOAT64"};
  const auto id = static_cast<std::uint32_t>(type);
  return id <= 12 ? std::string(names[id]) : mhaprune::detail::message("type ", id);
}

/// One metadata value exactly as a GGUF file stores it: its type (and element type for arrays) and
/// its encoded bytes, the value part only (a scalar: its little-endian bytes; a string: u64 length
/// and the bytes; an array: u32 element type, u64 count and the elements). Keeping the bytes rather
/// than a decoded form means a value read from a file is written back bit for bit, whatever its
/// type (NaN payloads, non-0/1 bools, strings that are not UTF-8 included).
///
/// Values are built with the factories (`GgufValue::uint32(7)`, `GgufValue::string("llama")`, ...)
/// or decoded from a file (`decode`), and read back with the `as_*` accessors, which return nullopt
/// rather than throw when the value has another type.
class GgufValue {
 public:
  /// An empty UINT8 array (a placeholder; every factory makes a real value).
  GgufValue() { *this = array_of(GgufType::UINT8, {}, 0); }

  static GgufValue uint8(std::uint8_t v) { return scalar(GgufType::UINT8, v, 1); }
  static GgufValue int8(std::int8_t v) { return scalar(GgufType::INT8, static_cast<std::uint8_t>(v), 1); }
  static GgufValue uint16(std::uint16_t v) { return scalar(GgufType::UINT16, v, 2); }
  static GgufValue int16(std::int16_t v) { return scalar(GgufType::INT16, static_cast<std::uint16_t>(v), 2); }
  static GgufValue uint32(std::uint32_t v) { return scalar(GgufType::UINT32, v, 4); }
  static GgufValue int32(std::int32_t v) { return scalar(GgufType::INT32, static_cast<std::uint32_t>(v), 4); }
  static GgufValue uint64(std::uint64_t v) { return scalar(GgufType::UINT64, v, 8); }
  static GgufValue int64(std::int64_t v) { return scalar(GgufType::INT64, static_cast<std::uint64_t>(v), 8); }
  static GgufValue float32(float v) { return scalar(GgufType::FLOAT32, bits_of(v), 4); }
  static GgufValue float64(double v) { return scalar(GgufType::FLOAT64, bits_of(v), 8); }
  static GgufValue boolean(bool v) { return scalar(GgufType::BOOL, v ? 1u : 0u, 1); }
  static GgufValue string(std::string_view v) {
    GgufValue out(0);
    out.type_ = out.element_type_ = GgufType::STRING;
    out.count_ = 1;
    append_string(out.bytes_, v);
    return out;
  }
  static GgufValue int32_array(const std::vector<std::int32_t>& v) { return int_array(GgufType::INT32, v); }
  static GgufValue uint32_array(const std::vector<std::uint32_t>& v) {
    return int_array(GgufType::UINT32, v);
  }
  static GgufValue int64_array(const std::vector<std::int64_t>& v) { return int_array(GgufType::INT64, v); }
  static GgufValue uint64_array(const std::vector<std::uint64_t>& v) {
    return int_array(GgufType::UINT64, v);
  }
  static GgufValue float32_array(const std::vector<float>& v) {
    std::vector<std::byte> elements;
    elements.reserve(v.size() * 4);
    for (float f : v) detail::store_le(elements, bits_of(f), 4);
    return array_of(GgufType::FLOAT32, std::move(elements), v.size());
  }
  static GgufValue string_array(const std::vector<std::string>& v) {
    std::vector<std::byte> elements;
    for (const std::string& s : v) append_string(elements, s);
    return array_of(GgufType::STRING, std::move(elements), v.size());
  }

  /// Decodes one value of `type` (a type id as read from the file) from the front of `bytes`, and
  /// sets `consumed` to the number of bytes it takes. Checks: `type` and an array's element type are
  /// 0-12, an array does not hold arrays, and every length and count fits in `bytes` (so a count of
  /// 2^63 is refused before anything is allocated: memory stays bounded by `bytes.size()`).
  /// @param context prefix of every message, e.g. "model.gguf: key \"general.name\"".
  /// @throws corrupt_file_error "<context>: <what is wrong>".
  static GgufValue decode(std::uint32_t type, ByteSpan bytes, std::size_t& consumed,
                          std::string_view context = "GGUF value") {
    const std::byte* const p = bytes.data();
    const std::size_t n = bytes.size();
    const auto fail = [&context](auto&&... parts) {
      return corrupt_file_error(mhaprune::detail::message(context, ": ", parts...));
    };
    if (!detail::is_gguf_type(type)) {
      throw fail("value type ", type, " is not a GGUF type (0-12: UINT8 ... FLOAT64)");
    }
    GgufValue out(0);
    out.type_ = out.element_type_ = static_cast<GgufType>(type);
    out.count_ = 1;
    std::size_t size = 0;
    if (out.type_ == GgufType::STRING) {
      size = string_size(p, n, 0, [&](std::size_t, std::uint64_t len) {
        return fail("string of ", len, " bytes runs past the end of the file: ", n - 8, " bytes remain");
      });
      if (size == 0) throw fail("string length runs past the end of the file");
    } else if (out.type_ == GgufType::ARRAY) {
      if (n < 12) throw fail("array header (element type and count, 12 bytes) runs past the end of the file");
      const auto element_id = static_cast<std::uint32_t>(detail::load_le(p, 4));
      const std::uint64_t count = detail::load_le(p + 4, 8);
      if (element_id == static_cast<std::uint32_t>(GgufType::ARRAY)) {
        throw fail("array of arrays: GGUF does not allow nested arrays");
      }
      if (!detail::is_gguf_type(element_id)) {
        throw fail("array element type ", element_id, " is not a GGUF type (0-12: UINT8 ... FLOAT64)");
      }
      out.element_type_ = static_cast<GgufType>(element_id);
      out.count_ = count;
      const std::size_t rest = n - 12;
      if (out.element_type_ == GgufType::STRING) {
        if (count > rest / 8) {
          throw fail("array of ", count, " STRING items cannot fit in the ", rest,
                     " bytes left in the file (each takes at least 8)");
        }
        std::size_t at = 12;
        for (std::uint64_t i = 0; i < count; ++i) {
          const std::size_t item = string_size(p, n, at, [&](std::size_t, std::uint64_t len) {
            return fail("array item ", i, " of ", count, ": string of ", len,
                        " bytes runs past the end of the file");
          });
          if (item == 0) {
            throw fail("array item ", i, " of ", count, ": string length runs past the end of the file");
          }
          at += item;
        }
        size = at;
      } else {
        const std::size_t element = detail::gguf_scalar_size(out.element_type_);
        if (count > rest / element) {
          throw fail("array of ", count, ' ', to_string(out.element_type_), " items (", element,
                     " bytes each) runs past the end of the file: ", rest, " bytes remain");
        }
        size = 12 + static_cast<std::size_t>(count) * element;
      }
    } else {
      size = detail::gguf_scalar_size(out.type_);
      if (n < size) {
        throw fail(to_string(out.type_), " value (", size, " bytes) runs past the end of the file");
      }
    }
    out.bytes_.assign(p, p + size);
    consumed = size;
    return out;
  }

  /// The same, for a type of the enum.
  static GgufValue decode(GgufType type, ByteSpan bytes, std::size_t& consumed,
                          std::string_view context = "GGUF value") {
    return decode(static_cast<std::uint32_t>(type), bytes, consumed, context);
  }

  GgufType type() const noexcept { return type_; }
  /// For an array, the type of its elements; otherwise `type()`.
  GgufType element_type() const noexcept { return element_type_; }
  bool is_array() const noexcept { return type_ == GgufType::ARRAY; }
  /// The array's length; 1 for a scalar or a string.
  std::uint64_t count() const noexcept { return count_; }
  /// The value's bytes as stored in the file (see the class comment).
  const std::vector<std::byte>& encoded() const noexcept { return bytes_; }

  /// A scalar of an integer type (or BOOL: 0 or 1; a stored byte other than 0 reads as 1, as ggml
  /// does) whose value fits int64 exactly; nullopt otherwise (UINT64 above 2^63-1, floats, ...).
  std::optional<std::int64_t> as_int() const {
    if (type_ == GgufType::BOOL) return bytes_[0] != std::byte{0} ? 1 : 0;
    if (!detail::is_gguf_integer(type_)) return std::nullopt;
    return integer_at(type_, bytes_.data());
  }

  /// A scalar of any integer or floating type, as a double (integers above 2^53 round).
  std::optional<double> as_double() const {
    if (type_ == GgufType::FLOAT32) return static_cast<double>(float_of(detail::load_le(bytes_.data(), 4)));
    if (type_ == GgufType::FLOAT64) return double_of(detail::load_le(bytes_.data(), 8));
    if (type_ == GgufType::UINT64) return static_cast<double>(detail::load_le(bytes_.data(), 8));
    if (detail::is_gguf_integer(type_)) return static_cast<double>(*integer_at(type_, bytes_.data()));
    return std::nullopt;
  }

  /// The text of a STRING value (bytes as stored: not necessarily UTF-8); nullopt for other types.
  std::optional<std::string> as_string() const {
    if (type_ != GgufType::STRING) return std::nullopt;
    return std::string(reinterpret_cast<const char*>(bytes_.data()) + 8, bytes_.size() - 8);
  }

  /// An array of any integer type whose every element fits int64; nullopt otherwise.
  std::optional<std::vector<std::int64_t>> as_int_array() const {
    if (type_ != GgufType::ARRAY || !detail::is_gguf_integer(element_type_)) return std::nullopt;
    const std::size_t size = detail::gguf_scalar_size(element_type_);
    std::vector<std::int64_t> out;
    out.reserve(static_cast<std::size_t>(count_));
    for (std::uint64_t i = 0; i < count_; ++i) {
      const auto v = integer_at(element_type_, bytes_.data() + 12 + i * size);
      if (!v) return std::nullopt;
      out.push_back(*v);
    }
    return out;
  }

  /// The items of an array of STRING; nullopt for other types.
  std::optional<std::vector<std::string>> as_string_array() const {
    if (type_ != GgufType::ARRAY || element_type_ != GgufType::STRING) return std::nullopt;
    std::vector<std::string> out;
    out.reserve(static_cast<std::size_t>(count_));
    std::size_t at = 12;
    for (std::uint64_t i = 0; i < count_; ++i) {
      const auto len = static_cast<std::size_t>(detail::load_le(bytes_.data() + at, 8));
      out.emplace_back(reinterpret_cast<const char*>(bytes_.data()) + at + 8, len);
      at += 8 + len;
    }
    return out;
  }

  /// Human-readable text for `inspect`: `7`, `-1.5`, `true`, `"llama"` (quoted, escaped and cut
  /// after 160 characters), `[1, 2, 3, ... (32000 items)]` (arrays show their first `max_items`).
  std::string to_display_string(std::size_t max_items = 8) const {
    if (type_ != GgufType::ARRAY) return element_text(type_, bytes_.data());
    std::string out = "[";
    std::size_t at = 12;
    const std::size_t size = detail::gguf_scalar_size(element_type_);
    const std::uint64_t shown = std::min<std::uint64_t>(count_, max_items);
    for (std::uint64_t i = 0; i < shown; ++i) {
      if (i != 0) out += ", ";
      out += element_text(element_type_, bytes_.data() + at);
      at += element_type_ == GgufType::STRING
                ? 8 + static_cast<std::size_t>(detail::load_le(bytes_.data() + at, 8))
                : size;
    }
    if (shown < count_) out += mhaprune::detail::message(shown == 0 ? "" : ", ", "... (", count_, " items)");
    return out + "]";
  }

  /// Same type, element type and bytes (so two NaNs with one payload are equal, 0.0 and -0.0 not).
  friend bool operator==(const GgufValue& a, const GgufValue& b) noexcept {
    return a.type_ == b.type_ && a.element_type_ == b.element_type_ && a.count_ == b.count_ &&
           a.bytes_ == b.bytes_;
  }
  friend bool operator!=(const GgufValue& a, const GgufValue& b) noexcept { return !(a == b); }

 private:
  static std::uint32_t bits_of(float f) noexcept {
    std::uint32_t u;
    std::memcpy(&u, &f, 4);
    return u;
  }
  static std::uint64_t bits_of(double d) noexcept {
    std::uint64_t u;
    std::memcpy(&u, &d, 8);
    return u;
  }
  static float float_of(std::uint64_t bits) noexcept {
    const auto u = static_cast<std::uint32_t>(bits);
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  static double double_of(std::uint64_t bits) noexcept {
    double d;
    std::memcpy(&d, &bits, 8);
    return d;
  }

  static GgufValue scalar(GgufType type, std::uint64_t bits, std::size_t size) {
    GgufValue out(0);
    out.type_ = out.element_type_ = type;
    out.count_ = 1;
    detail::store_le(out.bytes_, bits, size);
    return out;
  }

  static GgufValue array_of(GgufType element, std::vector<std::byte> elements, std::uint64_t count) {
    GgufValue out(0);
    out.type_ = GgufType::ARRAY;
    out.element_type_ = element;
    out.count_ = count;
    out.bytes_.reserve(12 + elements.size());
    detail::store_le(out.bytes_, static_cast<std::uint32_t>(element), 4);
    detail::store_le(out.bytes_, count, 8);
    out.bytes_.insert(out.bytes_.end(), elements.begin(), elements.end());
    return out;
  }

  template <typename T>
  static GgufValue int_array(GgufType element, const std::vector<T>& v) {
    std::vector<std::byte> elements;
    elements.reserve(v.size() * sizeof(T));
    for (T x : v) detail::store_le(elements, static_cast<std::uint64_t>(x), sizeof(T));
    return array_of(element, std::move(elements), v.size());
  }

  static void append_string(std::vector<std::byte>& out, std::string_view s) {
    detail::store_le(out, s.size(), 8);
    const auto* p = reinterpret_cast<const std::byte*>(s.data());
    out.insert(out.end(), p, p + s.size());
  }

  /// Bytes of the string (length + text) at `p + at`, or 0 if even its length does not fit; throws
  /// `too_long(at, len)` if the text runs past `n`.
  template <typename Fail>
  static std::size_t string_size(const std::byte* p, std::size_t n, std::size_t at, Fail too_long) {
    if (n - at < 8) return 0;
    const std::uint64_t len = detail::load_le(p + at, 8);
    if (len > n - at - 8) throw too_long(at, len);
    return 8 + static_cast<std::size_t>(len);
  }

  /// The integer of `type` at `p`; nullopt for a UINT64 above INT64_MAX.
  static std::optional<std::int64_t> integer_at(GgufType type, const std::byte* p) {
    const std::size_t size = detail::gguf_scalar_size(type);
    const std::uint64_t raw = detail::load_le(p, size);
    switch (type) {
      case GgufType::INT8:
        return static_cast<std::int8_t>(raw);
      case GgufType::INT16:
        return static_cast<std::int16_t>(raw);
      case GgufType::INT32:
        return static_cast<std::int32_t>(raw);
      case GgufType::INT64:
        return static_cast<std::int64_t>(raw);
      case GgufType::UINT64:
        if (raw > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) return std::nullopt;
        return static_cast<std::int64_t>(raw);
      default:
        return static_cast<std::int64_t>(raw);  // UINT8/16/32: always fit
    }
  }

  static std::string element_text(GgufType type, const std::byte* p) {
    switch (type) {
      case GgufType::STRING: {
        const auto len = static_cast<std::size_t>(detail::load_le(p, 8));
        return detail::quoted(std::string_view(reinterpret_cast<const char*>(p) + 8, len));
      }
      case GgufType::BOOL:
        return p[0] != std::byte{0} ? "true" : "false";
      case GgufType::FLOAT32:
        return detail::shortest_float(float_of(detail::load_le(p, 4)));
      case GgufType::FLOAT64:
        return detail::shortest_float(double_of(detail::load_le(p, 8)));
      case GgufType::UINT64:
        return std::to_string(detail::load_le(p, 8));
      default:
        return std::to_string(*integer_at(type, p));
    }
  }

  explicit GgufValue(int) {}  // uninitialised, for the factories that fill every member

  GgufType type_ = GgufType::ARRAY;
  GgufType element_type_ = GgufType::UINT8;
  std::uint64_t count_ = 0;
  std::vector<std::byte> bytes_;
};

/// One metadata entry: a key and its value, as stored (keys are kept in file order by the reader).
struct GgufKv {
  std::string key;
  GgufValue value;
};

}  // namespace mhaprune::io
