// ASAM in Node: block-sparse attention per pattern against dense flash attention, then the
// ASAM layer with its adaptive gate and what it reports about each call.
//   node examples/node/asam.mjs
import { WasmASAMLayer, WasmFlashAttention, WasmSparseAttention, getRuntimeInfo } from '../../js/index.js';

const heads = 8, headDim = 64, n = 2048;
const random = (length) => Float32Array.from({ length }, () => Math.random() * 2 - 1);
const time = (fn) => {
  fn();  // warm-up
  const t0 = performance.now();
  const result = fn();
  return { ms: performance.now() - t0, result };
};

console.log(`runtime: ${getRuntimeInfo().variant}, ${getRuntimeInfo().threads} thread(s); n ${n}, ${heads} heads, d ${headDim}`);
const q = random(n * heads * headDim), k = random(n * heads * headDim), v = random(n * heads * headDim);
const flash = new WasmFlashAttention({ heads, dim: headDim });
const dense = time(() => flash.forward(q, k, v));
console.log(`dense flash      ${dense.ms.toFixed(1).padStart(7)} ms`);
flash.dispose();

const centroids = random(heads * 32 * headDim);
for (const pattern of ['local', 'strided', 'hierarchical', 'random', 'clustered']) {
  const sparse = new WasmSparseAttention({ heads, headDim, pattern });
  const { ms } = time(() => sparse.forward(q, k, v, { centroids }));
  const { sparseRatio, visitedBlocks, denseBlocks } = sparse.lastStats;
  console.log(`${pattern.padEnd(16)} ${ms.toFixed(1).padStart(7)} ms  ${(dense.ms / ms).toFixed(1).padStart(5)}x  ` +
    `skipped ${(100 * sparseRatio).toFixed(1)}% of the scores (${visitedBlocks} of ${denseBlocks} blocks visited)`);
  sparse.dispose();
}

// The layer: projections, the pattern the gate picks ('adaptive'), and the gate's routing.
const layer = new WasmASAMLayer({ dim: 512, numHeads: 8, patternType: 'adaptive', seed: 1 });
const x = random(2 * 1024 * 512);
const { ms, result } = time(() => layer.forward(x, { batch: 2, returnInfo: true }));
const { info } = result;
console.log(`\nASAMLayer (dim 512, 8 heads, batch 2, n 1024): ${ms.toFixed(1)} ms; patterns ${info.patterns.join(', ')}; ` +
  `heads mixing dense attention ${info.mixedHeads.reduce((a, b) => a + b, 0)} of ${info.mixedHeads.length}; ` +
  `sparseRatio ${info.sparseRatio.toFixed(3)}`);
console.log(`confidence per head: ${Array.from(info.confidence, (c) => c.toFixed(2)).join(' ')}`);
layer.dispose();
