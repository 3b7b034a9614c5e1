// WasmSparseAttention against float64 dense attention (JS, O(n²)) under the pattern's own
// boolean mask from getPatternMask, on both WASM variants: every pattern, odd sizes across
// the blocks, batch, a value width of its own; the statistics the kernel reports; results
// written into a caller's array (out); bad input; the heap after calls; dispose.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WasmSparseAttention, createRuntime } from '../../js/index.js';
import { assertClose, assertThrowsNamed, freshSeed, makeRandom, randomF32 } from './helpers.mjs';

const simdRuntime = await createRuntime({ variant: 'simd' });
const RUNTIMES = [
  { name: 'simd-threads', runtime: undefined },
  { name: 'simd', runtime: simdRuntime },
];
const PATTERNS = ['local', 'strided', 'hierarchical', 'random', 'clustered'];
// Small windows, so that sequences of a few blocks already skip some.
const SMALL = { windowSize: 12, stride: 6, scales: [2, 4, 8], seed: 7, numClusters: 3 };

// q, k [batch][n][heads][dim], v [batch][n][heads][dv], mask [batch][heads][n][n] ->
// Float64Array [batch][n][heads][dv]; a row that attends nothing is zero.
function referenceMasked({ q, k, v, mask, batch, n, heads, dim, dv, scale }) {
  const out = new Float64Array(batch * n * heads * dv);
  const at = (b, i, h, width) => ((b * n + i) * heads + h) * width;
  for (let b = 0; b < batch; ++b) {
    for (let h = 0; h < heads; ++h) {
      for (let i = 0; i < n; ++i) {
        const row = ((b * heads + h) * n + i) * n;
        const keys = [], scores = [];
        for (let j = 0; j < n; ++j) {
          if (!mask[row + j]) continue;
          let s = 0;
          for (let c = 0; c < dim; ++c) s += q[at(b, i, h, dim) + c] * k[at(b, j, h, dim) + c];
          keys.push(j);
          scores.push(s * scale);
        }
        if (keys.length === 0) continue;
        const m = Math.max(...scores);
        const e = scores.map((s) => Math.exp(s - m));
        const z = e.reduce((x, y) => x + y, 0);
        for (let t = 0; t < keys.length; ++t) {
          for (let c = 0; c < dv; ++c) out[at(b, i, h, dv) + c] += (e[t] / z) * v[at(b, keys[t], h, dv) + c];
        }
      }
    }
  }
  return out;
}

function checkStats(stats, { batch, heads, n, blockSize }, mask, context) {
  const blocks = Math.ceil(n / blockSize);
  assert.equal(stats.denseScores, batch * heads * n * n, context);
  assert.equal(stats.denseBlocks, batch * heads * blocks * blocks, context);
  assert.equal(stats.sparseRatio, 1 - stats.computedScores / stats.denseScores, context);
  assert.ok(Number.isInteger(stats.visitedBlocks) && stats.visitedBlocks >= 0, context);
  // A clustered mask may attend nothing at all (no key shares a query's cluster): then
  // nothing is computed and the ratio is 1.
  const attends = mask.includes(1);
  assert.equal(stats.computedScores > 0, attends, `scores computed iff the mask attends (${context})`);
  assert.ok(attends ? stats.sparseRatio < 1 : stats.sparseRatio === 1, `sparseRatio ${stats.sparseRatio} (${context})`);
  assert.ok(Object.isFrozen(stats), context);
}

for (const { name, runtime } of RUNTIMES) {
  describe(`WasmSparseAttention (${name})`, () => {
    for (const pattern of PATTERNS) {
      test(`${pattern}: equals float64 dense attention under its own mask`, () => {
        const random = makeRandom(freshSeed());
        for (const [batch, n, heads, dim, dv, blockSize, small] of [
          [1, 1, 1, 8, 8, 32, true], [1, 3, 2, 5, 7, 32, true], [2, 17, 2, 16, 16, 64, true],
          [1, 130, 3, 8, 12, 32, true], [2, 131, 2, 16, 9, 64, true], [1, 301, 2, 32, 16, 64, true],
          [1, 200, 2, 16, 16, 64, false],
        ]) {
          const options = { heads, headDim: dim, pattern, blockSize, runtime, ...(small ? SMALL : {}) };
          const attn = new WasmSparseAttention(options);
          const q = randomF32(random, batch * n * heads * dim), k = randomF32(random, q.length);
          const v = randomF32(random, batch * n * heads * dv);
          const centroids = randomF32(random, heads * attn.numClusters * dim);
          const context = `${pattern} b${batch} n${n} h${heads} d${dim} dv${dv} block${blockSize} ${small ? 'small' : 'defaults'}`;
          const got = attn.forward(q, k, v, { batch, centroids });
          const mask = attn.getPatternMask(n, { batch, Q: q, K: k, centroids });
          assert.equal(mask.length, batch * heads * n * n);
          assert.ok(mask.every((x) => x === 0 || x === 1), context);
          assertClose(got, referenceMasked({ q, k, v, mask, batch, n, heads, dim, dv, scale: 1 / Math.sqrt(dim) }), context);
          checkStats(attn.lastStats, { batch, heads, n, blockSize }, mask, context);
          attn.dispose();
        }
      });
    }

    test('sparse patterns skip work: local at n = 512, block 64, window 128', () => {
      const random = makeRandom(freshSeed());
      const [n, heads, dim] = [512, 2, 16];
      const attn = new WasmSparseAttention({ heads, headDim: dim, pattern: 'local', windowSize: 128, blockSize: 64, runtime });
      assert.equal(attn.lastStats, null);
      const q = randomF32(random, n * heads * dim), k = randomF32(random, q.length), v = randomF32(random, q.length);
      const got = attn.forward(q, k, v);
      const mask = attn.getPatternMask(n);
      assertClose(got, referenceMasked({ q, k, v, mask, batch: 1, n, heads, dim, dv: dim, scale: attn.scale }), 'local 512');
      const stats = attn.lastStats;
      checkStats(stats, { batch: 1, heads, n, blockSize: 64 }, mask, 'local 512');
      assert.ok(stats.sparseRatio > 0.5, `sparseRatio ${stats.sparseRatio} > 0.5`);
      assert.ok(stats.visitedBlocks < stats.denseBlocks);
      // The seed's defaults (hierarchical, window 128, scales 4/16/64) on a longer sequence.
      const hier = new WasmSparseAttention({ heads: 1, headDim: 8, runtime });
      const x = randomF32(random, 2048 * 8);
      hier.forward(x, x, x);
      assert.ok(hier.lastStats.sparseRatio > 0.5, `hierarchical n=2048 sparseRatio ${hier.lastStats.sparseRatio}`);
    });

    test('scale, out, and the statistics of the last call', () => {
      const random = makeRandom(freshSeed());
      const [n, heads, dim, dv] = [70, 2, 8, 5];
      const attn = new WasmSparseAttention({ heads, headDim: dim, pattern: 'strided', blockSize: 32, scale: 0.3, runtime, ...SMALL });
      assert.deepEqual([attn.pattern, attn.windowSize, attn.stride, attn.blockSize, attn.scales, attn.seed, attn.numClusters, attn.scale],
        ['strided', 12, 6, 32, [2, 4, 8], 7, 3, 0.3]);
      const q = randomF32(random, n * heads * dim), k = randomF32(random, q.length), v = randomF32(random, n * heads * dv);
      const want = referenceMasked({ q, k, v, mask: attn.getPatternMask(n), batch: 1, n, heads, dim, dv, scale: 0.3 });
      const out = new Float32Array(n * heads * dv).fill(NaN);
      assert.equal(attn.forward(q, k, v, { out }), out);
      assertClose(out, want, 'strided out scale 0.3');
      assertClose(attn.forward(q, k, v, { out: null }), want, 'out null');
      const stats = attn.lastStats;
      assert.throws(() => attn.forward(q, k, new Float32Array(3)), RangeError);
      assert.equal(attn.lastStats, stats, 'a refused call leaves lastStats as it was');
      attn.forward(q.subarray(0, heads * dim), k.subarray(0, heads * dim), v.subarray(0, heads * dv));
      assert.equal(attn.lastStats.denseScores, heads, 'lastStats follows the last call');
      const defaults = new WasmSparseAttention({ headDim: 16, runtime });
      assert.deepEqual([defaults.heads, defaults.pattern, defaults.windowSize, defaults.stride, defaults.blockSize, defaults.scales,
        defaults.seed, defaults.numClusters, defaults.scale], [8, 'hierarchical', 128, 32, 64, [4, 16, 64], 0, 32, 0.25]);
    });

    test('random is seeded per head; clustered follows its centroids', () => {
      const random = makeRandom(freshSeed());
      const [n, heads, dim] = [1024, 2, 8];
      const mask = (seed) => new WasmSparseAttention({ heads, headDim: dim, pattern: 'random', windowSize: 64, blockSize: 32, seed, runtime })
        .getPatternMask(n);
      assert.deepEqual(mask(3), mask(3));
      assert.notDeepEqual(mask(3), mask(4));
      const m = mask(3);
      assert.notDeepEqual(m.subarray(0, n * n), m.subarray(n * n), 'heads draw their own blocks');
      const clustered = new WasmSparseAttention({ heads, headDim: dim, pattern: 'clustered', numClusters: 4, runtime });
      const Q = randomF32(random, n * heads * dim), K = randomF32(random, Q.length);
      const c1 = randomF32(random, heads * 4 * dim), c2 = randomF32(random, c1.length);
      assert.notDeepEqual(clustered.getPatternMask(n, { Q, K, centroids: c1 }), clustered.getPatternMask(n, { Q, K, centroids: c2 }));
    });

    test('bad input names the parameter, and the module keeps working', () => {
      const where = 'WasmSparseAttention';
      const [n, heads, dim] = [4, 2, 8];
      const Q = new Float32Array(n * heads * dim).fill(0.5);
      const make = (options) => new WasmSparseAttention({ heads, headDim: dim, runtime, ...options });
      const clustered = make({ pattern: 'clustered', numClusters: 3 });
      const centroids = new Float32Array(heads * 3 * dim);
      const cases = [
        [() => new WasmSparseAttention({ heads, runtime }), TypeError, 'headDim'],
        [() => make({ headDim: 0 }), RangeError, 'headDim'],
        [() => make({ heads: 1.5 }), RangeError, 'heads'],
        [() => make({ pattern: 'dilated' }), RangeError, 'pattern'],
        [() => make({ pattern: 3 }), TypeError, 'pattern'],
        [() => make({ blockSize: 48 }), RangeError, 'blockSize'],
        [() => make({ blockSize: 2048 }), RangeError, 'blockSize'],
        [() => make({ blockSize: '64' }), TypeError, 'blockSize'],
        [() => make({ windowSize: 0 }), RangeError, 'windowSize'],
        [() => make({ stride: -1 }), RangeError, 'stride'],
        [() => make({ numClusters: 0 }), RangeError, 'numClusters'],
        [() => make({ scales: [4, 6] }), RangeError, 'scales'],
        [() => make({ scales: [1, 4] }), RangeError, 'scales'],
        [() => make({ scales: [4, 2.5] }), RangeError, 'scales'],
        [() => make({ scales: 'fine' }), TypeError, 'scales'],
        [() => make({ seed: -1 }), RangeError, 'seed'],
        [() => make({ scale: NaN }), RangeError, 'scale'],
        [() => make({ runtime: {} }), TypeError, 'runtime'],
        [() => new WasmSparseAttention('local'), TypeError, 'options'],
        [() => make().forward([1], Q, Q), TypeError, 'Q'],
        [() => make().forward(new Float32Array(5), Q, Q), RangeError, 'Q'],
        [() => make().forward(Q, Q.subarray(0, 2 * heads * dim), Q), RangeError, 'K'],
        [() => make().forward(Q, new Float64Array(Q.length), Q), TypeError, 'K'],
        [() => make().forward(Q, Q, new Float32Array(3)), RangeError, 'V'],
        [() => make().forward(Q, Q, Q, { batch: 3 }), RangeError, 'Q'],
        [() => make().forward(Q, Q, Q, { batch: 0 }), RangeError, 'batch'],
        [() => make().forward(Q, Q, Q, { out: new Float32Array(3) }), RangeError, 'out'],
        [() => make().forward(Q, Q, Q, 'out'), TypeError, 'options'],
        [() => clustered.forward(Q, Q, Q), TypeError, 'centroids'],
        [() => clustered.forward(Q, Q, Q, { centroids: centroids.subarray(1) }), RangeError, 'centroids'],
        [() => clustered.forward(Q, Q, Q, { centroids: Array.from(centroids) }), TypeError, 'centroids'],
        [() => make().getPatternMask(0), RangeError, 'seqLen'],
        [() => make().getPatternMask('4'), TypeError, 'seqLen'],
        [() => clustered.getPatternMask(n, { K: Q, centroids }), TypeError, 'Q'],
        [() => clustered.getPatternMask(n, { Q, K: Q.subarray(1), centroids }), RangeError, 'K'],
        [() => clustered.getPatternMask(n, { Q, K: Q }), TypeError, 'centroids'],
      ];
      const attn = make({ pattern: 'local', windowSize: 2, blockSize: 32 });
      const good = attn.forward(Q, Q, Q);
      const before = attn.getMemoryUsage().heapUsed;
      for (const [call, type, param] of cases) {
        const e = assertThrowsNamed(call, type, param);
        assert.equal(e.param, param);
        assert.ok(e.message.startsWith(where), e.message);
      }
      assert.equal(attn.getMemoryUsage().heapUsed, before);
      assert.deepEqual(attn.forward(Q, Q, Q), good);
      assert.equal(clustered.forward(Q, Q, Q, { centroids }).length, Q.length);
      // Options a pattern does not use are not needed.
      assert.equal(make({ pattern: 'local' }).forward(Q, Q, Q).length, Q.length);
    });

    test('calls leave the heap as they found it; dispose is final', () => {
      const random = makeRandom(freshSeed());
      const [n, heads, dim] = [300, 2, 16];
      const attn = new WasmSparseAttention({ heads, headDim: dim, pattern: 'clustered', numClusters: 5, runtime });
      const q = randomF32(random, n * heads * dim);
      const centroids = randomF32(random, heads * 5 * dim);
      attn.forward(q, q, q, { centroids });
      const before = attn.getMemoryUsage().heapUsed;
      const out = new Float32Array(q.length);
      for (let i = 0; i < 10; ++i) {
        attn.forward(q, q, q, { centroids, out });
        attn.getPatternMask(n, { Q: q, K: q, centroids });
        assert.throws(() => attn.forward(q, q, new Float32Array(7), { centroids }), RangeError);
      }
      assert.equal(attn.getMemoryUsage().heapUsed, before);
      attn.dispose();
      attn.dispose();
      assert.equal(attn.disposed, true);
      for (const call of [() => attn.forward(q, q, q, { centroids }), () => attn.getPatternMask(n), () => attn.getMemoryUsage()]) {
        assert.throws(call, (e) => e.constructor === Error && /^WasmSparseAttention\.\w+: this object was disposed/.test(e.message));
      }
    });
  });
}
