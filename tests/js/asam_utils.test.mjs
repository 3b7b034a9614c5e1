// The ASAM utilities: computeAttentionSparsity on known masks, memoryEfficientAttention
// against float64 attention and one WasmFlashAttention call (odd sizes, chunks that do not
// divide the sequence, masks, causal, both WASM variants), measureAttentionEfficiency's
// numbers, and bad arguments.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  WasmFlashAttention, computeAttentionSparsity, createMask, createRuntime, measureAttentionEfficiency,
  memoryEfficientAttention,
} from '../../js/index.js';
import { assertClose, assertThrowsNamed, describeCase, freshSeed, makeRandom, randomF32 } from './helpers.mjs';
import { referenceFlash } from './reference.mjs';

const simdRuntime = await createRuntime({ variant: 'simd' });
const RUNTIMES = [
  { name: 'simd-threads', runtime: undefined },
  { name: 'simd', runtime: simdRuntime },
];

describe('computeAttentionSparsity', () => {
  test('boolean masks: all ones 0, all zeros 1, half 0.5', () => {
    assert.equal(computeAttentionSparsity(new Uint8Array(64).fill(1)), 0);
    assert.equal(computeAttentionSparsity(new Uint8Array(64)), 1);
    assert.equal(computeAttentionSparsity(Uint8Array.of(1, 0, 1, 0)), 0.5);
    assert.equal(computeAttentionSparsity(Uint8Array.of(0, 1, 1, 1, 1)), 0.2);
    // Any non-zero byte attends, as in the kernels.
    assert.equal(computeAttentionSparsity(Uint8Array.of(255, 2, 0, 0)), 0.5);
  });

  test('additive masks: only -Infinity blocks; finite values are biases', () => {
    assert.equal(computeAttentionSparsity(new Float32Array(9)), 0);
    assert.equal(computeAttentionSparsity(new Float32Array(9).fill(-Infinity)), 1);
    assert.equal(computeAttentionSparsity(Float32Array.of(0, -Infinity, -1e30, 3)), 0.25);
    // A causal n×n mask blocks n(n-1)/2 of n² pairs.
    for (const n of [1, 2, 7, 64]) {
      assert.equal(computeAttentionSparsity(createMask('causal', n)), (n * (n - 1)) / 2 / (n * n));
    }
    assert.equal(computeAttentionSparsity(createMask('padding', 4, [1, 3])), 0.5);
  });

  test('bad masks throw naming mask', () => {
    assertThrowsNamed(() => computeAttentionSparsity(new Uint8Array(0)), RangeError, 'mask');
    assertThrowsNamed(() => computeAttentionSparsity(new Float32Array(0)), RangeError, 'mask');
    for (const bad of [undefined, null, [1, 0], new Float64Array(4), new Uint8ClampedArray(4), new Int32Array(4), 'mask']) {
      assertThrowsNamed(() => computeAttentionSparsity(bad), TypeError, 'mask', describeCase({ bad }));
    }
  });
});

function problem(random, { seqQ, seqK = seqQ, heads, headDim, valueDim = headDim }) {
  return {
    q: randomF32(random, seqQ * heads * headDim),
    k: randomF32(random, seqK * heads * headDim),
    v: randomF32(random, seqK * heads * valueDim),
  };
}

// A random boolean (or additive) mask with about a quarter blocked and some rows fully blocked.
function randomMask(random, length, rowLength, additive) {
  const mask = additive ? new Float32Array(length) : new Uint8Array(length).fill(1);
  for (let i = 0; i < length; ++i) {
    if (random() < 0.25) mask[i] = additive ? -Infinity : 0;
    else if (additive) mask[i] = random() - 0.5;
  }
  const emptyRow = Math.floor(random() * (length / rowLength));
  mask.fill(additive ? -Infinity : 0, emptyRow * rowLength, (emptyRow + 1) * rowLength);
  return mask;
}

describe('memoryEfficientAttention equals one flash call and float64 attention', () => {
  const CASES = [
    { seqQ: 1, heads: 1, headDim: 4, chunkSize: 1 },
    { seqQ: 3, heads: 2, headDim: 5, chunkSize: 2 },
    { seqQ: 17, heads: 3, headDim: 7, chunkSize: 5 },
    { seqQ: 17, heads: 3, headDim: 7, chunkSize: 5, causal: true },
    { seqQ: 17, heads: 2, headDim: 8, chunkSize: 4, mask: 'boolean' },
    { seqQ: 17, heads: 2, headDim: 8, chunkSize: 6, mask: 'additive', causal: true },
    { seqQ: 17, heads: 3, headDim: 4, chunkSize: 5, mask: 'per-head', causal: true },
    { seqQ: 17, heads: 2, headDim: 4, chunkSize: 100 },
    { seqQ: 9, seqK: 13, heads: 2, headDim: 3, valueDim: 5, chunkSize: 4, causal: true, mask: 'boolean' },
    { seqQ: 13, seqK: 6, heads: 2, headDim: 3, chunkSize: 4, causal: true },
    { seqQ: 1037, heads: 2, headDim: 16, chunkSize: 300 },
    { seqQ: 1037, heads: 2, headDim: 16, chunkSize: 256, causal: true, mask: 'additive' },
  ];
  for (const { name, runtime } of RUNTIMES) {
    for (const c of CASES) {
      test(`${name}: ${describeCase(c)}`, () => {
        const seed = freshSeed();
        const random = makeRandom(seed);
        const { seqQ, seqK = seqQ, heads, headDim, valueDim = headDim, chunkSize, causal = false } = c;
        const { q, k, v } = problem(random, { seqQ, seqK, heads, headDim, valueDim });
        let mask, maskLayout = 'qk';
        if (c.mask === 'boolean') mask = randomMask(random, seqQ * seqK, seqK, false);
        if (c.mask === 'additive') mask = randomMask(random, seqQ * seqK, seqK, true);
        if (c.mask === 'per-head') {
          mask = randomMask(random, heads * seqQ * seqK, seqK, true);
          maskLayout = 'hqk';
        }
        const context = `${describeCase(c)}, seed ${seed}`;
        const out = memoryEfficientAttention(q, k, v, { seqLen: seqQ, heads, headDim, chunkSize, mask, causal, runtime });
        assert.equal(out.length, seqQ * heads * valueDim);
        assert.ok(out.every(Number.isFinite), `non-finite output (${context})`);
        const ref = referenceFlash({ q, k, v, headsQ: heads, headDim, valueDim, causal, mask, maskLayout }).output;
        assertClose(out, ref, context);
        const flash = new WasmFlashAttention({ heads, dim: headDim, runtime });
        const once = flash.forwardExtended({ q, k, v, valueDim, causal, mask, maskLayout }).output;
        flash.dispose();
        assertClose(out, once, `against one flash call: ${context}`, 1e-6);
      });
    }
  }

  test('the default chunk (1024) splits 1100 rows; the scale option is passed through', () => {
    const random = makeRandom(freshSeed());
    const heads = 1, headDim = 8, seqQ = 1100;
    const { q, k, v } = problem(random, { seqQ, heads, headDim });
    const out = memoryEfficientAttention(q, k, v, { heads, headDim, causal: true, scale: 0.3 });
    assertClose(out, referenceFlash({ q, k, v, headsQ: heads, headDim, causal: true, scale: 0.3 }).output, 'default chunk');
  });

  test('the heap holds one chunk, not the whole problem, and nothing stays allocated', () => {
    // A fresh runtime, so the heap's growth is this call's alone.
    return createRuntime({ variant: 'simd' }).then((runtime) => {
      const heads = 1, headDim = 16, seqQ = 4096;
      const random = makeRandom(freshSeed());
      const { q, k, v } = problem(random, { seqQ, heads, headDim });
      const mask = new Float32Array(seqQ * seqQ);  // 64 MiB: must never be in the heap whole
      const probe = new WasmFlashAttention({ heads, dim: headDim, runtime });
      const before = probe.getMemoryUsage();
      memoryEfficientAttention(q, k, v, { heads, headDim, chunkSize: 256, mask, runtime });
      const after = probe.getMemoryUsage();
      probe.dispose();
      assert.equal(after.heapUsed, before.heapUsed, 'allocations left behind');
      assert.ok(after.heapTotal - before.heapTotal < mask.byteLength / 4,
        `heap grew by ${after.heapTotal - before.heapTotal} bytes for a ${mask.byteLength}-byte mask`);
    });
  });
});

describe('measureAttentionEfficiency', () => {
  test('calls attnFn numWarmup + numRuns times and reports time, heap and the given flops', () => {
    const heads = 2, headDim = 16, seq = 128;
    const random = makeRandom(freshSeed());
    const { q, k, v } = problem(random, { seqQ: seq, heads, headDim });
    const flash = new WasmFlashAttention({ heads, dim: headDim });
    let calls = 0;
    const args = [];
    const fn = (a, b, c) => {
      ++calls;
      args.push([a, b, c]);
      return flash.forward(a, b, c);
    };
    const flops = 4 * seq * seq * headDim * heads;
    const r = measureAttentionEfficiency(fn, q, k, v, { numWarmup: 2, numRuns: 5, flops });
    assert.equal(calls, 7);
    assert.ok(args.every(([a, b, c]) => a === q && b === k && c === v));
    assert.deepEqual(Object.keys(r).sort(), ['avgTimeMs', 'flops', 'peakMemoryMb']);
    assert.ok(r.avgTimeMs > 0 && Number.isFinite(r.avgTimeMs), `avgTimeMs ${r.avgTimeMs}`);
    assert.ok(r.peakMemoryMb > 0, `peakMemoryMb ${r.peakMemoryMb}`);
    assert.equal(r.peakMemoryMb, flash.getMemoryUsage().heapTotal / 2 ** 20);
    assert.equal(r.flops, flops);
    flash.dispose();
  });

  test('defaults: 3 warm-up and 10 timed calls; flops null unless given; the runtime option picks the heap', () => {
    let calls = 0;
    const r = measureAttentionEfficiency(() => { ++calls; }, null, null, null);
    assert.equal(calls, 13);
    assert.equal(r.flops, null);
    assert.ok(r.avgTimeMs >= 0);
    const s = measureAttentionEfficiency(() => {}, 1, 2, 3, { numWarmup: 0, numRuns: 1, flops: null, runtime: simdRuntime });
    assert.equal(s.flops, null);
    const probe = new WasmFlashAttention({ heads: 1, dim: 1, runtime: simdRuntime });
    assert.equal(s.peakMemoryMb, probe.getMemoryUsage().heapTotal / 2 ** 20);
    probe.dispose();
  });

  test('bad arguments throw naming the parameter; errors of attnFn propagate', () => {
    const fn = () => {};
    assertThrowsNamed(() => measureAttentionEfficiency(undefined, 1, 2, 3), TypeError, 'attnFn');
    assertThrowsNamed(() => measureAttentionEfficiency('attn', 1, 2, 3), TypeError, 'attnFn');
    assertThrowsNamed(() => measureAttentionEfficiency(async () => 1, 1, 2, 3), TypeError, 'attnFn');
    assertThrowsNamed(() => measureAttentionEfficiency(fn, 1, 2, 3, 5), TypeError, 'options');
    assertThrowsNamed(() => measureAttentionEfficiency(fn, 1, 2, 3, { numWarmup: -1 }), RangeError, 'numWarmup');
    assertThrowsNamed(() => measureAttentionEfficiency(fn, 1, 2, 3, { numWarmup: '3' }), TypeError, 'numWarmup');
    assertThrowsNamed(() => measureAttentionEfficiency(fn, 1, 2, 3, { numRuns: 0 }), RangeError, 'numRuns');
    assertThrowsNamed(() => measureAttentionEfficiency(fn, 1, 2, 3, { numRuns: 2.5 }), RangeError, 'numRuns');
    assertThrowsNamed(() => measureAttentionEfficiency(fn, 1, 2, 3, { flops: -1 }), RangeError, 'flops');
    assertThrowsNamed(() => measureAttentionEfficiency(fn, 1, 2, 3, { flops: NaN }), RangeError, 'flops');
    assertThrowsNamed(() => measureAttentionEfficiency(fn, 1, 2, 3, { flops: '10' }), TypeError, 'flops');
    assertThrowsNamed(() => measureAttentionEfficiency(fn, 1, 2, 3, { runtime: {} }), TypeError, 'runtime');
    assert.throws(() => measureAttentionEfficiency(() => { throw new Error('boom'); }, 1, 2, 3), /boom/);
  });
});

describe('memoryEfficientAttention: bad arguments', () => {
  const heads = 2, headDim = 3, seq = 5;
  const q = new Float32Array(seq * heads * headDim), k = q.slice(), v = q.slice();
  const base = { heads, headDim };
  const call = (opts, Q = q, K = k, V = v) => () => memoryEfficientAttention(Q, K, V, opts);

  test('tensors', () => {
    assertThrowsNamed(call(base, [1, 2]), TypeError, 'Q');
    assertThrowsNamed(call(base, q, new Float64Array(30)), TypeError, 'K');
    assertThrowsNamed(call(base, q, k, null), TypeError, 'V');
    assertThrowsNamed(call(base, new Float32Array(7)), RangeError, 'Q');
    assertThrowsNamed(call(base, new Float32Array(0)), RangeError, 'Q');
    assertThrowsNamed(call(base, q, new Float32Array(8)), RangeError, 'K');
    assertThrowsNamed(call(base, q, k, new Float32Array(7)), RangeError, 'V');
  });

  test('options', () => {
    assertThrowsNamed(call(undefined), TypeError, 'options');
    assertThrowsNamed(call(null), TypeError, 'options');
    assertThrowsNamed(call({ headDim }), TypeError, 'heads');
    assertThrowsNamed(call({ heads }), TypeError, 'headDim');
    assertThrowsNamed(call({ ...base, heads: 0 }), RangeError, 'heads');
    assertThrowsNamed(call({ ...base, headDim: 1.5 }), RangeError, 'headDim');
    assertThrowsNamed(call({ ...base, chunkSize: 0 }), RangeError, 'chunkSize');
    assertThrowsNamed(call({ ...base, chunkSize: '64' }), TypeError, 'chunkSize');
    assertThrowsNamed(call({ ...base, seqLen: 4 }), RangeError, 'seqLen');
    assertThrowsNamed(call({ ...base, seqLen: -5 }), RangeError, 'seqLen');
    assertThrowsNamed(call({ ...base, causal: 'top-left' }), TypeError, 'causal');
    assertThrowsNamed(call({ ...base, scale: Infinity }), RangeError, 'scale');
    assertThrowsNamed(call({ ...base, runtime: 'simd' }), TypeError, 'runtime');
    assertThrowsNamed(call({ ...base, mask: new Float64Array(25) }), TypeError, 'mask');
    assertThrowsNamed(call({ ...base, mask: [0, 1] }), TypeError, 'mask');
    assertThrowsNamed(call({ ...base, mask: new Uint8Array(24) }), RangeError, 'mask');
    assertThrowsNamed(call({ ...base, mask: new Float32Array(3 * 25) }), RangeError, 'mask');
  });

  test('the module keeps working after errors, and mask null means none', () => {
    const random = makeRandom(freshSeed());
    const p = problem(random, { seqQ: seq, heads, headDim });
    const out = memoryEfficientAttention(p.q, p.k, p.v, { ...base, chunkSize: 2, mask: null });
    assertClose(out, referenceFlash({ q: p.q, k: p.k, v: p.v, headsQ: heads, headDim }).output, 'after errors');
  });
});
