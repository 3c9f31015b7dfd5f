#!/usr/bin/env python3
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""Writes the fuzz targets' seed corpora (the generated files are committed): tests/fuzz/corpus/ for
the safetensors header fuzzer, tests/fuzz/gguf_corpus/ for the GGUF one.

valid-*: files the reference writer would produce (header padded to 8 bytes, tensors sorted by
dtype then name, contiguous offsets), including every dtype; broken-*: one broken check each, so
the fuzzer starts next to every error path. A sharded index seed exercises the index parser.
Run: python3 tests/fuzz/make_corpus.py
"""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
GGUF_OUT = os.path.join(HERE, "gguf_corpus")

BITS = {"BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8,
        "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
        "C64": 64, "F64": 64, "I64": 64, "U64": 64}
ORDER = list(BITS)  # the reference enum order


def nbytes(dtype, shape):
    n = 1
    for d in shape:
        n *= d
    return n * BITS[dtype] // 8


def file_from_header(header_text, data=b"", length=None):
    raw = header_text.encode("utf-8") if isinstance(header_text, str) else header_text
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


def valid(tensors, metadata=None):
    """tensors: list of (name, dtype, shape, data bytes)."""
    tensors = sorted(tensors, key=lambda t: (-ORDER.index(t[1]), t[0]))
    header = {}
    if metadata:
        header["__metadata__"] = dict(sorted(metadata.items()))
    offset, data = 0, b""
    for name, dtype, shape, payload in tensors:
        assert len(payload) == nbytes(dtype, shape)
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(payload)]}
        offset += len(payload)
        data += payload
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False)
    text += " " * ((8 - len(text.encode()) % 8) % 8)
    return file_from_header(text, data)


def entry(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


def raw(header_obj, data):
    return file_from_header(json.dumps(header_obj, separators=(",", ":")), data)


# --- GGUF ------------------------------------------------------------------------------------------
# Encoded here by hand (little-endian, struct), independently of the C++ writer.
GGUF_TYPES = {"u8": (0, "<B"), "i8": (1, "<b"), "u16": (2, "<H"), "i16": (3, "<h"), "u32": (4, "<I"),
              "i32": (5, "<i"), "f32": (6, "<f"), "bool": (7, "<?"), "u64": (10, "<Q"), "i64": (11, "<q"),
              "f64": (12, "<d")}
# ggml type id: (block size, bytes per block)
GGML = {0: (1, 4), 1: (1, 2), 2: (32, 18), 8: (32, 34), 12: (256, 144), 14: (256, 210), 30: (1, 2), 24: (1, 1)}


def gstr(s):
    b = s.encode() if isinstance(s, str) else s
    return struct.pack("<Q", len(b)) + b


def gkv(key, kind, value):
    """kind: a GGUF_TYPES name, "str", ("arr", elem kind, [values]) or ("raw", type id, bytes)."""
    if kind == "str":
        return gstr(key) + struct.pack("<I", 8) + gstr(value)
    if isinstance(kind, tuple) and kind[0] == "raw":
        return gstr(key) + struct.pack("<I", kind[1]) + kind[2]
    if isinstance(kind, tuple):
        elem = kind[1]
        items = b"".join(gstr(v) if elem == "str" else struct.pack(GGUF_TYPES[elem][1], v) for v in value)
        elem_id = 8 if elem == "str" else GGUF_TYPES[elem][0]
        return gstr(key) + struct.pack("<IIQ", 9, elem_id, len(value)) + items
    tid, fmt = GGUF_TYPES[kind]
    return gstr(key) + struct.pack("<I", tid) + struct.pack(fmt, value)


def gguf(kvs, tensors, align=32, version=3, data=None, offsets=None, counts=None):
    """tensors: list of (name, ne list, ggml type id). Offsets follow ggml's rule unless given."""
    infos, off, sizes = b"", 0, []
    for i, (name, ne, t) in enumerate(tensors):
        blk, size = GGML.get(t, (1, 1))
        n = 1
        for d in ne:
            n *= d
        nbytes = n // blk * size if blk and n % blk == 0 else 0
        o = offsets[i] if offsets else off
        infos += gstr(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d & (2**64 - 1)) for d in ne)
        infos += struct.pack("<IQ", t, o)
        sizes.append(nbytes)
        off += (nbytes + align - 1) // align * align
    n_tensors, n_kv = counts if counts else (len(tensors), len(kvs))
    head = b"GGUF" + struct.pack("<IQQ", version, n_tensors, n_kv) + b"".join(kvs) + infos
    if tensors:
        head += b"\x00" * ((-len(head)) % align)
    if data is None:
        data = bytes((i * 7 + 1) % 251 for i in range(off))
    return head + data


def gguf_seeds():
    arch = gkv("general.architecture", "str", "llama")
    every = [arch] + [gkv("k." + k, k, v) for k, v in
                      [("u8", 7), ("i8", -7), ("u16", 700), ("i16", -700), ("u32", 70000), ("i32", -70000),
                       ("f32", 0.5), ("bool", True), ("u64", 2**40), ("i64", -2**40), ("f64", 1e-300)]]
    every += [gkv("k.arr.i32", ("arr", "i32"), [1, -2, 3]), gkv("k.arr.str", ("arr", "str"), ["a", "", "bc"]),
              gkv("k.arr.f32", ("arr", "f32"), [0.25]), gkv("k.arr.empty", ("arr", "u8"), [])]
    t3 = [("a", [4, 2], 0), ("b", [32], 8), ("c", [3], 1)]
    s = {}
    s["valid-no-tensors"] = gguf([arch], [])
    s["valid-every-kv-type"] = gguf(every, [("w", [2], 0)])
    s["valid-tensors"] = gguf([arch], t3)
    s["valid-block-types"] = gguf([arch], [("q4k", [256, 1], 12), ("q6k", [256], 14), ("q4_0", [64, 2], 2),
                                           ("bf16", [3, 1, 1, 2], 30), ("i8", [5], 24)])
    s["valid-align64"] = gguf([arch, gkv("general.alignment", "u32", 64)], t3, align=64)
    s["valid-v2"] = gguf([arch], t3, version=2)
    s["valid-split-shard"] = gguf([gkv("split.no", "u16", 1), gkv("split.count", "u16", 3),
                                   gkv("split.tensors.count", "i32", 6)], [("t2.0", [16], 0), ("t2.1", [16], 0)])
    s["valid-zero-dims"] = gguf([arch], [("scalar", [], 0), ("empty", [0, 5], 0), ("v", [2], 0)])
    s["lenient-no-final-padding"] = gguf([arch], [("a", [3], 0)])[:-20]
    # Broken, one check each.
    ok = s["valid-tensors"]
    s["broken-magic"] = b"GGUX" + ok[4:]
    s["broken-version1"] = gguf([arch], t3, version=1)
    s["broken-endian"] = gguf([arch], t3, version=0x03000000)
    s["broken-n-kv-huge"] = gguf([arch], t3, counts=(3, 2**40))
    s["broken-n-tensors-negative"] = gguf([arch], t3, counts=(2**64 - 1, 1))
    s["broken-string-past-eof"] = gguf([gstr("general.name") + struct.pack("<IQ", 8, 2**40)], [])
    s["broken-empty-key"] = gguf([gkv("", "u32", 1)], [])
    s["broken-duplicate-key"] = gguf([arch, arch], [])
    s["broken-type13"] = gguf([gkv("x", ("raw", 13, b"\0" * 8), None)], [])
    s["broken-nested-array"] = gguf([gkv("x", ("raw", 9, struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 4, 0)), None)], [])
    s["broken-array-count"] = gguf([gkv("x", ("raw", 9, struct.pack("<IQ", 4, 2**61)), None)], [])
    s["broken-alignment-3"] = gguf([arch, gkv("general.alignment", "u32", 3)], [])
    s["broken-alignment-u64"] = gguf([arch, gkv("general.alignment", "u64", 32)], [])
    s["broken-5-dims"] = gguf([arch], [("a", [1, 1, 1, 1, 1], 0)])
    s["broken-ne-overflow"] = gguf([arch], [("a", [2**62, 2**62], 0)], data=b"")
    s["broken-ne-negative"] = gguf([arch], [("a", [-1], 0)], data=b"")
    s["broken-type-4"] = gguf([arch], [("a", [32], 4)], data=b"\0" * 32)
    s["broken-type-99"] = gguf([arch], [("a", [32], 99)], data=b"\0" * 32)
    s["broken-q8-ne0"] = gguf([arch], [("a", [33], 8)], data=b"\0" * 64)
    s["broken-gap"] = gguf([arch], t3, offsets=[0, 32, 128], data=b"\0" * 160)
    s["broken-overlap"] = gguf([arch], t3, offsets=[0, 32, 64])
    s["broken-misaligned"] = gguf([arch], t3, offsets=[0, 32, 100])
    s["broken-data-past-eof"] = ok[:-40]
    s["broken-duplicate-tensor"] = gguf([arch], [("a", [4], 0), ("a", [4], 0)])
    s["broken-long-name"] = gguf([arch], [("n" * 64, [4], 0)])
    return s


def write_seeds(directory, seeds):
    os.makedirs(directory, exist_ok=True)
    for old in os.listdir(directory):
        os.remove(os.path.join(directory, old))
    for name, content in sorted(seeds.items()):
        with open(os.path.join(directory, name), "wb") as f:
            f.write(content)
    print(f"wrote {len(seeds)} seeds to {directory}")


def main():
    seeds = {}
    f32 = struct.pack("<6f", 0, 1, 2, 3, 4, 5)
    seeds["valid-f32"] = valid([("attn.0", "F32", [1, 2, 3], f32)])
    seeds["valid-empty"] = valid([])
    seeds["valid-metadata"] = valid([("w", "BF16", [2], struct.pack("<2H", 0x3F80, 0x7FC0))],
                                    {"format": "pt", "note": "é"})
    seeds["valid-mixed"] = valid([
        ("q", "F64", [2, 2], struct.pack("<4d", 1.5, -2.0, float("inf"), 0.0)),
        ("k", "F16", [3], struct.pack("<3H", 0x3C00, 0x7E00, 0x0001)),
        ("ids", "I64", [2], struct.pack("<2q", -1, 7)),
        ("mask", "BOOL", [3], b"\x01\x00\x01"),
        ("scalar", "F32", [], struct.pack("<f", 3.0)),
        ("none", "BF16", [0, 4], b""),
        ("f4", "F4", [4], b"\x12\x34"),
        ("f6", "F6_E2M3", [4], b"\x00\x01\x02"),
    ])
    seeds["valid-every-dtype"] = valid([("t_" + d, d, [8], bytes(range(nbytes(d, [8])))) for d in BITS])
    # Broken, one check each.
    seeds["broken-short"] = b"\x10\x00\x00"
    seeds["broken-header-past-eof"] = struct.pack("<Q", 100) + b"{}"
    seeds["broken-header-2pow63"] = struct.pack("<Q", 1 << 63) + b"{}      "
    seeds["broken-data-short"] = raw({"w": entry("F32", [4], 0, 16)}, b"\x00" * 8)
    seeds["broken-overlap"] = raw({"a": entry("F32", [2], 0, 8), "b": entry("F32", [2], 4, 12)}, b"\x00" * 12)
    seeds["broken-gap"] = raw({"a": entry("U8", [2], 0, 2), "b": entry("U8", [2], 3, 5)}, b"\x00" * 5)
    seeds["broken-trailing"] = raw({"a": entry("U8", [2], 0, 2)}, b"\x00" * 6)
    seeds["broken-out-of-range"] = raw({"a": entry("U8", [4], 100, 104)}, b"\x00" * 4)
    seeds["broken-size-mismatch"] = raw({"w": entry("F32", [3], 0, 8)}, b"\x00" * 8)
    seeds["broken-json"] = file_from_header('{"a": {', b"")
    seeds["broken-utf8"] = file_from_header(b'{"\xff":1}', b"")
    seeds["broken-not-object"] = file_from_header("[1,2,3]", b"")
    seeds["broken-unknown-dtype"] = raw({"w": entry("Q4", [4], 0, 2)}, b"\x00" * 2)
    seeds["broken-missing-field"] = raw({"w": {"dtype": "F32", "shape": [1]}}, b"\x00" * 4)
    seeds["broken-negative-shape"] = raw({"w": entry("F32", [-1], 0, 4)}, b"\x00" * 4)
    seeds["broken-float-shape"] = raw({"w": entry("F32", [1.0], 0, 4)}, b"\x00" * 4)
    seeds["broken-shape-overflow"] = raw({"w": entry("F16", [1 << 32, 1 << 32, 2], 0, 8)}, b"\x00" * 8)
    seeds["broken-duplicate"] = file_from_header(
        '{"w":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}',
        b"\x00\x00")
    seeds["broken-metadata"] = raw({"__metadata__": {"epoch": 3}}, b"")
    seeds["index-valid"] = json.dumps({"metadata": {"total_size": 16},
                                       "weight_map": {"a": "model-00001-of-00002.safetensors",
                                                      "b": "model-00002-of-00002.safetensors"}},
                                      indent=2, sort_keys=True).encode() + b"\n"
    seeds["index-escape"] = json.dumps({"weight_map": {"a": "../../etc/passwd"}}).encode()
    write_seeds(OUT, seeds)
    write_seeds(GGUF_OUT, gguf_seeds())


if __name__ == "__main__":
    main()
