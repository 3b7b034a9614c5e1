// WasmAdaptivePrecisionAttention on both WASM variants, against a float64 reference whose keys
// and values are rounded to the storage the layer reports (inputs and weights are multiples of
// 2^-6, so the float32 projections are exact and round to the same halves as the reference's):
// fixed precisions with causal and masks; the adaptive choice either side of the errors it
// measures; prefill with keepCache, then incremental steps (bottom-right causal) over the
// half-precision cache; weights shared with WasmDenseAttention; bad input; dispose.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WasmAdaptivePrecisionAttention, WasmDenseAttention, createRuntime } from '../../js/index.js';
import { assertClose, assertThrowsNamed, freshSeed, makeRandom } from './helpers.mjs';

const simdRuntime = await createRuntime({ variant: 'simd' });
const RUNTIMES = [
  { name: 'simd-threads', runtime: undefined },
  { name: 'simd', runtime: simdRuntime },
];

// Normal values rounded to multiples of 2^-6.
function coarse(rand, length, sigma = 1) {
  const out = new Float32Array(length);
  for (let i = 0; i < length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rand())), t = 2 * Math.PI * rand();
    out[i] = Math.round(r * Math.cos(t) * sigma * 64) / 64;
    if (i + 1 < length) out[i + 1] = Math.round(r * Math.sin(t) * sigma * 64) / 64;
  }
  return out;
}

function roundTiesEven(x) {
  const f = Math.floor(x), diff = x - f;
  if (diff !== 0.5) return Math.round(x);
  return f % 2 === 0 ? f : f + 1;
}

// x rounded to a binary format with `fraction` bits, smallest normal exponent `minExp`,
// largest finite `maxFinite` (round to nearest even; beyond the largest finite → ±inf).
function roundTo(x, fraction, minExp, maxFinite) {
  if (x === 0 || !Number.isFinite(x)) return x;
  let e = Math.floor(Math.log2(Math.abs(x)));
  if (2 ** e > Math.abs(x)) e -= 1;
  if (2 ** (e + 1) <= Math.abs(x)) e += 1;
  const ulp = 2 ** (Math.max(e, minExp) - fraction);
  const r = roundTiesEven(x / ulp) * ulp;
  return Math.abs(r) > maxFinite ? Math.sign(r) * Infinity : r;
}
const STORED = {
  fp32: (x) => x,
  fp16: (x) => roundTo(x, 10, -14, 65504),
  bf16: (x) => roundTo(x, 7, -126, 3.3895313892515355e38),
};

function linear(x, rows, e, w, b) {
  const y = new Float64Array(rows * e);
  for (let r = 0; r < rows; ++r) {
    for (let o = 0; o < e; ++o) {
      let s = b[o];
      for (let i = 0; i < e; ++i) s += x[r * e + i] * w[o * e + i];
      y[r * e + o] = s;
    }
  }
  return y;
}

// The layer in float64; query i of a batch element sees keys j < visible(i); mask additive [sq][sk].
function reference({ query, key, value, batch, sq, sk, e, heads, w, precision, visible = () => sk, mask = null }) {
  const d = e / heads;
  const W = w.in_proj_weight, B = w.in_proj_bias;
  const q = linear(query, batch * sq, e, W.subarray(0, e * e), B.subarray(0, e));
  const k = linear(key, batch * sk, e, W.subarray(e * e, 2 * e * e), B.subarray(e, 2 * e)).map(STORED[precision]);
  const v = linear(value, batch * sk, e, W.subarray(2 * e * e), B.subarray(2 * e)).map(STORED[precision]);
  const attended = new Float32Array(batch * sq * e);
  for (let b = 0; b < batch; ++b) {
    for (let h = 0; h < heads; ++h) {
      for (let i = 0; i < sq; ++i) {
        const n = visible(i);
        const s = new Float64Array(n);
        let max = -Infinity;
        for (let j = 0; j < n; ++j) {
          let dot = 0;
          for (let t = 0; t < d; ++t) dot += q[(b * sq + i) * e + h * d + t] * k[(b * sk + j) * e + h * d + t];
          s[j] = dot / Math.sqrt(d) + (mask ? mask[i * sk + j] : 0);
          max = Math.max(max, s[j]);
        }
        if (max === -Infinity) continue;
        let sum = 0;
        for (let j = 0; j < n; ++j) sum += (s[j] = Math.exp(s[j] - max));
        for (let t = 0; t < d; ++t) {
          let acc = 0;
          for (let j = 0; j < n; ++j) acc += (s[j] / sum) * v[(b * sk + j) * e + h * d + t];
          attended[(b * sq + i) * e + h * d + t] = acc;
        }
      }
    }
  }
  return linear(attended, batch * sq, e, w['out_proj.weight'], w['out_proj.bias']);
}

function randomWeights(rand, e) {
  return {
    in_proj_weight: coarse(rand, 3 * e * e, 1 / Math.sqrt(e)), in_proj_bias: coarse(rand, 3 * e, 0.5),
    'out_proj.weight': coarse(rand, e * e, 1 / Math.sqrt(e)), 'out_proj.bias': coarse(rand, e, 0.5),
  };
}

for (const { name, runtime } of RUNTIMES) {
  describe(`WasmAdaptivePrecisionAttention (${name})`, () => {
    test('fixed precisions equal float64 attention over the stored keys and values (causal, masks, batch)', () => {
      const seed = freshSeed();
      const rand = makeRandom(seed);
      for (const [e, heads, batch, sq, sk, causal, masked] of [[32, 4, 2, 19, 23, true, false], [16, 2, 1, 1, 1, false, false],
        [24, 3, 3, 17, 17, false, true], [64, 8, 1, 300, 300, true, false]]) {
        const w = randomWeights(rand, e);
        const query = coarse(rand, batch * sq * e), key = coarse(rand, batch * sk * e), value = coarse(rand, batch * sk * e);
        const mask = masked ? Float32Array.from({ length: sq * sk }, (_, x) => (x % 4 === 1 ? -Infinity : Math.round(rand() * 8) / 8)) : null;
        for (const precision of ['fp32', 'fp16', 'bf16']) {
          const layer = new WasmAdaptivePrecisionAttention({ embedDim: e, numHeads: heads, defaultPrecision: precision, runtime });
          layer.loadWeights(w);
          const got = layer.forward(query, key, value, { batch, causal, attentionMask: mask });
          assert.equal(got.precision, precision);
          assert.match(got.reason, /fixed/);
          const visible = (i) => (causal ? Math.min(i + 1, sk) : sk);
          assertClose(got.output, reference({ query, key, value, batch, sq, sk, e, heads, w, precision, visible, mask }),
            `seed ${seed} ${precision} e ${e} batch ${batch} sq ${sq}`, 1e-4);
          layer.dispose();
        }
      }
    });

    test('adaptive picks bf16, fp16 or fp32 by the tolerance, and reports the errors it measured', () => {
      const seed = freshSeed();
      const rand = makeRandom(seed);
      const e = 32, heads = 4, batch = 2, sq = 40, sk = 50;
      const w = randomWeights(rand, e);
      const query = coarse(rand, batch * sq * e), key = coarse(rand, batch * sk * e), value = coarse(rand, batch * sk * e);
      const exact = reference({ query, key, value, batch, sq, sk, e, heads, w, precision: 'fp32' });
      const run = (tolerance) => {
        const layer = new WasmAdaptivePrecisionAttention({ embedDim: e, numHeads: heads, tolerance, runtime });
        layer.loadWeights(w);
        const got = layer.forward(query, key, value, { batch });
        const decision = layer.lastDecision;
        const stats = layer.getPrecisionStatistics();
        layer.dispose();
        return { got, decision, stats };
      };
      const loose = run(1e-2);
      assert.equal(loose.got.precision, 'bf16', loose.got.reason);
      const bf16Error = loose.decision.sampledErrorBf16;
      assert.ok(bf16Error > 1e-4 && bf16Error <= 1e-2, `sampled bf16 error ${bf16Error}`);
      assert.equal(loose.decision.sampledErrorFp16, null);
      assert.ok(loose.decision.sampledRows >= 16);
      assert.deepEqual([loose.stats.calls, loose.stats.bf16, loose.stats.recent.length], [1, 1, 1]);
      // What the call really lost is of the order the sample measured.
      const whole = assertClose(loose.got.output, exact, `seed ${seed} bf16 vs fp32`, 4 * bf16Error);
      assert.ok(whole > bf16Error / 4, `whole-call error ${whole} vs sampled ${bf16Error}`);

      const tighter = run(bf16Error / 2);
      assert.equal(tighter.got.precision, 'fp16', tighter.got.reason);
      assert.ok(tighter.decision.sampledErrorFp16 < bf16Error / 2);
      assertClose(tighter.got.output, reference({ query, key, value, batch, sq, sk, e, heads, w, precision: 'fp16' }),
        `seed ${seed} fp16`, 1e-4);

      const strict = run(0);
      assert.equal(strict.got.precision, 'fp32', strict.got.reason);
      assertClose(strict.got.output, exact, `seed ${seed} fp32`, 1e-4);
    });

    test('keepCache prefill, then steps attend over the half-precision cache (bottom-right causal)', () => {
      const seed = freshSeed();
      const rand = makeRandom(seed);
      const e = 32, heads = 4, prefill = 29;
      const w = randomWeights(rand, e);
      const tokens = coarse(rand, (prefill + 3) * e);
      const layer = new WasmAdaptivePrecisionAttention({ embedDim: e, numHeads: heads, defaultPrecision: 'bf16', runtime });
      layer.loadWeights(w);
      assert.equal(layer.cachePrecision, null);
      const first = tokens.subarray(0, prefill * e);
      layer.forward(first, first, first, { causal: true, keepCache: true });
      assert.equal(layer.cacheLength, prefill);
      assert.equal(layer.cachePrecision, 'bf16');
      assert.equal(layer.getMemoryUsage().cacheBytes, prefill * 2 * e * 2);
      let done = prefill;
      for (const rows of [1, 2]) {
        const x = tokens.subarray(done * e, (done + rows) * e);
        const got = layer.step(x, x, x);
        assert.equal(got.precision, 'bf16');
        assert.equal(layer.lastDecision.incremental, true);
        const all = tokens.subarray(0, (done + rows) * e);
        const total = done + rows;
        assertClose(got.output, reference({ query: x, key: all, value: all, batch: 1, sq: rows, sk: total, e, heads, w,
          precision: 'bf16', visible: (i) => total - rows + i + 1 }), `seed ${seed} step of ${rows}`, 1e-4);
        done = total;
      }
      assert.equal(layer.cacheLength, done);
      assert.equal(layer.getPrecisionStatistics().calls, 3);
      layer.resetCache();
      assert.equal(layer.cacheLength, 0);
      layer.dispose();
    });

    test('weights move from WasmDenseAttention; fp32 storage gives its output', () => {
      const rand = makeRandom(freshSeed());
      const dense = new WasmDenseAttention({ embedDim: 16, numHeads: 2, seed: 5, runtime });
      const layer = new WasmAdaptivePrecisionAttention({ embedDim: 16, numHeads: 2, defaultPrecision: 'fp32', runtime });
      layer.loadWeights(dense.saveWeights());
      const x = coarse(rand, 2 * 7 * 16);
      assertClose(layer.forward(x, x, x, { batch: 2 }).output, dense.forward(x, x, x, { batch: 2 }).output, 'same weights', 1e-6);
      assert.deepEqual(layer.saveWeights(), dense.saveWeights());
      dense.dispose();
      layer.dispose();
    });

    test('bad input names the parameter; the module keeps working', () => {
      const make = (o) => new WasmAdaptivePrecisionAttention({ embedDim: 8, numHeads: 2, runtime, ...o });
      assertThrowsNamed(() => make({ defaultPrecision: 'fp8' }), RangeError, 'defaultPrecision');
      assertThrowsNamed(() => make({ tolerance: -1 }), RangeError, 'tolerance');
      assertThrowsNamed(() => make({ tolerance: NaN }), RangeError, 'tolerance');
      assertThrowsNamed(() => make({ numHeads: 3 }), RangeError, 'numHeads');
      assertThrowsNamed(() => make({ sampleRows: 0 }), RangeError, 'sampleRows');
      assertThrowsNamed(() => new WasmAdaptivePrecisionAttention({ runtime }), TypeError, 'embedDim');
      const layer = make({});
      const x = new Float32Array(2 * 3 * 8);
      assertThrowsNamed(() => layer.forward(x, x, x, { batch: 2, keepCache: true }), RangeError, 'keepCache');
      assertThrowsNamed(() => layer.forward(x, x, x.subarray(8), { batch: 2 }), RangeError, 'value');
      assertThrowsNamed(() => layer.forward(x, x, x, { causal: 'sideways' }), RangeError, 'causal');
      assertThrowsNamed(() => layer.step(x.subarray(0, 8), x.subarray(0, 16), x.subarray(0, 8)), RangeError, 'key');
      assert.equal(layer.lastDecision, null);
      assert.equal(layer.forward(x, x, x, { batch: 2 }).output.length, x.length);
      assert.equal(layer.getPrecisionStatistics().calls, 1);
      layer.dispose();
      assertThrowsNamed(() => layer.forward(x, x, x), Error, 'forward');
      assert.equal(layer.disposed, true);
    });
  });
}
