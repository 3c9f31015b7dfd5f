#!/usr/bin/python3
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""Copies a checkpoint directory with its model.safetensors split into shards (numpy only).

    /usr/bin/python3 tests/pycheck/make_sharded.py SRC_DIR DST_DIR [--shards 2]

Writes model-0000K-of-0000N.safetensors (tensors in name order, split into N runs of about equal
count) and model.safetensors.index.json as transformers' save_pretrained does; every other file of
SRC_DIR is copied. DST_DIR is replaced. Gives the pycheck tests a sharded input to prune.
"""

import argparse
import os
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import st_io  # noqa: E402


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument("src")
    parser.add_argument("dst")
    parser.add_argument("--shards", type=int, default=2)
    args = parser.parse_args(argv)
    tensors = st_io.read(args.src)
    n = st_io.write(args.src, args.dst, tensors, args.shards, index_for_one=True)
    print(f"{args.dst}: {len(tensors)} tensors in {n} shards")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
