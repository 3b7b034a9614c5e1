'use strict';
// CommonJS entry. The package is ESM inside (its Node entry initialises the WebAssembly
// module with a top-level await, which require() cannot wait for), so CommonJS code
// loads it asynchronously once:
//   const attnkit = await require('attnkit').load();   // same exports as the ESM entry
//   const attn = new attnkit.WasmFlashAttention({ heads: 8, dim: 64 });
let loading = null;

function load(options) {
  if (!loading) {
    loading = import('./index.js').then(async (api) => {
      await api.init(options);
      return api;
    });
    loading.catch(() => { loading = null; });
  }
  return loading;
}

module.exports = { load };
