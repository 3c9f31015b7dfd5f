// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// The scalar conversions ggml's reference (de)quantizers are built on, written out so that every
// result is the bit pattern ggml's portable C code gives (ggml-impl.h: GGML_FP16_TO_FP32,
// GGML_FP32_TO_FP16, GGML_BF16_TO_FP32, GGML_FP32_TO_BF16, GGML_E8M0_TO_FP32_HALF), whatever the
// compiler flags: nothing here goes through Eigen::half, F16C or the compiler's own conversions.
// Multi-byte fields are read little-endian byte by byte, as GGUF stores them, so unaligned blocks
// are fine.

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace mhaprune::io::detail {

inline std::uint8_t byte_at(const std::byte* p, std::size_t i) noexcept {
  return static_cast<std::uint8_t>(p[i]);
}
inline std::uint16_t le16(const std::byte* p) noexcept {
  return static_cast<std::uint16_t>(byte_at(p, 0) | (byte_at(p, 1) << 8));
}
inline std::uint32_t le32(const std::byte* p) noexcept {
  return static_cast<std::uint32_t>(byte_at(p, 0)) | static_cast<std::uint32_t>(byte_at(p, 1)) << 8 |
         static_cast<std::uint32_t>(byte_at(p, 2)) << 16 | static_cast<std::uint32_t>(byte_at(p, 3)) << 24;
}
inline void put_le16(std::byte* p, std::uint16_t v) noexcept {
  p[0] = static_cast<std::byte>(v & 0xFFu);
  p[1] = static_cast<std::byte>(v >> 8);
}
inline void put_le32(std::byte* p, std::uint32_t v) noexcept {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xFFu);
}

inline float float_from_bits(std::uint32_t u) noexcept {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline std::uint32_t bits_of_float(float f) noexcept {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}

/// IEEE binary16 bits -> float, as ggml: exact for every number; a NaN keeps its sign and payload
/// and comes out quiet (ggml's conversion multiplies, F16C converts: both set the quiet bit).
inline float ggml_fp16_to_fp32(std::uint16_t h) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(h & 0x8000u) << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1Fu;
  const std::uint32_t mantissa = h & 0x3FFu;
  if (exponent == 0x1Fu) {
    const std::uint32_t quiet = mantissa != 0 ? 0x00400000u : 0u;
    return float_from_bits(sign | 0x7F800000u | (mantissa << 13) | quiet);
  }
  if (exponent != 0) return float_from_bits(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  // Zero or subnormal: mantissa * 2^-24, exact in float (at most 10 significant bits).
  const float magnitude = static_cast<float>(mantissa) * 0x1p-24f;
  return float_from_bits(sign | bits_of_float(magnitude));
}

/// float -> IEEE binary16 bits, as ggml's GGML_FP32_TO_FP16: round to nearest, ties to even
/// (subnormal halves too), overflow (|x| >= 65520) to infinity, every NaN to 0x7E00 with its sign.
inline std::uint16_t ggml_fp32_to_fp16(float f) noexcept {
  const std::uint32_t u = bits_of_float(f);
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  const std::uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u);
  if (a >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);
  std::uint32_t result;
  std::uint32_t rest;
  std::uint32_t half;
  if (a >= 0x38800000u) {
    // Normal half: rebias the exponent (127 -> 15) and keep the top 10 mantissa bits.
    result = (((a >> 23) - 112u) << 10) | ((a >> 13) & 0x3FFu);
    rest = a & 0x1FFFu;
    half = 0x1000u;
  } else {
    // Subnormal half (or zero): the value in units of 2^-24 is significand * 2^(e - 126) where
    // the float is significand * 2^(e - 150) (e = 1 for float subnormals, which have no hidden bit).
    const std::uint32_t e = a >> 23;
    const std::uint32_t significand = e != 0 ? (a & 0x7FFFFFu) | 0x800000u : a;
    const std::uint32_t shift = 126u - (e != 0 ? e : 1u);     // >= 14
    if (shift > 24) return static_cast<std::uint16_t>(sign);  // below 2^-25: rounds to zero
    result = significand >> shift;
    rest = significand & ((1u << shift) - 1u);
    half = 1u << (shift - 1);
  }
  // Ties to even; a carry out of the mantissa correctly moves to the next binade (or infinity).
  if (rest > half || (rest == half && (result & 1u) != 0)) ++result;
  return static_cast<std::uint16_t>(sign | result);
}

/// BF16 bits -> float: exact (the top half of the float).
inline float ggml_bf16_to_fp32(std::uint16_t h) noexcept {
  return float_from_bits(static_cast<std::uint32_t>(h) << 16);
}

/// float -> BF16 bits, as ggml's GGML_FP32_TO_BF16: round to nearest, ties to even, overflow to
/// infinity; a NaN keeps its sign and top payload bits and gets the quiet bit (0x0040) set.
/// Subnormals are rounded, not flushed.
inline std::uint16_t ggml_fp32_to_bf16(float f) noexcept {
  const std::uint32_t u = bits_of_float(f);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40u);
  const std::uint32_t upper = u >> 16;
  const std::uint32_t lower = u & 0xFFFFu;
  const bool up = lower > 0x8000u || (lower == 0x8000u && (upper & 1u) != 0);
  return static_cast<std::uint16_t>(upper + (up ? 1u : 0u));
}

/// An E8M0 scale byte, halved (MXFP4 stores its values doubled): 2^(x - 128), exact, with x = 0
/// and x = 1 as float subnormals; no NaN (ggml does not treat 0xFF specially either).
inline float ggml_e8m0_to_fp32_half(std::uint8_t x) noexcept {
  return float_from_bits(x < 2 ? 0x00200000u << x : static_cast<std::uint32_t>(x - 1) << 23);
}

/// What ggml's `(int8_t)v` / `(uint8_t)v` conversions of a float store on x86-64, where compilers
/// emit a 32-bit truncating conversion (cvttss2si) and keep its low byte: NaN and values outside
/// the int32 range become 0x80000000, whose low byte is 0. In range, this is plain truncation
/// toward zero. The C conversion is undefined outside the target type, and ggml's reference
/// quantizers only get there for degenerate blocks (an amax so small that 1/d overflows); fixing
/// the x86-64 result keeps our output the same on every platform.
inline std::uint8_t ggml_float_to_byte(float v) noexcept {
  const std::int32_t i =
      (v >= -2147483648.0f && v < 2147483648.0f) ? static_cast<std::int32_t>(v) : INT32_MIN;
  return static_cast<std::uint8_t>(static_cast<std::uint32_t>(i) & 0xFFu);
}

}  // namespace mhaprune::io::detail
