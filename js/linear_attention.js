// WasmLinearAttention: the seed-003 class on the core's linear attention
// (src/linear/linear_attention.h). Tensors are [seqLen][heads][dim] Float32Arrays, with a
// leading batch dimension in forwardExtended; V may have its own width (valueDim).
import { raiseStatus, rangeError, typeError } from './errors.js';
import { withHeap } from './heap.js';
import { runtimeOption } from './runtime.js';
import {
  boolean, finiteNumber, float32Array, oneOf, optionsObject, outputArray, positiveInt, rowCount,
} from './validate.js';

const WHERE = 'WasmLinearAttention';
const FEATURE_MAPS = ['elu', 'relu', 'dpfp'];

export class WasmLinearAttention {
  #runtime;
  #config;
  #disposed = false;

  constructor(options) {
    const opts = optionsObject(WHERE, options);
    if (opts.dim === undefined) throw typeError(WHERE, 'dim', 'is required (the per-head dimension)');
    this.#config = Object.freeze({
      dim: positiveInt(WHERE, 'dim', opts.dim),
      heads: positiveInt(WHERE, 'heads', opts.heads, 8),
      featureMap: oneOf(WHERE, 'featureMap', opts.featureMap, FEATURE_MAPS, 'elu'),
      eps: finiteNumber(WHERE, 'eps', opts.eps, 1e-6, { min: 0 }),
      causal: boolean(WHERE, 'causal', opts.causal, false),
    });
    this.#runtime = runtimeOption(WHERE, opts.runtime);
  }

  get dim() { return this.#config.dim; }
  get heads() { return this.#config.heads; }
  get featureMap() { return this.#config.featureMap; }
  get eps() { return this.#config.eps; }
  get causal() { return this.#config.causal; }

  #live(method) {
    if (this.#disposed) throw new Error(`${WHERE}.${method}: this object was disposed; create a new one`);
    return this.#runtime.module;
  }

  #run(where, inputs) {
    const module = this.#live(where.split('.')[1]);
    const q = float32Array(where, 'Q', inputs.q);
    const k = float32Array(where, 'K', inputs.k);
    const v = float32Array(where, 'V', inputs.v);
    const batch = positiveInt(where, 'batch', inputs.batch, 1);
    const { heads, dim } = this.#config;
    const seqQ = rowCount(where, 'Q', q, batch * heads * dim, 'batch * heads * dim');
    const seqK = rowCount(where, 'K', k, batch * heads * dim, 'batch * heads * dim');
    const valueDim = rowCount(where, 'V', v, batch * seqK * heads, 'batch * seqK * heads');
    const causal = boolean(where, 'causal', inputs.causal, this.causal);
    if (causal && seqQ !== seqK) {
      throw rangeError(where, 'causal', `needs as many queries as keys, got ${seqQ} and ${seqK}`);
    }
    const outLength = batch * seqQ * heads * valueDim;
    const out = outputArray(where, 'out', inputs.out, outLength,
      `batch * seqQ * heads * valueDim = ${batch} * ${seqQ} * ${heads} * ${valueDim}`);
    const call = {
      batch, seqQ, seqK, heads, headDim: dim, valueDim,
      featureMap: FEATURE_MAPS.indexOf(this.featureMap), causal, eps: this.eps,
      q: 0, k: 0, v: 0, out: 0,
    };
    return withHeap(module, where, (heap) => {
      call.q = heap.copyIn(q, 'Q');
      call.k = heap.copyIn(k, 'K');
      call.v = heap.copyIn(v, 'V');
      call.out = heap.alloc(outLength * 4, 'the output');
      raiseStatus(module.linearAttention(call), where);
      return heap.readF32(call.out, outLength, out);
    });
  }

  // Q [seqQ][heads][dim], K [seqK][heads][dim], V [seqK][heads][valueDim] ->
  // [seqQ][heads][valueDim]. Time and memory grow linearly with the sequence.
  // options.out: a Float32Array of that size to write the result into (and return),
  // sparing a new array per call.
  forward(Q, K, V, options) {
    const where = `${WHERE}.forward`;
    const { out } = optionsObject(where, options);
    return this.#run(where, { q: Q, k: K, v: V, out });
  }

  // { q, k, v, batch?, causal?, out? } with a leading batch dimension -> { output }.
  forwardExtended(inputs) {
    const where = `${WHERE}.forwardExtended`;
    if (inputs === null || typeof inputs !== 'object') {
      throw typeError(where, 'inputs', 'expected an object { q, k, v, ... }');
    }
    return { output: this.#run(where, inputs) };
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
