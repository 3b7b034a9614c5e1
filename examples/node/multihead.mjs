// Multi-head self attention and cross attention in Node, with weights saved and reloaded.
//   node examples/node/multihead.mjs
import { WasmCrossAttention, WasmMultiHeadAttention, createMask } from '../../js/index.js';

const random = (length) => Float32Array.from({ length }, () => Math.random() * 2 - 1);

// Self attention over a causal sequence: [seqLen][modelDim] in, [seqLen][modelDim] out.
const modelDim = 512, heads = 8, seqLen = 1024;
const mha = new WasmMultiHeadAttention({ modelDim, heads, seed: 42 });
const x = random(seqLen * modelDim);
let t0 = performance.now();
const y = mha.forward(x, x, x, createMask('causal', seqLen));
console.log(`self attention: ${seqLen} x ${modelDim}, ${heads} heads, ${(performance.now() - t0).toFixed(1)} ms, ` +
  `${mha.getMemoryUsage().paramCount} weights, out[0] = ${y[0].toFixed(5)}`);

// The weights of the last call, recomputed on demand: [heads][seqLen][seqLen].
const w = mha.getAttentionWeights();
let rowSum = 0;
for (let j = 0; j < seqLen; ++j) rowSum += w[5 * seqLen + j];
console.log(`attention weights of head 0, row 5 sum to ${rowSum.toFixed(6)}`);

// Save, reload into a fresh object, same output.
const bytes = mha.saveWeights();
const copy = new WasmMultiHeadAttention({ modelDim, heads, seed: 7 });
copy.loadWeights(bytes);
const same = copy.forward(x, x, x, createMask('causal', seqLen)).every((v, i) => v === y[i]);
console.log(`saved ${bytes.length} bytes; reloaded copy gives the same output: ${same}`);
mha.dispose();
copy.dispose();

// Cross attention: 64 queries of width 256 over 300 keys/values of width 128.
const cross = new WasmCrossAttention({ queryDim: 256, keyDim: 128, heads: 4 });
t0 = performance.now();
const z = cross.forward(random(64 * 256), random(300 * 128), random(300 * 128));
console.log(`cross attention: 64 x 256 over 300 x 128, ${(performance.now() - t0).toFixed(1)} ms, out length ${z.length}`);
cross.dispose();
