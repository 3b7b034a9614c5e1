// webpack 5 config for an app that uses attnkit. Nothing WASM-specific is needed:
// - the package finds its .wasm, glue and worker files with `new URL(..., import.meta.url)`,
//   which webpack 5 emits as assets (asset/resource) and rewrites to their output URLs;
// - `new Worker(new URL('./worker.js', import.meta.url), { type: 'module' })` inside the
//   package becomes a worker chunk (AttentionWorker);
// - Node-only imports are marked webpackIgnore, so no `resolve.fallback` is needed.
// Serve the output with COOP `same-origin` and COEP `require-corp` for the threaded build
// (without them it runs on one thread). `experiments.asyncWebAssembly` is not needed: the
// package instantiates its own .wasm.
import { fileURLToPath } from 'node:url';

export default {
  mode: 'production',
  entry: './src/index.js',
  output: { path: fileURLToPath(new URL('./dist', import.meta.url)), clean: true },
  // The .wasm files are about 470 KB each; the default hint is 244 KB.
  performance: { maxAssetSize: 600_000, maxEntrypointSize: 600_000 },
};
