// Shared test helpers: seeded random inputs (seed drawn from Math.random, printed in every
// failure message; set ATTNKIT_TEST_SEED to replay), error measures, runtime selection.
import assert from 'node:assert/strict';

export const TOLERANCE = 1e-4;

// mulberry32: a small seedable generator, so a failing draw can be replayed exactly.
export function makeRandom(seed) {
  let a = seed >>> 0;
  return function random() {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const BASE_SEED = process.env.ATTNKIT_TEST_SEED !== undefined
  ? Number(process.env.ATTNKIT_TEST_SEED) >>> 0
  : Math.floor(Math.random() * 2 ** 32) >>> 0;
let nextSeed = BASE_SEED;

// A fresh seed per case (derived from the base seed, so ATTNKIT_TEST_SEED replays a run).
export function freshSeed() {
  nextSeed = (Math.imul(nextSeed ^ (nextSeed >>> 16), 0x45d9f3b) + 0x9e3779b9) >>> 0;
  return nextSeed;
}

export function baseSeed() {
  return BASE_SEED;
}

// Uniform floats in [-amp, amp).
export function randomF32(random, length, amp = 1) {
  const a = new Float32Array(length);
  for (let i = 0; i < length; ++i) a[i] = (random() * 2 - 1) * amp;
  return a;
}

// max |a - b| / max |b|; when b is all zeros, max |a - b| (so zeros must be exact-ish).
export function relError(actual, expected) {
  assert.equal(actual.length, expected.length, 'length mismatch');
  let diff = 0, big = 0;
  for (let i = 0; i < expected.length; ++i) {
    const a = actual[i], e = expected[i];
    if (Number.isNaN(a) || Number.isNaN(e)) return NaN;
    if (e === -Infinity || a === -Infinity) {
      if (a !== e) return Infinity;
      continue;
    }
    diff = Math.max(diff, Math.abs(a - e));
    big = Math.max(big, Math.abs(e));
  }
  return big > 0 ? diff / big : diff;
}

export function assertClose(actual, expected, context, tolerance = TOLERANCE) {
  const err = relError(actual, expected);
  assert.ok(err < tolerance, `relative error ${err} >= ${tolerance} (${context}; base seed ${BASE_SEED})`);
  return err;
}

export function describeCase(obj) {
  return JSON.stringify(obj, (k, v) => (ArrayBuffer.isView(v) ? `<${v.constructor.name}(${v.length})>` : v));
}

// Asserts fn throws an instance of ErrorClass (exactly that class, not a subclass of Error
// that merely happens to be thrown) whose message names `param`.
export function assertThrowsNamed(fn, ErrorClass, param, context = '') {
  let thrown = null;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  assert.ok(thrown !== null, `expected ${ErrorClass.name} naming "${param}", nothing was thrown ${context}`);
  assert.equal(thrown.constructor, ErrorClass,
    `expected ${ErrorClass.name}, got ${thrown.constructor.name}: ${thrown.message} ${context}`);
  assert.match(thrown.message, new RegExp(`\\b${param}\\b`),
    `message should name "${param}": ${thrown.message} ${context}`);
  return thrown;
}
