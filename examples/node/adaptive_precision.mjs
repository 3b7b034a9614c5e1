// AdaAttn's AdaptivePrecisionAttention: 'adaptive' picks the cheapest storage precision whose
// measured error fits the tolerance, says why, then decodes step by step over its cache.
//   node examples/node/adaptive_precision.mjs
import { WasmAdaptivePrecisionAttention } from '../../js/index.js';

const embedDim = 512, numHeads = 8, seqLen = 512;
const random = (length, amp = 1) => Float32Array.from({ length }, () => (Math.random() * 2 - 1) * amp);

for (const tolerance of [1e-2, 3e-4, 1e-4]) {
  const attn = new WasmAdaptivePrecisionAttention({ embedDim, numHeads, defaultPrecision: 'adaptive', tolerance, seed: 3 });
  const x = random(seqLen * embedDim);
  const { precision, reason } = attn.forward(x, x, x, { causal: true, keepCache: true });
  console.log(`tolerance ${tolerance.toExponential(0)}: prefill stored as ${precision} (${reason})`);
  let t0 = performance.now();
  for (let t = 0; t < 16; ++t) {
    const token = random(embedDim);
    attn.step(token, token, token);
  }
  console.log(`  16 decode steps: ${((performance.now() - t0) / 16).toFixed(2)} ms per token, ` +
    `cache ${attn.cacheLength} tokens, ${(attn.getMemoryUsage().cacheBytes / 2 ** 20).toFixed(2)} MiB as ${attn.cachePrecision}`);
  attn.dispose();
}
