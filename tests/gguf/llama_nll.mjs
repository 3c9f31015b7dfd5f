// Copyright 2026 The mhaprune Authors. SPDX-License-Identifier: Apache-2.0
//
// The real llama.cpp (through node-llama-cpp's prebuilt CPU binary) as the judge of a GGUF file:
//   node llama_nll.mjs MODEL.gguf TEXT_FILE [--offset N] [--count N] [--chunks K]
// Loads MODEL on the CPU and evaluates K chunks of TEXT_FILE, chunk c being the bytes
// [offset + c*count, offset + (c+1)*count) as token ids (the tiny models are byte-level: token id =
// byte value), each chunk from an empty context (the tiny Qwen2 was trained on 128-byte
// sequences), and prints JSON:
//   {"model", "n_tokens", "logprob": [log p(token[t+1] | chunk tokens[0..t]), chunk after chunk],
//    "mean_nll": mean of -logprob}
// The probabilities come from LlamaContextSequence.controlledEvaluate with
// generateNext.probabilities at every position: with temperature 0 (greedy, node-llama-cpp's
// default) the addon takes the full vocabulary's raw logits and softmaxes them (float), so
// p(token) is the model's own next-token probability, no top-k/top-p applied.
// NODE_PATH-free: the package is found from NODE_LLAMA_CPP_DIR (the npm prefix with node_modules)
// or next to this script's working directory.

import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

function usage(msg) {
  process.stderr.write(`llama_nll.mjs: ${msg}\nusage: node llama_nll.mjs MODEL.gguf TEXT_FILE [--offset N] [--count N] [--chunks K]\n`);
  process.exit(2);
}

const args = process.argv.slice(2);
const pos = [];
let offset = 0;
let count = 128;
let chunks = 3;
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--offset") offset = Number(args[++i]);
  else if (args[i] === "--count") count = Number(args[++i]);
  else if (args[i] === "--chunks") chunks = Number(args[++i]);
  else pos.push(args[i]);
}
if (pos.length !== 2) usage("expected MODEL.gguf and TEXT_FILE");
if (!Number.isInteger(offset) || !Number.isInteger(count) || count < 2 || !Number.isInteger(chunks) || chunks < 1)
  usage("bad --offset/--count/--chunks");
const [modelPath, textPath] = pos;

const prefix = process.env.NODE_LLAMA_CPP_DIR || process.cwd();
let entry;
try {
  entry = createRequire(path.join(prefix, "package.json")).resolve("node-llama-cpp");
} catch (e) {
  process.stderr.write(`llama_nll.mjs: node-llama-cpp not found under ${prefix}/node_modules ` +
                       `(set NODE_LLAMA_CPP_DIR): ${e.message}\n`);
  process.exit(3);
}
const { getLlama, LlamaLogLevel } = await import(pathToFileURL(entry).href);

const text = fs.readFileSync(textPath);
const need = offset + chunks * count;
if (need > text.length) usage(`${textPath} has ${text.length} bytes, need ${need}`);

// gpu: false and build: "never": the prebuilt CPU binary or a clear failure, never a compile or a
// download at test time.
// llama.cpp's warnings and errors are kept and printed only when loading fails, so the reason (e.g.
// "tensor 'blk.0.attn_q.weight' has wrong shape") reaches the test log.
const logs = [];
const llama = await getLlama({ gpu: false, build: "never", logLevel: LlamaLogLevel.warn, maxThreads: 2,
                               logger: (level, message) => logs.push(`[${level}] ${message}`) });
let model;
try {
  model = await llama.loadModel({ modelPath, gpuLayers: 0 });
} catch (e) {
  process.stderr.write(`llama_nll.mjs: llama.cpp could not load ${modelPath}: ${e.message}\n${logs.join("\n")}\n`);
  process.exit(5);
}
const context = await model.createContext({ contextSize: Math.max(256, count + 16), batchSize: count,
                                            sequences: 1, threads: 2 });
const sequence = context.getSequence();
const logprob = [];
let nVocab = null;  // every position must give the full vocabulary's distribution
for (let c = 0; c < chunks; c++) {
  const tokens = Array.from(text.subarray(offset + c * count, offset + (c + 1) * count));
  await sequence.clearHistory();
  const input = tokens.map((t, i) => (i < tokens.length - 1 ? [t, { generateNext: { probabilities: true } }] : t));
  const res = await sequence.controlledEvaluate(input);
  for (let i = 0; i < tokens.length - 1; i++) {
    const probs = res[i]?.next?.probabilities;
    if (nVocab === null && probs) nVocab = probs.size;
    if (!probs || probs.size !== nVocab) {
      process.stderr.write(`llama_nll.mjs: no full probability list at chunk ${c} position ${i}\n`);
      process.exit(4);
    }
    const p = probs.get(tokens[i + 1]) ?? 0;
    logprob.push(Math.log(p));
  }
}
const meanNll = -logprob.reduce((a, b) => a + b, 0) / logprob.length;
process.stdout.write(JSON.stringify({ model: modelPath, n_tokens: chunks * count, chunks, n_vocab: nVocab,
                                      n_predictions: logprob.length,
                                      mean_nll: meanNll, logprob }) + "\n");
await context.dispose();
await model.dispose();
await llama.dispose();
