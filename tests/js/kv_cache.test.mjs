// WasmKVCache on both WASM variants: attend() against float64 attention over the appended
// rows (within each storage precision's rounding), rows appended in several steps, several
// queries, memory halving for fp16/bf16, bad input, dispose.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WasmKVCache, createRuntime } from '../../js/index.js';
import { assertClose, freshSeed, makeRandom, randomF32 } from './helpers.mjs';

const simdRuntime = await createRuntime({ variant: 'simd' });
const RUNTIMES = [
  { name: 'simd-threads', runtime: undefined },
  { name: 'simd', runtime: simdRuntime },
];
// Relative error allowed against the unrounded float32 rows: the storage's rounding.
const TOLERANCE = { fp32: 1e-5, fp16: 3e-3, bf16: 2e-2 };

// q [queries][heads][d], k [n][heads][d], v [n][heads][dv] -> Float64Array [queries][heads][dv].
function reference(q, k, v, { queries, n, heads, d, dv, scale }) {
  const out = new Float64Array(queries * heads * dv);
  for (let i = 0; i < queries; ++i) {
    for (let h = 0; h < heads; ++h) {
      const s = new Float64Array(n);
      let max = -Infinity;
      for (let j = 0; j < n; ++j) {
        let dot = 0;
        for (let c = 0; c < d; ++c) dot += q[(i * heads + h) * d + c] * k[(j * heads + h) * d + c];
        s[j] = dot * scale;
        max = Math.max(max, s[j]);
      }
      let sum = 0;
      for (let j = 0; j < n; ++j) sum += (s[j] = Math.exp(s[j] - max));
      for (let j = 0; j < n; ++j) {
        for (let c = 0; c < dv; ++c) out[(i * heads + h) * dv + c] += (s[j] / sum) * v[(j * heads + h) * dv + c];
      }
    }
  }
  return out;
}

for (const { name, runtime } of RUNTIMES) {
  describe(`WasmKVCache (${name})`, () => {
    test('attend equals float64 attention over the cached rows, per storage precision', () => {
      const seed = freshSeed();
      const rand = makeRandom(seed);
      for (const precision of ['fp32', 'fp16', 'bf16']) {
        for (const [heads, d, dv, n, queries] of [[1, 1, 1, 1, 1], [3, 17, 5, 40, 2], [8, 64, 64, 1037, 1], [2, 32, 16, 300, 4]]) {
          const cache = new WasmKVCache({ heads, headDim: d, valueDim: dv, precision, runtime });
          const k = randomF32(rand, n * heads * d);
          const v = randomF32(rand, n * heads * dv);
          // Appended in uneven steps.
          for (let at = 0, step = 1; at < n; at += step, step = step * 3 + 1) {
            const end = Math.min(n, at + step);
            cache.append(k.subarray(at * heads * d, end * heads * d), v.subarray(at * heads * dv, end * heads * dv));
          }
          assert.equal(cache.length, n);
          const q = randomF32(rand, queries * heads * d);
          const want = reference(q, k, v, { queries, n, heads, d, dv, scale: 1 / Math.sqrt(d) });
          assertClose(cache.attend(q), want, `seed ${seed} ${precision} heads ${heads} d ${d} n ${n}`,
            TOLERANCE[precision] * (d === 1 ? 3 : 1));
          const out = new Float32Array(queries * heads * dv);
          assert.equal(cache.attend(q, { out, scale: 0.5 }), out);
          assertClose(out, reference(q, k, v, { queries, n, heads, d, dv, scale: 0.5 }), precision,
            TOLERANCE[precision] * (d === 1 ? 3 : 1));
          cache.dispose();
        }
      }
    });

    test('values every storage holds exactly give the float64 result to 1e-5 (large queries, fp16 subnormals)', () => {
      const seed = freshSeed();
      const rand = makeRandom(seed);
      // Multiples of 1/16 in [-4, 4] (at most 7 significant bits) and a few of 2^-24 (fp16
      // subnormals): exact in fp16 and bf16, so only the arithmetic can differ.
      const exact = (count) => Float32Array.from({ length: count }, () =>
        rand() < 0.1 ? Math.round((rand() - 0.5) * 64) * 2 ** -24 : Math.round((rand() - 0.5) * 128) / 16);
      for (const precision of ['fp32', 'fp16', 'bf16']) {
        for (const [heads, d, dv, n, queries, large] of [[2, 64, 64, 517, 1, false], [3, 24, 40, 129, 3, false], [2, 64, 16, 200, 2, true]]) {
          const cache = new WasmKVCache({ heads, headDim: d, valueDim: dv, precision, runtime });
          const k = exact(n * heads * d);
          const v = exact(n * heads * dv);
          const q = randomF32(rand, queries * heads * d);
          if (large) {
            // A query element of 1e6 (beyond 2^15 after scaling: the fp16 pair path's
            // rescale) over key elements of 0, so the softmax stays spread.
            for (let i = 0; i < queries * heads; ++i) q[i * d] = 1e6;
            for (let i = 0; i < n * heads; ++i) k[i * d] = 0;
          }
          cache.append(k, v);
          const want = reference(q, k, v, { queries, n, heads, d, dv, scale: 1 / Math.sqrt(d) });
          assertClose(cache.attend(q), want, `seed ${seed} ${precision} heads ${heads} d ${d} dv ${dv} large ${large}`, 1e-5);
          cache.dispose();
        }
      }
    });

    test('half-precision storage holds half the bytes; clear empties the cache', () => {
      const rand = makeRandom(freshSeed());
      const bytes = {};
      for (const precision of ['fp32', 'fp16', 'bf16']) {
        const cache = new WasmKVCache({ heads: 4, headDim: 16, precision, capacity: 256, runtime });
        cache.append(randomF32(rand, 100 * 4 * 16), randomF32(rand, 100 * 4 * 16));
        bytes[precision] = cache.getMemoryUsage().cacheBytes;
        cache.clear();
        assert.equal(cache.length, 0);
        assert.deepEqual(cache.attend(randomF32(rand, 4 * 16)), new Float32Array(4 * 16));
        cache.dispose();
      }
      assert.equal(bytes.fp16 * 2, bytes.fp32);
      assert.equal(bytes.bf16 * 2, bytes.fp32);
    });

    test('bad input names the parameter; the module keeps working', () => {
      assert.throws(() => new WasmKVCache({ heads: 2, runtime }), /headDim/);
      assert.throws(() => new WasmKVCache({ headDim: 8, precision: 'fp8', runtime }), /precision/);
      assert.throws(() => new WasmKVCache({ headDim: 8, heads: 0, runtime }), /heads/);
      const cache = new WasmKVCache({ heads: 2, headDim: 4, valueDim: 3, runtime });
      assert.throws(() => cache.append(new Float32Array(7), new Float32Array(6)), /K/);
      assert.throws(() => cache.append(new Float32Array(8), new Float32Array(5)), /V/);
      assert.throws(() => cache.append([1, 2], new Float32Array(6)), /K/);
      assert.throws(() => cache.attend(new Float32Array(8), { scale: -1 }), /scale/);
      assert.throws(() => cache.attend(new Float32Array(8), { out: new Float32Array(5) }), /out/);
      cache.append(new Float32Array(8).fill(1), new Float32Array(6).fill(2));
      assert.deepEqual(Array.from(cache.attend(new Float32Array(8))), [2, 2, 2, 2, 2, 2]);
      cache.dispose();
      assert.throws(() => cache.attend(new Float32Array(8)), /disposed/);
    });
  });
}
