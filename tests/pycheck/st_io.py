# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""Safetensors checkpoints read and written for the pycheck scripts (numpy only, no mhaprune code).

    read(d)                       every tensor of a checkpoint directory, name -> (dtype, array):
                                  check_pruned.py's loader (model.safetensors or a sharded index, checked)
    write(src, dst, tensors, shards, index_for_one=False)
                                  DST replaced by a copy of SRC (every file but the weights) whose
                                  weights are `tensors`, in one model.safetensors or in `shards`
                                  model-0000K-of-0000N.safetensors (tensors in name order, split into
                                  N runs of about equal count) with model.safetensors.index.json, as
                                  transformers' save_pretrained writes them; index_for_one: one shard
                                  is written with an index too. Returns the number of files.
"""

import json
import os
import shutil
import sys

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_pruned as cp  # noqa: E402


def read(d):
    return cp.load_tensors(d)


def write(src, dst, tensors, shards, index_for_one=False):
    names = sorted(tensors)
    n = max(1, min(shards, len(names)))
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns("model*.safetensors*"))
    if n == 1 and not index_for_one:
        with open(os.path.join(dst, "model.safetensors"), "wb") as f:
            f.write(cp.ref.serialize(tensors))
        return n
    weight_map = {}
    for k in range(n):
        part = names[k * len(names) // n:(k + 1) * len(names) // n]
        shard = f"model-{k + 1:05d}-of-{n:05d}.safetensors"
        with open(os.path.join(dst, shard), "wb") as f:
            f.write(cp.ref.serialize({name: tensors[name] for name in part}))
        weight_map.update({name: shard for name in part})
    total = sum(a.nbytes for _, a in tensors.values())
    with open(os.path.join(dst, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    return n
