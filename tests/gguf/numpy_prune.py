#!/usr/bin/python3
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""A reference head pruning of a GGUF file in numpy, written from notes/gguf_cli.md (the contract of
`mhaprune prune MODEL.gguf`), sharing no code with the C++ library.

  numpy_prune.py IN.gguf -o OUT.gguf --heads "L:ids;L:ids" [--requantize q8_0|f16|f32]
                 [--rename auto|always]

It exists to prove the GGUF test tooling before (and independently of) the C++ CLI: check_gguf.py
must accept its output (and reject mutations of it), and llama.cpp must compute the same NLL for its
output as for the original with the same heads masked (judge.py).

What it writes (the contract): Q/K/V rows and biases of removed heads dropped (kept rows moved
byte for byte); O columns of removed heads dropped block by block; an O whose removed spans are not
whole blocks is dequantized, sliced and re-encoded as --requantize (exit 4 without it). Uniform
counts keep the architecture (UINT32 head counts); non-uniform counts (or --rename always) rename
the architecture to "deci" (every `<arch>.` key renamed, head counts as INT32 arrays), and for
qwen2 each kept head's Q and K rows (and biases) go from NEOX to NORM rotary order: new row 2i <-
old row i, new row 2i+1 <- old row i + d/2. key_length / value_length are always written (UINT32),
appended after the input's KVs when the input has none, and then the mhaprune.* KVs.

--rename always exists because llama.cpp's qwen2 loader creates attn_q / attn_output with the
fixed shape {n_embd, n_embd}: a uniformly pruned qwen2 file that keeps its architecture does not
load (see the README in this folder); as "deci" (per-layer shapes from the head counts) it does.
"""

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_np as g  # noqa: E402

EXIT_CONSTRAINT = 4


def neox_to_norm(d):
    """perm[new_row] = old_row within one head of d rows."""
    return [i // 2 if i % 2 == 0 else i // 2 + d // 2 for i in range(d)]


def fail(code, msg):
    sys.stderr.write("numpy_prune: error: %s\n" % msg)
    sys.exit(code)


def plan(f, removed):
    arch = f.get("general.architecture")
    L = f.get(arch + ".block_count")

    def counts(what, default=None):
        v = f.get(arch + ".attention." + what, default)
        return [int(x) for x in v.tolist()] if isinstance(v, g.ArrayValue) else [int(v)] * L

    nh = counts("head_count")
    nkv = counts("head_count_kv", f.get(arch + ".attention.head_count"))
    hd = f.get(arch + ".attention.key_length") or f.get(arch + ".embedding_length") // nh[0]
    layers = []
    for i in range(L):
        rm = set(removed.get(i, []))
        if any(h < 0 or h >= nh[i] for h in rm):
            fail(2, "layer %d has no head %s" % (i, sorted(rm)))
        grp = nh[i] // nkv[i]
        # Every surviving K/V group keeps the same number of query heads (a group that loses all
        # of them goes, with its K/V head).
        kept_per_group = [sum(1 for h in range(k * grp, (k + 1) * grp) if h not in rm) for k in range(nkv[i])]
        if len(set(x for x in kept_per_group if x)) > 1:
            fail(EXIT_CONSTRAINT, "layer %d: the K/V groups would keep %s query heads" % (i, kept_per_group))
        kept = [h for h in range(nh[i]) if h not in rm]
        if not kept:
            fail(EXIT_CONSTRAINT, "layer %d would keep no head" % i)
        kept_kv = sorted(set(h // grp for h in kept))
        if len(kept) % len(kept_kv):
            fail(EXIT_CONSTRAINT, "layer %d: %d heads over %d kv heads" % (i, len(kept), len(kept_kv)))
        layers.append(dict(nh=nh[i], nkv=nkv[i], kept=kept, kept_kv=kept_kv))
    return arch, L, hd, layers


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input")
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("--heads", required=True)
    ap.add_argument("--requantize", choices=["q8_0", "f16", "f32"])
    ap.add_argument("--rename", choices=["auto", "always"], default="auto")
    a = ap.parse_args()
    f = g.GGUFFile(a.input)
    arch, L, hd, layers = plan(f, g.parse_heads(a.heads))
    uniform = len(set((len(x["kept"]), len(x["kept_kv"])) for x in layers)) == 1
    rename = (not uniform) or a.rename == "always"
    if rename and arch not in ("llama", "qwen2"):
        fail(EXIT_CONSTRAINT, "non-uniform counts need arch llama or qwen2, not %s" % arch)
    new_arch = "deci" if rename else arch
    reorder = rename and arch == "qwen2"
    rq_type = {"q8_0": g.Q8_0, "f16": g.F16, "f32": g.F32}.get(a.requantize)

    # --- metadata ---
    def heads_kv(key, vals):
        if not rename:
            return g.kv(key, g.U32, vals[0])
        return g.kv(key, g.ARRAY, vals, g.I32)

    kvs = []
    have_kl = set()
    for k in f.kvs:
        key = k.key
        if rename and key.startswith(arch + "."):
            key = new_arch + key[len(arch):]
        rest = key[len(new_arch) + 1:] if key.startswith(new_arch + ".") else None
        if key == "general.architecture" and rename:
            kvs.append(g.kv(key, g.STRING, new_arch))
        elif rest == "attention.head_count":
            kvs.append(heads_kv(key, [len(x["kept"]) for x in layers]))
        elif rest == "attention.head_count_kv":
            kvs.append(heads_kv(key, [len(x["kept_kv"]) for x in layers]))
        elif rest in ("attention.key_length", "attention.value_length"):
            kvs.append(g.kv(key, g.U32, hd))
            have_kl.add(rest)
        else:
            kvs.append(g.KV(key, k.vtype, k.value, k.raw))
    for rest in ("attention.key_length", "attention.value_length"):
        if rest not in have_kl:
            kvs.append(g.kv(new_arch + "." + rest, g.U32, hd))

    # --- tensors ---
    requantized = []
    tensors = []
    for t in f.tensors:
        data = f.data(t.name)
        ne = list(t.ne)
        tt = t.ttype
        p = t.name.split(".")
        if p[0] == "blk" and len(p) == 4 and p[2] in ("attn_q", "attn_k", "attn_v", "attn_output"):
            i = int(p[1])
            lay = layers[i]
            if p[2] == "attn_output":
                if p[3] != "weight":
                    tensors.append((t.name, ne, tt, data))
                    continue
                cols = np.array([h * hd + c for h in lay["kept"] for c in range(hd)])
                blk, size = g.block_of(tt)
                removed_cols = np.setdiff1d(np.arange(ne[0]), cols)
                aligned = all(np.all(np.isin(np.arange(b * blk, (b + 1) * blk), removed_cols)) or
                              not np.any(np.isin(np.arange(b * blk, (b + 1) * blk), removed_cols))
                              for b in range(ne[0] // blk)) and len(cols) % blk == 0
                if aligned:
                    kept_blocks = sorted(set(int(c) // blk for c in cols))
                    rows = f.rows(t.name).reshape(t.n_rows, ne[0] // blk, size)
                    data = rows[:, kept_blocks, :].tobytes()
                else:
                    if rq_type is None:
                        fail(EXIT_CONSTRAINT, "%s: %s O columns of the removed heads are not whole %d-element "
                             "blocks; use --requantize" % (t.name, g.type_name(tt), blk))
                    vals = f.values(t.name)[:, cols]
                    tt = rq_type
                    data = g.quantize(tt, vals)
                    requantized.append(t.name)
                ne = [len(cols)] + ne[1:]
            else:
                heads = lay["kept"] if p[2] == "attn_q" else lay["kept_kv"]
                perm = neox_to_norm(hd) if (reorder and p[2] in ("attn_q", "attn_k")) else list(range(hd))
                idx = [h * hd + r for h in heads for r in perm]
                if len(ne) == 1:  # bias: elements are rows
                    esz = g.row_bytes(tt, 1)
                    arr = np.frombuffer(data, dtype=np.uint8).reshape(ne[0], esz)
                    data = arr[idx].tobytes()
                    ne = [len(idx)]
                else:
                    data = f.rows(t.name)[idx].tobytes()
                    ne = [ne[0], len(idx)] + ne[2:]
        tensors.append((t.name, ne, tt, data))

    kvs.append(g.kv("mhaprune.version", g.STRING, "numpy-reference"))
    if rename:
        kvs.append(g.kv("mhaprune.original_architecture", g.STRING, arch))
    kvs.append(g.kv("mhaprune.original_head_count", g.ARRAY, [x["nh"] for x in layers], g.I32))
    kvs.append(g.kv("mhaprune.original_head_count_kv", g.ARRAY, [x["nkv"] for x in layers], g.I32))
    for i, x in enumerate(layers):
        kvs.append(g.kv("mhaprune.head_ids.%d" % i, g.ARRAY, x["kept"], g.I32))
        kvs.append(g.kv("mhaprune.kv_head_ids.%d" % i, g.ARRAY, x["kept_kv"], g.I32))
    if requantized:
        kvs.append(g.kv("mhaprune.requantized", g.ARRAY, requantized, g.STRING))
    g.write_gguf(a.output, kvs, tensors, alignment=f.alignment, version=f.version)


if __name__ == "__main__":
    main()
