// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <array>
#include <cstdint>
#include <optional>
#include <string_view>
#include <type_traits>

// safetensors data is little-endian and the readers hand out pointers into it as is.
#if defined(__BYTE_ORDER__) && defined(__ORDER_LITTLE_ENDIAN__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mhaprune/io supports little-endian hosts only"
#endif

namespace mhaprune::io {

/// The element types of the safetensors format, spelt as the format spells them so that code reads
/// like the headers it handles (`Dtype::BF16` is `"dtype": "BF16"`).
///
/// The enumerators are in the reference implementation's order, increasing alignment: the writer
/// stores tensors by decreasing `Dtype`, then by name, as the reference writer does, which keeps
/// every tensor aligned to its element size.
///
/// Only F64, F32, F16 and BF16 can be converted (read as float/double, written from Eigen data);
/// the others are known so that their tensors can be checked, listed and copied through untouched.
enum class Dtype : std::uint8_t {
  BOOL,
  F4,       ///< 4-bit float (E2M1), two per byte
  F6_E2M3,  ///< 6-bit floats, four per three bytes
  F6_E3M2,
  U8,
  I8,
  F8_E5M2,
  F8_E4M3,
  F8_E8M0,
  I16,
  U16,
  F16,
  BF16,
  I32,
  U32,
  F32,
  C64,  ///< complex64: two F32
  F64,
  I64,
  U64,
};

namespace detail {
struct DtypeTraits {
  Dtype dtype;
  std::string_view name;
  unsigned bits;  // per element
  bool convertible;
};
inline constexpr std::array<DtypeTraits, 20> dtype_table{{
    {Dtype::BOOL, "BOOL", 8, false},       {Dtype::F4, "F4", 4, false},
    {Dtype::F6_E2M3, "F6_E2M3", 6, false}, {Dtype::F6_E3M2, "F6_E3M2", 6, false},
    {Dtype::U8, "U8", 8, false},           {Dtype::I8, "I8", 8, false},
    {Dtype::F8_E5M2, "F8_E5M2", 8, false}, {Dtype::F8_E4M3, "F8_E4M3", 8, false},
    {Dtype::F8_E8M0, "F8_E8M0", 8, false}, {Dtype::I16, "I16", 16, false},
    {Dtype::U16, "U16", 16, false},        {Dtype::F16, "F16", 16, true},
    {Dtype::BF16, "BF16", 16, true},       {Dtype::I32, "I32", 32, false},
    {Dtype::U32, "U32", 32, false},        {Dtype::F32, "F32", 32, true},
    {Dtype::C64, "C64", 64, false},        {Dtype::F64, "F64", 64, true},
    {Dtype::I64, "I64", 64, false},        {Dtype::U64, "U64", 64, false},
}};
constexpr bool dtype_table_is_indexed_by_dtype() noexcept {
  for (std::size_t i = 0; i < dtype_table.size(); ++i) {
    if (static_cast<std::size_t>(dtype_table[i].dtype) != i) return false;
  }
  return true;
}
static_assert(dtype_table_is_indexed_by_dtype(), "dtype_table must list the dtypes in enum order");
constexpr const DtypeTraits& traits(Dtype d) noexcept { return dtype_table[static_cast<std::size_t>(d)]; }
}  // namespace detail

/// "F32", "BF16", ...: the name the header uses.
constexpr std::string_view to_string(Dtype d) noexcept { return detail::traits(d).name; }

/// Bits per element: 64 for F64, 4 for F4. A tensor takes `elements * bits / 8` bytes, and for the
/// sub-byte dtypes `elements * bits` must be a multiple of 8.
constexpr unsigned dtype_bits(Dtype d) noexcept { return detail::traits(d).bits; }

/// True for F64, F32, F16 and BF16: the dtypes mhaprune reads as float/double and writes from Eigen.
constexpr bool is_convertible(Dtype d) noexcept { return detail::traits(d).convertible; }

/// The dtype a header names, or nothing for a name this version does not know (such as "Q4").
constexpr std::optional<Dtype> dtype_from_string(std::string_view name) noexcept {
  for (const auto& t : detail::dtype_table) {
    if (t.name == name) return t.dtype;
  }
  return std::nullopt;
}

/// The dtype that stores `Scalar` without conversion: float → F32, double → F64, Eigen::half → F16,
/// Eigen::bfloat16 → BF16.
template <typename Scalar>
inline constexpr Dtype dtype_of_v = [] {
  static_assert(std::is_same_v<Scalar, float> || std::is_same_v<Scalar, double> ||
                    std::is_same_v<Scalar, Eigen::half> || std::is_same_v<Scalar, Eigen::bfloat16>,
                "mhaprune::io stores float, double, Eigen::half and Eigen::bfloat16 only");
  if constexpr (std::is_same_v<Scalar, float>) {
    return Dtype::F32;
  } else if constexpr (std::is_same_v<Scalar, double>) {
    return Dtype::F64;
  } else if constexpr (std::is_same_v<Scalar, Eigen::half>) {
    return Dtype::F16;
  } else {
    return Dtype::BF16;
  }
}();

}  // namespace mhaprune::io
