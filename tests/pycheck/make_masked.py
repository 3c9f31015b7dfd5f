#!/usr/bin/python3
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""A masked copy of a checkpoint (numpy only), and a check of what `mhaprune slim` removed from it.

    /usr/bin/python3 tests/pycheck/make_masked.py SRC_DIR DST_DIR --heads "L:ids;L:ids"
                     [--zero-q "L:ids"] [--value V] [--shards N]
    /usr/bin/python3 tests/pycheck/make_masked.py --verify SLIM_DIR --removed "L:ids;L:ids"

The first form copies SRC_DIR (a Qwen2/LLaMA-style or BERT checkpoint with Hugging Face tensor
names, one model.safetensors) to DST_DIR (replaced) with the O-projection columns of the given
heads (original ids; '/' also separates layers) set to V (default 0): what training with a head
mask, or zeroing heads by hand, leaves behind. --zero-q also zeroes the Q rows and Q bias of heads
(whose O stays), which `mhaprune slim` must report and keep. --shards N writes the copy as N shards
with an index, as make_sharded.py does. Every other byte of every tensor is unchanged.

The second form checks, from the output's config.json `mhaprune` section alone, that exactly the
heads --removed names were removed from each layer (no layer named: none). Exit 0 when all holds,
1 with one line per difference otherwise.
"""

import argparse
import json
import os
import sys

import numpy as np

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402


def parse_heads(spec):
    out = {}
    for part in (spec or "").replace("/", ";").split(";"):
        if part.strip():
            layer, ids = part.split(":")
            out.setdefault(int(layer), set()).update(int(i) for i in ids.split(",") if i.strip())
    return {k: sorted(v) for k, v in out.items()}


def names(cfg, layer):
    """(O weight, Q weight, Q bias) of a layer, by the Hugging Face conventions."""
    if cfg["model_type"] == "bert":
        p = f"bert.encoder.layer.{layer}.attention."
        return p + "output.dense.weight", p + "self.query.weight", p + "self.query.bias"
    p = f"model.layers.{layer}.self_attn."
    return p + "o_proj.weight", p + "q_proj.weight", p + "q_proj.bias"


def stored(dtype, value, like):
    """`value` in the stored representation of `dtype` (BF16 arrays hold the upper 16 bits)."""
    if dtype == "BF16":
        return np.uint16(np.array([value], np.float32).view(np.uint32)[0] >> 16)
    return like.dtype.type(value)


def mask(args):
    cfg = json.load(open(os.path.join(args.src, "config.json")))
    H, D = cfg["num_attention_heads"], cfg["hidden_size"]
    d = cfg.get("head_dim") or D // H
    tensors = st_io.read(args.src)
    for what, spec in (("o", args.heads), ("q", args.zero_q)):
        for layer, heads in parse_heads(spec).items():
            o_name, q_name, qb_name = names(cfg, layer)
            for h in heads:
                if not 0 <= h < H:
                    raise SystemExit(f"make_masked.py: layer {layer} has no head {h}")
                if what == "o":
                    dtype, a = tensors[o_name]
                    a = a.copy()
                    a[:, h * d:(h + 1) * d] = stored(dtype, args.value, a)
                    tensors[o_name] = (dtype, a)
                    continue
                for name in (q_name, qb_name):
                    if name not in tensors:
                        continue
                    dtype, a = tensors[name]
                    a = a.copy()
                    a[h * d:(h + 1) * d, ...] = stored(dtype, 0.0, a)
                    tensors[name] = (dtype, a)
    st_io.write(args.src, args.dst, tensors, args.shards)
    print(f"{args.dst}: heads {args.heads!r} masked (O columns = {args.value}), Q zeroed {args.zero_q!r}")
    return 0


def verify(args):
    cfg = json.load(open(os.path.join(args.verify, "config.json")))
    section = cfg.get("mhaprune")
    if not section:
        print(f"make_masked.py: FAIL: {args.verify}/config.json has no mhaprune section")
        return 1
    want = parse_heads(args.removed)
    problems = []
    for entry in section["layers"]:
        got = sorted(entry["removed_heads"])
        expected = want.get(entry["layer"], [])
        if got != expected:
            problems.append(f"layer {entry['layer']}: removed {got}, expected {expected}")
    layers = {entry["layer"] for entry in section["layers"]}
    problems += [f"layer {layer} named in --removed is not in the output" for layer in want if layer not in layers]
    for p in problems:
        print(f"make_masked.py: FAIL: {args.verify}: {p}")
    if not problems:
        print(f"make_masked.py: ok: {args.verify} removed exactly {args.removed}")
    return 1 if problems else 0


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("src", nargs="?")
    parser.add_argument("dst", nargs="?")
    parser.add_argument("--heads", default="")
    parser.add_argument("--zero-q", default="")
    parser.add_argument("--value", type=float, default=0.0)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--verify", metavar="SLIM_DIR")
    parser.add_argument("--removed", default="")
    args = parser.parse_args(argv)
    if args.verify:
        return verify(args)
    if not args.src or not args.dst:
        parser.error("SRC_DIR and DST_DIR are required")
    return mask(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
