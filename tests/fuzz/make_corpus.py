#!/usr/bin/env python3
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""Writes the fuzz target's seed corpus into tests/fuzz/corpus/ (the generated files are committed).

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


def main():
    os.makedirs(OUT, exist_ok=True)
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
    for old in os.listdir(OUT):
        os.remove(os.path.join(OUT, old))
    for name, content in sorted(seeds.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(content)
    print(f"wrote {len(seeds)} seeds to {OUT}")


if __name__ == "__main__":
    main()
