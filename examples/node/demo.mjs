// npm start: attention with every WebAssembly variant this machine can run,
// checked against a float64 reference, with a table of time and GFLOP/s.
import { WasmFlashAttention, createRuntime, checkThreadSupport } from '../../js/index.js';

const heads = 8, dim = 64;

function randomArray(length) {
  return Float32Array.from({ length }, () => Math.random() * 2 - 1);
}

// Float64 attention for one query row of one head, for the accuracy column.
function referenceRow(Q, K, V, seq, h, i, causal) {
  const keys = causal ? i + 1 : seq;
  const scores = new Float64Array(keys);
  let max = -Infinity;
  for (let j = 0; j < keys; ++j) {
    let s = 0;
    for (let c = 0; c < dim; ++c) s += Q[(i * heads + h) * dim + c] * K[(j * heads + h) * dim + c];
    scores[j] = s / Math.sqrt(dim);
    max = Math.max(max, scores[j]);
  }
  let sum = 0;
  for (let j = 0; j < keys; ++j) sum += (scores[j] = Math.exp(scores[j] - max));
  const row = new Float64Array(dim);
  for (let j = 0; j < keys; ++j) for (let c = 0; c < dim; ++c) row[c] += scores[j] * V[(j * heads + h) * dim + c] / sum;
  return row;
}

function sampledError(attn, seq, causal) {
  const Q = randomArray(seq * heads * dim), K = randomArray(seq * heads * dim), V = randomArray(seq * heads * dim);
  const out = attn.forward(Q, K, V);
  let err = 0, big = 0;
  for (const i of [0, seq >> 1, seq - 1]) {
    for (let h = 0; h < heads; h += 3) {
      const ref = referenceRow(Q, K, V, seq, h, i, causal);
      for (let c = 0; c < dim; ++c) {
        err = Math.max(err, Math.abs(ref[c] - out[(i * heads + h) * dim + c]));
        big = Math.max(big, Math.abs(ref[c]));
      }
    }
  }
  return err / big;
}

const runtimes = [];
if (checkThreadSupport()) {
  const threaded = await createRuntime({ variant: 'simd-threads' });
  runtimes.push({ label: `simd-threads x${threaded.maxThreads}`, runtime: threaded, threads: threaded.maxThreads });
  if (threaded.maxThreads > 1) runtimes.push({ label: 'simd-threads x1', runtime: threaded, threads: 1 });
}
runtimes.push({ label: 'simd (no threads)', runtime: await createRuntime({ variant: 'simd' }), threads: 1 });

console.log(`attnkit demo: flash attention, ${heads} heads x ${dim} dims, float32 in WebAssembly SIMD128`);
console.log('variant              seq  causal   ms/call  GFLOP/s  first-call ms  rel.err vs float64');
for (const { label, runtime, threads } of runtimes) {
  runtime.setNumThreads(threads);
  for (const seq of [256, 1024]) {
    for (const causal of [false, true]) {
      const attn = new WasmFlashAttention({ heads, dim, causal, runtime });
      const r = attn.benchmark(seq, { minTimeMs: 150 });
      const err = sampledError(attn, seq, causal);
      console.log(`${label.padEnd(18)}${String(seq).padStart(6)}  ${String(causal).padEnd(6)}` +
        `${r.latencyMs.toFixed(2).padStart(9)}${(r.opsPerSecond / 1e9).toFixed(1).padStart(9)}` +
        `${r.firstCallMs.toFixed(1).padStart(15)}  ${err.toExponential(1)}`);
      attn.dispose();
    }
  }
  runtime.setNumThreads(runtime.maxThreads);
}
