// WasmLinearAttention against SPEC.md's formula in float64 (JS, written as the O(n^2)
// masked products: a different algorithm from the chunked one under test), on both WASM
// variants: every feature map, causal and not, odd sizes across the 64-row chunks, batch,
// a value width of its own; results written into a caller's array (out); bad input; the heap
// after calls; dispose.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WasmLinearAttention, createRuntime } from '../../js/index.js';
import { assertClose, freshSeed, makeRandom, randomF32 } from './helpers.mjs';

const simdRuntime = await createRuntime({ variant: 'simd' });
const RUNTIMES = [
  { name: 'simd-threads', runtime: undefined },
  { name: 'simd', runtime: simdRuntime },
];

function phi(map, x) {
  if (map === 'elu') return x.map((v) => (v > 0 ? v + 1 : Math.exp(v)));
  if (map === 'relu') return x.map((v) => Math.max(v, 0));
  const xp = [...x.map((v) => Math.max(v, 0)), ...x.map((v) => Math.max(-v, 0))];
  return xp.map((v, i) => v * xp[(i + xp.length - 1) % xp.length]);
}

// q, k [batch][seq][heads][dim], v [batch][seqK][heads][dv] -> Float64Array [batch][seqQ][heads][dv]
function referenceLinear({ q, k, v, batch, seqQ, seqK, heads, dim, dv, map, causal, eps }) {
  const out = new Float64Array(batch * seqQ * heads * dv);
  const row = (a, b, i, h, seq, width) => Array.from(a.subarray(((b * seq + i) * heads + h) * width, ((b * seq + i) * heads + h + 1) * width));
  for (let b = 0; b < batch; ++b) {
    for (let h = 0; h < heads; ++h) {
      const fk = Array.from({ length: seqK }, (_, j) => phi(map, row(k, b, j, h, seqK, dim)));
      for (let i = 0; i < seqQ; ++i) {
        const fq = phi(map, row(q, b, i, h, seqQ, dim));
        const num = new Float64Array(dv);
        let den = eps;
        for (let j = 0; j < (causal ? i + 1 : seqK); ++j) {
          let a = 0;
          for (let f = 0; f < fq.length; ++f) a += fq[f] * fk[j][f];
          den += a;
          const vj = row(v, b, j, h, seqK, dv);
          for (let c = 0; c < dv; ++c) num[c] += a * vj[c];
        }
        for (let c = 0; c < dv; ++c) out[((b * seqQ + i) * heads + h) * dv + c] = den > 0 ? num[c] / den : 0;
      }
    }
  }
  return out;
}

for (const { name, runtime } of RUNTIMES) {
  describe(`WasmLinearAttention (${name})`, () => {
    for (const map of ['elu', 'relu', 'dpfp']) {
      for (const causal of [false, true]) {
        test(`${map}, causal ${causal}: matches the float64 formula`, () => {
          const random = makeRandom(freshSeed());
          for (const [batch, seqQ, seqK, heads, dim, dv] of [
            [1, 1, 1, 1, 1, 1], [1, 3, 3, 2, 5, 7], [2, 17, 17, 3, 16, 16], [1, 65, 65, 2, 8, 12], [1, 130, 130, 1, 32, 32],
            [2, 33, 200, 2, 16, 24],
          ]) {
            if (causal && seqQ !== seqK) continue;
            const q = randomF32(random, batch * seqQ * heads * dim), k = randomF32(random, batch * seqK * heads * dim);
            const v = randomF32(random, batch * seqK * heads * dv);
            const attn = new WasmLinearAttention({ dim, heads, featureMap: map, causal, runtime });
            const got = batch === 1 && dv === dim ? attn.forward(q, k, v) : attn.forwardExtended({ q, k, v, batch }).output;
            const want = referenceLinear({ q, k, v, batch, seqQ, seqK, heads, dim, dv, map, causal, eps: 1e-6 });
            assertClose(got, want, `${map} causal ${causal} b${batch} q${seqQ} k${seqK} h${heads} d${dim} dv${dv}`);
            attn.dispose();
          }
        });
      }
    }

    test('1000+ rows, causal override per call', () => {
      const random = makeRandom(freshSeed());
      const [seq, heads, dim] = [1100, 2, 8];
      const q = randomF32(random, seq * heads * dim), k = randomF32(random, seq * heads * dim), v = randomF32(random, seq * heads * dim);
      const attn = new WasmLinearAttention({ dim, heads, runtime });
      const got = attn.forwardExtended({ q, k, v, causal: true }).output;
      assertClose(got, referenceLinear({ q, k, v, batch: 1, seqQ: seq, seqK: seq, heads, dim, dv: dim, map: 'elu', causal: true, eps: 1e-6 }), 'n=1100 causal');
    });

    test('out: the result goes into the caller\'s array, which is returned', () => {
      const random = makeRandom(freshSeed());
      for (const [map, causal, seq, heads, dim] of [['elu', false, 130, 3, 16], ['dpfp', true, 70, 2, 8], ['relu', false, 1, 1, 1]]) {
        const q = randomF32(random, seq * heads * dim), k = randomF32(random, seq * heads * dim), v = randomF32(random, seq * heads * dim);
        const attn = new WasmLinearAttention({ dim, heads, featureMap: map, causal, runtime });
        const want = referenceLinear({ q, k, v, batch: 1, seqQ: seq, seqK: seq, heads, dim, dv: dim, map, causal, eps: 1e-6 });
        const out = new Float32Array(q.length).fill(NaN);
        assert.equal(attn.forward(q, k, v, { out }), out);
        assertClose(out, want, `forward out ${map} causal ${causal} n${seq}`);
        // Reused across calls, and as the output of forwardExtended.
        out.fill(NaN);
        assert.equal(attn.forwardExtended({ q, k, v, out }).output, out);
        assertClose(out, want, `forwardExtended out ${map} causal ${causal} n${seq}`);
        // A view into a larger buffer: only its own floats are written.
        const backing = new Float32Array(q.length + 2).fill(7);
        const view = backing.subarray(1, q.length + 1);
        attn.forward(q, k, v, { out: view });
        assertClose(view, want, `subarray out ${map} causal ${causal} n${seq}`);
        assert.deepEqual([backing[0], backing[q.length + 1]], [7, 7]);
        // One of the inputs as the output: inputs are read before the output is written.
        const qCopy = q.slice();
        attn.forward(qCopy, k, v, { out: qCopy });
        assertClose(qCopy, want, `out aliasing Q ${map} causal ${causal} n${seq}`);
        // null or absent: a new array, as before.
        assertClose(attn.forward(q, k, v, { out: null }), want, `out null ${map}`);
        assertClose(attn.forward(q, k, v, {}), want, `no out ${map}`);
        attn.dispose();
      }
      // With a batch and a value width of its own.
      const [batch, seqQ, seqK, heads, dim, dv] = [2, 33, 50, 2, 8, 12];
      const q = randomF32(random, batch * seqQ * heads * dim), k = randomF32(random, batch * seqK * heads * dim);
      const v = randomF32(random, batch * seqK * heads * dv);
      const attn = new WasmLinearAttention({ dim, heads, runtime });
      const out = new Float32Array(batch * seqQ * heads * dv);
      assert.equal(attn.forwardExtended({ q, k, v, batch, out }).output, out);
      assertClose(out, referenceLinear({ q, k, v, batch, seqQ, seqK, heads, dim, dv, map: 'elu', causal: false, eps: 1e-6 }), 'batch out');
    });

    test('a wrong out is refused before any work, naming out; the module keeps working', () => {
      const [seq, heads, dim] = [4, 2, 8];
      const Q = new Float32Array(seq * heads * dim).fill(0.25);
      const attn = new WasmLinearAttention({ dim, heads, runtime });
      const good = attn.forward(Q, Q, Q);
      const before = attn.getMemoryUsage().heapUsed;
      const where = 'WasmLinearAttention.forward';
      for (const [out, type, detail] of [
        [new Float32Array(Q.length - 1), RangeError, /length 63 should be batch \* seqQ \* heads \* valueDim = 1 \* 4 \* 2 \* 8 = 64/],
        [new Float32Array(Q.length + 1), RangeError, /= 64/],
        [new Float32Array(0), RangeError, /length 0/],
        [new Float64Array(Q.length), TypeError, /expected a Float32Array, got a Float64Array/],
        [Array.from(Q), TypeError, /expected a Float32Array, got an Array/],
        [Q.buffer, TypeError, /expected a Float32Array/],
      ]) {
        assert.throws(() => attn.forward(Q, Q, Q, { out }),
          (e) => e.constructor === type && e.param === 'out' && e.message.startsWith(`${where}: out: `) && detail.test(e.message),
          `${type.name} naming out for ${Object.prototype.toString.call(out)}`);
      }
      assert.throws(() => attn.forwardExtended({ q: Q, k: Q, v: Q, batch: 3, out: new Float32Array(Q.length) }),
        (e) => e instanceof RangeError && e.param === 'Q');
      assert.throws(() => attn.forwardExtended({ q: Q, k: Q, v: Q, out: new Float32Array(3) }),
        (e) => e instanceof RangeError && e.param === 'out' && e.message.startsWith('WasmLinearAttention.forwardExtended: out: '));
      assert.throws(() => attn.forward(Q, Q, Q, 'out'), (e) => e instanceof TypeError && e.param === 'options');
      const untouched = new Float32Array(Q.length + 1).fill(3);
      assert.throws(() => attn.forward(Q, Q, Q, { out: untouched }), RangeError);
      assert.ok(untouched.every((x) => x === 3), 'a refused out is left as it was');
      assert.equal(attn.getMemoryUsage().heapUsed, before);
      const out = new Float32Array(Q.length);
      attn.forward(Q, Q, Q, { out });
      assert.deepEqual(out, good);
      attn.dispose();
      assert.throws(() => attn.forward(Q, Q, Q, { out }), (e) => e instanceof Error && /disposed/.test(e.message));
    });

    test('bad input names the parameter, and the module keeps working', () => {
      const where = 'WasmLinearAttention';
      const Q = new Float32Array(4 * 2 * 8);
      const cases = [
        [() => new WasmLinearAttention({ heads: 2, runtime }), TypeError, 'dim'],
        [() => new WasmLinearAttention({ dim: 0, runtime }), RangeError, 'dim'],
        [() => new WasmLinearAttention({ dim: 8, featureMap: 'softmax', runtime }), RangeError, 'featureMap'],
        [() => new WasmLinearAttention({ dim: 8, eps: -1, runtime }), RangeError, 'eps'],
        [() => new WasmLinearAttention({ dim: 8, eps: NaN, runtime }), RangeError, 'eps'],
        [() => new WasmLinearAttention({ dim: 8, causal: 'yes', runtime }), TypeError, 'causal'],
        [() => new WasmLinearAttention({ dim: 8, heads: 2, runtime }).forward([1], Q, Q), TypeError, 'Q'],
        [() => new WasmLinearAttention({ dim: 8, heads: 2, runtime }).forward(Q, new Float32Array(5), Q), RangeError, 'K'],
        [() => new WasmLinearAttention({ dim: 8, heads: 2, runtime }).forward(Q, Q, new Float32Array(3)), RangeError, 'V'],
        [() => new WasmLinearAttention({ dim: 8, heads: 2, causal: true, runtime }).forward(Q, Q.subarray(0, 32), Q.subarray(0, 32)), RangeError, 'causal'],
        [() => new WasmLinearAttention({ dim: 8, heads: 2, runtime }).forwardExtended(null), TypeError, 'inputs'],
        [() => new WasmLinearAttention({ dim: 8, heads: 2, runtime }).forwardExtended({ q: Q, k: Q, v: Q, batch: 3 }), RangeError, 'Q'],
      ];
      for (const [call, type, param] of cases) {
        assert.throws(call, (e) => e instanceof type && e.param === param && e.message.startsWith(`${where}`), `${type.name} naming ${param}`);
      }
      const attn = new WasmLinearAttention({ dim: 8, heads: 2, runtime });
      assert.equal(attn.forward(Q, Q, Q).length, Q.length);
    });

    test('calls leave the heap as they found it; dispose is final', () => {
      const random = makeRandom(freshSeed());
      const attn = new WasmLinearAttention({ dim: 16, heads: 4, featureMap: 'dpfp', runtime });
      const q = randomF32(random, 300 * 4 * 16);
      attn.forward(q, q, q);
      const before = attn.getMemoryUsage().heapUsed;
      const out = new Float32Array(q.length);
      for (let i = 0; i < 20; ++i) {
        attn.forward(q, q, q);
        attn.forward(q, q, q, { out });
        assert.throws(() => attn.forward(q, q, new Float32Array(7)), RangeError);
      }
      assert.equal(attn.getMemoryUsage().heapUsed, before);
      attn.dispose();
      attn.dispose();
      assert.equal(attn.disposed, true);
      assert.throws(() => attn.forward(q, q, q), (e) => e instanceof Error && /disposed/.test(e.message));
      assert.throws(() => attn.getMemoryUsage(), /disposed/);
    });
  });
}
