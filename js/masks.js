// createMask: the seed's common additive masks, [seqLen][seqLen] Float32Arrays
// (0 attends, -Infinity blocks).
import { rangeError, typeError } from './errors.js';
import { MAX_ALLOCATION } from './heap.js';
import { oneOf, positiveInt } from './validate.js';

const WHERE = 'createMask';

function positionList(seqLen, positions, what) {
  if (!Array.isArray(positions) && !ArrayBuffer.isView(positions)) {
    throw typeError(WHERE, 'positions', `expected an array of ${what}`);
  }
  const list = Array.from(positions);
  for (const p of list) {
    if (typeof p !== 'number' || !Number.isInteger(p) || p < 0 || p >= seqLen) {
      throw rangeError(WHERE, 'positions', `expected integers in [0, ${seqLen}), got ${String(p)}`);
    }
  }
  return list;
}

export function createMask(type, seqLen, positions) {
  oneOf(WHERE, 'type', type, ['causal', 'padding', 'block']);
  positiveInt(WHERE, 'seqLen', seqLen);
  // A mask the WebAssembly heap could never take (nor, far sooner, a typed array).
  if (seqLen * seqLen * 4 > MAX_ALLOCATION) {
    throw rangeError(WHERE, 'seqLen', `a [${seqLen}][${seqLen}] mask takes ${seqLen * seqLen * 4} bytes; ` +
      'the WebAssembly heap holds at most 4 GiB');
  }
  const mask = new Float32Array(seqLen * seqLen);
  if (type === 'causal') {
    for (let i = 0; i < seqLen; ++i) mask.fill(-Infinity, i * seqLen + i + 1, (i + 1) * seqLen);
  } else if (type === 'padding') {
    // positions: the key positions that are padding; no query attends to them.
    const blocked = positionList(seqLen, positions ?? [], 'key positions to block');
    for (let i = 0; i < seqLen; ++i) {
      for (const j of blocked) mask[i * seqLen + j] = -Infinity;
    }
  } else {
    // positions: where each block after the first starts; tokens attend within their block.
    const starts = positionList(seqLen, positions ?? [], 'block start positions');
    for (let n = 1; n < starts.length; ++n) {
      if (starts[n] <= starts[n - 1]) throw rangeError(WHERE, 'positions', 'block starts must be strictly increasing');
    }
    const blockOf = new Int32Array(seqLen);
    for (let i = 0, b = 0; i < seqLen; ++i) {
      while (b < starts.length && starts[b] <= i) ++b;
      blockOf[i] = b;
    }
    for (let i = 0; i < seqLen; ++i) {
      for (let j = 0; j < seqLen; ++j) if (blockOf[i] !== blockOf[j]) mask[i * seqLen + j] = -Infinity;
    }
  }
  return mask;
}
