// The reference itself, against hand-computed values: a wrong reference would make every
// other comparison meaningless.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { dropoutRule, mix64, referenceFlash, referenceScores } from './reference.mjs';

const close = (a, b, msg) => assert.ok(Math.abs(a - b) < 1e-12, `${msg}: ${a} vs ${b}`);

test('mix64 is splitmix64\'s finalizer', () => {
  // First output of splitmix64 seeded with 0 (published test vector).
  assert.equal(mix64(0x9e3779b97f4a7c15n), 0xe220a8397b1dcdafn);
  assert.equal(mix64(0n), 0n);
});

test('dropout keep rule matches DropoutRng (bits computed with the C++ header)', () => {
  // Printed by a native build of src/flash/dropout_rng.h: keep(0..31) and keep(1000000007).
  const golden = [
    [0, 0.5, '01000110000010000000010011100011', true],
    [12345, 0.1, '11110110111111110111111101111111', false],
    [9007199254740991, 0.9, '00000001000000000000000000010000', false],
  ];
  for (const [seed, p, bits, far] of golden) {
    const rule = dropoutRule(seed, p);
    const got = Array.from({ length: 32 }, (_, e) => (rule.keep(e) ? '1' : '0')).join('');
    assert.equal(got, bits, `seed ${seed} p ${p}`);
    assert.equal(rule.keep(1000000007), far, `seed ${seed} p ${p} element 1000000007`);
  }
  assert.equal(dropoutRule(0, 0.5).threshold, 8388608);
  assert.equal(dropoutRule(0, 0.1).threshold, Math.floor(Math.fround(0.1) * 2 ** 24));
});

test('two keys: hand-computed softmax, output and lse', () => {
  // heads 1, dim 2, seqQ 1, seqK 2, valueDim 1, scale 1: logits [1, 0].
  const q = Float32Array.of(1, 0), k = Float32Array.of(1, 0, 0, 1), v = Float32Array.of(2, 4);
  const r = referenceFlash({ q, k, v, headsQ: 1, headDim: 2, valueDim: 1, scale: 1 });
  const e = Math.E;
  close(r.output[0], (2 * e + 4) / (e + 1), 'output');
  close(r.lse[0], Math.log(e + 1), 'lse');
  const w = referenceScores({ q, k, headsQ: 1, headDim: 2, scale: 1 });
  close(w[0], e / (e + 1), 'w0');
  close(w[1], 1 / (e + 1), 'w1');
  // Default scale 1/sqrt(2).
  const r2 = referenceFlash({ q, k, v, headsQ: 1, headDim: 2, valueDim: 1 });
  const a = Math.exp(Math.SQRT1_2);
  close(r2.output[0], (2 * a + 4) / (a + 1), 'default scale');
  // Softcap 0.5: logit 0.5 * tanh(1 / 0.5).
  const r3 = referenceFlash({ q, k, v, headsQ: 1, headDim: 2, valueDim: 1, scale: 1, softcap: 0.5 });
  const c = Math.exp(0.5 * Math.tanh(2));
  close(r3.output[0], (2 * c + 4) / (c + 1), 'softcap');
  // Additive bias of +1 on key 1 makes the logits equal.
  const r4 = referenceFlash({ q, k, v, headsQ: 1, headDim: 2, valueDim: 1, scale: 1, mask: Float32Array.of(0, 1) });
  close(r4.output[0], 3, 'additive bias');
  // Boolean mask blocking key 0.
  const r5 = referenceFlash({ q, k, v, headsQ: 1, headDim: 2, valueDim: 1, scale: 1, mask: Uint8Array.of(0, 1) });
  close(r5.output[0], 4, 'boolean mask');
  close(r5.lse[0], 0, 'boolean mask lse');
});

test('causal frontiers, empty rows, GQA and mask layouts', () => {
  // heads 2 (sharing one kv head), dim 1, seqQ 3, seqK 2; q = 0 so weights are uniform
  // over the visible keys; v = [10, 20] per key.
  const q = new Float32Array(3 * 2), k = Float32Array.of(1, 1), v = Float32Array.of(10, 20);
  const base = { q, k, v, headsQ: 2, headsKv: 1, headDim: 1 };
  const tl = referenceFlash({ ...base, causal: 'top-left' });
  assert.deepEqual(Array.from(tl.output), [10, 10, 15, 15, 15, 15]);
  const br = referenceFlash({ ...base, causal: 'bottom-right' });  // offset -1: row 0 sees nothing
  assert.deepEqual(Array.from(br.output), [0, 0, 10, 10, 15, 15]);
  assert.deepEqual(Array.from(br.lse), [-Infinity, 0, Math.log(2), -Infinity, 0, Math.log(2)]);
  assert.deepEqual(Array.from(referenceFlash({ ...base, causal: true }).output), Array.from(tl.output));
  // hqk mask: head 1 blocks key 0 everywhere.
  const mask = Float32Array.of(0, 0, 0, 0, 0, 0, -Infinity, 0, -Infinity, 0, -Infinity, 0);
  const m = referenceFlash({ ...base, mask, maskLayout: 'hqk' });
  assert.deepEqual(Array.from(m.output), [15, 20, 15, 20, 15, 20]);
  const w = referenceScores({ q, k, headsQ: 2, headsKv: 1, headDim: 1, mask, maskLayout: 'hqk' });
  assert.deepEqual(Array.from(w), [0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0, 1, 0, 1, 0, 1]);
  // bqk: batch 2, batch 1 blocks everything -> zeros and -Infinity.
  const q2 = new Float32Array(2 * 3 * 2), k2 = Float32Array.of(1, 1, 1, 1), v2 = Float32Array.of(10, 20, 30, 40);
  const bmask = new Uint8Array(2 * 3 * 2);
  bmask.fill(1, 0, 6);
  const b = referenceFlash({ q: q2, k: k2, v: v2, batch: 2, headsQ: 2, headsKv: 1, headDim: 1, mask: bmask, maskLayout: 'bqk' });
  assert.deepEqual(Array.from(b.output), [15, 15, 15, 15, 15, 15, 0, 0, 0, 0, 0, 0]);
  assert.ok(Array.from(b.lse).slice(6).every((x) => x === -Infinity));
});

test('dropout in the reference: kept weights rescaled by 1/(1-p), lse unchanged', () => {
  const q = new Float32Array(4), k = new Float32Array(8 * 4), v = new Float32Array(8 * 8);
  for (let j = 0; j < 8; ++j) v[j * 8 + j] = 1;  // identity: output row = weights
  const p = 0.5, seed = 7;
  const r = referenceFlash({ q, k, v, headsQ: 1, headDim: 4, valueDim: 8, dropout: p, seed });
  const rule = dropoutRule(seed, p);
  for (let j = 0; j < 8; ++j) close(r.output[j], rule.keep(j) ? 2 / 8 : 0, `weight ${j}`);
  close(r.lse[0], Math.log(8), 'lse');
});
