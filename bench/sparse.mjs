// The ASAM part of `npm run bench`: WasmSparseAttention's patterns against dense
// WasmFlashAttention on the same inputs (2 threads, 8 heads, d = 64, n = 4096, the seed's
// defaults: window 128, stride 32, block 64, scales 4/16/64), and the local pattern at
// n = 65536 on a fresh runtime for its heap. Issue 6's targets: local ≥ 8x faster than dense
// flash, strided and hierarchical ≥ 3x; heap at n = 65536 a few times the inputs.
//
// Each figure is the median of trials of ≥ 1 s of calls; the trials go round dense and the
// patterns in turn, so a slow spell of the shared machine lands on all of them. A time is
// one forward call, copies of Q, K, V into the heap and a new output array included, for
// dense and sparse alike.
import { HEADS, engineWarmup, fillRandom, makeInputs, median, roundRobinTrials, startRuntime } from './common.mjs';

const DIM = 64;
const SEQ = 4096;
const BIG_SEQ = 65536;
const TRIALS = 5;
const TRIAL_MS = 1000;
const PATTERNS = ['local', 'strided', 'hierarchical', 'random', 'clustered'];
const NUM_CLUSTERS = 32;
const TARGETS = { local: 8, strided: 3, hierarchical: 3 };

export async function benchSparse(lib, log) {
  const runtime = await startRuntime(lib, 'simd-threads', 2);
  const { q, k, v } = makeInputs(SEQ, DIM);
  const centroids = new Float32Array(HEADS * NUM_CLUSTERS * DIM);
  fillRandom(centroids, 99);
  const dense = new lib.WasmFlashAttention({ heads: HEADS, dim: DIM, runtime });
  const sparse = Object.fromEntries(PATTERNS.map((pattern) => [pattern,
    new lib.WasmSparseAttention({ heads: HEADS, headDim: DIM, pattern, numClusters: NUM_CLUSTERS, runtime })]));
  const plan = [
    { name: 'dense flash', call: () => dense.forward(q, k, v) },
    ...PATTERNS.map((pattern) => ({ name: pattern, call: () => sparse[pattern].forward(q, k, v, { centroids }) })),
  ];
  await engineWarmup(plan[1].call, 1500);
  for (const p of plan) p.call();
  roundRobinTrials(plan, TRIALS, TRIAL_MS);
  const denseMs = median(plan[0].times);
  const rows = plan.map((p) => {
    const ms = median(p.times);
    const stats = p.name === 'dense flash' ? null : sparse[p.name].lastStats;
    const row = {
      name: p.name, medianMs: ms, trialMs: p.times, speedup: denseMs / ms, target: TARGETS[p.name] ?? null,
      sparseRatio: stats?.sparseRatio ?? null, visitedBlocks: stats?.visitedBlocks ?? null,
      denseBlocks: stats?.denseBlocks ?? null, otherLoadCores: p.load,
    };
    log(`sparse ${p.name.padEnd(12)} n=${SEQ} ${ms.toFixed(1)} ms, ${row.speedup.toFixed(2)}x dense` +
        (stats ? `, sparseRatio ${stats.sparseRatio.toFixed(3)} (${stats.visitedBlocks}/${stats.denseBlocks} blocks)` : ''));
    return row;
  });
  dense.dispose();
  for (const s of Object.values(sparse)) s.dispose();

  // The layer (dim 512, 8 heads, projections included) with the local pattern and no gate,
  // against a dense multi-head layer of the same size; its reported sparseRatio against the
  // kernel's own count for the same pattern and shape (WasmSparseAttention above).
  const x = new Float32Array(SEQ * HEADS * DIM);
  fillRandom(x, 7);
  const layer = new lib.WasmASAMLayer({ dim: HEADS * DIM, numHeads: HEADS, patternType: 'local', useAdaptiveGate: false,
    runtime });
  const mha = new lib.WasmMultiHeadAttention({ modelDim: HEADS * DIM, heads: HEADS, runtime });
  const layerPlan = [
    { name: 'multi-head layer (dense)', call: () => mha.forward(x, x, x) },
    { name: 'ASAM layer (local, no gate)', call: () => layer.forward(x) },
  ];
  for (const p of layerPlan) p.call();
  roundRobinTrials(layerPlan, 3, TRIAL_MS);
  const { info } = layer.forward(x, { returnInfo: true });
  const kernelRatio = rows.find((r) => r.name === 'local').sparseRatio;
  const counted = 1 - (info.computedScores + info.densePathScores) / info.denseScores;
  const layerRows = layerPlan.map((p) => ({ name: p.name, medianMs: median(p.times), trialMs: p.times }));
  const layerSummary = {
    rows: layerRows, speedup: layerRows[0].medianMs / layerRows[1].medianMs,
    reportedSparseRatio: info.sparseRatio, kernelSparseRatio: kernelRatio, countedSparseRatio: counted,
    difference: Math.abs(info.sparseRatio - kernelRatio),
  };
  log(`sparse layer: ASAM local ${layerRows[1].medianMs.toFixed(1)} ms vs dense multi-head ${layerRows[0].medianMs.toFixed(1)} ms ` +
      `(${layerSummary.speedup.toFixed(2)}x); sparseRatio reported ${info.sparseRatio.toFixed(4)}, kernel ${kernelRatio.toFixed(4)}`);
  layer.dispose();
  mha.dispose();

  // Local at n = 65536 on a fresh runtime: its heap after the call is what the call needed.
  let big;
  try {
    const fresh = await startRuntime(lib, 'simd-threads', 2);
    const inputs = makeInputs(BIG_SEQ, DIM);
    const bigOut = new Float32Array(inputs.q.length);
    const attn = new lib.WasmSparseAttention({ heads: HEADS, headDim: DIM, pattern: 'local', runtime: fresh });
    const t0 = performance.now();
    attn.forward(inputs.q, inputs.k, inputs.v, { out: bigOut });
    const ms = performance.now() - t0;
    const heapBytes = fresh.module.heapU8().byteLength;
    const qkvoBytes = 4 * inputs.q.byteLength;
    big = { ok: true, seq: BIG_SEQ, ms, heapBytes, qkvoBytes, heapOverQkvo: heapBytes / qkvoBytes,
      sparseRatio: attn.lastStats.sparseRatio };
    attn.dispose();
    log(`sparse local n=${BIG_SEQ}: ${ms.toFixed(0)} ms, heap ${(heapBytes / 2 ** 20).toFixed(0)} MiB = ` +
        `${big.heapOverQkvo.toFixed(2)}x Q+K+V+O, sparseRatio ${big.sparseRatio.toFixed(4)}`);
  } catch (err) {
    big = { ok: false, seq: BIG_SEQ, error: String(err.message ?? err) };
    log(`sparse local n=${BIG_SEQ}: failed: ${big.error}`);
  }
  return { seq: SEQ, dim: DIM, heads: HEADS, threads: 2, trials: TRIALS, minTrialMs: TRIAL_MS, rows, layer: layerSummary, big };
}

export function sparseReport(sparse, mdTable) {
  const lines = [`## ASAM sparse attention (WasmSparseAttention vs WasmFlashAttention, 2 threads, ${sparse.heads} heads, ` +
    `d = ${sparse.dim}, n = ${sparse.seq})`, ''];
  lines.push(mdTable(['pattern', 'median ms', 'speed-up vs dense', 'target', 'sparseRatio', 'blocks visited / dense'],
    sparse.rows.map((r) => [r.name, r.medianMs.toFixed(1), r.name === 'dense flash' ? '1.00x' : `${r.speedup.toFixed(2)}x`,
      r.target ? `≥ ${r.target}x: ${r.speedup >= r.target ? 'PASS' : 'FAIL'}` : '',
      r.sparseRatio === null ? '' : r.sparseRatio.toFixed(3),
      r.visitedBlocks === null ? '' : `${r.visitedBlocks} / ${r.denseBlocks}`])));
  lines.push('');
  lines.push(`Each time is the median of ${sparse.trials} trials of ≥ ${sparse.minTrialMs / 1000} s of calls, the trials ` +
    'going round dense and the patterns in turn; a call includes copying Q, K, V into the heap and the output into a ' +
    'new array. Seed defaults: window 128, stride 32, block 64, scales 4/16/64; clustered with 32 random centroids ' +
    'per head. sparseRatio = 1 − scores computed / n² per head (what the kernel skipped; visited blocks count in full).');
  if (sparse.layer) {
    const l = sparse.layer;
    lines.push('');
    lines.push(`Layer (dim ${sparse.heads * sparse.dim}, ${sparse.heads} heads, projections included, n = ${sparse.seq}): ` +
      `${l.rows.map((r) => `${r.name} ${r.medianMs.toFixed(1)} ms`).join(', ')} (${l.speedup.toFixed(2)}x). The layer's ` +
      `reported sparseRatio ${l.reportedSparseRatio.toFixed(4)} vs the kernel's own count for the same pattern and shape ` +
      `${l.kernelSparseRatio.toFixed(4)}: difference ${l.difference.toExponential(1)} (issue 6: within 0.01).`);
  }
  const b = sparse.big;
  lines.push('');
  lines.push(b.ok
    ? `Local at n = ${b.seq} (fresh runtime, one call): ${b.ms.toFixed(0)} ms, heap ${(b.heapBytes / 2 ** 20).toFixed(0)} MiB = ` +
      `${b.heapOverQkvo.toFixed(2)}x the size of Q, K, V and the output; sparseRatio ${b.sparseRatio.toFixed(4)}.`
    : `Local at n = ${b.seq}: failed (${b.error}).`);
  lines.push('');
  return lines;
}
