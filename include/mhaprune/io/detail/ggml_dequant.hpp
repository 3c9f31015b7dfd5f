// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
#pragma once

// Block decoders, one per ggml type, each the arithmetic of ggml's reference dequantizer
// (dequantize_row_* in ggml/src/ggml-quants.c; block layouts in ggml-common.h) in the same order
// of float operations, so results are bit-identical to ggml's. `x` points at `nb` whole blocks, `y` at nb *
// block_size floats.
//
// Multiply-add contraction cannot change these results: in every "product + or - min" below the
// product is exact in float (an f16 scale has 11 significant bits; times a 6-bit sub-scale and a
// 5-bit quant that is at most 22 bits), so a fused multiply-add rounds the same sum once, exactly
// as the separate add does. ggml built with or without FMA contraction gives the same floats.
// (Q6_K's (d*scale)*q is two products, which no compiler reorders without -ffast-math.)

#include <cstddef>
#include <cstdint>

#include "mhaprune/io/detail/ggml_scalar.hpp"

namespace mhaprune::io::detail {

/// ggml's kvalues_iq4nl: the 16 non-uniform levels of IQ4_NL and IQ4_XS.
inline constexpr std::int8_t kIq4nlValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                                 1,    13,   25,  38,  53,  69,  89,  113};
/// ggml's kvalues_mxfp4: the E2M1 values, doubled.
inline constexpr std::int8_t kMxfp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

inline float half_at(const std::byte* p) noexcept { return ggml_fp16_to_fp32(le16(p)); }

// ---- 32-element blocks -------------------------------------------------------------------------

/// Q4_0 (18 bytes): d f16, qs[16]; element j is low nibble of qs[j], element j+16 the high one.
inline void dequant_q4_0(const std::byte* x, float* y, std::int64_t nb) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, x += 18, y += 32) {
    const float d = half_at(x);
    for (int j = 0; j < 16; ++j) {
      const std::uint8_t q = byte_at(x, 2 + j);
      y[j] = static_cast<float>((q & 0x0F) - 8) * d;
      y[j + 16] = static_cast<float>((q >> 4) - 8) * d;
    }
  }
}

/// Q4_1 (20 bytes): d f16, m f16, qs[16]; value q*d + m.
inline void dequant_q4_1(const std::byte* x, float* y, std::int64_t nb) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, x += 20, y += 32) {
    const float d = half_at(x);
    const float m = half_at(x + 2);
    for (int j = 0; j < 16; ++j) {
      const std::uint8_t q = byte_at(x, 4 + j);
      y[j] = static_cast<float>(q & 0x0F) * d + m;
      y[j + 16] = static_cast<float>(q >> 4) * d + m;
    }
  }
}

/// Q5_0 (22 bytes): d f16, qh u32 (bit j = fifth bit of element j), qs[16]; value (q - 16)*d.
inline void dequant_q5_0(const std::byte* x, float* y, std::int64_t nb) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, x += 22, y += 32) {
    const float d = half_at(x);
    const std::uint32_t qh = le32(x + 2);
    for (int j = 0; j < 16; ++j) {
      const std::uint8_t q = byte_at(x, 6 + j);
      const int lo = (q & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (q >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      y[j] = static_cast<float>(lo - 16) * d;
      y[j + 16] = static_cast<float>(hi - 16) * d;
    }
  }
}

/// Q5_1 (24 bytes): d f16, m f16, qh u32, qs[16]; value q*d + m.
inline void dequant_q5_1(const std::byte* x, float* y, std::int64_t nb) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, x += 24, y += 32) {
    const float d = half_at(x);
    const float m = half_at(x + 2);
    const std::uint32_t qh = le32(x + 4);
    for (int j = 0; j < 16; ++j) {
      const std::uint8_t q = byte_at(x, 8 + j);
      const int lo = (q & 0x0F) | static_cast<int>(((qh >> j) & 1u) << 4);
      const int hi = (q >> 4) | static_cast<int>(((qh >> (j + 16)) & 1u) << 4);
      y[j] = static_cast<float>(lo) * d + m;
      y[j + 16] = static_cast<float>(hi) * d + m;
    }
  }
}

/// Q8_0 (34 bytes): d f16, qs[32] int8; value q*d.
inline void dequant_q8_0(const std::byte* x, float* y, std::int64_t nb) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, x += 34, y += 32) {
    const float d = half_at(x);
    for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<std::int8_t>(byte_at(x, 2 + j))) * d;
  }
}

/// Q8_1 (36 bytes): d f16, s f16 (= d * sum of qs, unused here), qs[32] int8; value q*d. ggml's
/// CPU type table has no decoder for Q8_1 (it only holds activations); q*d is what the block means
/// and what its GPU decoders compute.
inline void dequant_q8_1(const std::byte* x, float* y, std::int64_t nb) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, x += 36, y += 32) {
    const float d = half_at(x);
    for (int j = 0; j < 32; ++j) y[j] = static_cast<float>(static_cast<std::int8_t>(byte_at(x, 4 + j))) * d;
  }
}

/// IQ4_NL (18 bytes): d f16, qs[16]; value d * kvalues_iq4nl[nibble].
inline void dequant_iq4_nl(const std::byte* x, float* y, std::int64_t nb) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, x += 18, y += 32) {
    const float d = half_at(x);
    for (int j = 0; j < 16; ++j) {
      const std::uint8_t q = byte_at(x, 2 + j);
      y[j] = d * static_cast<float>(kIq4nlValues[q & 0x0F]);
      y[j + 16] = d * static_cast<float>(kIq4nlValues[q >> 4]);
    }
  }
}

/// MXFP4 (17 bytes): e E8M0, qs[16]; value kvalues_mxfp4[nibble] * 2^(e-128).
inline void dequant_mxfp4(const std::byte* x, float* y, std::int64_t nb) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, x += 17, y += 32) {
    const float d = ggml_e8m0_to_fp32_half(byte_at(x, 0));
    for (int j = 0; j < 16; ++j) {
      const std::uint8_t q = byte_at(x, 1 + j);
      y[j] = static_cast<float>(kMxfp4Values[q & 0x0F]) * d;
      y[j + 16] = static_cast<float>(kMxfp4Values[q >> 4]) * d;
    }
  }
}

// ---- 256-element super-blocks ------------------------------------------------------------------

/// Q2_K (84 bytes): scales[16] (low nibble scale, high nibble min of each 16-element group),
/// qs[64] (2-bit quants), d f16, dmin f16. Group g covers elements 16g..16g+15; quants of the
/// 128-element half h, sub-column c (0..3, shift 2c) and group parity p come from
/// qs[32h + 16p + l] >> 2c. Value (d*scale)*q - (dmin*min).
inline void dequant_q2_k(const std::byte* x, float* y, std::int64_t nb) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, x += 84) {
    const std::byte* scales = x;
    const float d = half_at(x + 80);
    const float dmin = half_at(x + 82);
    int g = 0;
    for (int h = 0; h < 2; ++h) {
      const std::byte* q = x + 16 + 32 * h;
      for (int shift = 0; shift < 8; shift += 2) {
        for (int p = 0; p < 2; ++p, ++g) {
          const std::uint8_t sc = byte_at(scales, static_cast<std::size_t>(g));
          const float dl = d * static_cast<float>(sc & 0x0F);
          const float ml = dmin * static_cast<float>(sc >> 4);
          for (int l = 0; l < 16; ++l)
            *y++ = dl * static_cast<float>((byte_at(q, 16 * p + l) >> shift) & 3) - ml;
        }
      }
    }
  }
}

/// The 6-bit scale of group `g` (0..15) of a Q3_K block's scales[12]: its low 4 bits are a nibble
/// of bytes 0..7 (low nibbles for groups 0-7, high nibbles for 8-15), its high 2 bits come from
/// byte 8 + g%4 at bit 2*(g/4).
inline int q3_k_scale(const std::byte* scales, int g) noexcept {
  const std::uint8_t nibble_byte = byte_at(scales, static_cast<std::size_t>(g % 8));
  const int low = g < 8 ? (nibble_byte & 0x0F) : (nibble_byte >> 4);
  const int high = (byte_at(scales, static_cast<std::size_t>(8 + g % 4)) >> (2 * (g / 4))) & 3;
  return low | (high << 4);
}

/// Q3_K (110 bytes): hmask[32] (high bit, inverted: a clear bit subtracts 4), qs[64] (low 2 bits),
/// scales[12] (sixteen 6-bit scales, offset by 32), d f16. Value (d*(scale-32)) * (q - 4*!hbit).
inline void dequant_q3_k(const std::byte* x, float* y, std::int64_t nb) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, x += 110) {
    const std::byte* hmask = x;
    const std::byte* scales = x + 96;
    const float d_all = half_at(x + 108);
    int g = 0;
    int bit = 0;  // the hmask bit: one per (half, shift) pair, 0..7
    for (int h = 0; h < 2; ++h) {
      const std::byte* q = x + 32 + 32 * h;
      for (int shift = 0; shift < 8; shift += 2, ++bit) {
        for (int p = 0; p < 2; ++p, ++g) {
          const float dl = d_all * static_cast<float>(q3_k_scale(scales, g) - 32);
          for (int l = 0; l < 16; ++l) {
            const int low = (byte_at(q, 16 * p + l) >> shift) & 3;
            const bool high = ((byte_at(hmask, 16 * p + l) >> bit) & 1) != 0;
            *y++ = dl * static_cast<float>(low - (high ? 0 : 4));
          }
        }
      }
    }
  }
}

/// The 6-bit scale and min of sub-block `j` (0..7) of a Q4_K/Q5_K block's scales[12], as ggml's
/// get_scale_min_k4: sub-blocks 0-3 keep them in the low 6 bits of bytes j and j+4; sub-blocks
/// 4-7 in the nibbles of byte j+4 with their top 2 bits in the top bits of bytes j-4 and j.
inline void k4_scale_min(const std::byte* s, int j, int& scale, int& min) noexcept {
  const auto b = [s](int k) { return static_cast<int>(byte_at(s, static_cast<std::size_t>(k))); };
  if (j < 4) {
    scale = b(j) & 63;
    min = b(j + 4) & 63;
  } else {
    scale = (b(j + 4) & 0x0F) | ((b(j - 4) >> 6) << 4);
    min = (b(j + 4) >> 4) | ((b(j) >> 6) << 4);
  }
}

/// Q4_K (144 bytes): d f16, dmin f16, scales[12], qs[128]. Each 64 elements share 32 bytes of qs:
/// the low nibbles are sub-block 2k, the high nibbles 2k+1. Value (d*scale)*q - (dmin*min).
inline void dequant_q4_k(const std::byte* x, float* y, std::int64_t nb) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, x += 144) {
    const float d = half_at(x);
    const float dmin = half_at(x + 2);
    const std::byte* scales = x + 4;
    for (int k = 0; k < 4; ++k) {
      const std::byte* q = x + 16 + 32 * k;
      int sc = 0;
      int m = 0;
      k4_scale_min(scales, 2 * k, sc, m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(m);
      k4_scale_min(scales, 2 * k + 1, sc, m);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) *y++ = d1 * static_cast<float>(byte_at(q, l) & 0x0F) - m1;
      for (int l = 0; l < 32; ++l) *y++ = d2 * static_cast<float>(byte_at(q, l) >> 4) - m2;
    }
  }
}

/// Q5_K (176 bytes): d f16, dmin f16, scales[12], qh[32], qs[128]. As Q4_K, plus a fifth bit:
/// sub-block s takes bit s of qh[l]. Value (d*scale)*q - (dmin*min).
inline void dequant_q5_k(const std::byte* x, float* y, std::int64_t nb) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, x += 176) {
    const float d = half_at(x);
    const float dmin = half_at(x + 2);
    const std::byte* scales = x + 4;
    const std::byte* qh = x + 16;
    for (int k = 0; k < 4; ++k) {
      const std::byte* ql = x + 48 + 32 * k;
      int sc = 0;
      int m = 0;
      k4_scale_min(scales, 2 * k, sc, m);
      const float d1 = d * static_cast<float>(sc);
      const float m1 = dmin * static_cast<float>(m);
      k4_scale_min(scales, 2 * k + 1, sc, m);
      const float d2 = d * static_cast<float>(sc);
      const float m2 = dmin * static_cast<float>(m);
      for (int l = 0; l < 32; ++l) {
        const int q = (byte_at(ql, l) & 0x0F) | (((byte_at(qh, l) >> (2 * k)) & 1) << 4);
        *y++ = d1 * static_cast<float>(q) - m1;
      }
      for (int l = 0; l < 32; ++l) {
        const int q = (byte_at(ql, l) >> 4) | (((byte_at(qh, l) >> (2 * k + 1)) & 1) << 4);
        *y++ = d2 * static_cast<float>(q) - m2;
      }
    }
  }
}

/// Q6_K (210 bytes): ql[128] (low 4 bits), qh[64] (high 2 bits), scales[16] int8, d f16. In each
/// 128-element half, element 32r + l (r = 0..3) takes nibble r/2 of ql[64h + 32(r%2) + l] and bits
/// 2r..2r+1 of qh[32h + l], group 16-wide scale scales[8h + 2r + l/16]. Value (d*scale)*(q - 32).
inline void dequant_q6_k(const std::byte* x, float* y, std::int64_t nb) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, x += 210) {
    const float d = half_at(x + 208);
    for (int h = 0; h < 2; ++h, y += 128) {
      const std::byte* ql = x + 64 * h;
      const std::byte* qh = x + 128 + 32 * h;
      const std::byte* sc = x + 192 + 8 * h;
      for (int r = 0; r < 4; ++r) {
        for (int l = 0; l < 32; ++l) {
          const int low = (byte_at(ql, 32 * (r % 2) + l) >> (4 * (r / 2))) & 0x0F;
          const int high = (byte_at(qh, l) >> (2 * r)) & 3;
          const float scale = static_cast<float>(static_cast<std::int8_t>(byte_at(sc, 2 * r + l / 16)));
          y[32 * r + l] = d * scale * static_cast<float>((low | (high << 4)) - 32);
        }
      }
    }
  }
}

/// IQ4_XS (136 bytes): d f16, scales_h u16, scales_l[4], qs[128]. Sub-block b (32 elements) has
/// the 6-bit scale nibble b%2 of scales_l[b/2] | bits 2b..2b+1 of scales_h << 4, offset by 32;
/// its 16 bytes of qs hold elements l (low nibble) and l+16 (high). Value (d*(ls-32)) * kvalue.
inline void dequant_iq4_xs(const std::byte* x, float* y, std::int64_t nb) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, x += 136) {
    const float d = half_at(x);
    const std::uint16_t scales_h = le16(x + 2);
    for (int b = 0; b < 8; ++b, y += 32) {
      const int ls = ((byte_at(x, 4 + static_cast<std::size_t>(b / 2)) >> (4 * (b % 2))) & 0x0F) |
                     (((scales_h >> (2 * b)) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      const std::byte* qs = x + 8 + 16 * b;
      for (int j = 0; j < 16; ++j) {
        y[j] = dl * static_cast<float>(kIq4nlValues[byte_at(qs, j) & 0x0F]);
        y[j + 16] = dl * static_cast<float>(kIq4nlValues[byte_at(qs, j) >> 4]);
      }
    }
  }
}

/// Q8_K (292 bytes): d f32, qs[256] int8, bsums[16] int16 (unused here); value d*q.
inline void dequant_q8_k(const std::byte* x, float* y, std::int64_t nb) noexcept {
  for (std::int64_t i = 0; i < nb; ++i, x += 292) {
    const float d = float_from_bits(le32(x));
    for (int j = 0; j < 256; ++j) *y++ = d * static_cast<float>(static_cast<std::int8_t>(byte_at(x, 4 + j)));
  }
}

}  // namespace mhaprune::io::detail
