// WasmAdaptiveRankAttention: the seed's AdaptiveRankAttention on the core's
// src/adaattn/adaptive_rank_attention.h. Each (batch element, head) runs dense (flash) or low
// rank (Nyström landmarks, O(n·r·d)), decided per call from a sample of its scores by
// rankEstimationMethod against adaptiveThreshold; getRankStatistics() reports every decision
// with the measured estimate. lowRankAttention() is the bare Nyström kernel.
import { raiseStatus, rangeError, typeError } from './errors.js';
import { withHeap } from './heap.js';
import { construct, disposedError, release } from './handle.js';
import { MASK_LAYOUTS, checkMask, maskStrides } from './mask_layout.js';
import { runtimeOption } from './runtime.js';
import { loadNamed } from './weights.js';
import {
  boolean, finiteNumber, float32Array, oneOf, optionsObject, outputArray, positiveInt, rowCount,
  seedValue,
} from './validate.js';

const WHERE = 'WasmAdaptiveRankAttention';
const METHODS = ['entropy', 'power', 'random'];

// "name:count,..." -> { name: count }.
function parseSizes(text) {
  return Object.fromEntries(text.split(',').map((entry) => {
    const at = entry.lastIndexOf(':');
    return [entry.slice(0, at), Number(entry.slice(at + 1))];
  }));
}

export class WasmAdaptiveRankAttention {
  #runtime;
  #config;
  #handle;

  // options: { embedDim, numHeads = 8, rankRatio = 0.5, rankEstimationMethod = 'entropy',
  //            adaptiveThreshold = 0.95, maxSampledError = 0.05, seed = 0, runtime }
  constructor(options) {
    const opts = optionsObject(WHERE, options);
    if (opts.embedDim === undefined) throw typeError(WHERE, 'embedDim', 'is required (the model width)');
    const embedDim = positiveInt(WHERE, 'embedDim', opts.embedDim);
    const numHeads = positiveInt(WHERE, 'numHeads', opts.numHeads, 8);
    if (embedDim % numHeads !== 0) {
      throw rangeError(WHERE, 'numHeads', `must divide embedDim (${embedDim}), got ${numHeads}`);
    }
    const rankRatio = finiteNumber(WHERE, 'rankRatio', opts.rankRatio, 0.5);
    if (!(rankRatio > 0)) throw rangeError(WHERE, 'rankRatio', `must be > 0 (landmarks = round(rankRatio * headDim)), got ${rankRatio}`);
    this.#config = Object.freeze({
      embedDim,
      numHeads,
      headDim: embedDim / numHeads,
      rankRatio,
      rankEstimationMethod: oneOf(WHERE, 'rankEstimationMethod', opts.rankEstimationMethod, METHODS, 'entropy'),
      adaptiveThreshold: finiteNumber(WHERE, 'adaptiveThreshold', opts.adaptiveThreshold, 0.95, { min: 0, max: 1 }),
      // A low-rank head's output is checked on a few rows against exact attention; a larger
      // relative error sends the head back to dense.
      maxSampledError: finiteNumber(WHERE, 'maxSampledError', opts.maxSampledError, 0.05, { min: 0 }),
      seed: seedValue(WHERE, opts.seed, 0),
    });
    this.#runtime = runtimeOption(WHERE, opts.runtime);
    const { headDim, ...init } = this.#config;
    raiseStatus(this.#runtime.module.validateAdaptiveRank(init), WHERE);
    this.#handle = construct(this, this.#runtime.module, 'AdaptiveRankHandle', init, WHERE);
  }

  get config() { return this.#config; }
  // Landmarks a low-rank head uses: max(1, round(rankRatio * headDim)), at most the sequence.
  get rank() {
    this.#live('rank');
    return this.#handle.rank();
  }

  #live(method) {
    if (this.#handle === null) throw disposedError(WHERE, method);
    return this.#runtime.module;
  }

  // One call of the handle's forward or attend on rows of `width` floats per token.
  #run(method, width, query, key, value, options) {
    const where = `${WHERE}.${method}`;
    const module = this.#live(method);
    const opts = optionsObject(where, options);
    const names = method === 'forward' ? ['query', 'key', 'value'] : ['q', 'k', 'v'];
    const q = float32Array(where, names[0], query);
    const k = float32Array(where, names[1], key);
    const v = float32Array(where, names[2], value);
    const batch = positiveInt(where, 'batch', opts.batch, 1);
    const what = method === 'forward' ? 'batch * embedDim' : 'batch * numHeads * headDim';
    const seqQ = rowCount(where, names[0], q, batch * width, what);
    const seqK = rowCount(where, names[1], k, batch * width, what);
    if (v.length !== k.length) throw rangeError(where, names[2], `length ${v.length} should equal ${names[1]}'s (${k.length})`);
    const causal = boolean(where, 'causal', opts.causal, false);
    const out = outputArray(where, 'out', opts.out, q.length, `${names[0]}.length`);
    const call = { batch, seqQ, seqK, maskKind: 0, maskBatchStride: 0, causal: causal ? 1 : 0, q: 0, k: 0, v: 0, out: 0, mask: 0 };
    const mask = opts.mask ?? undefined;
    // Checked with or without a mask: a misspelt layout is a mistake either way.
    if (opts.maskLayout !== undefined) oneOf(where, 'maskLayout', opts.maskLayout, MASK_LAYOUTS);
    if (mask !== undefined) {
      call.maskKind = checkMask(where, mask);
      const { headStride, batchStride } = maskStrides(where, mask, opts.maskLayout, batch, 1, seqQ, seqK);
      if (headStride) throw rangeError(where, 'maskLayout', 'per-head masks are not supported: give [seqQ, seqK] or [batch, seqQ, seqK]');
      call.maskBatchStride = batchStride;
    }
    return withHeap(module, where, (heap) => {
      call.q = heap.copyIn(q, 'Q');
      call.k = heap.copyIn(k, 'K');
      call.v = heap.copyIn(v, 'V');
      if (call.maskKind) call.mask = heap.copyIn(mask, 'mask');
      call.out = heap.alloc(q.byteLength, 'the output');
      raiseStatus(method === 'forward' ? this.#handle.forward(call) : this.#handle.attend(call), where);
      return heap.readF32(call.out, q.length, out);
    });
  }

  // The layer: query [batch][seqQ][embedDim], key and value [batch][seqK][embedDim] ->
  // [batch][seqQ][embedDim] (projections, per-head attention, output projection).
  // options: { batch = 1, causal = false, mask ([seqQ][seqK] or [batch][seqQ][seqK]), maskLayout, out }.
  // A causal rule or a mask makes every head dense (recorded in the statistics).
  forward(query, key, value, options) {
    return this.#run('forward', this.#config.embedDim, query, key, value, options);
  }

  // The attention alone on projected Q [batch][seqQ][numHeads][headDim], K and V
  // [batch][seqK][numHeads][headDim] (the layout of WasmFlashAttention): the same per-head
  // decisions and statistics as forward().
  attention(Q, K, V, options) {
    return this.#run('attention', this.#config.numHeads * this.#config.headDim, Q, K, V, options);
  }

  // What the calls decided, all measured: the last call's decision per (batch, head) and
  // the totals per head since construction or resetRankStatistics().
  getRankStatistics() {
    this.#live('getRankStatistics');
    const raw = this.#handle.statistics();
    return {
      method: this.#config.rankEstimationMethod,
      threshold: this.#config.adaptiveThreshold,
      rank: this.#handle.rank(),
      calls: raw.calls,
      lastCall: {
        seqQ: raw.seqQ,
        seqK: raw.seqK,
        heads: raw.lastCall.map((d) => ({
          batch: d.batch, head: d.head, decision: d.lowRank ? 'lowRank' : 'dense', rank: d.lowRank ? d.rank : null,
          estimate: d.estimate, sampledError: d.sampledError, reason: d.reason,
        })),
      },
      perHead: raw.perHead.map((h) => ({
        head: h.head, lowRank: h.lowRank, dense: h.dense, rejected: h.rejected, estimated: h.estimated,
        meanEstimate: h.meanEstimate, minEstimate: h.minEstimate, maxEstimate: h.maxEstimate,
      })),
    };
  }

  resetRankStatistics() {
    this.#live('resetRankStatistics');
    this.#handle.resetStatistics();
  }

  // { name: number of floats } of each weight (q_proj.weight, q_proj.bias, ..., out_proj.bias).
  parameterSizes() {
    this.#live('parameterSizes');
    return parseSizes(this.#handle.parameterSizes());
  }

  // Every named Float32Array of parameterSizes(), PyTorch's [out][in] layout; on any error
  // the old weights stay.
  loadWeights(weights) {
    const where = `${WHERE}.loadWeights`;
    const module = this.#live('loadWeights');
    return loadNamed(where, module, this.#handle, weights, Object.keys(this.parameterSizes()), 'AdaptiveRankAttention',
      () => this.#handle.commitNamed());
  }

  // The weights as named Float32Arrays (copies).
  getWeights() {
    const where = `${WHERE}.getWeights`;
    const module = this.#live('getWeights');
    const sizes = this.parameterSizes();
    return withHeap(module, where, (heap) => Object.fromEntries(Object.entries(sizes).map(([name, count]) => {
      const ptr = heap.alloc(count * 4, name);
      raiseStatus(this.#handle.readWeight(name, ptr), where);
      return [name, heap.readF32(ptr, count)];
    })));
  }

  dispose() {
    this.#handle = release(this, this.#handle);
  }

  get disposed() {
    return this.#handle === null;
  }
}

// The bare Nyström kernel: Q [batch][seqQ][heads][headDim], K [batch][seqK][headsKv][headDim],
// V [batch][seqK][headsKv][valueDim] -> [batch][seqQ][heads][valueDim] ≈ softmax(scale·QKᵀ)V
// with `landmarks` segment-mean landmarks (at most the sequence lengths). No mask, no causal
// rule: this is the low-rank path alone, whatever the inputs.
// options: { heads, headDim, headsKv = heads, valueDim = headDim, landmarks, batch = 1, scale, out, runtime }
export function lowRankAttention(Q, K, V, options) {
  const where = 'lowRankAttention';
  const opts = optionsObject(where, options);
  const runtime = runtimeOption(where, opts.runtime);
  const q = float32Array(where, 'Q', Q);
  const k = float32Array(where, 'K', K);
  const v = float32Array(where, 'V', V);
  if (opts.headDim === undefined) throw typeError(where, 'headDim', 'is required');
  if (opts.landmarks === undefined) throw typeError(where, 'landmarks', 'is required (the rank of the approximation)');
  const heads = positiveInt(where, 'heads', opts.heads, 8);
  const headDim = positiveInt(where, 'headDim', opts.headDim);
  const headsKv = positiveInt(where, 'headsKv', opts.headsKv, heads);
  if (heads % headsKv !== 0) throw rangeError(where, 'headsKv', `must divide heads (${heads}), got ${headsKv}`);
  const valueDim = positiveInt(where, 'valueDim', opts.valueDim, headDim);
  const landmarks = positiveInt(where, 'landmarks', opts.landmarks);
  const batch = positiveInt(where, 'batch', opts.batch, 1);
  const scale = finiteNumber(where, 'scale', opts.scale, 0);
  if (opts.scale !== undefined && !(scale > 0)) throw rangeError(where, 'scale', `must be > 0, got ${scale}`);
  const seqQ = rowCount(where, 'Q', q, batch * heads * headDim, 'batch * heads * headDim');
  const seqK = rowCount(where, 'K', k, batch * headsKv * headDim, 'batch * headsKv * headDim');
  if (v.length !== batch * seqK * headsKv * valueDim) {
    throw rangeError(where, 'V', `length ${v.length} should be batch * seqK * headsKv * valueDim = ${batch * seqK * headsKv * valueDim}`);
  }
  const length = batch * seqQ * heads * valueDim;
  const out = outputArray(where, 'out', opts.out, length, 'batch * seqQ * heads * valueDim');
  const module = runtime.module;
  return withHeap(module, where, (heap) => {
    const call = {
      batch, seqQ, seqK, headsQ: heads, headsKv, headDim, valueDim, landmarks, scale,
      q: heap.copyIn(q, 'Q'), k: heap.copyIn(k, 'K'), v: heap.copyIn(v, 'V'), out: heap.alloc(length * 4, 'the output'),
    };
    raiseStatus(module.lowRankAttention(call), where);
    return heap.readF32(call.out, length, out);
  });
}
