#!/usr/bin/env python3
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""An independent writer of mhaprune gradients files, and a check of the tool's scores against them.

Shares no code with the C++ library: safetensors is read and written by hand, the per-head scores are
computed here from the criteria's published definitions (numpy only).

  write_grads.py write MODEL_DIR OUT_DIR
      Writes OUT_DIR/grads.safetensors for a bundled tiny checkpoint (tiny-qwen2 or tiny-bert):
        T.grad.sum / T.grad.count                 the sum of 3 steps' pseudo-random gradients of T
        T.snip_momentum.score / .count            S after 3 steps of S <- 0.9 S + |W * G_t|
        B.head_gate.abs_sum / .sq_sum / .count    sums over 5 batches of pseudo-random gate gradients
      (values F32 for tiny-qwen2, F16 for tiny-bert, counts F64), OUT_DIR/expected.json (every head's
      score under gradient, snip, snip_momentum, taylor and fisher, mean reduction, equal role
      weights), and broken copies OUT_DIR/broken_{missing,shape,count0,nan}.safetensors.
  write_grads.py check CLI MODEL_DIR OUT_DIR CRITERION
      Runs `CLI score MODEL_DIR --criterion CRITERION --grads OUT_DIR/grads.safetensors --json` and
      compares every head's score with expected.json (relative 1e-4).
  write_grads.py check-prune CLI MODEL_DIR OUT_DIR CRITERION
      Prunes one head per layer (--sparsity 0.25 --scope local) of tiny-bert and checks that each
      layer lost its lowest-scoring head by expected.json.

The same file from a PyTorch training loop: see README.md, "Gradients file".
"""
import json
import os
import struct
import subprocess
import sys

import numpy as np

DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16}


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = blob[8 + n + a : 8 + n + b]
        if info["dtype"] == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            arr = bits.view(np.float32)
        else:
            arr = np.frombuffer(raw, dtype=np.dtype(DTYPES[info["dtype"]]).newbyteorder("<"))
        out[name] = arr.astype(np.float64).reshape(info["shape"])
    return out


def write_safetensors(path, tensors):
    """tensors: name -> (dtype name, numpy array)."""
    header, chunks, offset = {"__metadata__": {"format": "mhaprune-gradients", "version": "1"}}, [], 0
    for name in sorted(tensors):
        dtype, arr = tensors[name]
        data = np.ascontiguousarray(arr, dtype=np.dtype(DTYPES[dtype]).newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + b"".join(chunks))


def model_blocks(model_dir):
    """[(block name, {role: weight name}, H, H_kv, d)] of a bundled tiny checkpoint."""
    with open(os.path.join(model_dir, "config.json")) as f:
        cfg = json.load(f)
    H, L, D = cfg["num_attention_heads"], cfg["num_hidden_layers"], cfg["hidden_size"]
    Hkv = cfg.get("num_key_value_heads", H)
    d = cfg.get("head_dim", D // H)
    blocks = []
    for l in range(L):
        if cfg["model_type"] == "bert":
            b = "bert.encoder.layer.%d.attention" % l
            names = {"q": b + ".self.query.weight", "k": b + ".self.key.weight", "v": b + ".self.value.weight",
                     "o": b + ".output.dense.weight"}
        else:
            b = "model.layers.%d.self_attn" % l
            names = {r: "%s.%s_proj.weight" % (b, r) for r in "qkvo"}
        blocks.append((b, names, H, Hkv, d))
    return blocks


def head_scores(E, H, Hkv, d):
    """Mean of each head's slices of the element scores E[role] (Q/K/V rows, O columns), the four
    numbers averaged with equal weights; query head h reads key/value head h // (H // Hkv)."""
    r = H // Hkv
    out = []
    for h in range(H):
        g = h // r
        q = E["q"][h * d : (h + 1) * d, :].mean()
        k = E["k"][g * d : (g + 1) * d, :].mean()
        v = E["v"][g * d : (g + 1) * d, :].mean()
        o = E["o"][:, h * d : (h + 1) * d].mean()
        out.append((q + k + v + o) / 4.0)
    return out


def stored(arr, dtype):
    """The values as the file holds them (rounded to dtype), back in float64."""
    return np.asarray(arr, dtype=DTYPES[dtype]).astype(np.float64)


def write(model_dir, out_dir):
    os.makedirs(out_dir, exist_ok=True)
    weights = read_safetensors(os.path.join(model_dir, "model.safetensors"))
    vdt = "F16" if "bert" in os.path.basename(os.path.normpath(model_dir)) else "F32"
    rng = np.random.default_rng(2026)
    steps, batches = 3, 5
    tensors, expected = {}, {c: {} for c in ("gradient", "snip", "snip_momentum", "taylor", "fisher")}
    for block, names, H, Hkv, d in model_blocks(model_dir):
        E = {c: {} for c in ("gradient", "snip", "snip_momentum")}
        for role, t in names.items():
            W = weights[t]
            G = [rng.standard_normal(W.shape) * 0.01 for _ in range(steps)]
            S = np.zeros_like(W)
            for g in G:
                S = 0.9 * S + 1.0 * np.abs(W * g)
            gsum = stored(sum(G), vdt)
            S = stored(S, vdt)
            tensors[t + ".grad.sum"] = (vdt, gsum)
            tensors[t + ".grad.count"] = ("F64", np.array([steps], dtype=np.float64))
            tensors[t + ".snip_momentum.score"] = (vdt, S)
            tensors[t + ".snip_momentum.count"] = ("F64", np.array([steps], dtype=np.float64))
            E["gradient"][role] = np.abs(gsum)
            E["snip"][role] = np.abs(W * gsum)
            E["snip_momentum"][role] = S
        for c in E:
            expected[c][block] = head_scores(E[c], H, Hkv, d)
        gates = rng.standard_normal((batches, H)) * 0.05  # [batches, H]
        abs_sum, sq_sum = stored(np.abs(gates).sum(axis=0), vdt), stored((gates**2).sum(axis=0), vdt)
        tensors[block + ".head_gate.abs_sum"] = (vdt, abs_sum)
        tensors[block + ".head_gate.sq_sum"] = (vdt, sq_sum)
        tensors[block + ".head_gate.count"] = ("F64", np.array([batches], dtype=np.float64))
        expected["taylor"][block] = list(abs_sum)
        expected["fisher"][block] = list(sq_sum)
    write_safetensors(os.path.join(out_dir, "grads.safetensors"), tensors)
    with open(os.path.join(out_dir, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)

    # Broken copies, each with one fault in the last block's output projection (or gate).
    last_block, last_names = model_blocks(model_dir)[-1][:2]
    o = last_names["o"]
    broken = {
        "missing": lambda t: t.pop(o + ".grad.sum"),
        "shape": lambda t: t.__setitem__(o + ".grad.sum", (vdt, t[o + ".grad.sum"][1][:, :-1])),
        "count0": lambda t: t.__setitem__(last_block + ".head_gate.count", ("F64", np.zeros(1))),
        "nan": lambda t: t[o + ".snip_momentum.score"][1].__setitem__((3, 7), np.nan),
    }
    for case, fault in broken.items():
        copy = {k: (dt, np.array(a, copy=True)) for k, (dt, a) in tensors.items()}
        fault(copy)
        write_safetensors(os.path.join(out_dir, "broken_%s.safetensors" % case), copy)
    print("wrote %s: %d tensors, %s values" % (os.path.join(out_dir, "grads.safetensors"), len(tensors), vdt))


def run_score(cli, model_dir, out_dir, criterion):
    report = os.path.join(out_dir, "score-%s.json" % criterion)
    cmd = [cli, "score", model_dir, "--criterion", criterion, "--grads", os.path.join(out_dir, "grads.safetensors"),
           "--json", report, "--quiet"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(report) as f:
        return json.load(f)


def check(cli, model_dir, out_dir, criterion):
    with open(os.path.join(out_dir, "expected.json")) as f:
        expected = json.load(f)[criterion]
    report = run_score(cli, model_dir, out_dir, criterion)
    bad, n = [], 0
    assert len(report["blocks"]) == len(expected), (len(report["blocks"]), len(expected))
    for b in report["blocks"]:
        want = np.array(expected[b["name"]])
        got = np.array(b["scores"])
        assert got.shape == want.shape, (b["name"], got.shape, want.shape)
        n += got.size
        for h in range(got.size):
            if not abs(got[h] - want[h]) <= 1e-4 * abs(want[h]):
                bad.append("%s head %d: tool %.9g, expected %.9g" % (b["name"], h, got[h], want[h]))
    if bad:
        sys.exit("%s: %d of %d scores differ:\n  %s" % (criterion, len(bad), n, "\n  ".join(bad)))
    print("%s: all %d head scores agree" % (criterion, n))


def check_prune(cli, model_dir, out_dir, criterion):
    with open(os.path.join(out_dir, "expected.json")) as f:
        expected = json.load(f)[criterion]
    report = os.path.join(out_dir, "prune-%s.json" % criterion)
    cmd = [cli, "prune", model_dir, "-o", os.path.join(out_dir, "pruned-" + criterion), "--criterion", criterion,
           "--grads", os.path.join(out_dir, "grads.safetensors"), "--sparsity", "0.25", "--scope", "local",
           "--report", report, "--force", "--quiet", "--no-sync"]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    with open(report) as f:
        blocks = json.load(f)["blocks"]
    for b in blocks:
        want = [int(np.argmin(expected[b["name"]]))]
        if b["removed"] != want:
            sys.exit("%s: block %s removed %s, the lowest expected score is head %s" % (criterion, b["name"],
                                                                                       b["removed"], want))
    print("%s: every layer lost its lowest-scoring head" % criterion)


if __name__ == "__main__":
    a = sys.argv[1:]
    if len(a) == 3 and a[0] == "write":
        write(a[1], a[2])
    elif len(a) == 5 and a[0] == "check":
        check(*a[1:])
    elif len(a) == 5 and a[0] == "check-prune":
        check_prune(*a[1:])
    else:
        sys.exit(__doc__)
