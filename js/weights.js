// Moving a model's weights between JS and a C++ handle: the versioned binary format
// (saveInto / load on the handle) and named Float32Arrays staged one by one, then committed
// together (so a bad set leaves the old weights in place).
import { raiseStatus, rangeError, typeError } from './errors.js';
import { withHeap } from './heap.js';
import { float32Array } from './validate.js';

// The bytes of saveInto(ptr, capacity) as a Uint8Array of `bytes` bytes.
export function saveBinary(where, module, bytes, saveInto) {
  return withHeap(module, where, (heap) => {
    const ptr = heap.alloc(bytes);
    raiseStatus(saveInto(ptr, bytes), where);
    return module.heapU8().slice(ptr, ptr + bytes);
  });
}

// A Uint8Array handed to load(ptr, length).
export function loadBinary(where, module, bytes, load) {
  return withHeap(module, where, (heap) => {
    raiseStatus(load(heap.copyIn(bytes), bytes.length), where);
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
    if (!names.includes(name)) throw rangeError(where, name, `is not a weight of ${owner} (expected one of ${names.join(', ')})`);
    float32Array(where, name, array);
  }
  return withHeap(module, where, (heap) => {
    for (const [name, array] of entries) handle.stageNamed(name, heap.copyIn(array), array.length);
    raiseStatus(commit(), where);
  });
}
