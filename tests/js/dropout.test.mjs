// Dropout: the exact keep rule of src/flash/dropout_rng.h (recomputed with BigInt in the
// reference), reproducible by seed on any variant, thread count and tiling.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import { WasmFlashAttention, createRuntime, getRuntimeInfo, setNumThreads } from '../../js/index.js';
import { checkForwardExtended, makeProblem } from './cases.mjs';
import { assertClose, baseSeed, freshSeed, makeRandom, randomF32 } from './helpers.mjs';
import { dropoutRule, referenceFlash } from './reference.mjs';

const simdRuntime = await createRuntime({ variant: 'simd' });
const maxThreads = getRuntimeInfo().maxThreads;
after(() => {
  if (maxThreads >= 2) setNumThreads(2);
  console.log(`dropout: base seed ${baseSeed()}`);
});

// A seed above 2^32 exercises the 64-bit arithmetic of the rule.
const bigSeed = () => freshSeed() * 1000003 + 17;

// With V = identity (valueDim = seqK), output row (b, i, h) is the row of dropped and
// rescaled weights itself, so the kept/dropped pattern can be read off exactly.
function identityProblem({ batch, heads, headsKv, dim, seqQ, seqK, causal }) {
  const seed = freshSeed();
  const random = makeRandom(seed);
  const q = randomF32(random, batch * seqQ * heads * dim);
  const k = randomF32(random, batch * seqK * headsKv * dim);
  const v = new Float32Array(batch * seqK * headsKv * seqK);
  for (let b = 0; b < batch; ++b) {
    for (let j = 0; j < seqK; ++j) {
      for (let h = 0; h < headsKv; ++h) v[((b * seqK + j) * headsKv + h) * seqK + j] = 1;
    }
  }
  return { q, k, v, batch, heads, headsKv, dim, seqQ, seqK, causal, valueDim: seqK, inputSeed: seed };
}

function runIdentity(p, { runtime, blockSize, blockQ, dropout, seed }) {
  const attn = new WasmFlashAttention({ heads: p.heads, dim: p.dim, runtime, ...(blockSize ? { blockSize } : {}) });
  const r = attn.forwardExtended({
    q: p.q, k: p.k, v: p.v, batch: p.batch, headsKv: p.headsKv, valueDim: p.valueDim, causal: p.causal,
    dropout, seed, returnLse: true, ...(blockQ ? { blockQ } : {}),
  });
  attn.dispose();
  return r;
}

test('kept/dropped pattern equals the keep rule exactly, on every variant, thread count and tiling', () => {
  const p = identityProblem({ batch: 2, heads: 4, headsKv: 2, dim: 8, seqQ: 21, seqK: 26, causal: 'bottom-right' });
  const dropout = 0.3, seed = bigSeed();
  const ctx = `input seed ${p.inputSeed}, dropout seed ${seed}`;
  const ref = referenceFlash({ ...p, headsQ: p.heads, headDim: p.dim, dropout, seed });
  // Read the pattern from the reference: output[(b,i,h), j] != 0 exactly when kept and visible.
  const refPattern = Array.from(ref.output, (x) => (x !== 0 ? 1 : 0)).join('');
  const runs = [];
  const configs = [
    { name: 'threads x2', runtime: undefined, threads: 2 },
    { name: 'threads x1', runtime: undefined, threads: 1 },
    { name: 'simd', runtime: simdRuntime },
    { name: 'simd blockSize 1 blockQ 1', runtime: simdRuntime, blockSize: 1, blockQ: 1 },
    { name: 'threads blockSize 7 blockQ 5', runtime: undefined, blockSize: 7, blockQ: 5, threads: 2 },
  ];
  for (const cfg of configs) {
    if (cfg.threads !== undefined) {
      if (cfg.threads > maxThreads) continue;
      setNumThreads(cfg.threads);
    }
    const r = runIdentity(p, { ...cfg, dropout, seed });
    const pattern = Array.from(r.output, (x) => (x !== 0 ? 1 : 0)).join('');
    assert.equal(pattern, refPattern, `${cfg.name}: dropped weights differ from the keep rule (${ctx})`);
    assertClose(r.output, ref.output, `${cfg.name}, ${ctx}`);
    runs.push({ cfg, r });
  }
  if (maxThreads >= 2) setNumThreads(2);
  // Same tiling, any thread count or variant: bitwise identical.
  const sameTiling = runs.filter(({ cfg }) => !cfg.blockSize);
  for (const { cfg, r } of sameTiling.slice(1)) {
    assert.deepEqual(r.output, sameTiling[0].r.output, `${cfg.name} vs ${sameTiling[0].cfg.name} (${ctx})`);
  }
  // Dropout leaves the log-sum-exp alone.
  const plain = runIdentity(p, { dropout: 0 });
  assertClose(runs[0].r.lse, plain.lse, `lse with and without dropout (${ctx})`, 1e-6);
  // The fraction dropped is p, within 6 standard deviations.
  const total = ref.total, dropped = total - ref.kept;
  const sd = Math.sqrt(total * dropout * (1 - dropout));
  assert.ok(Math.abs(dropped - total * dropout) < 6 * sd, `dropped ${dropped} of ${total} (${ctx})`);
});

test('random V with masks, GQA, softcap and dropout matches the reference on both variants', () => {
  for (const dropout of [0.1, 0.5, 0.9]) {
    const c = {
      batch: 2, heads: 3, headsKv: 1, dim: 17, valueDim: 9, seqQ: 15, seqK: 23, causal: 'top-left', softcap: 2,
      mask: { kind: 'additive', layout: 'bhqk', emptyRows: 2 }, dropout, seed: bigSeed(),
    };
    const problem = makeProblem(c);
    checkForwardExtended(problem, undefined, 'default runtime');
    checkForwardExtended(problem, simdRuntime, 'simd runtime');
  }
});

test('dropout and seed from the constructor: forward() matches the reference for the first call', () => {
  const seed = freshSeed();
  const random = makeRandom(seed);
  const heads = 2, dim = 6, seq = 30;
  const Q = randomF32(random, seq * heads * dim), K = randomF32(random, seq * heads * dim), V = randomF32(random, seq * heads * dim);
  const dseed = bigSeed();
  const ctx = `input seed ${seed}, dropout seed ${dseed}`;
  const ref = referenceFlash({ q: Q, k: K, v: V, headsQ: heads, headDim: dim, dropout: 0.25, seed: dseed, causal: true });
  for (const runtime of [undefined, simdRuntime]) {
    const attn = new WasmFlashAttention({ heads, dim, causal: true, dropout: 0.25, seed: dseed, runtime });
    assertClose(attn.forward(Q, K, V), ref.output, ctx);
    attn.dispose();
  }
});

test('consecutive calls without an explicit seed differ; the sequence is reproducible by constructor seed', () => {
  const seed = freshSeed();
  const random = makeRandom(seed);
  const heads = 2, dim = 8, seq = 16;
  const Q = randomF32(random, seq * heads * dim), K = randomF32(random, seq * heads * dim), V = randomF32(random, seq * heads * dim);
  const a = new WasmFlashAttention({ heads, dim, dropout: 0.5, seed: 99 });
  const b = new WasmFlashAttention({ heads, dim, dropout: 0.5, seed: 99, runtime: simdRuntime });
  const seqA = [a.forward(Q, K, V), a.forward(Q, K, V), a.forwardExtended({ q: Q, k: K, v: V }).output];
  const seqB = [b.forward(Q, K, V), b.forward(Q, K, V), b.forwardExtended({ q: Q, k: K, v: V }).output];
  assert.notDeepEqual(seqA[0], seqA[1], `calls 1 and 2 used the same dropout mask (input seed ${seed})`);
  assert.notDeepEqual(seqA[1], seqA[2], `calls 2 and 3 used the same dropout mask (input seed ${seed})`);
  for (let n = 0; n < 3; ++n) assert.deepEqual(seqA[n], seqB[n], `call ${n + 1}: same constructor seed, different result`);
  // An explicit seed gives the same result however many calls came before.
  const fixed = a.forwardExtended({ q: Q, k: K, v: V, seed: 12345 }).output;
  a.forward(Q, K, V);
  assert.deepEqual(a.forwardExtended({ q: Q, k: K, v: V, seed: 12345 }).output, fixed);
  assert.notDeepEqual(a.forwardExtended({ q: Q, k: K, v: V, seed: 12346 }).output, fixed);
  // Default constructor seed: two fresh instances agree on their first call.
  const c1 = new WasmFlashAttention({ heads, dim, dropout: 0.5 });
  const c2 = new WasmFlashAttention({ heads, dim, dropout: 0.5 });
  assert.deepEqual(c1.forward(Q, K, V), c2.forward(Q, K, V));
  // Dropout 0 in the call turns it off whatever the constructor says.
  const off = a.forwardExtended({ q: Q, k: K, v: V, dropout: 0 }).output;
  assertClose(off, referenceFlash({ q: Q, k: K, v: V, headsQ: heads, headDim: dim }).output, `input seed ${seed}`);
  for (const x of [a, b, c1, c2]) x.dispose();
});

test('keep threshold uses the float32 probability (p just below 1 keeps almost nothing)', () => {
  const rule = dropoutRule(1, 0.999);
  assert.equal(rule.threshold, Math.floor(Math.fround(0.999) * 2 ** 24));
  const p = identityProblem({ batch: 1, heads: 1, headsKv: 1, dim: 4, seqQ: 40, seqK: 50, causal: 'none' });
  const r = runIdentity(p, { dropout: 0.999, seed: 1 });
  const ref = referenceFlash({ ...p, headsQ: 1, headDim: 4, dropout: 0.999, seed: 1 });
  assert.equal(Array.from(r.output, (x) => (x !== 0 ? 1 : 0)).join(''), Array.from(ref.output, (x) => (x !== 0 ? 1 : 0)).join(''));
  assertClose(r.output, ref.output, `input seed ${p.inputSeed}`);
});
