// WasmDenseAttention against a naive float64 multi-head attention in JS with the same weights
// (loaded by PyTorch names), on both WASM variants: odd sizes (1, 3, 17, a 1000+ sequence),
// batch, cross-attention, causal, key-padding / full boolean / additive / per-head masks and
// fully masked rows; the weights averaged over heads (equal to the reference's, rows summing
// to 1, or 0 when fully masked) and PyTorch's own vectors; eval mode deterministic, training
// dropout the seeded mask at its rate; weights shared with WasmMultiHeadAttention; bad input
// named, the module still working afterwards; dispose.
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WasmDenseAttention, WasmMultiHeadAttention, createRuntime } from '../../js/index.js';
import { assertClose, assertThrowsNamed, baseSeed, freshSeed, makeRandom, randomF32 } from './helpers.mjs';
import { dropoutRule } from './reference.mjs';

const simdRuntime = await createRuntime({ variant: 'simd' });
const RUNTIMES = [
  { name: 'simd-threads', runtime: undefined },
  { name: 'simd', runtime: simdRuntime },
];

function linear(x, rows, e, w, b) {
  const y = new Float64Array(rows * e);
  for (let r = 0; r < rows; ++r) {
    for (let o = 0; o < e; ++o) {
      let s = b ? b[o] : 0;
      for (let i = 0; i < e; ++i) s += x[r * e + i] * w[o * e + i];
      y[r * e + o] = s;
    }
  }
  return y;
}

// The logit bias a mask gives (b, h, i, j) by the layout's own index formula: 0 attends,
// -Infinity blocks.
function maskAt(mask, layout, { heads, sq, sk }, b, h, i, j) {
  if (!mask) return 0;
  const at = { bk: b * sk + j, qk: i * sk + j, bqk: (b * sq + i) * sk + j, hqk: (h * sq + i) * sk + j,
    bhqk: ((b * heads + h) * sq + i) * sk + j }[layout];
  if (mask instanceof Uint8Array) return mask[at] ? 0 : -Infinity;
  return mask[at];
}

// { out [batch][sq][e], weights [batch][sq][sk] averaged over heads, emptyRows [batch * sq] }.
// dropout: { seed, p } draws the kernel's counter-based mask.
function reference({ query, key, value, batch, sq, sk, e, heads, w, mask, layout, causal, dropout }) {
  const d = e / heads;
  const inBias = w.in_proj_bias;
  const q = linear(query, batch * sq, e, w.in_proj_weight.subarray(0, e * e), inBias?.subarray(0, e));
  const k = linear(key, batch * sk, e, w.in_proj_weight.subarray(e * e, 2 * e * e), inBias?.subarray(e, 2 * e));
  const v = linear(value, batch * sk, e, w.in_proj_weight.subarray(2 * e * e), inBias?.subarray(2 * e));
  const rule = dropout ? dropoutRule(dropout.seed, dropout.p) : null;
  const attended = new Float64Array(batch * sq * e);
  const weights = new Float64Array(batch * sq * sk);
  const emptyRows = new Array(batch * sq).fill(true);
  const s = new Float64Array(sk);
  for (let b = 0; b < batch; ++b) {
    for (let h = 0; h < heads; ++h) {
      for (let i = 0; i < sq; ++i) {
        let max = -Infinity;
        for (let j = 0; j < sk; ++j) {
          let dot = 0;
          for (let t = 0; t < d; ++t) dot += q[(b * sq + i) * e + h * d + t] * k[(b * sk + j) * e + h * d + t];
          s[j] = causal && j > i ? -Infinity : dot / Math.sqrt(d) + maskAt(mask, layout, { heads, sq, sk }, b, h, i, j);
          max = Math.max(max, s[j]);
        }
        if (max === -Infinity) continue;
        emptyRows[b * sq + i] = false;
        let sum = 0;
        for (let j = 0; j < sk; ++j) sum += (s[j] = Math.exp(s[j] - max));
        for (let j = 0; j < sk; ++j) {
          let p = s[j] / sum;
          if (rule) p = rule.keep(((b * heads + h) * sq + i) * sk + j) ? p * rule.keepScale : 0;
          weights[(b * sq + i) * sk + j] += p / heads;
          for (let t = 0; t < d; ++t) attended[(b * sq + i) * e + h * d + t] += p * v[(b * sk + j) * e + h * d + t];
        }
      }
    }
  }
  return { out: linear(attended, batch * sq, e, w['out_proj.weight'], w['out_proj.bias']), weights, emptyRows };
}

function randomWeights(random, e, bias) {
  const s = 1 / Math.sqrt(e);
  const w = { in_proj_weight: randomF32(random, 3 * e * e, s), 'out_proj.weight': randomF32(random, e * e, s) };
  if (bias) Object.assign(w, { in_proj_bias: randomF32(random, 3 * e, 0.5), 'out_proj.bias': randomF32(random, e, 0.5) });
  return w;
}

const LENGTH = {
  bk: ({ batch, sk }) => batch * sk, qk: ({ sq, sk }) => sq * sk, bqk: ({ batch, sq, sk }) => batch * sq * sk,
  hqk: ({ heads, sq, sk }) => heads * sq * sk, bhqk: ({ batch, heads, sq, sk }) => batch * heads * sq * sk,
};

// About a quarter blocked, some additive biases, and with `emptyRow` one row wholly blocked
// (for key padding: the last batch element's every key).
function randomMask(random, kind, layout, dims, emptyRow) {
  const n = LENGTH[layout](dims);
  const blocked = Array.from({ length: n }, () => random() < 0.25);
  if (emptyRow) {
    const row = layout === 'bk' ? dims.batch - 1 : Math.floor(random() * (n / dims.sk));
    for (let j = 0; j < dims.sk; ++j) blocked[row * dims.sk + j] = true;
  }
  if (kind === 'boolean') return Uint8Array.from(blocked, (x) => (x ? 0 : 1));
  return Float32Array.from(blocked, (x) => (x ? -Infinity : random() < 0.3 ? random() * 2 - 1 : 0));
}

function rowSums(weights, rows, sk) {
  const sums = [];
  for (let r = 0; r < rows; ++r) {
    let s = 0;
    for (let j = 0; j < sk; ++j) s += weights[r * sk + j];
    sums.push(s);
  }
  return sums;
}

for (const { name, runtime } of RUNTIMES) {
  describe(`WasmDenseAttention (${name})`, () => {
    test('output and averaged weights match the float64 reference', () => {
      const random = makeRandom(freshSeed());
      const cases = [
        // e, heads, batch, sq, sk, causal, bias, mask kind, layout, empty row
        [16, 4, 1, 17, 17, false, true, null, null, false],
        [16, 4, 2, 17, 17, true, true, null, null, false],
        [12, 3, 3, 3, 17, false, true, 'boolean', 'bk', true],   // cross-attention, key padding
        [12, 3, 2, 17, 3, true, false, 'boolean', 'bk', false],  // causal with seqQ > seqK
        [16, 2, 2, 9, 13, false, false, 'boolean', 'qk', true],
        [16, 2, 2, 9, 13, true, true, 'additive', 'bqk', true],
        [16, 4, 2, 5, 7, false, true, 'additive', 'hqk', true],
        [8, 2, 3, 6, 11, false, false, 'boolean', 'bhqk', true],
        [8, 1, 1, 1, 1, false, true, null, null, false],
        [8, 2, 3, 1, 19, false, true, 'additive', 'bk', true],   // one query: decoding
        [32, 4, 1, 5, 1031, false, true, 'boolean', 'bk', false],
        [16, 2, 1, 1003, 1003, true, true, null, null, false],
      ];
      for (const [e, heads, batch, sq, sk, causal, bias, kind, layout, emptyRow] of cases) {
        const context = `e${e} h${heads} b${batch} q${sq} k${sk} causal ${causal} bias ${bias} mask ${kind}/${layout}` +
          `${emptyRow ? ' +empty row' : ''}`;
        const m = new WasmDenseAttention({ embedDim: e, numHeads: heads, causal, bias, seed: freshSeed(), runtime });
        const w = randomWeights(random, e, bias);
        m.loadWeights(w);
        const query = randomF32(random, batch * sq * e);
        const key = randomF32(random, batch * sk * e), value = randomF32(random, batch * sk * e);
        const mask = kind ? randomMask(random, kind, layout, { batch, heads, sq, sk }, emptyRow) : undefined;
        // Key padding is told by its length (as the seed passes it) unless batch == seqQ makes
        // it ambiguous; the other layouts are named (batch == heads makes some ambiguous too).
        const options = { batch, needWeights: true, attentionMask: mask };
        if (layout && (layout !== 'bk' || batch === sq)) options.maskLayout = layout;
        const got = m.forward(query, key, value, options);
        const ref = reference({ query, key, value, batch, sq, sk, e, heads, w, mask, layout, causal });
        assertClose(got.output, ref.out, context);
        assertClose(got.weights, ref.weights, `weights, ${context}`);
        assert.ok(!got.output.some(Number.isNaN), `NaN in the output, ${context}`);
        const sums = rowSums(got.weights, batch * sq, sk);
        const perHead = layout === 'hqk' || layout === 'bhqk';  // a head's own row may be empty
        for (let r = 0; r < sums.length; ++r) {
          if (ref.emptyRows[r]) {
            assert.equal(sums[r], 0, `row ${r} fully masked, ${context}`);
            const expected = bias ? w['out_proj.bias'] : new Float32Array(e);
            assert.deepEqual(got.output.subarray(r * e, (r + 1) * e), expected, `masked row ${r} output, ${context}`);
          } else if (!perHead) {
            assert.ok(Math.abs(sums[r] - 1) < 1e-5, `row ${r} sums to ${sums[r]}, ${context}; base seed ${baseSeed()}`);
          }
        }
        const alone = m.forward(query, key, value, { batch, attentionMask: mask, maskLayout: options.maskLayout });
        assert.equal(alone.weights, null);
        assert.deepEqual(alone.output, got.output, `without weights, ${context}`);
        m.dispose();
      }
    });

    test("PyTorch's nn.MultiheadAttention vectors: output and head-averaged weights", () => {
      // tests/js/data/torch_mha.json (made by PyTorch, per-head weights; averaged here).
      const data = JSON.parse(readFileSync(new URL('./data/torch_mha.json', import.meta.url), 'utf8'));
      const selfCases = data.cases.filter((c) => c.kdim === c.modelDim && c.vdim === c.modelDim);
      assert.ok(selfCases.length >= 2);
      for (const c of selfCases) {
        const m = new WasmDenseAttention({ embedDim: c.modelDim, numHeads: c.heads, bias: c.bias, causal: c.causal, runtime });
        m.loadWeights(Object.fromEntries(Object.entries(c.state).map(([n, values]) => [n, Float32Array.from(values)])));
        const got = m.forward(Float32Array.from(c.query), Float32Array.from(c.key), Float32Array.from(c.value), { needWeights: true });
        assertClose(got.output, c.output, `${c.name} (PyTorch ${data.torch})`);
        const qk = c.seqQ * c.seqK;
        const averaged = new Float64Array(qk);
        for (let h = 0; h < c.heads; ++h) for (let x = 0; x < qk; ++x) averaged[x] += c.weights[h * qk + x] / c.heads;
        assertClose(got.weights, averaged, `${c.name} weights`);
        m.dispose();
      }
    });

    test('eval mode (the default) is deterministic; training drops at the rate with the seeded mask', () => {
      const random = makeRandom(freshSeed());
      const e = 8, batch = 2, sq = 40, sk = 48, p = 0.3, seed = freshSeed() % 1000000;
      const m = new WasmDenseAttention({ embedDim: e, numHeads: 1, dropout: p, seed, runtime });
      const w = randomWeights(random, e, true);
      m.loadWeights(w);
      const query = randomF32(random, batch * sq * e), key = randomF32(random, batch * sk * e);
      const value = randomF32(random, batch * sk * e);
      const run = () => m.forward(query, key, value, { batch, needWeights: true });
      assert.equal(m.training, false);
      const a = run(), b = run();
      assert.deepEqual(a, b);
      assertClose(a.output, reference({ query, key, value, batch, sq, sk, e, heads: 1, w }).out, 'eval');
      assert.equal(m.nextDropoutSeed, seed);

      assert.equal(m.train(), m);
      let previous = null;
      for (let call = 0; call < 2; ++call) {
        const callSeed = m.nextDropoutSeed;
        assert.equal(callSeed, seed + call);
        const got = run();
        const ref = reference({ query, key, value, batch, sq, sk, e, heads: 1, w, dropout: { seed: callSeed, p } });
        assertClose(got.output, ref.out, `training call ${call}`);
        assertClose(got.weights, ref.weights, `training call ${call} weights`);
        let dropped = 0;
        for (let x = 0; x < got.weights.length; ++x) {
          if (got.weights[x] === 0) ++dropped;
          else assert.ok(Math.abs(got.weights[x] - a.weights[x] / (1 - p)) < 1e-5, `kept weight ${x} scaled by 1/(1-p)`);
        }
        // 3840 weights: the rate's standard deviation is 0.0074; 0.04 is over 5 of them.
        assert.ok(Math.abs(dropped / got.weights.length - p) < 0.04, `dropped ${dropped} of ${got.weights.length}`);
        assert.notDeepEqual(got.output, a.output);
        if (previous) assert.notDeepEqual(got.output, previous, 'each training call draws a new mask');
        previous = got.output;
      }
      assert.equal(m.eval().training, false);
      assert.deepEqual(run(), a);
      m.dispose();
    });

    test('weights: same seed same layer; saveWeights/loadWeights shared with WasmMultiHeadAttention', () => {
      const a = new WasmDenseAttention({ embedDim: 16, numHeads: 2, seed: 9, runtime });
      const b = new WasmDenseAttention({ embedDim: 16, numHeads: 2, seed: 9, runtime });
      const mha = new WasmMultiHeadAttention({ modelDim: 16, heads: 2, seed: 9, runtime });
      assert.deepEqual(a.saveWeights(), b.saveWeights());
      assert.deepEqual(a.saveWeights(), mha.saveWeights());
      const trained = new WasmMultiHeadAttention({ modelDim: 16, heads: 2, seed: 10, runtime });
      a.loadWeights(trained.saveWeights());
      assert.deepEqual(a.saveWeights(), trained.saveWeights());
      const x = randomF32(makeRandom(freshSeed()), 3 * 16);
      assert.deepEqual(a.forward(x, x, x).output, trained.forward(x, x, x));
      assert.equal(a.getMemoryUsage().paramCount, 4 * 16 * 16 + 4 * 16);
      const before = b.saveWeights();
      const other = new WasmDenseAttention({ embedDim: 16, numHeads: 4, runtime });
      assertThrowsNamed(() => b.loadWeights(other.saveWeights()), RangeError, 'weights');
      assertThrowsNamed(() => b.loadWeights({ in_proj_weight: new Float32Array(5) }), RangeError, 'in_proj_weight');
      assert.deepEqual(b.saveWeights(), before);
      for (const m of [a, b, mha, trained, other]) m.dispose();
    });

    test('the output goes into `out` when given', () => {
      const m = new WasmDenseAttention({ embedDim: 8, numHeads: 2, runtime });
      const x = randomF32(makeRandom(freshSeed()), 2 * 5 * 8);
      const out = new Float32Array(2 * 5 * 8);
      const got = m.forward(x, x, x, { batch: 2, out });
      assert.equal(got.output, out);
      assert.deepEqual(out, m.forward(x, x, x, { batch: 2 }).output);
      m.dispose();
    });

    test('bad options and calls name the parameter; the module keeps working', () => {
      const make = (o) => new WasmDenseAttention({ embedDim: 8, numHeads: 2, ...o, runtime });
      assertThrowsNamed(() => new WasmDenseAttention({ numHeads: 2, runtime }), TypeError, 'embedDim');
      assertThrowsNamed(() => make({ embedDim: 0 }), RangeError, 'embedDim');
      assertThrowsNamed(() => make({ embedDim: 10, numHeads: 3 }), RangeError, 'numHeads');
      assertThrowsNamed(() => make({ dropout: NaN }), RangeError, 'dropout');
      assertThrowsNamed(() => make({ dropout: 1 }), RangeError, 'dropout');
      assertThrowsNamed(() => make({ dropout: '0.1' }), TypeError, 'dropout');
      assertThrowsNamed(() => make({ causal: 1 }), TypeError, 'causal');
      assertThrowsNamed(() => make({ seed: -1 }), RangeError, 'seed');
      assertThrowsNamed(() => make({ training: 'yes' }), TypeError, 'training');

      const m = make({});
      const x = new Float32Array(3 * 4 * 8);  // batch 3 of 4 rows, or batch 1 of 12
      const cases = [
        [() => m.forward([0], x, x), TypeError, 'query'],
        [() => m.forward(x, new Float32Array(9), x), RangeError, 'key'],
        [() => m.forward(new Float32Array(7), x, x), RangeError, 'query'],
        [() => m.forward(x, x, new Float32Array(8)), RangeError, 'value'],
        [() => m.forward(x, x, x, { batch: 0 }), RangeError, 'batch'],
        [() => m.forward(x, x, x, { batch: 5 }), RangeError, 'query'],
        [() => m.forward(x, x, x, { needWeights: 1 }), TypeError, 'needWeights'],
        [() => m.forward(x, x, x, { attentionMask: [1, 0] }), TypeError, 'attentionMask'],
        [() => m.forward(x, x, x, { attentionMask: new Int32Array(12) }), TypeError, 'attentionMask'],
        [() => m.forward(x, x, x, { attentionMask: new Uint8Array(13) }), RangeError, 'attentionMask'],
        [() => m.forward(x, x, x, { batch: 3, attentionMask: new Uint8Array(16), maskLayout: 'bk' }), RangeError, 'attentionMask'],
        // batch 4 = seqQ 4: [batch, seqK] and [seqQ, seqK] have one length and differ.
        [() => m.forward(new Float32Array(4 * 4 * 8), new Float32Array(4 * 4 * 8), new Float32Array(4 * 4 * 8),
          { batch: 4, attentionMask: new Uint8Array(16) }), RangeError, 'maskLayout'],
        [() => m.forward(x, x, x, { maskLayout: 'kq' }), RangeError, 'maskLayout'],
        [() => m.forward(x, x, x, { out: new Float32Array(5) }), RangeError, 'out'],
        [() => m.forward(x, x, x, 7), TypeError, 'options'],
        [() => m.train('no'), TypeError, 'mode'],
      ];
      for (const [call, type, param] of cases) assertThrowsNamed(call, type, param);

      // One query, [batch, seqK] and [batch, 1, seqK] are the same mask: no layout needed.
      const one = new Float32Array(3 * 8);
      assert.equal(m.forward(one, x, x, { batch: 3, attentionMask: new Uint8Array(12).fill(1) }).output.length, 24);
      // Still working, and right: equal keys give uniform weights.
      const got = m.forward(x, x, x, { batch: 3, needWeights: true });
      assert.ok(got.weights.every((v) => Math.abs(v - 0.25) < 1e-6));
      m.dispose();
    });

    test('dispose frees the weights; calls afterwards throw', () => {
      const probe = new WasmDenseAttention({ embedDim: 8, numHeads: 2, runtime });
      const base = probe.getMemoryUsage().heapUsed;
      probe.dispose();
      const m = new WasmDenseAttention({ embedDim: 256, numHeads: 4, runtime });
      const x = new Float32Array(10 * 256);
      m.forward(x, x, x, { needWeights: true });
      m.dispose();
      m.dispose();
      assert.equal(m.disposed, true);
      for (const call of [() => m.forward(x, x, x), () => m.saveWeights(), () => m.train(), () => m.training,
        () => m.getMemoryUsage()]) {
        assert.throws(call, (e) => e.constructor === Error && /disposed/.test(e.message));
      }
      const after = new WasmDenseAttention({ embedDim: 8, numHeads: 2, runtime });
      assert.ok(after.getMemoryUsage().heapUsed <= base + 4096, 'the 256-wide weights were freed');
      after.dispose();
    });
  });
}
