// Memory: calls (and calls that throw) leave the WASM heap as they found it; dispose()
// is idempotent and every method afterwards throws an Error saying so.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WasmFlashAttention, createRuntime } from '../../js/index.js';
import { assertClose, freshSeed, makeRandom, randomF32 } from './helpers.mjs';
import { referenceFlash } from './reference.mjs';

const simdRuntime = await createRuntime({ variant: 'simd' });
const RUNTIMES = [
  { name: 'simd-threads', runtime: undefined },
  { name: 'simd', runtime: simdRuntime },
];

function workload(random) {
  // Varied shapes, masks, lse, GQA, dropout, attentionScores.
  const heads = 4, dim = 16;
  const calls = [];
  for (const seq of [1, 7, 64, 129]) {
    const Q = randomF32(random, seq * heads * dim), K = randomF32(random, seq * heads * dim), V = randomF32(random, seq * heads * dim);
    const mask = new Float32Array(seq * seq).map(() => (random() < 0.3 ? -Infinity : 0));
    calls.push((a) => a.forward(Q, K, V));
    calls.push((a) => a.forward(Q, K, V, mask));
    calls.push((a) => a.forwardExtended({ q: Q, k: K, v: V, returnLse: true, causal: 'bottom-right', dropout: 0.2 }));
    calls.push((a) => a.forwardExtended({
      q: Q, k: K.subarray(0, seq * 2 * dim), v: V.subarray(0, seq * 2 * dim), headsKv: 2,
      mask: new Uint8Array(heads * seq * seq).fill(1), returnLse: true,
    }));
    calls.push((a) => a.attentionScores(Q, K, mask));
  }
  return { heads, dim, calls };
}

// Calls that throw from JS validation, before anything is copied into the heap, and after
// (mask layout checks run before the copies; length checks too).
function failingCalls(heads, dim) {
  const Q = new Float32Array(5 * heads * dim);
  return [
    (a) => a.forward(Q, Q, new Float32Array(3)),
    (a) => a.forward(Q, Q, Q, new Float32Array(7)),
    (a) => a.forwardExtended({ q: Q, k: Q, v: Q, causal: 'sideways' }),
    (a) => a.forwardExtended({ q: Q, k: Q, v: Q, headsKv: 3 }),
    (a) => a.attentionScores(Q, new Float64Array(Q.length)),
  ];
}

for (const { name, runtime } of RUNTIMES) {
  describe(`heap on ${name}`, () => {
    test('many forward / forwardExtended / attentionScores calls leave heapUsed unchanged', () => {
      const random = makeRandom(freshSeed());
      const { heads, dim, calls } = workload(random);
      const attn = new WasmFlashAttention({ heads, dim, runtime });
      for (const call of calls) call(attn);  // warm-up: thread pool and allocator first-use
      const before = attn.getMemoryUsage();
      assert.ok(before.heapUsed > 0 && before.heapUsed <= before.heapTotal, JSON.stringify(before));
      assert.equal(before.paramCount, 0);
      for (let round = 0; round < 10; ++round) for (const call of calls) call(attn);
      const afterCalls = attn.getMemoryUsage();
      assert.equal(afterCalls.heapUsed, before.heapUsed, `heapUsed grew by ${afterCalls.heapUsed - before.heapUsed} bytes over ${10 * calls.length} calls`);
      attn.dispose();
    });

    test('calls that throw leave heapUsed unchanged', () => {
      const attn = new WasmFlashAttention({ heads: 2, dim: 8, runtime });
      const calls = failingCalls(2, 8);
      const before = attn.getMemoryUsage().heapUsed;
      let thrown = 0;
      for (let round = 0; round < 40; ++round) {
        for (const call of calls) {
          assert.throws(() => call(attn), (e) => e instanceof Error);
          ++thrown;
        }
      }
      assert.equal(attn.getMemoryUsage().heapUsed, before, `heapUsed changed after ${thrown} failing calls`);
      attn.dispose();
    });

    test('errors raised by the C++ core after the heap copies leave heapUsed unchanged', () => {
        const attn = new WasmFlashAttention({ heads: 2, dim: 8, runtime });
        const Q = new Float32Array(5 * 2 * 8);
        attn.forward(Q, Q, Q);
        const before = attn.getMemoryUsage().heapUsed;
        for (let n = 0; n < 50; ++n) {
          assert.throws(() => attn.forwardExtended({ q: Q, k: Q, v: Q, scale: 1e39 }), RangeError);
        }
        assert.equal(attn.getMemoryUsage().heapUsed, before);
        attn.dispose();
      });

    test('a call that grows the heap computes correctly and frees what it used', () => {
      const seed = freshSeed();
      const random = makeRandom(seed);
      // 3 * 8 MiB of K and V plus packed copies: beyond the 16 MiB initial heap.
      const heads = 2, dim = 16, seqQ = 3, seqK = 65536;
      const Q = randomF32(random, seqQ * heads * dim), K = randomF32(random, seqK * heads * dim);
      const V = randomF32(random, seqK * heads * dim);
      const attn = new WasmFlashAttention({ heads, dim, runtime });
      attn.forward(Q, K.subarray(0, heads * dim), V.subarray(0, heads * dim));
      const before = attn.getMemoryUsage();
      const out = attn.forwardExtended({ q: Q, k: K, v: V, causal: 'bottom-right' }).output;
      const afterCall = attn.getMemoryUsage();
      assert.ok(afterCall.heapTotal > 16 * 2 ** 20, `the heap did not grow: ${JSON.stringify(afterCall)}`);
      assert.equal(afterCall.heapUsed, before.heapUsed);
      assertClose(out, referenceFlash({ q: Q, k: K, v: V, headsQ: heads, headDim: dim, causal: 'bottom-right' }).output,
        `heap growth, seed ${seed}`);
      // After growth, small calls still see the current heap (views refreshed).
      const small = randomF32(random, 4 * heads * dim);
      assertClose(attn.forward(small, small, small),
        referenceFlash({ q: small, k: small, v: small, headsQ: heads, headDim: dim }).output, `after growth, seed ${seed}`);
      attn.dispose();
    });

    test('outputs are fresh, unshared copies; inputs are not modified; subarray inputs are read at their offset', () => {
      const seed = freshSeed();
      const random = makeRandom(seed);
      const heads = 2, dim = 4, seq = 6, n = seq * heads * dim;
      const backing = randomF32(random, 3 * n + 5);
      const Q = backing.subarray(1, 1 + n), K = backing.subarray(1 + n, 1 + 2 * n), V = backing.subarray(1 + 2 * n, 1 + 3 * n);
      const shared = new Float32Array(new SharedArrayBuffer(4 * n));
      shared.set(Q);
      const copy = backing.slice();
      const attn = new WasmFlashAttention({ heads, dim, runtime });
      const a = attn.forward(Q, K, V);
      const b = attn.forward(shared, K, V);
      assert.deepEqual(backing, copy, 'inputs were modified');
      assert.deepEqual(a, b, 'SharedArrayBuffer-backed Q gave a different result');
      assertClose(a, referenceFlash({ q: Q, k: K, v: V, headsQ: heads, headDim: dim }).output, `subarrays, seed ${seed}`);
      const r = attn.forwardExtended({ q: Q, k: K, v: V, returnLse: true });
      const s = attn.attentionScores(Q, K);
      for (const out of [a, r.output, r.lse, s]) {
        assert.ok(out.buffer instanceof ArrayBuffer && !(out.buffer instanceof SharedArrayBuffer), 'output shares memory');
        assert.equal(out.byteOffset, 0);
        assert.equal(out.buffer.byteLength, out.byteLength, 'output is a view into a larger buffer (the heap?)');
      }
      const keep = a.slice();
      a.fill(123);
      attn.forward(Q, K, V);
      assert.deepEqual(attn.forward(Q, K, V), keep, 'writing to an output changed later results');
      // A boolean mask given as a subarray at an odd offset.
      const maskBacking = new Uint8Array(seq * seq + 3).fill(1);
      maskBacking[3 + 2] = 0;  // row 0, key 2 blocked
      const mask = maskBacking.subarray(3);
      const full = new Uint8Array(seq * seq).fill(1);
      full[2] = 0;
      assert.deepEqual(attn.forward(Q, K, V, mask), attn.forward(Q, K, V, full));
      attn.dispose();
    });
  });
}

describe('dispose', () => {
  for (const { name, runtime } of RUNTIMES) {
    test(`dispose is idempotent and every method afterwards throws a "disposed" Error (${name})`, () => {
      const attn = new WasmFlashAttention({ heads: 1, dim: 4, runtime });
      const other = new WasmFlashAttention({ heads: 1, dim: 4, runtime });
      const Q = Float32Array.of(1, 2, 3, 4);
      const expected = other.forward(Q, Q, Q);
      assert.equal(attn.disposed, false);
      assert.equal(attn.dispose(), undefined);
      assert.equal(attn.disposed, true);
      attn.dispose();
      attn.dispose();
      assert.equal(attn.disposed, true);
      const methods = {
        forward: () => attn.forward(Q, Q, Q),
        forwardWithMask: () => attn.forward(Q, Q, Q, new Float32Array(1)),
        forwardExtended: () => attn.forwardExtended({ q: Q, k: Q, v: Q }),
        attentionScores: () => attn.attentionScores(Q, Q),
        benchmark: () => attn.benchmark(4),
        getMemoryUsage: () => attn.getMemoryUsage(),
        badInputAfterDispose: () => attn.forward(Q, Q, new Float32Array(3)),
      };
      for (const [method, call] of Object.entries(methods)) {
        assert.throws(call, (err) => {
          assert.equal(err.constructor, Error, `${method}: ${err.constructor.name}: ${err.message}`);
          assert.match(err.message, /disposed/, `${method}: ${err.message}`);
          return true;
        }, `${method} after dispose`);
      }
      // Other instances on the same runtime are unaffected.
      assert.deepEqual(other.forward(Q, Q, Q), expected);
      assert.equal(other.disposed, false);
      other.dispose();
    });
  }
});
