// Moving typed arrays in and out of the WebAssembly heap. Every allocation made in a
// scope is freed when the scope ends, on the error paths too.
import { rangeError } from './errors.js';

// The most one allocation can take: malloc takes a 32-bit size, and the heap tops out at 4 GiB.
export const MAX_ALLOCATION = 2 ** 32 - 2 ** 16;

function mib(bytes) {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

class HeapScope {
  constructor(module, where) {
    this.module = module;
    this.where = where;
    this.pointers = [];
  }

  // `what` names the buffer in the RangeError a failed allocation raises (param "memory").
  alloc(bytes, what = 'a buffer') {
    // malloc takes a 32-bit size: anything larger would wrap around, not fail.
    if (bytes > MAX_ALLOCATION) {
      throw rangeError(this.where, 'memory',
        `${what} of ${bytes} bytes does not fit in the WebAssembly heap (4 GiB is the most a module can address)`);
    }
    const ptr = this.module._malloc(Math.max(bytes, 4));
    if (!ptr) {
      // malloc returns 0 (ABORTING_MALLOC=0) when the heap cannot grow by that much.
      throw rangeError(this.where, 'memory',
        `the WebAssembly heap cannot hold ${what} of ${bytes} bytes besides the ${mib(this.module.heapUsed())} ` +
        `it holds (4 GiB is the most a module can address)`);
    }
    this.pointers.push(ptr);
    return ptr;
  }

  copyIn(array, what = 'an input') {
    const ptr = this.alloc(array.byteLength, what);
    this.module.heapU8().set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), ptr);
    return ptr;
  }

  // `length` floats at ptr: copied into `target` when the caller supplied one (of that
  // length), else into a new array.
  readF32(ptr, length, target) {
    const floats = this.module.heapF32().subarray(ptr >>> 2, (ptr >>> 2) + length);
    if (target === undefined) return floats.slice();
    target.set(floats);
    return target;
  }

  // `length` bytes at ptr, into a new array.
  readU8(ptr, length) {
    return this.module.heapU8().slice(ptr, ptr + length);
  }

  // `length` doubles at ptr (8-byte aligned, as malloc returns), into a new array.
  readF64(ptr, length) {
    return new Float64Array(this.module.heapU8().buffer, ptr, length).slice();
  }

  release() {
    for (const ptr of this.pointers) this.module._free(ptr);
    this.pointers.length = 0;
  }
}

export function withHeap(module, where, fn) {
  const scope = new HeapScope(module, where);
  try {
    return fn(scope);
  } finally {
    scope.release();
  }
}
