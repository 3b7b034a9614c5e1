// The KV-cache decode part of `npm run bench`: one query over n = 32768 cached keys (8 heads,
// d = 64, 2 threads) with the cache stored in fp32, fp16 and bf16 (WasmKVCache). Issue 7's
// target: bf16 ≥ 1.6x and fp16 ≥ 1.3x faster than fp32, at half its memory, with the error
// within the storage's rounding. Each time is the median of trials of ≥ 1 s of calls, the
// trials going round the precisions in turn; a call copies the query in and the output out.
import { HEADS, fillRandom, median, relativeError, roundRobinTrials, startRuntime } from './common.mjs';

const DIM = 64;
const CACHED = 32768;
const TRIALS = 5;
const TRIAL_MS = 1000;
const PRECISIONS = ['fp32', 'fp16', 'bf16'];
const TARGETS = { fp16: 1.3, bf16: 1.6 };

export async function benchDecode(lib, log) {
  const runtime = await startRuntime(lib, 'simd-threads', 2);
  const k = fillRandom(new Float32Array(CACHED * HEADS * DIM), 11);
  const v = fillRandom(new Float32Array(CACHED * HEADS * DIM), 12);
  const q = fillRandom(new Float32Array(HEADS * DIM), 13);
  const out = new Float32Array(HEADS * DIM);
  const caches = Object.fromEntries(PRECISIONS.map((precision) => {
    const cache = new lib.WasmKVCache({ heads: HEADS, headDim: DIM, precision, capacity: CACHED, runtime });
    for (let at = 0; at < CACHED; at += 4096) {  // appended in steps, as a decoder fills it
      cache.append(k.subarray(at * HEADS * DIM, (at + 4096) * HEADS * DIM), v.subarray(at * HEADS * DIM, (at + 4096) * HEADS * DIM));
    }
    return [precision, cache];
  }));
  const plan = PRECISIONS.map((precision) => ({ precision, call: () => caches[precision].attend(q, { out }) }));
  for (const p of plan) for (let i = 0; i < 20; ++i) p.call();  // warm-up
  roundRobinTrials(plan, TRIALS, TRIAL_MS);
  const exact = caches.fp32.attend(q);
  const rows = plan.map((p) => {
    const cache = caches[p.precision];
    const got = cache.attend(q);
    return {
      precision: p.precision, medianMs: median(p.times), trialMs: p.times, otherLoadCores: p.load,
      cacheBytes: cache.getMemoryUsage().cacheBytes, errorVsFp32: relativeError(got, exact),
    };
  });
  const fp32 = rows[0];
  for (const r of rows) {
    r.speedup = fp32.medianMs / r.medianMs;
    r.target = TARGETS[r.precision] ?? null;
    log(`decode ${r.precision} n=${CACHED}: ${r.medianMs.toFixed(3)} ms, ${r.speedup.toFixed(2)}x fp32, ` +
        `${(r.cacheBytes / 2 ** 20).toFixed(0)} MiB, rel. error vs fp32 ${r.errorVsFp32.toExponential(1)}`);
  }
  for (const c of Object.values(caches)) c.dispose();
  return { cached: CACHED, heads: HEADS, dim: DIM, threads: 2, trials: TRIALS, minTrialMs: TRIAL_MS, rows };
}

export function decodeReport(decode, mdTable) {
  const lines = [`## KV-cache decode (WasmKVCache, one query over n = ${decode.cached} cached keys, ${decode.heads} heads, ` +
    `d = ${decode.dim}, 2 threads)`, ''];
  lines.push(mdTable(['storage', 'median ms', 'speed-up vs fp32', 'target', 'cache MiB', 'rel. error vs fp32'],
    decode.rows.map((r) => [r.precision, r.medianMs.toFixed(3), `${r.speedup.toFixed(2)}x`,
      r.target ? `≥ ${r.target}x: ${r.speedup >= r.target ? 'PASS' : 'FAIL'}` : '',
      (r.cacheBytes / 2 ** 20).toFixed(0), r.precision === 'fp32' ? '' : r.errorVsFp32.toExponential(1)])));
  lines.push('');
  lines.push(`Each time is the median of ${decode.trials} trials of ≥ ${decode.minTrialMs / 1000} s of calls, the trials going ` +
    'round the precisions in turn; a call copies the query into the heap and the output out. Keys and values are ' +
    'rounded to the storage type on append and widened to float32 in SIMD registers as they are read.');
  lines.push('');
  return lines;
}
