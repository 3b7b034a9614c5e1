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
