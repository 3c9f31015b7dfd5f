// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Decoding ggml tensor rows to float and encoding float rows with ggml's reference rules: what a
// head pruner needs when it cannot copy whole blocks (a 256-block O whose dropped columns are not
// 256-aligned is dequantized and requantized, as llama-quantize itself falls back to Q5_0/Q5_1/Q8_0)
// and to read or write F16/BF16 tensors. Every function here gives the bits ggml's portable C
// reference code gives (ggml-quants.c dequantize_row_* and quantize_row_*_ref, ggml-impl.h
// conversions); see detail/ggml_dequant.hpp for the one caveat (ggml built with multiply-add
// contraction rounds once where the reference rounds twice, 1 ulp, only on types with a min).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "mhaprune/error.hpp"
#include "mhaprune/io/detail/ggml_dequant.hpp"
#include "mhaprune/io/detail/ggml_quantize.hpp"
#include "mhaprune/io/detail/ggml_scalar.hpp"
#include "mhaprune/io/ggml_type.hpp"

namespace mhaprune::io {

namespace detail {

using DequantFn = void (*)(const std::byte*, float*, std::int64_t);
using QuantFn = void (*)(const float*, std::byte*, std::int64_t);

inline void dequant_f32(const std::byte* x, float* y, std::int64_t n) noexcept {
  std::memcpy(y, x, static_cast<std::size_t>(n) * sizeof(float));  // bit for bit, NaN payloads too
}
inline void dequant_f16(const std::byte* x, float* y, std::int64_t n) noexcept {
  for (std::int64_t i = 0; i < n; ++i) y[i] = ggml_fp16_to_fp32(le16(x + 2 * i));
}
inline void dequant_bf16(const std::byte* x, float* y, std::int64_t n) noexcept {
  for (std::int64_t i = 0; i < n; ++i) y[i] = ggml_bf16_to_fp32(le16(x + 2 * i));
}
inline void quant_f32(const float* x, std::byte* y, std::int64_t n) noexcept {
  std::memcpy(y, x, static_cast<std::size_t>(n) * sizeof(float));
}
inline void quant_f16(const float* x, std::byte* y, std::int64_t n) noexcept {
  for (std::int64_t i = 0; i < n; ++i) put_le16(y + 2 * i, ggml_fp32_to_fp16(x[i]));
}
inline void quant_bf16(const float* x, std::byte* y, std::int64_t n) noexcept {
  for (std::int64_t i = 0; i < n; ++i) put_le16(y + 2 * i, ggml_fp32_to_bf16(x[i]));
}

/// The decoder of `type`, called with the number of blocks (elements for F32/F16/BF16), or nullptr.
inline DequantFn dequantizer(GgmlType type) noexcept {
  switch (type) {
    case GgmlType::F32:
      return dequant_f32;
    case GgmlType::F16:
      return dequant_f16;
    case GgmlType::BF16:
      return dequant_bf16;
    case GgmlType::Q4_0:
      return dequant_q4_0;
    case GgmlType::Q4_1:
      return dequant_q4_1;
    case GgmlType::Q5_0:
      return dequant_q5_0;
    case GgmlType::Q5_1:
      return dequant_q5_1;
    case GgmlType::Q8_0:
      return dequant_q8_0;
    case GgmlType::Q8_1:
      return dequant_q8_1;
    case GgmlType::Q2_K:
      return dequant_q2_k;
    case GgmlType::Q3_K:
      return dequant_q3_k;
    case GgmlType::Q4_K:
      return dequant_q4_k;
    case GgmlType::Q5_K:
      return dequant_q5_k;
    case GgmlType::Q6_K:
      return dequant_q6_k;
    case GgmlType::Q8_K:
      return dequant_q8_k;
    case GgmlType::IQ4_NL:
      return dequant_iq4_nl;
    case GgmlType::IQ4_XS:
      return dequant_iq4_xs;
    case GgmlType::MXFP4:
      return dequant_mxfp4;
    default:
      return nullptr;
  }
}

/// The encoder of `type`, called like dequantizer's, or nullptr.
inline QuantFn quantizer(GgmlType type) noexcept {
  switch (type) {
    case GgmlType::F32:
      return quant_f32;
    case GgmlType::F16:
      return quant_f16;
    case GgmlType::BF16:
      return quant_bf16;
    case GgmlType::Q4_0:
      return quant_q4_0;
    case GgmlType::Q4_1:
      return quant_q4_1;
    case GgmlType::Q5_0:
      return quant_q5_0;
    case GgmlType::Q5_1:
      return quant_q5_1;
    case GgmlType::Q8_0:
      return quant_q8_0;
    case GgmlType::Q8_1:
      return quant_q8_1;
    default:
      return nullptr;
  }
}

/// "q4_K (id 12)", or "id 4" for an id ggml does not define.
inline std::string ggml_type_label(GgmlType type) {
  const auto id = static_cast<std::uint32_t>(type);
  const GgmlTypeTraits* t = find_ggml_type(id);
  return t ? mhaprune::detail::message(t->name, " (id ", id, ')') : mhaprune::detail::message("id ", id);
}

/// Checks `n` against the block size of a supported `type`; returns the number of blocks (or
/// elements for plain types).
inline std::int64_t whole_blocks(GgmlType type, std::int64_t n, const char* what) {
  const std::int64_t block = ggml_traits(type).block_size;
  if (n < 0 || n % block != 0)
    throw mhaprune::error(mhaprune::detail::message(what, ": ", n, " elements of ggml type ",
                                                    ggml_type_label(type), " are not a whole number of ",
                                                    block, "-element blocks"));
  return n / block;
}

}  // namespace detail

/// True when dequantize_row can decode `type`: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1,
/// Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, Q8_K, IQ4_NL, IQ4_XS, MXFP4. Not (yet): the IQ1/IQ2/IQ3 grids,
/// TQ1_0/TQ2_0, NVFP4, Q1_0, Q2_0 and the integer types.
inline bool can_dequantize(GgmlType type) noexcept { return detail::dequantizer(type) != nullptr; }

/// Decodes `n` consecutive elements of a ggml tensor (a row or several whole rows: n a multiple of
/// the block size) from `src` (n / block_size * type_size bytes, any alignment, little-endian as in
/// GGUF) into `dst` (n floats), with the arithmetic of ggml's dequantize_row_* reference, so the
/// floats are bit-identical to ggml's (F16 and BF16 conversions are exact; a NaN half comes out
/// quiet, as from ggml; F32 is copied bit for bit). `src` and `dst` must not overlap.
/// @throws unsupported_dtype_error naming the type when can_dequantize(type) is false;
///         mhaprune::error when n < 0 or n is not a multiple of the type's block size.
inline void dequantize_row(GgmlType type, const std::byte* src, float* dst, std::int64_t n) {
  const detail::DequantFn fn = detail::dequantizer(type);
  if (fn == nullptr)
    throw unsupported_dtype_error(mhaprune::detail::message(
        "dequantize_row: cannot decode ggml type ", detail::ggml_type_label(type),
        ": no decoder for it (supported: f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q8_1 q2_K q3_K q4_K q5_K q6_K "
        "q8_K iq4_nl iq4_xs mxfp4)"));
  const std::int64_t units = detail::whole_blocks(type, n, "dequantize_row");
  if (units > 0) fn(src, dst, units);
}

/// True when quantize_row can encode `type`: F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q8_1.
inline bool can_quantize(GgmlType type) noexcept { return detail::quantizer(type) != nullptr; }

/// Encodes `n` floats (a whole number of blocks) from `src` into `dst` (n / block_size * type_size
/// bytes) with ggml's reference rule for the type, bit-identical to ggml's:
///  - F16: round to nearest even, overflow to infinity, NaN to 0x7E00 with its sign (GGML_FP32_TO_FP16);
///  - BF16: round to nearest even, NaN keeps sign and top payload and gets the quiet bit (GGML_FP32_TO_BF16);
///  - Q8_0 (quantize_row_q8_0_ref): per 32-block amax, d = amax/127 stored as f16, id = d ? 1/d : 0,
///    q = roundf(x * id); Q8_1 the same plus s = f16(sum(q) * d);
///  - Q4_0/Q4_1/Q5_0/Q5_1: their *_ref rules, which llama-quantize uses when given no imatrix.
/// Non-finite inputs give whatever ggml's code gives on x86-64 (see detail::ggml_float_to_byte).
/// @throws unsupported_dtype_error naming the type when can_quantize(type) is false;
///         mhaprune::error when n < 0 or n is not a multiple of the type's block size.
inline void quantize_row(GgmlType type, const float* src, std::byte* dst, std::int64_t n) {
  const detail::QuantFn fn = detail::quantizer(type);
  if (fn == nullptr)
    throw unsupported_dtype_error(mhaprune::detail::message(
        "quantize_row: cannot encode ggml type ", detail::ggml_type_label(type),
        ": no reference encoder for it here (supported: f32 f16 bf16 q4_0 q4_1 q5_0 q5_1 q8_0 q8_1)"));
  const std::int64_t units = detail::whole_blocks(type, n, "quantize_row");
  if (units > 0) fn(src, dst, units);
}

}  // namespace mhaprune::io
