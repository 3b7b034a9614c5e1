// The WASM SIMD128 mul+add peak probe (bench/peak_probe.cpp): built with em++ into
// bench/build/ when missing or stale, then run on N worker threads at once (N = 1, 2),
// each calling the probe repeatedly so V8's optimizing tier compiles it.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';

export const CHAINS = 12;

export function buildProbe(benchDir) {
  const src = join(benchDir, 'peak_probe.cpp');
  const out = join(benchDir, 'build', 'peak_probe.wasm');
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return { wasm: out, built: false };
  mkdirSync(join(benchDir, 'build'), { recursive: true });
  const args = ['-O3', '-msimd128', `-DCHAINS=${CHAINS}`, '--no-entry', '-sSTANDALONE_WASM', '-o', out, src];
  const r = spawnSync('em++', args, {
    env: { ...process.env, NODE_PATH: '/usr/share/nodejs' },  // Emscripten 3.1.6 needs Debian's acorn
    encoding: 'utf8',
  });
  if (r.status !== 0) {
    throw new Error(`em++ ${args.join(' ')} failed: ${r.error?.message ?? ''}${r.stderr ?? ''}`);
  }
  return { wasm: out, built: true, command: `em++ ${args.join(' ')}` };
}

// Each worker: instantiate, warm up, then in every window start together (barrier on a
// SharedArrayBuffer), call the probe for windowMs and report FLOPs and elapsed time.
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const { readFileSync } = require('node:fs');
const { wasm, iters, windows, windowMs, warmMs, sab, parties } = workerData;
const sync = new Int32Array(sab);
const instance = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(wasm)), {});
const probe = instance.exports.peak_probe;
const flopsPerCall = instance.exports.peak_probe_flops(iters);
let sink = 0;
let t = performance.now();
while (performance.now() - t < warmMs) sink += probe(iters, 0.999, 0.001);
const out = [];
for (let w = 0; w < windows; ++w) {
  // barrier: everyone arrives, the last one releases
  const target = parties * (w + 1);
  if (Atomics.add(sync, 0, 1) + 1 === target) { Atomics.store(sync, 1, w + 1); Atomics.notify(sync, 1); }
  else while (Atomics.load(sync, 1) < w + 1) Atomics.wait(sync, 1, w, 50);
  let calls = 0;
  const start = performance.now();
  let now = start;
  while (now - start < windowMs) { sink += probe(iters, 0.999, 0.001); ++calls; now = performance.now(); }
  out.push({ flops: calls * flopsPerCall, ms: now - start });
}
parentPort.postMessage({ out, sink });
`;

export async function runProbe(wasm, threads, { iters = 100000, windows = 5, windowMs = 300, warmMs = 400 } = {}) {
  const sab = new SharedArrayBuffer(8);
  const workers = Array.from({ length: threads }, () => new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { wasm, iters, windows, windowMs, warmMs, sab, parties: threads },
  }));
  const replies = await Promise.all(workers.map((w) => new Promise((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  })));
  await Promise.all(workers.map((w) => w.terminate()));
  // GFLOP/s per window, summed over the workers that ran it concurrently.
  const perWindow = [];
  for (let i = 0; i < windows; ++i) {
    perWindow.push(replies.reduce((sum, r) => sum + r.out[i].flops / r.out[i].ms / 1e6, 0));
  }
  return { threads, chains: CHAINS, windows: perWindow, best: Math.max(...perWindow) };
}
