// Leaks, on both WebAssembly variants: 10,000 forward calls over a mix of classes, each on
// an object created for it and disposed after it, leave the heap's bytes in use exactly
// where they were after a warm-up (the figure is printed). Objects that are never disposed
// are freed by the FinalizationRegistry once garbage-collected (checked in a child process
// run with --expose-gc).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import {
  WasmASAMEncoder, WasmASAMLayer, WasmAdaptivePrecisionAttention, WasmAdaptiveRankAttention, WasmCrossAttention,
  WasmDenseAttention, WasmFlashAttention, WasmHybridASAM, WasmKVCache, WasmLinearAttention, WasmMultiHeadAttention,
  WasmSparseAttention, createRuntime, lowRankAttention, memoryEfficientAttention,
} from '../../js/index.js';
import { freshSeed, makeRandom, randomF32 } from './helpers.mjs';

const CALLS = 10000;
const RUNTIMES = [
  { name: 'simd-threads', runtime: await createRuntime({ variant: 'simd-threads', numThreads: 2 }) },
  { name: 'simd', runtime: await createRuntime({ variant: 'simd' }) },
];

// One forward call per entry, on a fresh object that is disposed afterwards (shapes vary
// with the call's index so the allocator sees different sizes).
function workloads(random) {
  const heads = 2, dim = 8, e = heads * dim;
  const t = (n) => randomF32(random, n);
  const qkv = (seq) => [t(seq * heads * dim), t(seq * heads * dim), t(seq * heads * dim)];
  const once = (make, call) => (runtime, i) => {
    const object = make(runtime, i);
    try {
      return call(object, i);
    } finally {
      object.dispose();
    }
  };
  const ASAM = { dim: e, numHeads: heads, gateHiddenDim: 8, numClusters: 2, blockSize: 32, windowSize: 32, stride: 8 };
  return {
    flash: once((runtime) => new WasmFlashAttention({ heads, dim, runtime }), (o, i) => {
      const [q, k, v] = qkv(1 + (i % 9));
      const mask = new Uint8Array((1 + (i % 9)) ** 2).fill(1);
      return o.forwardExtended({ q, k, v, mask, returnLse: true, dropout: i % 2 ? 0.1 : 0 }).output;
    }),
    scores: once((runtime) => new WasmFlashAttention({ heads, dim, causal: true, runtime }), (o, i) => o.attentionScores(...qkv(2 + (i % 5)).slice(0, 2))),
    linear: once((runtime) => new WasmLinearAttention({ heads, dim, featureMap: 'dpfp', runtime }), (o, i) => o.forward(...qkv(3 + (i % 7)))),
    sparse: once((runtime) => new WasmSparseAttention({ heads, headDim: dim, pattern: 'local', windowSize: 32, blockSize: 32, runtime }),
      (o, i) => o.forward(...qkv(40 + (i % 30)))),
    kvCache: once((runtime, i) => new WasmKVCache({ heads, headDim: dim, precision: ['fp32', 'fp16', 'bf16'][i % 3], runtime }), (o, i) => {
      const [q, k, v] = qkv(4 + (i % 6));
      o.append(k, v);
      o.append(k.subarray(0, heads * dim), v.subarray(0, heads * dim));
      return o.attend(q.subarray(0, heads * dim));
    }),
    multiHead: once((runtime, i) => new WasmMultiHeadAttention({ modelDim: e, heads, seed: i, runtime }), (o, i) => {
      const x = t((2 + (i % 4)) * e);
      const y = o.forward(x, x, x);
      o.getAttentionWeights();
      o.loadWeights(o.saveWeights());
      return y;
    }),
    cross: once((runtime) => new WasmCrossAttention({ queryDim: e, keyDim: 6, heads, runtime }), (o, i) => o.forward(t(3 * e), t((1 + (i % 3)) * 6), t((1 + (i % 3)) * 6))),
    dense: once((runtime) => new WasmDenseAttention({ embedDim: e, numHeads: heads, dropout: 0.1, training: true, runtime }),
      (o) => o.forward(t(3 * e), t(4 * e), t(4 * e), { needWeights: true }).output),
    precision: once((runtime) => new WasmAdaptivePrecisionAttention({ embedDim: e, numHeads: heads, runtime }), (o) => {
      const x = t(5 * e);
      o.forward(x, x, x, { keepCache: true });
      return o.step(t(e), t(e), t(e)).output;
    }),
    rank: once((runtime) => new WasmAdaptiveRankAttention({ embedDim: e, numHeads: heads, runtime }), (o) => {
      o.getRankStatistics();
      return o.forward(t(6 * e), t(6 * e), t(6 * e));
    }),
    asamLayer: once((runtime) => new WasmASAMLayer({ ...ASAM, runtime }), (o) => o.forward(t(5 * e), { returnInfo: true }).output),
    encoder: once((runtime) => new WasmASAMEncoder({ ...ASAM, numLayers: 2, runtime }), (o) => o.forward(t(4 * e))),
    hybrid: once((runtime) => new WasmHybridASAM({ ...ASAM, localWindowSize: 4, runtime }), (o) => o.forward(t(6 * e), { returnInfo: true }).output),
    int8: once((runtime) => new WasmMultiHeadAttention({ modelDim: e, heads, runtime }), (o) => {
      o.quantizeWeights('int8');
      const x = t(3 * e);
      return o.forward(x, x, x);
    }),
    lowRank: (runtime, i) => lowRankAttention(...qkv(6 + (i % 4)), { heads, headDim: dim, landmarks: 2, runtime }),
    chunked: (runtime, i) => memoryEfficientAttention(...qkv(5 + (i % 4)), { heads, headDim: dim, chunkSize: 2, causal: true, runtime }),
  };
}

for (const { name, runtime } of RUNTIMES) {
  describe(`heap flatness on ${name}`, () => {
    test(`${CALLS} forward calls with creation and disposal leave the heap's bytes in use unchanged`, { timeout: 300000 }, () => {
      const seed = freshSeed();
      const work = Object.entries(workloads(makeRandom(seed)));
      const module = runtime.module;
      // Warm-up: the thread pool's scratch, the allocator's first chunks of each size.
      for (let i = 0; i < 20 * work.length; ++i) work[i % work.length][1](runtime, i);
      const before = module.heapUsed();
      const heapSizeBefore = module.heapU8().byteLength;
      const started = performance.now();
      const counts = {};
      for (let i = 0; i < CALLS; ++i) {
        const [label, call] = work[i % work.length];
        const out = call(runtime, i);
        assert.ok(out.length > 0 && Number.isFinite(out[0]), `${label} call ${i} gave ${out[0]}`);
        counts[label] = (counts[label] ?? 0) + 1;
      }
      const seconds = (performance.now() - started) / 1000;
      const after = module.heapUsed();
      const growth = after - before;
      console.log(`heap flatness on ${name}: ${CALLS} calls over ${work.length} kinds (${Object.keys(counts).join(', ')}), ` +
        `each on an object created and disposed, in ${seconds.toFixed(1)} s: bytes in use ${before} -> ${after} ` +
        `(growth ${growth} B, ${(growth / CALLS).toFixed(3)} B/call); heap size ${(heapSizeBefore / 2 ** 20).toFixed(0)} -> ` +
        `${(module.heapU8().byteLength / 2 ** 20).toFixed(0)} MiB; seed ${seed}`);
      assert.equal(growth, 0, `the heap's bytes in use grew by ${growth} over ${CALLS} calls (seed ${seed})`);
    });
  });
}

test('objects never disposed are freed by the FinalizationRegistry after garbage collection', { timeout: 120000 }, () => {
  const script = fileURLToPath(new URL('./data/finalization_child.mjs', import.meta.url));
  const output = execFileSync(process.execPath, ['--expose-gc', script], { encoding: 'utf8', timeout: 110000 });
  console.log(output.trim());
  const results = JSON.parse(output.trim().split('\n').at(-1));
  for (const r of results) {
    assert.ok(r.held > 1e6, `${r.variant}: the forgotten objects held only ${r.held} bytes`);
    assert.equal(r.left, 0, `${r.variant}: ${r.left} of ${r.held} bytes were not freed after garbage collection`);
  }
});
