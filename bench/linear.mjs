// The linear-attention part of `npm run bench`: WasmLinearAttention (2 threads, 8 heads,
// d = 64) from n = 1024 to 65536, elu and dpfp, causal and not. Issue 5's target: the time
// grows linearly (time per token at n = 65536 within 1.3x of that at n = 1024).
//
// Every n does the same kind of work per call: Q, K, V copied into the WebAssembly heap, the
// kernel, and the output copied into a caller's array (forward's `out` option), so no size
// pays for allocating a fresh output (at n = 65536 a new 128 MiB array, its page faults and
// its garbage collection cost more than the input copies). The comparison leans on the
// short calls as much as on the long ones, so each measurement is a trial of ≥ 1 s of calls,
// the trials go round the sizes in turn (a slow spell of the shared machine lands on every
// size, not on one), and each size reports the median of its trials.
import { HEADS, engineWarmup, makeInputs, median, roundRobinTrials, startRuntime } from './common.mjs';

export const LINEAR_SEQS = [1024, 4096, 16384, 65536];
const DIM = 64;
const TRIALS = 5;
const TRIAL_MS = 1000;
const WARMUP_MS = 1500;  // of calls at the smallest n, per (feature map, mask), before any timing
const TARGET = 1.3;

export async function benchLinear(lib, log) {
  const runtime = await startRuntime(lib, 'simd-threads', 2);
  // The same inputs for every feature map and mask; one output array per n, reused.
  const sizes = LINEAR_SEQS.map((seq) => ({ seq, ...makeInputs(seq, DIM), out: new Float32Array(seq * HEADS * DIM) }));
  const rows = [];
  const groups = [];
  for (const featureMap of ['elu', 'dpfp']) {
    for (const causal of [false, true]) {
      const attn = new lib.WasmLinearAttention({ dim: DIM, heads: HEADS, featureMap, causal, runtime });
      const forward = ({ q, k, v, out }) => () => attn.forward(q, k, v, { out });
      await engineWarmup(forward(sizes[0]), WARMUP_MS);
      // One untimed call per n: the heap grows to its size.
      const plan = sizes.map((size) => ({ size, call: forward(size) }));
      for (const p of plan) p.call();
      roundRobinTrials(plan, TRIALS, TRIAL_MS);
      const mine = plan.map((p) => {
        const medianMs = median(p.times);
        const loads = p.load.filter(Number.isFinite);
        const row = {
          featureMap, causal, seq: p.size.seq, medianMs, usPerToken: (medianMs * 1000) / p.size.seq,
          minMs: Math.min(...p.times), maxMs: Math.max(...p.times), trials: p.times.length, trialCalls: p.calls,
          trialMsPerCall: p.times, trialOtherLoadCores: p.load, otherLoadCores: loads.length ? median(loads) : null,
        };
        log(`linear ${featureMap} ${causal ? 'causal' : 'full  '} n=${String(row.seq).padEnd(5)} ${medianMs.toFixed(1)} ms ` +
            `(${row.usPerToken.toFixed(2)} µs per token; ${TRIALS} trials of ${Math.min(...p.calls)}–${Math.max(...p.calls)} calls, ` +
            `${row.minMs.toFixed(1)}–${row.maxMs.toFixed(1)} ms)`);
        return row;
      });
      rows.push(...mine);
      attn.dispose();
      // Growth: time per token at the largest n over time per token at the smallest, from the
      // medians; and per round of trials (one round takes the sizes seconds apart).
      const first = mine[0], last = mine[mine.length - 1];
      const perToken = (r, t) => r.trialMsPerCall[t] / r.seq;
      const trialGrowth = first.trialMsPerCall.map((_, t) => perToken(last, t) / perToken(first, t));
      groups.push({
        featureMap, causal, growth: last.usPerToken / first.usPerToken, from: first.seq, to: last.seq,
        trialGrowthMin: Math.min(...trialGrowth), trialGrowthMax: Math.max(...trialGrowth),
      });
      log(`linear ${featureMap} ${causal ? 'causal' : 'full  '} growth ${groups.at(-1).growth.toFixed(2)}x ` +
          `(per trial ${trialGrowth.map((g) => g.toFixed(2)).join(', ')})`);
    }
  }
  return {
    dim: DIM, heads: HEADS, threads: 2, trials: TRIALS, minTrialMs: TRIAL_MS, target: TARGET,
    includes: 'copy of Q, K, V into the WebAssembly heap, the kernel, copy of the output into a reused caller array (forward(Q, K, V, { out }))',
    rows, groups,
  };
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
  lines.push('growth = (time / n at the largest n) / (time / n at the smallest): 1.00x is exactly linear. ' + (linear.trials
    ? 'A time is one forward call: copying Q, K, V into the WebAssembly heap, the kernel, and copying the output into ' +
      'an array the caller reuses (forward\'s `out` option) at every n; not included is allocating a new output array ' +
      'per call (forward without `out`), which at n = 65536 is a fresh 128 MiB array per call.'
    : 'Times include copying Q, K, V into the WebAssembly heap and the output out of it.'));
  if (linear.trials) {
    const ranges = linear.groups.filter((g) => Number.isFinite(g.trialGrowthMin))
      .map((g) => `${g.featureMap} ${g.causal ? 'causal' : 'full'} ${g.trialGrowthMin.toFixed(2)}–${g.trialGrowthMax.toFixed(2)}x`);
    const missed = linear.groups.filter((g) => !(g.growth <= linear.target))
      .map((g) => `${g.featureMap} ${g.causal ? 'causal' : 'full'}`);
    lines.push('');
    lines.push(`Each time is the median of ${linear.trials} trials of ≥ ${linear.minTrialMs / 1000} s of calls (warm engine, ` +
      'trials taking the sizes in turn). Growth per trial: ' + `${ranges.join('; ')}. Issue 5's target ` +
      `(growth ≤ ${linear.target}x): ${missed.length ? `missed by ${missed.join(', ')}` : 'met by all four'}.`);
  }
  lines.push('');
  return lines;
}
