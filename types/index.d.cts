// Type definitions for the CommonJS entry of attnkit (js/index.cjs).
// The package is ESM inside: its Node entry initialises the WebAssembly module with a
// top-level await, which require() cannot wait for. CommonJS code therefore loads it
// asynchronously, once:
//
//   const attnkit = await require('attnkit').load();
//   const attn = new attnkit.WasmFlashAttention({ heads: 8, dim: 64 });
//
// The API itself is declared once, in index.d.ts.
type AttnkitModule = typeof import('./index.js');
type InitOptions = import('./index.js').InitOptions;

/**
 * Imports the ESM entry and initialises the default runtime (`init(options)`); resolves to
 * the same exports as `import * as attnkit from 'attnkit'`. Later calls return the same
 * promise (their options are not used); a failed load is retried by the next call.
 * @throws {TypeError} | {RangeError} | {Error} (rejects) as `init()`.
 */
export declare function load(options?: string | URL | InitOptions): Promise<AttnkitModule>;

export {};
