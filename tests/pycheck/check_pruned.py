#!/usr/bin/python3
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""Independent check (numpy only, no C++, no torch) of a checkpoint pruned by `mhaprune`.

    /usr/bin/python3 tests/pycheck/check_pruned.py ORIGINAL_DIR PRUNED_DIR [--tol 1e-5]
                                                    [--sequences 8] [--text FILE]

ORIGINAL_DIR is the checkpoint that was pruned (or any ancestor of it: a checkpoint that mhaprune
pruned again keeps original head ids, so the bundled model can be compared with a re-pruned one);
PRUNED_DIR is the output. Supported: Qwen2/LLaMA/Mistral-style decoders and BERT, with the tensor
names of Hugging Face (the bundled tests/data/tiny-qwen2 and tiny-bert).

What a loader sees is derived the way the loader derives it, not from mhaprune's own bookkeeping:
  - BERT: Hugging Face builds every layer with `num_attention_heads` heads and then prunes
    `pruned_heads[layer]` (original ids; the remaining heads keep their order). The `mhaprune`
    section must say the same.
  - Qwen2/LLaMA: per-layer counts from the `mhaprune` section; Hugging Face reads one
    `num_attention_heads` / `num_key_value_heads` / `head_dim` for all layers, so those must be the
    common counts when all layers agree (then Hugging Face can load it), and the unpruned ones
    otherwise (then only a loader that reads the section can).
Checked: both files parse under the rules of the `safetensors` library (header, offsets that cover
the data exactly, metadata format "pt"); same tensor names and dtypes; every tensor the shape the
loader builds; every non-attention tensor byte-identical; the kept heads' rows/columns of every
attention tensor bit-identical to the original's; config.json unchanged except for head-count keys;
and the held-out NLL (protocols of tests/data/README.md, float64) of (a) the pruned checkpoint and
(b) the original with the removed heads' outputs zeroed before the O projection agree within --tol,
prediction by prediction.

Exit status: 0 all checks passed, 1 a check failed (every failure is listed), 2 usage error or an
input this script does not understand.
"""

import argparse
import json
import math
import os
import struct
import sys

try:
    import numpy as np
except ImportError:
    print(f"check_pruned.py: {sys.executable} has no numpy (Debian: python3-numpy); use "
          "/usr/bin/python3", file=sys.stderr)
    sys.exit(2)

sys.dont_write_bytecode = True  # keep __pycache__ out of the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data"))
import check_safetensors as ref  # noqa: E402  (the bundled models' own numpy forwards)

DTYPE_SIZES = {"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2,
               "F16": 2, "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8}
FLOAT_DTYPES = {"BF16": "<u2", "F16": "<f2", "F32": "<f4", "F64": "<f8"}
MAX_HEADER = 100_000_000  # the safetensors library refuses longer headers


class Usage(Exception):
    """The input is not something this script can check (exit 2)."""


class Failed(Exception):
    """A check that cannot continue failed (exit 1)."""


# --- safetensors, by the rules of the `safetensors` library ------------------------------------

def parse_safetensors(path):
    """Returns ({name: (dtype, raw uint8/float array)}, metadata). Raises Failed naming the rule."""
    try:
        raw = open(path, "rb").read()
    except OSError as e:
        raise Failed(f"{path}: cannot be read: {e}")
    if len(raw) < 8:
        raise Failed(f"{path}: {len(raw)} bytes, shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > MAX_HEADER or 8 + n > len(raw):
        raise Failed(f"{path}: header length {n} is past the end of the file or too large")
    text = raw[8:8 + n]
    if not text.startswith(b"{"):
        raise Failed(f"{path}: header does not start with '{{'")
    try:
        header = json.loads(text.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise Failed(f"{path}: header is not UTF-8 JSON: {e}")
    meta = header.pop("__metadata__", None)
    if meta is not None:
        if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise Failed(f"{path}: __metadata__ must map strings to strings, got {meta!r}")
        # transformers refuses safetensors files whose format is not pt/tf/flax/mlx.
        if meta.get("format") != "pt":
            raise Failed(f"{path}: __metadata__.format is {meta.get('format')!r}, "
                         "transformers' PyTorch loader needs \"pt\"")
    entries = []
    for name, e in header.items():
        if not isinstance(e, dict) or set(e) != {"dtype", "shape", "data_offsets"}:
            raise Failed(f"{path}: tensor {name}: entry {e!r} is not "
                         "{dtype, shape, data_offsets}")
        if e["dtype"] not in DTYPE_SIZES:
            raise Failed(f"{path}: tensor {name}: unknown dtype {e['dtype']!r}")
        if not all(isinstance(s, int) and s >= 0 for s in e["shape"]):
            raise Failed(f"{path}: tensor {name}: bad shape {e['shape']!r}")
        entries.append((tuple(e["data_offsets"]), name, e))
    # The library sorts by offsets and needs them to tile the data section from 0 without gaps.
    entries.sort()
    offset = 0
    for (begin, end), name, e in entries:
        if begin != offset or end < begin:
            raise Failed(f"{path}: tensor {name}: data_offsets [{begin}, {end}] do not start where "
                         f"the previous tensor ends ({offset})")
        need = math.prod(e["shape"]) * DTYPE_SIZES[e["dtype"]]
        if end - begin != need:
            raise Failed(f"{path}: tensor {name}: shape {e['shape']} of {e['dtype']} needs {need} "
                         f"bytes, has {end - begin}")
        offset = end
    if 8 + n + offset != len(raw):
        raise Failed(f"{path}: tensors cover {offset} data bytes, the file has {len(raw) - 8 - n}")
    base = 8 + n
    tensors = {}
    for (begin, end), name, e in entries:
        blob = raw[base + begin:base + end]
        dt = FLOAT_DTYPES.get(e["dtype"], "u1")
        a = np.frombuffer(blob, dt)
        tensors[name] = (e["dtype"], a.reshape(e["shape"]) if dt != "u1" else a)
    return tensors, meta


def load_tensors(d):
    """All tensors of a checkpoint directory: model.safetensors or a sharded index."""
    single = os.path.join(d, "model.safetensors")
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        try:
            weight_map = json.load(open(index))["weight_map"]
        except (OSError, ValueError, KeyError) as e:
            raise Failed(f"{index}: not a safetensors index: {e}")
        tensors = {}
        for shard in sorted(set(weight_map.values())):
            part, _ = parse_safetensors(os.path.join(d, shard))
            for name in part:
                if weight_map.get(name) != shard:
                    raise Failed(f"{index}: {name} is stored in {shard} but the index says "
                                 f"{weight_map.get(name)!r}")
            tensors.update(part)
        missing = sorted(set(weight_map) - set(tensors))
        if missing:
            raise Failed(f"{index}: lists tensors no shard holds: {missing[:5]}")
        total = (json.load(open(index)).get("metadata") or {}).get("total_size")
        size = sum(a.nbytes for _, a in tensors.values())
        if total is not None and total != size:
            raise Failed(f"{index}: metadata.total_size is {total}, the tensors hold {size} bytes")
        return tensors
    if os.path.exists(single):
        return parse_safetensors(single)[0]
    raise Usage(f"{d}: has neither model.safetensors nor model.safetensors.index.json")


def as_f64(dtype, a):
    return ref.as_f64(dtype, a)


# --- what a loader builds: per layer, the original ids of the heads present --------------------

class Layer:
    def __init__(self, heads, kv_heads, d):
        self.heads, self.kv_heads, self.d = list(heads), list(kv_heads), d  # original ids, in order


class Model:
    """One checkpoint as a loader sees it."""

    def __init__(self, d, kind, cfg, layers, H0, Hkv0, notes):
        self.dir, self.kind, self.cfg, self.layers = d, kind, cfg, layers
        self.H0, self.Hkv0, self.notes = H0, Hkv0, notes


DECODERS = ("qwen2", "llama", "mistral")


def ids_list(value, what, limit, problems):
    if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool)
                                              for v in value):
        problems.append(f"{what} is {value!r}, not a list of integers")
        return []
    bad = [v for v in value if not 0 <= v < limit]
    if bad:
        problems.append(f"{what} has ids {bad} outside 0..{limit - 1}")
    return [v for v in value if 0 <= v < limit]


def section_layers(cfg, L, names, problems):
    """The `mhaprune` section: {layer: (head_ids, kept kv ids)} plus (H0, Hkv0, d), checked."""
    sec = cfg["mhaprune"]
    H0, Hkv0, d = (sec.get(k) for k in ("original_num_attention_heads",
                                        "original_num_key_value_heads", "head_dim"))
    if not all(isinstance(v, int) and v > 0 for v in (H0, Hkv0, d)):
        raise Failed(f"config.json mhaprune: original_num_attention_heads / "
                     f"original_num_key_value_heads / head_dim are {H0}, {Hkv0}, {d}")
    entries = sec.get("layers")
    if not isinstance(entries, list) or len(entries) != L:
        raise Failed(f"config.json mhaprune.layers: expected a list of {L} layers, "
                     f"got {str(entries)[:80]}")
    out = []
    for i, e in enumerate(entries):
        w = f"config.json mhaprune.layers[{i}]"
        if e.get("layer") != i or e.get("name") != names[i]:
            problems.append(f"{w}: layer/name are {e.get('layer')!r}/{e.get('name')!r}, "
                            f"expected {i}/{names[i]!r}")
        heads = ids_list(e.get("head_ids"), w + ".head_ids", H0, problems)
        removed = ids_list(e.get("removed_heads"), w + ".removed_heads", H0, problems)
        removed_kv = ids_list(e.get("removed_kv_heads"), w + ".removed_kv_heads", Hkv0, problems)
        kv = [k for k in range(Hkv0) if k not in removed_kv]
        if heads != sorted(set(heads)):
            problems.append(f"{w}.head_ids {heads} are not ascending and distinct")
        if sorted(heads + removed) != list(range(H0)):
            problems.append(f"{w}: head_ids {heads} and removed_heads {removed} "
                            f"do not split 0..{H0 - 1}")
        if e.get("num_attention_heads") != len(heads) or e.get("num_key_value_heads") != len(kv):
            problems.append(f"{w}: num_attention_heads/num_key_value_heads are "
                            f"{e.get('num_attention_heads')}/{e.get('num_key_value_heads')}, "
                            f"the ids give {len(heads)}/{len(kv)}")
        out.append((heads, kv, removed, removed_kv))
    return out, H0, Hkv0, d


def loader_view(d, problems):
    try:
        cfg = json.load(open(os.path.join(d, "config.json")))
    except (OSError, ValueError) as e:
        raise Usage(f"{d}/config.json: {e}")
    kind = cfg.get("model_type")
    L, D = cfg.get("num_hidden_layers"), cfg.get("hidden_size")
    notes = []
    if kind == "bert":
        H = cfg["num_attention_heads"]
        if D % H:
            raise Failed(f"{d}/config.json: hidden_size {D} does not split into {H} heads")
        dh = D // H
        names = [f"bert.encoder.layer.{i}.attention" for i in range(L)]
        # transformers: PretrainedConfig turns the JSON keys into ints; init_weights() then calls
        # prune_heads(config.pruned_heads), which removes those original ids from full layers.
        pruned = cfg.get("pruned_heads", {}) or {}
        gone = {}
        for key, value in pruned.items():
            try:
                layer = int(key)
            except ValueError:
                problems.append(f"{d}/config.json pruned_heads key {key!r} is not an integer")
                continue
            if not 0 <= layer < L:
                problems.append(f"{d}/config.json pruned_heads key {key!r}: "
                                f"no such layer (0..{L - 1})")
                continue
            what = f"{d}/config.json pruned_heads[{key!r}]"
            gone[layer] = set(ids_list(value, what, H, problems))
        layers = [Layer([h for h in range(H) if h not in gone.get(i, set())],
                        [h for h in range(H) if h not in gone.get(i, set())], dh) for i in range(L)]
        if "mhaprune" in cfg:
            sec, H0, Hkv0, sd = section_layers(cfg, L, names, problems)
            if (H0, Hkv0, sd) != (H, H, dh):
                problems.append(f"{d}/config.json: mhaprune section says {H0} heads, {Hkv0} kv "
                                f"heads of {sd}, num_attention_heads/hidden_size say {H} of {dh}")
            for i, (heads, kv, removed, removed_kv) in enumerate(sec):
                if heads != layers[i].heads:
                    problems.append(f"{d}/config.json layer {i}: Hugging Face's pruned_heads leave "
                                    f"heads {layers[i].heads}, the mhaprune section says {heads}")
                if removed_kv != removed:
                    problems.append(f"{d}/config.json mhaprune.layers[{i}]: removed_kv_heads "
                                    f"{removed_kv} != removed_heads {removed} (BERT has no GQA)")
        return Model(d, kind, cfg, layers, H, H, notes)
    if kind in DECODERS:
        names = [f"model.layers.{i}.self_attn" for i in range(L)]
        H = cfg["num_attention_heads"]
        Hkv = cfg.get("num_key_value_heads") or H
        top_d = cfg.get("head_dim") or D // H  # what transformers uses for head_dim
        if "mhaprune" not in cfg:
            if H % Hkv or H * top_d != D and "head_dim" not in cfg:
                raise Failed(f"{d}/config.json: {H} heads, {Hkv} kv heads, hidden {D} do not fit")
            return Model(d, kind, cfg, [Layer(range(H), range(Hkv), top_d) for _ in range(L)],
                         H, Hkv, notes)
        sec, H0, Hkv0, sd = section_layers(cfg, L, names, problems)
        layers = [Layer(heads, kv, sd) for heads, kv, _, _ in sec]
        counts = {(len(x.heads), len(x.kv_heads)) for x in layers}
        if len(counts) == 1:
            (h1, k1), = counts
            if (H, Hkv, top_d) != (h1, k1, sd):
                problems.append(f"{d}/config.json: every layer has {h1} heads / {k1} kv heads of "
                                f"{sd}, but transformers would build {H} / {Hkv} of {top_d} from "
                                f"num_attention_heads/num_key_value_heads/head_dim")
            notes.append("transformers can load it")
        else:
            if (H, Hkv) != (H0, Hkv0):
                problems.append(f"{d}/config.json: layers differ, so num_attention_heads/"
                                f"num_key_value_heads should be the unpruned {H0}/{Hkv0}, "
                                f"are {H}/{Hkv}")
            notes.append("per-layer head counts: only a loader reading the mhaprune section "
                         "can load it")
        if H0 % Hkv0:
            problems.append(f"{d}/config.json: {H0} original heads do not split into {Hkv0} groups")
        group0 = H0 // Hkv0
        for i, x in enumerate(layers):
            w = f"{d}/config.json mhaprune.layers[{i}]"
            if x.kv_heads and len(x.heads) % len(x.kv_heads):
                problems.append(f"{w}: {len(x.heads)} heads do not split into "
                                f"{len(x.kv_heads)} kv groups")
                continue
            if not x.kv_heads:
                if x.heads:
                    problems.append(f"{w}: {len(x.heads)} query heads but no kv heads")
                continue
            group = len(x.heads) // len(x.kv_heads)
            # The loader pairs query head j with kv head j // group: it must be the one it was
            # trained with.
            for j, h in enumerate(x.heads):
                if x.kv_heads[j // group] != h // group0:
                    problems.append(f"{w}: kept query head {h} (position {j}) would read kv head "
                                    f"{x.kv_heads[j // group]}, it was trained with {h // group0}")
                    break
            for k in set(range(Hkv0)) - set(x.kv_heads):
                if any(h // group0 == k for h in x.heads):
                    problems.append(f"{w}: kv head {k} removed while a query head still uses it")
        return Model(d, kind, cfg, layers, H0, Hkv0, notes)
    raise Usage(f"{d}/config.json: model_type {kind!r} is not one this script knows "
                f"(bert, {', '.join(DECODERS)})")


# --- attention tensors: which rows/columns belong to which head --------------------------------

def attention_tensors(kind, i, tensors):
    """[(name, role)], role 'q': rows per query head, 'kv': rows per kv head, 'o_in': O columns
    per query head, 'keep': untouched."""
    if kind == "bert":
        p = f"bert.encoder.layer.{i}.attention."
        spec = [(p + "self.query.weight", "q"), (p + "self.query.bias", "q"),
                (p + "self.key.weight", "q"), (p + "self.key.bias", "q"),
                (p + "self.value.weight", "q"), (p + "self.value.bias", "q"),
                (p + "output.dense.weight", "o_in"), (p + "output.dense.bias", "keep")]
    else:
        p = f"model.layers.{i}.self_attn."
        spec = [(p + "q_proj.weight", "q"), (p + "q_proj.bias", "q"),
                (p + "k_proj.weight", "kv"), (p + "k_proj.bias", "kv"),
                (p + "v_proj.weight", "kv"), (p + "v_proj.bias", "kv"),
                (p + "o_proj.weight", "o_in"), (p + "o_proj.bias", "keep")]
    return [(n, r) for n, r in spec if n in tensors]


def head_slice(a, role, positions, d):
    """The rows (or O columns) of the heads at `positions`, in that order."""
    idx = np.array([p * d + j for p in positions for j in range(d)], dtype=np.int64)
    return a[:, idx] if role == "o_in" else a[idx]


def check_tensors(orig, pruned, T0, T1, problems):
    """Names, dtypes, loader shapes, byte-identical non-attention tensors, kept heads bit-exact."""
    if set(T0) != set(T1):
        problems.append(f"tensor names differ: only in original {sorted(set(T0) - set(T1))[:6]}, "
                        f"only in pruned {sorted(set(T1) - set(T0))[:6]}")
    attention = {}
    for i, (l0, l1) in enumerate(zip(orig.layers, pruned.layers)):
        for name, role in attention_tensors(pruned.kind, i, T1):
            attention[name] = (i, role, l0, l1)
    identical = checked = 0
    for name in sorted(set(T0) & set(T1)):
        (dt0, a0), (dt1, a1) = T0[name], T1[name]
        if dt0 != dt1:
            problems.append(f"{name}: dtype {dt1}, the original is {dt0}")
            continue
        if name not in attention:
            if a0.shape != a1.shape or a0.tobytes() != a1.tobytes():
                problems.append(f"{name}: not byte-identical to the original "
                                f"(shapes {list(a0.shape)} -> {list(a1.shape)})")
            else:
                identical += 1
            continue
        i, role, l0, l1 = attention[name]
        if role == "keep":
            want0 = list(a0.shape)
        else:
            n0 = len(l0.kv_heads if role == "kv" else l0.heads)
            n1 = len(l1.kv_heads if role == "kv" else l1.heads)
            per = (a0.shape[1] if role == "o_in" else a0.shape[0]) // max(n0, 1)
            if per != l1.d:
                problems.append(f"{name}: original holds {n0} heads of {per}, "
                                f"the loader's head size is {l1.d}")
                continue
            want0 = list(a0.shape)
            if role == "o_in":
                want0[1] = n1 * l1.d
            else:
                want0[0] = n1 * l1.d
        if list(a1.shape) != want0:
            problems.append(f"{name}: shape {list(a1.shape)}, the loader builds {want0} (layer "
                            f"{i}: {len(l1.heads)} heads, {len(l1.kv_heads)} kv heads of {l1.d})")
            continue
        if role == "keep":
            same = a0.tobytes() == a1.tobytes()
        else:
            ids0, ids1 = (l0.kv_heads, l1.kv_heads) if role == "kv" else (l0.heads, l1.heads)
            if not set(ids1) <= set(ids0):
                problems.append(f"{name}: pruned keeps heads {ids1}, the original has only {ids0}")
                continue
            kept = head_slice(a0, role, [ids0.index(h) for h in ids1], l1.d)
            same = np.ascontiguousarray(kept).tobytes() == a1.tobytes()
        if not same:
            problems.append(f"{name}: the kept heads' values differ from the original's "
                            f"(compensation? this check needs an uncompensated prune)")
        checked += 1
    return identical, checked


def check_config_keys(orig, pruned, problems):
    allowed = {"mhaprune", "pruned_heads", "num_attention_heads", "num_key_value_heads", "head_dim"}
    c0, c1 = orig.cfg, pruned.cfg
    for key in sorted(set(c0) | set(c1)):
        if key in allowed:
            continue
        if c0.get(key, "<absent>") != c1.get(key, "<absent>"):
            problems.append(f"config.json key {key!r} changed: {c0.get(key, '<absent>')!r} -> "
                            f"{c1.get(key, '<absent>')!r}")
    if pruned.kind == "bert" and c1.get("num_attention_heads") != c0.get("num_attention_heads"):
        problems.append("config.json num_attention_heads of a BERT model must stay the unpruned "
                        "count (transformers re-applies pruned_heads): "
                        f"{c0.get('num_attention_heads')} -> {c1.get('num_attention_heads')}")
    if pruned.kind != orig.kind or (pruned.H0, pruned.Hkv0) != (orig.H0, orig.Hkv0):
        problems.append(f"original head counts differ: {orig.kind} {orig.H0}/{orig.Hkv0} vs "
                        f"{pruned.kind} {pruned.H0}/{pruned.Hkv0}")
    for i, (l0, l1) in enumerate(zip(orig.layers, pruned.layers)):
        if not set(l1.heads) <= set(l0.heads) or not set(l1.kv_heads) <= set(l0.kv_heads):
            problems.append(f"layer {i}: pruned keeps heads {l1.heads} / kv {l1.kv_heads}, "
                            f"the original has {l0.heads} / kv {l0.kv_heads}")


# --- float64 forwards with per-layer head lists and a gate per head ----------------------------

def decoder_nll(W, cfg, seqs, layers, gates):
    """check_safetensors.qwen_nll with len(layers[i].heads) heads in layer i; gates[i]: [H_i]."""
    S, T = seqs.shape[0], seqs.shape[1] - 1
    eps = cfg["rms_norm_eps"]
    rms = lambda x, w: x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w  # noqa: E731
    E = W["model.embed_tokens.weight"]
    x = E[seqs[:, :-1]]
    future = np.triu(np.ones((T, T), bool), 1)
    for i, layer in enumerate(layers):
        H, Hk, d = len(layer.heads), len(layer.kv_heads), layer.d
        inv = cfg.get("rope_theta", 10000.0) ** (-np.arange(0, d, 2) / d)
        ang = np.arange(T)[:, None] * inv[None, :]
        cos, sin = np.cos(np.concatenate([ang, ang], 1)), np.sin(np.concatenate([ang, ang], 1))
        half = d // 2
        rope = lambda t: t * cos + np.concatenate([-t[..., half:], t[..., :half]], -1) * sin  # noqa
        a = f"model.layers.{i}.self_attn."
        h = rms(x, W[f"model.layers.{i}.input_layernorm.weight"])

        def proj(m, n):
            y = h @ W[a + m + "_proj.weight"].T
            if a + m + "_proj.bias" in W:
                y = y + W[a + m + "_proj.bias"]
            return y.reshape(S, T, n, d).transpose(0, 2, 1, 3)

        o = np.zeros((S, H, T, d))
        if H:
            q, k, v = rope(proj("q", H)), rope(proj("k", Hk)), proj("v", Hk)
            for hh in range(H):
                kv = hh // (H // Hk)
                s = q[:, hh] @ k[:, kv].transpose(0, 2, 1) / math.sqrt(d)
                s[:, future] = -np.inf
                o[:, hh] = ref.softmax(s) @ v[:, kv] * gates[i][hh]
        y = o.transpose(0, 2, 1, 3).reshape(S, T, H * d) @ W[a + "o_proj.weight"].T
        x = x + (y + W[a + "o_proj.bias"] if a + "o_proj.bias" in W else y)
        m = f"model.layers.{i}.mlp."
        h = rms(x, W[f"model.layers.{i}.post_attention_layernorm.weight"])
        g = h @ W[m + "gate_proj.weight"].T
        act = g / (1 + np.exp(-g)) * (h @ W[m + "up_proj.weight"].T)
        x = x + act @ W[m + "down_proj.weight"].T
    head = W["lm_head.weight"] if "lm_head.weight" in W else E
    lp = ref.log_softmax(rms(x, W["model.norm.weight"]) @ head.T)
    return -np.take_along_axis(lp, seqs[:, 1:, None], -1)[..., 0].ravel()


def bert_nll(W, cfg, seqs, layers, gates):
    """check_safetensors.bert_nll with per-layer head lists; sequence s of seqs has index s."""
    S, T = seqs.shape
    eps = cfg["layer_norm_eps"]
    mask = (np.arange(T)[None, :] + np.arange(S)[:, None]) % 7 == 0

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * W[p + ".weight"] + W[p + ".bias"]

    lin = lambda x, p: x @ W[p + ".weight"].T + W[p + ".bias"]  # noqa: E731
    gelu = lambda x: 0.5 * x * (1 + ref._erf(x / math.sqrt(2)).astype(np.float64))  # noqa: E731
    e = "bert.embeddings."
    We = W[e + "word_embeddings.weight"]
    x = ln(We[np.where(mask, 0, seqs)] + W[e + "position_embeddings.weight"][:T]
           + W[e + "token_type_embeddings.weight"][0], e + "LayerNorm")
    for i, layer in enumerate(layers):
        H, d = len(layer.heads), layer.d
        a = f"bert.encoder.layer.{i}."
        q, k, v = (lin(x, a + "attention.self." + m).reshape(S, T, H, d).transpose(0, 2, 1, 3)
                   for m in ("query", "key", "value"))
        g = np.asarray(gates[i], np.float64)[None, :, None, None]
        o = ref.softmax(q @ k.transpose(0, 1, 3, 2) / math.sqrt(d)) @ v * g
        x = ln(x + lin(o.transpose(0, 2, 1, 3).reshape(S, T, H * d), a + "attention.output.dense"),
               a + "attention.output.LayerNorm")
        x = ln(x + lin(gelu(lin(x, a + "intermediate.dense")), a + "output.dense"),
               a + "output.LayerNorm")
    t = ln(gelu(lin(x, "cls.predictions.transform.dense")), "cls.predictions.transform.LayerNorm")
    lp = ref.log_softmax(t @ We.T + W["cls.predictions.bias"])
    return -np.take_along_axis(lp, seqs[..., None], -1)[..., 0][mask]


def is_unpruned(model):
    return all(x.heads == list(range(model.H0)) and x.kv_heads == list(range(model.Hkv0))
               for x in model.layers)


def masked_original_nll(orig, W0, seqs, pruned):
    """NLL of the original with the heads the pruned model lacks zeroed before the O projection.

    An unpruned original goes through check_safetensors.py's forwards (a second code path) when they
    fit it (they assume the bundled models' tensors); otherwise, e.g. for an original that is itself
    a pruned checkpoint, the per-layer forward here runs it."""
    gates = [np.array([1.0 if h in l1.heads else 0.0 for h in l0.heads])
             for l0, l1 in zip(orig.layers, pruned.layers)]
    ref_fits = orig.kind == "bert" or (orig.kind == "qwen2" and "lm_head.weight" not in W0
                                          and "model.layers.0.self_attn.q_proj.bias" in W0)
    if is_unpruned(orig) and ref_fits:
        full = np.stack([np.broadcast_to(g, (len(seqs), len(g))) for g in gates])
        if orig.kind == "bert":
            return ref.bert_nll(W0, orig.cfg, seqs, full)[1]
        return ref.qwen_nll(W0, orig.cfg, seqs, full)[1]
    fwd = bert_nll if orig.kind == "bert" else decoder_nll
    return fwd(W0, orig.cfg, seqs, orig.layers, gates)


def read_sequences(path, count):
    try:
        data = open(path, "rb").read()
    except OSError as e:
        raise Usage(f"{path}: {e}")
    seqs = np.frombuffer(data[:len(data) // 128 * 128], np.uint8).astype(np.int64).reshape(-1, 128)
    return seqs[:count] if count > 0 else seqs


# --- main ----------------------------------------------------------------------------------------

def check(args):
    problems = []
    orig = loader_view(args.original, problems)
    pruned = loader_view(args.pruned, problems)
    if orig.kind != pruned.kind or len(orig.layers) != len(pruned.layers):
        raise Failed(f"{args.pruned} is a {pruned.kind} with {len(pruned.layers)} layers, "
                     f"{args.original} a {orig.kind} with {len(orig.layers)}")
    check_config_keys(orig, pruned, problems)
    T0, T1 = load_tensors(args.original), load_tensors(args.pruned)
    identical, checked = check_tensors(orig, pruned, T0, T1, problems)
    if problems:
        raise Failed("\n".join(problems))

    for name, (dt, _) in T1.items():
        if dt not in FLOAT_DTYPES:
            raise Usage(f"{name}: dtype {dt} is not one the forward decodes")
    supported = {"bert": {"hidden_act": "gelu", "position_embedding_type": "absolute"}}.get(
        pruned.kind, {"hidden_act": "silu", "rope_scaling": None})
    for key, value in supported.items():
        if orig.cfg.get(key, value) != value:
            raise Usage(f"config.json {key} is {orig.cfg[key]!r}; "
                        f"the forward here knows only {value!r}")
    W0 = {k: as_f64(dt, a) for k, (dt, a) in T0.items()}
    W1 = {k: as_f64(dt, a) for k, (dt, a) in T1.items()}
    text = args.text or os.path.join(args.original, "text", "heldout.txt")
    seqs = read_sequences(text, args.sequences)
    fwd = bert_nll if pruned.kind == "bert" else decoder_nll
    ones = [np.ones(len(x.heads)) for x in pruned.layers]
    nll_pruned = fwd(W1, pruned.cfg, seqs, pruned.layers, ones)
    nll_masked = masked_original_nll(orig, W0, seqs, pruned)
    diff = np.abs(nll_pruned - nll_masked)
    worst = float(diff.max()) if diff.size else 0.0
    heads = "/".join(str(len(x.heads)) for x in pruned.layers)
    kv = "/".join(str(len(x.kv_heads)) for x in pruned.layers)
    summary = (f"{os.path.basename(os.path.normpath(args.pruned))}: {pruned.kind}, heads {heads} "
               f"(kv {kv}) of {orig.H0}; {identical} tensors byte-identical, {checked} attention "
               f"tensors shape- and value-checked; NLL over {nll_pruned.size} predictions "
               f"({len(seqs)} sequences): pruned {nll_pruned.mean():.12f}, masked original "
               f"{nll_masked.mean():.12f}, max |diff| {worst:.1e}"
               + "".join(f"; {n}" for n in pruned.notes))
    if not np.all(np.isfinite(nll_pruned)) or not worst <= args.tol:
        raise Failed(summary + f"\nNLL of the pruned checkpoint differs from the masked original's "
                     f"by up to {worst:.3e} > --tol {args.tol:g}")
    print(summary + ": OK")


def main(argv):
    parser = argparse.ArgumentParser(
        description="Check a checkpoint pruned by mhaprune against its original (numpy only).")
    parser.add_argument("original", metavar="ORIGINAL_DIR")
    parser.add_argument("pruned", metavar="PRUNED_DIR")
    parser.add_argument("--tol", type=float, default=1e-5,
                        help="largest allowed |NLL difference| per prediction (default 1e-5)")
    parser.add_argument("--sequences", type=int, default=8,
                        help="held-out sequences to evaluate, the first N (0 = all; default 8)")
    parser.add_argument("--text", help="held-out text (default ORIGINAL_DIR/text/heldout.txt)")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return 0 if e.code == 0 else 2
    if args.tol < 0 or args.sequences < 0:
        print("check_pruned.py: --tol and --sequences must be non-negative", file=sys.stderr)
        return 2
    for d in (args.original, args.pruned):
        if not os.path.isdir(d):
            print(f"check_pruned.py: {d}: not a directory", file=sys.stderr)
            return 2
    try:
        check(args)
    except Usage as e:
        print(f"check_pruned.py: {e}", file=sys.stderr)
        return 2
    except (Failed, KeyError) as e:
        what = f"config.json lacks the key {e}" if isinstance(e, KeyError) else str(e)
        print(f"check_pruned.py: FAILED {args.original} -> {args.pruned}:\n{what}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
