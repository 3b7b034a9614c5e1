// The linear-attention part of `npm run bench`: WasmLinearAttention (2 threads, 8 heads,
// d = 64) from n = 1024 to 65536, elu and dpfp, causal and not. Issue 5's target: the time
// grows linearly (time per token at n = 65536 within 1.3x of that at n = 1024).
import { HEADS, makeInputs, median, startRuntime, warmRuns } from './common.mjs';

export const LINEAR_SEQS = [1024, 4096, 16384, 65536];
const DIM = 64;

// The growth compares the largest n with the smallest, so the short calls get many runs
// (at n = 1024 a call takes ~8 ms: 500 ms of runs left its median at the mercy of the
// shared second core).
function runsFor(seq) {
  if (seq <= 4096) return { minRuns: 5, minMs: 1500, maxRuns: 200 };
  return { minRuns: 3, minMs: 0, maxRuns: 3 };
}

export async function benchLinear(lib, log) {
  const runtime = await startRuntime(lib, 'simd-threads', 2);
  const rows = [];
  for (const featureMap of ['elu', 'dpfp']) {
    for (const causal of [false, true]) {
      const attn = new lib.WasmLinearAttention({ dim: DIM, heads: HEADS, featureMap, causal, runtime });
      for (const seq of LINEAR_SEQS) {
        const { q, k, v } = makeInputs(seq, DIM);
        attn.forward(q, k, v);  // first call: heap growth and tier-up are not the point here
        const medianMs = median(warmRuns(() => attn.forward(q, k, v), runsFor(seq)));
        const row = { featureMap, causal, seq, medianMs, usPerToken: (medianMs * 1000) / seq };
        rows.push(row);
        log(`linear ${featureMap} ${causal ? 'causal' : 'full  '} n=${String(seq).padEnd(5)} ${medianMs.toFixed(1)} ms ` +
            `(${row.usPerToken.toFixed(2)} µs per token)`);
      }
      attn.dispose();
    }
  }
  // Growth: time per token at the largest n over time per token at the smallest.
  const groups = [];
  for (const featureMap of ['elu', 'dpfp']) {
    for (const causal of [false, true]) {
      const mine = rows.filter((r) => r.featureMap === featureMap && r.causal === causal);
      const first = mine[0], last = mine[mine.length - 1];
      groups.push({ featureMap, causal, growth: last.usPerToken / first.usPerToken, from: first.seq, to: last.seq });
    }
  }
  return { dim: DIM, heads: HEADS, threads: 2, rows, groups };
}

export function linearReport(linear, mdTable) {
  const lines = ['## Linear attention (WasmLinearAttention, 2 threads, 8 heads, d = 64)', ''];
  lines.push(mdTable(['feature map', 'mask', ...LINEAR_SEQS.map((n) => `n=${n} ms`), 'µs/token first → last', 'growth'],
    linear.groups.map((g) => {
      const mine = linear.rows.filter((r) => r.featureMap === g.featureMap && r.causal === g.causal);
      return [g.featureMap, g.causal ? 'causal' : 'full', ...mine.map((r) => r.medianMs.toFixed(1)),
        `${mine[0].usPerToken.toFixed(2)} → ${mine[mine.length - 1].usPerToken.toFixed(2)}`, `${g.growth.toFixed(2)}x`];
    })));
  lines.push('');
  lines.push('growth = (time / n at the largest n) / (time / n at the smallest): 1.00x is exactly linear. Times include ' +
    'copying Q, K, V into the WebAssembly heap and the output out of it.');
  lines.push('');
  return lines;
}
