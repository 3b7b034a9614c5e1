// The multi-head part of `npm run bench`: WasmMultiHeadAttention (modelDim 512, 8 heads,
// self attention, n = 1024, with its projections) against onnxruntime-web running the same
// layer (com.microsoft Attention + MatMul + Add, the same weights; bench/ort_mha_child.mjs,
// one process per thread count). Issue 5's target: at least 1.3x onnxruntime-web.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fillRandom, median, relativeError, startRuntime, warmRuns } from './common.mjs';

const BENCH = dirname(fileURLToPath(import.meta.url));
export const MHA = { modelDim: 512, heads: 8, seq: 1024 };

// FLOPs of one call: four projections (2·n·E² each) and the attention (4·n²·E).
export function multiHeadFlops({ modelDim, seq }) {
  return 8 * seq * modelDim * modelDim + 4 * seq * seq * modelDim;
}

// Deterministic weights in PyTorch's layout ([out][in]) and in the ONNX graph's ([in][out]).
export function layerWeights(modelDim) {
  const e = modelDim, s = 1 / Math.sqrt(e);
  const scaled = (n, seed, k) => fillRandom(new Float32Array(n), seed).map((x) => x * k);
  const inProj = scaled(3 * e * e, 11, s), outProj = scaled(e * e, 12, s);
  const inBias = scaled(3 * e, 13, 0.1), outBias = scaled(e, 14, 0.1);
  const qkvWeight = new Float32Array(e * 3 * e), outWeight = new Float32Array(e * e);
  for (let o = 0; o < 3 * e; ++o) for (let i = 0; i < e; ++i) qkvWeight[i * 3 * e + o] = inProj[o * e + i];
  for (let o = 0; o < e; ++o) for (let i = 0; i < e; ++i) outWeight[i * e + o] = outProj[o * e + i];
  return {
    torch: { in_proj_weight: inProj, in_proj_bias: inBias, 'out_proj.weight': outProj, 'out_proj.bias': outBias },
    onnx: { qkvWeight, qkvBias: inBias, outWeight, outBias },
  };
}

export function layerInput({ modelDim, seq }) {
  return fillRandom(new Float32Array(seq * modelDim), 15);
}

export async function benchMultiHead(lib, { peersDir, ortAvailable, log, dumpDir }) {
  const weights = layerWeights(MHA.modelDim);
  const x = layerInput(MHA);
  const flops = multiHeadFlops(MHA);
  const rows = [];
  let ours2 = null;
  for (const threads of [2, 1]) {
    const runtime = await startRuntime(lib, 'simd-threads', threads);
    const mha = new lib.WasmMultiHeadAttention({ modelDim: MHA.modelDim, heads: MHA.heads, runtime });
    mha.loadWeights(weights.torch);
    const out = mha.forward(x, x, x);
    if (threads === 2) ours2 = out;
    const medianMs = median(warmRuns(() => mha.forward(x, x, x), { minRuns: 5, minMs: 1500, maxRuns: 30 }));
    rows.push({ impl: 'attnkit', threads, ok: true, medianMs, gflops: flops / medianMs / 1e6 });
    log(`multi-head attnkit ×${threads}: ${medianMs.toFixed(1)} ms, ${(flops / medianMs / 1e6).toFixed(1)} GFLOP/s`);
    mha.dispose();
  }
  const checks = [];
  if (ortAvailable) {
    for (const threads of [2, 1]) {
      const config = { peersDir, threads, dumpFile: threads === 2 ? join(dumpDir, 'ort-mha-out.f32') : null, ...MHA };
      const r = spawnSync(process.execPath, [join(BENCH, 'ort_mha_child.mjs'), JSON.stringify(config)],
        { encoding: 'utf8', timeout: 300000, maxBuffer: 16 << 20 });
      let parsed = null;
      try {
        parsed = JSON.parse(r.stdout.trim().split('\n').pop());
      } catch { /* reported below */ }
      if (!parsed?.ok) {
        const error = (parsed?.error ?? r.stderr ?? 'no output').trim().split('\n').slice(-2).join(' | ').slice(0, 200);
        rows.push({ impl: 'onnxruntime-web', threads, ok: false, error });
        log(`multi-head onnxruntime-web ×${threads}: fails: ${error}`);
        continue;
      }
      rows.push({ impl: 'onnxruntime-web', threads, ok: true, medianMs: parsed.medianMs, gflops: flops / parsed.medianMs / 1e6 });
      log(`multi-head onnxruntime-web ×${threads}: ${parsed.medianMs.toFixed(1)} ms, ${(flops / parsed.medianMs / 1e6).toFixed(1)} GFLOP/s`);
      if (config.dumpFile && existsSync(config.dumpFile) && ours2) {
        const b = readFileSync(config.dumpFile);
        const err = relativeError(new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4), ours2);
        checks.push(`Same work: onnxruntime-web's Attention + MatMul + Add output vs attnkit's WasmMultiHeadAttention ` +
          `(same weights and input): relative L2 error ${err.toExponential(1)}.`);
      }
    }
  }
  const get = (impl, threads) => rows.find((r) => r.impl === impl && r.threads === threads && r.ok);
  const a = get('attnkit', 2), o = get('onnxruntime-web', 2);
  return { shape: MHA, flops, rows, checks, ratio2: a && o ? a.gflops / o.gflops : null };
}

export function multiHeadReport(m, mdTable) {
  const lines = [`## Multi-head attention layer (modelDim ${m.shape.modelDim}, ${m.shape.heads} heads, n = ${m.shape.seq}, ` +
    'with the four projections)', ''];
  lines.push(mdTable(['implementation', 'threads', 'median ms', 'GFLOP/s'], m.rows.map((r) => [r.impl, r.threads,
    r.ok ? r.medianMs.toFixed(1) : `fails: ${r.error}`, r.ok ? r.gflops.toFixed(1) : '—'])));
  lines.push('');
  lines.push(`GFLOP/s = (8·n·E² + 4·n²·E) / time. attnkit ×2 / onnxruntime-web ×2: ` +
    `${m.ratio2 ? `${m.ratio2.toFixed(2)}x` : 'not measured'} (issue 5's target: 1.3x).`);
  for (const c of m.checks) lines.push(`${c}`);
  lines.push('');
  return lines;
}
