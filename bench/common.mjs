// Shared helpers of the benchmark: inputs, statistics, FLOP counts, CPU-load meter.
import { readFileSync } from 'node:fs';

export const HEADS = 8;

// The same LCG as js/flash_attention.js and tests/bench/bench_native.cpp, so every
// implementation (and every child process) sees identical Q, K, V.
export function fillRandom(array, seed) {
  let s = seed >>> 0;
  for (let i = 0; i < array.length; ++i) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    array[i] = s / 2147483648 - 1;
  }
  return array;
}

export function makeInputs(seq, dim, heads = HEADS) {
  const size = seq * heads * dim;
  return {
    q: fillRandom(new Float32Array(size), 1),
    k: fillRandom(new Float32Array(size), 2),
    v: fillRandom(new Float32Array(size), 3),
  };
}

// 4·n²·d·heads, halved for causal (the convention; the library's own
// flash_flops counts n(n+1)/2 kept pairs, a 1/n difference).
export function attentionFlops(seq, dim, causal, heads = HEADS) {
  return (4 * seq * seq * dim * heads) / (causal ? 2 : 1);
}

export function median(values) {
  const s = [...values].sort((a, b) => a - b);
  const m = s.length;
  if (m === 0) return NaN;
  return m % 2 ? s[(m - 1) / 2] : 0.5 * (s[m / 2 - 1] + s[m / 2]);
}

export function relativeError(a, b) {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; ++i) {
    const d = a[i] - b[i];
    num += d * d;
    den += b[i] * b[i];
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

// Warm runs: at least minRuns, more until minMs has passed, at most maxRuns.
export function warmRuns(fn, { minRuns = 3, minMs = 0, maxRuns = 50 } = {}) {
  const times = [];
  const start = performance.now();
  while (times.length < maxRuns && (times.length < minRuns || performance.now() - start < minMs)) {
    const t = performance.now();
    fn();
    times.push(performance.now() - t);
  }
  return times;
}

export async function warmRunsAsync(fn, { minRuns = 3, minMs = 0, maxRuns = 50 } = {}) {
  const times = [];
  const start = performance.now();
  while (times.length < maxRuns && (times.length < minRuns || performance.now() - start < minMs)) {
    const t = performance.now();
    await fn();
    times.push(performance.now() - t);
  }
  return times;
}

// Untimed calls for at least `ms` before a process measures anything: V8 first runs wasm
// from its baseline compiler (Liftoff) and tiers hot functions up to TurboFan on
// background threads, which on a 2-core machine compete with the 2 compute threads for
// the first dozen calls. Warm figures are steady state; cold first calls are measured on
// their own, in fresh processes (cold_child.mjs).
export async function engineWarmup(call, ms = 2000) {
  const start = performance.now();
  let calls = 0;
  while (calls < 3 || performance.now() - start < ms) {
    await call();
    calls += 1;
  }
  return { calls, ms: performance.now() - start };
}

// Repetitions per sequence length (the big sizes run few times to keep the bench short).
export function runPlan(seq) {
  if (seq <= 256) return { minRuns: 10, minMs: 300, maxRuns: 40 };
  if (seq <= 1024) return { minRuns: 5, minMs: 800, maxRuns: 25 };
  if (seq <= 4096) return { minRuns: 3, minMs: 0, maxRuns: 3 };
  return { minRuns: 1, minMs: 0, maxRuns: 1 };
}

// CPU time used by other processes while a block ran, in cores: the machine's busy
// time (/proc/stat) less this process's own (all its threads, plus waited-for children).
function readTicks() {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    const busy = cpu[0] + cpu[1] + cpu[2] + cpu[5] + cpu[6] + (cpu[7] || 0);
    const st = readFileSync('/proc/self/stat', 'utf8');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ').map(Number);
    const own = f[11] + f[12] + f[13] + f[14];  // utime stime cutime cstime
    return { busy, own, t: performance.now() };
  } catch {
    return null;
  }
}

export function cpuMeter() {
  const start = readTicks();
  return () => {
    const end = readTicks();
    if (!start || !end) return null;
    const seconds = (end.t - start.t) / 1000;
    if (seconds < 0.05) return null;
    const other = (end.busy - start.busy - (end.own - start.own)) / 100 / seconds;  // USER_HZ = 100
    return Math.max(0, Math.round(other * 100) / 100);
  };
}

export function loadAverage() {
  try {
    return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
  } catch {
    return null;
  }
}

// Starts a runtime with exactly `threads` threads. Some builds of the library never
// settled createRuntime({ variant: 'simd-threads', numThreads: 1 }) under Node (a pthread
// build started with a pool of 0 workers); if that happens the runtime is started with
// 2 threads and set to 1 (startRuntime.fallbacks counts it). A watchdog turns any hang
// into an error instead of a silent exit of the process.
function withTimeout(promise, ms, what) {
  let timer;
  const watchdog = new Promise((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`${what} did not settle in ${ms} ms`), { timeout: true })), ms);
  });
  return Promise.race([promise, watchdog]).finally(() => clearTimeout(timer));
}

export async function startRuntime(lib, variant, threads, timeoutMs = 20000) {
  let runtime;
  try {
    runtime = await withTimeout(lib.createRuntime({ variant, numThreads: threads }), timeoutMs,
      `createRuntime(${variant}, ${threads})`);
  } catch (err) {
    if (!err.timeout || variant !== 'simd-threads' || threads !== 1) throw err;
    startRuntime.fallbacks += 1;
    runtime = await withTimeout(lib.createRuntime({ variant, numThreads: 2 }), timeoutMs, `createRuntime(${variant}, 2)`);
  }
  if (runtime.threads !== threads) runtime.setNumThreads(threads);
  return runtime;
}
startRuntime.fallbacks = 0;

// One trial of a benchmark: calls back to back until `ms` have passed; time per call.
function trialMs(call, ms) {
  const t0 = performance.now();
  let calls = 0;
  let elapsed = 0;
  while (elapsed < ms) {
    call();
    calls += 1;
    elapsed = performance.now() - t0;
  }
  return { ms: elapsed / calls, calls };
}

// `trials` rounds of trials of >= `ms` of calls, each round taking every entry of `plan`
// ({ call }) in turn, so that a slow spell of the shared machine lands on all of them. Fills
// each entry's times (ms per call), calls and load (other processes' cores) per trial.
export function roundRobinTrials(plan, trials, ms) {
  for (const p of plan) Object.assign(p, { times: [], calls: [], load: [] });
  for (let t = 0; t < trials; ++t) {
    for (const p of plan) {
      const meter = cpuMeter();
      const { ms: perCall, calls } = trialMs(p.call, ms);
      p.times.push(perCall);
      p.calls.push(calls);
      p.load.push(meter());
    }
  }
}
