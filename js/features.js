// Feature probes: can this engine run the SIMD build, and the threaded one?

// The smallest module using a SIMD128 instruction:
// (func (result v128) i32.const 0  i8x16.splat  i8x16.popcnt)
const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, 0x01, 0x05, 0x01, 0x60, 0x00, 0x01, 0x7b, 0x03,
  0x02, 0x01, 0x00, 0x0a, 0x0a, 0x01, 0x08, 0x00, 0x41, 0x00, 0xfd, 0x0f, 0xfd, 0x62, 0x0b,
]);

export const IS_NODE = typeof process === 'object' && typeof process.versions === 'object' &&
  typeof process.versions.node === 'string' && typeof window === 'undefined';

// Node's built-in modules, imported only when running in Node. The specifier is a variable
// and both bundler comments are set so that Vite and webpack leave the import alone in a
// browser build instead of trying (and warning about failing) to bundle `node:` modules.
export function nodeImport(name) {
  return import(/* webpackIgnore: true */ /* @vite-ignore */ name);
}

export function checkSIMDSupport() {
  try {
    return typeof WebAssembly === 'object' && WebAssembly.validate(SIMD_PROBE);
  } catch {
    return false;
  }
}

// Why the threaded build cannot run here, or '' when it can.
export function threadSupportProblem() {
  if (typeof SharedArrayBuffer !== 'function') {
    return IS_NODE ? 'SharedArrayBuffer is missing' :
      'SharedArrayBuffer is unavailable: serve the page with COOP "same-origin" and COEP "require-corp" headers';
  }
  if (!IS_NODE && globalThis.crossOriginIsolated !== true) {
    return 'the page is not cross-origin isolated (COOP "same-origin" + COEP "require-corp" headers are needed)';
  }
  if (!IS_NODE && typeof Worker !== 'function') return 'Web Workers are unavailable';
  try {
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
    if (!(memory.buffer instanceof SharedArrayBuffer)) return 'shared WebAssembly memory is unsupported';
  } catch {
    return 'shared WebAssembly memory is unsupported';
  }
  return '';
}

export function checkThreadSupport() {
  return threadSupportProblem() === '';
}
