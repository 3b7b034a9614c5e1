// WasmKVCache: a key/value cache for incremental decoding on the core's KVCache
// (src/adaattn/kv_cache.h): append keys and values a few rows at a time, attend one or a
// few new queries over every cached key. Storage fp32, fp16 or bf16 (half the memory and
// half the bytes a decode step reads), arithmetic float32. Rows are [rows][heads][dim].
import { raiseStatus, rangeError, typeError } from './errors.js';
import { withHeap } from './heap.js';
import { construct, disposedError, release } from './handle.js';
import { runtimeOption } from './runtime.js';
import { boolean, finiteNumber, float32Array, nonNegativeInt, oneOf, optionsObject, outputArray, positiveInt, rowCount } from './validate.js';

const WHERE = 'WasmKVCache';
const PRECISIONS = ['fp32', 'fp16', 'bf16'];

export class WasmKVCache {
  #runtime;
  #config;
  #handle;

  // options: { heads, headDim, valueDim = headDim, precision = 'fp32', capacity = 0, runtime }
  constructor(options) {
    const opts = optionsObject(WHERE, options);
    if (opts.headDim === undefined) throw typeError(WHERE, 'headDim', 'is required (the per-head key width)');
    const headDim = positiveInt(WHERE, 'headDim', opts.headDim);
    this.#config = Object.freeze({
      heads: positiveInt(WHERE, 'heads', opts.heads, 8),
      headDim,
      valueDim: positiveInt(WHERE, 'valueDim', opts.valueDim, headDim),
      precision: oneOf(WHERE, 'precision', opts.precision, PRECISIONS, 'fp32'),
      capacity: nonNegativeInt(WHERE, 'capacity', opts.capacity, 0),
    });
    this.#runtime = runtimeOption(WHERE, opts.runtime);
    const init = { ...this.#config, precision: PRECISIONS.indexOf(this.#config.precision) };
    raiseStatus(this.#runtime.module.validateKVCache(init), WHERE);
    this.#handle = construct(this, this.#runtime.module, 'KVCacheHandle', init, WHERE);
  }

  get heads() { return this.#config.heads; }
  get headDim() { return this.#config.headDim; }
  get valueDim() { return this.#config.valueDim; }
  get precision() { return this.#config.precision; }
  // Rows cached.
  get length() {
    this.#live('length');
    return this.#handle.size();
  }

  #live(method) {
    if (this.#handle === null) throw disposedError(WHERE, method);
    return this.#runtime.module;
  }

  // K [rows][heads][headDim], V [rows][heads][valueDim]: rounded to the storage precision.
  append(K, V) {
    const where = `${WHERE}.append`;
    const module = this.#live('append');
    const k = float32Array(where, 'K', K);
    const v = float32Array(where, 'V', V);
    const { heads, headDim, valueDim } = this.#config;
    const rows = rowCount(where, 'K', k, heads * headDim, 'heads * headDim');
    if (v.length !== rows * heads * valueDim) {
      throw rangeError(where, 'V', `length ${v.length} should be rows * heads * valueDim = ${rows} * ${heads} * ${valueDim}`);
    }
    withHeap(module, where, (heap) => {
      raiseStatus(this.#handle.append(rows, heap.copyIn(k, 'K'), heap.copyIn(v, 'V')), where);
    });
  }

  // Q [queries][heads][headDim] -> [queries][heads][valueDim] over every cached key.
  // options: { scale (default 1/sqrt(headDim)), causal = false, out }. causal: the queries
  // belong to the last rows appended; query t sees keys up to row length - queries + t.
  attend(Q, options) {
    const where = `${WHERE}.attend`;
    const module = this.#live('attend');
    const opts = optionsObject(where, options);
    const q = float32Array(where, 'Q', Q);
    const { heads, headDim, valueDim } = this.#config;
    const queries = rowCount(where, 'Q', q, heads * headDim, 'heads * headDim');
    const scale = finiteNumber(where, 'scale', opts.scale, 1 / Math.sqrt(headDim));
    if (!(scale > 0)) throw rangeError(where, 'scale', `must be > 0, got ${scale}`);
    const causal = boolean(where, 'causal', opts.causal, false);
    if (causal && queries > this.#handle.size()) {
      throw rangeError(where, 'Q', `causal: ${queries} queries but only ${this.#handle.size()} cached rows`);
    }
    const length = queries * heads * valueDim;
    const out = outputArray(where, 'out', opts.out, length, `queries * heads * valueDim = ${queries} * ${heads} * ${valueDim}`);
    return withHeap(module, where, (heap) => {
      const ptr = heap.alloc(length * 4, 'the output');
      raiseStatus(this.#handle.attend(queries, heap.copyIn(q, 'Q'), ptr, scale, causal), where);
      return heap.readF32(ptr, length, out);
    });
  }

  // Forgets every row (keeps the allocation).
  clear() {
    this.#live('clear');
    this.#handle.clear();
  }

  getMemoryUsage() {
    const module = this.#live('getMemoryUsage');
    return { heapUsed: module.heapUsed(), heapTotal: module.heapU8().byteLength, cacheBytes: this.#handle.memoryBytes() };
  }

  dispose() {
    this.#handle = release(this, this.#handle);
  }

  get disposed() {
    return this.#handle === null;
  }
}
