// Vite config for an app that uses attnkit. Three settings matter:
// - COOP/COEP headers make the page cross-origin isolated, which SharedArrayBuffer and so the
//   threaded WASM build need (dev server and `vite preview`; set the same two headers on your
//   production server). ATTNKIT_ISOLATION=off leaves them out, to see the one-thread fallback.
// - optimizeDeps.exclude: the package finds its .wasm, glue and worker files with
//   `new URL(..., import.meta.url)`, which pre-bundling into .vite/deps would break.
// - worker.format 'es': AttentionWorker's module worker imports code lazily, which Vite's
//   default 'iife' worker format cannot split.
// No WASM plugin is needed: Vite emits the files those `new URL` calls name as assets.
// server.fs.allow is only for this example, which links the package from the repository
// (file:../..): the dev server may then serve files from there. An app that installed
// attnkit from npm has it inside its own node_modules and needs no such line.
import { defineConfig, searchForWorkspaceRoot } from 'vite';

const isolation = process.env.ATTNKIT_ISOLATION === 'off' ? {} : {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  server: { headers: isolation, fs: { allow: [searchForWorkspaceRoot(process.cwd()), '../..'] } },
  preview: { headers: isolation },
  optimizeDeps: { exclude: ['attnkit'] },
  worker: { format: 'es' },
});
