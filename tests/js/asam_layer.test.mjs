// WasmASAMLayer / WasmASAMEncoder on both WASM variants: the layer against a float64 JS
// layer with the same weights (projections, dense attention under the local pattern's
// mask, output projection), the info object, weights round trips and refusals, the encoder
// as its layers in sequence, bad input.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WasmASAMEncoder, WasmASAMLayer, WasmHybridASAM, createRuntime } from '../../js/index.js';
import { assertClose, freshSeed, makeRandom, randomF32 } from './helpers.mjs';

const simdRuntime = await createRuntime({ variant: 'simd' });
const RUNTIMES = [
  { name: 'simd-threads', runtime: undefined },
  { name: 'simd', runtime: simdRuntime },
];

// x [rows][inDim] · Wᵀ + b, W [outDim][inDim], in float64.
function linear(x, rows, inDim, w, b, outDim) {
  const y = new Float64Array(rows * outDim);
  for (let r = 0; r < rows; ++r) {
    for (let o = 0; o < outDim; ++o) {
      let acc = b[o];
      for (let i = 0; i < inDim; ++i) acc += x[r * inDim + i] * w[o * inDim + i];
      y[r * outDim + o] = acc;
    }
  }
  return y;
}

// The layer without gate, query i attending key j where attends(i, j) (default: the local
// pattern, |i - j| <= window / 2).
function referenceLocalLayer(x, { batch, seq, dim, heads, dimHead, window, attends }, w) {
  const inner = heads * dimHead;
  const rows = batch * seq;
  const q = linear(x, rows, dim, w['q_proj.weight'], w['q_proj.bias'], inner);
  const k = linear(x, rows, dim, w['k_proj.weight'], w['k_proj.bias'], inner);
  const v = linear(x, rows, dim, w['v_proj.weight'], w['v_proj.bias'], inner);
  const attended = new Float64Array(rows * inner);
  const scale = 1 / Math.sqrt(dimHead);
  const half = Math.floor(window / 2);
  const allowed = attends ?? ((i, j) => Math.abs(i - j) <= half);
  for (let b = 0; b < batch; ++b) {
    for (let h = 0; h < heads; ++h) {
      for (let i = 0; i < seq; ++i) {
        const logits = [];
        for (let j = 0; j < seq; ++j) {
          if (!allowed(i, j)) continue;
          let s = 0;
          for (let c = 0; c < dimHead; ++c) s += q[(b * seq + i) * inner + h * dimHead + c] * k[(b * seq + j) * inner + h * dimHead + c];
          logits.push([j, s * scale]);
        }
        const max = Math.max(...logits.map(([, s]) => s));
        let sum = 0;
        for (const l of logits) sum += (l[1] = Math.exp(l[1] - max));
        for (const [j, p] of logits) {
          for (let c = 0; c < dimHead; ++c) {
            attended[(b * seq + i) * inner + h * dimHead + c] += (p / sum) * v[(b * seq + j) * inner + h * dimHead + c];
          }
        }
      }
    }
  }
  return linear(attended, rows, inner, w['out_proj.weight'], w['out_proj.bias'], dim);
}

function randomWeights(layer, rand) {
  return Object.fromEntries(Object.entries(layer.parameterSizes()).map(([name, size]) => [name, randomF32(rand, size, 0.5)]));
}

for (const { name, runtime } of RUNTIMES) {
  describe(`WasmASAMLayer (${name})`, () => {
    test('local pattern without the gate equals a float64 layer with the same weights', () => {
      const seed = freshSeed();
      const rand = makeRandom(seed);
      for (const [batch, seq] of [[1, 1], [2, 3], [1, 17], [2, 70]]) {
        const cfg = { batch, seq, dim: 16, heads: 2, dimHead: 8, window: 8 };
        const layer = new WasmASAMLayer({ dim: 16, numHeads: 2, patternType: 'local', windowSize: 8, blockSize: 32,
          useAdaptiveGate: false, runtime });
        const w = randomWeights(layer, rand);
        layer.loadWeights(w);
        const x = randomF32(rand, batch * seq * 16);
        const got = layer.forward(x, { batch });
        assertClose(got, referenceLocalLayer(x, cfg, w), `seed ${seed} batch ${batch} seq ${seq}`, 1e-4);
        layer.dispose();
      }
    });

    test('info: the gate, the routing and the measured sparse ratio', () => {
      const rand = makeRandom(freshSeed());
      const layer = new WasmASAMLayer({ dim: 32, numHeads: 4, patternType: 'adaptive', windowSize: 16, blockSize: 32,
        runtime });
      const batch = 2, seq = 200;
      const { output, info } = layer.forward(randomF32(rand, batch * seq * 32), { batch, returnInfo: true });
      assert.equal(output.length, batch * seq * 32);
      assert.equal(info.gateValues.length, batch * 4 * seq);
      assert.ok(info.gateValues.every((g) => g > 0 && g < 1));
      assert.equal(info.confidence.length, batch * 4);
      assert.equal(info.patternLogits.length, batch * 4);
      assert.equal(info.patterns.length, batch);
      for (const p of info.patterns) assert.ok(['local', 'strided', 'clustered', 'hierarchical'].includes(p), p);
      assert.equal(info.mixedHeads.length, batch * 4);
      const want = 1 - (info.computedScores + info.densePathScores) / info.denseScores;
      assert.ok(Math.abs(info.sparseRatio - want) < 1e-12, `${info.sparseRatio} vs ${want}`);
      assert.equal(info.denseScores, batch * 4 * seq * seq);
      layer.dispose();

      const fixed = new WasmASAMLayer({ dim: 32, numHeads: 4, patternType: 'local', windowSize: 16, blockSize: 32,
        useAdaptiveGate: false, runtime });
      const r = fixed.forward(randomF32(rand, seq * 32), { returnInfo: true });
      assert.equal(r.info.densePathScores, 0);
      assert.ok(r.info.sparseRatio > 0.5, `local at seq ${seq}: ${r.info.sparseRatio}`);
      fixed.dispose();
    });

    test('weights reload bit-exactly; a bad buffer is refused and the old weights stay', () => {
      const rand = makeRandom(freshSeed());
      const opts = { dim: 16, numHeads: 2, patternType: 'hierarchical', windowSize: 8, blockSize: 32, runtime };
      const a = new WasmASAMLayer({ ...opts, seed: 1 });
      const b = new WasmASAMLayer({ ...opts, seed: 2 });
      const x = randomF32(rand, 40 * 16);
      const before = b.forward(x);
      const saved = a.saveWeights();
      const corrupt = saved.slice();
      corrupt[corrupt.length - 1] ^= 0xff;
      assert.throws(() => b.loadWeights(corrupt), /weights/);
      assert.deepEqual(b.forward(x), before);
      b.loadWeights(saved);
      assert.deepEqual(b.forward(x), a.forward(x));
      assert.throws(() => b.loadWeights({ 'q_proj.weight': new Float32Array(3) }), /q_proj\.weight/);
      assert.throws(() => b.loadWeights({ nonsense: new Float32Array(3) }), /nonsense/);
      assert.deepEqual(b.forward(x), a.forward(x));
      a.dispose();
      b.dispose();
    });

    test('bad input names the parameter and the module keeps working', () => {
      assert.throws(() => new WasmASAMLayer({ patternType: 'diagonal', runtime }), /patternType/);
      assert.throws(() => new WasmASAMLayer({ blockSize: 48, runtime }), /blockSize/);
      assert.throws(() => new WasmASAMLayer({ dim: 30, numHeads: 4, runtime }), /numHeads|dim/);
      assert.throws(() => new WasmASAMLayer({ confidenceThreshold: 2, runtime }), /confidenceThreshold/);
      const layer = new WasmASAMLayer({ dim: 16, numHeads: 2, windowSize: 8, blockSize: 32, runtime });
      assert.throws(() => layer.forward(new Float32Array(15)), /x/);
      assert.throws(() => layer.forward(new Float64Array(16)), /x/);
      assert.throws(() => layer.forward(new Float32Array(16), { mask: new Uint8Array(1) }), /mask/);
      assert.throws(() => layer.forward(new Float32Array(32), { out: new Float32Array(3) }), /out/);
      assert.equal(layer.forward(new Float32Array(32)).length, 32);
      layer.dispose();
      assert.throws(() => layer.forward(new Float32Array(16)), /disposed/);
    });
  });

  describe(`WasmHybridASAM (${name})`, () => {
    test('window plus global tokens equals a float64 layer under the same rule', () => {
      const seed = freshSeed();
      const rand = makeRandom(seed);
      for (const [seq, window, globals] of [[1, 4, 1], [17, 4, 0], [70, 6, 3], [130, 16, 5]]) {
        const hybrid = new WasmHybridASAM({ dim: 16, numHeads: 2, blockSize: 32, localWindowSize: window,
          numGlobalTokens: globals, runtime });
        const w = randomWeights(hybrid, rand);
        hybrid.loadWeights(w);
        const x = randomF32(rand, 2 * seq * 16);
        const g = Math.min(globals, seq);
        const attends = (i, j) => Math.abs(i - j) <= Math.floor(window / 2) || i < g || j < g;
        const { output, info } = hybrid.forward(x, { batch: 2, returnInfo: true });
        assertClose(output, referenceLocalLayer(x, { batch: 2, seq, dim: 16, heads: 2, dimHead: 8, window, attends }, w),
          `seed ${seed} seq ${seq} window ${window} globals ${globals}`, 1e-4);
        assert.ok(info.sparseRatio <= 1 && Number.isFinite(info.sparseRatio));
        hybrid.dispose();
      }
      assert.throws(() => new WasmHybridASAM({ localWindowSize: 0, runtime }), /localWindowSize/);
      assert.throws(() => new WasmHybridASAM({ numGlobalTokens: -1, runtime }), /numGlobalTokens/);
    });
  });

  describe(`WasmASAMEncoder (${name})`, () => {
    test('equals its layers applied in sequence', () => {
      const rand = makeRandom(freshSeed());
      const opts = { dim: 16, numHeads: 2, patternType: 'local', windowSize: 8, blockSize: 32, runtime };
      const encoder = new WasmASAMEncoder({ ...opts, numLayers: 2 });
      assert.equal(encoder.numLayers, 2);
      const layers = [0, 1].map((i) => {
        const l = new WasmASAMLayer(opts);
        l.loadWeights(encoder.saveWeights(i));
        return l;
      });
      const x = randomF32(rand, 2 * 33 * 16);
      const { output, infos } = encoder.forward(x, { batch: 2, returnInfo: true });
      assert.equal(infos.length, 2);
      assert.deepEqual(output, layers[1].forward(layers[0].forward(x, { batch: 2 }), { batch: 2 }));
      assert.throws(() => encoder.saveWeights(2), /layer/);
      assert.throws(() => new WasmASAMEncoder({ numLayers: 0, runtime }), /numLayers/);
      encoder.dispose();
      for (const l of layers) l.dispose();
    });
  });
}
