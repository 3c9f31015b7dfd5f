// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Block encoders with ggml's reference rules (quantize_row_*_ref in ggml/src/ggml-quants.c): the
// deterministic ones llama-quantize uses for these types when no importance matrix is given
// (Q8_0 and Q8_1 always). Same float operations in the same order, so the bytes are identical to
// ggml's; see ggml_float_to_byte for the one place where ggml's C is undefined (degenerate blocks).
// `x` holds nb * 32 floats, `y` receives nb whole blocks.
//
// Multiply-add contraction: Q4_0/Q4_1/Q5_0/Q5_1 compute `x*id + 8.5f` (or `+ 0.5f`, `+ 16.5f`) as a
// rounded product then an add, and truncate; fusing the two (GCC in GNU mode does so by default on
// an FMA target, e.g. -march=native) rounds once and can move a value across a truncation boundary.
// The reference semantics is the unfused one, so contraction is turned off here: GCC through an
// optimize pragma around these functions, clang through `fp contract(off)` in each body (honoured
// unless -ffp-contract=fast is given). A ggml built by GCC with -march=native may therefore differ
// from these bytes (and from a ggml built without FMA) in rare boundary cases; Q8_0/Q8_1 have no
// add and never differ.

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "mhaprune/io/detail/ggml_scalar.hpp"

#if defined(__clang__)
#define MHAPRUNE_GGML_NO_CONTRACT _Pragma("clang fp contract(off)")
#else
#define MHAPRUNE_GGML_NO_CONTRACT
#endif

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC push_options
#pragma GCC optimize("fp-contract=off")
#endif

namespace mhaprune::io::detail {

/// ggml's `(int8_t)v`, see ggml_float_to_byte.
inline int ggml_float_to_int8(float v) noexcept { return static_cast<std::int8_t>(ggml_float_to_byte(v)); }

/// ggml's `qs = (uint8_t)q0; qs |= (uint8_t)q1 << 4;` stored in a byte: q0 is at most 15 but may
/// be negative (degenerate blocks only), so both are first cut to 8 bits as ggml's uint8_t does.
inline std::uint8_t pack_nibbles(int q0, int q1) noexcept {
  return static_cast<std::uint8_t>(
      ((static_cast<unsigned>(q0) & 0xFFu) | ((static_cast<unsigned>(q1) & 0xFFu) << 4)) & 0xFFu);
}

/// The element of largest magnitude (the first one on ties) and that magnitude, as the Q4_0/Q5_0
/// rules pick it: `if (amax < |v|)` so NaNs are never picked.
inline void signed_absmax(const float* x, float& amax, float& max) noexcept {
  amax = 0.0f;
  max = 0.0f;
  for (int j = 0; j < 32; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      max = x[j];
    }
  }
}

/// The smallest and largest element, as the Q4_1/Q5_1 rules find them (`v < min`, `v > max`
/// starting from +-FLT_MAX).
inline void min_max(const float* x, float& min, float& max) noexcept {
  min = std::numeric_limits<float>::max();
  max = -std::numeric_limits<float>::max();
  for (int j = 0; j < 32; ++j) {
    if (x[j] < min) min = x[j];
    if (x[j] > max) max = x[j];
  }
}

/// Q4_0: d = max / -8 (max = the element of largest magnitude, sign kept), q = min(15, trunc(x/d + 8.5)).
inline void quant_q4_0(const float* x, std::byte* y, std::int64_t nb) noexcept {
  MHAPRUNE_GGML_NO_CONTRACT
  for (std::int64_t i = 0; i < nb; ++i, x += 32, y += 18) {
    float amax;
    float max;
    signed_absmax(x, amax, max);
    const float d = max / -8.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_le16(y, ggml_fp32_to_fp16(d));
    for (int j = 0; j < 16; ++j) {
      const int q0 = std::min(15, ggml_float_to_int8(x[j] * id + 8.5f));
      const int q1 = std::min(15, ggml_float_to_int8(x[j + 16] * id + 8.5f));
      // ggml stores q0 in a uint8_t and ORs in q1 << 4: keep the low 8 bits of both.
      y[2 + j] = static_cast<std::byte>(pack_nibbles(q0, q1));
    }
  }
}

/// Q4_1: d = (max - min) / 15, m = min, q = min(15, trunc((x - min)/d + 0.5)).
inline void quant_q4_1(const float* x, std::byte* y, std::int64_t nb) noexcept {
  MHAPRUNE_GGML_NO_CONTRACT
  for (std::int64_t i = 0; i < nb; ++i, x += 32, y += 20) {
    float min;
    float max;
    min_max(x, min, max);
    const float d = (max - min) / 15.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_le16(y, ggml_fp32_to_fp16(d));
    put_le16(y + 2, ggml_fp32_to_fp16(min));
    for (int j = 0; j < 16; ++j) {
      const int q0 = std::min(15, ggml_float_to_int8((x[j] - min) * id + 0.5f));
      const int q1 = std::min(15, ggml_float_to_int8((x[j + 16] - min) * id + 0.5f));
      y[4 + j] = static_cast<std::byte>(pack_nibbles(q0, q1));
    }
  }
}

/// Q5_0: d = max / -16, q = min(31, trunc(x/d + 16.5)); bit 4 of element j goes to bit j of qh.
inline void quant_q5_0(const float* x, std::byte* y, std::int64_t nb) noexcept {
  MHAPRUNE_GGML_NO_CONTRACT
  for (std::int64_t i = 0; i < nb; ++i, x += 32, y += 22) {
    float amax;
    float max;
    signed_absmax(x, amax, max);
    const float d = max / -16.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_le16(y, ggml_fp32_to_fp16(d));
    std::uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const unsigned q0 = static_cast<unsigned>(std::min(31, ggml_float_to_int8(x[j] * id + 16.5f))) & 0xFFu;
      const unsigned q1 =
          static_cast<unsigned>(std::min(31, ggml_float_to_int8(x[j + 16] * id + 16.5f))) & 0xFFu;
      y[6 + j] = static_cast<std::byte>((q0 & 0x0Fu) | ((q1 & 0x0Fu) << 4));
      qh |= ((q0 & 0x10u) >> 4) << j;
      qh |= ((q1 & 0x10u) >> 4) << (j + 16);
    }
    put_le32(y + 2, qh);
  }
}

/// Q5_1: d = (max - min) / 31, m = min, q = trunc((x - min)/d + 0.5) (no clamp, as ggml).
inline void quant_q5_1(const float* x, std::byte* y, std::int64_t nb) noexcept {
  MHAPRUNE_GGML_NO_CONTRACT
  for (std::int64_t i = 0; i < nb; ++i, x += 32, y += 24) {
    float min;
    float max;
    min_max(x, min, max);
    const float d = (max - min) / 31.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_le16(y, ggml_fp32_to_fp16(d));
    put_le16(y + 2, ggml_fp32_to_fp16(min));
    std::uint32_t qh = 0;
    for (int j = 0; j < 16; ++j) {
      const unsigned q0 = ggml_float_to_byte((x[j] - min) * id + 0.5f);
      const unsigned q1 = ggml_float_to_byte((x[j + 16] - min) * id + 0.5f);
      y[8 + j] = static_cast<std::byte>((q0 & 0x0Fu) | ((q1 & 0x0Fu) << 4));
      qh |= ((q0 & 0x10u) >> 4) << j;
      qh |= ((q1 & 0x10u) >> 4) << (j + 16);
    }
    put_le32(y + 4, qh);
  }
}

/// The amax of a Q8 block as ggml's MAX(amax, |v|) finds it (`a > b ? a : b`, so a NaN element is
/// kept only until the next element).
inline float q8_amax(const float* x) noexcept {
  float amax = 0.0f;
  for (int j = 0; j < 32; ++j) {
    const float a = std::fabs(x[j]);
    amax = amax > a ? amax : a;
  }
  return amax;
}

/// Q8_0: d = amax / 127 (stored f16), id = d ? 1/d : 0, q = roundf(x * id) (half away from zero).
inline void quant_q8_0(const float* x, std::byte* y, std::int64_t nb) noexcept {
  MHAPRUNE_GGML_NO_CONTRACT
  for (std::int64_t i = 0; i < nb; ++i, x += 32, y += 34) {
    const float d = q8_amax(x) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_le16(y, ggml_fp32_to_fp16(d));
    for (int j = 0; j < 32; ++j) y[2 + j] = static_cast<std::byte>(ggml_float_to_byte(std::round(x[j] * id)));
  }
}

/// Q8_1: as Q8_0, plus s = f16(sum(q) * d).
inline void quant_q8_1(const float* x, std::byte* y, std::int64_t nb) noexcept {
  MHAPRUNE_GGML_NO_CONTRACT
  for (std::int64_t i = 0; i < nb; ++i, x += 32, y += 36) {
    const float d = q8_amax(x) / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    put_le16(y, ggml_fp32_to_fp16(d));
    int sum = 0;
    for (int j = 0; j < 32; ++j) {
      const std::uint8_t q = ggml_float_to_byte(std::round(x[j] * id));
      y[4 + j] = static_cast<std::byte>(q);
      sum += static_cast<std::int8_t>(q);
    }
    put_le16(y + 2, ggml_fp32_to_fp16(static_cast<float>(sum) * d));
  }
}

}  // namespace mhaprune::io::detail

#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC pop_options
#endif

#undef MHAPRUNE_GGML_NO_CONTRACT
