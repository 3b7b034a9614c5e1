// A truly cold first call: a fresh Node process, a fresh runtime, a fresh instance.
// (In the main bench process V8 shares compiled and tiered-up wasm code between
// runtimes made from the same bytes, so only the first runtime there is cold.)
//   node bench/cold_child.mjs '{"variant":"simd-threads","threads":2,"dim":64,"seq":1024,"causal":false}'
// Prints one JSON line.
import { HEADS, makeInputs, median, runPlan, startRuntime, warmRuns } from './common.mjs';

const cfg = JSON.parse(process.argv[2]);
const t0 = performance.now();
const lib = await import('../js/index.js');
const { WasmFlashAttention } = lib;
const importMs = performance.now() - t0;
const inputs = makeInputs(cfg.seq, cfg.dim);
const t1 = performance.now();
const runtime = await startRuntime(lib, cfg.variant, cfg.threads);
const runtimeMs = performance.now() - t1;
const fa = new WasmFlashAttention({ heads: HEADS, dim: cfg.dim, causal: cfg.causal, runtime });
const t2 = performance.now();
fa.forward(inputs.q, inputs.k, inputs.v);
const firstCallMs = performance.now() - t2;
const heapAfterFirst = runtime.module.heapU8().byteLength;
const times = warmRuns(() => fa.forward(inputs.q, inputs.k, inputs.v), runPlan(cfg.seq));
process.stdout.write(`${JSON.stringify({
  ...cfg, ok: true, importMs, runtimeMs, firstCallMs, heapAfterFirst,
  warmMedianMs: median(times), warmRuns: times.length, times,
})}\n`);
process.exit(0);
