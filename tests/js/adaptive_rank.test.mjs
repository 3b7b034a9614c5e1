// WasmAdaptiveRankAttention and lowRankAttention on both WASM variants: the Nyström kernel
// against float64 attention (small error on smooth diffuse inputs, shrinking with the
// landmarks; near exact with one landmark per token), the per-head decisions (peaked heads
// dense and equal to dense attention, diffuse heads low rank), the statistics, the dense
// fall-backs (causal, mask, short sequences), the layer's projections, bad input, dispose.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WasmAdaptiveRankAttention, createRuntime, lowRankAttention } from '../../js/index.js';
import { assertClose, assertThrowsNamed, freshSeed, makeRandom, randomF32 } from './helpers.mjs';
import { referenceFlash } from './reference.mjs';

const simdRuntime = await createRuntime({ variant: 'simd' });
const RUNTIMES = [
  { name: 'simd-threads', runtime: undefined },
  { name: 'simd', runtime: simdRuntime },
];
const METHODS = ['entropy', 'power', 'random'];

// sqrt(Σ(a − b)²) / sqrt(Σ b²), the error the README and the bench report for low rank.
function relL2(a, b) {
  let num = 0, den = 0;
  for (let i = 0; i < b.length; ++i) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-300));
}

function gaussian(rand) {
  const u = Math.max(rand(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
}

// [seq][heads][dim] rows varying smoothly along the sequence: per head, 6 random sinusoids of
// the position mixed by a random matrix, plus noise 0.05 (diffuse attention, slowly varying).
function smoothRows(rand, seq, heads, dim, amp = 0.7) {
  const x = new Float32Array(seq * heads * dim);
  const latent = 6;
  for (let h = 0; h < heads; ++h) {
    const freq = Array.from({ length: latent }, () => (0.5 + Math.abs(gaussian(rand))) * 8 * Math.PI / seq);
    const phase = Array.from({ length: latent }, () => rand() * Math.PI);
    const mix = Array.from({ length: latent * dim }, () => gaussian(rand) * amp / Math.sqrt(latent));
    for (let t = 0; t < seq; ++t) {
      for (let c = 0; c < dim; ++c) {
        let v = 0.05 * gaussian(rand);
        for (let l = 0; l < latent; ++l) v += Math.sin(freq[l] * t + phase[l]) * mix[l * dim + c];
        x[(t * heads + h) * dim + c] = v;
      }
    }
  }
  return x;
}

// Large-norm keys, each query equal to its own key: one dominant key per row.
function peaked(rand, seq, heads, dim) {
  const k = new Float32Array(seq * heads * dim);
  for (let i = 0; i < k.length; ++i) k[i] = 3 * gaussian(rand);
  return { q: k.slice(), k, v: randomF32(rand, seq * heads * dim) };
}

function diffuse(rand, seq, heads, dim) {
  return { q: smoothRows(rand, seq, heads, dim), k: smoothRows(rand, seq, heads, dim), v: smoothRows(rand, seq, heads, dim, 1) };
}

for (const { name, runtime } of RUNTIMES) {
  describe(`lowRankAttention (${name})`, () => {
    test('error on smooth inputs is small and shrinks with the landmarks', () => {
      const seed = freshSeed();
      const rand = makeRandom(seed);
      const n = 1037, heads = 2, headDim = 16;
      const { q, k, v } = diffuse(rand, n, heads, headDim);
      const want = referenceFlash({ q, k, v, headsQ: heads, headDim }).output;
      const err = Object.fromEntries([8, 32, 128].map((landmarks) =>
        [landmarks, relL2(lowRankAttention(q, k, v, { heads, headDim, landmarks, runtime }), want)]));
      const context = `seed ${seed}: ${JSON.stringify(err)}`;
      assert.ok(err[32] < 0.5 * err[8], context);
      assert.ok(err[128] < err[32], context);
      assert.ok(err[32] < 3e-2 && err[128] < 1e-2, context);
    });

    test('one landmark per token is near exact (odd sizes, GQA, batch, out)', () => {
      const seed = freshSeed();
      const rand = makeRandom(seed);
      for (const n of [1, 3, 17]) {
        const batch = 2, heads = 2, headsKv = 1, headDim = 8;
        const k = new Float32Array(batch * n * headsKv * headDim);
        for (let i = 0; i < k.length; ++i) k[i] = 1.5 * gaussian(rand);
        const q = new Float32Array(batch * n * heads * headDim);
        for (let r = 0; r < batch * n; ++r) {
          for (let h = 0; h < heads; ++h) q.set(k.subarray(r * headDim, (r + 1) * headDim), (r * heads + h) * headDim);
        }
        const v = randomF32(rand, batch * n * headsKv * headDim);
        const out = new Float32Array(batch * n * heads * headDim);
        const got = lowRankAttention(q, k, v, { heads, headsKv, headDim, landmarks: n, batch, out, runtime });
        assert.equal(got, out);
        const want = referenceFlash({ q, k, v, batch, headsQ: heads, headsKv, headDim }).output;
        assert.ok(relL2(got, want) < 1e-4, `seed ${seed} n ${n}: ${relL2(got, want)}`);
      }
    });

    test('bad input names the parameter', () => {
      const x = new Float32Array(16);
      assertThrowsNamed(() => lowRankAttention(x, x, x, { heads: 1, headDim: 4 }), TypeError, 'landmarks');
      assertThrowsNamed(() => lowRankAttention(x, x, x, { heads: 1, headDim: 4, landmarks: 0, runtime }), RangeError, 'landmarks');
      assertThrowsNamed(() => lowRankAttention(x, x, x, { heads: 1, headDim: 3, landmarks: 2, runtime }), RangeError, 'Q');
      assertThrowsNamed(() => lowRankAttention(x, x, x.subarray(1), { heads: 1, headDim: 4, landmarks: 2, runtime }), RangeError, 'V');
      assertThrowsNamed(() => lowRankAttention([1], x, x, { heads: 1, headDim: 4, landmarks: 2, runtime }), TypeError, 'Q');
      assertThrowsNamed(() => lowRankAttention(x, x, x, { heads: 2, headsKv: 3, headDim: 2, landmarks: 2, runtime }), RangeError, 'headsKv');
    });
  });

  describe(`WasmAdaptiveRankAttention (${name})`, () => {
    const make = (opts) => new WasmAdaptiveRankAttention({ seed: 5, ...opts, runtime });

    test('peaked heads run dense and equal dense attention, for every method', () => {
      const seed = freshSeed();
      const rand = makeRandom(seed);
      const n = 1037, numHeads = 2, headDim = 32;
      const { q, k, v } = peaked(rand, n, numHeads, headDim);
      const want = referenceFlash({ q, k, v, headsQ: numHeads, headDim }).output;
      for (const method of METHODS) {
        const layer = make({ embedDim: numHeads * headDim, numHeads, rankRatio: 1, rankEstimationMethod: method });
        assertClose(layer.attention(q, k, v), want, `seed ${seed} ${method}`);
        const stats = layer.getRankStatistics();
        assert.equal(stats.method, method);
        assert.equal(stats.rank, 32);
        assert.equal(stats.calls, 1);
        assert.equal(stats.lastCall.heads.length, numHeads);
        for (const h of stats.lastCall.heads) {
          assert.equal(h.decision, 'dense', `seed ${seed} ${method}`);
          assert.equal(h.rank, null);
          assert.equal(h.reason, 'estimate<threshold');
          assert.ok(h.estimate >= 0 && h.estimate < 0.95, `seed ${seed} ${method}: estimate ${h.estimate}`);
        }
        layer.dispose();
      }
    });

    test('diffuse heads run low rank within 5e-2 and the statistics add up', () => {
      const seed = freshSeed();
      const rand = makeRandom(seed);
      const n = 1037, numHeads = 2, headDim = 32, batch = 2;
      const a = diffuse(rand, n, numHeads, headDim), b = diffuse(rand, n, numHeads, headDim);
      const cat = (x, y) => { const z = new Float32Array(x.length + y.length); z.set(x); z.set(y, x.length); return z; };
      const q = cat(a.q, b.q), k = cat(a.k, b.k), v = cat(a.v, b.v);
      const want = referenceFlash({ q, k, v, batch, headsQ: numHeads, headDim }).output;
      for (const method of METHODS) {
        const layer = make({ embedDim: numHeads * headDim, numHeads, rankRatio: 1, rankEstimationMethod: method });
        layer.attention(q, k, v, { batch });
        const got = layer.attention(q, k, v, { batch });
        assert.ok(relL2(got, want) < 5e-2, `seed ${seed} ${method}: ${relL2(got, want)}`);
        const stats = layer.getRankStatistics();
        assert.equal(stats.calls, 2);
        assert.deepEqual(stats.lastCall.heads.map((h) => [h.batch, h.head]), [[0, 0], [0, 1], [1, 0], [1, 1]]);
        for (const h of stats.lastCall.heads) {
          assert.equal(h.decision, 'lowRank', `seed ${seed} ${method}: ${JSON.stringify(h)}`);
          assert.equal(h.rank, 32);
          assert.equal(h.reason, 'estimate>=threshold');
          assert.ok(h.estimate >= 0.95 && h.estimate <= 1);
        }
        for (const h of stats.perHead) {
          assert.equal(h.lowRank, 2 * batch);
          assert.equal(h.dense, 0);
          assert.equal(h.estimated, 2 * batch);
          assert.ok(h.minEstimate <= h.meanEstimate && h.meanEstimate <= h.maxEstimate);
        }
        layer.resetRankStatistics();
        assert.equal(layer.getRankStatistics().calls, 0);
        assert.equal(layer.getRankStatistics().perHead[0].meanEstimate, null);
        layer.dispose();
      }
    });

    test('i.i.d. tokens: the estimate says low rank, the sampled rows measure the error, the heads run dense', () => {
      const seed = freshSeed();
      const rand = makeRandom(seed);
      const numHeads = 2, headDim = 32, n = 1037;
      const q = randomF32(rand, n * numHeads * headDim), k = randomF32(rand, n * numHeads * headDim);
      const v = randomF32(rand, n * numHeads * headDim);
      const layer = make({ embedDim: numHeads * headDim, numHeads, rankRatio: 1, rankEstimationMethod: 'entropy' });
      const got = layer.attention(q, k, v);
      assertClose(got, referenceFlash({ q, k, v, headsQ: numHeads, headDim }).output, `seed ${seed}`);
      const stats = layer.getRankStatistics();
      for (const h of stats.lastCall.heads) {
        assert.ok(h.estimate >= 0.95, `estimate ${h.estimate}`);
        assert.equal(h.decision, 'dense');
        assert.equal(h.reason, 'sampled-error>max');
        assert.ok(h.sampledError > 0.05, `sampledError ${h.sampledError}`);
      }
      assert.deepEqual(stats.perHead.map((h) => [h.rejected, h.dense, h.lowRank]), [[1, 1, 0], [1, 1, 0]]);
      assert.throws(() => make({ embedDim: 8, numHeads: 2, maxSampledError: -1 }), (e) => e instanceof RangeError && /maxSampledError/.test(e.message));
      layer.dispose();
    });

    test('causal, masks and short sequences run dense with the reason and no estimate', () => {
      const seed = freshSeed();
      const rand = makeRandom(seed);
      const numHeads = 2, headDim = 8;
      // Any sampled error accepted: the decisions here are the threshold's and the fall-backs'.
      const layer = make({ embedDim: numHeads * headDim, numHeads, rankEstimationMethod: 'random', adaptiveThreshold: 0,
        maxSampledError: 1e30 });
      for (const n of [1, 3, 17, 1000]) {
        const { q, k, v } = diffuse(rand, n, numHeads, headDim);
        const mask = new Uint8Array(n * n).fill(1);
        if (n > 1) mask.fill(0, 0, n);  // row 0 sees nothing: zeros
        for (let i = 1; i < n; ++i) mask[i * n + ((i * 7) % n)] = 0;
        for (const [options, reason] of [[{ causal: true }, 'causal'], [{ mask }, 'mask']]) {
          const got = layer.attention(q, k, v, options);
          const want = referenceFlash({ q, k, v, headsQ: numHeads, headDim, ...options }).output;
          assert.ok(!got.some(Number.isNaN));
          assertClose(got, want, `seed ${seed} n ${n} ${reason}`);
          for (const h of layer.getRankStatistics().lastCall.heads) {
            assert.deepEqual([h.decision, h.reason, h.estimate], ['dense', reason, null]);
          }
        }
        const got = layer.attention(q, k, v);
        const short = n < 1000;  // rank 4: below that the kernel would not halve the work
        for (const h of layer.getRankStatistics().lastCall.heads) {
          assert.equal(h.decision, short ? 'dense' : 'lowRank', `n ${n}`);
          assert.equal(h.reason, short ? 'not-cheaper' : 'estimate>=threshold');
          // Measured on the sampled rows whenever low rank ran.
          assert.ok(short ? h.sampledError === null : h.sampledError >= 0, `sampledError ${h.sampledError}`);
        }
        if (short) assertClose(got, referenceFlash({ q, k, v, headsQ: numHeads, headDim }).output, `seed ${seed} n ${n}`);
      }
      layer.dispose();
    });

    test('forward is the projections around attention (cross lengths, batch, weights round trip)', () => {
      const seed = freshSeed();
      const rand = makeRandom(seed);
      const embedDim = 12, numHeads = 3, headDim = 4, batch = 2, seqQ = 5, seqK = 7;
      const layer = make({ embedDim, numHeads });
      const sizes = layer.parameterSizes();
      assert.deepEqual(Object.keys(sizes), ['q_proj.weight', 'q_proj.bias', 'k_proj.weight', 'k_proj.bias',
        'v_proj.weight', 'v_proj.bias', 'out_proj.weight', 'out_proj.bias']);
      const weights = Object.fromEntries(Object.entries(sizes).map(([n, c]) => [n, randomF32(rand, c, 0.5)]));
      layer.loadWeights(weights);
      assert.deepEqual(layer.getWeights(), weights);
      const project = (x, p) => {
        const w = weights[`${p}.weight`], b = weights[`${p}.bias`];
        const rows = x.length / embedDim;
        const y = new Float32Array(x.length);
        for (let r = 0; r < rows; ++r) {
          for (let o = 0; o < embedDim; ++o) {
            let s = b[o];
            for (let i = 0; i < embedDim; ++i) s += w[o * embedDim + i] * x[r * embedDim + i];
            y[r * embedDim + o] = s;
          }
        }
        return y;
      };
      const query = randomF32(rand, batch * seqQ * embedDim), key = randomF32(rand, batch * seqK * embedDim);
      const value = randomF32(rand, batch * seqK * embedDim);
      const heads = referenceFlash({
        q: project(query, 'q_proj'), k: project(key, 'k_proj'), v: project(value, 'v_proj'), batch, headsQ: numHeads, headDim,
      }).output;
      const want = new Float64Array(batch * seqQ * embedDim);
      for (let r = 0; r < batch * seqQ; ++r) {
        for (let o = 0; o < embedDim; ++o) {
          let s = weights['out_proj.bias'][o];
          for (let i = 0; i < embedDim; ++i) s += weights['out_proj.weight'][o * embedDim + i] * heads[r * embedDim + i];
          want[r * embedDim + o] = s;
        }
      }
      assertClose(layer.forward(query, key, value, { batch }), want, `seed ${seed}`);
      assert.equal(layer.getRankStatistics().lastCall.heads.length, batch * numHeads);
      layer.dispose();
    });

    test('bad input names the parameter and leaves the module working', () => {
      assertThrowsNamed(() => make({}), TypeError, 'embedDim');
      assertThrowsNamed(() => make({ embedDim: 10, numHeads: 3 }), RangeError, 'numHeads');
      assertThrowsNamed(() => make({ embedDim: 8, rankRatio: 0 }), RangeError, 'rankRatio');
      assertThrowsNamed(() => make({ embedDim: 8, rankRatio: NaN }), RangeError, 'rankRatio');
      assertThrowsNamed(() => make({ embedDim: 8, rankEstimationMethod: 'svd' }), RangeError, 'rankEstimationMethod');
      assertThrowsNamed(() => make({ embedDim: 8, adaptiveThreshold: 2 }), RangeError, 'adaptiveThreshold');
      assertThrowsNamed(() => make({ embedDim: 8, seed: -1 }), RangeError, 'seed');
      const layer = make({ embedDim: 8, numHeads: 2 });
      const x = new Float32Array(8 * 3);
      assertThrowsNamed(() => layer.forward(x.subarray(1), x, x), RangeError, 'query');
      assertThrowsNamed(() => layer.forward(x, x, x.subarray(8)), RangeError, 'value');
      assertThrowsNamed(() => layer.forward(x, x, x, { batch: 0 }), RangeError, 'batch');
      assertThrowsNamed(() => layer.forward(x, x, x, { mask: new Float64Array(9) }), TypeError, 'mask');
      assertThrowsNamed(() => layer.forward(x, x, x, { mask: new Float32Array(5) }), RangeError, 'mask');
      assertThrowsNamed(() => layer.attention(x, x, x, { out: new Float32Array(3) }), RangeError, 'out');
      assertThrowsNamed(() => layer.loadWeights({ 'q_proj.weight': new Float32Array(64) }), RangeError, 'q_proj.bias');
      assertThrowsNamed(() => layer.loadWeights({ 'q_proj.weight': new Float32Array(3) }), RangeError, 'q_proj.weight');
      assertThrowsNamed(() => layer.loadWeights({ nope: new Float32Array(3) }), RangeError, 'nope');
      assert.equal(layer.forward(x, x, x).length, x.length);  // still works
      layer.dispose();
      assert.equal(layer.disposed, true);
      assert.throws(() => layer.forward(x, x, x), /disposed/);
      assert.throws(() => layer.getRankStatistics(), /disposed/);
    });
  });
}
