// Int8 and fp16 projection weights on both WASM variants: the int8 layer reproduces the
// documented scheme bit for bit (codes per output channel and per row, integer sums,
// acc * s_x * s_w + b in float32) on odd shapes, through a multi-head call whose attention
// is exact (one key); quantized layers against float64 with the float weights, within the
// measured bound; the reports' bytes and errors; zero weights and rows; saving; the ASAM
// classes and quantizeASAMModel; bad input named, and the module keeps working.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  WasmASAMEncoder, WasmASAMLayer, WasmHybridASAM, WasmMultiHeadAttention, createRuntime, quantizeASAMModel,
} from '../../js/index.js';
import { assertThrowsNamed, baseSeed, freshSeed, makeRandom, randomF32 } from './helpers.mjs';

const simdRuntime = await createRuntime({ variant: 'simd' });
const RUNTIMES = [
  { name: 'simd-threads', runtime: undefined },
  { name: 'simd', runtime: simdRuntime },
];
const f = Math.fround;

function roundHalfEven(v) {
  const r = Math.round(v);
  return Math.abs(v % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// s = max|v| / 127, q = round(v * (127 / max)) in float32 arithmetic, as documented.
function codes(v) {
  let m = 0;
  for (const x of v) m = Math.max(m, Math.abs(x));
  if (m === 0) return { q: new Int32Array(v.length), scale: 0 };
  const inv = f(127 / m);
  return { q: Int32Array.from(v, (x) => roundHalfEven(f(x * inv))), scale: f(m / 127) };
}

// The int8 projection as documented: float32 result of acc * s_x * s_w + b.
function linearInt8(x, rows, inDim, w, b, outDim) {
  const wq = Array.from({ length: outDim }, (_, o) => codes(w.subarray(o * inDim, (o + 1) * inDim)));
  const y = new Float32Array(rows * outDim);
  for (let r = 0; r < rows; ++r) {
    const xq = codes(x.subarray(r * inDim, (r + 1) * inDim));
    for (let o = 0; o < outDim; ++o) {
      let acc = 0;
      for (let i = 0; i < inDim; ++i) acc += xq.q[i] * wq[o].q[i];
      y[r * outDim + o] = f(f(f(f(acc) * xq.scale) * wq[o].scale) + (b ? b[o] : 0));
    }
  }
  return y;
}

function linear64(x, rows, inDim, w, b, outDim) {
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

// Float64 self-attention layer (no mask) over float weights, for the error bound.
function referenceMha({ query, key, value, sq, sk, e, kdim, vdim, heads, w, causal }) {
  const d = e / heads;
  const bias = w.in_proj_bias;
  const q = linear64(query, sq, e, w.q_proj_weight, bias?.subarray(0, e), e);
  const k = linear64(key, sk, kdim, w.k_proj_weight, bias?.subarray(e, 2 * e), e);
  const v = linear64(value, sk, vdim, w.v_proj_weight, bias?.subarray(2 * e), e);
  const out = new Float64Array(sq * e);
  for (let h = 0; h < heads; ++h) {
    for (let i = 0; i < sq; ++i) {
      const s = new Float64Array(sk);
      let max = -Infinity;
      const last = causal ? i : sk - 1;
      for (let j = 0; j <= last; ++j) {
        let dot = 0;
        for (let t = 0; t < d; ++t) dot += q[i * e + h * d + t] * k[j * e + h * d + t];
        s[j] = dot / Math.sqrt(d);
        max = Math.max(max, s[j]);
      }
      let sum = 0;
      for (let j = 0; j <= last; ++j) sum += (s[j] = Math.exp(s[j] - max));
      for (let j = 0; j <= last; ++j) {
        for (let t = 0; t < d; ++t) out[i * e + h * d + t] += (s[j] / sum) * v[j * e + h * d + t];
      }
    }
  }
  return linear64(out, sq, e, w['out_proj.weight'], w['out_proj.bias'], e);
}

function randomWeights(random, e, kdim, vdim, bias) {
  const w = {
    q_proj_weight: randomF32(random, e * e, 1 / Math.sqrt(e)), k_proj_weight: randomF32(random, e * kdim, 1 / Math.sqrt(kdim)),
    v_proj_weight: randomF32(random, e * vdim, 1 / Math.sqrt(vdim)), 'out_proj.weight': randomF32(random, e * e, 1 / Math.sqrt(e)),
  };
  if (bias) Object.assign(w, { in_proj_bias: randomF32(random, 3 * e, 0.5), 'out_proj.bias': randomF32(random, e, 0.5) });
  return w;
}

// sqrt(sum (a - b)^2 / sum b^2)
function rmsRelative(a, b) {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; ++i) num += (a[i] - b[i]) ** 2, den += b[i] ** 2;
  return Math.sqrt(num / den);
}

for (const { name, runtime } of RUNTIMES) {
  describe(`int8 / fp16 projections (${name})`, () => {
    test('the int8 layer is the documented integer scheme, bit for bit, on odd shapes', () => {
      const seed = freshSeed();
      const random = makeRandom(seed);
      // One key per batch element: attention returns the value row exactly, so the output is
      // out_proj(v_proj(value)) through two int8 projections the reference reproduces.
      for (const [e, heads, vdim, batch, bias] of [[20, 4, 13, 1, true], [12, 3, 37, 3, false], [20, 5, 7, 17, true],
        [36, 4, 33, 1029, true]]) {
        const mha = new WasmMultiHeadAttention({ modelDim: e, heads, kdim: 5, vdim, bias, runtime });
        const w = randomWeights(random, e, 5, vdim, bias);
        mha.loadWeights(w);
        mha.quantizeWeights('int8');
        const query = randomF32(random, batch * e), key = randomF32(random, batch * 5);
        const value = randomF32(random, batch * vdim, 3);
        for (let i = 0; i < vdim; ++i) value[i] = 0;  // a zero row: scale 0, exactly the bias
        const { output } = mha.forwardExtended({ query, key, value, batch });
        const v = linearInt8(value, batch, vdim, w.v_proj_weight, w.in_proj_bias?.subarray(2 * e), e);
        const want = linearInt8(v, batch, e, w['out_proj.weight'], w['out_proj.bias'], e);
        let mismatches = 0;
        for (let i = 0; i < want.length; ++i) mismatches += Object.is(output[i], want[i]) ? 0 : 1;
        assert.equal(mismatches, 0, `seed ${seed} base ${baseSeed()} e ${e} vdim ${vdim} batch ${batch}: ${mismatches} values differ`);
        mha.dispose();
      }
    });

    test('int8 and fp16 layers against float64 with the float weights; the report measures bytes and error', () => {
      const seed = freshSeed();
      const random = makeRandom(seed);
      for (const [e, heads, kdim, vdim, sq, causal] of [[64, 4, 64, 64, 33, false], [48, 3, 17, 29, 130, true]]) {
        const w = randomWeights(random, e, kdim, vdim, true);
        const query = randomF32(random, sq * e), key = randomF32(random, sq * kdim), value = randomF32(random, sq * vdim);
        const want = referenceMha({ query, key, value, sq, sk: sq, e, kdim, vdim, heads, w, causal });
        for (const [precision, bound] of [['int8', 0.05], ['fp16', 2e-3]]) {
          const mha = new WasmMultiHeadAttention({ modelDim: e, heads, kdim, vdim, causal, runtime });
          mha.loadWeights(w);
          const floatOut = mha.forwardExtended({ query, key, value }).output;
          const before = mha.getMemoryUsage();
          assert.equal(before.weightPrecision, 'fp32');
          assert.equal(before.quantization, null);
          const report = mha.quantizeWeights(precision, { probe: { query, key, value } });
          const got = mha.forwardExtended({ query, key, value }).output;
          const err = rmsRelative(got, want);
          const ctx = `seed ${seed} ${precision} e ${e}: error ${err}`;
          assert.ok(err < bound && err > 0, ctx);
          // The report's error is the one measured here against the float32 layer.
          assert.ok(Math.abs(report.outputError.relative - rmsRelative(got, floatOut)) < 1e-9, ctx);
          assert.equal(report.outputError.reference, 'fp32');
          assert.equal(report.outputError.probe, 'given');
          const matrices = e * (2 * e + kdim + vdim);
          assert.equal(report.weightBytesBefore, before.weightBytes);
          assert.ok(report.weightBytesBefore >= 8 * matrices, 'float32 keeps matrices and panels');
          assert.ok(report.weightBytesAfter < (precision === 'int8' ? 1.3 : 2.3) * matrices + 4 * 4 * e + 1024, ctx);
          assert.equal(mha.getMemoryUsage().weightBytes, report.weightBytesAfter);
          assert.equal(mha.getMemoryUsage().weightPrecision, precision);
          assert.equal(mha.getMemoryUsage().quantization, report);
          mha.dispose();
        }
      }
    });

    test('zero weights give the bias, never NaN; saved weights re-quantize to the same layer', () => {
      const random = makeRandom(freshSeed());
      const e = 16, heads = 2, sq = 9;
      const mha = new WasmMultiHeadAttention({ modelDim: e, heads, runtime });
      const w = randomWeights(random, e, e, e, true);
      w['out_proj.weight'].fill(0);
      w.q_proj_weight.fill(0);
      mha.loadWeights(w);
      mha.quantizeWeights('int8');
      const x = randomF32(random, sq * e);
      const out = mha.forward(x, x, x);
      for (let i = 0; i < out.length; ++i) assert.equal(out[i], w['out_proj.bias'][i % e]);
      const full = randomWeights(random, e, e, e, true);
      mha.loadWeights(full);  // loads keep the precision
      assert.equal(mha.getMemoryUsage().weightPrecision, 'int8');
      const quantized = mha.forward(x, x, x);
      const copy = new WasmMultiHeadAttention({ modelDim: e, heads, runtime });
      copy.loadWeights(mha.saveWeights());  // float32: the dequantized weights
      assert.equal(copy.getMemoryUsage().weightPrecision, 'fp32');
      copy.quantizeWeights('int8');
      assert.deepEqual(copy.forward(x, x, x), quantized);
      const report = copy.quantizeWeights('int8');  // again: same codes, no change
      assert.equal(report.outputError.relative, 0);
      assert.equal(report.outputError.probe, 'random');
      mha.dispose();
      copy.dispose();
    });

    test('ASAM layer, encoder and hybrid: quantizeASAMModel in place, with a measured report', () => {
      const seed = freshSeed();
      const random = makeRandom(seed);
      const dim = 64, seq = 96;
      const x = randomF32(random, seq * dim);
      const options = { dim, numHeads: 4, patternType: 'local', windowSize: 64, blockSize: 32, seed: 7, runtime };
      for (const model of [new WasmASAMLayer(options), new WasmASAMEncoder({ ...options, numLayers: 2 }),
        new WasmHybridASAM({ ...options, localWindowSize: 32 })]) {
        const ref = model.forward(x);
        const bytes = model.getMemoryUsage().weightBytes;
        assert.equal(quantizeASAMModel(model, 'qint8', { probe: x }), model);
        const report = model.getMemoryUsage().quantization;
        const got = model.forward(x);
        const err = rmsRelative(got, ref);
        const ctx = `seed ${seed} ${model.constructor.name}: ${err}`;
        assert.ok(err > 0 && err < 0.05, ctx);
        assert.ok(Math.abs(report.outputError.relative - err) < 1e-9, ctx);
        assert.equal(report.weightBytesBefore, bytes);
        assert.ok(report.weightBytesAfter < bytes / 6, ctx);
        quantizeASAMModel(model, 'float16');
        assert.equal(model.getMemoryUsage().weightPrecision, 'fp16');
        assert.ok(model.getMemoryUsage().weightBytes > report.weightBytesAfter, ctx);
        model.dispose();
      }
      // The layer's save after quantization loads into a float layer and re-quantizes alike.
      const layer = new WasmASAMLayer(options);
      layer.quantizeWeights('int8');
      const copy = new WasmASAMLayer({ ...options, seed: 8 });
      copy.loadWeights(layer.saveWeights());
      copy.quantizeWeights('int8');
      assert.deepEqual(copy.forward(x), layer.forward(x));
      layer.dispose();
      copy.dispose();
    });

    test('bad input is refused by name and the module keeps working', () => {
      const mha = new WasmMultiHeadAttention({ modelDim: 8, heads: 2, kdim: 4, runtime });
      assertThrowsNamed(() => mha.quantizeWeights('int4'), RangeError, 'precision');
      assertThrowsNamed(() => mha.quantizeWeights(8), TypeError, 'precision');
      assertThrowsNamed(() => mha.quantizeWeights('int8', { probe: new Float32Array(16) }), RangeError, 'probe');
      assertThrowsNamed(() => mha.quantizeWeights('int8', { probe: 3 }), TypeError, 'probe');
      assertThrowsNamed(() => mha.quantizeWeights('int8', { probe: { query: new Float32Array(7) } }), TypeError, 'key');
      assertThrowsNamed(() => mha.quantizeWeights('int8', 5), TypeError, 'options');
      const huge = new WasmMultiHeadAttention({ modelDim: 4, heads: 1, runtime });
      const w = randomWeights(makeRandom(1), 4, 4, 4, true);
      w.q_proj_weight[0] = 1e6;
      huge.loadWeights(w);
      assertThrowsNamed(() => huge.quantizeWeights('fp16'), RangeError, 'weights');
      assert.equal(huge.getMemoryUsage().weightPrecision, 'fp32');
      assertThrowsNamed(() => quantizeASAMModel(null, 'int8'), TypeError, 'model');
      const layer = new WasmASAMLayer({ dim: 16, numHeads: 2, runtime });
      assertThrowsNamed(() => quantizeASAMModel(layer, 'fp32'), RangeError, 'dtype');
      assertThrowsNamed(() => quantizeASAMModel(layer, 'int8', { probe: new Float32Array(17) }), RangeError, 'probe');
      assertThrowsNamed(() => layer.quantizeWeights('int8', { probe: [1, 2] }), TypeError, 'probe');
      layer.dispose();
      assert.throws(() => layer.quantizeWeights('int8'), /disposed/);
      // Still working: a quantization after the errors.
      assert.equal(mha.quantizeWeights('int8').precision, 'int8');
      assert.equal(huge.quantizeWeights('int8').precision, 'int8');
      mha.dispose();
      huge.dispose();
    });
  });
}
