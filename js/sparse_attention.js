// WasmSparseAttention: ASAM's block-sparse self-attention (src/asam/sparse_attention.h).
// Tensors are [batch][seq][heads][dim] Float32Arrays; V may have its own width. The kernel
// visits only the key blocks the pattern selects, and lastStats reports what it computed.
import { raiseStatus, rangeError, typeError } from './errors.js';
import { MAX_ALLOCATION, withHeap } from './heap.js';
import { runtimeOption } from './runtime.js';
import {
  finiteNumber, float32Array, oneOf, optionsObject, outputArray, positiveInt, rowCount, seedValue,
} from './validate.js';

const WHERE = 'WasmSparseAttention';
// Indexed as the core's asam::PatternType.
const PATTERNS = ['local', 'strided', 'random', 'clustered', 'hierarchical'];
const MAX_BLOCK = 1024;

function blockSizeValue(value) {
  const blockSize = positiveInt(WHERE, 'blockSize', value, 64);
  if (blockSize % 32 !== 0 || blockSize > MAX_BLOCK) {
    throw rangeError(WHERE, 'blockSize', `expected a multiple of 32 in [32, ${MAX_BLOCK}], got ${blockSize}`);
  }
  return blockSize;
}

// Dilations of the hierarchical pattern: increasing integers > 1, each a multiple of the one before.
function scalesValue(value) {
  if (value === undefined) return [4, 16, 64];
  if (!Array.isArray(value)) throw typeError(WHERE, 'scales', 'expected an Array of positive integers');
  let previous = 1;
  return value.map((s, i) => {
    positiveInt(WHERE, 'scales', s);
    if (s <= previous || s % previous !== 0) {
      throw rangeError(WHERE, 'scales',
        `must increase, each a multiple of the one before (and > 1): scales[${i}] = ${s} after ${previous}`);
    }
    previous = s;
    return s;
  });
}

export class WasmSparseAttention {
  #runtime;
  #config;
  #lastStats = null;
  #disposed = false;

  constructor(options) {
    const opts = optionsObject(WHERE, options);
    if (opts.headDim === undefined) throw typeError(WHERE, 'headDim', 'is required (the width of each head of Q and K)');
    const headDim = positiveInt(WHERE, 'headDim', opts.headDim);
    this.#config = Object.freeze({
      heads: positiveInt(WHERE, 'heads', opts.heads, 8),
      headDim,
      pattern: oneOf(WHERE, 'pattern', opts.pattern, PATTERNS, 'hierarchical'),
      windowSize: positiveInt(WHERE, 'windowSize', opts.windowSize, 128),
      stride: positiveInt(WHERE, 'stride', opts.stride, 32),
      blockSize: blockSizeValue(opts.blockSize),
      scales: Object.freeze(scalesValue(opts.scales)),
      seed: seedValue(WHERE, opts.seed, 0),
      numClusters: positiveInt(WHERE, 'numClusters', opts.numClusters, 32),
      scale: finiteNumber(WHERE, 'scale', opts.scale, 1 / Math.sqrt(headDim)),
    });
    this.#runtime = runtimeOption(WHERE, opts.runtime);
  }

  get heads() { return this.#config.heads; }
  get headDim() { return this.#config.headDim; }
  get pattern() { return this.#config.pattern; }
  get windowSize() { return this.#config.windowSize; }
  get stride() { return this.#config.stride; }
  get blockSize() { return this.#config.blockSize; }
  get scales() { return this.#config.scales; }
  get seed() { return this.#config.seed; }
  get numClusters() { return this.#config.numClusters; }
  get scale() { return this.#config.scale; }

  // What the last successful forward computed, or null before the first one.
  get lastStats() { return this.#lastStats; }

  #live(method) {
    if (this.#disposed) throw new Error(`${WHERE}.${method}: this object was disposed; create a new one`);
    return this.#runtime.module;
  }

  // The clustered pattern's centroids, [heads][numClusters][headDim]; other patterns ignore them.
  #centroids(where, centroids) {
    if (this.pattern !== 'clustered') return undefined;
    const { heads, numClusters, headDim } = this.#config;
    const length = heads * numClusters * headDim;
    if (centroids === undefined || centroids === null) {
      throw typeError(where, 'centroids',
        `the clustered pattern needs centroids, a Float32Array [heads][numClusters][headDim] of ${length} floats`);
    }
    float32Array(where, 'centroids', centroids);
    if (centroids.length !== length) {
      throw rangeError(where, 'centroids', `length ${centroids.length} should be heads * numClusters * headDim = ` +
        `${heads} * ${numClusters} * ${headDim} = ${length}`);
    }
    return centroids;
  }

  #call(batch, seq, valueDim) {
    const c = this.#config;
    return {
      batch, seq, heads: c.heads, headDim: c.headDim, valueDim,
      pattern: PATTERNS.indexOf(c.pattern), windowSize: c.windowSize, stride: c.stride, blockSize: c.blockSize,
      numClusters: c.numClusters, scaleCount: c.scales.length, seed: c.seed, scale: c.scale,
      scales: 0, centroids: 0, q: 0, k: 0, v: 0, out: 0, stats: 0, mask: 0,
    };
  }

  // Q, K [batch][seq][heads][headDim], V [batch][seq][heads][valueDim] -> [batch][seq][heads][valueDim].
  // options: { batch = 1, centroids (clustered), out }.
  forward(Q, K, V, options) {
    const where = `${WHERE}.forward`;
    const module = this.#live('forward');
    const opts = optionsObject(where, options);
    const q = float32Array(where, 'Q', Q);
    const k = float32Array(where, 'K', K);
    const v = float32Array(where, 'V', V);
    const batch = positiveInt(where, 'batch', opts.batch, 1);
    const { heads, headDim } = this.#config;
    const seq = rowCount(where, 'Q', q, batch * heads * headDim, 'batch * heads * headDim');
    if (k.length !== q.length) {
      throw rangeError(where, 'K', `length ${k.length} should be batch * seq * heads * headDim = ` +
        `${batch} * ${seq} * ${heads} * ${headDim} = ${q.length} (self-attention: as long as Q)`);
    }
    const valueDim = rowCount(where, 'V', v, batch * seq * heads, 'batch * seq * heads');
    const centroids = this.#centroids(where, opts.centroids);
    const outLength = batch * seq * heads * valueDim;
    const out = outputArray(where, 'out', opts.out, outLength,
      `batch * seq * heads * valueDim = ${batch} * ${seq} * ${heads} * ${valueDim}`);
    const call = this.#call(batch, seq, valueDim);
    return withHeap(module, where, (heap) => {
      this.#copyPattern(heap, call, centroids);
      call.q = heap.copyIn(q, 'Q');
      call.k = heap.copyIn(k, 'K');
      call.v = heap.copyIn(v, 'V');
      call.out = heap.alloc(outLength * 4, 'the output');
      call.stats = heap.alloc(4 * 8, 'the statistics');
      raiseStatus(module.sparseAttention(call), where);
      const [visitedBlocks, denseBlocks, computedScores, denseScores] = heap.readF64(call.stats, 4);
      const result = heap.readF32(call.out, outLength, out);
      this.#lastStats = Object.freeze({
        sparseRatio: denseScores > 0 ? 1 - computedScores / denseScores : 0,
        visitedBlocks, denseBlocks, computedScores, denseScores,
      });
      return result;
    });
  }

  // The pattern's boolean mask [batch][heads][seqLen][seqLen] (1 = attends), O(seqLen²): for
  // inspection. options: { batch = 1, Q, K, centroids } (Q, K [batch][seqLen][heads][headDim]
  // and centroids are needed by the clustered pattern only).
  getPatternMask(seqLen, options) {
    const where = `${WHERE}.getPatternMask`;
    const module = this.#live('getPatternMask');
    const n = positiveInt(where, 'seqLen', seqLen);
    const opts = optionsObject(where, options);
    const batch = positiveInt(where, 'batch', opts.batch, 1);
    const { heads, headDim } = this.#config;
    const centroids = this.#centroids(where, opts.centroids);
    const tensors = {};
    if (centroids) {
      const length = batch * n * heads * headDim;
      for (const [name, value] of [['Q', opts.Q], ['K', opts.K]]) {
        if (value === undefined || value === null) {
          throw typeError(where, name, `the clustered pattern's mask needs ${name}, [batch][seqLen][heads][headDim]`);
        }
        float32Array(where, name, value);
        if (value.length !== length) {
          throw rangeError(where, name, `length ${value.length} should be batch * seqLen * heads * headDim = ` +
            `${batch} * ${n} * ${heads} * ${headDim} = ${length}`);
        }
        tensors[name] = value;
      }
    }
    const maskLength = batch * heads * n * n;
    if (maskLength > MAX_ALLOCATION) {
      throw rangeError(where, 'seqLen', `the mask [batch][heads][seqLen][seqLen] = [${batch}][${heads}][${n}][${n}] takes ` +
        `${maskLength} bytes; the WebAssembly heap holds at most 4 GiB`);
    }
    const call = this.#call(batch, n, headDim);
    return withHeap(module, where, (heap) => {
      this.#copyPattern(heap, call, centroids);
      if (centroids) {
        call.q = heap.copyIn(tensors.Q, 'Q');
        call.k = heap.copyIn(tensors.K, 'K');
      }
      call.mask = heap.alloc(maskLength, 'the pattern mask');
      raiseStatus(module.sparsePatternMask(call), where);
      return heap.readU8(call.mask, maskLength);
    });
  }

  // The pattern's parameters that live in the heap: the scales, and the clustered centroids.
  #copyPattern(heap, call, centroids) {
    call.scales = heap.copyIn(Int32Array.from(this.#config.scales), 'scales');
    if (centroids) call.centroids = heap.copyIn(centroids, 'centroids');
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
