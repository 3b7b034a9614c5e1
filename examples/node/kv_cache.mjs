// Incremental decoding with WasmKVCache: a prompt appended at once, then one token at a time,
// in each storage precision; the memory each holds and how far its output is from fp32's.
//   node examples/node/kv_cache.mjs
import { WasmKVCache } from '../../js/index.js';

const heads = 8, headDim = 64, prompt = 4096, steps = 64;
const random = (length) => Float32Array.from({ length }, () => Math.random() * 2 - 1);
const K = random((prompt + steps) * heads * headDim), V = random((prompt + steps) * heads * headDim);
const queries = random(steps * heads * headDim);
const row = (a, t) => a.subarray(t * heads * headDim, (t + 1) * heads * headDim);

let fp32Outputs = null;
for (const precision of ['fp32', 'fp16', 'bf16']) {
  const cache = new WasmKVCache({ heads, headDim, precision });
  cache.append(K.subarray(0, prompt * heads * headDim), V.subarray(0, prompt * heads * headDim));
  const outputs = [];
  const t0 = performance.now();
  for (let t = 0; t < steps; ++t) {
    cache.append(row(K, prompt + t), row(V, prompt + t));   // the new token's key and value
    outputs.push(cache.attend(row(queries, t)));             // its query over every cached key
  }
  const ms = (performance.now() - t0) / steps;
  fp32Outputs ??= outputs;
  let err = 0, big = 0;
  outputs.forEach((out, t) => out.forEach((x, i) => {
    err = Math.max(err, Math.abs(x - fp32Outputs[t][i]));
    big = Math.max(big, Math.abs(fp32Outputs[t][i]));
  }));
  console.log(`${precision}: ${(cache.getMemoryUsage().cacheBytes / 2 ** 20).toFixed(1)} MiB cached, ` +
    `${ms.toFixed(2)} ms per token, max difference from fp32 ${(err / big).toExponential(2)} (relative)`);
  cache.dispose();
}
