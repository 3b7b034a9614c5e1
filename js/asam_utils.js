// The ASAM seed's utilities (asam.utils): the sparsity of a mask, a timing harness, and
// attention computed in chunks of queries so that the WebAssembly heap holds one chunk at a time.
import { rangeError, typeError } from './errors.js';
import { WasmFlashAttention } from './flash_attention.js';
import { checkMask } from './mask_layout.js';
import { runtimeOption } from './runtime.js';
import {
  boolean, finiteNumber, float32Array, nonNegativeInt, optionsObject, positiveInt, rowCount,
} from './validate.js';

const MIB = 1024 * 1024;

// The fraction of (query, key) pairs a mask blocks: 0 = dense, 1 = nothing attends.
// Boolean masks block where they hold 0; additive masks where they hold -Infinity (a finite
// value, however negative, is a bias and still attends, as in the kernels).
export function computeAttentionSparsity(mask) {
  const where = 'computeAttentionSparsity';
  const isBoolean = checkMask(where, mask) === 2;
  if (mask.length === 0) throw rangeError(where, 'mask', 'is empty: expected at least one (query, key) pair');
  let blocked = 0;
  if (isBoolean) {
    for (let i = 0; i < mask.length; ++i) if (mask[i] === 0) ++blocked;
  } else {
    for (let i = 0; i < mask.length; ++i) if (mask[i] === -Infinity) ++blocked;
  }
  return blocked / mask.length;
}

// Calls attnFn(q, k, v) numWarmup times untimed, then numRuns times timed one by one.
// peakMemoryMb is the size of the runtime's WebAssembly memory once the runs are done, in
// MiB: that memory only grows, so it bounds what attnFn's WASM calls held at once from above
// (and includes whatever earlier work grew it to; JS-side arrays are not counted).
// flops is the caller's count, or null: attnFn is opaque, so nothing is derived from it.
export function measureAttentionEfficiency(attnFn, q, k, v, options) {
  const where = 'measureAttentionEfficiency';
  if (typeof attnFn !== 'function') throw typeError(where, 'attnFn', 'expected a function (q, k, v) => output');
  const opts = optionsObject(where, options);
  const numWarmup = nonNegativeInt(where, 'numWarmup', opts.numWarmup, 3);
  const numRuns = positiveInt(where, 'numRuns', opts.numRuns, 10);
  const flops = opts.flops === null ? null : finiteNumber(where, 'flops', opts.flops, null, { min: 0 });
  const runtime = runtimeOption(where, opts.runtime);
  const call = () => {
    const result = attnFn(q, k, v);
    if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
      throw typeError(where, 'attnFn', 'returned a Promise: only synchronous functions can be timed call by call');
    }
  };
  for (let i = 0; i < numWarmup; ++i) call();
  let totalMs = 0;
  for (let i = 0; i < numRuns; ++i) {
    const t0 = performance.now();
    call();
    totalMs += performance.now() - t0;
  }
  return {
    avgTimeMs: totalMs / numRuns,
    peakMemoryMb: runtime.module.heapU8().byteLength / MIB,
    flops,
  };
}

// Rows [start, end) of each [seqQ][seqK] block of the mask, keys [0, keys) only. A subarray
// (no copy) when that is contiguous.
function maskRows(mask, blocks, seqQ, seqK, start, end, keys) {
  if (blocks === 1 && keys === seqK) return mask.subarray(start * seqK, end * seqK);
  const rows = end - start;
  const part = new mask.constructor(blocks * rows * keys);
  for (let b = 0; b < blocks; ++b) {
    for (let i = start; i < end; ++i) {
      const from = (b * seqQ + i) * seqK;
      part.set(mask.subarray(from, from + keys), (b * rows + i - start) * keys);
    }
  }
  return part;
}

// softmax(scale · Q Kᵀ + mask) V computed chunkSize query rows at a time through one
// WasmFlashAttention, so the heap holds K, V and one chunk of Q, mask and output at once.
// Causal is top-left (query i sees keys j <= i): a chunk of rows [s, e) then reads only keys
// [0, e), with the kernel's bottom-right rule, which puts the frontier at the same place.
export function memoryEfficientAttention(Q, K, V, options) {
  const where = 'memoryEfficientAttention';
  const q = float32Array(where, 'Q', Q);
  const k = float32Array(where, 'K', K);
  const v = float32Array(where, 'V', V);
  if (options === undefined) throw typeError(where, 'options', 'is required: { heads, headDim, ... }');
  const opts = optionsObject(where, options);
  for (const name of ['heads', 'headDim']) {
    if (opts[name] === undefined) throw typeError(where, name, 'is required (a positive integer)');
  }
  const heads = positiveInt(where, 'heads', opts.heads);
  const headDim = positiveInt(where, 'headDim', opts.headDim);
  const chunkSize = positiveInt(where, 'chunkSize', opts.chunkSize, 1024);
  const causal = boolean(where, 'causal', opts.causal, false);
  const scale = finiteNumber(where, 'scale', opts.scale, 1 / Math.sqrt(headDim));
  const runtime = runtimeOption(where, opts.runtime);
  const rowQ = heads * headDim;
  const seqQ = rowCount(where, 'Q', q, rowQ, 'heads * headDim');
  if (opts.seqLen !== undefined && positiveInt(where, 'seqLen', opts.seqLen) !== seqQ) {
    throw rangeError(where, 'seqLen', `is ${opts.seqLen} but Q holds ${seqQ} rows of heads * headDim = ${rowQ}`);
  }
  const seqK = rowCount(where, 'K', k, rowQ, 'heads * headDim');
  const valueDim = rowCount(where, 'V', v, seqK * heads, `seqK * heads = ${seqK} * ${heads}`);
  const mask = opts.mask ?? undefined;
  let maskBlocks = 0;
  if (mask !== undefined) {
    checkMask(where, mask);
    if (mask.length === seqQ * seqK) maskBlocks = 1;
    else if (mask.length === heads * seqQ * seqK) maskBlocks = heads;
    else {
      throw rangeError(where, 'mask', `length ${mask.length} fits neither [seqQ, seqK] = ${seqQ * seqK} ` +
        `nor [heads, seqQ, seqK] = ${heads * seqQ * seqK}`);
    }
  }

  const rowOut = heads * valueDim;
  const output = new Float32Array(seqQ * rowOut);
  const flash = new WasmFlashAttention({ heads, dim: headDim, scale, runtime });
  try {
    for (let start = 0, end; start < seqQ; start = end) {
      end = Math.min(start + chunkSize, seqQ);
      // Causal rows before seqK see a prefix of the keys; rows from seqK on see them all.
      const prefix = causal && start < seqK;
      if (prefix) end = Math.min(end, seqK);
      const keys = prefix ? end : seqK;
      const { output: part } = flash.forwardExtended({
        q: q.subarray(start * rowQ, end * rowQ),
        k: keys === seqK ? k : k.subarray(0, keys * rowQ),
        v: keys === seqK ? v : v.subarray(0, keys * rowOut),
        valueDim,
        causal: prefix ? 'bottom-right' : 'none',
        mask: mask && maskRows(mask, maskBlocks, seqQ, seqK, start, end, keys),
        maskLayout: maskBlocks === heads && heads > 1 ? 'hqk' : 'qk',
      });
      output.set(part, start * rowOut);
    }
  } finally {
    flash.dispose();
  }
  return output;
}
