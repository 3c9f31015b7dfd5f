#!/usr/bin/python3
# Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
"""`mhaprune prune` stopped in the middle of writing its output: the output appears whole or not at
all, the input is untouched, and the same command run again succeeds and leaves no temporary of the
stopped run behind (the library removes temporaries whose writer no longer runs).

  interrupted_write.py make-inputs WORK
      a larger BERT checkpoint (WORK/inputs/bert: config.json, model.safetensors, F32) and a larger
      LLaMA GGUF file (WORK/inputs/llama.gguf, F32), numpy with fixed seeds, so that writing the
      output takes a noticeable time (tenths of a second here, more under ASan)
  interrupted_write.py kill      --cli CLI --work WORK --format safetensors|gguf [--seed N]
      SIGKILL at random points of the write: after the temporary appears, a random delay (seed
      printed) from each quarter in turn of the write time of an uninterrupted run (the last up to
      1.1 x); every quarter tried and at least MIN_KILLED runs dead mid-write (a kill that lands
      after the tool finished checks the completed output, and another delay is drawn)
  interrupted_write.py fsize     --cli CLI --work WORK --format safetensors|gguf
      a file-size limit (RLIMIT_FSIZE, `ulimit -f`) of 4 MiB, below the output's size, run twice:
      with SIGXFSZ at its default action (as a shell starts the tool) and ignored (as Python starts
      it): the tool ignores SIGXFSZ itself, so both times the write fails with EFBIG, an io error
      (exit 3) naming the file, temporaries removed
  interrupted_write.py full-disk --cli CLI --work WORK --format safetensors|gguf
      the output on a small tmpfs mounted in a private mount namespace (`unshare -m` as root, else
      `unshare -Urm`; fails, never skips, when neither works): exit 3 naming the file, nothing left;
      then a dead writer's leftover temporary that fills the disk: the run removes it first and
      succeeds

After every interrupted run: nothing under the output's name (or, if the kill came after the
rename, exactly the uninterrupted run's output), the input's files byte-identical (SHA-256), and the
same command run again exits 0, writes the uninterrupted run's bytes, and leaves no `.<name>.tmp-*`
in the output's directory. An io error's one line names the file by its final name (for a checkpoint
directory: OUT/model.safetensors, never only the directory's temporary), then its temporary file, then
the system's reason. Exit 0 when every check passed; otherwise the first failure and exit 1.
"""

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import struct
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "gguf"))

MIN_KILLED = 3  # runs that must die mid-write in the kill test
MAX_TRIES = 12  # delays drawn at most


def fail(msg):
    print("FAIL: " + msg, flush=True)
    sys.exit(1)


def log(msg):
    print(msg, flush=True)


# --- inputs ------------------------------------------------------------------------------------------
BERT = dict(hidden=512, heads=8, layers=8, ffn=2048, vocab=2048, positions=512)
LLAMA = dict(n_embd=512, n_head=8, n_head_kv=4, head_dim=64, n_layer=8, n_ff=2048,
             vocab=256)  # 256: the byte vocabulary of make_tiny_gguf


def write_safetensors(path, tensors):
    header = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, a in tensors:
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for _, a in tensors:
            f.write(np.ascontiguousarray(a, dtype="<f4").tobytes())


def make_bert(out):
    rng = np.random.Generator(np.random.PCG64(20261204))
    E, H, L, FF, V, P = (BERT[k] for k in ("hidden", "heads", "layers", "ffn", "vocab", "positions"))

    def mat(rows, cols):
        return (rng.standard_normal((rows, cols), dtype=np.float32) / np.float32(np.sqrt(cols)))

    def vec(n, base=0.0):
        return (base + 0.1 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)

    t = [("bert.embeddings.LayerNorm.bias", vec(E)), ("bert.embeddings.LayerNorm.weight", vec(E, 1.0)),
         ("bert.embeddings.position_embeddings.weight", mat(P, E)),
         ("bert.embeddings.token_type_embeddings.weight", mat(2, E)),
         ("bert.embeddings.word_embeddings.weight", mat(V, E))]
    for i in range(L):
        p = "bert.encoder.layer.%d." % i
        t += [(p + "attention.output.LayerNorm.bias", vec(E)), (p + "attention.output.LayerNorm.weight", vec(E, 1.0)),
              (p + "attention.output.dense.bias", vec(E)), (p + "attention.output.dense.weight", mat(E, E))]
        for x in ("key", "query", "value"):
            t += [(p + "attention.self.%s.bias" % x, vec(E)), (p + "attention.self.%s.weight" % x, mat(E, E))]
        t += [(p + "intermediate.dense.bias", vec(FF)), (p + "intermediate.dense.weight", mat(FF, E)),
              (p + "output.LayerNorm.bias", vec(E)), (p + "output.LayerNorm.weight", vec(E, 1.0)),
              (p + "output.dense.bias", vec(E)), (p + "output.dense.weight", mat(E, FF))]
    t.sort(key=lambda x: x[0])
    os.makedirs(out, exist_ok=True)
    write_safetensors(os.path.join(out, "model.safetensors"), t)
    config = {"architectures": ["BertForMaskedLM"], "hidden_act": "gelu", "hidden_size": E,
              "intermediate_size": FF, "layer_norm_eps": 1e-12, "max_position_embeddings": P,
              "model_type": "bert", "num_attention_heads": H, "num_hidden_layers": L,
              "position_embedding_type": "absolute", "torch_dtype": "float32", "type_vocab_size": 2,
              "vocab_size": V}
    with open(os.path.join(out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)


def make_llama(out):
    import gguf_np as g  # tests/gguf: our own numpy GGUF writer
    import make_tiny_gguf as m

    rng = np.random.Generator(np.random.PCG64(20261205))
    c = LLAMA
    E, H, HKV, HD, L, FF, V = (c[k] for k in ("n_embd", "n_head", "n_head_kv", "head_dim", "n_layer", "n_ff", "vocab"))
    hp = dict(arch="llama", n_embd=E, n_head=H, n_head_kv=HKV, n_layer=L, n_ff=FF, eps=1e-5, theta=10000.0,
              ctx=1024, head_dim=HD)

    def mat(rows, cols):
        return rng.standard_normal((rows, cols), dtype=np.float32) / np.float32(np.sqrt(cols))

    def norm(n):
        return (1.0 + 0.1 * rng.standard_normal(n, dtype=np.float32)).astype(np.float32)

    t = [("token_embd.weight", mat(V, E))]
    for i in range(L):
        b = "blk.%d." % i
        t += [(b + "attn_norm.weight", norm(E)), (b + "attn_q.weight", mat(H * HD, E)),
              (b + "attn_k.weight", mat(HKV * HD, E)), (b + "attn_v.weight", mat(HKV * HD, E)),
              (b + "attn_output.weight", mat(E, H * HD)), (b + "ffn_norm.weight", norm(E)),
              (b + "ffn_gate.weight", mat(FF, E)), (b + "ffn_up.weight", mat(FF, E)),
              (b + "ffn_down.weight", mat(E, FF))]
    t += [("output_norm.weight", norm(E)), ("output.weight", mat(V, E))]
    kvs, tensors, align = m.build(hp, t, "f32", "interrupted-write-llama")
    g.write_gguf(out, kvs, tensors, alignment=align)


def cmd_make_inputs(a):
    inputs = os.path.join(a.work, "inputs")
    shutil.rmtree(inputs, ignore_errors=True)
    t0 = time.monotonic()
    make_bert(os.path.join(inputs, "bert"))
    make_llama(os.path.join(inputs, "llama.gguf"))
    for root, _, files in os.walk(inputs):
        for f in sorted(files):
            p = os.path.join(root, f)
            log("wrote %s (%.1f MB)" % (p, os.path.getsize(p) / 1e6))
    log("inputs made in %.1f s" % (time.monotonic() - t0))


# --- checks --------------------------------------------------------------------------------------------
def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def tree_hashes(path):
    """{relative path: SHA-256} of a file or every file under a directory (dot-files included)."""
    if os.path.isfile(path):
        return {".": sha256_file(path)}
    out = {}
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for f in sorted(files):
            p = os.path.join(root, f)
            out[os.path.relpath(p, path)] = sha256_file(p)
    return out


def temporaries(out):
    """Names in the output's directory that are temporaries of the output: `.<name>.tmp-...`."""
    parent, name = os.path.split(out)
    return sorted(n for n in os.listdir(parent) if n.startswith("." + name + ".tmp-"))


class Case:
    def __init__(self, a):
        self.cli = a.cli
        self.work = os.path.join(a.work, a.command + "-" + a.format)
        self.format = a.format
        inputs = os.path.join(a.work, "inputs")
        self.input = os.path.join(inputs, "bert" if a.format == "safetensors" else "llama.gguf")
        if not os.path.exists(self.input):
            fail("%s is missing: the fixture cli_interrupted_make_inputs makes it" % self.input)
        self.input_hashes = tree_hashes(self.input)

    def command(self, out):
        # Durable (the default): the fsync is part of the write a kill can interrupt.
        return [self.cli, "prune", self.input, "-o", out, "--sparsity", "0.25", "--quiet"]

    def output_path(self, parent):
        return os.path.join(parent, "pruned" if self.format == "safetensors" else "pruned.gguf")

    def file_regex(self, out):
        """The file an error message must name first: the GGUF output, or the weights file of the
        checkpoint directory under the directory's final name (it is written inside the directory's
        temporary, which no longer exists when the message is read)."""
        if self.format == "gguf":
            return re.escape(out)
        return re.escape(os.path.join(out, "model.safetensors"))

    def temporary_regex(self, out):
        """The temporary file that the message names after the file: `.<name>.tmp-<pid>-<n>-<clock>`
        next to the GGUF output, or the weights file's own temporary inside the directory's."""
        parent, name = os.path.split(out)
        tmp = r"\.%s\.tmp-[0-9]+-[0-9]+-[0-9a-f]+"
        if self.format == "gguf":
            return re.escape(parent) + "/" + tmp % re.escape(name)
        return "%s/%s/%s" % (re.escape(parent), tmp % re.escape(name), tmp % re.escape("model.safetensors"))

    def error_line_ok(self, line, out, reason):
        """`line` is the tool's one error line for a write of `out` that failed with `reason`: it names
        the file under its final name, then its temporary, then the system's reason."""
        return re.search(r"^mhaprune: error: %s: .*temporary file %s(: | ).*%s$"
                         % (self.file_regex(out), self.temporary_regex(out), re.escape(reason)), line)

    def check_input(self, what):
        if tree_hashes(self.input) != self.input_hashes:
            fail("%s: the input %s changed" % (what, self.input))

    def run(self, out, what, **kw):
        r = subprocess.run(self.command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)
        self.check_input(what)
        return r

    def reference(self):
        """One uninterrupted run: the output's hashes and the write time (from the temporary's first
        appearance to the exit)."""
        parent = os.path.join(self.work, "reference")
        shutil.rmtree(parent, ignore_errors=True)
        os.makedirs(parent)
        out = self.output_path(parent)
        t0 = time.monotonic()
        p = subprocess.Popen(self.command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        appeared = wait_for_temporary(p, out)
        stdout, stderr = p.communicate()
        end = time.monotonic()
        if p.returncode != 0:
            fail("uninterrupted run: exit %d\n%s%s" % (p.returncode, stdout.decode(), stderr.decode()))
        if appeared is None:
            fail("uninterrupted run: no temporary of %s was seen while it ran" % out)
        self.check_input("uninterrupted run")
        if temporaries(out):
            fail("uninterrupted run left temporaries: %s" % temporaries(out))
        self.expected = tree_hashes(out)
        self.expected_bytes = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(out) for f in fs) \
            if os.path.isdir(out) else os.path.getsize(out)
        shutil.rmtree(parent)
        log("uninterrupted run: %.2f s in all, %.3f s from the temporary's appearance to the exit"
            % (end - t0, end - appeared))
        return end - appeared

    def expect_output(self, out, what):
        if not os.path.exists(out):
            fail("%s: no output at %s" % (what, out))
        got = tree_hashes(out)
        if got != self.expected:
            diff = sorted(k for k in set(got) | set(self.expected) if got.get(k) != self.expected.get(k))
            fail("%s: the output %s differs from the uninterrupted run's in %s" % (what, out, diff))

    def expect_nothing(self, out, what):
        if os.path.lexists(out):
            fail("%s: something exists under the output's name %s" % (what, out))

    def rerun(self, out, leftovers, what):
        """The same command again: exit 0, the uninterrupted output, none of the temporaries left."""
        r = self.run(out, what + ", run again")
        if r.returncode != 0:
            fail("%s, run again: exit %d\n%s%s" % (what, r.returncode, r.stdout.decode(), r.stderr.decode()))
        self.expect_output(out, what + ", run again")
        left = temporaries(out)
        if left:
            fail("%s, run again: temporaries left in %s: %s (the stopped run left %s)"
                 % (what, os.path.dirname(out), left, leftovers))
        log("  run again: exit 0, output identical to the uninterrupted run's, the stopped run's %s removed"
            % (leftovers or "(nothing)"))


def wait_for_temporary(p, out, timeout=120.0):
    """Polls until a temporary of `out` appears (its time) or `p` exits (None)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if temporaries(out):
            return time.monotonic()
        if p.poll() is not None:
            return None
        time.sleep(0.0005)
    p.kill()
    fail("no temporary of %s appeared within %.0f s" % (out, timeout))


# --- the cases -------------------------------------------------------------------------------------------
def cmd_kill(a):
    c = Case(a)
    write_time = c.reference()
    seed = a.seed if a.seed is not None else 20261204
    rng = random.Random(seed)
    log("kill: seed %d (rerun with --seed %d to replay the same delays)" % (seed, seed))
    killed = 0
    # Delays cycle through four bands of the write time, so that kills land early, in the middle and
    # late (the last band runs past the end: the sync, the rename, the exit).
    bands = [(0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.1)]
    for attempt in range(1, MAX_TRIES + 1):
        if killed >= MIN_KILLED and attempt > len(bands):
            break
        parent = os.path.join(c.work, "attempt-%d" % attempt)
        shutil.rmtree(parent, ignore_errors=True)
        os.makedirs(parent)
        out = c.output_path(parent)
        lo, hi = bands[(attempt - 1) % len(bands)]
        delay = rng.uniform(lo * write_time, hi * write_time)
        p = subprocess.Popen(c.command(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        appeared = wait_for_temporary(p, out)
        if appeared is not None:
            while time.monotonic() < appeared + delay and p.poll() is None:
                time.sleep(0.0005)
            p.send_signal(signal.SIGKILL)  # a no-op on an exited (unreaped) process
        stdout, stderr = p.communicate()
        what = "attempt %d (delay %.3f s)" % (attempt, delay)
        c.check_input(what)
        if p.returncode == 0:
            log("%s: the tool had finished before the kill; its output is checked" % what)
            c.expect_output(out, what)
            if temporaries(out):
                fail("%s: a finished run left temporaries: %s" % (what, temporaries(out)))
            shutil.rmtree(parent)
            continue
        if p.returncode != -signal.SIGKILL:
            fail("%s: exit %d, not killed\n%s%s" % (what, p.returncode, stdout.decode(), stderr.decode()))
        leftovers = temporaries(out)
        if os.path.lexists(out):
            # Killed after the rename (while syncing or exiting): the output must be the whole one.
            log("%s: killed after the output was renamed into place; it must be complete" % what)
            c.expect_output(out, what)
            shutil.rmtree(parent)
            continue
        killed += 1
        pid = str(p.pid)
        if not any(n.split(".tmp-")[1].split("-")[0] == pid for n in leftovers):
            fail("%s: killed mid-write but no temporary of pid %s is left (%s): was it really writing?"
                 % (what, pid, leftovers))
        log("%s: killed mid-write; nothing under %s; left: %s" % (what, os.path.basename(out), leftovers))
        c.rerun(out, leftovers, what)
        shutil.rmtree(parent)
    if killed < MIN_KILLED:
        fail("only %d of %d runs were killed mid-write (the write took %.3f s): make the input larger"
             % (killed, MAX_TRIES, write_time))
    log("ok: %d runs killed mid-write, each re-run clean" % killed)


def cmd_fsize(a):
    c = Case(a)
    c.reference()
    limit = 4 << 20  # bytes: below the output's weights file, above its config.json
    if c.expected_bytes <= 2 * limit:
        fail("the output (%d bytes) is too small for a %d-byte limit" % (c.expected_bytes, limit))
    # The tool as a shell starts it (SIGXFSZ at its default action, which would kill it) and as a parent
    # that ignores SIGXFSZ starts it (Python does): the tool ignores SIGXFSZ itself, so either way the
    # write fails with EFBIG, which must be an io error like a full disk, with no temporary left.
    for ignored in (False, True):
        parent = os.path.join(c.work, "ignored" if ignored else "default")
        shutil.rmtree(parent, ignore_errors=True)
        os.makedirs(parent)
        out = c.output_path(parent)

        def limit_size():
            import resource
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # SIGXFSZ's default action dumps core
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN if ignored else signal.SIG_DFL)

        r = c.run(out, "file-size limit", preexec_fn=limit_size, restore_signals=False)
        what = "file-size limit of %d bytes, SIGXFSZ %s: exit %d" % (limit, "ignored" if ignored else "default",
                                                                        r.returncode)
        err = r.stderr.decode()
        c.expect_nothing(out, what)
        leftovers = temporaries(out)
        if r.returncode == 3:
            lines = err.strip().split("\n")
            if len(lines) != 1 or not c.error_line_ok(lines[0], out, "File too large"):
                fail("%s: stderr must be one error line naming the file written (under its final name, then "
                     "its temporary) and saying 'File too large':\n%s" % (what, err))
            if leftovers:
                fail("%s: an io error must remove its temporaries, left: %s" % (what, leftovers))
            log("%s: %s" % (what, lines[0]))
        else:
            fail("%s: expected exit 3 (File too large)\n%s%s" % (what, r.stdout.decode(), err))
        c.rerun(out, leftovers, what)
        shutil.rmtree(parent)
    log("ok: file-size limit")


def unshare_prefix():
    """`unshare -m` (root) or `unshare -Urm` (any user), whichever can mount a tmpfs here."""
    tried = []
    for prefix in (["unshare", "-m"], ["unshare", "-Urm"]):
        if prefix == ["unshare", "-m"] and os.geteuid() != 0:
            tried.append("unshare -m: not root")
            continue
        probe = prefix + ["sh", "-c", 'd=$(mktemp -d) && mount -t tmpfs -o size=1m tmpfs "$d" && umount "$d"; '
                                      'r=$?; rmdir "$d"; exit $r']
        try:
            r = subprocess.run(probe, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        except OSError as e:
            tried.append("%s: %s" % (" ".join(prefix), e))
            continue
        if r.returncode == 0:
            return prefix
        tried.append("%s: exit %d: %s" % (" ".join(prefix), r.returncode, r.stdout.decode().strip()))
    fail("the full-disk test needs a private mount namespace to mount a small tmpfs in, and neither way "
         "works here:\n  " + "\n  ".join(tried) + "\nRun as root, or allow unprivileged user namespaces "
         "(sysctl kernel.unprivileged_userns_clone=1); unshare is in Debian's util-linux package.")


def cmd_full_disk(a):
    if not a.in_namespace:
        prefix = unshare_prefix()
        log("full disk: running in a private mount namespace (%s)" % " ".join(prefix))
        argv = prefix + [sys.executable] + sys.argv + ["--in-namespace"]
        sys.exit(subprocess.run(argv).returncode)
    c = Case(a)
    c.reference()
    disk = os.path.join(c.work, "disk")
    os.makedirs(disk, exist_ok=True)
    out = c.output_path(disk)

    # 1. The output does not fit: exit 3 naming the file, nothing left.
    size = (c.expected_bytes // 2) & ~4095
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%d" % size, "tmpfs", disk], check=True)
    try:
        r = c.run(out, "full disk")
        err = r.stderr.decode()
        what = "output on a %d-byte tmpfs (the output is %d bytes): exit %d" % (size, c.expected_bytes, r.returncode)
        if r.returncode != 3:
            fail("%s, expected 3\n%s%s" % (what, r.stdout.decode(), err))
        lines = err.strip().split("\n")
        if len(lines) != 1 or not c.error_line_ok(lines[0], out, "No space left on device"):
            fail("%s: stderr must be one error line naming the file written (under its final name, then its "
                 "temporary) and saying 'No space left on device':\n%s" % (what, err))
        c.expect_nothing(out, what)
        if os.listdir(disk):
            fail("%s: the disk is not empty: %s" % (what, os.listdir(disk)))
        log("%s: %s" % (what, lines[0]))

        # 2. Room for one output, but a dead writer's temporary fills the disk: the run removes it
        #    before writing (without that it would fail as above) and succeeds.
        size = (c.expected_bytes * 3 // 2 + (1 << 20)) & ~4095
        subprocess.run(["mount", "-o", "remount,size=%d" % size, disk], check=True)
        dead = subprocess.Popen(["true"])
        dead.wait()
        stale = os.path.join(disk, ".%s.tmp-%d-0-1f" % (os.path.basename(out), dead.pid))
        if c.format == "safetensors":
            os.makedirs(stale)
            fill(os.path.join(stale, "model.safetensors"))
        else:
            fill(stale)
        free = shutil.disk_usage(disk).free
        if free >= c.expected_bytes:
            fail("could not fill the %d-byte tmpfs (%d bytes free)" % (size, free))
        log("a dead writer's (pid %d) temporary fills the %d-byte tmpfs: %d bytes free"
            % (dead.pid, size, free))
        c.rerun(out, [os.path.basename(stale)], "a dead writer's temporary filling the disk")
    finally:
        subprocess.run(["umount", disk])
    log("ok: full disk")


def fill(path):
    """Writes zeros to `path` until the disk is full."""
    block = bytes(1 << 20)
    with open(path, "wb", buffering=0) as f:
        while True:
            try:
                f.write(block)
            except OSError:
                break
    with open(path, "ab", buffering=0) as f:  # the last partial megabyte
        try:
            while True:
                f.write(bytes(4096))
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["make-inputs", "kill", "fsize", "full-disk"])
    ap.add_argument("work", nargs="?")
    ap.add_argument("--work", dest="work_opt")
    ap.add_argument("--cli")
    ap.add_argument("--format", choices=["safetensors", "gguf"])
    ap.add_argument("--seed", type=int)
    ap.add_argument("--in-namespace", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    a.work = os.path.abspath(a.work_opt or a.work or ".")
    if a.command == "make-inputs":
        return cmd_make_inputs(a)
    if not a.cli or not a.format:
        ap.error("--cli and --format are required")
    {"kill": cmd_kill, "fsize": cmd_fsize, "full-disk": cmd_full_disk}[a.command](a)


if __name__ == "__main__":
    main()
