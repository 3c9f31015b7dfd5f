# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""Minimal GGUF reader/writer and ggml block codecs in numpy, for the GGUF tests.

Shares no code with the C++ library (nor with gguf-py): written from the format description
(docs/gguf.md of ggml, ggml-common.h block structs, ggml-quants.c reference rules). Used by
make_tiny_gguf.py (writes the test models), numpy_prune.py (a reference pruning used to prove the
checker and the judge before the C++ CLI exists) and check_gguf.py (the independent checker).

Only what the tests need: GGUF v2/v3 little-endian; codecs for F32, F16, BF16, Q8_0, Q4_0 and Q4_K
(every other ggml type is known by block size and bytes only, enough to compare rows and blocks).
"""

import struct

import numpy as np

# --- GGUF value types -------------------------------------------------------------------------------
U8, I8, U16, I16, U32, I32, F32V, BOOL, STRING, ARRAY, U64, I64, F64V = range(13)
_SCALAR_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32V: "<f",
               BOOL: "<B", U64: "<Q", I64: "<q", F64V: "<d"}
_NP_SCALAR = {U8: "<u1", I8: "<i1", U16: "<u2", I16: "<i2", U32: "<u4", I32: "<i4", F32V: "<f4",
              BOOL: "<u1", U64: "<u8", I64: "<i8", F64V: "<f8"}
VALUE_TYPE_NAMES = {U8: "UINT8", I8: "INT8", U16: "UINT16", I16: "INT16", U32: "UINT32",
                    I32: "INT32", F32V: "FLOAT32", BOOL: "BOOL", STRING: "STRING", ARRAY: "ARRAY",
                    U64: "UINT64", I64: "INT64", F64V: "FLOAT64"}

# --- ggml tensor types: id -> (name, elements per block, bytes per block) -----------------------------
# From the block structs of ggml-common.h (see /work/shared/reference/gguf.md, section 3).
GGML_TYPES = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 36),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144), 13: ("Q5_K", 256, 176),
    14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292), 16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74),
    18: ("IQ3_XXS", 256, 98), 19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18), 42: ("Q2_0", 64, 18),
}
TYPE_ID = {v[0]: k for k, v in GGML_TYPES.items()}
F32, F16, Q4_0, Q8_0, Q4_K, BF16 = 0, 1, 2, 8, 12, 30

DEFAULT_ALIGNMENT = 32


class GGUFError(Exception):
    pass


def type_name(t):
    return GGML_TYPES[t][0] if t in GGML_TYPES else "type%d" % t


def block_of(t):
    if t not in GGML_TYPES:
        raise GGUFError("unknown ggml type id %d" % t)
    return GGML_TYPES[t][1], GGML_TYPES[t][2]


def row_bytes(t, ne0):
    blk, size = block_of(t)
    if ne0 % blk:
        raise GGUFError("ne[0] = %d is not a multiple of %s's block size %d" % (ne0, type_name(t), blk))
    return ne0 // blk * size


def tensor_bytes(t, ne):
    n_rows = 1
    for d in ne[1:]:
        n_rows *= d
    return row_bytes(t, ne[0]) * n_rows


def pad(n, a):
    return (n + a - 1) // a * a


# --- reading -------------------------------------------------------------------------------------------
class KV:
    """One metadata record. value: python scalar / str / ArrayValue. raw: the type+value bytes."""

    def __init__(self, key, vtype, value, raw):
        self.key, self.vtype, self.value, self.raw = key, vtype, value, raw

    def __repr__(self):
        return "KV(%r, %s, %r)" % (self.key, VALUE_TYPE_NAMES.get(self.vtype, self.vtype), self.value)


class ArrayValue:
    def __init__(self, etype, items):
        self.etype, self.items = etype, items  # items: list (strings) or numpy array

    def tolist(self):
        return list(self.items) if isinstance(self.items, list) else self.items.tolist()

    def __len__(self):
        return len(self.items)

    def __repr__(self):
        return "Array(%s, %r)" % (VALUE_TYPE_NAMES.get(self.etype, self.etype), self.tolist()[:16])


class TensorInfo:
    def __init__(self, name, ne, ttype, offset):
        self.name, self.ne, self.ttype, self.offset = name, list(ne), ttype, offset
        self.nbytes = tensor_bytes(ttype, self.ne)

    @property
    def n_rows(self):
        r = 1
        for d in self.ne[1:]:
            r *= d
        return r


class GGUFFile:
    """A parsed GGUF file. Strict: ggml's rules (see gguf.md section 1) are checked on load."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.buf = f.read()
        self.pos = 0
        self._parse()

    def _err(self, msg):
        raise GGUFError("%s: %s" % (self.path, msg))

    def _take(self, n):
        if self.pos + n > len(self.buf):
            self._err("truncated at byte %d (needs %d more bytes)" % (self.pos, n))
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def _scalar(self, vt):
        fmt = _SCALAR_FMT[vt]
        return struct.unpack(fmt, self._take(struct.calcsize(fmt)))[0]

    def _string(self):
        n = self._scalar(U64)
        if n > len(self.buf):
            self._err("string length %d at byte %d runs past the end" % (n, self.pos - 8))
        return self._take(n).decode("utf-8")

    def _value(self, vt):
        if vt == STRING:
            return self._string()
        if vt == ARRAY:
            et = self._scalar(U32)
            n = self._scalar(U64)
            if et == ARRAY:
                self._err("nested array")
            if et == STRING:
                return ArrayValue(et, [self._string() for _ in range(n)])
            if et not in _NP_SCALAR:
                self._err("unknown array element type %d" % et)
            dt = np.dtype(_NP_SCALAR[et])
            return ArrayValue(et, np.frombuffer(self._take(n * dt.itemsize), dtype=dt).copy())
        if vt not in _SCALAR_FMT:
            self._err("unknown value type %d" % vt)
        return self._scalar(vt)

    def _parse(self):
        if self._take(4) != b"GGUF":
            self._err("bad magic")
        self.version = self._scalar(U32)
        if self.version not in (2, 3):
            self._err("unsupported version %d" % self.version)
        n_tensors = self._scalar(I64)
        n_kv = self._scalar(I64)
        self.kvs = []
        seen = set()
        for _ in range(n_kv):
            key = self._string()
            if not key or key in seen:
                self._err("empty or duplicate key %r" % key)
            seen.add(key)
            start = self.pos
            vt = self._scalar(U32)
            val = self._value(vt)
            self.kvs.append(KV(key, vt, val, self.buf[start:self.pos]))
        self.kv = {k.key: k for k in self.kvs}
        self.alignment = DEFAULT_ALIGNMENT
        if "general.alignment" in self.kv:
            a = self.kv["general.alignment"]
            if a.vtype != U32 or a.value == 0 or a.value & (a.value - 1):
                self._err("general.alignment must be a UINT32 power of two")
            self.alignment = a.value
        self.tensors = []
        names = set()
        for _ in range(n_tensors):
            name = self._string()
            if name in names or len(name.encode()) >= 64:
                self._err("tensor name %r duplicate or too long" % name)
            names.add(name)
            nd = self._scalar(U32)
            if nd < 1 or nd > 4:
                self._err("tensor %s: n_dims = %d" % (name, nd))
            ne = [self._scalar(I64) for _ in range(nd)]
            tt = self._scalar(U32)
            off = self._scalar(U64)
            try:
                self.tensors.append(TensorInfo(name, ne, tt, off))
            except GGUFError as e:
                self._err("tensor %s: %s" % (name, e))
        self.tensor = {t.name: t for t in self.tensors}
        self.header_end = self.pos
        self.data_start = pad(self.pos, self.alignment)
        if any(self.buf[self.pos:self.data_start]):
            self._err("non-zero padding before the data section")
        expect = 0
        for t in self.tensors:
            if t.offset != expect:
                self._err("tensor %s: offset %d, expected %d (cumulative padded sizes)" % (t.name, t.offset, expect))
            end = self.data_start + t.offset + t.nbytes
            padded_end = self.data_start + pad(t.offset + t.nbytes, self.alignment)
            if padded_end > len(self.buf):
                self._err("tensor %s runs past the end of the file" % t.name)
            if any(self.buf[end:padded_end]):
                self._err("tensor %s: non-zero padding after its data" % t.name)
            expect = pad(t.offset + t.nbytes, self.alignment)
        if self.data_start + expect != len(self.buf):
            self._err("file is %d bytes, expected %d (data start %d + padded tensor data %d)"
                      % (len(self.buf), self.data_start + expect, self.data_start, expect))

    def get(self, key, default=None):
        return self.kv[key].value if key in self.kv else default

    def data(self, name):
        t = self.tensor[name]
        s = self.data_start + t.offset
        return self.buf[s:s + t.nbytes]

    def rows(self, name):
        """The tensor as a uint8 array [n_rows, row_bytes]."""
        t = self.tensor[name]
        return np.frombuffer(self.data(name), dtype=np.uint8).reshape(t.n_rows, row_bytes(t.ttype, t.ne[0]))

    def values(self, name):
        """Dequantized float32 array shaped [rows..., ne0] (numpy order: reversed ne)."""
        t = self.tensor[name]
        flat = dequantize(t.ttype, self.data(name), t.ne[0] * t.n_rows)
        return flat.reshape(list(reversed(t.ne)))


# --- writing -------------------------------------------------------------------------------------------
def _enc_scalar(vt, v):
    return struct.pack(_SCALAR_FMT[vt], v)


def _enc_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def encode_value(vt, v):
    """type + value bytes of one KV."""
    out = struct.pack("<I", vt)
    if vt == STRING:
        return out + _enc_string(v)
    if vt == ARRAY:
        et, items = v.etype, v.items
        out += struct.pack("<IQ", et, len(items))
        if et == STRING:
            return out + b"".join(_enc_string(s) for s in items)
        return out + np.asarray(items, dtype=_NP_SCALAR[et]).tobytes()
    return out + _enc_scalar(vt, v)


def kv(key, vt, value, etype=None):
    """A KV record for the writer; arrays: kv(key, ARRAY, items, etype)."""
    if vt == ARRAY:
        value = ArrayValue(etype, list(value) if etype == STRING else np.asarray(value, dtype=_NP_SCALAR[etype]))
    return KV(key, vt, value, encode_value(vt, value))


def write_gguf(path, kvs, tensors, alignment=DEFAULT_ALIGNMENT, version=3):
    """kvs: list of KV (their .raw bytes are written as they are); tensors: list of
    (name, ne list, ggml type, data bytes). Offsets cumulative, zero padding after every tensor."""
    head = [b"GGUF", struct.pack("<IqQ", version, len(tensors), len(kvs))]
    for k in kvs:
        head.append(_enc_string(k.key) + k.raw)
    off = 0
    for name, ne, tt, data in tensors:
        if len(data) != tensor_bytes(tt, ne):
            raise GGUFError("tensor %s: %d bytes, %s %r needs %d" % (name, len(data), type_name(tt), ne,
                                                                     tensor_bytes(tt, ne)))
        head.append(_enc_string(name) + struct.pack("<I", len(ne)) + struct.pack("<%dq" % len(ne), *ne)
                    + struct.pack("<IQ", tt, off))
        off = pad(off + len(data), alignment)
    h = b"".join(head)
    parts = [h, b"\0" * (pad(len(h), alignment) - len(h))]
    for _, _, _, data in tensors:
        parts.append(bytes(data))
        parts.append(b"\0" * (pad(len(data), alignment) - len(data)))
    import os
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(b"".join(parts))
    os.replace(tmp, path)


# --- codecs --------------------------------------------------------------------------------------------
def _roundf(x):
    """C roundf (half away from zero) of float32 values, exactly (done in float64)."""
    x = np.asarray(x, dtype=np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


def f16_to_f32(h):
    return np.asarray(h, dtype="<u2").view(np.float16).astype(np.float32)


def bf16_to_f32(b):
    return (np.asarray(b, dtype="<u2").astype(np.uint32) << 16).view(np.float32)


def quantize_q8_0(x):
    """ggml's reference rule (quantize_row_q8_0_ref), in float32: d = amax/127, id = 1/d,
    q = roundf(x*id); d stored as F16 (round to nearest even). x: [..., ne0] float32."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    b = x.reshape(-1, 32)
    amax = np.max(np.abs(b), axis=1)
    d = (amax / np.float32(127)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    q = _roundf((b * idv[:, None]).astype(np.float32)).astype(np.int8)
    out = np.empty((b.shape[0], 34), dtype=np.uint8)
    out[:, 0:2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q.view(np.uint8)
    return out.tobytes()


def dequantize_q8_0(buf, n):
    a = np.frombuffer(buf, dtype=np.uint8).reshape(-1, 34)
    d = f16_to_f32(a[:, 0:2].copy().view("<u2").ravel())
    q = a[:, 2:].view(np.int8).astype(np.float32)
    return (q * d[:, None]).astype(np.float32).reshape(n)


def quantize_q4_0(x):
    """ggml's reference rule (quantize_row_q4_0_ref): d = max/-8 where max is the signed value of
    largest magnitude, q = min(15, trunc(x/d + 8.5)); element j in the low nibble of byte j, element
    j+16 in the high nibble."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    b = x.reshape(-1, 32)
    idx = np.argmax(np.abs(b), axis=1)  # first index of the largest |v|, as ggml's strict '<' scan
    mx = b[np.arange(b.shape[0]), idx]
    d = (mx / np.float32(-8)).astype(np.float32)
    with np.errstate(divide="ignore"):
        idv = np.where(d != 0, np.float32(1) / d, np.float32(0)).astype(np.float32)
    v = ((b * idv[:, None]).astype(np.float32) + np.float32(8.5)).astype(np.float32)
    q = np.minimum(15, np.trunc(v).astype(np.int64)).astype(np.uint8)
    out = np.empty((b.shape[0], 18), dtype=np.uint8)
    out[:, 0:2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:] = q[:, :16] | (q[:, 16:] << 4)
    return out.tobytes()


def dequantize_q4_0(buf, n):
    a = np.frombuffer(buf, dtype=np.uint8).reshape(-1, 18)
    d = f16_to_f32(a[:, 0:2].copy().view("<u2").ravel())
    qs = a[:, 2:]
    q = np.concatenate([qs & 0xF, qs >> 4], axis=1).astype(np.int32) - 8
    return (q.astype(np.float32) * d[:, None]).astype(np.float32).reshape(n)


def _q4k_unpack_scales(s):
    """s: [nb, 12] uint8 -> (sc [nb, 8], m [nb, 8]) 6-bit values (get_scale_min_k4)."""
    sc = np.empty((s.shape[0], 8), dtype=np.uint8)
    m = np.empty((s.shape[0], 8), dtype=np.uint8)
    for j in range(8):
        if j < 4:
            sc[:, j] = s[:, j] & 63
            m[:, j] = s[:, j + 4] & 63
        else:
            sc[:, j] = (s[:, j + 4] & 0xF) | ((s[:, j - 4] >> 6) << 4)
            m[:, j] = (s[:, j + 4] >> 4) | ((s[:, j] >> 6) << 4)
    return sc, m


def _q4k_pack_scales(sc, m):
    s = np.zeros((sc.shape[0], 12), dtype=np.uint8)
    for j in range(8):
        if j < 4:
            s[:, j] |= sc[:, j] & 63
            s[:, j + 4] |= m[:, j] & 63
        else:
            s[:, j + 4] |= (sc[:, j] & 0xF) | ((m[:, j] & 0xF) << 4)
            s[:, j - 4] |= (sc[:, j] >> 4) << 6
            s[:, j] |= (m[:, j] >> 4) << 6
    return s


def quantize_q4_k(x):
    """Our own simple Q4_K encoder (not ggml's search, but valid blocks): per 32-element sub-block
    x ~ d*sc*q - dmin*m with q in 0..15, sc/m 6-bit, d/dmin F16 per 256-element super-block.
    Layout (block_q4_K): d, dmin, scales[12], qs[128]; sub-block 2k in the low nibbles of
    qs[32k..32k+32), sub-block 2k+1 in their high nibbles."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    b = x.reshape(-1, 8, 32)
    nb = b.shape[0]
    lo = np.minimum(b.min(axis=2), 0)
    hi = b.max(axis=2)
    scale = (hi - lo) / 15.0
    mval = -lo
    d = (scale.max(axis=1) / 63.0).astype(np.float16).astype(np.float32)
    dmin = (mval.max(axis=1) / 63.0).astype(np.float16).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        sc = np.where(d[:, None] > 0, np.clip(np.round(scale / d[:, None]), 0, 63), 0).astype(np.uint8)
        m = np.where(dmin[:, None] > 0, np.clip(np.round(mval / dmin[:, None]), 0, 63), 0).astype(np.uint8)
        d1 = d[:, None] * sc
        m1 = dmin[:, None] * m
        q = np.where(d1[:, :, None] > 0, np.round((b + m1[:, :, None]) / d1[:, :, None]), 0)
    q = np.clip(q, 0, 15).astype(np.uint8)
    out = np.empty((nb, 144), dtype=np.uint8)
    out[:, 0:2] = d.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 2:4] = dmin.astype(np.float16).view(np.uint8).reshape(-1, 2)
    out[:, 4:16] = _q4k_pack_scales(sc, m)
    qs = np.empty((nb, 4, 32), dtype=np.uint8)
    for k in range(4):
        qs[:, k, :] = q[:, 2 * k, :] | (q[:, 2 * k + 1, :] << 4)
    out[:, 16:] = qs.reshape(nb, 128)
    return out.tobytes()


def dequantize_q4_k(buf, n):
    a = np.frombuffer(buf, dtype=np.uint8).reshape(-1, 144)
    nb = a.shape[0]
    d = f16_to_f32(a[:, 0:2].copy().view("<u2").ravel())
    dmin = f16_to_f32(a[:, 2:4].copy().view("<u2").ravel())
    sc, m = _q4k_unpack_scales(a[:, 4:16])
    d1 = (d[:, None] * sc.astype(np.float32)).astype(np.float32)  # exact (11 x 6 bits)
    m1 = (dmin[:, None] * m.astype(np.float32)).astype(np.float32)
    qs = a[:, 16:].reshape(nb, 4, 32)
    q = np.empty((nb, 8, 32), dtype=np.float32)
    for k in range(4):
        q[:, 2 * k, :] = qs[:, k, :] & 0xF
        q[:, 2 * k + 1, :] = qs[:, k, :] >> 4
    y = (d1[:, :, None] * q).astype(np.float32) - m1[:, :, None]  # d1*q exact, one rounding
    return y.astype(np.float32).reshape(n)


def q4_k_zero_subblocks(block_row, sub_ids):
    """In one row of Q4_K blocks (uint8 array [n_blocks*144]), make the given 32-element
    sub-blocks (indices along the row) decode to exactly 0 (sc = m = 0, quants 0); everything else
    unchanged."""
    a = block_row.reshape(-1, 144)
    sc, m = _q4k_unpack_scales(a[:, 4:16])
    for s in sub_ids:
        blk, j = divmod(s, 8)
        sc[blk, j] = 0
        m[blk, j] = 0
        k, hi = divmod(j, 2)
        q = a[blk, 16 + 32 * k:16 + 32 * (k + 1)]
        a[blk, 16 + 32 * k:16 + 32 * (k + 1)] = (q & 0x0F) if hi else (q & 0xF0)
    a[:, 4:16] = _q4k_pack_scales(sc, m)
    return a.reshape(-1)


def quantize(t, x):
    x = np.ascontiguousarray(x, dtype=np.float32)
    if t == F32:
        return x.astype("<f4").tobytes()
    if t == F16:
        return x.astype("<f2").tobytes()
    if t == BF16:
        u = x.view(np.uint32).astype(np.uint64)
        r = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype("<u2")  # RNE (no NaNs in our tensors)
        return r.tobytes()
    if t == Q8_0:
        return quantize_q8_0(x)
    if t == Q4_0:
        return quantize_q4_0(x)
    if t == Q4_K:
        return quantize_q4_k(x)
    raise GGUFError("no encoder for %s" % type_name(t))


def dequantize(t, buf, n):
    if t == F32:
        return np.frombuffer(buf, dtype="<f4", count=n).astype(np.float32)
    if t == F16:
        return np.frombuffer(buf, dtype="<f2", count=n).astype(np.float32)
    if t == BF16:
        return bf16_to_f32(np.frombuffer(buf, dtype="<u2", count=n))
    if t == Q8_0:
        return dequantize_q8_0(buf, n)
    if t == Q4_0:
        return dequantize_q4_0(buf, n)
    if t == Q4_K:
        return dequantize_q4_k(buf, n)
    raise GGUFError("no decoder for %s" % type_name(t))


def parse_heads(spec):
    """'L:ids;L:ids' -> {layer: sorted list of head ids}. '/' also separates layers (CMake lists
    cannot carry ';')."""
    out = {}
    spec = spec.strip().replace("/", ";")
    if not spec:
        return out
    for part in spec.split(";"):
        part = part.strip()
        if not part:
            continue
        layer, ids = part.split(":")
        ids = [int(i) for i in ids.split(",") if i.strip()]
        out.setdefault(int(layer), set()).update(ids)
    return {k: sorted(v) for k, v in out.items()}
