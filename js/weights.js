// Moving a model's weights between JS and a C++ handle: the versioned binary format
// (saveInto / load on the handle) and named Float32Arrays staged one by one, then committed
// together (so a bad set leaves the old weights in place).
import { raiseStatus, rangeError, typeError } from './errors.js';
import { withHeap } from './heap.js';
import { float32Array } from './validate.js';

// The bytes of saveInto(ptr, capacity) as a Uint8Array of `bytes` bytes.
export function saveBinary(where, module, bytes, saveInto) {
  return withHeap(module, where, (heap) => {
    const ptr = heap.alloc(bytes, 'the saved weights');
    raiseStatus(saveInto(ptr, bytes), where);
    return module.heapU8().slice(ptr, ptr + bytes);
  });
}

// A Uint8Array handed to load(ptr, length).
export function loadBinary(where, module, bytes, load) {
  return withHeap(module, where, (heap) => {
    raiseStatus(load(heap.copyIn(bytes, 'the weights'), bytes.length), where);
  });
}

// An object of named Float32Arrays, each name one of `names` (described as `owner` in the
// error), staged on the handle and then committed by commit().
export function loadNamed(where, module, handle, weights, names, owner, commit) {
  if (weights === null || typeof weights !== 'object' || Array.isArray(weights) || ArrayBuffer.isView(weights)) {
    throw typeError(where, 'weights', 'expected a Uint8Array from saveWeights() or an object of named Float32Arrays');
  }
  const entries = Object.entries(weights);
  for (const [name, array] of entries) {
    if (!names.includes(name)) {
      // An empty name is named as the C++ loaders name it, so the error says something.
      throw rangeError(where, name === '' ? '(empty name)' : name,
        `is not a weight of ${owner} (expected one of ${names.join(', ')})`);
    }
    float32Array(where, name, array);
  }
  return withHeap(module, where, (heap) => {
    // Every copy first: a copy the heap refuses then throws before anything is staged (a
    // staging that fails drops its own set), so no stale array waits for the next commit.
    const copies = entries.map(([name, array]) => [name, heap.copyIn(array, name), array.length]);
    for (const [name, ptr, length] of copies) raiseStatus(handle.stageNamed(name, ptr, length), where);
    raiseStatus(commit(), where);
  });
}

// nn.MultiheadAttention's state-dict names: what the multi-head layers (multi-head, cross,
// dense, adaptive precision) load by name.
export const MULTIHEAD_NAMES = ['in_proj_weight', 'q_proj_weight', 'k_proj_weight', 'v_proj_weight', 'in_proj_bias',
  'out_proj.weight', 'out_proj.bias'];

// saveWeights() of a handle with bindings/multihead_weights.h's methods.
export function saveHandleWeights(where, module, handle) {
  return saveBinary(where, module, handle.savedBytes(), (ptr, bytes) => handle.saveInto(ptr, bytes));
}

// loadWeights() of such a handle: a Uint8Array from saveWeights(), or PyTorch-named arrays.
export function loadMultiHeadWeights(where, module, handle, weights) {
  if (weights instanceof Uint8Array) return loadBinary(where, module, weights, (ptr, n) => handle.load(ptr, n));
  return loadNamed(where, module, handle, weights, MULTIHEAD_NAMES, 'nn.MultiheadAttention', () => handle.commitNamed());
}
