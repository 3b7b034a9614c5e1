// README "NaN and infinity", row by row, on both WASM variants (simd-threads with 2 threads
// and simd), against a float64 reference written from the table: where the reference is NaN
// or ±Infinity the output must be exactly that, elsewhere within 1e-4. Also: +Infinity and
// NaN in an additive mask are a RangeError naming `mask` (and the module keeps working), and
// WasmMultiHeadAttention's dropout applies only in training mode.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  WasmFlashAttention, WasmKVCache, WasmLinearAttention, WasmMultiHeadAttention, createRuntime,
  getRuntimeInfo, setNumThreads,
} from '../../js/index.js';
import { assertThrowsNamed, baseSeed, freshSeed, makeRandom, randomF32 } from './helpers.mjs';

const simdRuntime = await createRuntime({ variant: 'simd' });
if (getRuntimeInfo().maxThreads >= 2) setNumThreads(2);
const VARIANTS = [
  { name: 'simd-threads', runtime: undefined },
  { name: 'simd', runtime: simdRuntime },
];
const rowsChecked = new Map();
after(() => {
  console.log(`nan policy: base seed ${baseSeed()}; table rows checked per variant: ${JSON.stringify(Object.fromEntries(rowsChecked))}`);
});

// One problem: [seq][heads][dim] inputs, an optional additive or boolean [seqQ][seqK] mask.
function problem({ seqQ = 40, seqK = 150, heads = 2, dim = 8, valueDim = 12, causal = false, softcap = 0 } = {}) {
  const seed = freshSeed();
  const random = makeRandom(seed);
  const p = {
    seqQ, seqK, heads, dim, valueDim, causal, softcap, seed,
    q: randomF32(random, seqQ * heads * dim, 2),
    k: randomF32(random, seqK * heads * dim, 2),
    v: randomF32(random, seqK * heads * valueDim, 2),
    mask: null,
  };
  p.qi = (i, h, c) => (i * heads + h) * dim + c;
  p.ki = (j, h, c) => (j * heads + h) * dim + c;
  p.vi = (j, h, c) => (j * heads + h) * valueDim + c;
  return p;
}

function visible(p, i, j) {
  if (p.causal === true || p.causal === 'top-left') return j <= i;
  if (p.causal === 'bottom-right') return j <= i + p.seqK - p.seqQ;
  return true;
}

// The table: attended = not blocked (causal, boolean 0, additive -Infinity) and logit not
// -Infinity. None: zeros, lse -Infinity. A NaN or +Infinity logit: the row NaN. Else the
// softmax over the attended keys, out = Σ p v in IEEE arithmetic.
function policyReference(p) {
  const { seqQ, seqK, heads, dim, valueDim } = p;
  const out = new Float64Array(seqQ * heads * valueDim);
  const lse = new Float64Array(heads * seqQ).fill(-Infinity);
  const scale = 1 / Math.sqrt(dim);
  for (let h = 0; h < heads; ++h) {
    for (let i = 0; i < seqQ; ++i) {
      const logit = [], keys = [];
      let poisoned = false, top = -Infinity;
      for (let j = 0; j < seqK; ++j) {
        const m = i * seqK + j;
        if (!visible(p, i, j)) continue;
        if (p.mask instanceof Uint8Array && p.mask[m] === 0) continue;
        if (p.mask instanceof Float32Array && p.mask[m] === -Infinity) continue;
        let s = 0;
        for (let c = 0; c < dim; ++c) s += p.q[p.qi(i, h, c)] * p.k[p.ki(j, h, c)];
        s *= scale;
        if (p.softcap > 0) s = p.softcap * Math.tanh(s / p.softcap);
        if (p.mask instanceof Float32Array) s += p.mask[m];
        if (s === -Infinity) continue;
        if (Number.isNaN(s) || s === Infinity) poisoned = true;
        else top = Math.max(top, s);
        logit.push(s);
        keys.push(j);
      }
      const o = (i * heads + h) * valueDim;
      if (keys.length === 0) continue;
      if (poisoned) {
        out.fill(NaN, o, o + valueDim);
        lse[h * seqQ + i] = NaN;
        continue;
      }
      let sum = 0;
      for (const s of logit) sum += Math.exp(s - top);
      lse[h * seqQ + i] = top + Math.log(sum);
      keys.forEach((j, n) => {
        const w = Math.exp(logit[n] - top) / sum;
        for (let c = 0; c < valueDim; ++c) out[o + c] += w * p.v[p.vi(j, h, c)];
      });
    }
  }
  return { out, lse };
}

function assertPolicy(actual, expected, context) {
  let big = 1e-6;
  for (const e of expected) if (Number.isFinite(e)) big = Math.max(big, Math.abs(e));
  for (let i = 0; i < expected.length; ++i) {
    const a = actual[i], e = expected[i];
    const ok = Number.isNaN(e) ? Number.isNaN(a)
      : !Number.isFinite(e) ? a === e
        : Number.isFinite(a) && Math.abs(a - e) <= 1e-4 * big;
    assert.ok(ok, `${context}: element ${i} is ${a}, expected ${e} (base seed ${baseSeed()})`);
  }
}

function checkFlash(p, row) {
  const expected = policyReference(p);
  for (const { name, runtime } of VARIANTS) {
    for (const blockSize of [128, 32]) {
      const attn = new WasmFlashAttention({ heads: p.heads, dim: p.dim, blockSize, runtime });
      try {
        const r = attn.forwardExtended({
          q: p.q, k: p.k, v: p.v, valueDim: p.valueDim, causal: p.causal, softcap: p.softcap,
          mask: p.mask, returnLse: true, ...(blockSize === 32 ? { blockQ: 16 } : {}),
        });
        const context = `${row}, ${name}, blockSize ${blockSize}, input seed ${p.seed}`;
        assertPolicy(r.output, expected.out, `${context} output`);
        assertPolicy(r.lse, expected.lse, `${context} lse`);
      } finally {
        attn.dispose();
      }
    }
    rowsChecked.set(name, (rowsChecked.get(name) ?? 0) + 1);
  }
  return expected;
}

const nanRows = (out, valueDim) => {
  let n = 0;
  for (let r = 0; r < out.length / valueDim; ++r) n += Number.isNaN(out[r * valueDim]) ? 1 : 0;
  return n;
};

test('NaN in a query: NaN in exactly its own row (of its head)', () => {
  const p = problem();
  p.q[p.qi(7, 1, 3)] = NaN;
  assert.equal(nanRows(checkFlash(p, 'NaN query').out, p.valueDim), 1);
});

test('NaN in a key: NaN in exactly the rows that attend it (causal and masked rows spared)', () => {
  for (const causal of [false, true, 'bottom-right']) {
    const p = problem({ seqQ: 100, seqK: 100, causal });
    p.k[p.ki(60, 0, 2)] = NaN;
    p.mask = new Float32Array(100 * 100);
    for (let i = 0; i < 10; ++i) p.mask[i * 100 + 60] = -Infinity;
    const n = nanRows(checkFlash(p, `NaN key, causal ${causal}`).out, p.valueDim);
    assert.ok(n > 0 && n < 100, `${n} NaN rows`);
  }
});

test('NaN / Infinity in a value: only that column of the rows that attend it', () => {
  for (const causal of [false, true]) {
    const p = problem({ seqQ: 100, seqK: 100, causal });
    p.v[p.vi(50, 0, 4)] = NaN;
    p.v[p.vi(51, 1, 5)] = Infinity;
    p.v[p.vi(70, 1, 6)] = Infinity;
    p.v[p.vi(71, 1, 6)] = -Infinity;
    p.mask = new Uint8Array(100 * 100).fill(1);
    for (let i = 0; i < 5; ++i) p.mask[i * 100 + 50] = 0;
    checkFlash(p, `NaN/Infinity value, causal ${causal}`);
  }
});

test('Infinity in queries and keys: +Infinity logits make the row NaN, -Infinity logits drop the key', () => {
  const p = problem();
  p.q[p.qi(3, 0, 1)] = Infinity;
  p.k[p.ki(20, 1, 2)] = -Infinity;
  const { out } = checkFlash(p, 'Infinity in q and k');
  let finite = 0;
  for (let i = 0; i < p.seqQ; ++i) finite += Number.isFinite(out[(i * p.heads + 1) * p.valueDim]) ? 1 : 0;
  assert.ok(finite > 0, 'some rows of head 1 should lose key 20 and stay finite');
});

test('softcap: infinite scores become ±softcap (finite), NaN stays NaN, -Infinity masks still block', () => {
  const p = problem({ softcap: 5 });
  p.q[p.qi(3, 0, 1)] = Infinity;
  p.k[p.ki(20, 1, 2)] = Infinity;
  p.q[p.qi(9, 1, 0)] = NaN;
  p.mask = new Float32Array(p.seqQ * p.seqK).fill(0.5);
  p.mask.fill(-Infinity, 11 * p.seqK, 12 * p.seqK);
  for (let j = 0; j < p.seqK; j += 3) p.mask[12 * p.seqK + j] = -Infinity;
  const { out } = checkFlash(p, 'softcap with infinities');
  assert.ok(Number.isFinite(out[3 * p.heads * p.valueDim]));
});

test('fully blocked rows are zero (lse -Infinity) even with NaN in their query or unseen keys', () => {
  for (const softcap of [0, 2]) {
    const p = problem({ seqQ: 30, seqK: 20, causal: 'bottom-right', softcap });
    p.q[p.qi(2, 0, 0)] = NaN;
    p.mask = new Float32Array(30 * 20);
    p.mask.fill(-Infinity, 25 * 20, 26 * 20);
    p.q[p.qi(25, 1, 0)] = NaN;
    p.k[p.ki(19, 0, 0)] = NaN;
    p.v[p.vi(19, 1, 0)] = NaN;
    const { out, lse } = checkFlash(p, `fully blocked rows, softcap ${softcap}`);
    assert.equal(out[2 * p.heads * p.valueDim], 0);
    assert.equal(lse[0 * p.seqQ + 2], -Infinity);
  }
});

test('+Infinity or NaN in an additive mask: RangeError naming mask, then the module still works', () => {
  for (const { name, runtime } of VARIANTS) {
    const attn = new WasmFlashAttention({ heads: 2, dim: 8, runtime });
    const p = problem({ seqQ: 8, seqK: 8, valueDim: 8 });
    for (const bad of [Infinity, NaN]) {
      const mask = new Float32Array(64);
      mask[5 * 8 + 3] = bad;
      const context = `(${name}, mask holding ${bad})`;
      assertThrowsNamed(() => attn.forward(p.q, p.k, p.v, mask), RangeError, 'mask', context);
      assertThrowsNamed(() => attn.attentionScores(p.q, p.k, mask), RangeError, 'mask', context);
      assertThrowsNamed(() => attn.forwardExtended({ q: p.q, k: p.k, v: p.v, mask, softcap: 3 }), RangeError, 'mask', context);
    }
    const ok = new Float32Array(64);
    ok[1] = -Infinity;
    ok[2] = -1e30;
    const out = attn.forward(p.q, p.k, p.v, ok);
    assert.ok(out.every(Number.isFinite), `after the errors (${name})`);
    attn.dispose();
  }
});

test('linear attention and the KV cache: a NaN reaches only the rows that see it', () => {
  for (const { name, runtime } of VARIANTS) {
    const heads = 1, dim = 8, n = 150;
    const random = makeRandom(freshSeed());
    const q = randomF32(random, n * dim), k = randomF32(random, n * dim), v = randomF32(random, n * dim);
    v[100 * dim + 3] = NaN;
    const linear = new WasmLinearAttention({ dim, heads, causal: true, runtime });
    const out = linear.forward(q, k, v);
    linear.dispose();
    for (let i = 0; i < n; ++i) {
      for (let c = 0; c < dim; ++c) {
        assert.equal(Number.isNaN(out[i * dim + c]), i >= 100 && c === 3, `linear (${name}) row ${i} col ${c}`);
      }
    }
    const cache = new WasmKVCache({ heads, headDim: dim, runtime });
    cache.append(k, v);
    const queries = 60;
    const attended = cache.attend(q.subarray(0, queries * dim), { causal: true });
    cache.dispose();
    // Query t sees keys j <= n - queries + t: key 100 from t = 10 on.
    for (let t = 0; t < queries; ++t) {
      for (let c = 0; c < dim; ++c) {
        assert.equal(Number.isNaN(attended[t * dim + c]), t >= 10 && c === 3, `kv cache (${name}) query ${t} col ${c}`);
      }
    }
  }
});

test('WasmMultiHeadAttention: dropout only in training mode (eval by default, deterministic)', () => {
  for (const { name, runtime } of VARIANTS) {
    const random = makeRandom(freshSeed());
    const x = randomF32(random, 12 * 16);
    const mha = new WasmMultiHeadAttention({ modelDim: 16, heads: 2, dropout: 0.5, seed: 3, runtime });
    const plain = new WasmMultiHeadAttention({ modelDim: 16, heads: 2, seed: 3, runtime });
    assert.equal(mha.training, false);
    const reference = plain.forward(x, x, x);
    assert.deepEqual(mha.forward(x, x, x), reference, `eval mode must not drop (${name})`);
    assert.deepEqual(mha.forward(x, x, x), reference);
    assert.equal(mha.nextDropoutSeed, 3, 'eval calls draw no dropout seed');
    assert.equal(mha.train(), mha);
    const a = mha.forward(x, x, x), b = mha.forward(x, x, x);
    assert.notDeepEqual(a, reference, `training mode drops (${name})`);
    assert.notDeepEqual(a, b, 'each training call draws a new mask');
    assert.equal(mha.nextDropoutSeed, 5);
    mha.eval();
    assert.deepEqual(mha.forward(x, x, x), reference);
    const trained = new WasmMultiHeadAttention({ modelDim: 16, heads: 2, dropout: 0.5, seed: 3, training: true, runtime });
    assert.deepEqual(trained.forward(x, x, x), a, 'the first training call uses seed + 0');
    assertThrowsNamed(() => mha.train('yes'), TypeError, 'mode');
    for (const m of [mha, plain, trained]) m.dispose();
    assert.throws(() => mha.train(), /disposed/);
  }
});
