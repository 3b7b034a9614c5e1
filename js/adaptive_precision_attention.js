// WasmAdaptivePrecisionAttention: AdaAttn's AdaptivePrecisionAttention (seed 002) on the
// core's class (src/adaattn/adaptive_precision_attention.h): a multi-head layer whose keys
// and values are stored in fp32, fp16 or bf16 (float32 arithmetic). 'adaptive' decides per
// call from measured statistics: fp16's range against the largest |K| and |V|, and the
// relative error of sampled query rows attended with K and V rounded to bf16, then fp16,
// against the caller's tolerance. Every decision and its reason: lastDecision and
// getPrecisionStatistics(). forward() computes whole calls (and, with keepCache, fills the
// layer's KV cache: a decoder's prefill); step() appends new tokens and attends their queries
// over the cache, reading the stored halves (the fast decode of WasmKVCache).
import { raiseStatus, rangeError, typeError } from './errors.js';
import { withHeap } from './heap.js';
import { construct, disposedError, release } from './handle.js';
import { loadMultiHeadWeights, saveHandleWeights } from './weights.js';
import { runtimeOption } from './runtime.js';
import { layerMaskFields } from './mask_layout.js';
import { boolean, finiteNumber, float32Array, oneOf, optionsObject, outputArray, positiveInt, rowCount, seedValue } from './validate.js';

const WHERE = 'WasmAdaptivePrecisionAttention';
const PRECISIONS = ['fp32', 'fp16', 'bf16', 'adaptive'];
const CAUSAL = [false, true, 'top-left', 'bottom-right'];

export class WasmAdaptivePrecisionAttention {
  #runtime;
  #config;
  #handle;

  // options: { embedDim, numHeads = 8, defaultPrecision = 'adaptive', tolerance = 1e-2,
  // sampleRows = 16, causal = false, bias = true, seed = 0, runtime }
  constructor(options) {
    const opts = optionsObject(WHERE, options);
    if (opts.embedDim === undefined) throw typeError(WHERE, 'embedDim', 'is required (the model width)');
    const embedDim = positiveInt(WHERE, 'embedDim', opts.embedDim);
    const config = {
      embedDim,
      numHeads: positiveInt(WHERE, 'numHeads', opts.numHeads, 8),
      defaultPrecision: oneOf(WHERE, 'defaultPrecision', opts.defaultPrecision, PRECISIONS, 'adaptive'),
      tolerance: finiteNumber(WHERE, 'tolerance', opts.tolerance, 1e-2, { min: 0 }),
      sampleRows: positiveInt(WHERE, 'sampleRows', opts.sampleRows, 16),
      causal: boolean(WHERE, 'causal', opts.causal, false),
      bias: boolean(WHERE, 'bias', opts.bias, true),
      seed: seedValue(WHERE, opts.seed, 0),
    };
    if (embedDim % config.numHeads !== 0) {
      throw rangeError(WHERE, 'numHeads', `must divide embedDim (${embedDim}), got ${config.numHeads}`);
    }
    this.#config = Object.freeze(config);
    this.#runtime = runtimeOption(WHERE, opts.runtime);
    const module = this.#runtime.module;
    const init = {
      embedDim, numHeads: config.numHeads, bias: config.bias, policy: PRECISIONS.indexOf(config.defaultPrecision),
      tolerance: config.tolerance, sampleRows: config.sampleRows, seed: config.seed,
    };
    raiseStatus(module.validateAdaptivePrecision(init), WHERE);
    this.#handle = construct(this, module, 'AdaptivePrecisionHandle', init, WHERE);
  }

  get embedDim() { return this.#config.embedDim; }
  get numHeads() { return this.#config.numHeads; }
  get headDim() { return this.#config.embedDim / this.#config.numHeads; }
  get defaultPrecision() { return this.#config.defaultPrecision; }
  get tolerance() { return this.#config.tolerance; }
  get causal() { return this.#config.causal; }

  #live(method) {
    if (this.#handle === null) throw disposedError(WHERE, method);
    return this.#runtime.module;
  }

  // query [batch][seqQ][embedDim], key and value [batch][seqK][embedDim].
  // options: { batch = 1, causal (the constructor's by default; true = 'top-left',
  // 'bottom-right'), attentionMask, maskLayout (as WasmDenseAttention's), keepCache = false
  // (batch 1: the layer's cache is replaced by this call's K and V, as stored), out }.
  // Returns { output, precision, reason }: the storage this call used and why.
  forward(query, key, value, options) {
    const where = `${WHERE}.forward`;
    const module = this.#live('forward');
    const opts = optionsObject(where, options);
    const { embedDim, numHeads } = this.#config;
    float32Array(where, 'query', query);
    float32Array(where, 'key', key);
    float32Array(where, 'value', value);
    const batch = positiveInt(where, 'batch', opts.batch, 1);
    const seqQ = rowCount(where, 'query', query, batch * embedDim, 'batch * embedDim');
    const seqK = rowCount(where, 'key', key, batch * embedDim, 'batch * embedDim');
    if (value.length !== key.length) {
      throw rangeError(where, 'value', `length ${value.length} should equal key's, batch * seqK * embedDim = ${key.length}`);
    }
    const causal = CAUSAL.indexOf(oneOf(where, 'causal', opts.causal, CAUSAL, this.#config.causal));
    const keepCache = boolean(where, 'keepCache', opts.keepCache, false);
    if (keepCache && batch !== 1) throw rangeError(where, 'keepCache', `holds one sequence: needs batch 1, got ${batch}`);
    const outLength = batch * seqQ * embedDim;
    const out = outputArray(where, 'out', opts.out, outLength, 'batch * seqQ * embedDim');
    const mask = opts.attentionMask ?? null;
    const call = {
      batch, seqQ, seqK, causal: causal === 3 ? 2 : Math.min(causal, 1), keepCache,
      ...layerMaskFields(where, mask, opts.maskLayout, batch, numHeads, seqQ, seqK),
      query: 0, key: 0, value: 0, out: 0, mask: 0,
    };
    return withHeap(module, where, (heap) => {
      call.query = heap.copyIn(query, 'query');
      call.key = heap.copyIn(key, 'key');
      call.value = heap.copyIn(value, 'value');
      if (mask !== null) call.mask = heap.copyIn(mask, 'mask');
      call.out = heap.alloc(outLength * 4, 'the output');
      raiseStatus(this.#handle.forward(call), where);
      const { precision, reason } = this.lastDecision;
      return { output: heap.readF32(call.out, outLength, out), precision, reason };
    });
  }

  // Incremental decoding: `rows` new tokens, query/key/value [rows][embedDim]. Their keys and
  // values are appended to the cache; token t's query attends over the cache up to itself.
  // options: { out }. Returns { output, precision, reason }.
  step(query, key, value, options) {
    const where = `${WHERE}.step`;
    const module = this.#live('step');
    const opts = optionsObject(where, options);
    const { embedDim } = this.#config;
    float32Array(where, 'query', query);
    float32Array(where, 'key', key);
    float32Array(where, 'value', value);
    const rows = rowCount(where, 'query', query, embedDim, 'embedDim');
    for (const [name, x] of [['key', key], ['value', value]]) {
      if (x.length !== query.length) throw rangeError(where, name, `length ${x.length} should equal query's, rows * embedDim = ${query.length}`);
    }
    const out = outputArray(where, 'out', opts.out, query.length, 'rows * embedDim');
    return withHeap(module, where, (heap) => {
      const ptr = heap.alloc(query.length * 4, 'the output');
      raiseStatus(this.#handle.step(rows, heap.copyIn(query, 'query'), heap.copyIn(key, 'key'), heap.copyIn(value, 'value'), ptr), where);
      const { precision, reason } = this.lastDecision;
      return { output: heap.readF32(ptr, query.length, out), precision, reason };
    });
  }

  // The last call's decision: { precision, reason, incremental, maxAbsKey, maxAbsValue,
  // sampledErrorBf16, sampledErrorFp16 (null where not measured), sampledRows, overflowed,
  // convertedCache }, or null before any call.
  get lastDecision() {
    this.#live('lastDecision');
    return JSON.parse(this.#handle.lastDecision());
  }

  // { calls, fp32, fp16, bf16 (calls that used each), cacheConversions, recent: the last 32
  // decisions, oldest first }.
  getPrecisionStatistics() {
    this.#live('getPrecisionStatistics');
    return JSON.parse(this.#handle.statistics());
  }

  resetPrecisionStatistics() {
    this.#live('resetPrecisionStatistics');
    this.#handle.resetStatistics();
  }

  // Forgets the cached tokens (the next step() or keepCache forward starts a new sequence).
  resetCache() {
    this.#live('resetCache');
    this.#handle.resetCache();
  }

  get cacheLength() {
    this.#live('cacheLength');
    return this.#handle.cacheRows();
  }

  // 'fp32' | 'fp16' | 'bf16', or null without a cache.
  get cachePrecision() {
    this.#live('cachePrecision');
    return this.#handle.cachePrecision() || null;
  }

  // The weights in attnkit's versioned binary format (as WasmMultiHeadAttention's).
  saveWeights() {
    const module = this.#live('saveWeights');
    return saveHandleWeights(`${WHERE}.saveWeights`, module, this.#handle);
  }

  // A Uint8Array from saveWeights() (this class, WasmMultiHeadAttention or
  // WasmDenseAttention), or PyTorch nn.MultiheadAttention arrays by name.
  loadWeights(weights) {
    const where = `${WHERE}.loadWeights`;
    const module = this.#live('loadWeights');
    return loadMultiHeadWeights(where, module, this.#handle, weights);
  }

  // cacheBytes: the key/value storage the cache holds (capacity, at its precision's size).
  getMemoryUsage() {
    const module = this.#live('getMemoryUsage');
    return {
      heapUsed: module.heapUsed(), heapTotal: module.heapU8().byteLength,
      paramCount: this.#handle.paramCount(), cacheBytes: this.#handle.cacheBytes(),
    };
  }

  dispose() {
    this.#handle = release(this, this.#handle);
  }

  get disposed() {
    return this.#handle === null;
  }
}
