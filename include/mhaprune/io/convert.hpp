// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

#include <Eigen/Core>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "mhaprune/error.hpp"
#include "mhaprune/io/dtype.hpp"

namespace mhaprune::io {

/// The float a BF16 bit pattern stands for; exact.
inline float bf16_bits_to_float(std::uint16_t bits) noexcept {
  const std::uint32_t u = static_cast<std::uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// Rounds a float to BF16 bits the way PyTorch's `.to(torch.bfloat16)` does: to nearest, ties to
/// even; overflow goes to infinity; every NaN becomes the quiet NaN 0x7FC0 (PyTorch drops its sign).
inline std::uint16_t float_to_bf16_bits(float f) noexcept {
  if (std::isnan(f)) return 0x7FC0u;
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  const std::uint32_t rounding_bias = 0x7FFFu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>((u + rounding_bias) >> 16);
}

/// The float an IEEE binary16 bit pattern stands for; exact (subnormals, infinities, NaN payloads).
inline float f16_bits_to_float(std::uint16_t bits) noexcept {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
  const std::uint32_t exponent = (bits >> 10) & 0x1Fu;
  const std::uint32_t mantissa = bits & 0x3FFu;
  std::uint32_t u;
  if (exponent == 0x1Fu) {
    u = sign | 0x7F800000u | (mantissa << 13);
  } else if (exponent != 0) {
    u = sign | ((exponent + 112u) << 23) | (mantissa << 13);
  } else if (mantissa == 0) {
    u = sign;
  } else {
    // A subnormal half is an exact float: mantissa * 2^-24.
    const float magnitude = std::ldexp(static_cast<float>(mantissa), -24);
    std::memcpy(&u, &magnitude, sizeof u);
    u |= sign;
  }
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

/// Rounds a float to IEEE binary16 bits: to nearest, ties to even (subnormals too); overflow goes
/// to infinity; every NaN becomes the quiet NaN 0x7E00 with its sign, as PyTorch's CPU conversion
/// does. Written out rather than taken from Eigen::half, whose result for NaN depends on whether
/// the build enables F16C: a checkpoint must not depend on compiler flags.
inline std::uint16_t float_to_f16_bits(float f) noexcept {
  std::uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  const std::uint16_t sign = static_cast<std::uint16_t>((u >> 16) & 0x8000u);
  u &= 0x7FFFFFFFu;
  if (u > 0x7F800000u) return static_cast<std::uint16_t>(sign | 0x7E00u);
  if (u >= 0x477FF000u) return static_cast<std::uint16_t>(sign | 0x7C00u);  // rounds to >= 2^16: inf
  if (u < 0x38800000u) {
    // Below the smallest normal half (2^-14): adding 0.5 aligns the 10 subnormal mantissa bits at
    // the bottom of the float, and the FPU's own round-to-nearest-even does the rounding.
    float magnitude;
    std::memcpy(&magnitude, &u, sizeof magnitude);
    const float shifted = magnitude + 0.5f;
    std::uint32_t s;
    std::memcpy(&s, &shifted, sizeof s);
    return static_cast<std::uint16_t>(sign | (s - 0x3F000000u));
  }
  const std::uint32_t odd = (u >> 13) & 1u;
  u += 0xC8000FFFu + odd;  // rebias the exponent (127 -> 15) and round to nearest even
  return static_cast<std::uint16_t>(sign | (u >> 13));
}

namespace detail {

template <typename T>
inline constexpr bool is_io_scalar_v = std::is_same_v<T, float> || std::is_same_v<T, double> ||
                                       std::is_same_v<T, Eigen::half> || std::is_same_v<T, Eigen::bfloat16>;

template <typename T>
T load_le(const std::byte* p) noexcept {
  T value;
  std::memcpy(&value, p, sizeof value);
  return value;
}

template <typename T>
void store_le(std::byte* p, T value) noexcept {
  std::memcpy(p, &value, sizeof value);
}

/// The 16-bit pattern of an Eigen::half or Eigen::bfloat16.
inline std::uint16_t bits_of(Eigen::half value) noexcept { return value.x; }
inline std::uint16_t bits_of(Eigen::bfloat16 value) noexcept { return value.value; }

template <typename T>
T from_bits(std::uint16_t bits) noexcept {
  if constexpr (std::is_same_v<T, Eigen::half>) {
    return Eigen::half(Eigen::half_impl::raw_uint16_to_half(bits));
  } else {
    static_assert(std::is_same_v<T, Eigen::bfloat16>);
    return Eigen::bfloat16(Eigen::bfloat16_impl::raw_uint16_to_bfloat16(bits));
  }
}

/// One element as a float or double (the widest type the conversion needs).
template <typename T>
auto widen(T value) noexcept {
  if constexpr (std::is_same_v<T, Eigen::half>) {
    return f16_bits_to_float(bits_of(value));
  } else if constexpr (std::is_same_v<T, Eigen::bfloat16>) {
    return bf16_bits_to_float(bits_of(value));
  } else {
    return value;
  }
}

/// Rounds a float or double to `T`; half and bfloat16 go through float, as PyTorch's do.
template <typename T, typename Wide>
T narrow(Wide value) noexcept {
  if constexpr (std::is_same_v<T, Eigen::half>) {
    return from_bits<T>(float_to_f16_bits(static_cast<float>(value)));
  } else if constexpr (std::is_same_v<T, Eigen::bfloat16>) {
    return from_bits<T>(float_to_bf16_bits(static_cast<float>(value)));
  } else {
    return static_cast<T>(value);
  }
}

/// Converts between the supported scalars, bit-exactly when they are the same type.
template <typename To, typename From>
To convert_scalar(From value) noexcept {
  if constexpr (std::is_same_v<To, From>) {
    return value;
  } else {
    return narrow<To>(widen(value));
  }
}

}  // namespace detail

/// Decodes `count` elements of `dtype` stored little-endian at `src` (any alignment) into `dst`.
/// Same-type reads are a memcpy; F16/BF16 widen exactly; narrowing (F64 → float, F32 → bfloat16,
/// ...) rounds to nearest even.
///
/// @tparam T float, double, Eigen::half or Eigen::bfloat16.
/// @throws unsupported_dtype_error if `dtype` is not F64, F32, F16 or BF16 (`what` names `context`).
template <typename T>
void decode(Dtype dtype, const std::byte* src, std::size_t count, T* dst, std::string_view context = "") {
  static_assert(detail::is_io_scalar_v<T>, "decode: T must be float, double, Eigen::half or Eigen::bfloat16");
  if (dtype == dtype_of_v<T>) {
    if (count != 0) std::memcpy(dst, src, count * sizeof(T));
    return;
  }
  switch (dtype) {
    case Dtype::F64:
      for (std::size_t i = 0; i < count; ++i)
        dst[i] = detail::convert_scalar<T>(detail::load_le<double>(src + 8 * i));
      return;
    case Dtype::F32:
      for (std::size_t i = 0; i < count; ++i)
        dst[i] = detail::convert_scalar<T>(detail::load_le<float>(src + 4 * i));
      return;
    case Dtype::F16:
      for (std::size_t i = 0; i < count; ++i) {
        dst[i] = detail::narrow<T>(f16_bits_to_float(detail::load_le<std::uint16_t>(src + 2 * i)));
      }
      return;
    case Dtype::BF16:
      for (std::size_t i = 0; i < count; ++i) {
        dst[i] = detail::narrow<T>(bf16_bits_to_float(detail::load_le<std::uint16_t>(src + 2 * i)));
      }
      return;
    default:
      throw unsupported_dtype_error(mhaprune::detail::message(
          context, context.empty() ? "" : ": ", "cannot convert dtype ", to_string(dtype),
          " to floating point (only F64, F32, F16 and BF16 can be converted; other dtypes are copied "
          "through)"));
  }
}

/// Encodes `count` values of `T` into `dtype`, little-endian, at `dst` (any alignment). Narrowing
/// rounds to nearest even (float → BF16 exactly as PyTorch's `.to(torch.bfloat16)`).
///
/// @tparam T float, double, Eigen::half or Eigen::bfloat16.
/// @throws unsupported_dtype_error if `dtype` is not F64, F32, F16 or BF16.
template <typename T>
void encode(const T* src, std::size_t count, Dtype dtype, std::byte* dst, std::string_view context = "") {
  static_assert(detail::is_io_scalar_v<T>, "encode: T must be float, double, Eigen::half or Eigen::bfloat16");
  if (dtype == dtype_of_v<T>) {
    if (count != 0) std::memcpy(dst, src, count * sizeof(T));
    return;
  }
  switch (dtype) {
    case Dtype::F64:
      for (std::size_t i = 0; i < count; ++i)
        detail::store_le(dst + 8 * i, detail::convert_scalar<double>(src[i]));
      return;
    case Dtype::F32:
      for (std::size_t i = 0; i < count; ++i)
        detail::store_le(dst + 4 * i, detail::convert_scalar<float>(src[i]));
      return;
    case Dtype::F16:
      for (std::size_t i = 0; i < count; ++i) {
        detail::store_le(dst + 2 * i, detail::bits_of(detail::convert_scalar<Eigen::half>(src[i])));
      }
      return;
    case Dtype::BF16:
      for (std::size_t i = 0; i < count; ++i) {
        detail::store_le(dst + 2 * i, detail::bits_of(detail::convert_scalar<Eigen::bfloat16>(src[i])));
      }
      return;
    default:
      throw unsupported_dtype_error(
          mhaprune::detail::message(context, context.empty() ? "" : ": ",
                                    "cannot store floating-point data as dtype ", to_string(dtype),
                                    " (only F64, F32, F16 and BF16 can be written from Eigen data; raw bytes "
                                    "of any dtype can be copied)"));
  }
}

}  // namespace mhaprune::io
