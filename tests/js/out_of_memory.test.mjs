// Out of memory, on both WebAssembly variants: a call whose buffers the heap cannot hold
// (beyond 4 GiB, or beyond what is left of it) raises a RangeError naming "memory" and the
// buffer, from the JS side (malloc returns 0) and from the C++ side (std::bad_alloc inside
// the bindings, construction included); the instance is not aborted, nothing leaks, and the
// module and the objects that met the error compute correct results afterwards.
// The heap is filled by growing it to its 4 GiB limit with blocks malloc hands out and
// nobody writes: the pages are reserved, not touched, so the machine's memory is not used.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  WasmFlashAttention, WasmKVCache, WasmMultiHeadAttention, WasmSparseAttention, createRuntime,
} from '../../js/index.js';
import { assertClose, assertThrowsNamed, freshSeed, makeRandom, randomF32 } from './helpers.mjs';
import { referenceFlash } from './reference.mjs';

const HEAP_MAX = 2 ** 32 - 2 ** 16;  // emscripten's largest heap with MAXIMUM_MEMORY=4GB
const RUNTIMES = [
  { name: 'simd-threads', runtime: await createRuntime({ variant: 'simd-threads', numThreads: 2 }) },
  { name: 'simd', runtime: await createRuntime({ variant: 'simd' }) },
];

// Runs fn with about `free` bytes left in the heap (within 32 KiB): the rest is occupied by
// blocks grown up to the 4 GiB limit, freed afterwards.
function withFreeBytes(module, free, fn) {
  const room = module._malloc(free);
  assert.ok(room, `cannot set ${free} bytes aside`);
  const blocks = [];
  for (let size = HEAP_MAX; size >= 16 * 1024; size = Math.floor(size / 2)) {
    for (let ptr = module._malloc(size); ptr; ptr = module._malloc(size)) blocks.push(ptr);
  }
  module._free(room);
  try {
    assert.ok(module.heapU8().byteLength > 4 * 10 ** 9, `the heap did not reach its limit: ${module.heapU8().byteLength}`);
    return fn();
  } finally {
    for (const ptr of blocks) module._free(ptr);
  }
}

function smallFlash(runtime, random, label) {
  const heads = 2, dim = 8;
  const q = randomF32(random, 5 * heads * dim), k = randomF32(random, 7 * heads * dim), v = randomF32(random, 7 * heads * dim);
  const attn = new WasmFlashAttention({ heads, dim, runtime });
  try {
    assertClose(attn.forward(q, k, v), referenceFlash({ q, k, v, headsQ: heads, headDim: dim }).output, label);
  } finally {
    attn.dispose();
  }
}

for (const { name, runtime } of RUNTIMES) {
  describe(`out of memory on ${name}`, () => {
    test('buffers beyond 4 GiB, or beyond what the heap can still grow to, raise a RangeError naming memory', () => {
      const seed = freshSeed();
      const random = makeRandom(seed);
      const module = runtime.module;
      const attn = new WasmFlashAttention({ heads: 1, dim: 1, runtime });
      // Scores [1][n][n] of n = 40000: 6.4 GB, more than a 32-bit heap addresses.
      const wide = randomF32(random, 40000);
      const before = module.heapUsed();
      const tooBig = assertThrowsNamed(() => attn.attentionScores(wide, wide), RangeError, 'memory');
      assert.match(tooBig.message, /the output of 6400000000 bytes/);
      // n = 32767: 4 294 705 156 bytes, under the 4 GiB limit by 196 KiB, so malloc tries
      // and fails (the heap already holds more than that); the heap does not grow for it.
      const total = module.heapU8().byteLength;
      const seq = randomF32(random, 32767);
      const refused = assertThrowsNamed(() => attn.attentionScores(seq, seq), RangeError, 'memory');
      assert.match(refused.message, /cannot hold the output of 4294705156 bytes/);
      assert.equal(module.heapU8().byteLength, total, 'a refused allocation grew the heap');
      // A huge but valid sparse pattern mask, likewise.
      const sparse = new WasmSparseAttention({ heads: 4, headDim: 4, pattern: 'local', blockSize: 32, runtime });
      assertThrowsNamed(() => sparse.getPatternMask(32767), RangeError, 'memory');
      assert.equal(module.heapUsed(), before, 'the failed calls left memory allocated');
      sparse.dispose();
      smallFlash(runtime, random, `${name} after the refused calls, seed ${seed}`);
      const q = randomF32(random, 3);
      assertClose(attn.forward(q, q, q), referenceFlash({ q, k: q, v: q, headsQ: 1, headDim: 1 }).output, 'the same object');
      attn.dispose();
    });

    test('std::bad_alloc in C++ (calls and constructors) becomes a RangeError, and the objects keep working', () => {
      const seed = freshSeed();
      const random = makeRandom(seed);
      const module = runtime.module;
      const modelDim = 64, heads = 4, n = 40;
      const mha = new WasmMultiHeadAttention({ modelDim, heads, seed: 3, runtime });
      const cache = new WasmKVCache({ heads: 2, headDim: 16, runtime });
      const x = randomF32(random, n * modelDim);
      const rows = randomF32(random, 8 * 2 * 16);
      const expected = mha.forward(x, x, x);
      cache.append(rows, rows);
      const attended = cache.attend(rows.subarray(0, 32));
      const before = module.heapUsed();

      const memoryError = (fn, what) => {
        const err = assertThrowsNamed(fn, RangeError, 'memory', `(${what})`);
        assert.doesNotMatch(err.message, /internal/, what);
        return err;
      };
      // 1.5 MiB left: the inputs (1 MiB) are copied in, the projections of 2048 key and
      // value rows (another 1 MiB, made in C++) are not.
      const long = randomF32(random, 2048 * modelDim);
      withFreeBytes(module, 1.5 * 2 ** 20, () => {
        memoryError(() => mha.forward(long.subarray(0, 16 * modelDim), long, long), 'multi-head forward');
      });
      // 1.25 MiB left: 3072 new rows of keys and values (768 KiB) are copied in; the cache's
      // new key buffer (384 KiB) fits, its new value buffer does not.
      const more = randomF32(random, 3072 * 2 * 16);
      withFreeBytes(module, 1.25 * 2 ** 20, () => {
        memoryError(() => cache.append(more, more), 'KV cache append');
      });
      // Constructors: their weights (C++) or reserved rows, through the guarded factories.
      withFreeBytes(module, 2 ** 20, () => {
        memoryError(() => new WasmMultiHeadAttention({ modelDim: 512, heads: 8, runtime }), 'multi-head constructor');
        memoryError(() => new WasmKVCache({ heads: 8, headDim: 64, capacity: 100000, runtime }), 'KV cache constructor');
      });
      assert.equal(module.heapUsed(), before, 'the failed calls left memory allocated');
      // The objects that met the errors are as they were.
      assert.deepEqual(mha.forward(x, x, x), expected, 'multi-head output changed');
      assert.equal(cache.length, 8, 'the failed append changed the cache');
      assert.deepEqual(cache.attend(rows.subarray(0, 32)), attended, 'KV cache output changed');
      // And the module does what it did.
      const bigger = new WasmMultiHeadAttention({ modelDim: 512, heads: 8, runtime });
      assert.equal(bigger.forward(randomF32(random, 4 * 512), randomF32(random, 4 * 512), randomF32(random, 4 * 512)).length, 4 * 512);
      bigger.dispose();
      smallFlash(runtime, random, `${name} after bad_alloc, seed ${seed}`);
      mha.dispose();
      cache.dispose();
    });
  });
}
