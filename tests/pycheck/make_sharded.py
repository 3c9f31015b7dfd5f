#!/usr/bin/python3
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""Copies a checkpoint directory with its model.safetensors split into shards (numpy only).

    /usr/bin/python3 tests/pycheck/make_sharded.py SRC_DIR DST_DIR [--shards 2]

Writes model-0000K-of-0000N.safetensors (tensors in name order, split into N runs of about equal
count) and model.safetensors.index.json as transformers' save_pretrained does; every other file of
SRC_DIR is copied. DST_DIR is replaced. Gives the pycheck tests a sharded input to prune.
"""

import argparse
import json
import os
import shutil
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_pruned as cp  # noqa: E402


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--shards", type=int, default=2)
    args = parser.parse_args(argv)
    tensors = cp.load_tensors(args.src)
    names = sorted(tensors)
    n = max(1, min(args.shards, len(names)))
    shutil.rmtree(args.dst, ignore_errors=True)
    shutil.copytree(args.src, args.dst, ignore=shutil.ignore_patterns("model*.safetensors*"))
    weight_map = {}
    for k in range(n):
        part = names[k * len(names) // n:(k + 1) * len(names) // n]
        shard = f"model-{k + 1:05d}-of-{n:05d}.safetensors"
        with open(os.path.join(args.dst, shard), "wb") as f:
            f.write(cp.ref.serialize({name: tensors[name] for name in part}))
        weight_map.update({name: shard for name in part})
    total = sum(a.nbytes for _, a in tensors.values())
    with open(os.path.join(args.dst, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    print(f"{args.dst}: {len(names)} tensors in {n} shards")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
