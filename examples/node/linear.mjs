// Linear attention in Node: the three feature maps, causal and not, on growing sequences.
// The time per token stays flat: the cost is O(n · F · d), never O(n²).
//   node examples/node/linear.mjs
import { WasmLinearAttention, getRuntimeInfo } from '../../js/index.js';

const heads = 8, dim = 64;
const random = (length) => Float32Array.from({ length }, () => Math.random() * 2 - 1);

console.log(`runtime: ${getRuntimeInfo().variant}, ${getRuntimeInfo().threads} thread(s); ${heads} heads, dim ${dim}`);
console.log('feature map  causal       n     ms   µs per token');
for (const featureMap of ['elu', 'relu', 'dpfp']) {
  for (const causal of [false, true]) {
    const linear = new WasmLinearAttention({ dim, heads, featureMap, causal });
    for (const n of [1024, 8192, 32768]) {
      const q = random(n * heads * dim), k = random(n * heads * dim), v = random(n * heads * dim);
      const out = new Float32Array(n * heads * dim);  // reused: no new output array per call
      linear.forward(q, k, v, { out });  // warm-up
      const t0 = performance.now();
      linear.forward(q, k, v, { out });
      const ms = performance.now() - t0;
      if (out.some(Number.isNaN)) throw new Error('NaN in the output');
      console.log(`${featureMap.padEnd(11)}  ${String(causal).padEnd(6)} ${String(n).padStart(6)} ${ms.toFixed(1).padStart(6)}   ${(ms * 1000 / n).toFixed(2).padStart(6)}`);
    }
    linear.dispose();
  }
}
