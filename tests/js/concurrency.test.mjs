// Concurrency: calls on separate instances at the same time (in several AttentionWorkers,
// and as interleaved async tasks on the main thread) give the results each would give
// alone; and the sharing rule the README states: one instance serves any number of async
// tasks, each call whole and in the order made (a RemoteObject's calls too), and its state
// between calls (a KV cache's rows, lastStats) reflects the calls in that order.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AttentionWorker, WasmAdaptivePrecisionAttention, WasmDenseAttention, WasmFlashAttention, WasmKVCache,
  WasmLinearAttention, WasmMultiHeadAttention, WasmSparseAttention,
} from '../../js/index.js';
import { assertClose, freshSeed, makeRandom, randomF32 } from './helpers.mjs';
import { referenceFlash } from './reference.mjs';

const WORKERS = 3;
const workers = await Promise.all(Array.from({ length: WORKERS }, () => AttentionWorker.create({ numThreads: 2 })));
after(() => workers.forEach((w) => w.dispose()));

const pause = (random) => new Promise((resolve) => {
  const r = random();
  if (r < 0.3) resolve();
  else if (r < 0.7) setImmediate(resolve);
  else setTimeout(resolve, Math.floor(r * 3));
});

test(`${WORKERS} AttentionWorkers computing at once each match the float64 reference / the main thread`, { timeout: 120000 }, async () => {
  const seed = freshSeed();
  const random = makeRandom(seed);
  const heads = 4, dim = 32;
  // Per worker: a flash object, a linear one and a multi-head one, several calls each, all in flight together.
  const jobs = [];
  for (let w = 0; w < WORKERS; ++w) {
    const worker = workers[w];
    jobs.push((async () => {
      const flash = await worker.construct('WasmFlashAttention', { heads, dim, causal: w % 2 === 1 });
      const linear = await worker.construct('WasmLinearAttention', { heads, dim, featureMap: 'elu' });
      const mha = await worker.construct('WasmMultiHeadAttention', { modelDim: heads * dim, heads, seed: 10 + w });
      const calls = [];
      for (let c = 0; c < 4; ++c) {
        const n = 33 + 31 * ((w + c) % 5);
        const q = randomF32(random, n * heads * dim), k = randomF32(random, n * heads * dim), v = randomF32(random, n * heads * dim);
        calls.push(flash.forward(q, k, v).then((out) => ({ kind: 'flash', causal: w % 2 === 1, q, k, v, out })));
        calls.push(linear.forward(q, k, v).then((out) => ({ kind: 'linear', q, k, v, out })));
        calls.push(mha.forward(q, k, v).then((out) => ({ kind: 'mha', seed: 10 + w, q, k, v, out })));
      }
      const results = await Promise.all(calls);
      await Promise.all([flash.dispose(), linear.dispose(), mha.dispose()]);
      return results;
    })());
  }
  const all = (await Promise.all(jobs)).flat();
  const linearHere = new WasmLinearAttention({ heads, dim, featureMap: 'elu' });
  for (const r of all) {
    if (r.kind === 'flash') {
      assertClose(r.out, referenceFlash({ q: r.q, k: r.k, v: r.v, headsQ: heads, headDim: dim, causal: r.causal }).output,
        `flash in a worker, seed ${seed}`);
    } else if (r.kind === 'linear') {
      assertClose(r.out, linearHere.forward(r.q, r.k, r.v), `linear in a worker, seed ${seed}`, 1e-5);
    } else {
      const mha = new WasmMultiHeadAttention({ modelDim: heads * dim, heads, seed: r.seed });
      assertClose(r.out, mha.forward(r.q, r.k, r.v), `multi-head in a worker, seed ${seed}`, 1e-5);
      mha.dispose();
    }
  }
  linearHere.dispose();
  assert.equal(all.length, WORKERS * 12);
});

// Tasks with state, each on its own instance: its results, interleaved with the others at
// random awaits, must equal the results it gives alone.
function tasks() {
  const heads = 2, dim = 16, e = heads * dim;
  return {
    async decode(random, step) {
      const cache = new WasmKVCache({ heads, headDim: dim, precision: 'bf16' });
      const outs = [];
      for (let t = 0; t < 12; ++t) {
        const row = randomF32(random, heads * dim);
        cache.append(row, row);
        await step();
        outs.push(cache.attend(row, { causal: true }));
      }
      cache.dispose();
      return outs;
    },
    async sparse(random, step) {
      const attn = new WasmSparseAttention({ heads, headDim: dim, pattern: 'random', seed: 5, blockSize: 32, windowSize: 32 });
      const outs = [];
      for (let t = 0; t < 6; ++t) {
        const n = 40 + 30 * t;
        const x = randomF32(random, n * heads * dim);
        outs.push(attn.forward(x, x, x));
        outs.push(Float64Array.of(attn.lastStats.computedScores, attn.lastStats.denseScores));
        await step();
      }
      attn.dispose();
      return outs;
    },
    async dropout(random, step) {
      const attn = new WasmDenseAttention({ embedDim: e, numHeads: heads, dropout: 0.3, seed: 7, training: true });
      const outs = [];
      for (let t = 0; t < 6; ++t) {
        const x = randomF32(random, 5 * e);
        await step();
        outs.push(attn.forward(x, x, x, { needWeights: true }).weights);
      }
      attn.dispose();
      return outs;
    },
    async weights(random, step) {
      const mha = new WasmMultiHeadAttention({ modelDim: e, heads, seed: 9 });
      const outs = [];
      for (let t = 0; t < 6; ++t) {
        const x = randomF32(random, (3 + t) * e);
        outs.push(mha.forward(x, x, x));
        await step();
        outs.push(mha.getAttentionWeights());
      }
      mha.dispose();
      return outs;
    },
    async prefill(random, step) {
      const attn = new WasmAdaptivePrecisionAttention({ embedDim: e, numHeads: heads, seed: 11, defaultPrecision: 'fp16' });
      const x = randomF32(random, 8 * e);
      const outs = [attn.forward(x, x, x, { keepCache: true, causal: true }).output];
      for (let t = 0; t < 6; ++t) {
        await step();
        const y = randomF32(random, e);
        outs.push(attn.step(y, y, y).output);
      }
      attn.dispose();
      return outs;
    },
  };
}

test('interleaved async tasks, each on its own stateful instance, give the results they give alone', { timeout: 60000 }, async () => {
  const seed = freshSeed();
  const alone = {};
  const streams = Object.keys(tasks());
  const inputs = (name) => makeRandom(seed + 7919 * streams.indexOf(name));
  for (const [name, task] of Object.entries(tasks())) alone[name] = await task(inputs(name), async () => {});
  for (let round = 0; round < 3; ++round) {
    const order = makeRandom(seed + round + 1);
    const together = await Promise.all(Object.entries(tasks()).map(async ([name, task]) =>
      [name, await task(inputs(name), () => pause(order))]));
    for (const [name, outs] of together) {
      assert.equal(outs.length, alone[name].length);
      outs.forEach((out, i) => assert.deepEqual(out, alone[name][i], `${name} result ${i}, round ${round}, seed ${seed}`));
    }
  }
});

test('one instance shared by async tasks: each call is whole, the state follows the order the calls ran', { timeout: 60000 }, async () => {
  const seed = freshSeed();
  const random = makeRandom(seed);
  const heads = 2, dim = 8;
  const shared = new WasmKVCache({ heads, headDim: dim });
  const log = [];
  const answered = [];  // [index in the log, the answer the task got]
  // Three tasks append their own rows to one cache and attend it, at random awaits.
  await Promise.all([0, 1, 2].map(async () => {
    for (let t = 0; t < 5; ++t) {
      const row = randomF32(random, heads * dim);
      await pause(random);
      shared.append(row, row);
      log.push({ op: 'append', row });
      const q = randomF32(random, heads * dim);
      await pause(random);
      // Read right after the call, before any await: this task's answer over the rows so far.
      answered.push([log.length, shared.attend(q)]);
      log.push({ op: 'attend', q, length: shared.length });
    }
  }));
  // Replaying the calls in the order they ran gives every task the answer it got.
  const replay = new WasmKVCache({ heads, headDim: dim });
  const replayed = new Map();
  log.forEach((entry, i) => {
    if (entry.op === 'append') {
      replay.append(entry.row, entry.row);
    } else {
      assert.equal(replay.length, entry.length);
      replayed.set(i, replay.attend(entry.q));
    }
  });
  assert.equal(answered.length, 15);
  for (const [i, out] of answered) assert.deepEqual(out, replayed.get(i), `the attend at ${i} (seed ${seed})`);
  // lastStats read right after a call is that call's, whatever other tasks do next.
  const sparse = new WasmSparseAttention({ heads, headDim: dim, pattern: 'local', windowSize: 32, blockSize: 32 });
  await Promise.all([64, 160, 96].map(async (n) => {
    for (let t = 0; t < 3; ++t) {
      const x = randomF32(random, n * heads * dim);
      sparse.forward(x, x, x);
      assert.equal(sparse.lastStats.denseScores, heads * n * n, `lastStats of the call of n = ${n}`);
      await pause(random);
    }
  }));
  sparse.dispose();
  shared.dispose();
  replay.dispose();
});

test('a RemoteObject runs its calls one at a time in the order they were made', { timeout: 60000 }, async () => {
  const seed = freshSeed();
  const random = makeRandom(seed);
  const heads = 2, dim = 8;
  const remote = await workers[0].construct('WasmKVCache', { heads, headDim: dim });
  const local = new WasmKVCache({ heads, headDim: dim });
  // Calls fired without waiting: appends and attends interleaved, as one task would make them.
  const pending = [];
  const expected = [];
  for (let t = 0; t < 20; ++t) {
    const rows = randomF32(random, (1 + (t % 3)) * heads * dim);
    pending.push(remote.append(rows, rows));
    local.append(rows, rows);
    const q = randomF32(random, heads * dim);
    pending.push(remote.attend(q));
    expected.push(local.attend(q));
  }
  const answers = (await Promise.all(pending)).filter((a) => a !== undefined);
  assert.equal(answers.length, expected.length);
  answers.forEach((a, i) => assert.deepEqual(a, expected[i], `attend ${i} (seed ${seed})`));
  assert.equal(await remote.get('length'), local.length);
  // Two objects in one worker, calls interleaved: each gives its own results.
  const flashA = await workers[0].construct('WasmFlashAttention', { heads, dim });
  const flashB = await workers[0].construct('WasmFlashAttention', { heads, dim, causal: true });
  const x = randomF32(random, 20 * heads * dim);
  const [a, b] = await Promise.all([flashA.forward(x, x, x), flashB.forward(x, x, x)]);
  assertClose(a, referenceFlash({ q: x, k: x, v: x, headsQ: heads, headDim: dim }).output, 'object A');
  assertClose(b, referenceFlash({ q: x, k: x, v: x, headsQ: heads, headDim: dim, causal: true }).output, 'object B');
  await Promise.all([remote.dispose(), flashA.dispose(), flashB.dispose()]);
  local.dispose();
  // An object belongs to its thread's runtime: one made here cannot be handed to a worker.
  const here = new WasmFlashAttention({ heads, dim });
  await assert.rejects(workers[1].construct('WasmFlashAttention', { heads, dim, runtime: here }), TypeError);
  here.dispose();
});
