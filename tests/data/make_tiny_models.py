#!/usr/bin/python3
"""Train the two tiny test checkpoints in tests/data/ and write their reference files.

Run from the repository root with Debian's interpreter (the one that has python3-torch):

    /usr/bin/python3 tests/data/make_tiny_models.py             # everything, ~10 min of CPU
    /usr/bin/python3 tests/data/make_tiny_models.py --quick --out /tmp/tiny   # smoke run, seconds

Debian packages needed: python3-torch python3-numpy libopenblas0-pthread python3-doc.
Nothing is downloaded: the training text is the reStructuredText source of the Python
documentation shipped by python3-doc. The tokenizer is byte-level (token id = byte value,
vocabulary 256), so the checkpoints need no tokenizer files.

Outputs (see tests/data/README.md for the exact formats and evaluation protocols):
    <out>/tiny-qwen2/{config.json, model.safetensors, reference_nll.json,
                      head_gate_grads.safetensors, text/calibration.txt, text/heldout.txt}
    <out>/tiny-bert/ (same file names)

Determinism: all seeds are fixed, torch runs with use_deterministic_algorithms(True) and a fixed
thread count (one by default), so a rerun on the same machine and package versions writes
identical files.
"""

import argparse
import json
import math
import os
import re
import struct
import sys
import time

# Thread counts must be set before torch/OpenBLAS start their pools. On this shared 2-core
# machine one thread is 3-15x faster than two: with other jobs running, two OpenMP workers plus
# OpenBLAS workers spin against each other (measured: BERT step 1.6 s with 2 threads, 0.11 s
# with 1).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

DOC_SOURCES = "/usr/share/doc/python3-doc/html/_sources"
EVAL_DIR = "tutorial"  # held out from training; calibration/held-out windows come from here
SEQ_LEN = 128
NUM_EVAL_SEQS = 64
MASK_TOKEN = 0  # NUL never occurs in the text, so it serves as BERT's [MASK]
EVAL_MASK_PERIOD = 7

QWEN = dict(vocab_size=256, hidden_size=128, num_hidden_layers=4, num_attention_heads=8,
            num_key_value_heads=2, intermediate_size=256, rms_norm_eps=1e-6, rope_theta=10000.0,
            max_position_embeddings=512)
BERT = dict(vocab_size=256, hidden_size=64, num_hidden_layers=4, num_attention_heads=4,
            intermediate_size=256, max_position_embeddings=128, type_vocab_size=2,
            layer_norm_eps=1e-12)


# ----------------------------------------------------------------------------------------------
# Text
# ----------------------------------------------------------------------------------------------

_UNDERLINE = re.compile(r"([=\-~^\"*#+`.:_'])\1{2,}")


def clean_rst(raw):
    """Keep the prose of an .rst source: drop indented blocks (code, directive bodies), directive
    and comment lines (`..`), heading under/overlines and bare `::` lines; squeeze blank lines."""
    out, blank = [], True
    for line in raw.split("\n"):
        s = line.rstrip()
        if not s:
            if not blank:
                out.append("")
            blank = True
            continue
        if s[0] in " \t" or s.startswith("..") or s == "::" or _UNDERLINE.fullmatch(s):
            continue
        out.append(s)
        blank = False
    return ("\n".join(out).strip() + "\n").encode("utf-8")


def list_sources(root):
    files = []
    for d, dirs, fs in os.walk(root):
        dirs.sort()
        files += [os.path.join(d, f) for f in fs if f.endswith(".rst.txt")]
    return sorted(os.path.relpath(p, root) for p in files)


def read_clean(root, rels):
    return b"\n".join(clean_rst(open(os.path.join(root, r), encoding="utf-8").read()) for r in rels)


def is_char_start(buf, i):
    return i >= len(buf) or not (0x80 <= buf[i] <= 0xBF)


def eval_windows(buf, n, length):
    """n non-overlapping windows of `length` bytes, evenly spread over buf, each nudged forward
    until both of its ends fall on UTF-8 character boundaries (so every window is valid UTF-8)."""
    step = (len(buf) - length) // n
    assert step > length, "evaluation text too short"
    out = []
    for i in range(n):
        o = i * step
        while not (is_char_start(buf, o) and is_char_start(buf, o + length)):
            o += 1
        out.append(buf[o:o + length])
    return b"".join(out)


def load_text(root):
    rels = list_sources(root)
    train_rels = [r for r in rels if not r.startswith(EVAL_DIR + "/")]
    eval_rels = [r for r in rels if r.startswith(EVAL_DIR + "/")]
    calib_rels, held_rels = eval_rels[0::2], eval_rels[1::2]
    train = read_clean(root, train_rels)
    calib = eval_windows(read_clean(root, calib_rels), NUM_EVAL_SEQS, SEQ_LEN)
    held = eval_windows(read_clean(root, held_rels), NUM_EVAL_SEQS, SEQ_LEN)
    assert MASK_TOKEN not in train and MASK_TOKEN not in calib and MASK_TOKEN not in held
    info = dict(train_files=len(train_rels), train_bytes=len(train), calibration_files=calib_rels,
                heldout_files=held_rels)
    return train, calib, held, info


def as_sequences(buf):
    return torch.tensor(list(buf), dtype=torch.long).view(-1, SEQ_LEN)


# ----------------------------------------------------------------------------------------------
# safetensors
# ----------------------------------------------------------------------------------------------

def _to_bytes(t):
    t = t.detach().contiguous().cpu()
    if t.dtype == torch.bfloat16:
        return "BF16", t.view(torch.int16).numpy().astype("<i2").tobytes()
    codes = {torch.float16: ("F16", "<f2"), torch.float32: ("F32", "<f4"),
             torch.float64: ("F64", "<f8")}
    code, np_dtype = codes[t.dtype]
    return code, t.numpy().astype(np_dtype).tobytes()


def write_safetensors(path, tensors):
    """Tensors sorted by name, packed back to back; header JSON padded with spaces to 8 bytes."""
    header, blobs, offset = {"__metadata__": {"format": "pt"}}, [], 0
    for name in sorted(tensors):
        code, data = _to_bytes(tensors[name])
        header[name] = {"dtype": code, "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_safetensors(path):
    """Returns {name: float64 numpy array} decoded from the stored bytes."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base, out = 8 + n, {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        b, end = e["data_offsets"]
        chunk = raw[base + b:base + end]
        if e["dtype"] == "BF16":
            a = (np.frombuffer(chunk, "<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            a = np.frombuffer(chunk, {"F16": "<f2", "F32": "<f4", "F64": "<f8"}[e["dtype"]])
        out[name] = a.astype(np.float64).reshape(e["shape"])
    return out


# ----------------------------------------------------------------------------------------------
# Models (functional, parameters keyed by their Hugging Face names)
# ----------------------------------------------------------------------------------------------

def qwen_init(gen, c):
    h, L, d = c["hidden_size"], c["num_hidden_layers"], c["hidden_size"] // c["num_attention_heads"]
    kv, inter, std = c["num_key_value_heads"] * d, c["intermediate_size"], 0.02
    out_std = std / math.sqrt(2 * L)  # residual-branch outputs, GPT-2 style

    def n(*shape, s=std):
        return torch.randn(*shape, generator=gen) * s

    p = {"model.embed_tokens.weight": n(c["vocab_size"], h), "model.norm.weight": torch.ones(h)}
    for i in range(L):
        a = f"model.layers.{i}."
        # Biases start non-zero so that every stored tensor is non-trivial for the C++ tests.
        p.update({a + "input_layernorm.weight": torch.ones(h),
                  a + "self_attn.q_proj.weight": n(h, h), a + "self_attn.q_proj.bias": n(h),
                  a + "self_attn.k_proj.weight": n(kv, h), a + "self_attn.k_proj.bias": n(kv),
                  a + "self_attn.v_proj.weight": n(kv, h), a + "self_attn.v_proj.bias": n(kv),
                  a + "self_attn.o_proj.weight": n(h, h, s=out_std),
                  a + "post_attention_layernorm.weight": torch.ones(h),
                  a + "mlp.gate_proj.weight": n(inter, h), a + "mlp.up_proj.weight": n(inter, h),
                  a + "mlp.down_proj.weight": n(h, inter, s=out_std)})
    return p


def rope_tables(T, d, theta, dtype):
    """HF rotate_half convention: frequency j serves dims j and j + d/2."""
    inv = 1.0 / (theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d))
    ang = torch.arange(T, dtype=torch.float64)[:, None] * inv[None, :]
    ang = torch.cat([ang, ang], dim=-1)
    return ang.cos().to(dtype), ang.sin().to(dtype)


def rotate_half(x):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def rms_norm(x, w, eps):
    return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + eps) * w


def qwen_forward(p, ids, c, gates=None):
    """ids [B, T] -> logits [B, T, V]. gates: optional [L, B, H] multipliers of head outputs."""
    B, T = ids.shape
    H, Hkv = c["num_attention_heads"], c["num_key_value_heads"]
    d, eps = c["hidden_size"] // H, c["rms_norm_eps"]
    E = p["model.embed_tokens.weight"]
    x = E[ids]
    cos, sin = rope_tables(T, d, c["rope_theta"], x.dtype)
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    for i in range(c["num_hidden_layers"]):
        a = f"model.layers.{i}."
        h = rms_norm(x, p[a + "input_layernorm.weight"], eps)
        q = F.linear(h, p[a + "self_attn.q_proj.weight"], p[a + "self_attn.q_proj.bias"])
        k = F.linear(h, p[a + "self_attn.k_proj.weight"], p[a + "self_attn.k_proj.bias"])
        v = F.linear(h, p[a + "self_attn.v_proj.weight"], p[a + "self_attn.v_proj.bias"])
        q = q.view(B, T, H, d).transpose(1, 2)
        k = k.view(B, T, Hkv, d).transpose(1, 2)
        v = v.view(B, T, Hkv, d).transpose(1, 2)
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        k = k.repeat_interleave(H // Hkv, dim=1)  # query head h reads KV head h // (H / Hkv)
        v = v.repeat_interleave(H // Hkv, dim=1)
        s = (q @ k.transpose(-1, -2)) / math.sqrt(d)
        o = s.masked_fill(~causal, float("-inf")).softmax(-1) @ v  # [B, H, T, d]
        if gates is not None:
            o = o * gates[i][:, :, None, None]
        x = x + F.linear(o.transpose(1, 2).reshape(B, T, H * d), p[a + "self_attn.o_proj.weight"])
        h = rms_norm(x, p[a + "post_attention_layernorm.weight"], eps)
        m = (F.silu(F.linear(h, p[a + "mlp.gate_proj.weight"]))
             * F.linear(h, p[a + "mlp.up_proj.weight"]))
        x = x + F.linear(m, p[a + "mlp.down_proj.weight"])
    return F.linear(rms_norm(x, p["model.norm.weight"], eps), E)


def qwen_seq_losses(p, seqs, c, gates=None):
    """Per-sequence mean NLL of predicting tokens 1..T-1 from their prefixes: [B]."""
    logits = qwen_forward(p, seqs[:, :-1], c, gates)
    nll = -logits.log_softmax(-1).gather(-1, seqs[:, 1:, None]).squeeze(-1)
    return nll.mean(-1), nll


def bert_init(gen, c):
    h, L, inter, std = c["hidden_size"], c["num_hidden_layers"], c["intermediate_size"], 0.02

    def n(*shape):
        return torch.randn(*shape, generator=gen) * std

    def ln(prefix):
        return {prefix + ".weight": torch.ones(h), prefix + ".bias": torch.zeros(h)}

    e = "bert.embeddings."
    p = {e + "word_embeddings.weight": n(c["vocab_size"], h),
         e + "position_embeddings.weight": n(c["max_position_embeddings"], h),
         e + "token_type_embeddings.weight": n(c["type_vocab_size"], h),
         "cls.predictions.transform.dense.weight": n(h, h),
         "cls.predictions.transform.dense.bias": n(h),
         "cls.predictions.bias": torch.zeros(c["vocab_size"])}
    p.update(ln(e + "LayerNorm"))
    p.update(ln("cls.predictions.transform.LayerNorm"))
    for i in range(L):
        a = f"bert.encoder.layer.{i}."
        for m in ("query", "key", "value"):
            p[a + f"attention.self.{m}.weight"] = n(h, h)
            p[a + f"attention.self.{m}.bias"] = n(h)
        p.update({a + "attention.output.dense.weight": n(h, h),
                  a + "attention.output.dense.bias": n(h),
                  a + "intermediate.dense.weight": n(inter, h),
                  a + "intermediate.dense.bias": n(inter),
                  a + "output.dense.weight": n(h, inter), a + "output.dense.bias": n(h)})
        p.update(ln(a + "attention.output.LayerNorm"))
        p.update(ln(a + "output.LayerNorm"))
    return p


def local_attention_init(p, c, gen, scale=0.05, gain=1.4, offsets=(-1, 1, -2, 2)):
    """Sinusoidal position embeddings, and query/key weights under which head h of every layer
    scores key j against query p by sum_i cos(w_i (j - p - offsets[h])) over its 8 frequencies.

    Why: from the standard N(0, 0.02) init the byte-level MLM sits on the unigram plateau (held-out
    NLL 3.16 vs unigram 3.22 after 2000 steps): a masked byte's only evidence is its neighbours,
    and learned absolute positions take thousands of steps to discover "look at p-1". With heads
    that start out looking near fixed offsets (and at themselves, through the word part of the
    input) it leaves the plateau after ~500 steps. Everything
    is trained afterwards; this only chooses the starting point."""
    h, H, T = c["hidden_size"], c["num_attention_heads"], c["max_position_embeddings"]
    d = h // H
    w = 10000.0 ** (-torch.arange(h // 2, dtype=torch.float64) * 2 / h)
    ang = torch.arange(T, dtype=torch.float64)[:, None] * w[None, :]
    pe = torch.zeros(T, h, dtype=torch.float64)
    pe[:, 0::2], pe[:, 1::2] = ang.sin(), ang.cos()
    p["bert.embeddings.position_embeddings.weight"] = (scale * pe).float()
    for layer in range(c["num_hidden_layers"]):
        a = f"bert.encoder.layer.{layer}.attention.self."
        wq = torch.randn(h, h, generator=gen, dtype=torch.float64) * 0.02
        wk = torch.randn(h, h, generator=gen, dtype=torch.float64) * 0.02
        for head in range(H):
            for i in range(d // 2):  # query/key pair i of this head reads frequency pair i
                r, t = head * d + 2 * i, float(w[i]) * offsets[head]
                wq[r, 2 * i] += gain
                wq[r + 1, 2 * i + 1] += gain
                # key = (sin, cos)(w j) rotated by -t = (sin, cos)(w (j - offset))
                wk[r:r + 2, 2 * i:2 * i + 2] += gain * torch.tensor(
                    [[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]], dtype=torch.float64)
        p[a + "query.weight"], p[a + "key.weight"] = wq.float(), wk.float()
    return p


def bert_forward(p, ids, c, gates=None):
    """ids [B, T] (token_type 0 everywhere, no padding) -> MLM logits [B, T, V]."""
    B, T = ids.shape
    H, eps = c["num_attention_heads"], c["layer_norm_eps"]
    d = c["hidden_size"] // H

    def ln(x, prefix):
        return F.layer_norm(x, x.shape[-1:], p[prefix + ".weight"], p[prefix + ".bias"], eps)

    def lin(x, prefix):
        return F.linear(x, p[prefix + ".weight"], p[prefix + ".bias"])

    e = "bert.embeddings."
    W = p[e + "word_embeddings.weight"]
    x = W[ids] + p[e + "position_embeddings.weight"][:T] + p[e + "token_type_embeddings.weight"][0]
    x = ln(x, e + "LayerNorm")
    for i in range(c["num_hidden_layers"]):
        a = f"bert.encoder.layer.{i}."
        q, k, v = (lin(x, a + f"attention.self.{m}").view(B, T, H, d).transpose(1, 2)
                   for m in ("query", "key", "value"))
        o = ((q @ k.transpose(-1, -2)) / math.sqrt(d)).softmax(-1) @ v
        if gates is not None:
            o = o * gates[i][:, :, None, None]
        o = lin(o.transpose(1, 2).reshape(B, T, H * d), a + "attention.output.dense")
        x = ln(x + o, a + "attention.output.LayerNorm")
        m = F.gelu(lin(x, a + "intermediate.dense"))  # exact erf GELU, HF "gelu"
        x = ln(x + lin(m, a + "output.dense"), a + "output.LayerNorm")
    t = ln(F.gelu(lin(x, "cls.predictions.transform.dense")), "cls.predictions.transform.LayerNorm")
    return F.linear(t, W, p["cls.predictions.bias"])


def eval_mask(n_seqs, T):
    """Position p of sequence s (0-based index within its file) is masked iff (p + s) % 7 == 0."""
    s = torch.arange(n_seqs)[:, None]
    pos = torch.arange(T)[None, :]
    return (pos + s) % EVAL_MASK_PERIOD == 0


def bert_seq_losses(p, seqs, c, gates=None):
    mask = eval_mask(*seqs.shape)
    logits = bert_forward(p, seqs.masked_fill(mask, MASK_TOKEN), c, gates)
    nll = -logits.log_softmax(-1).gather(-1, seqs[:, :, None]).squeeze(-1)
    per_seq = (nll * mask).sum(-1) / mask.sum(-1)
    return per_seq, nll[mask]


# ----------------------------------------------------------------------------------------------
# Training
# ----------------------------------------------------------------------------------------------

def train(name, params, loss_fn, train_buf, steps, lr, seed, shape):
    """AdamW with warmup + cosine decay; shape(step) -> (batch, window) of the random windows."""
    gen = torch.Generator().manual_seed(seed)
    data = torch.tensor(np.frombuffer(train_buf, dtype=np.uint8).astype(np.int64))
    params = {k: v.clone().requires_grad_(True) for k, v in params.items()}
    decay = [v for v in params.values() if v.dim() == 2]
    no_decay = [v for v in params.values() if v.dim() != 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": no_decay, "weight_decay": 0.0}],
                            lr=lr, betas=(0.9, 0.95), eps=1e-8)
    warmup = max(1, steps // 20)
    t0, recent = time.time(), []
    for step in range(steps):
        frac = step / max(1, steps - 1)
        cosine = 0.1 + 0.45 * (1 + math.cos(math.pi * frac))
        scale = (step + 1) / warmup if step < warmup else cosine
        for g in opt.param_groups:
            g["lr"] = lr * scale
        batch, window = shape(step)
        starts = torch.randint(0, len(data) - window, (batch,), generator=gen)
        x = data[starts[:, None] + torch.arange(window)[None, :]]
        loss = loss_fn(params, x, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), 1.0)
        opt.step()
        recent = (recent + [loss.item()])[-50:]
        if step % 100 == 0 or step == steps - 1:
            print(f"  [{name}] step {step:5d}  loss {loss.item():.4f}  "
                  f"mean(last {len(recent)}) {sum(recent) / len(recent):.4f}  "
                  f"{time.time() - t0:6.1f}s", flush=True)
    return {k: v.detach() for k, v in params.items()}, sum(recent) / len(recent), time.time() - t0


def qwen_train_loss(c):
    def f(p, x, gen):
        logits = qwen_forward(p, x[:, :-1], c)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), x[:, 1:].reshape(-1))
    return f


def bert_train_loss(c, rate=0.15):
    def f(p, x, gen):
        # BERT recipe: a fraction `rate` of positions is predicted; of those 80% -> [MASK],
        # 10% -> random byte, 10% unchanged.
        r = torch.rand(x.shape, generator=gen)
        sel = r < rate
        inp = x.masked_fill(r < rate * 0.8, MASK_TOKEN)
        rnd = (r >= rate * 0.8) & (r < rate * 0.9)
        inp = torch.where(rnd, torch.randint(1, 256, x.shape, generator=gen), inp)
        logits = bert_forward(p, inp, c)
        return F.cross_entropy(logits[sel], x[sel])
    return f


# ----------------------------------------------------------------------------------------------
# Evaluation and outputs
# ----------------------------------------------------------------------------------------------

def load_params(path, dtype):
    return {k: torch.from_numpy(v).to(dtype) for k, v in read_safetensors(path).items()}


def unigram_nll(train_buf, targets):
    counts = np.bincount(np.frombuffer(train_buf, np.uint8), minlength=256).astype(np.float64) + 1
    logp = np.log(counts / counts.sum())
    return float(-logp[targets.numpy()].mean())


def gate_grads(seq_loss_fn, params, seqs, c, L, H):
    gates = torch.ones(L, seqs.shape[0], H, dtype=torch.float64, requires_grad=True)
    per_seq, _ = seq_loss_fn(params, seqs, c, gates)
    # A sequence's gate only reaches that sequence's loss, so one backward of the sum yields
    # every per-sequence gradient dL_s/dxi_{l,h} at once.
    per_seq.sum().backward()
    g = gates.grad  # [L, S, H]
    return g, per_seq.detach()


def write_common(out_dir, config, weights, calib, held):
    os.makedirs(os.path.join(out_dir, "text"), exist_ok=True)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
        f.write("\n")
    write_safetensors(os.path.join(out_dir, "model.safetensors"), weights)
    open(os.path.join(out_dir, "text", "calibration.txt"), "wb").write(calib)
    open(os.path.join(out_dir, "text", "heldout.txt"), "wb").write(held)


def qwen_config(dtype_name):
    c = QWEN
    return {"architectures": ["Qwen2ForCausalLM"], "attention_dropout": 0.0, "bos_token_id": None,
            "eos_token_id": None, "hidden_act": "silu", "hidden_size": c["hidden_size"],
            "initializer_range": 0.02, "intermediate_size": c["intermediate_size"],
            "max_position_embeddings": c["max_position_embeddings"],
            "max_window_layers": c["num_hidden_layers"], "model_type": "qwen2",
            "num_attention_heads": c["num_attention_heads"],
            "num_hidden_layers": c["num_hidden_layers"],
            "num_key_value_heads": c["num_key_value_heads"], "rms_norm_eps": c["rms_norm_eps"],
            "rope_scaling": None, "rope_theta": c["rope_theta"], "sliding_window": None,
            "tie_word_embeddings": True, "torch_dtype": dtype_name, "use_cache": True,
            "use_sliding_window": False, "vocab_size": c["vocab_size"],
            "tokenizer_note": "byte-level: token id = byte value (0..255), no special tokens"}


def bert_config():
    c = BERT
    return {"architectures": ["BertForMaskedLM"], "attention_probs_dropout_prob": 0.0,
            "classifier_dropout": None, "hidden_act": "gelu", "hidden_dropout_prob": 0.0,
            "hidden_size": c["hidden_size"], "initializer_range": 0.02,
            "intermediate_size": c["intermediate_size"], "layer_norm_eps": c["layer_norm_eps"],
            "max_position_embeddings": c["max_position_embeddings"], "model_type": "bert",
            "num_attention_heads": c["num_attention_heads"],
            "num_hidden_layers": c["num_hidden_layers"], "pad_token_id": 0,
            "position_embedding_type": "absolute", "torch_dtype": "float32",
            "type_vocab_size": c["type_vocab_size"], "use_cache": True,
            "vocab_size": c["vocab_size"],
            "tokenizer_note": "byte-level: token id = byte value (0..255); byte 0 (NUL, absent "
                              "from the text) is the [MASK] token; no padding is used"}


QWEN_PROTOCOL = (
    "Byte tokens (id = byte value). text/heldout.txt is 64 sequences of 128 bytes: sequence s is "
    "bytes [128*s, 128*s+128). Each sequence is run on its own (no cache, no padding) through the "
    "stored weights (BF16/F16 decoded exactly to the compute type), inputs = tokens 0..126 at "
    "positions 0..126. Decoder layer: h = RMSNorm(x) = x / sqrt(mean(x^2) + 1e-6) * w; q,k,v = "
    "Linear with bias; RoPE (rotate_half): inv_freq[j] = 10000^(-2j/16), j < 8, angle = pos * "
    "inv_freq, cos/sin duplicated over both halves of the 16-dim head, x*cos + rotate_half(x)*sin "
    "with rotate_half([x1,x2]) = [-x2,x1], applied to q and k; query head h uses KV head h // 4; "
    "scores = q.k / sqrt(16), causal, softmax; head outputs concatenated in head order -> o_proj "
    "(no bias); residual; RMSNorm -> down(silu(gate(h)) * up(h)); residual. Final RMSNorm, logits "
    "= h @ embed_tokens^T (tied). NLL at position t = -log_softmax(logits_t)[token_{t+1}], "
    "t = 0..126. Reported nll = mean over all 64*127 = 8128 predictions. float64: every operation "
    "in double (cos/sin computed in double); float32: weights and all activations in float "
    "(cos/sin computed in double, then rounded to float).")

BERT_PROTOCOL = (
    "Byte tokens (id = byte value). text/heldout.txt is 64 sequences of 128 bytes: sequence s "
    "(0-based) is bytes [128*s, 128*s+128). Masking: position p (0..127) of sequence s is masked "
    "iff (p + s) % 7 == 0; masked input ids are replaced by 0 (the [MASK] byte). Each sequence is "
    "run on its own with token_type_ids = 0, position_ids = 0..127, no attention mask (all 128 "
    "positions attend to all). Embeddings: word + position + token_type[0], LayerNorm(eps 1e-12, "
    "biased variance). Layer (post-LN): q,k,v Linear with bias, 4 heads of 16, softmax(q.k / 4) v, "
    "heads concatenated in order -> attention.output.dense; x = LN(x + that); x = LN(x + "
    "output.dense(gelu(intermediate.dense(x)))), gelu exact: 0.5*x*(1+erf(x/sqrt(2))). MLM head: "
    "t = LN(gelu(transform.dense(x))); logits = t @ word_embeddings^T + cls.predictions.bias. NLL "
    "= -log_softmax(logits_p)[original byte at p] at masked positions only; reported nll = mean "
    "over all masked positions of all sequences (num_predictions below). float64: all in double; "
    "float32: all in float.")


def reference_json(name, dtype_name, protocol, nll64, nll32, per_seq, n_pred, unigram, logits0):
    return {"model": name, "weights_dtype": dtype_name, "heldout_file": "text/heldout.txt",
            "num_sequences": NUM_EVAL_SEQS, "sequence_length": SEQ_LEN, "num_predictions": n_pred,
            "nll_float64": nll64, "nll_float32": nll32, "unigram_baseline_nll": unigram,
            "unit": "nats per predicted token", "protocol": protocol,
            "per_sequence_mean_nll_float64": per_seq,
            "debug_logits_float64": logits0,
            "tolerance": "a faithful float32 C++ forward should match nll_float64 within 1e-4"}


def logits_probe(forward, p, seqs, c, positions):
    with torch.no_grad():
        lg = forward(p, seqs[:1], c)[0]
    return {"sequence": 0, "positions": positions, "first_8_logits": [
        [float(v) for v in lg[t, :8]] for t in positions]}


def write_gate_grads(path, prefix_fmt, g):
    L, S, H = g.shape
    t = {}
    for i in range(L):
        a = prefix_fmt.format(i)
        t[a + "abs_sum"] = g[i].abs().sum(0)
        t[a + "sq_sum"] = g[i].pow(2).sum(0)
        t[a + "count"] = torch.tensor([float(S)], dtype=torch.float64)
    write_safetensors(path, t)


def build_qwen(args, train_buf, calib, held, info):
    out = os.path.join(args.out, "tiny-qwen2")
    c = QWEN
    print(f"tiny-qwen2: training {args.qwen_steps} steps", flush=True)
    torch.manual_seed(args.seed)
    p0 = qwen_init(torch.Generator().manual_seed(args.seed), c)
    p, train_loss, secs = train("qwen2", p0, qwen_train_loss(c), train_buf, args.qwen_steps,
                                args.qwen_lr, args.seed + 1, lambda step: (args.batch, SEQ_LEN + 1))
    tdt = {"bfloat16": torch.bfloat16, "float16": torch.float16}[args.qwen_dtype]
    write_common(out, qwen_config(args.qwen_dtype), {k: v.to(tdt) for k, v in p.items()},
                 calib, held)
    hs = as_sequences(held)
    with torch.no_grad():
        unrounded = qwen_seq_losses(p, hs, c)[1].mean().item()
    # Everything below reads the weights back from the file: the stored, rounded model.
    p64 = load_params(os.path.join(out, "model.safetensors"), torch.float64)
    p32 = {k: v.float() for k, v in p64.items()}
    with torch.no_grad():
        per64, nll64 = qwen_seq_losses(p64, hs, c)
        _, nll32 = qwen_seq_losses(p32, hs, c)
    uni = unigram_nll(train_buf, hs[:, 1:].reshape(-1))
    ref = reference_json("tiny-qwen2", args.qwen_dtype, QWEN_PROTOCOL, nll64.mean().item(),
                         nll32.mean().item(), [float(v) for v in per64], nll64.numel(), uni,
                         logits_probe(qwen_forward, p64, hs[:, :-1], c, [0, 1, 63, 126]))
    ref["training"] = {"steps": args.qwen_steps, "batch": args.batch, "window": SEQ_LEN + 1,
                       "final_train_loss_mean_last_50_steps_fp32": train_loss,
                       "heldout_nll_fp32_before_rounding": unrounded}
    ref["text_source"] = info
    with open(os.path.join(out, "reference_nll.json"), "w") as f:
        json.dump(ref, f, indent=2)
        f.write("\n")
    g, _ = gate_grads(qwen_seq_losses, p64, as_sequences(calib), c, c["num_hidden_layers"],
                      c["num_attention_heads"])
    write_gate_grads(os.path.join(out, "head_gate_grads.safetensors"),
                     "model.layers.{}.self_attn.head_gate.", g)
    return dict(train_loss=train_loss, nll64=ref["nll_float64"], nll32=ref["nll_float32"],
                unrounded=unrounded, unigram=uni, seconds=secs)


def build_bert(args, train_buf, calib, held, info):
    out = os.path.join(args.out, "tiny-bert")
    c = BERT
    print(f"tiny-bert: training {args.bert_steps} steps", flush=True)
    torch.manual_seed(args.seed + 10)
    gen = torch.Generator().manual_seed(args.seed + 10)
    p0 = local_attention_init(bert_init(gen, c), c, gen)
    p, train_loss, secs = train("bert", p0, bert_train_loss(c), train_buf, args.bert_steps,
                                args.bert_lr, args.seed + 11, lambda step: (args.batch, SEQ_LEN))
    write_common(out, bert_config(), {k: v.float() for k, v in p.items()}, calib, held)
    hs = as_sequences(held)
    p64 = load_params(os.path.join(out, "model.safetensors"), torch.float64)
    p32 = {k: v.float() for k, v in p64.items()}
    with torch.no_grad():
        per64, nll64 = bert_seq_losses(p64, hs, c)
        _, nll32 = bert_seq_losses(p32, hs, c)
    uni = unigram_nll(train_buf, hs[eval_mask(*hs.shape)])
    masked_in = hs.masked_fill(eval_mask(*hs.shape), MASK_TOKEN)
    ref = reference_json("tiny-bert", "float32", BERT_PROTOCOL, nll64.mean().item(),
                         nll32.mean().item(), [float(v) for v in per64], nll64.numel(), uni,
                         logits_probe(bert_forward, p64, masked_in, c, [0, 1, 7, 127]))
    ref["mask_rule"] = {"masked_iff": "(p + s) % 7 == 0", "mask_token_id": MASK_TOKEN,
                        "p": "position 0..127", "s": "0-based sequence index within the file"}
    ref["debug_logits_float64"]["note"] = "logits of sequence 0 with the masked input ids"
    ref["training"] = {"steps": args.bert_steps, "batch": args.batch, "window": SEQ_LEN,
                       "objective": "MLM, 15% of positions (80% -> byte 0, 10% random byte "
                                    "1..255, 10% unchanged)",
                       "init": "N(0, 0.02) with local_attention_init: sinusoidal position "
                               "embeddings and query/key weights aimed at offsets -1, +1, -2, +2",
                       "final_train_loss_mean_last_50_steps_fp32": train_loss}
    ref["text_source"] = info
    with open(os.path.join(out, "reference_nll.json"), "w") as f:
        json.dump(ref, f, indent=2)
        f.write("\n")
    g, _ = gate_grads(bert_seq_losses, p64, as_sequences(calib), c, c["num_hidden_layers"],
                      c["num_attention_heads"])
    write_gate_grads(os.path.join(out, "head_gate_grads.safetensors"),
                     "bert.encoder.layer.{}.attention.self.head_gate.", g)
    return dict(train_loss=train_loss, nll64=ref["nll_float64"], nll32=ref["nll_float32"],
                unigram=uni, seconds=secs)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)),
                    help="output root (default: the directory of this script, tests/data)")
    ap.add_argument("--source", default=DOC_SOURCES, help="python3-doc _sources directory")
    ap.add_argument("--only", choices=["qwen2", "bert"], help="build one model only")
    ap.add_argument("--qwen-steps", type=int, default=1200)
    ap.add_argument("--bert-steps", type=int, default=2000)
    ap.add_argument("--qwen-lr", type=float, default=3e-3)
    ap.add_argument("--bert-lr", type=float, default=1e-3)
    ap.add_argument("--qwen-dtype", choices=["bfloat16", "float16"], default="bfloat16")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--seed", type=int, default=20240607)
    ap.add_argument("--threads", type=int, default=1,
                    help="torch intra-op threads (OpenBLAS: OPENBLAS_NUM_THREADS, default 1)")
    ap.add_argument("--quick", action="store_true", help="30 steps each (smoke test)")
    args = ap.parse_args()
    if args.quick:
        args.qwen_steps = args.bert_steps = 30

    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)

    train_buf, calib, held, info = load_text(args.source)
    print(f"training text: {info['train_files']} files, {len(train_buf)} bytes; "
          f"eval text from {EVAL_DIR}/ ({len(info['calibration_files'])} calibration files, "
          f"{len(info['heldout_files'])} held-out files)", flush=True)
    results = {}
    if args.only in (None, "qwen2"):
        results["tiny-qwen2"] = build_qwen(args, train_buf, calib, held, info)
    if args.only in (None, "bert"):
        results["tiny-bert"] = build_bert(args, train_buf, calib, held, info)
    for name, r in results.items():
        print(name, json.dumps({k: round(v, 5) for k, v in r.items()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
