#!/usr/bin/python3
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""`mhaprune prune` on a 2 GiB Q8_0 GGUF against `cp` of the same file: wall time and peak RSS.

Targets (from the issues): pruning a 2 GiB Q8_0 GGUF with LLaMA-7B-shaped layers takes at most 1.3x
the time of `cp` + `sync` of the same file (issue 14; 1.5x before), with a peak RSS of at most 2
layers' worth.

The script writes a GGUF v3 file (its own small writer; numpy only, written one tensor chunk at a
time so the generator itself stays small): architecture "llama", 10 blocks of LLaMA-7B shape
(n_embd 4096, 32 heads of 128, 32 KV heads, FFN 11008), every matrix Q8_0 with random quants and
per-head scales, norms F32, token_embd/output over a 256-token byte vocabulary so the layers make up
nearly all of the ~2 GiB. Then, in one run, interleaved, each REPEAT times:

  cp       `cp IN OUT && sync OUT`   (the copy and the flush of its data: the prune fsyncs too)
  prune    `mhaprune prune IN -o OUT --sparsity 0.25 --scope local`   (default: fsync before rename)
  heads    `mhaprune prune IN -o OUT --heads SPEC`   (same 8 heads per layer given explicitly; the
           tool still scores every block for its report)

Each run is a fresh child process; its wall time comes from time.monotonic() around it and its peak
RSS from `/usr/bin/time -f %M` (its ru_maxrss; not os.wait4 in this script, see run_child). cp+sync's
wall time covers both commands.

Page cache: WARM for every run by default: the input is read once before the first run (and stays
cached: it is 2 GiB on a machine with more free RAM than that), and every run reads it from the page
cache; each output is deleted after its run. `--cache cold` drops the input's pages before every run
instead, with posix_fadvise(POSIX_FADV_DONTNEED) on the file (clean pages: no root needed, and it
touches no other file, unlike `echo 3 > /proc/sys/vm/drop_caches`), checked with `fincore`; cp and
prune then both read the disk.

Prints a table, then
  time ratio = median prune wall / median cp+sync wall          (target <= 1.3)
  RSS ratio  = max prune peak RSS / bytes of all tensors of blk.0 (target <= 2)
and, from the tool's progress lines on stderr (plain lines when not a terminal), where the prune's
wall time goes: "score" = start until every block is scored (magnitude: Q/K/V/O decoded one row at a
time), "write" =
from there until the last block's attn_output is written, "rest" = the wall time left (the last
block's FFN, output.weight, the fsync, the rename, exit). A "cpu" column (user+sys of the child)
helps read runs on a busy machine. Exits 0 whatever the ratios (they depend on the machine); exits 1 when
a run fails or an output is not what it should be (head counts, sizes).

    /usr/bin/python3 tests/bench/gguf_prune_bench.py --mhaprune build/examples/mhaprune/mhaprune
    /usr/bin/python3 tests/bench/gguf_prune_bench.py --mhaprune PATH --dir /var/tmp/x --keep --repeat 5

Needs ~6.5 GiB of space under --dir (input and two outputs at most at once) and takes a few minutes.
Not part of CTest: it writes gigabytes.
"""

import argparse
import os
import re
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

# --- GGUF value types and ggml types (GGUF spec; ggml-common.h) ------------------------------------
U8, I8, U16, I16, U32, I32, F32V, BOOL, STRING, ARRAY, U64, I64, F64V = range(13)
_FMT = {U8: "<B", I8: "<b", U16: "<H", I16: "<h", U32: "<I", I32: "<i", F32V: "<f", BOOL: "<B",
        U64: "<Q", I64: "<q", F64V: "<d"}
_NP = {U8: "<u1", I8: "<i1", U32: "<u4", I32: "<i4", F32V: "<f4"}
GGML_F32, GGML_Q8_0 = 0, 8
QK8_0 = 32
Q8_0_BLOCK = np.dtype([("d", "<f2"), ("qs", "i1", (QK8_0,))])  # 34 bytes, as block_q8_0
assert Q8_0_BLOCK.itemsize == 34
ALIGNMENT = 32
LLAMA_FTYPE_MOSTLY_Q8_0 = 7


def pad(n, a=ALIGNMENT):
    return (n + a - 1) // a * a


def enc_string(s):
    b = s.encode("utf-8")
    return struct.pack("<Q", len(b)) + b


def enc_kv(key, vtype, value, etype=None):
    """key, then u32 value type, then the value (arrays: u32 element type, u64 count, elements)."""
    out = enc_string(key) + struct.pack("<I", vtype)
    if vtype == STRING:
        return out + enc_string(value)
    if vtype == ARRAY:
        out += struct.pack("<IQ", etype, len(value))
        if etype == STRING:
            return out + b"".join(enc_string(s) for s in value)
        return out + np.asarray(value, dtype=_NP[etype]).tobytes()
    return out + struct.pack(_FMT[vtype], value)


def tensor_nbytes(ttype, ne):
    n_rows = 1
    for d in ne[1:]:
        n_rows *= d
    if ttype == GGML_F32:
        return 4 * ne[0] * n_rows
    assert ttype == GGML_Q8_0 and ne[0] % QK8_0 == 0
    return ne[0] // QK8_0 * Q8_0_BLOCK.itemsize * n_rows


# --- the model ---------------------------------------------------------------------------------------
class Shape:
    def __init__(self, layers, n_embd=4096, heads=32, kv_heads=32, head_dim=128, ffn=11008, vocab=256):
        self.layers, self.n_embd, self.heads, self.kv_heads = layers, n_embd, heads, kv_heads
        self.head_dim, self.ffn, self.vocab = head_dim, ffn, vocab


def tensor_list(s):
    """(name, ne (ne[0] = contiguous input dim), ggml type) in llama.cpp's usual order."""
    E, F = s.n_embd, s.ffn
    t = [("token_embd.weight", [E, s.vocab], GGML_Q8_0)]
    for i in range(s.layers):
        p = "blk.%d." % i
        t += [(p + "attn_norm.weight", [E], GGML_F32),
              (p + "attn_q.weight", [E, s.heads * s.head_dim], GGML_Q8_0),
              (p + "attn_k.weight", [E, s.kv_heads * s.head_dim], GGML_Q8_0),
              (p + "attn_v.weight", [E, s.kv_heads * s.head_dim], GGML_Q8_0),
              (p + "attn_output.weight", [s.heads * s.head_dim, E], GGML_Q8_0),
              (p + "ffn_norm.weight", [E], GGML_F32),
              (p + "ffn_gate.weight", [E, F], GGML_Q8_0),
              (p + "ffn_up.weight", [E, F], GGML_Q8_0),
              (p + "ffn_down.weight", [F, E], GGML_Q8_0)]
    t += [("output_norm.weight", [E], GGML_F32), ("output.weight", [E, s.vocab], GGML_Q8_0)]
    return t


def kv_list(s):
    a = "llama."
    tokens = ["<0x%02X>" % b for b in range(s.vocab)]
    return [
        enc_kv("general.architecture", STRING, "llama"),
        enc_kv("general.name", STRING, "mhaprune gguf_prune_bench synthetic 7B-shaped"),
        enc_kv("general.file_type", U32, LLAMA_FTYPE_MOSTLY_Q8_0),
        enc_kv(a + "vocab_size", U32, s.vocab),
        enc_kv(a + "context_length", U32, 4096),
        enc_kv(a + "embedding_length", U32, s.n_embd),
        enc_kv(a + "block_count", U32, s.layers),
        enc_kv(a + "feed_forward_length", U32, s.ffn),
        enc_kv(a + "rope.dimension_count", U32, s.head_dim),
        enc_kv(a + "rope.freq_base", F32V, 10000.0),
        enc_kv(a + "attention.head_count", U32, s.heads),
        enc_kv(a + "attention.head_count_kv", U32, s.kv_heads),
        enc_kv(a + "attention.key_length", U32, s.head_dim),
        enc_kv(a + "attention.value_length", U32, s.head_dim),
        enc_kv(a + "attention.layer_norm_rms_epsilon", F32V, 1e-5),
        enc_kv("tokenizer.ggml.model", STRING, "llama"),
        enc_kv("tokenizer.ggml.tokens", ARRAY, tokens, STRING),
        enc_kv("tokenizer.ggml.scores", ARRAY, [0.0] * s.vocab, F32V),
        enc_kv("tokenizer.ggml.token_type", ARRAY, [6] * s.vocab, I32),  # 6 = BYTE
        enc_kv("tokenizer.ggml.bos_token_id", U32, 1),
        enc_kv("tokenizer.ggml.eos_token_id", U32, 2),
    ]


def write_q8_0(f, rng, ne, row_scale, chunk_bytes=32 << 20):
    """Writes a Q8_0 tensor of ne = [cols, rows]: random quants in [-127, 127] (as ggml's rule makes
    them) and a finite f16 scale per block of row_scale[row] (1 +- 25 %), chunk by chunk of rows."""
    cols, rows = ne
    blocks_per_row = cols // QK8_0
    rows_per_chunk = max(1, chunk_bytes // (blocks_per_row * Q8_0_BLOCK.itemsize))
    for r0 in range(0, rows, rows_per_chunk):
        n = min(rows_per_chunk, rows - r0)
        blk = np.empty((n, blocks_per_row), dtype=Q8_0_BLOCK)
        # Raw generator words as bytes (fastest), -128 folded to -127.
        qs = rng.bit_generator.random_raw(n * blocks_per_row * QK8_0 // 8).view(np.int8)
        np.maximum(qs, -127, out=qs)
        blk["qs"] = qs.reshape(n, blocks_per_row, QK8_0)
        jitter = rng.uniform(0.75, 1.25, size=(n, blocks_per_row)).astype(np.float32)
        blk["d"] = (jitter * row_scale[r0:r0 + n, None]).astype(np.float16)
        f.write(memoryview(blk).cast("B"))


def make_model(path, s, seed=0):
    """Writes the GGUF file; returns {tensor name: (ne, type, data bytes)}."""
    rng = np.random.default_rng(seed)
    tensors = tensor_list(s)
    head = [b"GGUF", struct.pack("<IqQ", 3, len(tensors), len(kv_list(s)))] + kv_list(s)
    off = 0
    infos = {}
    for name, ne, tt in tensors:
        head.append(enc_string(name) + struct.pack("<I", len(ne)) + struct.pack("<%dq" % len(ne), *ne)
                    + struct.pack("<IQ", tt, off))
        nbytes = tensor_nbytes(tt, ne)
        infos[name] = (ne, tt, nbytes, off)
        off = pad(off + nbytes)
    h = b"".join(head)
    # Per-head scales differ (0.5x .. 1.5x), so that the scores rank heads instead of tying.
    head_scale = rng.uniform(0.5, 1.5, size=(s.layers, s.heads)).astype(np.float32)
    base = np.float32(0.02 / 127)
    with open(path, "wb") as f:
        f.write(h)
        f.write(b"\0" * (pad(len(h)) - len(h)))
        data_start = pad(len(h))
        for name, ne, tt in tensors:
            assert f.tell() == data_start + infos[name][3], name
            nbytes = infos[name][2]
            if tt == GGML_F32:
                f.write(np.ones(ne[0], dtype="<f4").tobytes())
            else:
                rows = ne[1]
                scale = np.full(rows, base, dtype=np.float32)
                m = re.match(r"blk\.(\d+)\.attn_(q|k|v|output)\.weight$", name)
                if m:
                    hs = head_scale[int(m.group(1))]
                    if m.group(2) == "output":
                        # O's heads are its columns: every row sees all heads; keep rows uniform.
                        pass
                    elif m.group(2) == "q":
                        scale = base * np.repeat(hs, s.head_dim)
                    else:
                        group = s.heads // s.kv_heads
                        scale = base * np.repeat(hs.reshape(s.kv_heads, group).mean(axis=1), s.head_dim)
                write_q8_0(f, rng, ne, scale.astype(np.float32))
            f.write(b"\0" * (pad(nbytes) - nbytes))
    return infos


# --- a small read-back (header and offsets; data checked by size and spot values) ------------------
class GgufHeader:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.f = f
            assert f.read(4) == b"GGUF", "bad magic"
            self.version, n_tensors, n_kv = struct.unpack("<IqQ", f.read(20))
            self.kv = {}
            for _ in range(n_kv):
                key = self._str()
                (vt,) = struct.unpack("<I", f.read(4))
                self.kv[key] = self._val(vt)
            self.tensors = []
            for _ in range(n_tensors):
                name = self._str()
                (nd,) = struct.unpack("<I", f.read(4))
                ne = list(struct.unpack("<%dq" % nd, f.read(8 * nd)))
                tt, off = struct.unpack("<IQ", f.read(12))
                self.tensors.append((name, ne, tt, off))
            self.data_start = pad(f.tell(), self.kv.get("general.alignment", ALIGNMENT))
        del self.f
        self.tensor = {t[0]: t for t in self.tensors}

    def _str(self):
        (n,) = struct.unpack("<Q", self.f.read(8))
        return self.f.read(n).decode("utf-8")

    def _val(self, vt):
        if vt == STRING:
            return self._str()
        if vt == ARRAY:
            et, n = struct.unpack("<IQ", self.f.read(12))
            if et == STRING:
                return [self._str() for _ in range(n)]
            dt = np.dtype(_FMT[et])
            return np.frombuffer(self.f.read(n * dt.itemsize), dtype=dt)
        fmt = _FMT[vt]
        return struct.unpack(fmt, self.f.read(struct.calcsize(fmt)))[0]

    def check_layout(self):
        """Offsets cumulative and padded, file size exact, zero padding after each tensor."""
        expect = 0
        with open(self.path, "rb") as f:
            for name, ne, tt, off in self.tensors:
                if off != expect:
                    raise SystemExit("%s: tensor %s at offset %d, expected %d" % (self.path, name, off, expect))
                n = tensor_nbytes(tt, ne)
                f.seek(self.data_start + off + n)
                if any(f.read(pad(n) - n)):
                    raise SystemExit("%s: tensor %s: non-zero padding" % (self.path, name))
                expect = pad(off + n)
        size = os.path.getsize(self.path)
        if size != self.data_start + expect:
            raise SystemExit("%s: %d bytes, expected %d" % (self.path, size, self.data_start + expect))

    def read(self, name, offset, n):
        with open(self.path, "rb") as f:
            f.seek(self.data_start + self.tensor[name][3] + offset)
            return f.read(n)


def check_input(path, s, infos):
    g = GgufHeader(path)
    g.check_layout()
    assert g.version == 3 and g.kv["general.architecture"] == "llama"
    assert g.kv["llama.block_count"] == s.layers and len(g.kv["tokenizer.ggml.tokens"]) == s.vocab
    for name, ne, tt, off in g.tensors:
        assert infos[name][:2] == (ne, tt) and infos[name][3] == off, name
    # Spot check: first block of blk.0.attn_q is a block_q8_0 with a finite positive scale.
    blk = np.frombuffer(g.read("blk.0.attn_q.weight", 0, 34), dtype=Q8_0_BLOCK)[0]
    assert np.isfinite(blk["d"]) and blk["d"] > 0 and blk["qs"].min() >= -127
    return g


def check_output(path, s, removed_per_layer, inp):
    """Every layer lost `removed_per_layer` heads from Q/K/V rows and O columns; FFN untouched."""
    g = GgufHeader(path)
    g.check_layout()
    keep = s.heads - removed_per_layer
    row = s.n_embd // QK8_0 * 34
    for i in range(s.layers):
        p = "blk.%d." % i
        for t in ("attn_q", "attn_k", "attn_v"):
            ne = g.tensor[p + t + ".weight"][1]
            if ne != [s.n_embd, keep * s.head_dim]:
                raise SystemExit("%s: %s%s.weight has ne %r, expected [%d, %d]" % (path, p, t, ne, s.n_embd,
                                                                                  keep * s.head_dim))
        ne = g.tensor[p + "attn_output.weight"][1]
        if ne != [keep * s.head_dim, s.n_embd]:
            raise SystemExit("%s: %sattn_output.weight has ne %r" % (path, p, ne))
        kept = list(g.kv["mhaprune.head_ids.%d" % i])
        if len(kept) != keep:
            raise SystemExit("%s: mhaprune.head_ids.%d has %d ids, expected %d" % (path, i, len(kept), keep))
        # First and last kept Q rows: byte-identical to the input's rows of those heads.
        for j, h in ((0, kept[0]), (keep - 1, kept[-1])):
            got = g.read(p + "attn_q.weight", j * s.head_dim * row, row)
            want = inp.read(p + "attn_q.weight", h * s.head_dim * row, row)
            if got != want:
                raise SystemExit("%s: %sattn_q.weight row of kept head %d differs from the input" % (path, p, h))
    if g.kv["llama.attention.head_count"] != keep:
        raise SystemExit("%s: llama.attention.head_count = %r" % (path, g.kv["llama.attention.head_count"]))
    a = g.read("blk.%d.ffn_down.weight" % (s.layers - 1), 0, 1 << 16)
    if a != inp.read("blk.%d.ffn_down.weight" % (s.layers - 1), 0, 1 << 16):
        raise SystemExit("%s: ffn_down of the last block differs from the input" % path)


# --- measuring -----------------------------------------------------------------------------------------
def run_child(cmd, stderr_path=None):
    """Runs cmd as a fresh child under `/usr/bin/time -f "%M %U %S"`; returns (wall seconds, peak RSS
    bytes, exit status, CPU seconds user+sys). Peak RSS comes from /usr/bin/time, not from os.wait4 here: Python starts children
    with vfork, and Linux carries the mm's high-water RSS over exec, so this ~50 MiB interpreter's RSS
    would be the floor of every child's ru_maxrss. /usr/bin/time's own RSS is ~2 MiB."""
    fd, rss_path = tempfile.mkstemp(prefix="rss_", suffix=".txt")
    os.close(fd)
    err = open(stderr_path, "w") if stderr_path else subprocess.DEVNULL
    try:
        t0 = time.monotonic()
        p = subprocess.Popen(["/usr/bin/time", "-f", "%M %U %S", "-o", rss_path] + cmd, stdout=subprocess.DEVNULL,
                             stderr=err)
        code = p.wait()
        wall = time.monotonic() - t0
        with open(rss_path) as f:
            lines = f.read().split()
        try:
            rss_kib, cpu = int(lines[-3]), float(lines[-2]) + float(lines[-1])
        except (IndexError, ValueError):
            rss_kib, cpu = 0, 0.0
    finally:
        if stderr_path:
            err.close()
        os.unlink(rss_path)
    return wall, rss_kib * 1024, code, cpu


def cp_sync(src, dst):
    """cp then sync of the copy, as two children; wall covers both, RSS is the larger of the two."""
    w1, r1, c1, u1 = run_child(["cp", src, dst])
    w2, r2, c2, u2 = run_child(["sync", dst]) if c1 == 0 else (0.0, 0, 0, 0.0)
    return w1 + w2, max(r1, r2), c1 or c2, u1 + u2, (w1, w2)


def stage_times(stderr_path):
    """Seconds per stage from the last progress line of each stage ("mhaprune: STAGE k/n ... (T s)")."""
    out = {}
    with open(stderr_path) as f:
        for line in f:
            m = re.match(r"mhaprune: (\w+) (\d+)/(\d+).*\((?:(\d+) min )?([\d.]+) s\)\s*$", line)
            if m and m.group(2) == m.group(3):
                out[m.group(1)] = int(m.group(4) or 0) * 60 + float(m.group(5))
    return out


def drop_cached(path):
    """Drops the file's pages from the page cache (clean pages: no root needed) and checks that they went."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    res = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES", path], stdout=subprocess.PIPE,
                         text=True)
    if res.returncode == 0 and int(res.stdout.split()[0]) > 64 << 20:
        raise SystemExit("--cache cold: %s MiB of the input is still cached after DONTNEED" % (
            int(res.stdout.split()[0]) >> 20))


def fmt_mib(b):
    return "%.1f MiB" % (b / 2**20)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mhaprune", required=True, help="path of the mhaprune executable")
    ap.add_argument("--dir", help="where the files go (default: a fresh temp dir under /var/tmp, removed at the end)")
    ap.add_argument("--keep", action="store_true", help="keep the input file (and the temp dir)")
    ap.add_argument("--layers", type=int, default=10, help="blocks (10: 2.0 GiB)")
    ap.add_argument("--repeat", type=int, default=3, help="runs of each command, interleaved")
    ap.add_argument("--sparsity", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reuse", action="store_true", help="use DIR/model.gguf if it exists (same --layers)")
    ap.add_argument("--baseline", help="an older mhaprune executable: its `prune` runs as one more command "
                    "(before/after in one run)")
    ap.add_argument("--no-heads", action="store_true", help="skip the `prune --heads` runs")
    ap.add_argument("--cache", choices=("warm", "cold"), default="warm",
                    help="warm (default): the input is read from the page cache; cold: its pages are dropped "
                    "before every run (posix_fadvise DONTNEED, no root needed), so cp and prune alike read the disk")
    args = ap.parse_args()

    cli = os.path.abspath(args.mhaprune)
    if not os.access(cli, os.X_OK):
        raise SystemExit("%s: not an executable" % cli)
    s = Shape(args.layers)
    made_dir = args.dir is None
    work = tempfile.mkdtemp(prefix="mhaprune_gguf_bench_", dir="/var/tmp") if made_dir else args.dir
    os.makedirs(work, exist_ok=True)
    src = os.path.join(work, "model.gguf")
    failed = False
    try:
        t0 = time.monotonic()
        if not (args.reuse and os.path.exists(src)):
            make_model(src, s, args.seed)
            gen = "written in %.1f s" % (time.monotonic() - t0)
        else:
            gen = "reused"
        infos = {n: (ne, tt, tensor_nbytes(tt, ne), None) for n, ne, tt in tensor_list(s)}
        inp = GgufHeader(src)
        for name, ne, tt, off in inp.tensors:
            infos[name] = (ne, tt, infos[name][2], off)
        check_input(src, s, infos)
        size = os.path.getsize(src)
        layer_bytes = sum(v[2] for n, v in infos.items() if n.startswith("blk.0."))
        print("input:     %s, %.3f GiB (%d bytes), %s" % (src, size / 2**30, size, gen))
        print("shape:     %d blocks, n_embd %d, %d heads of %d (kv %d), ffn %d, vocab %d, Q8_0 (norms F32)"
              % (s.layers, s.n_embd, s.heads, s.head_dim, s.kv_heads, s.ffn, s.vocab))
        print("one layer: %s (%d bytes, all tensors of blk.0)" % (fmt_mib(layer_bytes), layer_bytes))
        print("mhaprune:  %s" % cli)
        print("cache:     " + ("warm (input read once before the runs; outputs deleted after each run)"
                               if args.cache == "warm" else
                               "cold (the input's pages dropped before every run; outputs deleted after each run)"))
        print("load:      %.2f %.2f %.2f (%d CPUs; a busy machine slows the CPU-heavier prune more than cp)"
              % (os.getloadavg() + (os.cpu_count(),)))

        n_remove = int(args.sparsity * s.heads + 1e-9)
        if args.cache == "warm":
            with open(src, "rb") as f:
                while f.read(1 << 24):
                    pass

        out = os.path.join(work, "out.gguf")
        base = [cli, "prune", src, "-o", out]
        prune_cmd = base + ["--sparsity", str(args.sparsity), "--scope", "local"]
        heads_spec = None
        commands = ["cp+sync", "prune"] + ([] if args.no_heads else ["prune --heads"])
        if args.baseline:
            commands.append("baseline")
            print("baseline:  %s" % os.path.abspath(args.baseline))
        results = {what: [] for what in commands}
        stages = {what: [] for what in commands if what != "cp+sync"}
        err_path = os.path.join(work, "stderr.txt")
        for i in range(args.repeat):
            for what in commands:
                if os.path.exists(out):
                    os.unlink(out)
                if args.cache == "cold":
                    drop_cached(src)
                if what == "cp+sync":
                    wall, rss, code, cpu, parts = cp_sync(src, out)
                    note = "cp %.2f s + sync %.2f s" % parts
                else:
                    # heads_spec is set by then: "prune" runs before "prune --heads" in every round.
                    if what == "baseline":
                        cmd = [os.path.abspath(args.baseline)] + prune_cmd[1:]
                    else:
                        cmd = prune_cmd if what == "prune" else base + ["--heads", heads_spec]
                    wall, rss, code, cpu = run_child(cmd, err_path)
                    st = stage_times(err_path)
                    st["rest"] = wall - sum(st.values())
                    stages[what].append(st)
                    note = ", ".join("%s %.2f s" % kv for kv in st.items())
                if code != 0:
                    with open(err_path) as f:
                        sys.stderr.write(f.read()[-4000:])
                    raise SystemExit("%s failed with exit code %d" % (what, code))
                if what == "cp+sync":
                    if os.path.getsize(out) != size:
                        raise SystemExit("cp made a file of the wrong size")
                else:
                    check_output(out, s, n_remove, inp)
                    if heads_spec is None:
                        g = GgufHeader(out)
                        spec = []
                        for l in range(s.layers):
                            kept = set(int(h) for h in g.kv["mhaprune.head_ids.%d" % l])
                            spec.append("%d:%s" % (l, ",".join(str(h) for h in range(s.heads) if h not in kept)))
                        heads_spec = ";".join(spec)
                results[what].append((wall, rss, cpu))
                print("  run %d  %-14s wall %6.2f s  cpu %5.2f s  peak RSS %10s   %s" % (
                    i + 1, what, wall, cpu, fmt_mib(rss), note))
                sys.stdout.flush()
                os.unlink(out)
        print()
        print("%-16s %10s %10s %10s %10s %14s" % ("command", "median s", "min s", "max s", "cpu s", "peak RSS"))
        med = {}
        for what, r in results.items():
            walls = [w for w, _, _ in r]
            med[what] = statistics.median(walls)
            print("%-16s %10.2f %10.2f %10.2f %10.2f %14s" % (
                what, med[what], min(walls), max(walls), statistics.median(c for _, _, c in r),
                fmt_mib(max(x for _, x, _ in r))))
        print("load average now: %.2f %.2f %.2f (%d CPUs)" % (os.getloadavg() + (os.cpu_count(),)))
        print()
        for what in stages:
            if stages[what] and all(stages[what]):
                keys = stages[what][0].keys()
                parts = ", ".join("%s %.2f s" % (k, statistics.median(st.get(k, 0) for st in stages[what]))
                                  for k in keys)
                print("%-16s median stage times (from its progress lines): %s" % (what, parts))
        print()
        cp_w = med["cp+sync"]
        for what in stages:
            ratio = med[what] / cp_w
            rss_ratio = max(x for _, x, _ in results[what]) / layer_bytes
            print("%-14s time ratio (median prune / median cp+sync): %.2f  (target <= 1.3)  %s"
                  % (what, ratio, "OK" if ratio <= 1.3 else "MISSED"))
            print("%-14s RSS ratio (peak RSS / one layer):            %.2f  (target <= 2)    %s"
                  % (what, rss_ratio, "OK" if rss_ratio <= 2 else "MISSED"))
    except SystemExit as e:
        failed = True
        print(e, file=sys.stderr)
    finally:
        if made_dir and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            for n in ("out.gguf", "stderr.txt"):
                try:
                    os.unlink(os.path.join(work, n))
                except FileNotFoundError:
                    pass
            if not args.keep and os.path.exists(src) and not args.reuse:
                os.unlink(src)
            else:
                print("kept %s" % src)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
