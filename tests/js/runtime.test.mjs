// init, runtimes, variants, threads and the feature probes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import * as attnkit from '../../js/index.js';
import init, {
  WasmFlashAttention, checkSIMDSupport, checkThreadSupport, createMask, createRuntime, getRuntimeInfo, setNumThreads,
} from '../../js/index.js';
import { assertClose, freshSeed, makeRandom, randomF32 } from './helpers.mjs';
import { referenceFlash } from './reference.mjs';

const SIMD_WASM = new URL('../../dist/wasm/attnkit-simd.wasm', import.meta.url);

function smallProblem() {
  const seed = freshSeed();
  const random = makeRandom(seed);
  const heads = 2, dim = 5, seq = 33;
  const Q = randomF32(random, seq * heads * dim), K = randomF32(random, seq * heads * dim), V = randomF32(random, seq * heads * dim);
  return { seed, heads, dim, Q, K, V, ref: referenceFlash({ q: Q, k: K, v: V, headsQ: heads, headDim: dim, causal: true }).output };
}

test('the module exports exactly the documented API', () => {
  assert.deepEqual(Object.keys(attnkit).sort(), [
    'WasmASAMEncoder', 'WasmASAMLayer', 'WasmAdaptivePrecisionAttention', 'WasmAdaptiveRankAttention', 'WasmCrossAttention', 'WasmDenseAttention', 'WasmFlashAttention', 'WasmHybridASAM',
    'WasmKVCache', 'WasmLinearAttention', 'WasmMultiHeadAttention', 'WasmSparseAttention', 'checkSIMDSupport',
    'checkThreadSupport', 'computeAttentionSparsity', 'createMask', 'createRuntime', 'default', 'getRuntimeInfo', 'init',
    'lowRankAttention', 'measureAttentionEfficiency', 'memoryEfficientAttention', 'quantizeASAMModel', 'setNumThreads',
    'AttentionWorker', 'transfer',
  ].sort());
  assert.equal(attnkit.default, attnkit.init);
  assert.equal(init, attnkit.init);
  // types/index.d.ts declares exactly these values (types aside).
  const dts = readFileSync(new URL('../../types/index.d.ts', import.meta.url), 'utf8');
  const declared = [...dts.matchAll(/^export (?:declare )?(?:function|class|const) (\w+)/gm)].map((m) => m[1]);
  if (/^export default \w+;/m.test(dts)) declared.push('default');
  assert.deepEqual([...new Set(declared)].sort(), Object.keys(attnkit).sort());
  for (const name of ['WasmFlashAttention', 'AttnRuntime', 'FlashAttentionOptions', 'BenchmarkResult', 'MemoryInfo',
    'FlashInputs', 'FlashResult', 'RuntimeInfo', 'InitOptions', 'MaskLayout', 'CausalMode', 'AttentionMask',
    'WasmLinearAttention', 'LinearAttentionOptions', 'LinearInputs', 'FeatureMapName', 'WasmMultiHeadAttention',
    'WasmCrossAttention', 'MultiHeadAttentionOptions', 'CrossAttentionOptions', 'MultiHeadInputs',
    'MultiHeadNamedWeights', 'WasmSparseAttention', 'SparseAttentionOptions', 'SparseForwardOptions', 'SparseMaskOptions',
    'SparseStats', 'SparsePatternName', 'MemoryEfficientAttentionOptions', 'AttentionEfficiencyOptions', 'AttentionEfficiency',
    'WasmASAMLayer', 'WasmASAMEncoder', 'ASAMLayerOptions', 'ASAMEncoderOptions', 'ASAMForwardOptions', 'ASAMInfo',
    'ASAMPatternType', 'WasmHybridASAM', 'HybridASAMOptions', 'HybridASAMInfo', 'WasmKVCache', 'KVCacheOptions',
    'KVCachePrecision', 'WasmDenseAttention', 'DenseAttentionOptions', 'DenseAttentionForwardOptions', 'DenseMaskLayout',
    'WasmAdaptivePrecisionAttention', 'AdaptivePrecisionOptions', 'AdaptivePrecisionForwardOptions', 'PrecisionDecision',
    'PrecisionStatistics', 'PrecisionChoice', 'WasmAdaptiveRankAttention', 'AdaptiveRankAttentionOptions',
    'RankEstimationMethod']) {
    assert.match(dts, new RegExp(`\\b(?:class|interface|type) ${name}\\b`), `types/index.d.ts lacks ${name}`);
  }
});

test('CommonJS entry: require(js/index.cjs).load() resolves to the same module namespace', async () => {
  const require = createRequire(import.meta.url);
  const cjs = require('../../js/index.cjs');
  assert.deepEqual(Object.keys(cjs), ['load']);
  const api = await cjs.load();
  assert.equal(api, attnkit, 'load() gave a different module instance');
  assert.equal(await cjs.load(), api);
  // types/index.d.cts declares exactly what the CommonJS entry exports.
  const dcts = readFileSync(new URL('../../types/index.d.cts', import.meta.url), 'utf8');
  assert.deepEqual([...dcts.matchAll(/^export (?:declare )?function (\w+)/gm)].map((m) => m[1]), Object.keys(cjs));
});

test('init() resolves to undefined, is idempotent, and Node needed no explicit call', async () => {
  // The import already initialised the default runtime.
  assert.equal(getRuntimeInfo().simd, true);
  assert.equal(await init(), undefined);
  assert.equal(await attnkit.init(), undefined);
  const p = init();
  assert.ok(p instanceof Promise);
  await p;
});

test('feature probes: SIMD128 and threads are available in Node 20', () => {
  assert.equal(checkSIMDSupport(), true);
  assert.equal(checkThreadSupport(), true);
});

test('getRuntimeInfo describes the default runtime: simd-threads with every core', () => {
  const info = getRuntimeInfo();
  assert.deepEqual(Object.keys(info).sort(), ['maxThreads', 'reason', 'simd', 'simdBackend', 'threads', 'variant']);
  assert.equal(info.variant, 'simd-threads');
  assert.equal(info.simd, true);
  assert.equal(info.simdBackend, 'wasm-simd128');
  assert.equal(info.maxThreads, Math.min(availableParallelism(), 64));
  assert.equal(info.threads, info.maxThreads);
  assert.match(info.reason, /thread/);
  // A fresh object each time, not live state.
  getRuntimeInfo().threads = -1;
  assert.equal(getRuntimeInfo().threads, info.threads);
});

test('setNumThreads changes the thread count; results stay correct at every count', () => {
  const { seed, heads, dim, Q, K, V, ref } = smallProblem();
  const { maxThreads } = getRuntimeInfo();
  const attn = new WasmFlashAttention({ heads, dim, causal: true });
  const outputs = [];
  for (let n = 1; n <= maxThreads; ++n) {
    setNumThreads(n);
    assert.equal(getRuntimeInfo().threads, n);
    const out = attn.forward(Q, K, V);
    assertClose(out, ref, `threads ${n}, seed ${seed}`);
    outputs.push(out);
  }
  setNumThreads(maxThreads);
  for (const out of outputs) assert.deepEqual(out, outputs[0], 'thread count changed the result');
  attn.dispose();
});

test("createRuntime({ variant: 'simd' }) and 'auto' with one thread give the single-threaded build", async () => {
  const { seed, heads, dim, Q, K, V, ref } = smallProblem();
  for (const options of [{ variant: 'simd' }, { numThreads: 1 }, { variant: 'auto', numThreads: 1 }, { variant: 'simd', numThreads: 8 }]) {
    const rt = await createRuntime(options);
    const info = rt.info();
    assert.equal(info.variant, 'simd', JSON.stringify(options));
    assert.equal(info.threads, 1);
    assert.equal(info.maxThreads, 1);
    assert.equal(rt.variant, 'simd');
    assert.equal(rt.threads, 1);
    assert.equal(typeof rt.reason, 'string');
    rt.setNumThreads(1);
    assertClose(new WasmFlashAttention({ heads, dim, causal: true, runtime: rt }).forward(Q, K, V), ref, `${JSON.stringify(options)}, seed ${seed}`);
  }
});

test('createRuntime with a wasmUrl as a path, a file: URL, or a bare URL argument', async () => {
  const { seed, heads, dim, Q, K, V, ref } = smallProblem();
  const runtimes = [
    await createRuntime({ variant: 'simd', wasmUrl: fileURLToPath(SIMD_WASM) }),
    await createRuntime({ variant: 'simd', wasmUrl: SIMD_WASM }),
    await createRuntime({ variant: 'simd', wasmUrl: SIMD_WASM.href }),
  ];
  for (const rt of runtimes) {
    assertClose(new WasmFlashAttention({ heads, dim, causal: true, runtime: rt }).forward(Q, K, V), ref, `seed ${seed}`);
  }
  // createRuntime(url) is createRuntime({ wasmUrl: url }) with the automatic variant.
  const threadsWasm = new URL('../../dist/wasm/attnkit-simd-threads.wasm', import.meta.url);
  const auto = await createRuntime(threadsWasm);
  assert.equal(auto.variant, getRuntimeInfo().variant);
});

test('a second threaded runtime with its own thread count, independent of the default one', async () => {
  const { seed, heads, dim, Q, K, V, ref } = smallProblem();
  const rt = await createRuntime({ variant: 'simd-threads', numThreads: 3 });
  assert.deepEqual({ ...rt.info(), reason: undefined }, {
    variant: 'simd-threads', simd: true, simdBackend: 'wasm-simd128', threads: 3, maxThreads: 3, reason: undefined,
  });
  const before = getRuntimeInfo().threads;
  rt.setNumThreads(2);
  assert.equal(rt.threads, 2);
  assert.equal(getRuntimeInfo().threads, before, 'setting threads on one runtime changed another');
  const attn = new WasmFlashAttention({ heads, dim, causal: true, runtime: rt });
  assertClose(attn.forward(Q, K, V), ref, `seed ${seed}`);
  assert.throws(() => rt.setNumThreads(4), RangeError);
  assert.equal(attn.benchmark(8, { minTimeMs: 0, minRuns: 1 }).threads, 2);
});

test("createRuntime({ variant: 'simd-threads', numThreads: 1 }) resolves", async () => {
    let timer;
    const timeout = new Promise((_, reject) => { timer = setTimeout(() => reject(new Error('not resolved after 3 s')), 3000); });
    try {
      const rt = await Promise.race([createRuntime({ variant: 'simd-threads', numThreads: 1 }), timeout]);
      assert.equal(rt.threads, 1);
    } finally {
      clearTimeout(timer);
    }
  });

test('createMask builds the documented masks', () => {
  const I = -Infinity;
  assert.deepEqual(createMask('causal', 1), Float32Array.of(0));
  assert.deepEqual(createMask('causal', 4), Float32Array.of(
    0, I, I, I,
    0, 0, I, I,
    0, 0, 0, I,
    0, 0, 0, 0));
  assert.deepEqual(createMask('padding', 5, [1, 3]), Float32Array.of(
    0, I, 0, I, 0,
    0, I, 0, I, 0,
    0, I, 0, I, 0,
    0, I, 0, I, 0,
    0, I, 0, I, 0));
  assert.deepEqual(createMask('padding', 3), new Float32Array(9));
  assert.deepEqual(createMask('padding', 3, []), new Float32Array(9));
  assert.deepEqual(createMask('padding', 3, Int32Array.of(2, 2)), Float32Array.of(0, 0, I, 0, 0, I, 0, 0, I));
  // block: positions are where each block after the first starts.
  assert.deepEqual(createMask('block', 6, [2, 4]), Float32Array.of(
    0, 0, I, I, I, I,
    0, 0, I, I, I, I,
    I, I, 0, 0, I, I,
    I, I, 0, 0, I, I,
    I, I, I, I, 0, 0,
    I, I, I, I, 0, 0));
  assert.deepEqual(createMask('block', 4, [1]), Float32Array.of(
    0, I, I, I,
    I, 0, 0, 0,
    I, 0, 0, 0,
    I, 0, 0, 0));
  assert.deepEqual(createMask('block', 3), new Float32Array(9));
  assert.deepEqual(createMask('block', 3, [0]), new Float32Array(9));
  for (const m of [createMask('causal', 3), createMask('padding', 3, [0]), createMask('block', 3, [1])]) {
    assert.ok(m instanceof Float32Array);
    assert.equal(m.length, 9);
  }
  // Every value is exactly 0 or -Infinity (additive masks, not booleans).
  const big = createMask('block', 37, [5, 6, 30]);
  assert.ok(big.every((x) => x === 0 || x === -Infinity));
});
