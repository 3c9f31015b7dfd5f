#!/usr/bin/python3
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""Writes the llama-imatrix fixtures of tests/test_imatrix.cpp, with numpy and the standard
library only (no code shared with the C++ under test):

  tiny.gguf       GGUF form, laid out byte for byte as llama-imatrix's save_imatrix writes it
                  (ggml's gguf writer: KVs general.type, imatrix.datasets, imatrix.chunk_count,
                  imatrix.chunk_size; per entry in name order <name>.in_sum2, <name>.counts and,
                  when collected, <name>.in_sum; F32; trailing 1-dims dropped; alignment 32)
  tiny.dat        legacy form as save_imatrix_legacy writes it (values = sum2 / count * ncall,
                  ncall = ceil(count / chunk_size), trailer last_chunk + dataset name)
  expected.json   what a reader must get from each: names, sums, counts (the .dat's rebuilt as
                  llama-imatrix's load_imatrix_legacy does, with chunk_size 512)
  broken_*.gguf / broken_*.dat   one defect each (see BROKEN below)

It can also check a GGUF imatrix written by someone else against the same layout rules:
  /usr/bin/python3 tests/data/imatrix/make_imatrix.py --check FILE

Deterministic: rerunning writes identical files.
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

ALIGN = 32
CHUNK = 512  # tokens per chunk of the run these files pretend to come from
GGUF_STRING, GGUF_ARRAY, GGUF_UINT32 = 8, 9, 4
F32, F16 = 0, 1

# ------------------------------------------------------------------ a minimal GGUF v3 writer


def gguf_str(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def kv_bytes(key, kind, value):
    out = gguf_str(key) + struct.pack("<I", kind)
    if kind == GGUF_STRING:
        return out + gguf_str(value)
    if kind == GGUF_UINT32:
        return out + struct.pack("<I", value)
    if kind == GGUF_ARRAY:  # of strings
        return out + struct.pack("<IQ", GGUF_STRING, len(value)) + b"".join(gguf_str(v) for v in value)
    raise ValueError(kind)


def pad(n):
    return (ALIGN - n % ALIGN) % ALIGN


def gguf_file(kvs, tensors):
    """kvs: [(key, kind, value)]; tensors: [(name, ne list, ggml type, bytes)] in file order."""
    head = b"GGUF" + struct.pack("<Iqq", 3, len(tensors), len(kvs))
    head += b"".join(kv_bytes(*kv) for kv in kvs)
    offset = 0
    for name, ne, ty, data in tensors:
        head += gguf_str(name) + struct.pack("<I", len(ne)) + struct.pack("<%dq" % len(ne), *ne)
        head += struct.pack("<IQ", ty, offset)
        offset += len(data) + pad(len(data))
    body = b"".join(data + b"\0" * pad(len(data)) for _, _, _, data in tensors)
    return head + b"\0" * pad(len(head)) + body


def f32_bytes(values):
    return np.asarray(values, dtype="<f4").tobytes()


def ne_of(n_cols, n_mat):
    return [n_cols] if n_mat == 1 else [n_cols, n_mat]  # ggml_n_dims drops a trailing 1


# ------------------------------------------------------------------ the statistics


def make_entries(rng):
    """Entries as llama-imatrix holds them: float32 sums, integer counts per matrix."""
    def dense(name, n_cols, tokens, with_sum, offset=0.0):
        x = (rng.standard_normal((tokens, n_cols)) * rng.uniform(0.2, 3.0, n_cols) + offset).astype(np.float32)
        e = {"name": name, "n_mat": 1, "counts": [tokens],
             "sum2": (x.astype(np.float64) ** 2).sum(axis=0).astype(np.float32)}
        if with_sum:
            e["sum"] = x.astype(np.float64).sum(axis=0).astype(np.float32)
        return e

    entries = [
        dense("blk.0.attn_output.weight", 8, 1024, True, offset=0.5),
        dense("blk.0.attn_q.weight", 6, 1024, False),
        dense("blk.1.attn_output.weight", 8, 1024, True),
        dense("blk.10.attn_output.weight", 8, 1024, False),
        dense("output.weight", 4, 1024, False),
    ]
    # A mixture-of-experts weight: 3 experts, 4 columns, per-expert token counts, one expert unused.
    counts = [700, 0, 324]
    sum2 = np.zeros((3, 4), dtype=np.float32)
    s = np.zeros((3, 4), dtype=np.float32)
    for m, c in enumerate(counts):
        if c:
            x = rng.standard_normal((c, 4)).astype(np.float32)
            sum2[m] = (x.astype(np.float64) ** 2).sum(axis=0)
            s[m] = x.astype(np.float64).sum(axis=0)
    entries.append({"name": "blk.0.ffn_up_exps.weight", "n_mat": 3, "counts": counts,
                    "sum2": sum2.reshape(-1), "sum": s.reshape(-1)})
    return sorted(entries, key=lambda e: e["name"])


KVS = [("general.type", GGUF_STRING, "imatrix"),
       ("imatrix.datasets", GGUF_ARRAY, ["calibration.txt", "more text.txt"]),
       ("imatrix.chunk_count", GGUF_UINT32, 2),
       ("imatrix.chunk_size", GGUF_UINT32, CHUNK)]


def gguf_tensors(entries):
    out = []
    for e in entries:
        n_mat = e["n_mat"]
        n_cols = len(e["sum2"]) // n_mat
        out.append((e["name"] + ".in_sum2", ne_of(n_cols, n_mat), F32, f32_bytes(e["sum2"])))
        out.append((e["name"] + ".counts", ne_of(1, n_mat), F32, f32_bytes(e["counts"])))
        if "sum" in e:
            out.append((e["name"] + ".in_sum", ne_of(n_cols, n_mat), F32, f32_bytes(e["sum"])))
    return out


def dat_file(entries, last_chunk, dataset):
    """save_imatrix_legacy: ncall = ceil(max count / chunk), value = (sum2 / count) * ncall in
    float32 (a matrix without tokens stores 1 * ncall)."""
    out = struct.pack("<i", len(entries))
    for e in entries:
        name = e["name"].encode()
        ncall = (max(e["counts"]) + CHUNK - 1) // CHUNK
        n_mat = e["n_mat"]
        n_cols = len(e["sum2"]) // n_mat
        vals = np.empty(len(e["sum2"]), dtype=np.float32)
        for i, v in enumerate(np.asarray(e["sum2"], dtype=np.float32)):
            count = np.float32(e["counts"][i // n_cols])
            value = v
            if count == 0:
                value, count = np.float32(1), np.float32(1)
            vals[i] = (value / count) * np.float32(ncall)
        out += struct.pack("<i", len(name)) + name + struct.pack("<ii", ncall, len(vals)) + vals.astype("<f4").tobytes()
    ds = dataset.encode()
    return out + struct.pack("<i", last_chunk) + struct.pack("<i", len(ds)) + ds


def expected_gguf(entries):
    out = []
    for e in entries:
        d = {"name": e["name"], "n_mat": e["n_mat"], "counts": [float(c) for c in e["counts"]],
             "sum2": [float(v) for v in np.asarray(e["sum2"], dtype=np.float32)]}
        if "sum" in e:
            d["sum"] = [float(v) for v in np.asarray(e["sum"], dtype=np.float32)]
        out.append(d)
    return out


def expected_dat(dat):
    """Read back the .dat independently, then rebuild sums and counts as load_imatrix_legacy does:
    sum2 = value * chunk_size, count = ncall * chunk_size (n_mat is not stored: 1)."""
    (n,) = struct.unpack_from("<i", dat, 0)
    at = 4
    out = []
    for _ in range(n):
        (ln,) = struct.unpack_from("<i", dat, at)
        name = dat[at + 4:at + 4 + ln].decode()
        at += 4 + ln
        ncall, nval = struct.unpack_from("<ii", dat, at)
        at += 8
        vals = np.frombuffer(dat, dtype="<f4", count=nval, offset=at).astype(np.float64)
        at += 4 * nval
        out.append({"name": name, "n_mat": 1, "counts": [float(ncall * CHUNK)],
                    "sum2": [float(v * CHUNK) for v in vals]})
    return sorted(out, key=lambda e: e["name"])


# ------------------------------------------------------------------ broken files


def broken_files(entries):
    """name -> (bytes, the entry the error must name, a phrase the message must contain)."""
    ok = gguf_tensors(entries)
    target = "blk.0.attn_output.weight"
    files = {}

    def without(suffix):
        return [t for t in ok if t[0] != target + suffix]

    def replace(suffix, new):
        return [new if t[0] == target + suffix else t for t in ok]

    files["broken_missing_counts.gguf"] = (gguf_file(KVS, without(".counts")), target, ".counts\" is missing")
    files["broken_missing_in_sum2.gguf"] = (gguf_file(KVS, without(".in_sum2")), target, ".in_sum2\" is missing")
    files["broken_length_mismatch.gguf"] = (
        gguf_file(KVS, replace(".in_sum", (target + ".in_sum", [7], F32, f32_bytes(np.ones(7))))),
        target, "lengths differ")
    neg = np.ones(8, dtype=np.float32)
    neg[3] = -2.0
    files["broken_negative_sum2.gguf"] = (
        gguf_file(KVS, replace(".in_sum2", (target + ".in_sum2", [8], F32, f32_bytes(neg)))),
        target, "column 3 is -2")
    files["broken_nan_count.gguf"] = (
        gguf_file(KVS, replace(".counts", (target + ".counts", [1], F32, f32_bytes([np.nan])))),
        target, "token count 0 is nan")
    files["broken_counts_shape.gguf"] = (
        gguf_file(KVS, replace(".counts", (target + ".counts", [2], F32, f32_bytes([1024, 1024])))),
        target, "expected {1, n_mat} or {n_mat}")
    files["broken_f16_sums.gguf"] = (
        gguf_file(KVS, replace(".in_sum2", (target + ".in_sum2", [8], F16,
                                            np.ones(8, dtype="<f2").tobytes()))),
        target, "imatrix tensors are f32")
    files["broken_zero_count.gguf"] = (
        gguf_file(KVS, replace(".counts", (target + ".counts", [1], F32, f32_bytes([0])))),
        target, "with a token count of 0")
    model_kvs = [("general.type", GGUF_STRING, "model")] + KVS[1:]
    files["broken_not_imatrix.gguf"] = (gguf_file(model_kvs, ok), "general.type", "not \"imatrix\"")

    def dat_entry(name, ncall, vals):
        b = name.encode()
        return struct.pack("<i", len(b)) + b + struct.pack("<ii", ncall, len(vals)) + f32_bytes(vals)

    good = dat_entry("blk.0.attn_k.weight", 2, [1.0, 2.0])
    files["broken_nan_value.dat"] = (struct.pack("<i", 2) + good + dat_entry("blk.0.attn_q.weight", 2, [1.0, np.nan]),
                                     "blk.0.attn_q.weight", "column 1 is nan")
    files["broken_negative_ncall.dat"] = (struct.pack("<i", 2) + good + dat_entry("blk.0.attn_q.weight", -1, [1.0]),
                                          "blk.0.attn_q.weight", "ncall is -1")
    files["broken_duplicate.dat"] = (struct.pack("<i", 2) + good + good, "blk.0.attn_k.weight", "appears twice")
    files["broken_trailing.dat"] = (struct.pack("<i", 1) + good + struct.pack("<ii", 3, 2) + b"ab" + b"xyz",
                                    "", "3 bytes follow the trailer")
    files["broken_zero_entries.dat"] = (struct.pack("<i", 0), "", "entry count is 0")
    return files


# ------------------------------------------------------------------ --check


def check_gguf_imatrix(path):
    """Checks an imatrix GGUF against llama-imatrix's layout; returns a list of problems."""
    data = open(path, "rb").read()
    problems = []
    if data[:4] != b"GGUF":
        return ["no GGUF magic"]
    version, n_t, n_kv = struct.unpack_from("<Iqq", data, 4)
    at = 24

    def rstr():
        nonlocal at
        (n,) = struct.unpack_from("<Q", data, at)
        s = data[at + 8:at + 8 + n].decode()
        at += 8 + n
        return s

    kvs = []
    for _ in range(n_kv):
        key = rstr()
        (kind,) = struct.unpack_from("<I", data, at)
        at += 4
        if kind == GGUF_STRING:
            kvs.append((key, kind, rstr()))
        elif kind == GGUF_UINT32:
            kvs.append((key, kind, struct.unpack_from("<I", data, at)[0]))
            at += 4
        elif kind == GGUF_ARRAY:
            et, cnt = struct.unpack_from("<IQ", data, at)
            at += 12
            if et != GGUF_STRING:
                problems.append("%s: array of type %d" % (key, et))
                return problems
            kvs.append((key, kind, [rstr() for _ in range(cnt)]))
        else:
            problems.append("%s: unexpected KV type %d" % (key, kind))
            return problems
    if [(k, t) for k, t, _ in kvs] != [(k, t) for k, t, _ in KVS]:
        problems.append("KVs %s, expected %s" % ([(k, t) for k, t, _ in kvs], [(k, t) for k, t, _ in KVS]))
    infos = []
    for _ in range(n_t):
        name = rstr()
        (nd,) = struct.unpack_from("<I", data, at)
        ne = list(struct.unpack_from("<%dq" % nd, data, at + 4))
        ty, off = struct.unpack_from("<IQ", data, at + 4 + 8 * nd)
        at += 4 + 8 * nd + 12
        infos.append((name, ne, ty, off))
    base = at + pad(at)
    expected_off = 0
    names = []
    for name, ne, ty, off in infos:
        size = 4 * int(np.prod(ne))
        if ty != F32:
            problems.append("%s: type %d" % (name, ty))
        if off != expected_off:
            problems.append("%s: offset %d, expected %d" % (name, off, expected_off))
        if ne[-1] == 1 and len(ne) > 1:
            problems.append("%s: trailing 1-dim in %s" % (name, ne))
        expected_off += size + pad(size)
        names.append(name)
    if len(data) != base + expected_off:
        problems.append("file is %d bytes, expected %d" % (len(data), base + expected_off))
    # per entry: in_sum2, counts, [in_sum]; entries in name order
    order = []
    i = 0
    while i < len(names):
        if not names[i].endswith(".in_sum2"):
            problems.append("tensor %d is %s, expected an .in_sum2" % (i, names[i]))
            break
        e = names[i][:-len(".in_sum2")]
        order.append(e)
        if i + 1 >= len(names) or names[i + 1] != e + ".counts":
            problems.append("%s.in_sum2 not followed by its .counts" % e)
            break
        i += 2
        if i < len(names) and names[i] == e + ".in_sum":
            i += 1
    if order != sorted(order):
        problems.append("entries not in name order")
    return problems


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)))
    ap.add_argument("--check", metavar="FILE", help="check a GGUF imatrix file's layout and exit")
    args = ap.parse_args()
    if args.check:
        problems = check_gguf_imatrix(args.check)
        for p in problems:
            print("%s: %s" % (args.check, p))
        print("%s: %s" % (args.check, "OK" if not problems else "%d problem(s)" % len(problems)))
        sys.exit(1 if problems else 0)

    rng = np.random.default_rng(20260815)
    entries = make_entries(rng)
    os.makedirs(args.out, exist_ok=True)

    def write(name, data):
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(data)

    gguf = gguf_file(KVS, gguf_tensors(entries))
    write("tiny.gguf", gguf)
    assert not check_gguf_imatrix(os.path.join(args.out, "tiny.gguf"))
    dense = [e for e in entries if e["n_mat"] == 1]  # a .dat cannot say n_mat: only dense entries
    dat = dat_file(dense, 2, "calibration.txt")
    write("tiny.dat", dat)
    broken = broken_files(entries)
    for name, (data, _, _) in broken.items():
        write(name, data)
    expected = {
        "gguf": {"datasets": KVS[1][2], "chunk_count": 2, "chunk_size": CHUNK, "entries": expected_gguf(entries)},
        "dat": {"datasets": ["calibration.txt"], "chunk_count": 2, "chunk_size": CHUNK,
                "entries": expected_dat(dat),
                # the .dat holds E[x^2] * ncall; E[x^2] = sum2 / count as llama-quantize reads it
                "mean_squares": {e["name"]: [float(np.float64(v) / max(e["counts"])) if max(e["counts"]) else 0.0
                                             for v in np.asarray(e["sum2"], dtype=np.float32)] for e in dense}},
        "broken": {name: {"entry": entry, "contains": phrase} for name, (_, entry, phrase) in broken.items()},
    }
    with open(os.path.join(args.out, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
