// The masks the attention classes accept: an additive Float32Array (0 attends, -Infinity
// blocks, finite values bias the score) or a boolean Uint8Array (1 attends), laid out
// [q,k], [batch,q,k], [heads,q,k] or [batch,heads,q,k] and broadcast over the rest.
import { rangeError, typeError } from './errors.js';
import { oneOf } from './validate.js';

export const MASK_LAYOUTS = ['qk', 'bqk', 'hqk', 'bhqk'];

// Strides of a [q,k], [batch,q,k], [heads,q,k] or [batch,heads,q,k] mask, from its
// length (or from an explicit layout when batch == heads makes the length ambiguous).
export function maskStrides(where, mask, layout, batch, heads, seqQ, seqK) {
  const qk = seqQ * seqK;
  const lengths = { qk, bqk: batch * qk, hqk: heads * qk, bhqk: batch * heads * qk };
  if (layout === undefined) {
    const matches = MASK_LAYOUTS.filter((l) => lengths[l] === mask.length);
    if (matches.length === 0) {
      throw rangeError(where, 'mask', `length ${mask.length} fits none of [seqQ, seqK] = ${qk}, ` +
        `[batch, seqQ, seqK] = ${lengths.bqk}, [heads, seqQ, seqK] = ${lengths.hqk}, ` +
        `[batch, heads, seqQ, seqK] = ${lengths.bhqk}`);
    }
    // Layouts of equal length address the same elements, except [batch,q,k] and
    // [heads,q,k] when batch == heads > 1: then the caller must say which.
    if (matches.includes('bqk') && matches.includes('hqk') && batch > 1) {
      throw rangeError(where, 'maskLayout',
        `a mask of length ${mask.length} is ambiguous when batch == heads: pass maskLayout "bqk" or "hqk"`);
    }
    layout = matches[0];
  } else {
    oneOf(where, 'maskLayout', layout, MASK_LAYOUTS);
    if (mask.length !== lengths[layout]) {
      throw rangeError(where, 'mask', `length ${mask.length} does not match maskLayout "${layout}" (${lengths[layout]})`);
    }
  }
  const batchStride = layout === 'bqk' ? qk : layout === 'bhqk' ? heads * qk : 0;
  const headStride = layout === 'hqk' || layout === 'bhqk' ? qk : 0;
  return { batchStride, headStride };
}

export function checkMask(where, mask) {
  if (mask instanceof Float32Array) return 1;
  if (mask instanceof Uint8Array) return 2;
  throw typeError(where, 'mask',
    'expected a Float32Array (additive: 0 attends, -Infinity blocks) or a Uint8Array (1 attends, 0 blocks)');
}

// The masks of the AdaAttn layers (attentionMask): as above plus 'bk', a key-padding mask [batch][seqK]; the others are [seqQ][seqK] blocks per batch
// element and/or head, broadcast over the rest.
export const LAYER_MASK_LAYOUTS = ['bk', 'qk', 'bqk', 'hqk', 'bhqk'];

export function layerMaskKind(where, mask) {
  if (mask instanceof Float32Array) return 1;
  if (mask instanceof Uint8Array) return 2;
  throw typeError(where, 'attentionMask',
    'expected a Uint8Array (1 attends, 0 blocks) or a Float32Array (additive: 0 attends, -Infinity blocks)');
}

// The strides of an attentionMask, from its maskLayout or, without one, from its length.
export function layerMaskGeometry(where, mask, layout, batch, heads, seqQ, seqK) {
  const qk = seqQ * seqK;
  const geometry = {
    // Row stride 0: every query of a batch element reads the same row.
    bk: { length: batch * seqK, batchStride: seqK, headStride: 0, rowStride: 0, shape: '[batch, seqK]' },
    qk: { length: qk, batchStride: 0, headStride: 0, rowStride: seqK, shape: '[seqQ, seqK]' },
    bqk: { length: batch * qk, batchStride: qk, headStride: 0, rowStride: seqK, shape: '[batch, seqQ, seqK]' },
    hqk: { length: heads * qk, batchStride: 0, headStride: qk, rowStride: seqK, shape: '[numHeads, seqQ, seqK]' },
    bhqk: { length: batch * heads * qk, batchStride: heads * qk, headStride: qk, rowStride: seqK,
      shape: '[batch, numHeads, seqQ, seqK]' },
  };
  if (layout !== undefined) {
    const g = geometry[oneOf(where, 'maskLayout', layout, LAYER_MASK_LAYOUTS)];
    if (mask.length !== g.length) {
      throw rangeError(where, 'attentionMask', `length ${mask.length} does not match maskLayout "${layout}" ${g.shape} = ${g.length}`);
    }
    return g;
  }
  const matches = LAYER_MASK_LAYOUTS.filter((l) => geometry[l].length === mask.length);
  if (matches.length === 0) {
    const fits = LAYER_MASK_LAYOUTS.map((l) => `${geometry[l].shape} = ${geometry[l].length}`).join(', ');
    throw rangeError(where, 'attentionMask', `length ${mask.length} fits none of ${fits}`);
  }
  // Layouts of one length that address the same element for every (batch, head, query,
  // key) are the same mask (strides over a dimension of size 1 do not matter); when they
  // differ, as [batch, seqK] and [seqQ, seqK] do when batch == seqQ, the caller must say.
  const addressing = (g) => [batch > 1 ? g.batchStride : 0, heads > 1 ? g.headStride : 0, seqQ > 1 ? g.rowStride : 0].join();
  if (new Set(matches.map((l) => addressing(geometry[l]))).size > 1) {
    throw rangeError(where, 'maskLayout', `a mask of length ${mask.length} is ambiguous here (it fits ` +
      `${matches.map((l) => `"${l}" ${geometry[l].shape}`).join(', ')}): pass maskLayout`);
  }
  return geometry[matches[0]];
}

// The mask fields of a layer call ({ maskKind: 0 none / 1 additive / 2 boolean, and the
// strides }) for an attentionMask (or null) and its optional maskLayout.
export function layerMaskFields(where, mask, layout, batch, heads, seqQ, seqK) {
  if (mask === null) {
    if (layout !== undefined) oneOf(where, 'maskLayout', layout, LAYER_MASK_LAYOUTS);
    return { maskKind: 0, maskBatchStride: 0, maskHeadStride: 0, maskRowStride: seqK };
  }
  const maskKind = layerMaskKind(where, mask);
  const g = layerMaskGeometry(where, mask, layout, batch, heads, seqQ, seqK);
  return { maskKind, maskBatchStride: g.batchStride, maskHeadStride: g.headStride, maskRowStride: g.rowStride };
}
