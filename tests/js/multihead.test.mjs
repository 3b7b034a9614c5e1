// WasmMultiHeadAttention and WasmCrossAttention against a naive float64 multi-head
// attention in JS with the same weights (set through loadWeights with PyTorch names), on
// both WASM variants: self and cross attention, biases or not, causal, masks, batch, odd
// sizes; the weights of the last call; saveWeights/loadWeights (bit-exact, bad buffers
// refused with the old weights kept); bad input; dispose frees the weights.
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WasmCrossAttention, WasmMultiHeadAttention, createRuntime } from '../../js/index.js';
import { assertClose, freshSeed, makeRandom, randomF32 } from './helpers.mjs';

const simdRuntime = await createRuntime({ variant: 'simd' });
const RUNTIMES = [
  { name: 'simd-threads', runtime: undefined },
  { name: 'simd', runtime: simdRuntime },
];

function linear(x, rows, inDim, w, b, outDim) {
  const y = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; ++r) {
    for (let o = 0; o < outDim; ++o) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < inDim; ++i) s += x[r * inDim + i] * w[o * inDim + i];
      y[r * outDim + o] = s;
    }
  }
  return y;
}

// Returns { out [batch][sq][e], weights [batch][heads][sq][sk] }.
function referenceMha({ query, key, value, batch, sq, sk, e, kdim, vdim, heads, w, mask, causal }) {
  const d = e / heads;
  const q = linear(query, batch * sq, e, w.q_proj_weight, w.in_proj_bias?.subarray(0, e), e);
  const k = linear(key, batch * sk, kdim, w.k_proj_weight, w.in_proj_bias?.subarray(e, 2 * e), e);
  const v = linear(value, batch * sk, vdim, w.v_proj_weight, w.in_proj_bias?.subarray(2 * e), e);
  const heads_ = new Float64Array(batch * sq * e);
  const weights = new Float64Array(batch * heads * sq * sk);
  for (let b = 0; b < batch; ++b) {
    for (let h = 0; h < heads; ++h) {
      for (let i = 0; i < sq; ++i) {
        const s = new Float64Array(sk).fill(-Infinity);
        let max = -Infinity;
        for (let j = 0; j < sk; ++j) {
          if (causal && j > i) continue;
          let dot = 0;
          for (let t = 0; t < d; ++t) dot += q[(b * sq + i) * e + h * d + t] * k[(b * sk + j) * e + h * d + t];
          s[j] = dot / Math.sqrt(d) + (mask ? mask[i * sk + j] : 0);
          max = Math.max(max, s[j]);
        }
        if (max === -Infinity) continue;
        let sum = 0;
        for (let j = 0; j < sk; ++j) sum += (s[j] = s[j] === -Infinity ? 0 : Math.exp(s[j] - max));
        for (let j = 0; j < sk; ++j) {
          const p = s[j] / sum;
          weights[((b * heads + h) * sq + i) * sk + j] = p;
          for (let t = 0; t < d; ++t) heads_[(b * sq + i) * e + h * d + t] += p * v[(b * sk + j) * e + h * d + t];
        }
      }
    }
  }
  return { out: linear(heads_, batch * sq, e, w['out_proj.weight'], w['out_proj.bias'], e), weights };
}

function randomWeights(random, e, kdim, vdim, bias) {
  const s = 1 / Math.sqrt(e);
  const w = {
    q_proj_weight: randomF32(random, e * e, s), k_proj_weight: randomF32(random, e * kdim, s),
    v_proj_weight: randomF32(random, e * vdim, s), 'out_proj.weight': randomF32(random, e * e, s),
  };
  if (bias) Object.assign(w, { in_proj_bias: randomF32(random, 3 * e, 0.5), 'out_proj.bias': randomF32(random, e, 0.5) });
  return w;
}

for (const { name, runtime } of RUNTIMES) {
  describe(`WasmMultiHeadAttention (${name})`, () => {
    test('self and cross attention match the float64 reference', () => {
      const random = makeRandom(freshSeed());
      const cases = [
        // e, heads, kdim, vdim, batch, sq, sk, bias, causal, masked
        [16, 4, 16, 16, 1, 17, 17, true, false, false], [16, 4, 16, 16, 2, 9, 9, false, true, false],
        [12, 3, 7, 20, 2, 5, 130, true, false, true], [8, 1, 8, 8, 1, 1, 1, true, false, false],
        [64, 8, 64, 64, 1, 70, 70, true, true, true],
      ];
      for (const [e, heads, kdim, vdim, batch, sq, sk, bias, causal, masked] of cases) {
        const m = new WasmMultiHeadAttention({ modelDim: e, heads, kdim, vdim, bias, causal, runtime });
        const w = randomWeights(random, e, kdim, vdim, bias);
        m.loadWeights(w);
        const query = randomF32(random, batch * sq * e), key = randomF32(random, batch * sk * kdim);
        const value = randomF32(random, batch * sk * vdim);
        const mask = masked ? new Float32Array(sq * sk).map((_, n) => (n % sk > sk / 2 && n % 3 === 0 ? -Infinity : 0)) : undefined;
        const got = batch === 1 ? m.forward(query, key, value, mask) : m.forwardExtended({ query, key, value, batch, mask }).output;
        const ref = referenceMha({ query, key, value, batch, sq, sk, e, kdim, vdim, heads, w, mask, causal });
        const context = `e${e} h${heads} kdim${kdim} vdim${vdim} b${batch} q${sq} k${sk} bias ${bias} causal ${causal} masked ${masked}`;
        assertClose(got, ref.out, context);
        assertClose(m.getAttentionWeights(), ref.weights, `weights, ${context}`);
        m.dispose();
      }
    });

    test("PyTorch's nn.MultiheadAttention weights give PyTorch's output (vectors made by PyTorch)", () => {
      // tests/js/data/torch_mha.json: written by make_torch_mha.py with PyTorch on the GPU machine.
      const data = JSON.parse(readFileSync(new URL('./data/torch_mha.json', import.meta.url), 'utf8'));
      for (const c of data.cases) {
        const m = new WasmMultiHeadAttention({ modelDim: c.modelDim, heads: c.heads, kdim: c.kdim, vdim: c.vdim, bias: c.bias, runtime });
        m.loadWeights(Object.fromEntries(Object.entries(c.state).map(([name, values]) => [name, Float32Array.from(values)])));
        const out = m.forwardExtended({ query: Float32Array.from(c.query), key: Float32Array.from(c.key),
          value: Float32Array.from(c.value), causal: c.causal }).output;
        assertClose(out, c.output, `${c.name} (PyTorch ${data.torch})`);
        assertClose(m.getAttentionWeights(), c.weights, `${c.name} weights`);
        m.dispose();
      }
    });

    test('WasmCrossAttention: queryDim over keyDim', () => {
      const random = makeRandom(freshSeed());
      const m = new WasmCrossAttention({ queryDim: 24, keyDim: 10, heads: 3, runtime });
      assert.equal(m.queryDim, 24);
      assert.equal(m.keyDim, 10);
      const w = randomWeights(random, 24, 10, 10, true);
      m.loadWeights(w);
      const query = randomF32(random, 6 * 24), key = randomF32(random, 11 * 10), value = randomF32(random, 11 * 10);
      const ref = referenceMha({ query, key, value, batch: 1, sq: 6, sk: 11, e: 24, kdim: 10, vdim: 10, heads: 3, w, causal: false });
      assertClose(m.forward(query, key, value), ref.out, 'cross attention');
      m.dispose();
    });

    test('same seed, same initial weights; saveWeights/loadWeights round trip is bit-exact', () => {
      const a = new WasmMultiHeadAttention({ modelDim: 16, heads: 2, seed: 9, runtime });
      const b = new WasmMultiHeadAttention({ modelDim: 16, heads: 2, seed: 9, runtime });
      const c = new WasmMultiHeadAttention({ modelDim: 16, heads: 2, seed: 10, runtime });
      assert.deepEqual(a.saveWeights(), b.saveWeights());
      assert.notDeepEqual(a.saveWeights(), c.saveWeights());
      c.loadWeights(a.saveWeights());
      assert.deepEqual(c.saveWeights(), a.saveWeights());
      const x = randomF32(makeRandom(freshSeed()), 3 * 16);
      assert.deepEqual(c.forward(x, x, x), a.forward(x, x, x));
      for (const m of [a, b, c]) m.dispose();
    });

    test('bad weights are refused, naming what is wrong, and the old weights stay', () => {
      const m = new WasmMultiHeadAttention({ modelDim: 16, heads: 4, seed: 1, runtime });
      const before = m.saveWeights();
      const good = new WasmMultiHeadAttention({ modelDim: 16, heads: 4, seed: 2, runtime }).saveWeights();
      const flipped = good.slice(); flipped[60] ^= 4;
      const other = new WasmMultiHeadAttention({ modelDim: 16, heads: 2, runtime }).saveWeights();
      const cases = [
        [flipped, RangeError, 'weights', /checksum/],
        [good.subarray(0, 40), RangeError, 'weights', /bytes/],
        [other, RangeError, 'weights', /heads/],
        [new Uint8Array(0), RangeError, 'weights', /short/],
        [[1, 2, 3], TypeError, 'weights', /Uint8Array/],
        [{ in_proj_weight: new Float32Array(5) }, RangeError, 'in_proj_weight', /768/],
        [{ bias_k: new Float32Array(16) }, RangeError, 'bias_k', /not a weight/],
        // Found by tests/fuzz/weights_load_fuzz: the empty name, and a NUL in a name (it cut the
        // C++ message short and the error translation threw, aborting the module).
        [{ '': new Float32Array(16) }, RangeError, '(empty name)', /not a weight/],
        [{ [`b\0${'x'.repeat(30)}`]: new Float32Array(16) }, RangeError, `b\0${'x'.repeat(30)}`, /not a weight/],
        [{ in_proj_weight: [1, 2] }, TypeError, 'in_proj_weight', /Float32Array/],
        [{ in_proj_weight: new Float32Array(768) }, RangeError, 'out_proj.weight', /missing/],
      ];
      for (const [weights, type, param, pattern] of cases) {
        assert.throws(() => m.loadWeights(weights), (e) => e instanceof type && e.param === param && pattern.test(e.message),
          `${type.name} naming ${param}`);
        assert.deepEqual(m.saveWeights(), before);
      }
      m.dispose();
    });

    test('bad options and calls name the parameter; the module keeps working', () => {
      const q = new Float32Array(4 * 16);
      const cases = [
        [() => new WasmMultiHeadAttention({ heads: 2, runtime }), TypeError, 'modelDim'],
        [() => new WasmMultiHeadAttention({ modelDim: 16, heads: 3, runtime }), RangeError, 'heads'],
        [() => new WasmMultiHeadAttention({ modelDim: 16, dropout: 1, runtime }), RangeError, 'dropout'],
        [() => new WasmMultiHeadAttention({ modelDim: 16, kdim: 0, runtime }), RangeError, 'kdim'],
        [() => new WasmMultiHeadAttention({ modelDim: 16, seed: -1, runtime }), RangeError, 'seed'],
        [() => new WasmCrossAttention({ queryDim: 16, runtime }), TypeError, 'keyDim'],
        [() => new WasmMultiHeadAttention({ modelDim: 16, heads: 4, runtime }).forward(q, q, new Float32Array(5)), RangeError, 'value'],
        [() => new WasmMultiHeadAttention({ modelDim: 16, heads: 4, runtime }).forward(q, new Float32Array(7), q), RangeError, 'key'],
        [() => new WasmMultiHeadAttention({ modelDim: 16, heads: 4, runtime }).forward(q, q, q, new Float32Array(3)), RangeError, 'mask'],
        [() => new WasmMultiHeadAttention({ modelDim: 16, heads: 4, runtime }).forward(q, q, q, [0]), TypeError, 'mask'],
      ];
      for (const [call, type, param] of cases) {
        assert.throws(call, (e) => e instanceof type && e.param === param, `${type.name} naming ${param}`);
      }
      const m = new WasmMultiHeadAttention({ modelDim: 16, heads: 4, runtime });
      assert.throws(() => m.getAttentionWeights(), /no forward call yet/);
      assert.equal(m.forward(q, q, q).length, q.length);
      m.dispose();
    });

    test('dispose frees the weights; calls afterwards throw', () => {
      const probe = new WasmMultiHeadAttention({ modelDim: 8, heads: 2, runtime });
      const base = probe.getMemoryUsage().heapUsed;
      probe.dispose();
      const m = new WasmMultiHeadAttention({ modelDim: 256, heads: 4, runtime });
      const x = new Float32Array(10 * 256);
      m.forward(x, x, x);
      assert.equal(m.getMemoryUsage().paramCount, 4 * 256 * 256 + 4 * 256);
      m.dispose();
      m.dispose();
      assert.equal(m.disposed, true);
      assert.throws(() => m.forward(x, x, x), /disposed/);
      const after = new WasmMultiHeadAttention({ modelDim: 8, heads: 2, runtime });
      assert.ok(after.getMemoryUsage().heapUsed <= base + 4096, 'the disposed weights were freed');
      after.dispose();
    });
  });
}
