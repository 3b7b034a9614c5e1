// attnkit bundled by webpack: the synchronous API on the page's thread and the same call in an
// AttentionWorker, with the variant each runs and the two outputs compared.
import init, { AttentionWorker, WasmFlashAttention, getRuntimeInfo, transfer } from 'attnkit';

const heads = 4, dim = 32, n = 256;
const random = (length) => Float32Array.from({ length }, () => Math.random() * 2 - 1);
const Q = random(n * heads * dim), K = random(n * heads * dim), V = random(n * heads * dim);

await init();
const direct = new WasmFlashAttention({ heads, dim, causal: true }).forward(Q, K, V);
const worker = await AttentionWorker.create();
const remote = await worker.construct('WasmFlashAttention', { heads, dim, causal: true });
const fromWorker = await remote.forward(transfer(Q.slice()), transfer(K.slice()), transfer(V.slice()));
let diff = 0;
for (let i = 0; i < direct.length; ++i) diff = Math.max(diff, Math.abs(direct[i] - fromWorker[i]));
const result = { page: getRuntimeInfo(), worker: worker.info, maxDifference: diff };
worker.dispose();
document.body.textContent = JSON.stringify(result, null, 2);
document.body.dataset.state = 'done';
