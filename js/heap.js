// Moving typed arrays in and out of the WebAssembly heap. Every allocation made in a
// scope is freed when the scope ends, on the error paths too.
import { rangeError } from './errors.js';

const MAX_ALLOCATION = 2 ** 32 - 2 ** 16;

class HeapScope {
  constructor(module, where) {
    this.module = module;
    this.where = where;
    this.pointers = [];
  }

  alloc(bytes) {
    // malloc takes a 32-bit size: anything larger would wrap around, not fail.
    if (bytes > MAX_ALLOCATION) {
      throw rangeError(this.where, 'memory',
        `${bytes} bytes do not fit in the WebAssembly heap (4 GiB is the most a module can address)`);
    }
    const ptr = this.module._malloc(Math.max(bytes, 4));
    if (!ptr) {
      throw rangeError(this.where, 'memory',
        `the WebAssembly heap cannot hold another ${bytes} bytes (4 GiB is the most a module can address)`);
    }
    this.pointers.push(ptr);
    return ptr;
  }

  copyIn(array) {
    const ptr = this.alloc(array.byteLength);
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
