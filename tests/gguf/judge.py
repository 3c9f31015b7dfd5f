#!/usr/bin/python3
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""llama.cpp judges a pruned GGUF model: it must compute what the original computes with the same
heads masked (their O columns zeroed).

  judge.py --original IN.gguf [--masked MASKED.gguf] --pruned OUT.gguf --work DIR (--heads SPEC | --heads-from-output)
           [--tol-mean X] [--tol-max Y] [--min-effect Z] [--node NODE] [--npm-prefix DIR]
           [--requantize q8_0|f16|f32 [--tol-mean-plain X] [--tol-max-plain Y]]

Runs tests/gguf/llama_nll.mjs (the real llama.cpp through node-llama-cpp) on
  (a) the pruned model,
  (b) the original with the same heads masked, made here by make_tiny_gguf.py's masking (numpy,
      without mhaprune), and
  (c) the original itself,
on the same byte sequences of tests/data/tiny-qwen2/text/heldout.txt (3 chunks of 128 bytes, the
length the tiny Qwen2 was trained on: 381 predictions), and asserts
  |mean NLL(a) - mean NLL(b)| <= tol-mean and max over positions |log p(a) - log p(b)| <= tol-max
  (same function), and |mean NLL(b) - mean NLL(c)| >= min-effect (the removed heads matter, so a
  pruner that changed nothing, or removed other heads, would fail).
With --requantize T (the pruned O of some layers was re-encoded as T), (b) is the original masked
and re-encoded as T the same way (make_tiny_gguf --mask-requantize) for the tolerances above, and
(a) must also stay within --tol-mean-plain / --tol-max-plain of the plain masked original (what the
re-encoding may cost).
The removed heads are --heads SPEC, or with --heads-from-output the complement of the output's
mhaprune.head_ids.N (check_gguf.py has cross-checked those against the request).
With --masked FILE, (b) is that file as it is (the masked model `mhaprune slim` read, whose zeroed
heads are the ones it removed, made by make_tiny_gguf.py --mask) instead of a masking done here; with
--requantize, the masked+requantized reference is then FILE re-encoded that way (its masked columns
are already zero).
Prints one JSON line with all the numbers. Exit 0 when every assertion holds, 1 otherwise.

  judge.py --reference-nll tests/data/tiny-qwen2/reference_nll.json --original qwen2-hd16-f32.gguf
checks llama.cpp against the training script's own NLL on the first three 128-byte sequences.

  judge.py --original IN.gguf --numpy-prune OTHER_SPEC --heads SPEC --work DIR --expect-mismatch
is the judge's own self-test: a model pruned (by numpy_prune.py) of other heads than the masked ones
must be caught.
"""

import argparse
import json
import os
import subprocess
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import gguf_np as g  # noqa: E402
import make_tiny_gguf  # noqa: E402

TEXT = os.path.join(HERE, "..", "data", "tiny-qwen2", "text", "heldout.txt")


def removed_from_output(out_path):
    f = g.GGUFFile(out_path)
    orig = f.get("mhaprune.original_head_count")
    if orig is None:
        raise SystemExit("judge: %s has no mhaprune.original_head_count" % out_path)
    spec = {}
    for i, n in enumerate(orig.tolist()):
        kept = f.get("mhaprune.head_ids.%d" % i)
        if kept is None:
            raise SystemExit("judge: %s has no mhaprune.head_ids.%d" % (out_path, i))
        rm = sorted(set(range(n)) - set(kept.tolist()))
        if rm:
            spec[i] = rm
    return ";".join("%d:%s" % (k, ",".join(map(str, v))) for k, v in sorted(spec.items()))


def nll(model, a):
    env = dict(os.environ, NODE_LLAMA_CPP_DIR=a.npm_prefix)
    cmd = [a.node, os.path.join(HERE, "llama_nll.mjs"), model, a.text, "--count", "128", "--chunks", "3"]
    r = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        sys.stderr.write("judge: llama.cpp failed on %s (exit %d):\n%s\n" % (model, r.returncode, r.stderr))
        sys.exit(1)
    d = json.loads(r.stdout)
    return d["mean_nll"], np.array(d["logprob"], dtype=np.float64)


def reference_check(a):
    """llama.cpp on our converted tiny Qwen2 against the NLL the training script computed in numpy
    (float64) on the same 128-byte sequences: proves the converter, the vocabulary and the
    probability read-out."""
    ref = json.load(open(a.reference_nll))["per_sequence_mean_nll_float64"]
    _, lp = nll(a.original, a)  # 3 chunks of 128 bytes from offset 0 = reference sequences 0, 1, 2
    got = [-float(np.mean(lp[127 * k:127 * (k + 1)])) for k in range(3)]
    diffs = [abs(x - y) for x, y in zip(got, ref[:3])]
    print(json.dumps(dict(model=a.original, llama_cpp=got, reference=ref[:3], abs_diff=diffs, tol=a.reference_tol)))
    if max(diffs) > a.reference_tol:
        sys.stderr.write("judge: FAIL: llama.cpp's per-sequence NLL %s differs from the reference %s by up to %.3g > %.3g\n"
                         % (got, ref[:3], max(diffs), a.reference_tol))
        sys.exit(1)
    print("judge: ok: llama.cpp reproduces the reference NLL (max |diff| %.3g)" % max(diffs))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--original", required=True)
    ap.add_argument("--pruned")
    ap.add_argument("--masked", metavar="GGUF",
                    help="the original with the removed heads already masked (what mhaprune slim read): the "
                         "reference as it is, instead of masking --original here")
    ap.add_argument("--work")
    grp = ap.add_mutually_exclusive_group()
    grp.add_argument("--heads")
    grp.add_argument("--heads-from-output", action="store_true")
    ap.add_argument("--tol-mean", type=float, default=1e-4)
    ap.add_argument("--tol-max", type=float, default=1e-3)
    ap.add_argument("--min-effect", type=float, default=0.01)
    ap.add_argument("--requantize", choices=["q8_0", "f16", "f32"])
    ap.add_argument("--tol-mean-plain", type=float, default=0.01)
    ap.add_argument("--tol-max-plain", type=float, default=1.0)
    ap.add_argument("--node", default="node")
    ap.add_argument("--npm-prefix", default=os.environ.get("NODE_LLAMA_CPP_DIR", os.getcwd()))
    ap.add_argument("--text", default=TEXT)
    ap.add_argument("--reference-nll", metavar="JSON",
                    help="instead: check that llama.cpp's NLL of --original on each 128-byte sequence "
                         "matches per_sequence_mean_nll_float64 of this reference_nll.json")
    ap.add_argument("--reference-tol", type=float, default=2e-4)
    ap.add_argument("--numpy-prune", metavar="SPEC",
                    help="make --pruned here with numpy_prune.py --heads SPEC --rename always")
    ap.add_argument("--expect-mismatch", action="store_true",
                    help="self-test of the judge: succeed only if the pruned model loads and does NOT match "
                         "the masked original within the tolerances (e.g. --numpy-prune with other heads)")
    a = ap.parse_args()
    if a.reference_nll:
        return reference_check(a)
    if a.numpy_prune is not None and a.work and not a.pruned:
        os.makedirs(a.work, exist_ok=True)
        a.pruned = os.path.join(a.work, "numpy_pruned.gguf")
        subprocess.run([sys.executable, os.path.join(HERE, "numpy_prune.py"), a.original, "-o", a.pruned,
                        "--heads", a.numpy_prune, "--rename", "always"], check=True)
    if not a.pruned or not a.work or (a.heads is None and not a.heads_from_output):
        ap.error("--pruned (or --numpy-prune), --work and --heads or --heads-from-output are required")

    spec = removed_from_output(a.pruned) if a.heads_from_output else a.heads
    if not g.parse_heads(spec):
        raise SystemExit("judge: no heads removed (%r): nothing to judge" % spec)
    os.makedirs(a.work, exist_ok=True)
    if a.masked:
        masked = a.masked
    else:
        masked = os.path.join(a.work, "masked.gguf")
        make_tiny_gguf.mask_model(a.original, spec, masked)
    m_p, lp_p = nll(a.pruned, a)
    m_m, lp_m = nll(masked, a)
    m_o, lp_o = nll(a.original, a)
    bad = []
    res = dict(pruned=a.pruned, removed=spec, nll_pruned=m_p, nll_masked=m_m, nll_original=m_o,
               effect=abs(m_m - m_o), min_effect=a.min_effect, n_predictions=int(lp_p.size))
    if a.requantize:
        # The pruned O of some layers was re-encoded: the tight comparison is with the original masked
        # and re-encoded the same way; the plain masked original bounds what the re-encoding cost.
        masked_rq = os.path.join(a.work, "masked_requantized.gguf")
        make_tiny_gguf.mask_model(masked, spec, masked_rq, {"q8_0": g.Q8_0, "f16": g.F16, "f32": g.F32}[a.requantize])
        m_r, lp_r = nll(masked_rq, a)
        dp = np.abs(lp_p - lp_m)
        res.update(nll_masked_requantized=m_r, plain_mean_diff=abs(m_p - m_m), plain_max_pos_diff=float(dp.max()),
                   tol_mean_plain=a.tol_mean_plain, tol_max_plain=a.tol_max_plain)
        if not res["plain_mean_diff"] <= a.tol_mean_plain:
            bad.append("mean NLL pruned %.7f vs plain masked %.7f differ by %.3g > %.3g: re-encoding cost too much"
                       % (m_p, m_m, res["plain_mean_diff"], a.tol_mean_plain))
        if not res["plain_max_pos_diff"] <= a.tol_max_plain:
            bad.append("per-position log-prob vs the plain masked original differs by up to %.3g > %.3g"
                       % (res["plain_max_pos_diff"], a.tol_max_plain))
        ref_name, m_ref, lp_ref = "masked+requantized", m_r, lp_r
    else:
        ref_name, m_ref, lp_ref = "masked", m_m, lp_m
    d = np.abs(lp_p - lp_ref)
    res.update(reference=ref_name, mean_diff=abs(m_p - m_ref), max_pos_diff=float(d.max()),
               positions_differing=int(np.sum(d > 0)), tol_mean=a.tol_mean, tol_max=a.tol_max)
    print(json.dumps(res))
    if not res["mean_diff"] <= a.tol_mean:
        bad.append("mean NLL pruned %.7f vs %s %.7f differ by %.3g > %.3g" % (m_p, ref_name, m_ref, res["mean_diff"], a.tol_mean))
    if not res["max_pos_diff"] <= a.tol_max:
        bad.append("per-position log-prob differs by up to %.3g > %.3g (position %d)"
                   % (res["max_pos_diff"], a.tol_max, int(d.argmax())))
    if a.expect_mismatch:
        if bad:
            print("judge: ok: the mismatch was caught: " + "; ".join(bad))
            return
        sys.stderr.write("judge: FAIL: expected a mismatch but pruned %.7f agrees with %s %.7f\n" % (m_p, ref_name, m_ref))
        sys.exit(1)
    m_m = res["nll_masked"]
    if not res["effect"] >= a.min_effect:
        bad.append("masking the heads moves the NLL by only %.3g < %.3g (original %.7f, masked %.7f): the test "
                   "would not notice a pruner that removes nothing" % (res["effect"], a.min_effect, m_o, m_m))
    if bad:
        for b in bad:
            sys.stderr.write("judge: FAIL: %s\n" % b)
        sys.exit(1)
    print("judge: ok: pruned %.6f, %s %.6f (|diff| %.3g, max per position %.3g), masked %.6f, original %.6f"
          % (m_p, ref_name, m_ref, res["mean_diff"], res["max_pos_diff"], m_m, m_o))


if __name__ == "__main__":
    main()
