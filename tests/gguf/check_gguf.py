#!/usr/bin/python3
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""Independent numpy checker of a head-pruned GGUF file (the contract is notes/gguf_cli.md).

  check_gguf.py INPUT.gguf OUTPUT.gguf [--heads SPEC] [--requantize q8_0|f16|f32]
                [--expect-counts N,N,...] [--expect-arch ARCH]
  check_gguf.py --self-test INPUT.gguf OUTPUT.gguf [same options]
  check_gguf.py --self-test --numpy-prune SPEC --work DIR INPUT.gguf [--requantize T]
                (OUTPUT made by numpy_prune.py --heads SPEC)

Reads the removed heads from the output's mhaprune.* KVs (original_head_count(_kv), head_ids.N,
kv_head_ids.N, requantized, original_architecture) and cross-checks them against --heads SPEC
(the removed query heads per layer, as given to `mhaprune prune --heads`) or --expect-counts (the
kept query heads per layer, for --sparsity runs). Then verifies, from the bytes:
  - both files parse under ggml's rules (offsets cumulative in info order, zero padding to the
    alignment after the header and after every tensor including the last, file size exact,
    general.alignment UINT32 power of two, unique keys and names);
  - every tensor that is not Q/K/V/O of a layer: same name, position, type, shape and bytes;
  - attn_q/k/v weights and biases: the rows of the kept heads (kept K/V heads for k/v), in order,
    byte-identical to the input rows; when the output is "deci" made from "qwen2", each head's Q and
    K rows in NORM rotary order: output row 2i = input row i, 2i+1 = input row i + d/2;
  - attn_output.weight: per row, the kept heads' column blocks byte-identical and in order; the
    removed column spans must then be whole blocks. A tensor named in mhaprune.requantized must have
    needed it (some removed span not whole blocks) and must equal, bit for bit, this script's own
    re-encoding: dequantize the input (own decoder), keep the columns, encode as the --requantize
    type (ggml's reference Q8_0 rule; F16 round to nearest even);
  - metadata: every input KV present in the same order with the same type and bytes, except
    general.architecture ("deci" when renamed; then every "<arch>." key renamed "deci."), head_count
    and head_count_kv (UINT32 scalars when the architecture is kept, which needs the same counts in
    every layer; INT32 arrays of block_count entries for deci, where a UINT32 scalar is also accepted
    when the counts happen to be uniform), key_length/value_length (UINT32 = head dim,
    added if absent); the only new keys are those and the mhaprune.* keys (rope.dimension_count
    tolerated if it equals the head dim).
Exit 0 and "check_gguf: ok" when everything holds; exit 1 with one line per difference otherwise.

--self-test first requires OUTPUT to pass, then writes mutated copies of OUTPUT (a flipped byte in a
kept Q row, in a kept O block, in a copied tensor, in the padding; a KV whose type changed from
UINT32 to INT32; an extra KV; two KVs swapped; a plausible but wrong mhaprune.head_ids.N) and requires the checker to reject each
one, so it is known to fail when it should.
"""

import argparse
import os
import struct
import sys
import tempfile

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_np as g  # noqa: E402


class Check:
    def __init__(self):
        self.errors = []

    def fail(self, msg):
        self.errors.append(msg)

    def expect(self, cond, msg):
        if not cond:
            self.fail(msg)
        return cond


def per_layer(f, arch, what, L, default=None):
    v = f.get(arch + ".attention." + what, default)
    if v is None:
        return None
    if isinstance(v, g.ArrayValue):
        return [int(x) for x in v.tolist()]
    return [int(v)] * L


def int_array(f, key, c):
    k = f.kv.get(key)
    if k is None:
        c.fail("output: %s missing" % key)
        return None
    if k.vtype != g.ARRAY or k.value.etype != g.I32:
        c.fail("output: %s must be an INT32 array, is %s" % (key, k))
        return None
    return [int(x) for x in k.value.tolist()]


def neox_to_norm(d):
    return [i // 2 if i % 2 == 0 else i // 2 + d // 2 for i in range(d)]


def check(inp, out, heads_spec=None, requant=None, expect_counts=None, expect_arch=None):
    c = Check()
    try:
        fi = g.GGUFFile(inp)
    except g.GGUFError as e:
        c.fail("input: %s" % e)
        return c.errors
    try:
        fo = g.GGUFFile(out)
    except g.GGUFError as e:
        c.fail("output does not parse: %s" % e)
        return c.errors

    arch = fi.get("general.architecture")
    arch_o = fo.get("general.architecture")
    L = fi.get(arch + ".block_count")
    renamed = arch_o != arch
    if renamed:
        c.expect(arch_o == "deci", "output: general.architecture %r: only a rename to 'deci' is allowed" % arch_o)
        c.expect(arch in ("llama", "qwen2"), "output: renamed from %r; only llama/qwen2 may become deci" % arch)
        oa = fo.kv.get("mhaprune.original_architecture")
        c.expect(oa is not None and oa.vtype == g.STRING and oa.value == arch,
                 "output: mhaprune.original_architecture must be STRING %r, is %r" % (arch, oa))
    else:
        c.expect("mhaprune.original_architecture" not in fo.kv,
                 "output: mhaprune.original_architecture present but the architecture was kept")
    if expect_arch is not None:
        c.expect(arch_o == expect_arch, "output: architecture %r, expected %r" % (arch_o, expect_arch))
    if fo.alignment != fi.alignment:
        c.fail("output: alignment %d, input %d" % (fo.alignment, fi.alignment))

    nh = per_layer(fi, arch, "head_count", L)
    nkv = per_layer(fi, arch, "head_count_kv", L) or nh
    hd = fi.get(arch + ".attention.key_length") or fi.get(arch + ".embedding_length") // nh[0]
    hdv = fi.get(arch + ".attention.value_length") or hd

    # --- the plan recorded in the output, cross-checked ---
    v = fo.kv.get("mhaprune.version")
    c.expect(v is not None and v.vtype == g.STRING and v.value, "output: mhaprune.version must be a non-empty STRING")
    c.expect(int_array(fo, "mhaprune.original_head_count", c) == nh,
             "output: mhaprune.original_head_count != input head counts %s" % nh)
    c.expect(int_array(fo, "mhaprune.original_head_count_kv", c) == nkv,
             "output: mhaprune.original_head_count_kv != input %s" % nkv)
    kept, kept_kv = [], []
    for i in range(L):
        k = int_array(fo, "mhaprune.head_ids.%d" % i, c) or []
        kv_ = int_array(fo, "mhaprune.kv_head_ids.%d" % i, c) or []
        c.expect(k == sorted(set(k)) and all(0 <= h < nh[i] for h in k) and k,
                 "output: mhaprune.head_ids.%d = %s not ascending ids < %d" % (i, k, nh[i]))
        grp = nh[i] // nkv[i]
        c.expect(kv_ == sorted(set(h // grp for h in k)),
                 "output: mhaprune.kv_head_ids.%d = %s, but the kept heads %s use K/V heads %s"
                 % (i, kv_, k, sorted(set(h // grp for h in k))))
        per_group = [sum(1 for h in k if h // grp == j) for j in range(nkv[i])]
        c.expect(len(set(x for x in per_group if x)) <= 1,
                 "layer %d: K/V groups keep %s query heads (must be equal)" % (i, per_group))
        kept.append(k)
        kept_kv.append(kv_)
    if heads_spec is not None:
        rm = g.parse_heads(heads_spec)
        for i in range(L):
            want = [h for h in range(nh[i]) if h not in rm.get(i, [])]
            c.expect(kept[i] == want, "layer %d: output keeps heads %s, --heads %r asks to keep %s"
                     % (i, kept[i], heads_spec, want))
    if expect_counts is not None:
        c.expect([len(k) for k in kept] == expect_counts,
                 "output keeps %s heads per layer, expected %s" % ([len(k) for k in kept], expect_counts))
    if c.errors:
        return c.errors  # nothing below makes sense with a wrong plan

    new_nh = [len(k) for k in kept]
    new_nkv = [len(k) for k in kept_kv]
    uniform = len(set(zip(new_nh, new_nkv))) == 1
    if not uniform:
        c.expect(renamed, "output: per-layer head counts %s / %s are not uniform, so the architecture must "
                 "become deci (it is %r)" % (new_nh, new_nkv, arch_o))
    reorder = renamed and arch == "qwen2"

    # --- metadata ---
    def rename(key):
        return "deci" + key[len(arch):] if renamed and key.startswith(arch + ".") else key

    ao = arch_o
    special = {ao + ".attention.head_count": new_nh, ao + ".attention.head_count_kv": new_nkv}
    lengths = {ao + ".attention.key_length": hd, ao + ".attention.value_length": hdv}
    out_keys = [k.key for k in fo.kvs]
    in_renamed = [rename(k.key) for k in fi.kvs]
    # every input key is there, in the same relative order
    pos = [out_keys.index(k) if k in out_keys else -1 for k in in_renamed]
    for k, p in zip(in_renamed, pos):
        c.expect(p >= 0, "output: KV %s missing" % k)
    present = [p for p in pos if p >= 0]
    c.expect(present == sorted(present), "output: the input's KVs are not in their original order")
    allowed_new = set(lengths) | {ao + ".rope.dimension_count"}
    for k in out_keys:
        if k not in in_renamed and k not in allowed_new and not k.startswith("mhaprune."):
            c.fail("output: unexpected new KV %s" % k)
    rd = fo.kv.get(ao + ".rope.dimension_count")
    if rd is not None and rename(ao + ".rope.dimension_count") not in in_renamed:
        c.expect(rd.vtype == g.U32 and rd.value == hd, "output: added rope.dimension_count %r != head dim %d" % (rd, hd))
    for k in fi.kvs:
        key = rename(k.key)
        o = fo.kv.get(key)
        if o is None:
            continue
        if k.key == "general.architecture":
            c.expect(o.vtype == g.STRING, "output: general.architecture not a STRING")
        elif key in special:
            vals = special[key]
            scalar_ok = o.vtype == g.U32 and o.value == vals[0]
            array_ok = o.vtype == g.ARRAY and o.value.etype == g.I32 and o.value.tolist() == vals
            if not renamed:
                c.expect(scalar_ok, "output: %s must be UINT32 %d, is %r" % (key, vals[0], o))
            elif uniform:  # deci with the same counts everywhere: either form loads
                c.expect(scalar_ok or array_ok, "output: %s must be UINT32 %d or an INT32 array %s, is %r"
                         % (key, vals[0], vals, o))
            else:
                c.expect(o.vtype == g.ARRAY and o.value.etype == g.I32 and o.value.tolist() == vals,
                         "output: %s must be an INT32 array %s, is %r" % (key, vals, o))
        elif key in lengths:
            c.expect(o.vtype == g.U32 and o.value == lengths[key], "output: %s must be UINT32 %d, is %r"
                     % (key, lengths[key], o))
        else:
            c.expect(o.raw == k.raw, "output: KV %s changed (type/value bytes differ): %r -> %r" % (key, k, o))
    for key, val in lengths.items():
        o = fo.kv.get(key)
        c.expect(o is not None and o.vtype == g.U32 and o.value == val,
                 "output: %s must be written as UINT32 %d, is %r" % (key, val, o))

    # --- tensors ---
    rq = fo.kv.get("mhaprune.requantized")
    rq_names = []
    if rq is not None:
        if c.expect(rq.vtype == g.ARRAY and rq.value.etype == g.STRING, "output: mhaprune.requantized not a STRING array"):
            rq_names = rq.value.tolist()
            c.expect(len(rq_names) > 0, "output: mhaprune.requantized is empty (must be absent when nothing was)")
    rq_type = {"q8_0": g.Q8_0, "f16": g.F16, "f32": g.F32}.get(requant)
    if rq_names and rq_type is None:
        c.fail("output requantized %s but no --requantize was given" % rq_names)
    c.expect([t.name for t in fo.tensors] == [t.name for t in fi.tensors],
             "output: tensor names/order differ from the input")
    for ti in fi.tensors:
        to = fo.tensor.get(ti.name)
        if to is None:
            continue
        p = ti.name.split(".")
        role = p[2] if p[0] == "blk" and len(p) == 4 else None
        if role in ("attn_q", "attn_k", "attn_v"):
            i = int(p[1])
            heads = kept[i] if role == "attn_q" else kept_kv[i]
            d = hd if role != "attn_v" else hdv
            perm = neox_to_norm(d) if reorder and role in ("attn_q", "attn_k") else list(range(d))
            idx = [h * d + r for h in heads for r in perm]
            c.expect(to.ttype == ti.ttype, "%s: type %s, input %s" % (ti.name, g.type_name(to.ttype), g.type_name(ti.ttype)))
            if len(ti.ne) == 1:
                ok = c.expect(to.ne == [len(idx)], "%s: shape %s, expected %s" % (ti.name, to.ne, [len(idx)]))
                if ok and to.ttype == ti.ttype:
                    es = g.row_bytes(ti.ttype, 1)
                    a = np.frombuffer(fi.data(ti.name), np.uint8).reshape(-1, es)[idx]
                    b = np.frombuffer(fo.data(ti.name), np.uint8).reshape(-1, es)
                    bad = np.nonzero(np.any(a != b, axis=1))[0]
                    c.expect(bad.size == 0, "%s: element %s differs from the input's element %s"
                             % (ti.name, bad[:1].tolist(), [idx[j] for j in bad[:1]]))
            else:
                ok = c.expect(to.ne == [ti.ne[0], len(idx)] + ti.ne[2:], "%s: shape %s, expected %s"
                              % (ti.name, to.ne, [ti.ne[0], len(idx)]))
                if ok and to.ttype == ti.ttype:
                    a = fi.rows(ti.name)[idx]
                    b = fo.rows(ti.name)
                    bad = np.nonzero(np.any(a != b, axis=1))[0]
                    c.expect(bad.size == 0, "%s: output row %s is not byte-identical to input row %s"
                             % (ti.name, bad[:1].tolist(), [idx[j] for j in bad[:1]]))
        elif role == "attn_output" and p[3] == "weight":
            i = int(p[1])
            cols = np.array([h * hdv + r for h in kept[i] for r in range(hdv)])
            blk, size = g.block_of(ti.ttype)
            removed = np.ones(ti.ne[0], bool)
            removed[cols] = False
            per_block = removed.reshape(-1, blk)
            aligned = bool(np.all(per_block.all(axis=1) | ~per_block.any(axis=1)))
            want_ne = [len(cols)] + ti.ne[1:]
            if not c.expect(to.ne == want_ne, "%s: shape %s, expected %s" % (ti.name, to.ne, want_ne)):
                continue
            if ti.name in rq_names:
                c.expect(not aligned, "%s: requantized although the removed columns are whole %s blocks"
                         % (ti.name, g.type_name(ti.ttype)))
                if c.expect(to.ttype == rq_type, "%s: requantized to %s, expected %s"
                            % (ti.name, g.type_name(to.ttype), requant)):
                    ref = g.quantize(rq_type, fi.values(ti.name)[:, cols])
                    if ref != fo.data(ti.name):
                        a = np.frombuffer(ref, np.uint8)
                        b = np.frombuffer(fo.data(ti.name), np.uint8)
                        first = int(np.nonzero(a != b)[0][0])
                        c.fail("%s: re-encoded bytes differ from numpy's %s encoding of the dequantized kept "
                               "columns (first at byte %d of %d: %d vs numpy %d)"
                               % (ti.name, requant, first, len(a), b[first], a[first]))
            else:
                if not c.expect(aligned, "%s: %s O loses column spans that are not whole %d-element blocks but "
                                "is not listed in mhaprune.requantized" % (ti.name, g.type_name(ti.ttype), blk)):
                    continue
                if not c.expect(to.ttype == ti.ttype, "%s: type %s, input %s"
                                % (ti.name, g.type_name(to.ttype), g.type_name(ti.ttype))):
                    continue
                kb = np.nonzero(~per_block.any(axis=1))[0]
                a = fi.rows(ti.name).reshape(ti.n_rows, -1, size)[:, kb, :]
                b = fo.rows(ti.name).reshape(to.n_rows, -1, size)
                bad = np.argwhere(np.any(a != b, axis=2))
                c.expect(bad.size == 0, "%s: row %s, kept block %s is not byte-identical to the input's block %s"
                         % (ti.name, bad[:1, 0].tolist(), bad[:1, 1].tolist(), [int(kb[j]) for j in bad[:1, 1]]))
        else:
            c.expect(to.ttype == ti.ttype and to.ne == ti.ne and fo.data(ti.name) == fi.data(ti.name),
                     "%s: not a byte-identical copy of the input tensor (type %s->%s, shape %s->%s)"
                     % (ti.name, g.type_name(ti.ttype), g.type_name(to.ttype), ti.ne, to.ne))
    for n in rq_names:
        c.expect(n in fi.tensor and n.endswith("attn_output.weight"), "output: mhaprune.requantized names %s" % n)
    return c.errors


# --- mutation self-test --------------------------------------------------------------------------------
def _rewrite(f, path, kvs=None):
    tensors = [(t.name, t.ne, t.ttype, f.data(t.name)) for t in f.tensors]
    g.write_gguf(path, f.kvs if kvs is None else kvs, tensors, alignment=f.alignment, version=f.version)


def _flip(f, path, name, byte):
    buf = bytearray(f.buf)
    t = f.tensor[name]
    buf[f.data_start + t.offset + byte] ^= 0x01
    open(path, "wb").write(bytes(buf))


def self_test(inp, out, **kw):
    errs = check(inp, out, **kw)
    if errs:
        print("check_gguf --self-test: the unmutated output must pass first:\n  " + "\n  ".join(errs))
        return 1
    f = g.GGUFFile(out)
    q = [t for t in f.tensors if t.name.endswith("attn_q.weight")][0]
    o = [t for t in f.tensors if t.name.endswith("attn_output.weight")][0]
    other = [t for t in f.tensors if t.name == "token_embd.weight"][0]
    last = f.tensors[-1]
    arch = f.get("general.architecture")
    mutations = []
    mutations.append(("byte flipped in a kept Q row", lambda p: _flip(f, p, q.name, g.row_bytes(q.ttype, q.ne[0]) + 5)))
    mutations.append(("byte flipped in a kept O block", lambda p: _flip(f, p, o.name, 3)))
    mutations.append(("byte flipped in a copied tensor", lambda p: _flip(f, p, other.name, 7)))

    def pad_byte(p):
        padded = [t for t in f.tensors if t.nbytes % f.alignment]
        buf = bytearray(f.buf)
        if padded:
            t = padded[0]
            buf[f.data_start + t.offset + t.nbytes] = 1
        else:  # every tensor ends on the alignment: corrupt the padding before the data instead
            if f.data_start == f.header_end:
                raise SystemExit("self-test: no padding anywhere in %s to corrupt" % out)
            buf[f.header_end] = 1
        open(p, "wb").write(bytes(buf))
    mutations.append(("non-zero padding byte", pad_byte))

    def kv_type(p):
        kvs = []
        for k in f.kvs:
            if k.key == "general.quantization_version" or (k.vtype == g.U32 and k.key.endswith("block_count")):
                k = g.kv(k.key, g.I32, k.value)
            kvs.append(k)
        _rewrite(f, p, kvs)
    mutations.append(("a UINT32 KV stored as INT32", kv_type))
    mutations.append(("an extra KV", lambda p: _rewrite(f, p, f.kvs + [g.kv("general.extra", g.STRING, "x")])))

    def head_ids(p):
        # a plausible but wrong plan: one kept head of the first pruned layer swapped for a removed
        # one, ids still ascending (kv_head_ids left as they are)
        kvs = list(f.kvs)
        orig = f.get("mhaprune.original_head_count").tolist()
        for j, k in enumerate(kvs):
            if k.key.startswith("mhaprune.head_ids."):
                layer = int(k.key.rsplit(".", 1)[1])
                ids = k.value.tolist()
                grp = orig[layer] // f.get("mhaprune.original_head_count_kv").tolist()[layer]
                gone = [h for h in range(orig[layer]) if h not in ids and h // grp == ids[-1] // grp]
                if gone:  # same K/V group, so only the bytes can tell
                    kvs[j] = g.kv(k.key, g.ARRAY, sorted(ids[:-1] + [gone[0]]), g.I32)
                    break
        _rewrite(f, p, kvs)
    mutations.append(("a wrong mhaprune.head_ids.N", head_ids))

    def kv_order(p):
        kvs = list(f.kvs)
        a = [j for j, k in enumerate(kvs) if k.key == "general.name"]
        b = [j for j, k in enumerate(kvs) if k.key == arch + ".block_count"]
        if a and b:
            kvs[a[0]], kvs[b[0]] = kvs[b[0]], kvs[a[0]]
        _rewrite(f, p, kvs)
    mutations.append(("two KVs swapped", kv_order))

    fails = 0
    with tempfile.TemporaryDirectory() as d:
        for what, make in mutations:
            p = os.path.join(d, "mutant.gguf")
            make(p)
            errs = check(inp, p, **kw)
            if errs:
                print("self-test: caught %-40s -> %s" % (what, errs[0][:160]))
            else:
                print("self-test: NOT CAUGHT: %s" % what)
                fails += 1
    if fails:
        print("check_gguf --self-test: %d mutation(s) passed the checker" % fails)
        return 1
    print("check_gguf --self-test: ok (%d mutations caught)" % len(mutations))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("output", nargs="?")
    ap.add_argument("--numpy-prune", metavar="SPEC",
                    help="with --self-test: make OUTPUT with numpy_prune.py --heads SPEC in --work")
    ap.add_argument("--work")
    ap.add_argument("--heads")
    ap.add_argument("--requantize", choices=["q8_0", "f16", "f32"])
    ap.add_argument("--expect-counts")
    ap.add_argument("--expect-arch")
    ap.add_argument("--self-test", action="store_true")
    a = ap.parse_args()
    kw = dict(heads_spec=a.heads, requant=a.requantize,
              expect_counts=[int(x) for x in a.expect_counts.split(",")] if a.expect_counts else None,
              expect_arch=a.expect_arch)
    if a.numpy_prune is not None:
        if not a.self_test or not a.work or a.output:
            ap.error("--numpy-prune needs --self-test and --work, and no OUTPUT")
        import subprocess
        os.makedirs(a.work, exist_ok=True)
        a.output = os.path.join(a.work, "numpy_pruned.gguf")
        cmd = [sys.executable, os.path.join(os.path.dirname(os.path.abspath(__file__)), "numpy_prune.py"), a.input,
               "-o", a.output, "--heads", a.numpy_prune]
        if a.requantize:
            cmd += ["--requantize", a.requantize]
        subprocess.run(cmd, check=True)
        kw["heads_spec"] = a.numpy_prune
    if a.output is None:
        ap.error("OUTPUT is required")
    if a.self_test:
        sys.exit(self_test(a.input, a.output, **kw))
    errs = check(a.input, a.output, **kw)
    if errs:
        for e in errs:
            print("check_gguf: FAIL: %s: %s" % (a.output, e))
        sys.exit(1)
    print("check_gguf: ok: %s" % a.output)


if __name__ == "__main__":
    main()
