// WasmFlashAttention: the seed-003 class on the core's tiled flash forward.
// Tensors are [seqLen][heads][dim] Float32Arrays (with a leading batch dimension in
// forwardExtended); masks are additive Float32Arrays or boolean Uint8Arrays.
import { raiseStatus, rangeError, typeError } from './errors.js';
import { MAX_ALLOCATION, withHeap } from './heap.js';
import { MASK_LAYOUTS, checkMask, maskStrides } from './mask_layout.js';
import { runtimeOption } from './runtime.js';
import {
  boolean, finiteNumber, float32Array, nonNegativeInt, oneOf, optionsObject, positiveInt, rowCount, seedValue,
} from './validate.js';

const WHERE = 'WasmFlashAttention';
const MAX_BLOCK = 4096;
const CAUSAL_CODES = { none: 0, 'top-left': 1, 'bottom-right': 2 };

function causalCode(where, value, fallback) {
  if (value === undefined) return fallback;
  if (value === true) return CAUSAL_CODES['top-left'];
  if (value === false) return CAUSAL_CODES.none;
  return CAUSAL_CODES[oneOf(where, 'causal', value, [true, false, 'top-left', 'bottom-right', 'none'])];
}

// A deterministic pseudo-random fill for benchmark inputs.
function fillRandom(array, seed) {
  let s = seed >>> 0;
  for (let i = 0; i < array.length; ++i) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    array[i] = s / 2147483648 - 1;
  }
  return array;
}

export class WasmFlashAttention {
  #runtime;
  #config;
  #disposed = false;
  #dropoutCalls = 0;

  constructor(options) {
    const opts = optionsObject(WHERE, options);
    const dim = positiveInt(WHERE, 'dim', opts.dim, 64);
    const config = {
      heads: positiveInt(WHERE, 'heads', opts.heads, 8),
      dim,
      blockSize: positiveInt(WHERE, 'blockSize', opts.blockSize, 128),
      causal: boolean(WHERE, 'causal', opts.causal, false),
      dropout: finiteNumber(WHERE, 'dropout', opts.dropout, 0, { min: 0, max: 1, maxExclusive: true }),
      scale: finiteNumber(WHERE, 'scale', opts.scale, 1 / Math.sqrt(dim)),
      // SIMD128 is always used: the package ships only SIMD builds (see README).
      simd: boolean(WHERE, 'simd', opts.simd, true),
      seed: seedValue(WHERE, opts.seed, 0),
    };
    if (config.blockSize > MAX_BLOCK) {
      throw rangeError(WHERE, 'blockSize', `expected at most ${MAX_BLOCK}, got ${config.blockSize}`);
    }
    this.#config = Object.freeze(config);
    this.#runtime = runtimeOption(WHERE, opts.runtime);
  }

  // The configuration is fixed at construction (read-only views).
  get heads() { return this.#config.heads; }
  get dim() { return this.#config.dim; }
  get blockSize() { return this.#config.blockSize; }
  get causal() { return this.#config.causal; }
  get dropout() { return this.#config.dropout; }
  get scale() { return this.#config.scale; }
  get simd() { return this.#config.simd; }
  get seed() { return this.#config.seed; }

  #live(method) {
    if (this.#disposed) throw new Error(`${WHERE}.${method}: this object was disposed; create a new one`);
    return this.#runtime.module;
  }

  // Normalises a call: shapes from the array lengths, options over the constructor's.
  #prepare(where, inputs, withValues = true) {
    const q = float32Array(where, 'Q', inputs.q);
    const k = float32Array(where, 'K', inputs.k);
    const v = withValues ? float32Array(where, 'V', inputs.v) : null;
    const batch = positiveInt(where, 'batch', inputs.batch, 1);
    const headsKv = positiveInt(where, 'headsKv', inputs.headsKv, this.heads);
    if (this.heads % headsKv !== 0) {
      throw rangeError(where, 'headsKv', `must divide heads (${this.heads}), got ${headsKv}`);
    }
    const valueDim = positiveInt(where, 'valueDim', inputs.valueDim, this.dim);
    const seqQ = rowCount(where, 'Q', q, batch * this.heads * this.dim, 'batch * heads * dim');
    const seqK = rowCount(where, 'K', k, batch * headsKv * this.dim, 'batch * headsKv * dim');
    if (withValues && v.length !== batch * seqK * headsKv * valueDim) {
      throw rangeError(where, 'V', `length ${v.length} should be batch * seqK * headsKv * valueDim = ` +
        `${batch} * ${seqK} * ${headsKv} * ${valueDim} = ${batch * seqK * headsKv * valueDim}`);
    }
    const call = {
      batch, seqQ, seqK, headsQ: this.heads, headsKv, headDim: this.dim, valueDim,
      scale: finiteNumber(where, 'scale', inputs.scale, this.scale),
      softcap: finiteNumber(where, 'softcap', inputs.softcap, 0, { min: 0 }),
      dropout: finiteNumber(where, 'dropout', inputs.dropout, this.dropout, { min: 0, max: 1, maxExclusive: true }),
      seed: 0,
      causal: causalCode(where, inputs.causal, this.causal ? CAUSAL_CODES['top-left'] : CAUSAL_CODES.none),
      blockQ: nonNegativeInt(where, 'blockQ', inputs.blockQ, 0),
      blockK: this.blockSize,
      maskKind: 0, maskBatchStride: 0, maskHeadStride: 0, maskRowStride: seqK,
      q: 0, k: 0, v: 0, out: 0, lse: 0, mask: 0,
    };
    if (call.blockQ > MAX_BLOCK) throw rangeError(where, 'blockQ', `expected at most ${MAX_BLOCK}`);
    const seed = seedValue(where, inputs.seed, undefined);
    if (call.dropout > 0) call.seed = seed ?? this.seed + this.#dropoutCalls++;
    if (inputs.maskLayout !== undefined) oneOf(where, 'maskLayout', inputs.maskLayout, MASK_LAYOUTS);
    if (inputs.mask !== undefined && inputs.mask !== null) {
      call.maskKind = checkMask(where, inputs.mask);
      const strides = maskStrides(where, inputs.mask, inputs.maskLayout, batch, this.heads, seqQ, seqK);
      call.maskBatchStride = strides.batchStride;
      call.maskHeadStride = strides.headStride;
    }
    return call;
  }

  #run(where, inputs, returnLse) {
    const module = this.#live(where.split('.')[1]);
    const call = this.#prepare(where, inputs);
    return withHeap(module, where, (heap) => {
      call.q = heap.copyIn(inputs.q, 'Q');
      call.k = heap.copyIn(inputs.k, 'K');
      call.v = heap.copyIn(inputs.v, 'V');
      if (call.maskKind) call.mask = heap.copyIn(inputs.mask, 'mask');
      const outLength = call.batch * call.seqQ * call.headsQ * call.valueDim;
      const lseLength = call.batch * call.headsQ * call.seqQ;
      call.out = heap.alloc(outLength * 4, 'the output');
      if (returnLse) call.lse = heap.alloc(lseLength * 4, 'the log-sum-exp');
      raiseStatus(module.flashForward(call), where);
      const result = { output: heap.readF32(call.out, outLength) };
      if (returnLse) result.lse = heap.readF32(call.lse, lseLength);
      return result;
    });
  }

  forward(Q, K, V, mask) {
    return this.#run(`${WHERE}.forward`, { q: Q, k: K, v: V, mask }, false).output;
  }

  forwardExtended(inputs) {
    const where = `${WHERE}.forwardExtended`;
    if (inputs === null || typeof inputs !== 'object') {
      throw typeError(where, 'inputs', 'expected an object { q, k, v, ... }');
    }
    return this.#run(where, inputs, boolean(where, 'returnLse', inputs.returnLse, false));
  }

  attentionScores(Q, K, mask) {
    const where = `${WHERE}.attentionScores`;
    const module = this.#live('attentionScores');
    const call = this.#prepare(where, { q: Q, k: K, mask, dropout: 0 }, false);
    const length = call.headsQ * call.seqQ * call.seqK;
    return withHeap(module, where, (heap) => {
      call.q = heap.copyIn(Q, 'Q');
      call.k = heap.copyIn(K, 'K');
      if (call.maskKind) call.mask = heap.copyIn(mask, 'mask');
      call.out = heap.alloc(length * 4, 'the output');
      raiseStatus(module.attentionScores(call), where);
      return heap.readF32(call.out, length);
    });
  }

  benchmark(seqLen, options) {
    const where = `${WHERE}.benchmark`;
    const module = this.#live('benchmark');
    positiveInt(where, 'seqLen', seqLen);
    const opts = optionsObject(where, options);
    const minTimeMs = finiteNumber(where, 'minTimeMs', opts.minTimeMs, 200, { min: 0, max: 60000 });
    const minRuns = positiveInt(where, 'minRuns', opts.minRuns, 3);
    if (minRuns > 10000) throw rangeError(where, 'minRuns', `expected at most 10000, got ${minRuns}`);
    const size = seqLen * this.heads * this.dim;
    // Q, K, V and the output are in the heap together (and made here first, in JS).
    if (4 * 4 * size > MAX_ALLOCATION) {
      throw rangeError(where, 'seqLen', `${seqLen} tokens need ${4 * 4 * size} bytes for Q, K, V and the output; ` +
        'the WebAssembly heap holds at most 4 GiB');
    }
    const q = fillRandom(new Float32Array(size), 1);
    const k = fillRandom(new Float32Array(size), 2);
    const v = fillRandom(new Float32Array(size), 3);
    const inputs = { q, k, v };
    const t0 = performance.now();
    this.#run(where, inputs, false);
    const firstCallMs = performance.now() - t0;
    const times = [];
    const start = performance.now();
    while (times.length < minRuns || performance.now() - start < minTimeMs) {
      const t = performance.now();
      this.#run(where, inputs, false);
      times.push(performance.now() - t);
    }
    const latencyMs = times.reduce((a, b) => a + b, 0) / times.length;
    const flops = module.flashFlops(this.#prepare(where, { ...inputs, dropout: 0 }));
    const bytes = 4 * size * 4;  // Q, K, V read and the output written
    return {
      opsPerSecond: flops / (latencyMs / 1000),
      latencyMs,
      throughputGBps: bytes / (latencyMs / 1000) / 1e9,
      simdEnabled: true,
      threads: this.#runtime.threads,
      variant: this.#runtime.variant,
      runs: times.length,
      firstCallMs,
      flopsPerCall: flops,
    };
  }

  getMemoryUsage() {
    const module = this.#live('getMemoryUsage');
    return { heapUsed: module.heapUsed(), heapTotal: module.heapU8().byteLength, paramCount: 0 };
  }

  dispose() {
    this.#disposed = true;
  }

  get disposed() {
    return this.#disposed;
  }
}
