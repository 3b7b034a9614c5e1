// `npm run bench`: attnkit's WasmFlashAttention against its peers on the same work,
// in one run. Prints markdown tables, writes bench/results/wasm-bench.json, .md and
// wasm-gflops.svg. Peers are installed on demand into .bench-peers/ (gitignored), so
// `npm test` never downloads them.
//
//   node bench/run.mjs [--quick] [--no-ort] [--no-ruvector] [--no-native]
//                      [--wait-quiet SECONDS] [--out DIR] [--from-json FILE] [--only linear|sparse|decode|rank|int8]
//
// --quick: n = 256 and 1024, d = 64 only, written to bench/build/results-quick/.
// --only linear|sparse|decode|rank|int8 (or BENCH_ONLY=...): that part alone, written as <part>-bench.{json,md}
// to bench/build/results-only/, never over a full run's files.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  HEADS, attentionFlops, cpuMeter, engineWarmup, loadAverage, makeInputs, median, relativeError, runPlan, startRuntime, warmRuns,
} from './common.mjs';
import { benchLinear, linearReport } from './linear.mjs';
import { benchMultiHead, multiHeadReport } from './multihead.mjs';
import { benchSparse, sparseReport } from './sparse.mjs';
import { benchDecode, decodeReport } from './decode.mjs';
import { benchRank, rankReport } from './rank.mjs';
import { benchInt8, int8Report } from './int8.mjs';
import { buildProbe, runProbe } from './peak.mjs';
import { chartSvg } from './svg.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
const ROOT = join(BENCH, '..');
const PEERS_DIR = join(ROOT, '.bench-peers');
const PEERS = { 'onnxruntime-web': '1.30.0', '@ruvector/attention-wasm': '0.1.32' };

// ---------------------------------------------------------------- options
const argv = process.argv.slice(2);
const flag = (name) => argv.includes(name);
const option = (name, fallback) => {
  const i = argv.indexOf(name);
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback;
};
const QUICK = flag('--quick');
const ONLY = option('--only', process.env.BENCH_ONLY || undefined);
const OUT_DIR = option('--out', ONLY ? join(BENCH, 'build/results-only')
  : QUICK ? join(BENCH, 'build/results-quick') : join(BENCH, 'results'));
const WAIT_QUIET_S = Number(option('--wait-quiet', QUICK ? '0' : '240'));
const DIMS = QUICK ? [64] : [64, 128];
const SEQS = QUICK ? [256, 1024] : [256, 1024, 4096];
const BIG_SEQ = 16384;           // 2 threads, d = 64 only, one run (first call) each
const DO_BIG = !QUICK;
const CAUSALS = [false, true];

const T0 = performance.now();
const log = (msg) => process.stderr.write(`[${((performance.now() - T0) / 1000).toFixed(1).padStart(6)}s] ${msg}\n`);
const key = (dim, causal, seq) => `${dim}|${causal ? 'causal' : 'full'}|${seq}`;
const mib = (bytes) => bytes / (1024 * 1024);

// ---------------------------------------------------------------- setup
function sh(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20, ...opts });
  return { ok: r.status === 0, status: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '', error: r.error };
}

function ensureWasm() {
  const need = ['attnkit-simd-threads.wasm', 'attnkit-simd.wasm'].filter((f) => !existsSync(join(ROOT, 'dist/wasm', f)));
  if (need.length === 0) return;
  log('dist/wasm is missing: node scripts/build.mjs wasm');
  const r = spawnSync(process.execPath, ['scripts/build.mjs', 'wasm'], { cwd: ROOT, stdio: ['ignore', 2, 2] });
  if (r.status !== 0) throw new Error('building the WebAssembly variants failed (node scripts/build.mjs wasm)');
}

function peerVersion(name) {
  try {
    return JSON.parse(readFileSync(join(PEERS_DIR, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

function ensurePeers() {
  const missing = Object.entries(PEERS).filter(([name, v]) => peerVersion(name) !== v);
  if (missing.length === 0) return { installed: false };
  const specs = missing.map(([name, v]) => `${name}@${v}`);
  log(`installing peers into .bench-peers/: ${specs.join(' ')}`);
  const r = sh('npm', ['install', '--prefix', PEERS_DIR, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', ...specs]);
  if (!r.ok) log(`npm install failed (${r.status}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
  return { installed: true, ok: r.ok };
}

function ensureNative() {
  const dir = join(ROOT, 'build/native');
  if (!existsSync(join(dir, 'CMakeCache.txt'))) {
    log('configuring build/native (as scripts/build.mjs does)');
    const c = sh('cmake', ['-S', '.', '-B', 'build/native', '-DCMAKE_BUILD_TYPE=Release']);
    if (!c.ok) return { ok: false, error: `cmake configure failed: ${c.stderr.trim().split('\n').slice(-3).join(' | ')}` };
  }
  log('cmake --build build/native --target attn_bench_native');
  const b = sh('cmake', ['--build', 'build/native', '--target', 'attn_bench_native', '-j', String(os.availableParallelism())]);
  const exe = join(dir, 'attn_bench_native');
  if (!b.ok) {
    const why = `build failed: ${(b.stdout + b.stderr).trim().split('\n').filter((l) => /error/i.test(l)).slice(0, 3).join(' | ')}`;
    return existsSync(exe) ? { ok: true, exe, warning: `${why} (ran the existing binary)` } : { ok: false, error: why };
  }
  return { ok: true, exe };
}

function gitInfo() {
  const git = (...a) => sh('git', a).stdout.trim();
  return {
    commit: git('rev-parse', '--short', 'HEAD'),
    dirtyLibraryPaths: git('status', '--porcelain', '--', 'src', 'js', 'wasm', 'bindings', 'CMakeLists.txt')
      .split('\n').filter(Boolean),
  };
}

function machineInfo() {
  const cpu = os.cpus()[0]?.model ?? 'unknown';
  let flags = '';
  try {
    flags = readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '';
  } catch { /* not Linux */ }
  return {
    cpu,
    cores: os.availableParallelism(),
    avx2: /\bavx2\b/.test(flags),
    avx512f: /\bavx512f\b/.test(flags),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.type()} ${os.release()}`,
    niceness: os.getPriority(),
    autogroup: (() => {
      try {
        return readFileSync('/proc/self/autogroup', 'utf8').trim();
      } catch {
        return null;
      }
    })(),
  };
}

// Before each measurement group: wait (at most 45 s per group, WAIT_QUIET_S in all) for
// other processes to leave the CPUs mostly idle. Figures measured under load anyway are
// marked in the tables (the JSON keeps otherLoadCores per row).
const QUIET_THRESHOLD = 0.3;
const quiet = { budgetS: WAIT_QUIET_S, waitedS: 0, gates: [] };
async function quietGate(label) {
  if (quiet.budgetS <= 0) return;
  const sample = async () => {
    const m = cpuMeter();
    await new Promise((r) => setTimeout(r, 1000));
    return m() ?? 0;
  };
  const start = performance.now();
  let other = await sample();
  let said = false;
  while (other > QUIET_THRESHOLD && quiet.waitedS + (performance.now() - start) / 1000 < quiet.budgetS &&
         performance.now() - start < 45000) {
    if (!said) log(`${label}: other processes use ${other.toFixed(2)} cores; waiting for a quieter machine`);
    said = true;
    await new Promise((r) => setTimeout(r, 2000));
    other = await sample();
  }
  const waited = (performance.now() - start) / 1000;
  quiet.waitedS += waited;
  quiet.gates.push({ label, waitedS: Math.round(waited), otherLoadCores: other });
}

// ---------------------------------------------------------------- attnkit
const VARIANTS = [
  { id: 'attnkit-2t', label: 'attnkit ×2', long: 'attnkit simd-threads, 2 threads', variant: 'simd-threads', threads: 2 },
  { id: 'attnkit-1t', label: 'attnkit ×1', long: 'attnkit simd-threads, 1 thread', variant: 'simd-threads', threads: 1 },
  { id: 'attnkit-st', label: 'attnkit simd', long: 'attnkit simd (single-threaded build)', variant: 'simd', threads: 1 },
];

async function benchAttnkit(lib, results, outputs) {
  {
    const runtime = await startRuntime(lib, 'simd-threads', 2);
    const warm = [];
    for (const dim of DIMS) {
      for (const causal of CAUSALS) {
        const inputs = makeInputs(512, dim);
        const fa = new lib.WasmFlashAttention({ heads: HEADS, dim, causal, runtime });
        warm.push(await engineWarmup(() => fa.forward(inputs.q, inputs.k, inputs.v), 600));
        fa.dispose();
      }
    }
    log(`engine warm-up: ${warm.reduce((a, w) => a + w.calls, 0)} calls at n=512 in ` +
        `${(warm.reduce((a, w) => a + w.ms, 0) / 1000).toFixed(1)} s`);
  }
  for (const v of VARIANTS) {
    for (const dim of DIMS) {
      for (const causal of CAUSALS) {
        // A fresh runtime per (variant, d, mask): its heap starts small, so the heap
        // size after a call is the peak that call (or a smaller earlier one) needed.
        await quietGate(`${v.label} d=${dim} ${causal ? 'causal' : 'full'}`);
        const runtime = await startRuntime(lib, v.variant, v.threads);
        for (const seq of SEQS) {
          results[v.id][key(dim, causal, seq)] = measureAttnkit(lib, runtime, v, dim, causal, seq, outputs);
        }
      }
    }
  }
  if (!DO_BIG) return;
  const v = VARIANTS[0];
  for (const causal of CAUSALS) {
    await quietGate(`${v.label} n=${BIG_SEQ} ${causal ? 'causal' : 'full'}`);
    const runtime = await startRuntime(lib, v.variant, v.threads);
    results[v.id][key(64, causal, BIG_SEQ)] = measureAttnkit(lib, runtime, v, 64, causal, BIG_SEQ, outputs);
  }
}

function measureAttnkit(lib, runtime, v, dim, causal, seq, outputs) {
  const inputs = makeInputs(seq, dim);
  const fa = new lib.WasmFlashAttention({ heads: HEADS, dim, causal, runtime });
  const heapBefore = runtime.module.heapU8().byteLength;
  const meter = cpuMeter();
  const t0 = performance.now();
  const out = fa.forward(inputs.q, inputs.k, inputs.v);
  const firstCallMs = performance.now() - t0;
  if (seq === 256 && dim === 64) outputs[`${v.id}|${causal}`] = out;
  // The largest size runs once: its first call is the measurement.
  const times = seq >= BIG_SEQ ? [firstCallMs] : warmRuns(() => fa.forward(inputs.q, inputs.k, inputs.v), runPlan(seq));
  const medianMs = median(times);
  const heapBytes = runtime.module.heapU8().byteLength;
  const qkvoBytes = 4 * inputs.q.byteLength;
  const r = {
    ok: true, threads: v.threads, runs: times.length, medianMs, minMs: Math.min(...times), firstCallMs,
    firstCallNote: seq >= BIG_SEQ ? 'single call on a fresh runtime (engine warm)' : 'fresh instance, runtime warm',
    gflops: attentionFlops(seq, dim, causal) / medianMs / 1e6,
    heapBeforeBytes: heapBefore, heapBytes, qkvoBytes, heapOverQkvo: heapBytes / qkvoBytes,
    otherLoadCores: meter(),
  };
  fa.dispose();
  log(`${v.label.padEnd(13)} d=${dim} ${causal ? 'causal' : 'full  '} n=${String(seq).padEnd(5)} ` +
      `${r.gflops.toFixed(1).padStart(6)} GFLOP/s  median ${medianMs.toFixed(1)} ms (${times.length} runs), ` +
      `first ${firstCallMs.toFixed(1)} ms, heap ${mib(heapBytes).toFixed(0)} MiB` +
      (r.otherLoadCores ? `, other load ${r.otherLoadCores} cores` : ''));
  return r;
}

// True cold first calls, each in COLD_PROCESSES fresh processes: one process's first call
// is a single sample of compile, tier-up and page-fault timing, so the table shows the
// process with the median first/warm ratio and the range over all of them.
const COLD_PROCESSES = 3;

function coldProcess(c) {
  const meter = cpuMeter();
  const r = sh(process.execPath, [join(BENCH, 'cold_child.mjs'), JSON.stringify(c)], { timeout: 120000 });
  const line = r.stdout.trim().split('\n').pop();
  try {
    const res = { ...JSON.parse(line), id: c.id, otherLoadCores: meter() };
    return { ...res, ratio: res.firstCallMs / res.warmMedianMs };
  } catch {
    return { ...c, ok: false, error: (r.stderr || r.error?.message || 'no output').trim().split('\n').slice(-2).join(' | ') };
  }
}

async function benchCold() {
  const cases = [
    { variant: 'simd-threads', threads: 2, id: 'attnkit-2t', dim: 64, seq: 1024, causal: false },
    { variant: 'simd-threads', threads: 2, id: 'attnkit-2t', dim: 64, seq: 1024, causal: true },
    { variant: 'simd-threads', threads: 1, id: 'attnkit-1t', dim: 64, seq: 1024, causal: false },
    { variant: 'simd', threads: 1, id: 'attnkit-st', dim: 64, seq: 1024, causal: false },
  ];
  const all = [];
  for (const c of cases) {
    await quietGate(`cold ${c.id}`);
    const runs = Array.from({ length: COLD_PROCESSES }, () => coldProcess(c));
    const failed = runs.find((x) => !x.ok);
    if (failed) {
      log(`cold ${c.id}: failed: ${failed.error}`);
      all.push(failed);
      continue;
    }
    const byRatio = [...runs].sort((a, b) => a.ratio - b.ratio);
    const res = { ...byRatio[(byRatio.length - 1) >> 1], ratios: runs.map((x) => x.ratio), processes: runs.length };
    log(`cold ${c.id} d=${c.dim} ${c.causal ? 'causal' : 'full'} n=${c.seq}: first/warm ` +
        `${runs.map((x) => `${x.firstCallMs.toFixed(1)}/${x.warmMedianMs.toFixed(1)} ms`).join(', ')}; median x${res.ratio.toFixed(2)}`);
    all.push(res);
  }
  return all;
}

// ---------------------------------------------------------------- onnxruntime-web
// "failed to call OrtRun(). ERROR_CODE: 1, ERROR_MESSAGE: /long/path/safeint.h:17 static void
// SafeIntExceptionHandler<...>::SafeIntOnOverflow() Integer overflow" -> something readable.
export function shortOrtError(message) {
  const text = String(message ?? '');
  const code = text.match(/ERROR_CODE: (\d+)/)?.[1];
  let what = text.includes('ERROR_MESSAGE:') ? text.slice(text.indexOf('ERROR_MESSAGE:') + 14).trim() : text;
  if (/SafeIntOnOverflow/.test(what)) what = 'integer overflow in a buffer-size computation (SafeInt)';
  what = what.replace(/\S*\/\S+:\d+\s*/g, '').trim();
  return `${code ? `OrtRun error ${code}: ` : ''}${what}`.slice(0, 160);
}

async function benchOrt(results, dumpDir) {
  const info = { version: peerVersion('onnxruntime-web'), perThreadCount: {} };
  const seqs = [...SEQS, ...(DO_BIG ? [BIG_SEQ] : [])];
  for (const threads of [1, 2]) {
    const id = `ort-${threads}t`;
    const config = {
      peersDir: PEERS_DIR, threads, dumpDir, dump: threads === 1 ? { seq: 256, dim: 64 } : null,
      cases: DIMS.flatMap((dim) => CAUSALS.map((causal) => ({ dim, causal, seqs }))),
    };
    await quietGate(`onnxruntime-web ×${threads}`);
    const meter = cpuMeter();
    const t = performance.now();
    const r = sh(process.execPath, [join(BENCH, 'ort_child.mjs'), JSON.stringify(config)], { timeout: 480000 });
    const wallS = (performance.now() - t) / 1000;
    const line = r.stdout.trim().split('\n').pop();
    let parsed = null;
    try {
      parsed = JSON.parse(line);
    } catch { /* reported below */ }
    info.perThreadCount[threads] = { wallS, otherLoadCores: meter(), exit: r.status };
    if (!parsed?.ok) {
      const err = (r.stderr || r.error?.message || 'no output').trim().split('\n').slice(-2).join(' | ');
      log(`onnxruntime-web ${threads} thread(s): child failed: ${err}`);
      for (const c of config.cases) for (const seq of c.seqs) results[id][key(c.dim, c.causal, seq)] = { ok: false, error: err };
      continue;
    }
    for (const x of parsed.results) {
      if (!x.ok) x.errorShort = shortOrtError(x.error);
      x.threads = threads;
      results[id][key(x.dim, x.causal, x.seq)] = x;
      log(`ORT ×${threads} d=${x.dim} ${x.causal ? 'causal' : 'full  '} n=${String(x.seq).padEnd(5)} ` +
          (x.ok ? `${x.gflops.toFixed(1).padStart(6)} GFLOP/s  median ${x.medianMs.toFixed(1)} ms (${x.runs} runs)`
            : `fails: ${x.errorShort}`));
    }
  }
  return info;
}

// ---------------------------------------------------------------- ruvector
async function benchRuvectorAll(lib, results) {
  const { loadRuvector, benchRuvector } = await import('./ruvector.mjs');
  const ru = await loadRuvector(PEERS_DIR);
  const runtime = await startRuntime(lib, 'simd', 1);
  // [seq, dim, causal, samples (0 = every call)]
  const plan = QUICK
    ? [[256, 64, false, 64], [256, 64, true, 64], [1024, 64, false, 16]]
    : [[256, 64, false, 0], [256, 64, true, 64], [256, 128, false, 64], [256, 128, true, 64],
      [1024, 64, false, 16], [1024, 64, true, 16], [1024, 128, false, 16], [1024, 128, true, 16]];
  await quietGate('ruvector');
  for (const [seq, dim, causal, samples] of plan) {
    const inputs = makeInputs(seq, dim);
    const ours = new lib.WasmFlashAttention({ heads: HEADS, dim, causal, runtime }).forward(inputs.q, inputs.k, inputs.v);
    const meter = cpuMeter();
    const r = benchRuvector(ru, { seq, dim, causal, inputs, ours, samples });
    r.otherLoadCores = meter();
    r.threads = 1;
    results.ruvector[key(dim, causal, seq)] = r;
    log(`ruvector d=${dim} ${causal ? 'causal' : 'full  '} n=${String(seq).padEnd(5)} ${r.gflops.toFixed(4)} GFLOP/s ` +
        `(${r.extrapolated ? `extrapolated from ${r.calls} of ${r.callsTotal} calls` : `all ${r.calls} calls`}, ` +
        `${r.perCallMs.toFixed(2)} ms per call, est. ${(r.medianMs / 1000).toFixed(1)} s per forward), ` +
        `rel. err vs attnkit ${r.relErrVsAttnkit.toExponential(1)}`);
  }
  // Larger sizes: one call costs ~4x per 4x keys; a forward would take hours.
  for (const dim of DIMS) {
    for (const causal of CAUSALS) {
      const base = results.ruvector[key(dim, causal, 1024)] ?? results.ruvector[key(64, causal, 1024)];
      for (const seq of [4096, ...(DO_BIG ? [BIG_SEQ] : [])]) {
        if (!SEQS.includes(seq) && seq !== BIG_SEQ) continue;
        const estS = base ? (base.medianMs * (seq / 1024) ** 2) / 1000 : null;
        results.ruvector[key(dim, causal, seq)] = {
          ok: false, skipped: true,
          error: `skipped: est. ${estS ? `${(estS / 3600).toFixed(1)} h` : 'hours'} per forward`,
        };
      }
    }
  }
  return { version: ru.version };
}

// ---------------------------------------------------------------- native
async function benchNative(native, results) {
  if (!native.ok) return { ok: false, error: native.error };
  const seqs = [...SEQS, ...(DO_BIG ? [BIG_SEQ] : [])];
  const skip = DIMS.flatMap((d) => [`${d}:${BIG_SEQ}:1`, ...(d === 64 ? [] : [`${d}:${BIG_SEQ}:2`])]);
  const info = { ok: true, runs: [], warning: native.warning };
  // One process per thread count, so each gets its own measure of the other processes' load.
  for (const threads of [1, 2]) {
    await quietGate(`native ×${threads}`);
    const args = ['--heads', String(HEADS), '--dims', DIMS.join(','), '--seqs', seqs.join(','), '--threads', String(threads),
      '--causal', '0,1', '--min-ms', '300', '--max-runs', '15', '--skip', skip.join(',')];
    const meter = cpuMeter();
    const r = sh(native.exe, args, { timeout: 420000 });
    const run = { threads, args, exit: r.status, otherLoadCores: meter() };
    info.runs.push(run);
    for (const line of r.stdout.split('\n').filter(Boolean)) {
      let x;
      try {
        x = JSON.parse(line);
      } catch {
        continue;
      }
      if (x.kind === 'info') Object.assign(info, { backend: x.backend, hardwareThreads: x.hardware_threads });
      if (x.kind !== 'result' && x.kind !== 'error') continue;
      const id = `native-${x.threads}t`;
      const k = key(x.dim, x.causal, x.seq);
      results[id][k] = x.kind === 'result'
        ? { ok: true, threads: x.threads, runs: x.runs, medianMs: x.medianMs, minMs: x.minMs, firstCallMs: x.firstCallMs,
          gflops: attentionFlops(x.seq, x.dim, x.causal) / x.medianMs / 1e6, backend: x.backend,
          otherLoadCores: run.otherLoadCores }  // one meter for the whole process
        : { ok: false, threads: x.threads, error: x.error };
      if (x.kind === 'result') {
        log(`native ${x.backend} ×${x.threads} d=${x.dim} ${x.causal ? 'causal' : 'full  '} n=${String(x.seq).padEnd(5)} ` +
            `${results[id][k].gflops.toFixed(1).padStart(6)} GFLOP/s (${x.runs} runs)`);
      }
    }
    if (!r.ok) {
      info.ok = false;
      info.error = `exit ${r.status}: ${r.stderr.trim().split('\n').slice(-2).join(' | ')}`;
    }
  }
  return info;
}

// ---------------------------------------------------------------- report
const f1 = (x) => (x === undefined || x === null || !Number.isFinite(x) ? '—' : x >= 100 ? x.toFixed(0) : x.toFixed(1));
const fx = (x) => (Number.isFinite(x) ? `${x.toFixed(2)}x` : '—');
const pct = (x) => (Number.isFinite(x) ? `${(100 * x).toFixed(0)}%` : '—');

// A figure counts as disturbed when other processes took CPU that the measurement
// needed: more than QUIET_THRESHOLD of the cores it did not leave free.
let CORES = os.availableParallelism();
const loaded = (r) => Number.isFinite(r?.otherLoadCores) &&
  r.otherLoadCores > Math.max(0, CORES - (r.threads ?? CORES)) + QUIET_THRESHOLD;
function annotateThreads(data) {
  CORES = data.machine.cores;
  for (const [id, rows] of Object.entries(data.results)) {
    const threads = /-2t$/.test(id) ? 2 : 1;
    for (const r of Object.values(rows)) if (r && r.threads === undefined) r.threads = threads;
  }
}
function cell(r, digits) {
  if (!r) return '—';
  if (!r.ok) return r.skipped ? '—' : 'fails';
  const mark = loaded(r) ? ' †' : '';
  if (digits === 'small') return `${r.gflops < 0.1 ? r.gflops.toFixed(4) : r.gflops.toFixed(2)}${r.extrapolated ? ' (est.)' : ''}${mark}`;
  return `${f1(r.gflops)}${mark}`;
}

function mdTable(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

// Other processes' CPU use during the measurements, by thread count of the measurement.
function loadSummary(data) {
  const rows = Object.values(data.results).flatMap((m) => Object.values(m)).filter((r) => Number.isFinite(r?.otherLoadCores));
  const part = (t) => {
    const xs = rows.filter((r) => r.threads === t).map((r) => r.otherLoadCores);
    return xs.length ? `${median(xs).toFixed(2)} (max ${Math.max(...xs).toFixed(2)})` : '?';
  };
  return `Other processes shared the machine: they used a median of ${part(2)} cores during the 2-thread ` +
    `measurements and ${part(1)} during the 1-thread ones (where one core is free for them).`;
}

function buildReport(data) {
  annotateThreads(data);
  const R = data.results;
  const peak1 = data.peak.oneCore;
  const peak2 = data.peak.twoCores;
  const allSeqs = data.shapes.seqs;
  const dims = data.shapes.dims;
  const lines = [];
  lines.push(`# attnkit WASM flash-attention benchmark`);
  lines.push('');
  lines.push(`${data.machine.cpu}, ${data.machine.cores} cores, ${data.machine.node} (V8 ${data.machine.v8}); ` +
    `${data.when}${data.machine.niceness ? `; bench ran at nice ${data.machine.niceness}` : ''}${/nice -/.test(data.machine.autogroup ?? '') ? ` (${data.machine.autogroup})` : ''}; attnkit ${data.git.commit}${data.git.dirtyLibraryPaths.length ? ' + uncommitted library edits' : ''}; ` +
    `8 heads, batch 1, fp32. GFLOP/s = 4·n²·d·heads / median time (halved for causal).`);
  lines.push(`WASM SIMD128 mul+add peak (12 f32x4 chains, best window): ${peak1.toFixed(1)} GFLOP/s on 1 core, ` +
    `${peak2.toFixed(1)} on 2 cores. ${loadSummary(data)}`);
  lines.push('');
  lines.push('## GFLOP/s');
  lines.push('');
  const header = ['d', 'mask', 'n', 'attnkit ×2', 'attnkit ×1', 'attnkit simd', 'ORT ×2', 'ORT ×1', '×2 / ORT ×2',
    '×1 / ORT ×1', '×2 % 2-core peak', '×1 % 1-core peak', 'native ×2', 'native ×1', 'ruvector'];
  const rows = [];
  for (const dim of dims) {
    for (const causal of CAUSALS) {
      for (const seq of allSeqs) {
        const k = key(dim, causal, seq);
        const a2 = R['attnkit-2t'][k];
        const a1 = R['attnkit-1t'][k];
        const o2 = R['ort-2t'][k];
        const o1 = R['ort-1t'][k];
        if (!a2 && !a1 && !R['native-2t'][k]) continue;
        const ratio = (a, o) => (a?.ok && o?.ok ? `${fx(a.gflops / o.gflops)}${loaded(a) || loaded(o) ? ' †' : ''}` : o && !o.ok && !o.skipped ? 'ORT fails' : '—');
        const frac = (a, p) => (a?.ok ? `${pct(a.gflops / p)}${loaded(a) ? ' †' : ''}` : '—');
        rows.push([dim, causal ? 'causal' : 'full', seq, cell(a2), cell(a1), cell(R['attnkit-st'][k]), cell(o2), cell(o1),
          ratio(a2, o2), ratio(a1, o1), frac(a2, peak2), frac(a1, peak1),
          cell(R['native-2t'][k]), cell(R['native-1t'][k]), cell(R.ruvector[k], 'small')]);
      }
    }
  }
  lines.push(mdTable(header, rows));
  lines.push('');
  lines.push(`native = tests/bench/bench_native.cpp on the ${data.native.backend ?? '?'} backend of this build ` +
    `(this CPU: AVX2 ${data.machine.avx2 ? 'yes' : 'no'}, AVX-512 ${data.machine.avx512f ? 'yes' : 'no'}). ` +
    `"(est.)": ruvector timed on a sample of its per-query calls and extrapolated. "—": not run (see skipped). ` +
    `"†": other processes took more than ${QUIET_THRESHOLD} of a core that this figure's threads needed while it was measured ` +
    (data.load.waitBudgetS > 0 ? `(the bench waited up to 45 s per group, ${data.load.waitBudgetS} s in all, for a quiet machine; ` +
      `it waited ${data.load.waitedForQuietS} s).` : '(waiting for a quiet machine was off: --wait-quiet 0).'));
  lines.push('');
  lines.push('## attnkit ×2: time, first call, heap');
  lines.push('');
  const rows2 = [];
  for (const dim of dims) {
    for (const causal of CAUSALS) {
      for (const seq of allSeqs) {
        const r = R['attnkit-2t'][key(dim, causal, seq)];
        if (!r?.ok) continue;
        rows2.push([dim, causal ? 'causal' : 'full', seq, r.medianMs.toFixed(1), r.runs, r.firstCallMs.toFixed(1),
          fx(r.firstCallMs / r.medianMs), mib(r.heapBytes).toFixed(1), mib(r.qkvoBytes).toFixed(1), fx(r.heapOverQkvo),
          r.otherLoadCores ?? '?']);
      }
    }
  }
  lines.push(mdTable(['d', 'mask', 'n', 'median ms', 'runs', 'first call ms', 'first / warm', 'heap MiB', 'Q+K+V+O MiB',
    'heap / QKVO', 'other load (cores)'], rows2));
  lines.push('');
  lines.push('First call here: a fresh WasmFlashAttention (n = 16384: a fresh runtime) in a process whose V8 has already ' +
    'compiled and tiered up the module. Truly cold calls (fresh process, fresh runtime; each case in ' +
    `${COLD_PROCESSES} processes, the one with the median first/warm ratio shown, with the range):`);
  lines.push('');
  const ratioRange = (c) => (c.ratios?.length > 1
    ? ` (${fx(Math.min(...c.ratios))}–${fx(Math.max(...c.ratios))})` : '');
  lines.push(mdTable(['variant', 'd', 'mask', 'n', 'runtime start ms', 'first call ms', 'warm median ms', 'first / warm'],
    data.cold.map((c) => [c.id, c.dim, c.causal ? 'causal' : 'full', c.seq, c.ok ? c.runtimeMs.toFixed(0) : 'fails',
      c.ok ? c.firstCallMs.toFixed(1) : '—', c.ok ? c.warmMedianMs.toFixed(1) : '—', c.ok ? fx(c.ratio) + ratioRange(c) : '—'])));
  lines.push('');
  if (data.multihead) lines.push(...multiHeadReport(data.multihead, mdTable));
  if (data.linear) lines.push(...linearReport(data.linear, mdTable));
  if (data.sparse) lines.push(...sparseReport(data.sparse, mdTable));
  if (data.decode) lines.push(...decodeReport(data.decode, mdTable));
  if (data.rank) lines.push(...rankReport(data.rank, mdTable));
  if (data.int8) lines.push(...int8Report(data.int8, mdTable));
  lines.push('## Targets (issue 3)');
  lines.push('');
  lines.push(mdTable(['target', 'measured', 'result'], data.targets.map((t) => [t.target, t.measured, t.result])));
  lines.push('');
  lines.push('## Checks and notes');
  lines.push('');
  for (const n of data.notes) lines.push(`- ${n}`);
  if (data.skipped.length) {
    lines.push('');
    lines.push('Skipped:');
    for (const s of data.skipped) lines.push(`- ${s}`);
  }
  return lines.join('\n');
}

function evaluateTargets(data) {
  annotateThreads(data);
  const R = data.results;
  const T = [];
  const peak2 = data.peak.twoCores;
  const add = (target, measured, pass, ...rows) => T.push({
    target,
    measured: `${measured}${rows.some(loaded) ? ' (†: measured while other processes were busy)' : ''}`,
    result: pass === null ? 'n/a' : pass ? 'PASS' : 'FAIL',
  });
  for (const seq of [1024, 4096]) {
    const a = R['attnkit-2t'][key(64, false, seq)];
    const o = R['ort-2t'][key(64, false, seq)];
    if (!a?.ok) {
      add(`non-causal n=${seq}, 2 threads: ≥ 1.5x onnxruntime-web`, 'not measured', false);
      add(`non-causal n=${seq}, 2 threads: ≥ 65% of 2-core peak`, 'not measured', false);
      continue;
    }
    if (o?.ok) {
      const x = a.gflops / o.gflops;
      add(`non-causal n=${seq}, 2 threads: ≥ 1.5x onnxruntime-web`, `${f1(a.gflops)} vs ${f1(o.gflops)} GFLOP/s = ${fx(x)}`, x >= 1.5, a, o);
    } else {
      add(`non-causal n=${seq}, 2 threads: ≥ 1.5x onnxruntime-web`,
        `ORT fails at this size (${o?.errorShort ?? shortOrtError(o?.error ?? 'not run')}); attnkit ${f1(a.gflops)} GFLOP/s`, null, a);
    }
    const fr = a.gflops / peak2;
    add(`non-causal n=${seq}, 2 threads: ≥ 65% of 2-core peak`, `${f1(a.gflops)} / ${f1(peak2)} = ${pct(fr)}`, fr >= 0.65, a);
  }
  {
    const c = R['attnkit-2t'][key(64, true, 4096)];
    const f = R['attnkit-2t'][key(64, false, 4096)];
    if (c?.ok && f?.ok) {
      const x = f.medianMs / c.medianMs;
      add('causal n=4096 ≥ 1.8x faster than non-causal (2 threads, d=64)', `${f.medianMs.toFixed(0)} ms / ${c.medianMs.toFixed(0)} ms = ${fx(x)}`, x >= 1.8, f, c);
    } else add('causal n=4096 ≥ 1.8x faster than non-causal', 'not measured', false);
  }
  {
    const a2 = R['attnkit-2t'][key(64, false, 4096)];
    const a1 = R['attnkit-1t'][key(64, false, 4096)];
    if (a2?.ok && a1?.ok) {
      const x = a2.gflops / a1.gflops;
      add('2 threads ≥ 1.8x 1 thread at n=4096 (non-causal, d=64)', `${f1(a2.gflops)} / ${f1(a1.gflops)} GFLOP/s = ${fx(x)}`, x >= 1.8, a2, a1);
    } else add('2 threads ≥ 1.8x 1 thread at n=4096', 'not measured', false);
  }
  for (const causal of CAUSALS) {
    const r = R['attnkit-2t'][key(64, causal, BIG_SEQ)];
    if (r?.ok) {
      add(`n=16384 (${causal ? 'causal' : 'non-causal'}, d=64): peak heap < 3x Q+K+V+O`,
        `${mib(r.heapBytes).toFixed(0)} MiB / ${mib(r.qkvoBytes).toFixed(0)} MiB = ${fx(r.heapOverQkvo)}`, r.heapOverQkvo < 3);
    } else add(`n=16384 (${causal ? 'causal' : 'non-causal'}): peak heap < 3x Q+K+V+O`, r ? `fails: ${r.error}` : 'not run', r ? false : null);
  }
  for (const c of data.cold.filter((x) => x.id === 'attnkit-2t')) {
    add(`first call ≤ 2x warm at n=1024 (fresh process, 2 threads, ${c.causal ? 'causal' : 'non-causal'})`,
      c.ok ? `${c.firstCallMs.toFixed(1)} ms / ${c.warmMedianMs.toFixed(1)} ms = ${fx(c.ratio)}` +
        (c.ratios?.length > 1 ? ` (median of ${c.ratios.length} processes: ${c.ratios.map(fx).join(', ')})` : '')
        : `fails: ${c.error}`,
      c.ok ? c.ratio <= 2 : false, c);
  }
  {
    const n2 = R['native-2t'][key(64, false, 1024)];
    add('native AVX2/AVX-512 GFLOP/s reported beside the WASM figures',
      n2?.ok ? `${data.native.backend}: ${f1(n2.gflops)} GFLOP/s at n=1024 (2 threads)` : `not available: ${data.native.error ?? 'no result'}`,
      Boolean(n2?.ok));
  }
  return T;
}

// ---------------------------------------------------------------- main
// --from-json FILE: redraw the tables and the chart from a saved run (no measuring).
function rerender(file) {
  const data = JSON.parse(readFileSync(file, 'utf8'));
  data.targets = evaluateTargets(data);
  data.notes = data.notes.filter((n) => !/^(Other processes were using CPU|Some figures \(marked †\))/.test(n));
  if (Object.values(data.results).some((m) => Object.values(m).some(loaded))) {
    data.notes.push('Some figures (marked †) were measured while other processes took CPU time they needed ' +
      '(per-row otherLoadCores in the JSON); those figures are lower than on an idle machine.');
  }
  data.rerendered = new Date().toISOString();
  writeFileSync(join(OUT_DIR, 'wasm-bench.json'), `${JSON.stringify(data, null, 1)}\n`);
  const report = buildReport(data);
  writeFileSync(join(OUT_DIR, 'wasm-bench.md'), `${report}\n`);
  writeFileSync(join(OUT_DIR, 'wasm-gflops.svg'), chart(data));
  process.stdout.write(`${report}\n`);
}

// --only PART: one part of the run, with the same quiet-machine gate, in files of its own.
const PARTS = {
  linear: { label: 'linear attention', run: (lib) => benchLinear(lib, log), report: linearReport },
  sparse: { label: 'ASAM sparse attention', run: (lib) => benchSparse(lib, log), report: sparseReport },
  decode: { label: 'KV-cache decode', run: (lib) => benchDecode(lib, log), report: decodeReport },
  rank: { label: 'adaptive rank attention', run: (lib) => benchRank(lib, log), report: rankReport },
  int8: { label: 'int8 projections', run: (lib) => benchInt8(lib, log), report: int8Report },
};

async function runOnly(name) {
  const part = PARTS[name];
  if (!part) throw new Error(`--only / BENCH_ONLY: unknown part "${name}" (known: ${Object.keys(PARTS).join(', ')})`);
  ensureWasm();
  const lib = await import('../js/index.js');
  const data = {
    schema: 1, only: name, when: new Date().toISOString(), machine: machineInfo(), git: gitInfo(),
    load: { loadAverageStart: loadAverage() },
  };
  await quietGate(part.label);
  log(`attnkit: ${part.label} only`);
  data[name] = await part.run(lib);
  data.load.loadAverageEnd = loadAverage();
  data.load.quietGates = quiet.gates;
  data.totalSeconds = Math.round((performance.now() - T0) / 1000);
  const dirty = data.git.dirtyLibraryPaths.length ? ', library files modified' : '';
  const report = [`# attnkit bench: ${part.label} only (${data.when}, commit ${data.git.commit}${dirty})`, '',
    ...part.report(data[name], mdTable)].join('\n');
  writeFileSync(join(OUT_DIR, `${name}-bench.json`), `${JSON.stringify(data, null, 1)}\n`);
  writeFileSync(join(OUT_DIR, `${name}-bench.md`), `${report}\n`);
  process.stdout.write(`\n${report}\nwrote ${relative(ROOT, OUT_DIR)}/${name}-bench.{json,md} in ${data.totalSeconds} s\n`);
}

async function main() {
  mkdirSync(OUT_DIR, { recursive: true });
  if (option('--from-json')) return rerender(option('--from-json'));
  if (ONLY) return runOnly(ONLY);
  mkdirSync(join(BENCH, 'build'), { recursive: true });
  const notes = [];
  const skipped = [];
  ensureWasm();
  const peers = flag('--no-ort') && flag('--no-ruvector') ? { installed: false } : ensurePeers();
  const probe = buildProbe(BENCH);
  if (probe.built) log(`built ${relative(ROOT, probe.wasm)}: ${probe.command.replace(ROOT + '/', '')}`);
  const native = flag('--no-native') ? { ok: false, error: 'disabled (--no-native)' } : ensureNative();

  const data = {
    schema: 1,
    when: new Date().toISOString(),
    quick: QUICK,
    machine: machineInfo(),
    git: gitInfo(),
    wasm: Object.fromEntries(['attnkit-simd-threads.wasm', 'attnkit-simd.wasm'].map((f) => {
      const st = statSync(join(ROOT, 'dist/wasm', f));
      return [f, { bytes: st.size, mtime: st.mtime.toISOString() }];
    })),
    shapes: { heads: HEADS, dims: DIMS, seqs: [...SEQS, ...(DO_BIG ? [BIG_SEQ] : [])], batch: 1, dtype: 'float32' },
    flopsFormula: '4*n^2*d*heads, halved for causal',
    load: { loadAverageStart: loadAverage() },
    results: {
      'attnkit-2t': {}, 'attnkit-1t': {}, 'attnkit-st': {}, 'ort-2t': {}, 'ort-1t': {}, ruvector: {},
      'native-2t': {}, 'native-1t': {},
    },
  };

  // Peak probe, before and after the measurements; the best window counts.
  await quietGate('peak probe');
  log('peak probe: 1 and 2 worker threads');
  const peakRuns = [await runProbe(probe.wasm, 1), await runProbe(probe.wasm, 2)];

  log('attnkit');
  const lib = await import('../js/index.js');
  const outputs = {};
  await benchAttnkit(lib, data.results, outputs);
  for (const id of ['attnkit-1t', 'attnkit-st']) {
    for (const causal of CAUSALS) {
      const a = outputs[`attnkit-2t|${causal}`];
      const b = outputs[`${id}|${causal}`];
      if (a && b) notes.push(`${id} output vs attnkit-2t (n=256, d=64, ${causal ? 'causal' : 'full'}): rel. error ${relativeError(b, a).toExponential(1)}.`);
    }
  }

  if (!QUICK) {
    await quietGate('linear attention');
    log('attnkit: linear attention');
    data.linear = await benchLinear(lib, log);
  }

  if (!QUICK) {
    await quietGate('ASAM sparse attention');
    log('attnkit: ASAM sparse attention');
    data.sparse = await benchSparse(lib, log);
  }

  if (!QUICK) {
    await quietGate('KV-cache decode');
    log('attnkit: KV-cache decode');
    data.decode = await benchDecode(lib, log);
  }

  if (!QUICK) {
    await quietGate('adaptive rank attention');
    log('attnkit: adaptive rank attention');
    data.rank = await benchRank(lib, log);
    await quietGate('int8 projections');
    log('attnkit: int8 projections');
    data.int8 = await benchInt8(lib, log);
  }

  if (!QUICK) {
    await quietGate('multi-head attention');
    log('multi-head attention layer: attnkit and onnxruntime-web');
    data.multihead = await benchMultiHead(lib, {
      peersDir: PEERS_DIR, ortAvailable: !flag('--no-ort') && Boolean(peerVersion('onnxruntime-web')), log,
      dumpDir: join(BENCH, 'build'),
    });
  }

  log('attnkit: cold first calls in fresh processes');
  data.cold = await benchCold();

  if (!flag('--no-ort') && peerVersion('onnxruntime-web')) {
    log('onnxruntime-web (one child process per thread count)');
    data.ort = await benchOrt(data.results, join(BENCH, 'build'));
    for (const causal of CAUSALS) {
      const file = join(BENCH, 'build', `ort-out-256-64-${causal ? 'causal' : 'full'}.f32`);
      const ours = outputs[`attnkit-2t|${causal}`];
      if (existsSync(file) && ours) {
        const b = readFileSync(file);
        const err = relativeError(new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4), ours);
        data.ort[`relErrVsAttnkit_${causal ? 'causal' : 'full'}`] = err;
        notes.push(`Same work: onnxruntime-web MultiHeadAttention output vs attnkit (n=256, d=64, ` +
          `${causal ? 'causal via unidirectional=1' : 'non-causal'}): relative L2 error ${err.toExponential(1)}.`);
      }
    }
    notes.push('onnxruntime-web reads env.wasm.numThreads only when it first initializes its WebAssembly module ' +
      '(initializeWebAssembly() runs once; OrtInit(numThreads) builds the global thread pool; a new session after ' +
      'changing it starts no new threads), so each thread count ran in its own child process (bench/ort_child.mjs) ' +
      'and the results were merged.');
    notes.push('onnxruntime-web: one InferenceSession per (d, causal) on a one-node model built in code ' +
      '(bench/onnx_model.mjs: ir_version 8, opsets ai.onnx 17 + com.microsoft 1, com.microsoft.MultiHeadAttention, ' +
      'num_heads=8, unidirectional=1 for causal, inputs [batch, seq, 8·d] with symbolic dims). Its times include ' +
      'the copy of the inputs into its heap, as attnkit\'s include forward()\'s copies.');
  } else {
    skipped.push(`onnxruntime-web: ${flag('--no-ort') ? 'disabled (--no-ort)' : 'not installed (npm install into .bench-peers failed)'}`);
  }

  if (!flag('--no-ruvector') && peerVersion('@ruvector/attention-wasm')) {
    log('@ruvector/attention-wasm');
    data.ruvectorInfo = await benchRuvectorAll(lib, data.results);
    notes.push('@ruvector/attention-wasm: loaded with initSync({ module: bytes }) (its default init would fetch() ' +
      'a file URL under Node); WasmFlashAttention(dim, 64).compute(query, keys[], values[]) once per (query, head), ' +
      'keys/values as arrays of Float32Array rows of that head (causal: the first i+1). Outputs checked against ' +
      'attnkit on the timed calls (rel. errors in the JSON).');
  } else {
    skipped.push('@ruvector/attention-wasm: disabled or not installed');
  }

  if (!flag('--no-native')) {
    log('native (build/native/attn_bench_native)');
    data.native = await benchNative(native, data.results);
    if (data.native.warning) notes.push(`native: ${data.native.warning}`);
  } else {
    data.native = { ok: false, error: 'disabled (--no-native)' };
  }

  await quietGate('peak probe (again)');
  log('peak probe again');
  peakRuns.push(await runProbe(probe.wasm, 1), await runProbe(probe.wasm, 2));
  data.peak = {
    source: 'bench/peak_probe.cpp, 12 independent f32x4 mul+add chains, 5 windows of 300 ms per run, ' +
      'N worker_threads concurrently (summed), run before and after the measurements; best window',
    runs: peakRuns,
    oneCore: Math.max(...peakRuns.filter((p) => p.threads === 1).map((p) => p.best)),
    twoCores: Math.max(...peakRuns.filter((p) => p.threads === 2).map((p) => p.best)),
  };

  // Background load summary.
  const loads = Object.values(data.results).flatMap((m) => Object.values(m)).map((r) => r?.otherLoadCores)
    .filter((x) => Number.isFinite(x));
  data.load.otherLoadCoresMedian = loads.length ? Math.round(median(loads) * 100) / 100 : null;
  data.load.otherLoadCoresMax = loads.length ? Math.max(...loads) : null;
  data.load.loadAverageEnd = loadAverage();
  data.load.quietGates = quiet.gates;
  data.load.waitedForQuietS = Math.round(quiet.waitedS);
  data.load.waitBudgetS = WAIT_QUIET_S;
  annotateThreads(data);
  if (Object.values(data.results).some((m) => Object.values(m).some(loaded))) {
    notes.push('Some figures (marked †) were measured while other processes took CPU time they needed ' +
      '(per-row otherLoadCores in the JSON); those figures are lower than on an idle machine.');
  }

  skipped.push(...[
    DO_BIG && `n=${BIG_SEQ}: attnkit only with 2 threads and d=64 (one call each, on a fresh runtime); native with 2 threads and d=64; ` +
      'attnkit ×1 / simd, d=128 not run (a call takes tens of seconds)',
    !QUICK && 'Repetitions: n=256 ≥ 10 runs (≥ 300 ms), n=1024 ≥ 5 (≥ 800 ms), n=4096 3, n=16384 1; medians reported',
    'Warm figures are steady state: attnkit (2.4 s at n=512, both d, causal and not) and each onnxruntime-web child ' +
      '(2.4 s at n=512, d=64) first make untimed calls while V8 tiers the WebAssembly up; before that, the first ' +
      'dozen calls of a process run 10-40% slower on 2 cores (TurboFan compiles on background threads)',
    '@ruvector/attention-wasm: n ≥ 4096 not run (hours per forward); n=256 d=64 non-causal timed on every call, the other sizes on 64 (n=256) or 16 (n=1024) evenly spaced calls, extrapolated',
  ].filter(Boolean));

  if (startRuntime.fallbacks) {
    notes.push(`createRuntime({ variant: 'simd-threads', numThreads: 1 }) did not settle (${startRuntime.fallbacks} time(s)); ` +
      'those 1-thread runtimes were started with 2 threads and set to 1 with setNumThreads(1).');
  }
  if (data.machine.niceness < 0 || /nice -\d/.test(data.machine.autogroup ?? '')) {
    notes.push(`This run had raised CPU priority (${data.machine.autogroup ?? ''}, process nice ${data.machine.niceness}): ` +
      'other sessions were running test suites on the same cores, and at equal priority the 2-thread figures ' +
      'measured one core\'s worth. What the other processes still got during each measurement is otherLoadCores ' +
      'in the JSON (and † in the tables).');
  }
  data.targets = evaluateTargets(data);
  data.notes = notes;
  data.skipped = skipped;
  data.totalSeconds = Math.round((performance.now() - T0) / 1000);

  const report = buildReport(data);
  writeFileSync(join(OUT_DIR, 'wasm-bench.json'), `${JSON.stringify(data, null, 1)}\n`);
  writeFileSync(join(OUT_DIR, 'wasm-bench.md'), `${report}\n`);
  writeFileSync(join(OUT_DIR, 'wasm-gflops.svg'), chart(data));
  process.stdout.write(`\n${report}\n\nwrote ${relative(ROOT, OUT_DIR)}/wasm-bench.{json,md}, wasm-gflops.svg in ${data.totalSeconds} s\n`);
}

function chart(data) {
  const R = data.results;
  const pts = (id, opts = {}) => Object.entries(R[id]).filter(([, r]) => r?.ok).map(([k, r]) => {
    const [dim, mask, seq] = k.split('|');
    return { dim: Number(dim), causal: mask === 'causal', seq: Number(seq), gflops: r.gflops, hollow: r.extrapolated, ...opts };
  });
  const series = [
    { id: 'attnkit-2t', label: 'attnkit simd-threads ×2', color: '#1f5fbf', width: 3, marker: 'circle', points: pts('attnkit-2t') },
    { id: 'attnkit-1t', label: 'attnkit simd-threads ×1', color: '#1f5fbf', dash: '6,4', marker: 'circle', points: pts('attnkit-1t') },
    { id: 'attnkit-st', label: 'attnkit simd (1 thread build)', color: '#7fa8e6', dash: '2,3', marker: 'square', points: pts('attnkit-st') },
    { id: 'ort-2t', label: 'onnxruntime-web wasm ×2', color: '#e07b00', width: 2.5, marker: 'diamond', points: pts('ort-2t') },
    { id: 'ort-1t', label: 'onnxruntime-web wasm ×1', color: '#e07b00', dash: '6,4', marker: 'diamond', points: pts('ort-1t') },
    { id: 'native-2t', label: `native ${data.native?.backend ?? ''} ×2`, color: '#2e9e44', width: 2, marker: 'triangle', points: pts('native-2t') },
    { id: 'native-1t', label: `native ${data.native?.backend ?? ''} ×1`, color: '#2e9e44', dash: '6,4', marker: 'triangle', points: pts('native-1t') },
    { id: 'ruvector', label: '@ruvector/attention-wasm (at the bottom)', short: 'ruvector ', offScale: true, color: '#c0392b', marker: 'circle', points: pts('ruvector') },
  ];
  const failures = [];
  for (const [id, slot] of [['ort-2t', 0], ['ort-1t', 1]]) {
    for (const [k, r] of Object.entries(R[id])) {
      if (r && !r.ok && !r.skipped) {
        const [dim, mask, seq] = k.split('|');
        failures.push({ dim: Number(dim), causal: mask === 'causal', seq: Number(seq), slot, color: '#e07b00', label: `ORT ×${id[4]} fails` });
      }
    }
  }
  const panels = data.shapes.dims.flatMap((dim) => CAUSALS.map((causal) => ({ dim, causal, title: `head dim ${dim}, ${causal ? 'causal' : 'non-causal'}` })));
  return chartSvg({
    title: 'Flash-attention forward, 8 heads, fp32: GFLOP/s vs sequence length',
    subtitle: `${data.machine.cpu}, ${data.machine.cores} cores, Node ${data.machine.node}, ${data.when.slice(0, 10)}; ` +
      `4·n²·d·heads (halved for causal) / median time; ✕ = fails at that size`,
    panels,
    series,
    refs: [
      { label: 'SIMD128 mul+add peak, 1 core', short: 'SIMD128 peak, 1 core', value: data.peak.oneCore, color: '#777' },
      { label: 'SIMD128 mul+add peak, 2 cores', short: 'SIMD128 peak, 2 cores', value: data.peak.twoCores, color: '#333' },
    ],
    failures,
    seqs: data.shapes.seqs,
  });
}

main().then(() => process.exit(0), (err) => {
  console.error(err);
  process.exit(1);
});
