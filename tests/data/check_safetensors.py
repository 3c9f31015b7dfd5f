#!/usr/bin/python3
"""Independent check of the files written by make_tiny_models.py (numpy only, no torch).

    /usr/bin/python3 tests/data/check_safetensors.py [--fast | --grads] [DIR ...]

DIR defaults to tests/data/tiny-qwen2 and tests/data/tiny-bert. For every *.safetensors file:
parses it with the small parser below, checks the layout rules (8-byte header length, header
padded with spaces to a multiple of 8, tensors sorted by name with contiguous offsets that cover
the data exactly), re-serializes the parsed tensors and requires the bytes to be identical, and
checks the tensor names and shapes against config.json. Unless --fast: recomputes the held-out
NLL of reference_nll.json with a float64 numpy forward written from the documented protocol
(seconds). With --grads: also recomputes every head-gate gradient sum by central finite
differences (2 forwards per head; a few minutes on a busy machine). If the `safetensors` package
is importable (Debian 12 does not package it), the files are also loaded with it.
Exit status 0 when everything matches.
"""

import json
import math
import os
import struct
import sys

import numpy as np

DTYPES = {"BF16": ("<u2", 2), "F16": ("<f2", 2), "F32": ("<f4", 4), "F64": ("<f8", 8)}


def parse(path):
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    assert n % 8 == 0, f"{path}: header length {n} is not a multiple of 8"
    text = raw[8:8 + n]
    assert text.rstrip(b" ").endswith(b"}"), f"{path}: header padding is not spaces"
    header = json.loads(text)
    assert header.pop("__metadata__") == {"format": "pt"}
    names = list(header)
    offset = 0
    for name in sorted(names):
        e = header[name]
        np_dtype, size = DTYPES[e["dtype"]]
        begin, end = e["data_offsets"]
        assert begin == offset, f"{path}: {name} starts at {begin}, expected {offset}"
        assert end - begin == size * math.prod(e["shape"]), f"{path}: {name} has a wrong size"
        offset = end
    assert 8 + n + offset == len(raw), f"{path}: data region is not covered exactly"
    by_offset = sorted(names, key=lambda k: header[k]["data_offsets"][0])
    assert by_offset == sorted(names), f"{path}: tensors are not stored in name order"
    tensors = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        tensors[name] = (e["dtype"], np.frombuffer(raw[8 + n + b:8 + n + end],
                                                   DTYPES[e["dtype"]][0]).reshape(e["shape"]))
    return raw, tensors


def serialize(tensors):
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        dtype, a = tensors[name]
        data = a.tobytes()
        header[name] = {"dtype": dtype, "shape": list(a.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(blobs)


def as_f64(dtype, a):
    if dtype == "BF16":
        return (a.astype(np.uint32) << 16).view(np.float32).astype(np.float64)
    return a.astype(np.float64)


def expected_shapes(cfg):
    h, L, inter, V = (cfg["hidden_size"], cfg["num_hidden_layers"], cfg["intermediate_size"],
                      cfg["vocab_size"])
    H = cfg["num_attention_heads"]
    s = {}
    if cfg["model_type"] == "qwen2":
        kv = cfg["num_key_value_heads"] * (h // H)
        s = {"model.embed_tokens.weight": [V, h], "model.norm.weight": [h]}
        for i in range(L):
            a = f"model.layers.{i}."
            s.update({a + "input_layernorm.weight": [h], a + "post_attention_layernorm.weight": [h],
                      a + "self_attn.q_proj.weight": [h, h], a + "self_attn.q_proj.bias": [h],
                      a + "self_attn.k_proj.weight": [kv, h], a + "self_attn.k_proj.bias": [kv],
                      a + "self_attn.v_proj.weight": [kv, h], a + "self_attn.v_proj.bias": [kv],
                      a + "self_attn.o_proj.weight": [h, h], a + "mlp.gate_proj.weight": [inter, h],
                      a + "mlp.up_proj.weight": [inter, h], a + "mlp.down_proj.weight": [h, inter]})
        return s, "model.layers.{}.self_attn.head_gate."
    e = "bert.embeddings."
    s = {e + "word_embeddings.weight": [V, h],
         e + "position_embeddings.weight": [cfg["max_position_embeddings"], h],
         e + "token_type_embeddings.weight": [cfg["type_vocab_size"], h],
         e + "LayerNorm.weight": [h], e + "LayerNorm.bias": [h],
         "cls.predictions.transform.dense.weight": [h, h],
         "cls.predictions.transform.dense.bias": [h],
         "cls.predictions.transform.LayerNorm.weight": [h],
         "cls.predictions.transform.LayerNorm.bias": [h], "cls.predictions.bias": [V]}
    for i in range(L):
        a = f"bert.encoder.layer.{i}."
        for m in ("attention.self.query", "attention.self.key", "attention.self.value",
                  "attention.output.dense"):
            s.update({a + m + ".weight": [h, h], a + m + ".bias": [h]})
        for m in ("attention.output.LayerNorm", "output.LayerNorm"):
            s.update({a + m + ".weight": [h], a + m + ".bias": [h]})
        s.update({a + "intermediate.dense.weight": [inter, h],
                  a + "intermediate.dense.bias": [inter],
                  a + "output.dense.weight": [h, inter], a + "output.dense.bias": [h]})
    return s, "bert.encoder.layer.{}.attention.self.head_gate."


# --- float64 forwards written from the protocol text in reference_nll.json -------------------

def softmax(x):
    x = x - x.max(-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(-1, keepdims=True)


def log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def qwen_nll(W, cfg, seqs, gates):
    """Per-sequence mean next-token NLL [S]. gates: [L, S, H]."""
    S, T = seqs.shape[0], seqs.shape[1] - 1
    H, Hk = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    d, eps = cfg["hidden_size"] // H, cfg["rms_norm_eps"]
    rms = lambda x, w: x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w  # noqa: E731
    inv = cfg["rope_theta"] ** (-np.arange(0, d, 2) / d)
    ang = np.arange(T)[:, None] * inv[None, :]
    cos, sin = np.cos(np.concatenate([ang, ang], 1)), np.sin(np.concatenate([ang, ang], 1))
    rope = lambda x: x * cos + np.concatenate([-x[..., d // 2:], x[..., :d // 2]], -1) * sin  # noqa
    E = W["model.embed_tokens.weight"]
    x = E[seqs[:, :-1]]
    future = np.triu(np.ones((T, T), bool), 1)
    for i in range(cfg["num_hidden_layers"]):
        a = f"model.layers.{i}.self_attn."
        h = rms(x, W[f"model.layers.{i}.input_layernorm.weight"])
        proj = lambda m, n: (h @ W[a + m + "_proj.weight"].T + W[a + m + "_proj.bias"]  # noqa
                             ).reshape(S, T, n, d).transpose(0, 2, 1, 3)
        q, k, v = rope(proj("q", H)), rope(proj("k", Hk)), proj("v", Hk)
        o = np.empty((S, H, T, d))
        for hh in range(H):
            kv = hh // (H // Hk)
            s = q[:, hh] @ k[:, kv].transpose(0, 2, 1) / math.sqrt(d)
            s[:, future] = -np.inf
            o[:, hh] = softmax(s) @ v[:, kv] * gates[i][:, hh, None, None]
        x = x + o.transpose(0, 2, 1, 3).reshape(S, T, H * d) @ W[a + "o_proj.weight"].T
        m = f"model.layers.{i}.mlp."
        h = rms(x, W[f"model.layers.{i}.post_attention_layernorm.weight"])
        g = h @ W[m + "gate_proj.weight"].T
        act = g / (1 + np.exp(-g)) * (h @ W[m + "up_proj.weight"].T)
        x = x + act @ W[m + "down_proj.weight"].T
    lp = log_softmax(rms(x, W["model.norm.weight"]) @ E.T)
    nll = -np.take_along_axis(lp, seqs[:, 1:, None], -1)[..., 0]
    return nll.mean(1), nll.ravel()


_erf = np.frompyfunc(math.erf, 1, 1)


def bert_nll(W, cfg, seqs, gates, first_index=0):
    S, T = seqs.shape
    H, eps = cfg["num_attention_heads"], cfg["layer_norm_eps"]
    d = cfg["hidden_size"] // H
    s_idx = np.arange(first_index, first_index + S)[:, None]
    mask = (np.arange(T)[None, :] + s_idx) % 7 == 0

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * W[p + ".weight"] + W[p + ".bias"]

    lin = lambda x, p: x @ W[p + ".weight"].T + W[p + ".bias"]  # noqa: E731
    gelu = lambda x: 0.5 * x * (1 + _erf(x / math.sqrt(2)).astype(np.float64))  # noqa: E731
    e = "bert.embeddings."
    We = W[e + "word_embeddings.weight"]
    x = We[np.where(mask, 0, seqs)] + W[e + "position_embeddings.weight"][:T] \
        + W[e + "token_type_embeddings.weight"][0]
    x = ln(x, e + "LayerNorm")
    for i in range(cfg["num_hidden_layers"]):
        a = f"bert.encoder.layer.{i}."
        q, k, v = (lin(x, a + "attention.self." + m).reshape(S, T, H, d).transpose(0, 2, 1, 3)
                   for m in ("query", "key", "value"))
        o = softmax(q @ k.transpose(0, 1, 3, 2) / math.sqrt(d)) @ v * gates[i][:, :, None, None]
        x = ln(x + lin(o.transpose(0, 2, 1, 3).reshape(S, T, H * d), a + "attention.output.dense"),
               a + "attention.output.LayerNorm")
        x = ln(x + lin(gelu(lin(x, a + "intermediate.dense")), a + "output.dense"),
               a + "output.LayerNorm")
    t = ln(gelu(lin(x, "cls.predictions.transform.dense")), "cls.predictions.transform.LayerNorm")
    lp = log_softmax(t @ We.T + W["cls.predictions.bias"])
    nll = -np.take_along_axis(lp, seqs[..., None], -1)[..., 0]
    return (nll * mask).sum(1) / mask.sum(1), nll[mask]


def check_dir(d, fast, with_grads):
    cfg = json.load(open(os.path.join(d, "config.json")))
    shapes, gate_prefix = expected_shapes(cfg)
    L, H = cfg["num_hidden_layers"], cfg["num_attention_heads"]
    loaded = {}
    for f in ("model.safetensors", "head_gate_grads.safetensors"):
        path = os.path.join(d, f)
        raw, tensors = parse(path)
        assert serialize(tensors) == raw, f"{path}: re-serialization differs"
        loaded[f] = tensors
        print(f"  {f}: {len(raw)} bytes, {len(tensors)} tensors, layout and round trip OK")
        try:
            import safetensors.numpy as stn
        except ImportError:
            continue
        other = stn.load_file(path)
        assert set(other) == set(tensors)
        for k, (dt, a) in tensors.items():
            assert np.array_equal(as_f64(dt, a), np.asarray(other[k], np.float64)), k
        print(f"  {f}: identical when loaded with the safetensors package")
    model = loaded["model.safetensors"]
    got = {k: list(a.shape) for k, (_, a) in model.items()}
    assert got == shapes, f"{d}: names/shapes differ from the HF layout: " \
        f"{sorted(set(got) ^ set(shapes))}"
    want_dtype = {"bfloat16": "BF16", "float16": "F16", "float32": "F32"}[cfg["torch_dtype"]]
    assert {dt for dt, _ in model.values()} == {want_dtype}
    grads = {k: as_f64(dt, a) for k, (dt, a) in loaded["head_gate_grads.safetensors"].items()}
    want = {gate_prefix.format(i) + s: [H] if s != "count" else [1]
            for i in range(L) for s in ("abs_sum", "sq_sum", "count")}
    assert {k: list(a.shape) for k, a in grads.items()} == want
    assert all(dt == "F64" for dt, _ in loaded["head_gate_grads.safetensors"].values())
    print(f"  names, shapes and dtypes match config.json ({cfg['model_type']}, {want_dtype})")
    if fast:
        return
    W = {k: as_f64(dt, a) for k, (dt, a) in model.items()}
    ref = json.load(open(os.path.join(d, "reference_nll.json")))
    read = lambda f: np.frombuffer(open(os.path.join(d, "text", f), "rb").read(),  # noqa: E731
                                   np.uint8).astype(np.int64).reshape(-1, 128)
    held, calib = read("heldout.txt"), read("calibration.txt")
    fwd = qwen_nll if cfg["model_type"] == "qwen2" else bert_nll
    ones = lambda S: np.ones((L, S, H))  # noqa: E731
    _, nll = fwd(W, cfg, held, ones(len(held)))
    assert nll.size == ref["num_predictions"]
    diff = abs(nll.mean() - ref["nll_float64"])
    print(f"  held-out NLL numpy float64 {nll.mean():.10f} vs reference {ref['nll_float64']:.10f}"
          f" (diff {diff:.2e}, reference float32 {ref['nll_float32']:.10f})")
    assert diff < 1e-9
    if not with_grads:
        return
    step = 1e-4
    for i in range(L):
        for h in range(H):
            gp, gm = ones(len(calib)), ones(len(calib))
            gp[i, :, h] += step
            gm[i, :, h] -= step
            g = (fwd(W, cfg, calib, gp)[0] - fwd(W, cfg, calib, gm)[0]) / (2 * step)
            for s, val in (("abs_sum", np.abs(g).sum()), ("sq_sum", (g * g).sum())):
                stored = grads[gate_prefix.format(i) + s][h]
                assert abs(val - stored) <= 1e-6 * abs(stored) + 1e-12, (i, h, s, val, stored)
        assert grads[gate_prefix.format(i) + "count"][0] == len(calib)
    print(f"  head-gate gradient sums match central finite differences ({L}x{H} gates, rel 1e-6)")


def main():
    args = [a for a in sys.argv[1:] if a not in ("--fast", "--grads")]
    here = os.path.dirname(os.path.abspath(__file__))
    dirs = args or [os.path.join(here, "tiny-qwen2"), os.path.join(here, "tiny-bert")]
    for d in dirs:
        print(d)
        check_dir(d, "--fast" in sys.argv, "--grads" in sys.argv)
    print("all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
