#!/usr/bin/python3
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""mhaprune's CLI against `cp`+`sync` and PyTorch on a 2 GiB checkpoint: wall time and peak memory.

Makes a synthetic LLaMA-shaped fp32 checkpoint (hidden 4096, 32 heads of 128, 8 layers of
q/k/v/o_proj weights only, Hugging Face names and config.json: 2 GiB), then removes 25 % of the
heads globally by magnitude, each run under `/usr/bin/time -v`, the sides interleaved:

  * cp+sync:   `cp` of the checkpoint's weight file(s) and `sync` of the copies: the floor for any
               tool that writes the pruned file durably (mhaprune fsyncs before its rename)
  * mhaprune:  `mhaprune prune SRC -o OUT --sparsity 0.25 --scope global --criterion magnitude`
  * PyTorch:   what a Hugging Face user does: load every tensor (safetensors' load_file when the
               package is installed, else the file read by hand into torch tensors), score heads by
               mean |w| over their q/k/v rows and o columns, pick the globally lowest 25 %, rebuild
               each projection as Hugging Face's `prune_linear_layer` does (index_select, clone, a new
               nn.Linear, copy_), and save a safetensors file.

Prints the wall times and peak RSS of every side and three ratios from the same run: mhaprune /
cp+sync wall (target <= 1.3), PyTorch / mhaprune wall (target >= 3), mhaprune / PyTorch peak RSS
(target <= 0.35). Run with Debian's /usr/bin/python3 (python3-torch, numpy). Not run in CI: it needs
2 GiB of RAM per run and ~6 GiB of scratch space under --workdir, and takes a minute or two.

    /usr/bin/python3 tests/bench/compare_pytorch.py                 # finds build*/examples/mhaprune/mhaprune
    /usr/bin/python3 tests/bench/compare_pytorch.py --cli build/examples/mhaprune/mhaprune --workdir /var/tmp
    /usr/bin/python3 tests/bench/compare_pytorch.py --cli NEW --baseline-cli OLD --repeat 3   # before/after
    /usr/bin/python3 tests/bench/compare_pytorch.py --layers 32 --shards 4 --no-torch       # 8 GiB, 4 shards
"""

import argparse
import glob
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PROJ = ("q_proj", "k_proj", "v_proj", "o_proj")


# ---------------------------------------------------------------------------------------------------
# safetensors by hand (Debian has no python3-safetensors)

def write_safetensors(path, tensors, metadata=None):
    """tensors: list of (name, dtype string, shape, writer) where writer(f) writes the bytes."""
    header = {"__metadata__": metadata or {"format": "pt"}}
    offset = 0
    for name, dtype, shape, nbytes, _ in tensors:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, _, _, _, write in tensors:
            write(f)


def read_safetensors_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    return header, 8 + n


# ---------------------------------------------------------------------------------------------------
# the synthetic checkpoint

def shard_files(layers, shards):
    """(file name, layers in it) for each weight file: model.safetensors, or model-0000i-of-0000n."""
    if shards <= 1:
        return [("model.safetensors", list(range(layers)))]
    per = -(-layers // shards)
    return [(f"model-{i + 1:05d}-of-{shards:05d}.safetensors", list(range(i * per, min(layers, (i + 1) * per))))
            for i in range(shards)]


def make_checkpoint(directory, layers, dim, heads, seed, shards=1):
    import numpy as np

    os.makedirs(directory)
    head_dim = dim // heads
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": dim,
        "num_attention_heads": heads, "num_key_value_heads": heads, "head_dim": head_dim,
        "num_hidden_layers": layers, "intermediate_size": 4 * dim, "vocab_size": 32000,
        "torch_dtype": "float32",
    }
    with open(os.path.join(directory, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    rng = np.random.default_rng(seed)
    # Heads differ in scale so that magnitude has something to rank.
    scales = rng.uniform(0.5, 1.5, size=(layers, heads)).astype(np.float32)
    weight_map = {}
    for file, in_file in shard_files(layers, shards):
        tensors = []
        names = sorted(f"model.layers.{l}.self_attn.{p}.weight" for l in in_file for p in PROJ)
        for name in names:
            layer = int(name.split(".")[2])
            proj = name.split(".")[4]
            weight_map[name] = file

            def write(f, layer=layer, proj=proj):
                w = rng.standard_normal((dim, dim), dtype=np.float32)
                w *= np.float32(0.02)
                s = np.repeat(scales[layer], head_dim)
                if proj == "o_proj":
                    w *= s[None, :]
                else:
                    w *= s[:, None]
                f.write(memoryview(w))
            tensors.append((name, "F32", (dim, dim), dim * dim * 4, write))
        write_safetensors(os.path.join(directory, file), tensors)
    if shards > 1:
        index = {"metadata": {"total_size": layers * 4 * dim * dim * 4}, "weight_map": weight_map}
        with open(os.path.join(directory, "model.safetensors.index.json"), "w") as f:
            json.dump(index, f, indent=2)


# ---------------------------------------------------------------------------------------------------
# the PyTorch side (runs in its own process, under /usr/bin/time)

def prune_linear_layer(layer, index, dim=0):
    """Hugging Face transformers' pytorch_utils.prune_linear_layer, verbatim in effect."""
    import torch
    from torch import nn
    index = index.to(layer.weight.device)
    W = layer.weight.index_select(dim, index).clone().detach()
    if layer.bias is not None:
        b = layer.bias.clone().detach() if dim == 1 else layer.bias[index].clone().detach()
    new_size = list(layer.weight.size())
    new_size[dim] = len(index)
    new_layer = nn.Linear(new_size[1], new_size[0], bias=layer.bias is not None).to(layer.weight.device)
    new_layer.weight.requires_grad = False
    new_layer.weight.copy_(W.contiguous())
    new_layer.weight.requires_grad = True
    if layer.bias is not None:
        new_layer.bias.requires_grad = False
        new_layer.bias.copy_(b.contiguous())
        new_layer.bias.requires_grad = True
    return new_layer


def torch_load(path):
    import torch
    try:
        from safetensors.torch import load_file  # what HF uses when it is there
        return load_file(path)
    except ImportError:
        pass
    header, data_start = read_safetensors_header(path)
    out = {}
    with open(path, "rb") as f:
        for name, info in header.items():
            if name == "__metadata__":
                continue
            assert info["dtype"] == "F32", info
            begin, end = info["data_offsets"]
            f.seek(data_start + begin)
            buf = bytearray(end - begin)
            f.readinto(buf)
            out[name] = torch.frombuffer(buf, dtype=torch.float32).reshape(info["shape"])
    return out


def torch_prune(src, dst, sparsity):
    import torch
    from torch import nn
    torch.set_grad_enabled(False)
    with open(os.path.join(src, "config.json")) as f:
        config = json.load(f)
    heads, layers = config["num_attention_heads"], config["num_hidden_layers"]
    head_dim = config["head_dim"]
    state = torch_load(os.path.join(src, "model.safetensors"))

    # Modules over the loaded tensors (no second copy: the parameters are the loaded tensors).
    modules = {}
    for name, w in state.items():
        lin = nn.Linear(w.shape[1], w.shape[0], bias=False, device="meta")
        lin.weight = nn.Parameter(w, requires_grad=False)
        modules[name] = lin

    scores = []  # (score, layer, head)
    for l in range(layers):
        p = f"model.layers.{l}.self_attn."
        acc = torch.zeros(heads, dtype=torch.float64)
        for proj in PROJ:
            w = modules[p + proj + ".weight"].weight
            per = (w.abs().reshape(heads, head_dim, -1) if proj != "o_proj"
                   else w.abs().reshape(w.shape[0], heads, head_dim).transpose(0, 1))
            acc += per.reshape(heads, -1).sum(dim=1, dtype=torch.float64)
        acc /= 4 * head_dim * config["hidden_size"]
        scores += [(float(acc[h]), l, h) for h in range(heads)]
    n_remove = int(sparsity * heads * layers + 1e-9)
    removed = {l: [] for l in range(layers)}
    for s, l, h in sorted(scores)[:n_remove]:
        if len(removed[l]) < heads - 1:  # keep at least one head, as mhaprune's min_heads=1
            removed[l].append(h)

    out_tensors = []
    for l in range(layers):
        keep = torch.tensor([h for h in range(heads) if h not in removed[l]], dtype=torch.long)
        rows = (keep[:, None] * head_dim + torch.arange(head_dim)[None, :]).reshape(-1)
        for proj in PROJ:
            name = f"model.layers.{l}.self_attn.{proj}.weight"
            new = prune_linear_layer(modules[name], rows, dim=1 if proj == "o_proj" else 0)
            modules[name] = new
            del state[name]
    os.makedirs(dst)
    for name in sorted(modules):
        w = modules[name].weight.detach().contiguous()
        arr = w.numpy()
        out_tensors.append((name, "F32", tuple(w.shape), arr.nbytes, lambda f, a=arr: f.write(memoryview(a))))
    write_safetensors(os.path.join(dst, "model.safetensors"), out_tensors)
    config["pruned_heads_per_layer"] = {str(l): sorted(r) for l, r in removed.items()}
    with open(os.path.join(dst, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


# ---------------------------------------------------------------------------------------------------
# driver

def timed(cmd):
    """Runs cmd under /usr/bin/time -v; returns (wall seconds, peak RSS bytes, stdout)."""
    res = subprocess.run(["/usr/bin/time", "-v"] + cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    if res.returncode != 0:
        sys.stderr.write(res.stderr)
        raise SystemExit(f"failed ({res.returncode}): {' '.join(cmd)}")
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (\S+)", res.stderr).group(1)
    seconds = 0.0
    for part in wall.split(":"):
        seconds = seconds * 60 + float(part)
    rss = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", res.stderr).group(1)) * 1024
    return seconds, rss, res.stdout


def drop_cached(paths):
    """Drops the files' pages from the page cache (clean pages: no root needed) and checks that they went."""
    for path in paths:
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    res = subprocess.run(["fincore", "--bytes", "--noheadings", "--output", "RES"] + paths, stdout=subprocess.PIPE,
                         text=True)
    cached = sum(int(x) for x in res.stdout.split()) if res.returncode == 0 else 0
    if cached > 64 << 20:
        raise SystemExit(f"--cache cold: {cached / 2**20:.0f} MiB of the input is still cached after DONTNEED")


def find_cli(given):
    if given:
        return os.path.abspath(given)
    hits = sorted(glob.glob(os.path.join(REPO, "build*", "examples", "mhaprune", "mhaprune")),
                  key=os.path.getmtime, reverse=True)
    if not hits:
        raise SystemExit("mhaprune CLI not found under build*/examples/mhaprune/; pass --cli PATH")
    return hits[0]


def weight_files(directory):
    return sorted(f for f in os.listdir(directory) if f.endswith(".safetensors"))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cli", help="path of the mhaprune executable (default: newest build*/examples/mhaprune/mhaprune)")
    ap.add_argument("--baseline-cli", help="an older mhaprune executable, run as one more side (before/after)")
    ap.add_argument("--workdir", default="/tmp", help="where the scratch checkpoints go (default /tmp)")
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--shards", type=int, default=1, help="weight files (more than 1: an indexed sharded checkpoint)")
    ap.add_argument("--dim", type=int, default=4096)
    ap.add_argument("--heads", type=int, default=32)
    ap.add_argument("--sparsity", type=float, default=0.25)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each side; the best is reported")
    ap.add_argument("--cli-args", default="", help="extra arguments for mhaprune prune, e.g. --no-sync")
    ap.add_argument("--no-torch", action="store_true", help="skip the PyTorch side (e.g. for a sharded 8 GiB run)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch directory")
    ap.add_argument("--cache", choices=("warm", "cold"), default="warm",
                    help="warm: every side reads the input from the page cache; cold: the input's pages are "
                    "dropped before each run (posix_fadvise DONTNEED, no root needed), so each side reads the disk")
    ap.add_argument("--torch-prune", nargs=3, metavar=("SRC", "DST", "SPARSITY"), help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.torch_prune:
        torch_prune(args.torch_prune[0], args.torch_prune[1], float(args.torch_prune[2]))
        return
    if args.shards > 1 and not args.no_torch:
        raise SystemExit("the PyTorch side reads a single model.safetensors: use --no-torch with --shards")

    cli = find_cli(args.cli)
    work = tempfile.mkdtemp(prefix="mhaprune_compare_", dir=args.workdir)
    try:
        src = os.path.join(work, "src")
        t0 = time.time()
        make_checkpoint(src, args.layers, args.dim, args.heads, args.seed, args.shards)
        files = weight_files(src)
        size = sum(os.path.getsize(os.path.join(src, f)) for f in files)
        print(f"checkpoint: {size / 2**30:.2f} GiB in {len(files)} file(s), {args.layers} layers x 4 x "
              f"[{args.dim}, {args.dim}] F32, {args.heads} heads (made in {time.time() - t0:.1f} s)")
        print(f"mhaprune:   {cli}")
        if args.baseline_cli:
            print(f"baseline:   {os.path.abspath(args.baseline_cli)}")
        print("load:       %.2f %.2f %.2f (%d CPUs)" % (os.getloadavg() + (os.cpu_count(),)))
        inputs = [os.path.join(src, f) for f in files]
        if args.cache == "warm":  # every side reads files already in the page cache
            for name in inputs:
                with open(name, "rb") as f:
                    while f.read(1 << 24):
                        pass
        print(f"cache:      {args.cache}" + (" (the input's pages dropped before every run)" if args.cache == "cold" else ""))

        sides = ["cp+sync"] + ([] if args.no_torch else ["pytorch"]) + ["mhaprune"]
        if args.baseline_cli:
            sides.append("baseline")
        results = {side: [] for side in sides}
        for i in range(args.repeat):
            for side in sides:
                out = os.path.join(work, f"out_{side}_{i}")
                if side in ("mhaprune", "baseline"):
                    exe = cli if side == "mhaprune" else os.path.abspath(args.baseline_cli)
                    cmd = [exe, "prune", src, "-o", out, "--sparsity", str(args.sparsity), "--scope", "global",
                           "--criterion", "magnitude", "--quiet", "--report", out + ".report.json"]
                    cmd += args.cli_args.split()
                elif side == "cp+sync":
                    os.makedirs(out)
                    copies = " && ".join(f"cp {os.path.join(src, f)} {os.path.join(out, f)}" for f in files)
                    cmd = ["sh", "-c", f"{copies} && sync " + " ".join(os.path.join(out, f) for f in files)]
                else:
                    cmd = [sys.executable, os.path.abspath(__file__), "--torch-prune", src, out, str(args.sparsity)]
                if args.cache == "cold":
                    drop_cached(inputs)
                wall, rss, _ = timed(cmd)
                results[side].append((wall, rss))
                print(f"  run {i + 1} {side:9s} wall {wall:7.2f} s   peak RSS {rss / 2**20:8.1f} MiB")
                sys.stdout.flush()
                if side != "cp+sync":
                    check_output(side, out, args)
                if i + 1 < args.repeat or not args.keep:
                    shutil.rmtree(out, ignore_errors=True)
                    if os.path.exists(out + ".report.json"):
                        os.unlink(out + ".report.json")

        best = {side: min(r) for side, r in results.items()}
        print()
        print(f"{'':10s}{'wall s':>10s}{'peak RSS MiB':>16s}   (best of {args.repeat})")
        for side in sides:
            print(f"{side:10s}{best[side][0]:10.2f}{best[side][1] / 2**20:16.1f}")
        (mw, mr), (cw, _) = best["mhaprune"], best["cp+sync"]
        print(f"time (mhaprune wall / cp+sync wall):     {mw / cw:.2f}x  (target <= 1.3)  "
              f"{'OK' if mw / cw <= 1.3 else 'MISSED'}")
        if args.baseline_cli:
            bw, br = best["baseline"]
            print(f"baseline (baseline wall / cp+sync wall): {bw / cw:.2f}x; peak RSS {br / 2**20:.1f} MiB")
        if not args.no_torch:
            pw, pr = best["pytorch"]
            speedup, rss_ratio = pw / mw, mr / pr
            print(f"speed-up (pytorch wall / mhaprune wall): {speedup:.2f}x  (target >= 3)  "
                  f"{'OK' if speedup >= 3 else 'MISSED'}")
            print(f"peak RSS (mhaprune / pytorch):           {rss_ratio:.3f}x (target <= 0.35) "
                  f"{'OK' if rss_ratio <= 0.35 else 'MISSED'}")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")


def check_output(side, out, args):
    """The pruned checkpoint has the expected number of heads left (a run that did nothing is no result)."""
    header = {}
    for name in weight_files(out):
        header.update(read_safetensors_header(os.path.join(out, name))[0])
    head_dim = args.dim // args.heads
    left = sum(header[f"model.layers.{l}.self_attn.q_proj.weight"]["shape"][0] // head_dim
               for l in range(args.layers))
    expected = args.heads * args.layers - int(args.sparsity * args.heads * args.layers + 1e-9)
    if left != expected:
        raise SystemExit(f"{side}: {left} heads left, expected {expected}")


if __name__ == "__main__":
    main()
