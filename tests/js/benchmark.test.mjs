// benchmark(): measured numbers, internally consistent, on both variants.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WasmFlashAttention, createRuntime, getRuntimeInfo } from '../../js/index.js';

const simdRuntime = await createRuntime({ variant: 'simd' });

function checkResult(r, { seqLen, heads, dim, causal, runtimeInfo, minRuns, minTimeMs }) {
  const context = JSON.stringify(r);
  for (const key of ['opsPerSecond', 'latencyMs', 'throughputGBps', 'firstCallMs', 'flopsPerCall']) {
    assert.equal(typeof r[key], 'number', `${key} (${context})`);
    assert.ok(Number.isFinite(r[key]) && r[key] > 0, `${key} should be finite and positive (${context})`);
  }
  assert.equal(r.simdEnabled, true);
  assert.equal(r.variant, runtimeInfo.variant);
  assert.equal(r.threads, runtimeInfo.threads);
  assert.ok(Number.isInteger(r.runs) && r.runs >= minRuns, `runs ${r.runs} < minRuns ${minRuns}`);
  // Timed for at least minTimeMs in all (the mean latency times the runs).
  assert.ok(r.latencyMs * r.runs >= minTimeMs * 0.5, `timed ${r.latencyMs * r.runs} ms < ${minTimeMs} ms`);
  // FLOPs: 2 per multiply-add of q kᵀ and of p v over the visible (query, key) pairs.
  const pairs = causal ? (seqLen * (seqLen + 1)) / 2 : seqLen * seqLen;
  assert.equal(r.flopsPerCall, pairs * 2 * (dim + dim) * heads);
  const rel = (a, b) => Math.abs(a - b) / Math.abs(b);
  assert.ok(rel(r.opsPerSecond, r.flopsPerCall / (r.latencyMs / 1000)) < 1e-9, `opsPerSecond inconsistent (${context})`);
  const bytes = 4 * 4 * seqLen * heads * dim;
  assert.ok(rel(r.throughputGBps, bytes / (r.latencyMs / 1000) / 1e9) < 1e-9, `throughputGBps inconsistent (${context})`);
  // Sanity: under a teraflop per second and over a kiloflop on any CPU this runs on.
  assert.ok(r.opsPerSecond > 1e3 && r.opsPerSecond < 1e12, `implausible opsPerSecond ${r.opsPerSecond}`);
}

test('benchmark on the default runtime (simd-threads)', () => {
  const heads = 4, dim = 32, seqLen = 96;
  const attn = new WasmFlashAttention({ heads, dim });
  const r = attn.benchmark(seqLen, { minTimeMs: 60, minRuns: 4 });
  checkResult(r, { seqLen, heads, dim, causal: false, runtimeInfo: getRuntimeInfo(), minRuns: 4, minTimeMs: 60 });
  console.log(`benchmark simd-threads x${r.threads}: seq ${seqLen}, heads ${heads}, dim ${dim}: ` +
    `${(r.opsPerSecond / 1e9).toFixed(2)} GFLOP/s, ${r.latencyMs.toFixed(3)} ms, ${r.runs} runs`);
  attn.dispose();
});

test('benchmark on the simd runtime, causal, odd sizes, default timing (200 ms, 3 runs)', () => {
  const heads = 3, dim = 65, seqLen = 57;
  const attn = new WasmFlashAttention({ heads, dim, causal: true, runtime: simdRuntime });
  const r = attn.benchmark(seqLen);
  checkResult(r, { seqLen, heads, dim, causal: true, runtimeInfo: simdRuntime.info(), minRuns: 3, minTimeMs: 200 });
  console.log(`benchmark simd x1: seq ${seqLen}, heads ${heads}, dim ${dim}, causal: ` +
    `${(r.opsPerSecond / 1e9).toFixed(2)} GFLOP/s, ${r.latencyMs.toFixed(3)} ms, ${r.runs} runs`);
  attn.dispose();
});

test('benchmark with minRuns beyond the time budget runs minRuns times; seqLen 1 works', () => {
  const attn = new WasmFlashAttention({ heads: 1, dim: 1, runtime: simdRuntime });
  const r = attn.benchmark(1, { minTimeMs: 0, minRuns: 25 });
  assert.ok(r.runs >= 25);
  assert.equal(r.flopsPerCall, 4);
  assert.ok(Number.isFinite(r.opsPerSecond) && r.opsPerSecond > 0);
  attn.dispose();
});
