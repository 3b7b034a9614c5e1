// AttentionWorker in Node: a long flash call in a worker_threads worker while the main
// thread keeps running timers, inputs moved with transfer(), an error coming back typed.
//   node examples/node/worker.mjs
import { AttentionWorker, transfer } from '../../js/index.js';

const heads = 8, dim = 64, n = 4096;
const random = (length) => Float32Array.from({ length }, () => Math.random() * 2 - 1);
const worker = await AttentionWorker.create();
console.log(`worker runtime: ${worker.info.variant} x ${worker.info.threads} (${worker.info.reason})`);
const attn = await worker.construct('WasmFlashAttention', { heads, dim, causal: true });

const Q = random(n * heads * dim), K = random(n * heads * dim), V = random(n * heads * dim);
let ticks = 0;
const timer = setInterval(() => ++ticks, 10);
const t0 = performance.now();
const out = await attn.forward(transfer(Q), transfer(K), transfer(V));
const ms = performance.now() - t0;
clearInterval(timer);
console.log(`causal flash, n ${n}: ${ms.toFixed(0)} ms in the worker; the main thread ran ${ticks} timer ticks meanwhile; ` +
  `inputs moved (Q.length is now ${Q.length}), output ${out.length} floats`);

try {
  await attn.forward(new Float32Array(5), new Float32Array(5), new Float32Array(5));
} catch (err) {
  console.log(`bad input comes back as ${err.constructor.name} naming "${err.param}": ${err.message}`);
}
worker.dispose();
