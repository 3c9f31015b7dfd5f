#!/usr/bin/python3
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""Writes the fixtures of tests/test_ggml_quants.cpp: ggml blocks and the floats they stand for,
and float rows with the bytes ggml's reference quantizers make of them.

Everything is computed here with numpy only, written from ggml's block layouts (ggml-common.h) and
the arithmetic of its reference code (ggml-quants.c dequantize_row_* / quantize_row_*_ref,
ggml-impl.h conversions), sharing no code with the C++ under test. Float arithmetic is done in
float32 one operation at a time, in ggml's order, so every float is the one ggml computes.

Usage:  /usr/bin/python3 tests/data/ggml_blocks/make_ggml_blocks.py [--out DIR]
Deterministic (fixed seed): rerunning writes identical files. Files, little-endian:
  <type>.blocks      raw blocks                    <type>.f32     the decoded floats
  quant_<type>.f32   float rows to encode          quant_<type>.bin  the encoded bytes
"""

import argparse
import os

import numpy as np

F32 = np.float32
U32 = np.uint32
FLT_MAX = np.finfo(np.float32).max

KVALUES_IQ4NL = np.array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113],
                         dtype=np.int64)
KVALUES_MXFP4 = np.array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12], dtype=np.int64)

# ---------------------------------------------------------------- scalar conversions


def f16_to_f32(h):
    """uint16 array -> float32 array, exact; NaN payload kept, quiet bit set (as ggml)."""
    h = np.asarray(h, dtype=np.uint16)
    out = h.view(np.float16).astype(np.float32)
    bits = out.view(np.uint32).copy()
    nan = ((h & 0x7C00) == 0x7C00) & ((h & 0x03FF) != 0)
    sign = (h.astype(np.uint32) & 0x8000) << 16
    bits[nan] = sign[nan] | 0x7F800000 | ((h[nan].astype(np.uint32) & 0x3FF) << 13) | 0x00400000
    return bits.view(np.float32)


def f32_to_f16(x):
    """float32 array -> uint16 array: numpy's IEEE round-to-nearest-even; NaN -> sign|0x7E00."""
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        h = x.astype(np.float16).view(np.uint16).copy()
    nan = np.isnan(x)
    sign = ((x.view(np.uint32) >> 16) & 0x8000).astype(np.uint16)
    h[nan] = sign[nan] | 0x7E00
    return h


def f32_to_bf16(x):
    """float32 array -> uint16: keep the top 16 bits, round the dropped 16 to nearest even;
    a NaN keeps sign and top bits and gets the quiet bit 0x40."""
    u = np.asarray(x, dtype=np.float32).view(np.uint32).astype(np.int64)
    upper = u >> 16
    lower = u & 0xFFFF
    up = (lower > 0x8000) | ((lower == 0x8000) & ((upper & 1) == 1))
    out = (upper + up.astype(np.int64)) & 0xFFFF
    nan = (u & 0x7FFFFFFF) > 0x7F800000
    out[nan] = upper[nan] | 0x40
    return out.astype(np.uint16)


def x86_int32(r):
    """C's float -> integer conversion as x86-64 does it (cvttss2si): truncate; NaN or out of the
    int32 range gives INT32_MIN. Returns int64 values."""
    r = np.asarray(r, dtype=np.float64)
    ok = (r >= -2147483648.0) & (r < 2147483648.0)
    t = np.where(ok, np.trunc(np.where(ok, r, 0.0)), -2147483648.0)
    return t.astype(np.int64)


def low_byte(i):
    return (np.asarray(i, dtype=np.int64) & 0xFF).astype(np.int64)


def as_int8(i):
    b = low_byte(i)
    return np.where(b >= 128, b - 256, b)


def roundf(x):
    """C roundf: half away from zero (float64 holds x + 0.5 exactly for any float32 x that is
    not already an integer)."""
    x = np.asarray(x, dtype=np.float64)
    return np.trunc(x + np.copysign(0.5, x))


def le_u16(b, off):
    return b[:, off].astype(np.uint32) | (b[:, off + 1].astype(np.uint32) << 8)


def le_u32(b, off):
    return le_u16(b, off) | (le_u16(b, off + 2) << 16)


def half_col(b, off):
    return f16_to_f32(le_u16(b, off).astype(np.uint16))[:, None]


# ---------------------------------------------------------------- decoders (nb, bytes) -> (nb, n)


def dec_q4_0(b):
    d = half_col(b, 0)
    qs = b[:, 2:18].astype(np.int64)
    q = np.concatenate([(qs & 15) - 8, (qs >> 4) - 8], axis=1)
    return q.astype(F32) * d


def dec_q4_1(b):
    d, m = half_col(b, 0), half_col(b, 2)
    qs = b[:, 4:20].astype(np.int64)
    q = np.concatenate([qs & 15, qs >> 4], axis=1)
    return q.astype(F32) * d + m


def fifth_bits(qh):
    """Bit e of the u32 qh for e = 0..31: the fifth bit of element e."""
    return ((qh[:, None].astype(np.int64) >> np.arange(32)) & 1)


def dec_q5_0(b):
    d = half_col(b, 0)
    qh = fifth_bits(le_u32(b, 2))
    qs = b[:, 6:22].astype(np.int64)
    q = np.concatenate([qs & 15, qs >> 4], axis=1) | (qh << 4)
    return (q - 16).astype(F32) * d


def dec_q5_1(b):
    d, m = half_col(b, 0), half_col(b, 2)
    qh = fifth_bits(le_u32(b, 4))
    qs = b[:, 8:24].astype(np.int64)
    q = np.concatenate([qs & 15, qs >> 4], axis=1) | (qh << 4)
    return q.astype(F32) * d + m


def dec_q8_0(b):
    return b[:, 2:34].view(np.int8).astype(F32) * half_col(b, 0)


def dec_q8_1(b):
    return b[:, 4:36].view(np.int8).astype(F32) * half_col(b, 0)


def dec_iq4_nl(b):
    d = half_col(b, 0)
    qs = b[:, 2:18].astype(np.int64)
    idx = np.concatenate([qs & 15, qs >> 4], axis=1)
    return d * KVALUES_IQ4NL[idx].astype(F32)


def dec_mxfp4(b):
    e = b[:, 0].astype(np.int64)
    d = np.ldexp(F32(1.0), (e - 128).astype(np.int32)).astype(F32)[:, None]  # 2^(e-128), exact
    qs = b[:, 1:17].astype(np.int64)
    idx = np.concatenate([qs & 15, qs >> 4], axis=1)
    return KVALUES_MXFP4[idx].astype(F32) * d


# Super-block element e = 128*h + 32*c + 16*p + l of Q2_K/Q3_K (h half, c 2-bit column, p parity).
E = np.arange(256)
H, C, P, L = E // 128, (E % 128) // 32, (E % 32) // 16, E % 16


def dec_q2_k(b):
    scales = b[:, 0:16].astype(np.int64)
    qs = b[:, 16:80].astype(np.int64)
    d, dmin = half_col(b, 80), half_col(b, 82)
    q = (qs[:, 32 * H + 16 * P + L] >> (2 * C)) & 3
    sc = scales[:, E // 16]
    dl = d * (sc & 15).astype(F32)
    ml = dmin * (sc >> 4).astype(F32)
    return dl * q.astype(F32) - ml


def q3_k_scales(raw):
    """The sixteen 6-bit Q3_K scales, unpacked as ggml does: three little-endian u32 words
    a0 a1 tmp, four new words of 4 bytes each."""
    a0, a1, tmp = (raw[:, 4 * k:4 * k + 4].copy().view("<u4")[:, 0].astype(np.int64) for k in range(3))
    km1, km2 = 0x03030303, 0x0F0F0F0F
    w = [
        (a0 & km2) | (((tmp >> 0) & km1) << 4),
        (a1 & km2) | (((tmp >> 2) & km1) << 4),
        ((a0 >> 4) & km2) | (((tmp >> 4) & km1) << 4),
        ((a1 >> 4) & km2) | (((tmp >> 6) & km1) << 4),
    ]
    words = np.stack([x & 0xFFFFFFFF for x in w], axis=1).astype("<u4")
    return words.view(np.uint8).reshape(raw.shape[0], 16).astype(np.int64)


def dec_q3_k(b):
    hmask = b[:, 0:32].astype(np.int64)
    qs = b[:, 32:96].astype(np.int64)
    scales = q3_k_scales(b[:, 96:108])
    d = half_col(b, 108)
    low = (qs[:, 32 * H + 16 * P + L] >> (2 * C)) & 3
    high = (hmask[:, 16 * P + L] >> (4 * H + C)) & 1
    q = low - np.where(high == 1, 0, 4)
    dl = d * (scales[:, E // 16] - 32).astype(F32)
    return dl * q.astype(F32)


def k4_scales_mins(raw):
    """Eight 6-bit scales and mins of a Q4_K/Q5_K scales[12] (ggml's get_scale_min_k4)."""
    s = raw.astype(np.int64)
    sc = np.empty((s.shape[0], 8), dtype=np.int64)
    mn = np.empty_like(sc)
    for j in range(8):
        if j < 4:
            sc[:, j] = s[:, j] & 63
            mn[:, j] = s[:, j + 4] & 63
        else:
            sc[:, j] = (s[:, j + 4] & 15) | ((s[:, j - 4] >> 6) << 4)
            mn[:, j] = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
    return sc, mn


SUB = E // 32  # sub-block of 32 (Q4_K, Q5_K)


def dec_q4_k(b):
    d, dmin = half_col(b, 0), half_col(b, 2)
    sc, mn = k4_scales_mins(b[:, 4:16])
    qs = b[:, 16:144].astype(np.int64)
    q = (qs[:, 32 * (SUB // 2) + E % 32] >> (4 * (SUB % 2))) & 15
    return (d * sc[:, SUB].astype(F32)) * q.astype(F32) - dmin * mn[:, SUB].astype(F32)


def dec_q5_k(b):
    d, dmin = half_col(b, 0), half_col(b, 2)
    sc, mn = k4_scales_mins(b[:, 4:16])
    qh = b[:, 16:48].astype(np.int64)
    qs = b[:, 48:176].astype(np.int64)
    q = ((qs[:, 32 * (SUB // 2) + E % 32] >> (4 * (SUB % 2))) & 15) | (((qh[:, E % 32] >> SUB) & 1) << 4)
    return (d * sc[:, SUB].astype(F32)) * q.astype(F32) - dmin * mn[:, SUB].astype(F32)


def dec_q6_k(b):
    ql = b[:, 0:128].astype(np.int64)
    qh = b[:, 128:192].astype(np.int64)
    sc = b[:, 192:208].view(np.int8).astype(np.int64)
    d = half_col(b, 208)
    r, l = (E % 128) // 32, E % 32
    low = (ql[:, 64 * H + 32 * (r % 2) + l] >> (4 * (r // 2))) & 15
    high = (qh[:, 32 * H + l] >> (2 * r)) & 3
    q = (low | (high << 4)) - 32
    return (d * sc[:, E // 16].astype(F32)) * q.astype(F32)


def dec_iq4_xs(b):
    d = half_col(b, 0)
    sh = le_u16(b, 2).astype(np.int64)[:, None]
    sl = b[:, 4:8].astype(np.int64)
    qs = b[:, 8:136].astype(np.int64)
    blk, j = E // 32, E % 32
    ls = ((sl[:, blk // 2] >> (4 * (blk % 2))) & 15) | (((sh >> (2 * blk)) & 3) << 4)
    idx = (qs[:, 16 * blk + j % 16] >> (4 * (j // 16))) & 15
    return (d * (ls - 32).astype(F32)) * KVALUES_IQ4NL[idx].astype(F32)


def dec_q8_k(b):
    d = b[:, 0:4].copy().view("<f4").astype(F32)
    return d * b[:, 4:260].view(np.int8).astype(F32)


# name -> (block elements, block bytes, decoder)
DECODERS = {
    "q4_0": (32, 18, dec_q4_0), "q4_1": (32, 20, dec_q4_1), "q5_0": (32, 22, dec_q5_0),
    "q5_1": (32, 24, dec_q5_1), "q8_0": (32, 34, dec_q8_0), "q8_1": (32, 36, dec_q8_1),
    "iq4_nl": (32, 18, dec_iq4_nl), "mxfp4": (32, 17, dec_mxfp4),
    "q2_K": (256, 84, dec_q2_k), "q3_K": (256, 110, dec_q3_k), "q4_K": (256, 144, dec_q4_k),
    "q5_K": (256, 176, dec_q5_k), "q6_K": (256, 210, dec_q6_k), "iq4_xs": (256, 136, dec_iq4_xs),
    "q8_K": (256, 292, dec_q8_k),
}

# ---------------------------------------------------------------- random valid blocks


def put_u16(b, row, off, v):
    b[row, off] = v & 0xFF
    b[row, off + 1] = (v >> 8) & 0xFF


def normal_half(rng, n):
    """Random finite f16 bit patterns of moderate size and either sign."""
    vals = (rng.standard_normal(n) * rng.choice([1e-3, 1e-2, 0.1, 1.0, 10.0], n)).astype(np.float32)
    return f32_to_f16(vals)


# Edge-case f16 scales, used for the first blocks of every type: zero, negative zero, negative,
# smallest subnormal, largest subnormal, largest finite, and infinity (its zero quants give NaN).
EDGE_D = [0x0000, 0x8000, 0xBC00, 0x0001, 0x03FF, 0x7BFF, 0x3C00, 0x7C00]


def make_blocks(name, rng):
    n_el, n_bytes, _ = DECODERS[name]
    nb = 12 if n_el == 32 else 5  # the edge-case scales first, then random ones
    b = rng.integers(0, 256, size=(nb, n_bytes), dtype=np.int64).astype(np.uint8)
    if name == "mxfp4":
        for i, e in enumerate([0, 1, 2, 127, 128, 254, 255, 100, 130, 120, 3, 126]):
            b[i, 0] = e
        return b
    if name == "q8_K":
        d = np.array([0.0, -1.5, 1e-40, 3.0e38, 0.0123], dtype=np.float32)
        b[:, 0:4] = d.view(np.uint8).reshape(nb, 4)
        qs = b[:, 4:260].view(np.int8).astype(np.int64)
        bsums = qs.reshape(nb, 16, 16).sum(axis=2).astype("<i2")  # consistent bsums
        b[:, 260:292] = bsums.view(np.uint8).reshape(nb, 32)
        return b
    # Where each type keeps its f16 scale(s).
    d_off = {"q2_K": 80, "q3_K": 108, "q6_K": 208}.get(name, 0)
    has_min = name in ("q4_1", "q5_1", "q2_K", "q4_K", "q5_K")
    min_off = {"q2_K": 82}.get(name, 2)
    edges = EDGE_D if n_el == 32 else [0x0000, 0xB800, 0x0001, 0x7BFF]
    randoms = normal_half(rng, 2 * nb)
    for i in range(nb):
        put_u16(b, i, d_off, int(edges[i]) if i < len(edges) else int(randoms[i]))
        if has_min:
            m = int(randoms[nb + i]) if i != 1 else 0x8000
            put_u16(b, i, min_off, m)
    if name in ("q4_K", "q5_K"):
        b[0, 4:16] = 0xFF  # every bit of every 6-bit scale and min set
        b[1, 4:16] = 0x00
    if name == "q3_K":
        b[0, 96:108] = 0xFF  # all scales 63 -> +31
        b[1, 96:108] = 0x00  # all scales 0 -> -32
        b[2, 0:32] = 0x00  # every high bit clear (-4)
        b[3, 0:32] = 0xFF
    if name == "q6_K":
        b[0, 192:208] = np.array([-128, 127, -1, 0, 1, -64, 63, -2] * 2, dtype=np.int8).view(np.uint8)
        b[2, 192:208] = np.array([-128] * 16, dtype=np.int8).view(np.uint8)
    if name == "q2_K":
        b[0, 0:16] = 0xFF
    if name == "iq4_xs":
        b[0, 2:8] = 0xFF  # all scales 63
        b[1, 2:8] = 0x00  # all scales 0 -> -32
    return b


# ---------------------------------------------------------------- F32/F16/BF16 decode fixtures


def f16_patterns(rng):
    pats = set()
    for sign in (0, 0x8000):
        for exp in range(32):
            for man in (0, 1, 2, 3, 0x155, 0x1FF, 0x200, 0x201, 0x2AA, 0x3FE, 0x3FF):
                pats.add(sign | (exp << 10) | man)
    pats.update(int(v) for v in rng.integers(0, 65536, size=600))
    return np.array(sorted(pats), dtype=np.uint16)


def bf16_patterns(rng):
    pats = set()
    for sign in (0, 0x8000):
        for exp in (0, 1, 2, 0x3F, 0x7E, 0x7F, 0x80, 0x81, 0xFE, 0xFF):
            for man in (0, 1, 0x3F, 0x40, 0x41, 0x7F):
                pats.add(sign | (exp << 7) | man)
    pats.update(int(v) for v in rng.integers(0, 65536, size=300))
    return np.array(sorted(pats), dtype=np.uint16)


# ---------------------------------------------------------------- encoders


def encode_f16(x):
    return f32_to_f16(x).astype("<u2").tobytes()


def encode_bf16(x):
    return f32_to_bf16(x).astype("<u2").tobytes()


def q8_amax(blocks):
    """MAX(amax, |v|) left to right, MAX(a, b) = a > b ? a : b (NaN-sensitive like C)."""
    amax = np.zeros(blocks.shape[0], dtype=F32)
    for j in range(32):
        a = np.abs(blocks[:, j])
        amax = np.where(amax > a, amax, a).astype(F32)
    return amax


def inverse(d):
    with np.errstate(divide="ignore", over="ignore"):
        return np.where(d != 0, F32(1.0) / np.where(d != 0, d, F32(1.0)), F32(0.0)).astype(F32)


def q8_quants(blocks, id_):
    with np.errstate(invalid="ignore", over="ignore"):
        prod = (blocks * id_[:, None]).astype(F32)
    return low_byte(x86_int32(roundf(prod)))


def encode_q8_0(x):
    blocks = x.reshape(-1, 32)
    with np.errstate(invalid="ignore"):
        d = (q8_amax(blocks) / F32(127)).astype(F32)
    q = q8_quants(blocks, inverse(d))
    out = np.zeros((blocks.shape[0], 34), dtype=np.uint8)
    out[:, 0:2] = f32_to_f16(d).astype("<u2").view(np.uint8).reshape(-1, 2)
    out[:, 2:34] = q
    return out.tobytes()


def encode_q8_1(x):
    blocks = x.reshape(-1, 32)
    with np.errstate(invalid="ignore"):
        d = (q8_amax(blocks) / F32(127)).astype(F32)
    q = q8_quants(blocks, inverse(d))
    s = np.where(q >= 128, q - 256, q).sum(axis=1).astype(F32)
    with np.errstate(invalid="ignore"):
        sd = (s * d).astype(F32)
    out = np.zeros((blocks.shape[0], 36), dtype=np.uint8)
    out[:, 0:2] = f32_to_f16(d).astype("<u2").view(np.uint8).reshape(-1, 2)
    out[:, 2:4] = f32_to_f16(sd).astype("<u2").view(np.uint8).reshape(-1, 2)
    out[:, 4:36] = q
    return out.tobytes()


def signed_absmax(blocks):
    """`if (amax < |v|) { amax = |v|; max = v; }` left to right."""
    amax = np.zeros(blocks.shape[0], dtype=F32)
    mx = np.zeros(blocks.shape[0], dtype=F32)
    for j in range(32):
        a = np.abs(blocks[:, j])
        take = amax < a
        amax = np.where(take, a, amax).astype(F32)
        mx = np.where(take, blocks[:, j], mx).astype(F32)
    return mx


def running_min_max(blocks):
    mn = np.full(blocks.shape[0], FLT_MAX, dtype=F32)
    mx = np.full(blocks.shape[0], -FLT_MAX, dtype=F32)
    for j in range(32):
        v = blocks[:, j]
        mn = np.where(v < mn, v, mn).astype(F32)
        mx = np.where(v > mx, v, mx).astype(F32)
    return mn, mx


def trunc_plus(values, offset):
    """ggml's `(int8_t)(v + offset)` with v float32: float32 add, then x86 truncation to 32 bits,
    low byte; returned as the int8 value."""
    with np.errstate(invalid="ignore", over="ignore"):
        t = (values + F32(offset)).astype(F32)
    return as_int8(x86_int32(t))


def nibble_pack(q_lo, q_hi):
    return ((low_byte(q_lo) | (low_byte(q_hi) << 4)) & 0xFF).astype(np.uint8)


def qh_word(q_lo, q_hi):
    qh = np.zeros(q_lo.shape[0], dtype=np.uint64)
    for j in range(16):
        qh |= ((low_byte(q_lo[:, j]) >> 4) & 1).astype(np.uint64) << np.uint64(j)
        qh |= ((low_byte(q_hi[:, j]) >> 4) & 1).astype(np.uint64) << np.uint64(j + 16)
    return qh.astype("<u4").view(np.uint8).reshape(-1, 4)


def scaled(blocks, id_, minus=None):
    with np.errstate(invalid="ignore", over="ignore"):
        base = blocks if minus is None else (blocks - minus[:, None]).astype(F32)
        return (base * id_[:, None]).astype(F32)


def encode_q4_0(x):
    blocks = x.reshape(-1, 32)
    d = (signed_absmax(blocks) / F32(-8)).astype(F32)
    v = scaled(blocks, inverse(d))
    q = np.minimum(15, trunc_plus(v, 8.5))
    out = np.zeros((blocks.shape[0], 18), dtype=np.uint8)
    out[:, 0:2] = f32_to_f16(d).astype("<u2").view(np.uint8).reshape(-1, 2)
    out[:, 2:18] = nibble_pack(q[:, :16], q[:, 16:])
    return out.tobytes()


def encode_q4_1(x):
    blocks = x.reshape(-1, 32)
    mn, mx = running_min_max(blocks)
    with np.errstate(over="ignore", invalid="ignore"):
        d = ((mx - mn).astype(F32) / F32(15)).astype(F32)
    v = scaled(blocks, inverse(d), mn)
    q = np.minimum(15, trunc_plus(v, 0.5))
    out = np.zeros((blocks.shape[0], 20), dtype=np.uint8)
    out[:, 0:2] = f32_to_f16(d).astype("<u2").view(np.uint8).reshape(-1, 2)
    out[:, 2:4] = f32_to_f16(mn).astype("<u2").view(np.uint8).reshape(-1, 2)
    out[:, 4:20] = nibble_pack(q[:, :16], q[:, 16:])
    return out.tobytes()


def encode_q5_0(x):
    blocks = x.reshape(-1, 32)
    d = (signed_absmax(blocks) / F32(-16)).astype(F32)
    v = scaled(blocks, inverse(d))
    q = np.minimum(31, trunc_plus(v, 16.5))
    out = np.zeros((blocks.shape[0], 22), dtype=np.uint8)
    out[:, 0:2] = f32_to_f16(d).astype("<u2").view(np.uint8).reshape(-1, 2)
    out[:, 2:6] = qh_word(q[:, :16], q[:, 16:])
    out[:, 6:22] = ((low_byte(q[:, :16]) & 15) | ((low_byte(q[:, 16:]) & 15) << 4)).astype(np.uint8)
    return out.tobytes()


def encode_q5_1(x):
    blocks = x.reshape(-1, 32)
    mn, mx = running_min_max(blocks)
    with np.errstate(over="ignore", invalid="ignore"):
        d = ((mx - mn).astype(F32) / F32(31)).astype(F32)
    v = scaled(blocks, inverse(d), mn)
    q = trunc_plus(v, 0.5)  # (uint8_t)(v + 0.5f): same low byte
    out = np.zeros((blocks.shape[0], 24), dtype=np.uint8)
    out[:, 0:2] = f32_to_f16(d).astype("<u2").view(np.uint8).reshape(-1, 2)
    out[:, 2:4] = f32_to_f16(mn).astype("<u2").view(np.uint8).reshape(-1, 2)
    out[:, 4:8] = qh_word(q[:, :16], q[:, 16:])
    out[:, 8:24] = ((low_byte(q[:, :16]) & 15) | ((low_byte(q[:, 16:]) & 15) << 4)).astype(np.uint8)
    return out.tobytes()


ENCODERS = {"f16": encode_f16, "bf16": encode_bf16, "q4_0": encode_q4_0, "q4_1": encode_q4_1,
            "q5_0": encode_q5_0, "q5_1": encode_q5_1, "q8_0": encode_q8_0, "q8_1": encode_q8_1}


def f32(bits):
    return np.array(bits, dtype=np.uint32).view(np.float32)


def quant_inputs_half(rng, to_bf16):
    """Floats for the f16 / bf16 encoders: specials, exact ties, boundaries, random."""
    vals = [0.0, -0.0, 1.0, -1.0, np.inf, -np.inf, 65504.0, 65519.996, 65520.0, -65520.0, 1e6,
            2.0 ** -14, 2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0000001, 3 * 2.0 ** -26, 2.0 ** -26,
            6.0e-8, 1e-45, -1e-45, 5.96e-8, 3.4e38, -3.4e38, 1.1754942e-38]
    x = list(np.array(vals, dtype=np.float32).view(np.uint32))
    x += [0x7FC00000, 0xFFC00000, 0x7F800001, 0xFF800001, 0x7FBFFFFF, 0x7FC12345, 0xFFFFFFFF]  # NaNs
    if to_bf16:
        for upper in (0x3F80, 0x3F81, 0x0001, 0x7F7F, 0x8000, 0x0080):  # ties and neighbours
            for lower in (0x7FFF, 0x8000, 0x8001, 0x0000, 0xFFFF):
                x.append((upper << 16) | lower)
    else:
        for h in rng.integers(0, 0x7C00, size=120):  # ties between consecutive halves
            lo = f16_to_f32(np.array([h], dtype=np.uint16))[0].astype(np.float64)
            hi = f16_to_f32(np.array([h + 1], dtype=np.uint16))[0].astype(np.float64)
            mid = np.float32((lo + hi) / 2)
            if float(mid) == (lo + hi) / 2:
                b = int(np.array([mid], dtype=np.float32).view(np.uint32)[0])
                x += [b, b - 1, b + 1, b | 0x80000000]
    x = np.array(x, dtype=np.uint32)
    rnd = (rng.standard_normal(400) * np.exp(rng.uniform(-30, 25, 400))).astype(np.float32).view(np.uint32)
    return np.concatenate([x, rnd, rng.integers(0, 2 ** 32, size=200, dtype=np.uint64).astype(np.uint32)])


def quant_inputs_blocks(rng, name):
    """32-element rows for the block encoders: random scales, exact ties, degenerate blocks."""
    blocks = []
    for scale in (1.0, 1e-3, 1e4, 3e-6, 0.25):
        for _ in range(3):
            blocks.append((rng.standard_normal(32) * scale).astype(np.float32))
    blocks.append(np.zeros(32, np.float32))  # d = 0
    blocks.append(np.full(32, 2.5, np.float32))  # all equal (d = 0 for the min types)
    # amax 127 -> d = 1, id = 1: every x.5 is a tie that roundf breaks away from zero
    t = np.arange(-15.5, 16.5, 1.0, dtype=np.float32)
    t[0] = -127.0
    blocks.append(t)
    # amax 8 (Q4_0: d = -1) / 16 (Q5_0): quants land on truncation boundaries
    blocks.append(np.linspace(-8, 8, 32).astype(np.float32))
    blocks.append(np.linspace(-16, 16, 32).astype(np.float32) * np.float32(0.5))
    blocks.append((rng.integers(-40, 41, 32) * 0.25).astype(np.float32))
    big = rng.standard_normal(32).astype(np.float32) * np.float32(1e-38)  # 1/d overflows
    blocks.append(big)
    inf_block = rng.standard_normal(32).astype(np.float32)
    inf_block[7] = np.inf
    blocks.append(inf_block)
    nan_last = rng.standard_normal(32).astype(np.float32)
    nan_last[31] = np.nan
    blocks.append(nan_last)
    nan_first = rng.standard_normal(32).astype(np.float32)
    nan_first[0] = np.nan
    blocks.append(nan_first)
    neg_max = rng.standard_normal(32).astype(np.float32)
    neg_max[3] = -9.75  # the element of largest magnitude is negative
    blocks.append(neg_max)
    blocks.append(np.full(32, 70000.0, np.float32))  # min 70000 -> f16 inf (Q4_1/Q5_1)
    blocks.append(np.full(32, -1e6, np.float32))  # Q4_0: d = 125000 -> f16 inf
    return np.concatenate(blocks).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    args = ap.parse_args()
    rng = np.random.default_rng(20260814)
    os.makedirs(args.out, exist_ok=True)

    def write(name, data):
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(data)

    for name, (_, _, dec) in DECODERS.items():
        b = make_blocks(name, rng)
        with np.errstate(invalid="ignore", over="ignore"):
            y = dec(b).astype(F32)
        write(name + ".blocks", b.tobytes())
        write(name + ".f32", y.astype("<f4").tobytes())

    f16 = f16_patterns(rng)
    write("f16.blocks", f16.astype("<u2").tobytes())
    write("f16.f32", f16_to_f32(f16).astype("<f4").tobytes())
    bf16 = bf16_patterns(rng)
    write("bf16.blocks", bf16.astype("<u2").tobytes())
    write("bf16.f32", (bf16.astype(np.uint32) << 16).view(np.float32).astype("<f4").tobytes())
    f32s = np.concatenate([f32([0x7F800001, 0xFFBFFFFF, 0x00000001, 0x80000000, 0x7F7FFFFF]),
                           rng.standard_normal(27).astype(np.float32)])
    write("f32.blocks", f32s.astype("<f4").tobytes())
    write("f32.f32", f32s.astype("<f4").tobytes())

    for name, enc in ENCODERS.items():
        if name in ("f16", "bf16"):
            x = quant_inputs_half(rng, name == "bf16").view(np.float32)
        else:
            x = quant_inputs_blocks(rng, name)
        write("quant_" + name + ".f32", x.astype("<f4").tobytes())
        write("quant_" + name + ".bin", enc(x))


if __name__ == "__main__":
    main()
