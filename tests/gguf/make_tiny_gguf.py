#!/usr/bin/python3
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""Writes the tiny GGUF models of the GGUF tests (numpy only, deterministic, nothing downloaded).

  make_tiny_gguf.py OUTDIR                      all models below into OUTDIR
  make_tiny_gguf.py --mask "L:ids;L:ids" -i IN.gguf -o OUT.gguf [--mask-requantize q8_0|f16|f32]
                                                the same model with those heads masked

Models (written with our own GGUF writer and quantizers, tests/gguf/gguf_np.py):
  qwen2-hd16-{f32,f16,q8_0,q4_0}.gguf  the trained tiny Qwen2 of tests/data/tiny-qwen2 (BF16
      safetensors, read here with numpy) converted as llama.cpp's convert_hf_to_gguf.py converts
      Qwen2: arch "qwen2", Q/K rows NOT permuted (qwen2 uses NEOX rope), Q/K/V biases kept, no
      output.weight (tied embeddings: llama.cpp's qwen2 loader then uses token_embd.weight as the
      output matrix, TENSOR_DUPLICATED). hidden 128, 8 heads of 16, 2 KV heads, 4 layers, ffn 256,
      vocab 256. Like convert, no key_length / value_length / rope.dimension_count KVs (so a pruner
      must add key_length/value_length itself). 1-D tensors (norms, biases) stay F32 as convert and
      llama-quantize keep them; 2-D weights take the file's type, except token_embd in the q4_0 file,
      which is Q8_0 (llama-quantize keeps the output matrix at higher precision; here it is tied).
  llama-hd64-{q8_0,q4_k}.gguf  arch "llama", deterministic random weights (numpy PCG64, fixed
      seed): n_embd 256, 4 heads of 64, 2 KV heads, 3 layers, ffn 512, vocab 256, untied
      output.weight. Q/K rows are stored in llama.cpp's permuted order (convert's permute applied
      to "HF-order" random matrices; for random weights this changes nothing but the layout is the
      real one). Has key_length/value_length/rope.dimension_count and general.alignment = 64 (a
      non-default alignment the pruner must keep). q4_k: Q4_K (our own encoder, valid blocks that
      decode as ggml decodes them) for every 2-D weight (ne[0] = 256 or 512), output.weight Q8_0.
  Vocabulary: tokenizer.ggml.model "llama" (SPM) with the 256 byte tokens "<0x00>".."<0xFF>" of
  token type BYTE (6), score 0: token id = byte value, and llama.cpp loads it and evaluates ids.

Masking (--mask): writes the input model with the O (attn_output.weight) columns of the given heads
set to exactly zero, so those heads contribute nothing: the "original with the same heads masked"
that the judge compares a pruned model with, computed without mhaprune. Every other byte is
unchanged. The zeros are written inside O's own type, not by converting O to F32, because every
type used here can encode an exact zero for any subset of elements while leaving the other elements
of the block bit-identical: F32/F16/BF16 store 0; Q8_0 (x = d*q) sets those q to 0; Q4_0
(x = d*(q-8)) sets those q to 8; Q4_K (x = d*sc_j*q - dmin*m_j per 32-element sub-block) sets the
sub-block's 6-bit scale and min to 0, which needs the masked columns to cover whole 32-element
sub-blocks (true for 64-wide heads). So the masked model differs from the original only in the
masked heads, and its other weights are exactly the ones the pruned model must keep.
With --mask-requantize T, an O whose masked columns are not whole blocks of its type (the case where
`mhaprune prune --requantize T` re-encodes the pruned O) is dequantized, masked in float and
re-encoded as T instead: the masked counterpart of the re-encoded O (block boundaries can still
differ from the pruned O's when a head is narrower than a block, so this is close, not identical).
"""

import argparse
import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gguf_np as g  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
QWEN2_DIR = os.path.join(HERE, "..", "data", "tiny-qwen2")

LLAMA_FTYPE = {"f32": 0, "f16": 1, "q4_0": 2, "q8_0": 7, "q4_k": 14}  # ALL_F32, MOSTLY_F16, ..., Q4_K_S


def read_safetensors(path):
    with open(path, "rb") as f:
        buf = f.read()
    n = struct.unpack("<Q", buf[:8])[0]
    header = json.loads(buf[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        a, b = info["data_offsets"]
        raw = np.frombuffer(buf[base + a:base + b], dtype="<u2")
        if info["dtype"] != "BF16":
            raise SystemExit("%s: %s is %s, expected BF16" % (path, name, info["dtype"]))
        out[name] = g.bf16_to_f32(raw).reshape(info["shape"])
    return out


def vocab_kvs():
    tokens = ["<0x%02X>" % i for i in range(256)]
    return [
        g.kv("tokenizer.ggml.model", g.STRING, "llama"),
        g.kv("tokenizer.ggml.pre", g.STRING, "default"),
        g.kv("tokenizer.ggml.tokens", g.ARRAY, tokens, g.STRING),
        g.kv("tokenizer.ggml.scores", g.ARRAY, np.zeros(256, np.float32), g.F32V),
        g.kv("tokenizer.ggml.token_type", g.ARRAY, np.full(256, 6, np.int32), g.I32),
        g.kv("tokenizer.ggml.add_bos_token", g.BOOL, 0),
        g.kv("tokenizer.ggml.add_eos_token", g.BOOL, 0),
    ]


def qwen2_model():
    cfg = json.load(open(os.path.join(QWEN2_DIR, "config.json")))
    w = read_safetensors(os.path.join(QWEN2_DIR, "model.safetensors"))
    L = cfg["num_hidden_layers"]
    hp = dict(arch="qwen2", n_embd=cfg["hidden_size"], n_head=cfg["num_attention_heads"],
              n_head_kv=cfg["num_key_value_heads"], n_layer=L, n_ff=cfg["intermediate_size"],
              eps=cfg["rms_norm_eps"], theta=cfg["rope_theta"], ctx=cfg["max_position_embeddings"])
    t = [("token_embd.weight", w["model.embed_tokens.weight"])]
    for i in range(L):
        p = "model.layers.%d." % i
        b = "blk.%d." % i
        t += [(b + "attn_norm.weight", w[p + "input_layernorm.weight"])]
        for x in "qkv":
            t += [(b + "attn_%s.weight" % x, w[p + "self_attn.%s_proj.weight" % x]),
                  (b + "attn_%s.bias" % x, w[p + "self_attn.%s_proj.bias" % x])]
        t += [(b + "attn_output.weight", w[p + "self_attn.o_proj.weight"]),
              (b + "ffn_norm.weight", w[p + "post_attention_layernorm.weight"]),
              (b + "ffn_gate.weight", w[p + "mlp.gate_proj.weight"]),
              (b + "ffn_up.weight", w[p + "mlp.up_proj.weight"]),
              (b + "ffn_down.weight", w[p + "mlp.down_proj.weight"])]
    t += [("output_norm.weight", w["model.norm.weight"])]
    return hp, t


def llama_permute(w, n_head):
    """convert_hf_to_gguf's LlamaModel.permute: rows of each head from HF (rotate_half) order to
    llama.cpp's interleaved order."""
    rows = w.shape[0]
    return (w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape))


def llama_model():
    rng = np.random.Generator(np.random.PCG64(20260805))
    E, H, HKV, HD, L, FF, V = 256, 4, 2, 64, 3, 512, 256
    hp = dict(arch="llama", n_embd=E, n_head=H, n_head_kv=HKV, n_layer=L, n_ff=FF, eps=1e-5,
              theta=10000.0, ctx=1024, head_dim=HD)

    def mat(rows, cols, scale):
        return (rng.standard_normal((rows, cols)) * scale / np.sqrt(cols)).astype(np.float32)

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    t = [("token_embd.weight", (rng.standard_normal((V, E))).astype(np.float32))]
    for i in range(L):
        b = "blk.%d." % i
        t += [(b + "attn_norm.weight", norm(E)),
              (b + "attn_q.weight", llama_permute(mat(H * HD, E, 2.0), H)),
              (b + "attn_k.weight", llama_permute(mat(HKV * HD, E, 2.0), HKV)),
              (b + "attn_v.weight", mat(HKV * HD, E, 1.0)),
              (b + "attn_output.weight", mat(E, H * HD, 4.0)),
              (b + "ffn_norm.weight", norm(E)),
              (b + "ffn_gate.weight", mat(FF, E, 1.0)),
              (b + "ffn_up.weight", mat(FF, E, 1.0)),
              (b + "ffn_down.weight", mat(E, FF, 1.0))]
    t += [("output_norm.weight", norm(E)), ("output.weight", mat(V, E, 2.0))]
    return hp, t


def tensor_type(name, arr, ftype):
    if arr.ndim == 1 or ftype == "f32":
        return g.F32
    if ftype == "f16":
        return g.F16
    if ftype == "q8_0":
        return g.Q8_0
    if ftype == "q4_0":
        return g.Q8_0 if name == "token_embd.weight" else g.Q4_0
    if ftype == "q4_k":
        if name == "output.weight" or arr.shape[1] % 256:
            return g.Q8_0
        return g.Q4_K
    raise SystemExit("unknown ftype " + ftype)


def build(hp, tensors, ftype, name):
    a = hp["arch"]
    kvs = [g.kv("general.architecture", g.STRING, a),
           g.kv("general.type", g.STRING, "model"),
           g.kv("general.name", g.STRING, name)]
    if a == "llama":
        kvs += [g.kv("general.alignment", g.U32, 64)]
    kvs += [g.kv(a + ".block_count", g.U32, hp["n_layer"]),
            g.kv(a + ".context_length", g.U32, hp["ctx"]),
            g.kv(a + ".embedding_length", g.U32, hp["n_embd"]),
            g.kv(a + ".feed_forward_length", g.U32, hp["n_ff"]),
            g.kv(a + ".attention.head_count", g.U32, hp["n_head"]),
            g.kv(a + ".attention.head_count_kv", g.U32, hp["n_head_kv"]),
            g.kv(a + ".rope.freq_base", g.F32V, hp["theta"]),
            g.kv(a + ".attention.layer_norm_rms_epsilon", g.F32V, hp["eps"])]
    if a == "llama":
        kvs += [g.kv(a + ".vocab_size", g.U32, 256),
                g.kv(a + ".rope.dimension_count", g.U32, hp["head_dim"]),
                g.kv(a + ".attention.key_length", g.U32, hp["head_dim"]),
                g.kv(a + ".attention.value_length", g.U32, hp["head_dim"])]
    kvs += [g.kv("general.file_type", g.U32, LLAMA_FTYPE[ftype])]
    kvs += vocab_kvs()
    kvs += [g.kv("general.quantization_version", g.U32, 2)]
    out = []
    for tname, arr in tensors:
        tt = tensor_type(tname, arr, ftype)
        out.append((tname, list(reversed(arr.shape)), tt, g.quantize(tt, arr)))
    align = 64 if a == "llama" else g.DEFAULT_ALIGNMENT
    return kvs, out, align


MODELS = [("qwen2-hd16", qwen2_model, ["f32", "f16", "q8_0", "q4_0"]),
          ("llama-hd64", llama_model, ["q8_0", "q4_k"])]


def head_dim(f):
    arch = f.get("general.architecture")
    hd = f.get(arch + ".attention.key_length")
    if hd is None:
        hd = f.get(arch + ".embedding_length") // layer_counts(f, "head_count")[0]
    return hd


def layer_counts(f, what):
    arch = f.get("general.architecture")
    n = f.get(arch + ".block_count")
    v = f.get(arch + ".attention." + what)
    if v is None and what == "head_count_kv":
        return layer_counts(f, "head_count")
    if isinstance(v, g.ArrayValue):
        return [int(x) for x in v.tolist()]
    return [int(v)] * n


def mask_o_row_bytes(ttype, rows, cols, hd):
    """Zero columns `cols` (sorted list of column indices, whole heads) in every row of O
    (rows: uint8 array [n_rows, row_bytes], modified in place)."""
    blk, size = g.block_of(ttype)
    cols = np.asarray(cols)
    if ttype in (g.F32, g.F16, g.BF16):
        for c in cols:
            rows[:, c * size:(c + 1) * size] = 0
    elif ttype == g.Q8_0:
        for c in cols:
            b, j = divmod(int(c), 32)
            rows[:, b * 34 + 2 + j] = 0  # q = 0 -> d*0 = 0
    elif ttype == g.Q4_0:
        for c in cols:
            b, j = divmod(int(c), 32)
            k, hi = j % 16, j // 16
            byte = rows[:, b * 18 + 2 + k]
            rows[:, b * 18 + 2 + k] = (byte & 0x0F) | (8 << 4) if hi else (byte & 0xF0) | 8  # q = 8 -> 0
    elif ttype == g.Q4_K:
        subs = sorted(set(int(c) // 32 for c in cols))
        covered = set(int(c) for c in cols)
        for s in subs:
            if any(c not in covered for c in range(32 * s, 32 * s + 32)):
                raise SystemExit("mask: Q4_K columns must cover whole 32-element sub-blocks")
        for r in range(rows.shape[0]):
            rows[r] = g.q4_k_zero_subblocks(rows[r].copy(), subs)
    else:
        raise SystemExit("mask: no exact zero written for %s" % g.type_name(ttype))


def mask_model(inp, spec, out, requantize=None):
    """requantize (a ggml type id or None): an O whose masked columns are not whole blocks of its type
    is instead dequantized, masked in float and re-encoded as that type -- the masked counterpart of
    a pruned O that was re-encoded (`mhaprune prune --requantize`)."""
    f = g.GGUFFile(inp)
    heads = g.parse_heads(spec)
    hd = head_dim(f)
    nh = layer_counts(f, "head_count")
    tensors = []
    for t in f.tensors:
        data = f.data(t.name)
        parts = t.name.split(".")
        if len(parts) == 4 and parts[0] == "blk" and parts[2] == "attn_output" and parts[3] == "weight":
            layer = int(parts[1])
            if heads.get(layer):
                if t.ne[0] != nh[layer] * hd:
                    raise SystemExit("mask: %s has ne[0] %d, not %d heads of %d" % (t.name, t.ne[0], nh[layer], hd))
                for h in heads[layer]:
                    if not 0 <= h < nh[layer]:
                        raise SystemExit("mask: layer %d has no head %d" % (layer, h))
                cols = [h * hd + c for h in heads[layer] for c in range(hd)]
                blk = g.block_of(t.ttype)[0]
                per_block = np.isin(np.arange(t.ne[0]), cols).reshape(-1, blk)
                if requantize is not None and not np.all(per_block.all(axis=1) | ~per_block.any(axis=1)):
                    vals = f.values(t.name).copy()
                    vals[:, cols] = 0
                    tensors.append((t.name, t.ne, requantize, g.quantize(requantize, vals)))
                    continue
                rows = f.rows(t.name).copy()
                mask_o_row_bytes(t.ttype, rows, cols, hd)
                data = rows.tobytes()
                # The masked columns really decode to 0 and nothing else changed.
                before = g.dequantize(t.ttype, f.data(t.name), t.ne[0] * t.n_rows).reshape(-1, t.ne[0])
                after = g.dequantize(t.ttype, data, t.ne[0] * t.n_rows).reshape(-1, t.ne[0])
                keep = np.setdiff1d(np.arange(t.ne[0]), cols)
                assert np.all(after[:, cols] == 0), t.name
                assert np.array_equal(after[:, keep].view(np.uint32), before[:, keep].view(np.uint32)), t.name
        tensors.append((t.name, t.ne, t.ttype, data))
    for layer in heads:
        if not 0 <= layer < len(nh):
            raise SystemExit("mask: no layer %d" % layer)
    g.write_gguf(out, f.kvs, tensors, alignment=f.alignment, version=f.version)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", nargs="?")
    ap.add_argument("--mask")
    ap.add_argument("-i", "--input")
    ap.add_argument("-o", "--output")
    ap.add_argument("--mask-requantize", choices=["q8_0", "f16", "f32"])
    a = ap.parse_args()
    if a.mask is not None:
        if not a.input or not a.output:
            ap.error("--mask needs -i and -o")
        mask_model(a.input, a.mask, a.output,
                   {"q8_0": g.Q8_0, "f16": g.F16, "f32": g.F32}.get(a.mask_requantize))
        return
    if not a.outdir:
        ap.error("OUTDIR is required")
    os.makedirs(a.outdir, exist_ok=True)
    for stem, fn, ftypes in MODELS:
        hp, tensors = fn()
        for ft in ftypes:
            name = "%s-%s" % (stem, ft)
            kvs, tens, align = build(hp, tensors, ft, name)
            path = os.path.join(a.outdir, name + ".gguf")
            g.write_gguf(path, kvs, tens, alignment=align)
            g.GGUFFile(path)  # re-read strictly
            print("wrote", path)


if __name__ == "__main__":
    main()
