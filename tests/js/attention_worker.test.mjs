// AttentionWorker in Node (worker_threads): results against the float64 reference, transfer()
// moving inputs, errors crossing with their class, message and parameter (the object stays
// usable), several calls in flight, the event loop free during a long call, dispose, and a
// process that forgets dispose() still exiting. (tests/browser runs it in a Web Worker.)
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { AttentionWorker, WasmFlashAttention, transfer } from '../../js/index.js';
import { referenceFlash } from './reference.mjs';
import { assertClose, freshSeed, makeRandom, randomF32 } from './helpers.mjs';

const worker = await AttentionWorker.create({ numThreads: 2 });
after(() => worker.dispose());

test('the worker runs its own threaded runtime and says why', () => {
  assert.equal(worker.info.variant, 'simd-threads');
  assert.equal(worker.info.threads, 2);
  assert.match(worker.info.reason, /threads available/);
});

test('forward in the worker matches the float64 reference; transfer() moves inputs', { timeout: 30000 }, async () => {
  const random = makeRandom(freshSeed());
  const heads = 3, dim = 24, n = 77;
  const attn = await worker.construct('WasmFlashAttention', { heads, dim, causal: true });
  const Q = randomF32(random, n * heads * dim), K = randomF32(random, n * heads * dim), V = randomF32(random, n * heads * dim);
  const ref = referenceFlash({ q: Q, k: K, v: V, headsQ: heads, headDim: dim, causal: true }).output;
  const copied = await attn.forward(Q, K, V);
  assert.ok(copied instanceof Float32Array);
  assertClose(copied, ref, 'copied inputs');
  assert.equal(Q.length, n * heads * dim, 'a copied input stays with the caller');
  const q2 = Q.slice(), k2 = K.slice();
  const moved = await attn.forward(transfer(q2), transfer(k2), V);
  assert.equal(q2.length, 0, 'a transferred input is detached');
  assert.equal(k2.length, 0);
  assert.deepEqual(moved, copied);
  // Nested in an options object, with a result object holding two arrays.
  const { output, lse } = await attn.forwardExtended({ q: transfer(Q.slice()), k: K, v: V, returnLse: true });
  assertClose(output, ref, 'forwardExtended');
  assert.equal(lse.length, heads * n);
  assert.equal(await attn.get('heads'), heads);
  await attn.dispose();
});

test('other classes: linear, sparse with its stats, KV cache', { timeout: 30000 }, async () => {
  const random = makeRandom(freshSeed());
  const heads = 2, dim = 32, n = 130;
  const Q = randomF32(random, n * heads * dim), K = randomF32(random, n * heads * dim), V = randomF32(random, n * heads * dim);
  const linear = await worker.construct('WasmLinearAttention', { heads, dim, featureMap: 'relu' });
  assert.equal((await linear.forward(Q, K, V)).length, n * heads * dim);
  const sparse = await worker.construct('WasmSparseAttention', { heads, headDim: dim, pattern: 'local', windowSize: 64, blockSize: 32 });
  await sparse.forward(Q, K, V);
  const stats = await sparse.get('lastStats');
  assert.ok(stats.sparseRatio > 0 && stats.sparseRatio < 1, JSON.stringify(stats));
  const cache = await worker.construct('WasmKVCache', { heads, headDim: dim });
  await cache.append(K, V);
  const full = new WasmFlashAttention({ heads, dim });
  const lastRow = Q.subarray((n - 1) * heads * dim);
  // One query over every cached key equals the last row of a non-causal forward.
  assertClose(await cache.attend(lastRow), full.forward(Q, K, V).subarray((n - 1) * heads * dim), 'KV cache');
  full.dispose();
  for (const object of [linear, sparse, cache]) await object.dispose();
});

test('errors keep their class, message and parameter; the object stays usable', { timeout: 30000 }, async () => {
  const attn = await worker.construct('WasmFlashAttention', { heads: 2, dim: 8 });
  const local = new WasmFlashAttention({ heads: 2, dim: 8 });
  const good = new Float32Array(5 * 16).fill(0.25);
  let expected;
  try { local.forward(new Float32Array(3), good, good); } catch (err) { expected = err; }
  await assert.rejects(attn.forward(new Float32Array(3), good, good), (err) => {
    assert.equal(err.constructor, RangeError);
    assert.equal(err.message, expected.message);
    assert.equal(err.param, 'Q');
    return true;
  });
  await assert.rejects(attn.forward('nope', good, good), TypeError);
  assert.deepEqual(await attn.forward(good, good, good), local.forward(good, good, good), 'usable after the errors');
  await assert.rejects(worker.construct('WasmFlashAttention', { heads: 0 }), (err) => err instanceof RangeError && err.param === 'heads');
  await assert.rejects(worker.construct('NoSuchClass'), (err) => err instanceof TypeError && /className/.test(err.message));
  await assert.rejects(worker.construct('WasmFlashAttention', { runtime: 1 }), (err) => err instanceof TypeError && /runtime/.test(err.message));
  await assert.rejects(attn.forward(good, good, good, () => 0), (err) => err instanceof TypeError && /cannot be sent/.test(err.message));
  assert.throws(() => transfer([1, 2]), TypeError);
  await attn.dispose();
  await assert.rejects(attn.forward(good, good, good), /disposed/);
  local.dispose();
});

test('several calls in flight; the event loop stays free during a long call', { timeout: 60000 }, async () => {
  const heads = 8, dim = 64, n = 2048;
  const attn = await worker.construct('WasmFlashAttention', { heads, dim });
  const random = makeRandom(freshSeed());
  const inputs = [1, 2, 3].map(() => randomF32(random, n * heads * dim));
  let ticks = 0;
  const timer = setInterval(() => ++ticks, 5);
  const t0 = performance.now();
  const outs = await Promise.all(inputs.map((x) => attn.forward(x, inputs[0], x)));
  const ms = performance.now() - t0;
  clearInterval(timer);
  const local = new WasmFlashAttention({ heads, dim });
  inputs.forEach((x, i) => assert.deepEqual(outs[i], local.forward(x, inputs[0], x), `call ${i}`));
  // Three calls of about 4·2048²·64·8 flops each; the main thread ran timers throughout.
  assert.ok(ticks >= Math.min(10, ms / 20), `${ticks} timer ticks in ${ms.toFixed(0)} ms`);
  await worker.setNumThreads(1);
  assert.equal(worker.info.threads, 1);
  await worker.setNumThreads(2);
  local.dispose();
  await attn.dispose();
});

test('dispose terminates the worker: calls in flight and later reject', { timeout: 30000 }, async () => {
  const other = await AttentionWorker.create({ variant: 'simd' });
  assert.equal(other.info.variant, 'simd');
  const attn = await other.construct('WasmFlashAttention', { heads: 8, dim: 64 });
  const x = new Float32Array(1024 * 8 * 64).fill(0.5);
  const pending = attn.forward(x, x, x);
  other.dispose();
  await assert.rejects(pending, /disposed/);
  await assert.rejects(attn.forward(x, x, x), /disposed/);
  await assert.rejects(other.construct('WasmFlashAttention', {}), /disposed/);
  other.dispose();
});

test('a script that never calls dispose() still exits', { timeout: 30000 }, () => {
  const script = `
    import { AttentionWorker } from ${JSON.stringify(new URL('../../js/index.js', import.meta.url).href)};
    const w = await AttentionWorker.create({ numThreads: 2 });
    const a = await w.construct('WasmFlashAttention', { heads: 1, dim: 4 });
    console.log((await a.forward(new Float32Array(8), new Float32Array(8), new Float32Array(8))).length);`;
  const out = execFileSync('node', ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20000 });
  assert.equal(out.trim(), '8');
});
