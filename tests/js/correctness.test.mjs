// Correctness of WasmFlashAttention against the float64 reference, on BOTH WebAssembly
// variants: the default runtime (simd-threads, 2 threads) and a single-threaded 'simd'
// runtime from createRuntime(), passed as the `runtime` option.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { availableParallelism } from 'node:os';
import {
  WasmFlashAttention, createMask, createRuntime, getRuntimeInfo, setNumThreads,
} from '../../js/index.js';
import { checkForwardExtended, makeProblem } from './cases.mjs';
import { assertClose, baseSeed, freshSeed, makeRandom, randomF32 } from './helpers.mjs';
import { referenceFlash, referenceScores } from './reference.mjs';

const simdRuntime = await createRuntime({ variant: 'simd' });

const VARIANTS = [
  { name: 'default runtime (simd-threads)', runtime: undefined, variant: 'simd-threads' },
  { name: "createRuntime({ variant: 'simd' })", runtime: simdRuntime, variant: 'simd' },
];

// Odd sizes, GQA, value widths, softcap, scale, causal alignments, tilings.
const CASES = [
  { heads: 1, dim: 1, seqQ: 1 },
  { heads: 2, dim: 3, seqQ: 3 },
  { heads: 3, dim: 64, seqQ: 17 },
  { heads: 2, dim: 65, seqQ: 17, ctorCausal: true },
  { heads: 2, dim: 64, seqQ: 300 },
  { heads: 3, dim: 65, seqQ: 300, ctorCausal: true },
  { heads: 1, dim: 65, seqQ: 1100, amp: 2 },
  { heads: 2, dim: 16, seqQ: 1031, causal: 'top-left' },
  { heads: 1, dim: 1, seqQ: 3, seqK: 1 },
  { heads: 2, dim: 8, seqQ: 5, seqK: 33, causal: 'bottom-right' },
  { heads: 2, dim: 8, seqQ: 40, seqK: 7, causal: 'bottom-right' },  // first 33 rows empty
  { heads: 2, dim: 8, seqQ: 40, seqK: 7, causal: 'top-left' },
  { heads: 2, dim: 8, seqQ: 7, seqK: 40, causal: true },
  { heads: 2, dim: 8, seqQ: 7, seqK: 40, causal: 'none', ctorCausal: true },  // call overrides constructor
  { batch: 3, heads: 6, headsKv: 2, dim: 7, valueDim: 5, seqQ: 13, seqK: 19 },
  { batch: 2, heads: 4, headsKv: 1, dim: 64, valueDim: 128, seqQ: 33, seqK: 20, causal: 'bottom-right' },
  { heads: 4, headsKv: 4, dim: 3, valueDim: 1, seqQ: 9 },
  { heads: 2, dim: 32, seqQ: 45, scale: 0.3, softcap: 2.5, amp: 3 },
  { heads: 2, dim: 16, seqQ: 20, seqK: 30, softcap: 1, scale: -0.7, amp: 2, causal: 'bottom-right',
    mask: { kind: 'additive', layout: 'qk' } },
  { heads: 2, dim: 5, seqQ: 37, blockSize: 1, blockQ: 1, causal: true },
  { heads: 2, dim: 9, seqQ: 50, blockSize: 5, blockQ: 7, causal: 'bottom-right' },
  { heads: 1, dim: 64, seqQ: 300, blockSize: 4096, blockQ: 4096 },
  { heads: 2, dim: 12, seqQ: 70, seqK: 300, blockSize: 16, blockQ: 3, causal: 'bottom-right' },
  // Every mask layout, additive and boolean, with rows blocked entirely.
  ...['qk', 'bqk', 'hqk', 'bhqk'].flatMap((layout) => ['additive', 'boolean'].map((kind) => (
    { batch: 2, heads: 3, dim: 8, seqQ: 9, seqK: 21, mask: { kind, layout, emptyRows: 3 } }))),
  ...['bhqk', 'hqk'].map((layout) => (
    { batch: 2, heads: 3, headsKv: 1, dim: 6, seqQ: 11, seqK: 11, causal: true, mask: { kind: 'boolean', layout, emptyRows: 2 } })),
  // batch == heads: the length is ambiguous, the layout is given explicitly.
  ...['bqk', 'hqk'].map((layout) => (
    { batch: 2, heads: 2, dim: 4, seqQ: 6, seqK: 10, explicitLayout: true, mask: { kind: 'additive', layout } })),
  { heads: 2, dim: 4, seqQ: 12, seqK: 12, explicitLayout: true, mask: { kind: 'boolean', layout: 'hqk', blockProbability: 0.9 } },
  // Everything blocked: all zeros, all lse -Infinity.
  { batch: 2, heads: 2, dim: 3, seqQ: 4, seqK: 6, headsKv: 1, mask: { kind: 'additive', layout: 'qk', blockProbability: 1 } },
  { heads: 3, dim: 3, seqQ: 4, seqK: 6, mask: { kind: 'boolean', layout: 'hqk', blockProbability: 1 } },
];

const problems = CASES.map((c) => makeProblem(c));
const worst = new Map();  // variant -> { output, lse }
let emptyRowsSeen = 0;

before(() => {
  const info = getRuntimeInfo();
  assert.equal(info.variant, 'simd-threads', `default variant: ${JSON.stringify(info)}`);
  if (availableParallelism() >= 2) {
    setNumThreads(2);
    assert.equal(getRuntimeInfo().threads, 2);
  }
  assert.equal(simdRuntime.info().variant, 'simd');
  assert.equal(simdRuntime.threads, 1);
});

after(() => {
  console.log(`correctness: base seed ${baseSeed()} (ATTNKIT_TEST_SEED=${baseSeed()} replays), ` +
    `${problems.length} fixed + ${RANDOM_CASES} random forwardExtended cases per variant, ${emptyRowsSeen} empty rows checked`);
  for (const [name, w] of worst) {
    console.log(`  ${name.padEnd(36)} worst output rel err ${w.output.toExponential(2)}, lse ${w.lse.toExponential(2)}`);
  }
});

for (const { name, runtime, variant } of VARIANTS) {
  describe(`forwardExtended vs float64 reference on ${name}`, () => {
    for (const problem of problems) {
      test(problem.context.replace(/, input seed.*/, ''), () => {
        const { errOut, errLse, emptyRows } = checkForwardExtended(problem, runtime, name);
        const w = worst.get(name) ?? { output: 0, lse: 0 };
        worst.set(name, { output: Math.max(w.output, errOut), lse: Math.max(w.lse, errLse) });
        emptyRowsSeen += emptyRows;
      });
    }
    test('the runtime actually used is the one asked for', () => {
      const attn = new WasmFlashAttention({ heads: 1, dim: 4, runtime });
      const r = attn.benchmark(4, { minTimeMs: 0, minRuns: 1 });
      assert.equal(r.variant, variant);
    });
  });

  describe(`forward / attentionScores (seed-003 API) on ${name}`, () => {
    test('forward(Q, K, V) with defaults (heads 8, dim 64, scale 1/sqrt(64)) matches the reference', () => {
      const seed = freshSeed();
      const random = makeRandom(seed);
      const seq = 19;
      const Q = randomF32(random, seq * 8 * 64), K = randomF32(random, seq * 8 * 64), V = randomF32(random, seq * 8 * 64);
      const attn = new WasmFlashAttention({ runtime });
      assert.equal(attn.heads, 8);
      assert.equal(attn.dim, 64);
      assert.equal(attn.scale, 1 / 8);
      const out = attn.forward(Q, K, V);
      assert.equal(out.length, seq * 8 * 64);
      assertClose(out, referenceFlash({ q: Q, k: K, v: V, headsQ: 8, headDim: 64 }).output, `seed ${seed}`);
      // forward() and forwardExtended() are the same computation.
      assert.deepEqual(attn.forwardExtended({ q: Q, k: K, v: V }).output, out);
      assert.equal(attn.forwardExtended({ q: Q, k: K, v: V }).lse, undefined);
      attn.dispose();
    });

    test('forward with an additive mask, a boolean mask and createMask masks', () => {
      const seed = freshSeed();
      const random = makeRandom(seed);
      const heads = 3, dim = 10, seq = 23;
      const Q = randomF32(random, seq * heads * dim, 2), K = randomF32(random, seq * heads * dim, 2);
      const V = randomF32(random, seq * heads * dim);
      const additive = new Float32Array(seq * seq).map(() => (random() < 0.25 ? -Infinity : random() - 0.5));
      const boolean = new Uint8Array(seq * seq).map(() => (random() < 0.5 ? 1 : 0));
      const attn = new WasmFlashAttention({ heads, dim, scale: 0.4, runtime });
      const ref = (mask, causal) => referenceFlash({ q: Q, k: K, v: V, headsQ: heads, headDim: dim, scale: 0.4, mask, causal }).output;
      const ctx = `seed ${seed}`;
      assertClose(attn.forward(Q, K, V, additive), ref(additive), `additive, ${ctx}`);
      assertClose(attn.forward(Q, K, V, boolean), ref(boolean), `boolean, ${ctx}`);
      assertClose(attn.forward(Q, K, V, null), ref(undefined), `null mask, ${ctx}`);
      const causal = createMask('causal', seq);
      const viaMask = attn.forward(Q, K, V, causal);
      assertClose(viaMask, ref(undefined, 'top-left'), `createMask causal, ${ctx}`);
      const causalAttn = new WasmFlashAttention({ heads, dim, scale: 0.4, causal: true, runtime });
      assertClose(causalAttn.forward(Q, K, V), viaMask, `causal option vs causal mask, ${ctx}`, 1e-5);
      const padded = [0, 4, 22];
      const padding = createMask('padding', seq, padded);
      assertClose(attn.forward(Q, K, V, padding), ref(padding), `createMask padding, ${ctx}`);
      // Same thing as a boolean mask.
      const keep = new Uint8Array(seq * seq).fill(1);
      for (let i = 0; i < seq; ++i) for (const j of padded) keep[i * seq + j] = 0;
      assertClose(attn.forward(Q, K, V, keep), ref(padding), `boolean padding, ${ctx}`);
      const block = createMask('block', seq, [5, 11]);
      const blockOut = attn.forward(Q, K, V, block);
      assertClose(blockOut, ref(block), `createMask block, ${ctx}`);
      // Within-block attention: rows 0..4 must not depend on V rows 5..22.
      const V2 = V.slice();
      V2.fill(100, 5 * heads * dim);
      const blockOut2 = attn.forward(Q, K, V2, block);
      assert.deepEqual(blockOut2.subarray(0, 5 * heads * dim), blockOut.subarray(0, 5 * heads * dim));
      // Every key padded: every row empty, zeros and no NaN.
      const all = createMask('padding', seq, Array.from({ length: seq }, (_, j) => j));
      assert.ok(attn.forward(Q, K, V, all).every((x) => x === 0), `all padded gives zeros, ${ctx}`);
      attn.dispose();
      causalAttn.dispose();
    });

    for (const c of [
      { heads: 3, dim: 65, seqQ: 17 },
      { heads: 2, dim: 1, seqQ: 1 },
      { heads: 2, dim: 64, seqQ: 130, ctorCausal: true, amp: 2 },
      { heads: 2, dim: 3, seqQ: 7, seqK: 12, mask: { kind: 'additive', layout: 'hqk', emptyRows: 2 } },
      { heads: 2, dim: 3, seqQ: 12, seqK: 7, ctorCausal: true, mask: { kind: 'boolean', layout: 'qk', emptyRows: 1 } },
      { heads: 2, dim: 4, seqQ: 9, blockSize: 1, mask: { kind: 'boolean', layout: 'hqk', blockProbability: 1 } },
    ]) {
      test(`attentionScores ${JSON.stringify(c)}`, () => {
        const problem = makeProblem(c);
        const attn = problem.make(runtime);
        const scores = attn.attentionScores(problem.q, problem.k, problem.mask);
        attn.dispose();
        const seqK = c.seqK ?? c.seqQ;
        assert.equal(scores.length, c.heads * c.seqQ * seqK);
        const ref = problem.scoresReference();
        assertClose(scores, ref, `${name}: ${problem.context}`);
        // Rows sum to 1, or are all zeros when every key is blocked.
        for (let r = 0; r < c.heads * c.seqQ; ++r) {
          let sum = 0, refSum = 0;
          for (let j = 0; j < seqK; ++j) {
            assert.ok(!Number.isNaN(scores[r * seqK + j]), `NaN score (${problem.context})`);
            sum += scores[r * seqK + j];
            refSum += ref[r * seqK + j];
          }
          if (refSum === 0) {
            for (let j = 0; j < seqK; ++j) assert.ok(scores[r * seqK + j] === 0, `empty score row ${r} (${problem.context})`);
          } else {
            assert.ok(Math.abs(sum - 1) < 1e-5, `row ${r} sums to ${sum} (${problem.context})`);
          }
        }
      });
    }

    test('attentionScores ignores the constructor dropout (weights are never dropped)', () => {
      const seed = freshSeed();
      const random = makeRandom(seed);
      const Q = randomF32(random, 6 * 2 * 4), K = randomF32(random, 6 * 2 * 4);
      const attn = new WasmFlashAttention({ heads: 2, dim: 4, dropout: 0.5, runtime });
      assertClose(attn.attentionScores(Q, K), referenceScores({ q: Q, k: K, headsQ: 2, headDim: 4 }), `seed ${seed}`);
      attn.dispose();
    });
  });
}

// Random configurations: every option drawn at random, checked on both variants.
function randomCase(random) {
  const pick = (list) => list[Math.floor(random() * list.length)];
  const int = (lo, hi) => lo + Math.floor(random() * (hi - lo + 1));
  const heads = int(1, 6);
  const divisors = Array.from({ length: heads }, (_, n) => n + 1).filter((d) => heads % d === 0);
  const c = {
    batch: int(1, 3), heads, headsKv: pick(divisors), dim: pick([1, 2, 3, 4, 7, 8, 16, 31, 64, 65, 70]),
    seqQ: int(1, 70), seqK: int(1, 70), causal: pick([false, true, 'none', 'top-left', 'bottom-right']),
    amp: pick([0.5, 1, 3]),
  };
  if (random() < 0.5) c.valueDim = pick([1, 5, 8, 33, 64]);
  if (random() < 0.3) c.scale = pick([0.05, 0.5, -0.3, 2]);
  if (random() < 0.3) c.softcap = pick([0.5, 5, 30]);
  if (random() < 0.5) c.blockSize = pick([1, 3, 8, 13, 64, 200]);
  if (random() < 0.5) c.blockQ = pick([1, 2, 5, 48, 100]);
  if (random() < 0.6) {
    const layouts = ['qk', 'bqk', 'hqk', 'bhqk'];
    c.mask = { kind: pick(['additive', 'boolean']), layout: pick(layouts), emptyRows: int(0, 2), blockProbability: random() * 0.6 };
    // The layout is inferred from the length unless that is ambiguous (batch == heads > 1).
    if (c.batch === c.heads && c.batch > 1 && (c.mask.layout === 'bqk' || c.mask.layout === 'hqk')) c.explicitLayout = true;
    else if (random() < 0.3) c.explicitLayout = true;
  }
  return c;
}

const RANDOM_CASES = 30;
test(`${RANDOM_CASES} random configurations on both variants`, () => {
  const random = makeRandom(freshSeed());
  for (let n = 0; n < RANDOM_CASES; ++n) {
    const problem = makeProblem(randomCase(random));
    for (const { name, runtime } of VARIANTS) {
      const { errOut, errLse, emptyRows } = checkForwardExtended(problem, runtime, `random case ${n} on ${name}`);
      const w = worst.get(name) ?? { output: 0, lse: 0 };
      worst.set(name, { output: Math.max(w.output, errOut), lse: Math.max(w.lse, errLse) });
      emptyRowsSeen += emptyRows;
    }
  }
});

test('both variants agree with each other to float32 rounding', () => {
  const problem = makeProblem({ batch: 2, heads: 4, headsKv: 2, dim: 33, seqQ: 77, seqK: 90, causal: 'bottom-right', softcap: 3,
    mask: { kind: 'additive', layout: 'bhqk', emptyRows: 4 } });
  const outputs = VARIANTS.map(({ runtime }) => problem.make(runtime).forwardExtended(problem.inputs()));
  assertClose(outputs[0].output, outputs[1].output, problem.context, 1e-6);
  assertClose(outputs[0].lse, outputs[1].lse, problem.context, 1e-6);
});
