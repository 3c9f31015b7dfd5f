#!/usr/bin/python3
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""Shows that check_pruned.py rejects what it should: damages copies of a good pruned checkpoint.

    /usr/bin/python3 tests/pycheck/check_pruned_mutants.py ORIGINAL_DIR PRUNED_DIR WORK_DIR

PRUNED_DIR must pass check_pruned.py and have a layer that lost heads and kept at least two. Each
mutant is a copy in WORK_DIR with one defect; check_pruned.py must exit 1 naming it. The defects
are ones a loader would not notice or would load into a different model: swapped heads (same
function, wrong place), a changed non-attention tensor, config keys and head ids that disagree,
safetensors files other tools refuse. The NLL comparison is checked on its own: masking one more
head must move the NLL by more than the tolerance. Exit 0 when every mutant is caught.
"""

import contextlib
import io
import json
import os
import shutil
import struct
import sys

import numpy as np

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import check_pruned as cp  # noqa: E402


def read_config(d):
    return json.load(open(os.path.join(d, "config.json")))


def write_config(d, cfg):
    json.dump(cfg, open(os.path.join(d, "config.json"), "w"), indent=2)


def rewrite_tensors(d, change):
    path = os.path.join(d, "model.safetensors")
    tensors, _ = cp.parse_safetensors(path)
    tensors = {k: (dt, np.array(a)) for k, (dt, a) in tensors.items()}
    change(tensors)
    open(path, "wb").write(cp.ref.serialize(tensors))


def victim_layer(model):
    """A layer that lost heads and kept two in one kv group: (layer index, positions j1, j2)."""
    for i, x in enumerate(model.layers):
        if len(x.heads) < model.H0 and len(x.heads) >= 2:
            group = len(x.heads) // max(len(x.kv_heads), 1)
            for j in range(len(x.heads) - 1):
                # BERT swaps K and V rows too; a decoder only swaps query heads sharing a kv head.
                if model.kind == "bert" or j // group == (j + 1) // group:
                    return i, j, j + 1
    raise SystemExit("check_pruned_mutants.py: PRUNED_DIR has no layer with two kept heads "
                     "in one group")


def names(kind, i):
    if kind == "bert":
        p = f"bert.encoder.layer.{i}.attention."
        return [p + f"self.{m}.{w}" for m in ("query",) for w in ("weight", "bias")], \
            p + "output.dense.weight", "bert.encoder.layer.0.output.dense.weight"
    p = f"model.layers.{i}.self_attn."
    return [p + "q_proj.weight", p + "q_proj.bias"], p + "o_proj.weight", \
        "model.layers.0.mlp.down_proj.weight"


def mutants(model):
    i, j1, j2 = victim_layer(model)
    d = model.layers[i].d
    q_names, o_name, other = names(model.kind, i)
    r1, r2 = slice(j1 * d, (j1 + 1) * d), slice(j2 * d, (j2 + 1) * d)

    def swap_heads(t):
        # Swapping two heads' Q rows and O columns (and, for BERT, K and V rows) is the same
        # function, but the heads no longer sit where their ids say.
        rows = q_names + ([n.replace("query", m) for n in q_names for m in ("key", "value")]
                          if model.kind == "bert" else [])
        for n in rows:
            a = t[n][1]
            a[r1], a[r2] = a[r2].copy(), a[r1].copy()
        a = t[o_name][1]
        a[:, r1], a[:, r2] = a[:, r2].copy(), a[:, r1].copy()

    def flip_bit(t):
        t[other][1].view(np.uint8)[0] ^= 1

    def config(change):
        def apply(dd):
            cfg = read_config(dd)
            change(cfg)
            write_config(dd, cfg)
        return apply

    def tensors(change):
        return lambda dd: rewrite_tensors(dd, change)

    def section_ids(cfg):
        layer = cfg["mhaprune"]["layers"][i]
        removed = layer["removed_heads"][0]
        layer["head_ids"] = sorted(layer["head_ids"][1:] + [removed])
        layer["removed_heads"] = sorted(set(range(model.H0)) - set(layer["head_ids"]))

    def metadata_format(dd):
        path = os.path.join(dd, "model.safetensors")
        raw = bytearray(open(path, "rb").read())
        at = raw.index(b'"format":"pt"')
        raw[at:at + 13] = b'"format":"tf"'
        open(path, "wb").write(raw)

    def gap_in_offsets(dd):
        path = os.path.join(dd, "model.safetensors")
        raw = open(path, "rb").read()
        (n,) = struct.unpack("<Q", raw[:8])
        header = json.loads(raw[8:8 + n])
        first = min((k for k in header if k != "__metadata__"),
                    key=lambda k: header[k]["data_offsets"][0])
        b, e = header[first]["data_offsets"]
        header[first]["data_offsets"] = [b + 8, e + 8]  # 8 bytes nobody owns at the start
        text = json.dumps(header, separators=(",", ":")).encode()
        text += b" " * (-len(text) % 8)
        data = raw[8 + n:]
        open(path, "wb").write(struct.pack("<Q", len(text)) + text + data[:8] + data)

    out = [("two kept heads swapped", tensors(swap_heads), "kept heads' values differ"),
           ("one bit of a non-attention tensor", tensors(flip_bit), "not byte-identical"),
           ("a config key changed",
            config(lambda c: c.update(rms_norm_eps=1e-5, layer_norm_eps=1e-5)), "changed"),
           ("mhaprune head_ids disagree", config(section_ids), "pruned_heads leave heads"
            if model.kind == "bert" else ("values differ", "would read kv head")),
           ("safetensors metadata format tf", metadata_format, "format"),
           ("safetensors offsets with a gap", gap_in_offsets, "do not start where"),
           ("a layer count changed", config(lambda c: c["mhaprune"]["layers"][i].update(
               num_attention_heads=len(model.layers[i].heads) + 1)), "num_attention_heads")]
    if model.kind == "bert":
        out.append(("pruned_heads drops a layer", config(lambda c: c["pruned_heads"].pop(str(i))),
                    "shape"))
        out.append(("num_attention_heads set to the pruned count",
                    config(lambda c: c.update(num_attention_heads=len(model.layers[i].heads))), ""))
    else:
        out.append(("top-level head count wrong", config(lambda c: c.update(num_attention_heads=3)),
                    "num_attention_heads"))
    return out


def run_check(original, pruned):
    err, outp = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(outp):
        code = cp.main([original, pruned, "--sequences", "2"])
    return code, err.getvalue() + outp.getvalue()


def main(argv):
    if len(argv) != 3:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    original, pruned, work = argv
    code, text = run_check(original, pruned)
    if code != 0:
        print(f"check_pruned_mutants.py: the unmodified checkpoint does not pass:\n{text}")
        return 1
    problems = []
    model = cp.loader_view(pruned, problems)
    os.makedirs(work, exist_ok=True)
    bad = 0
    for k, (what, apply, expect) in enumerate(mutants(model)):
        d = os.path.join(work, f"mutant{k}")
        shutil.rmtree(d, ignore_errors=True)
        shutil.copytree(pruned, d)
        apply(d)
        code, text = run_check(original, d)
        expect = (expect,) if isinstance(expect, str) else expect
        caught = code == 1 and any(e in text for e in expect)
        bad += not caught
        first = text.strip().splitlines()[1:2] or [text.strip()]
        print(f"{'caught' if caught else 'MISSED'}: {what} (exit {code}): {first[0][:160]}")
        if not caught:
            print(text)

    # The NLL comparison itself: one more masked head must show.
    orig = cp.loader_view(original, problems)
    i, j1, _ = victim_layer(model)
    W0 = {k: cp.as_f64(dt, a) for k, (dt, a) in cp.load_tensors(original).items()}
    seqs = cp.read_sequences(os.path.join(original, "text", "heldout.txt"), 2)
    layers = [cp.Layer(x.heads, x.kv_heads, x.d) for x in model.layers]
    fewer = cp.Model(pruned, model.kind, model.cfg, layers, model.H0, model.Hkv0, [])
    base = cp.masked_original_nll(orig, W0, seqs, model)
    fewer.layers[i].heads.pop(j1)
    moved = float(np.abs(cp.masked_original_nll(orig, W0, seqs, fewer) - base).max())
    ok = moved > 1e-5
    bad += not ok
    print(f"{'caught' if ok else 'MISSED'}: masking one more head (layer {i}) moves the NLL "
          f"by {moved:.2e}")
    print(f"{'all' if not bad else 'NOT all'} mutants caught")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
