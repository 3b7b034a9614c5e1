// The published @ruvector/attention-wasm on the same work. Its WasmFlashAttention is
// single-head and takes one query per call: compute(query, keys[], values[]) with keys
// and values as arrays of Float32Array rows. So a [seq, heads, dim] forward is
// seq * heads calls (causal: query i gets keys 0..i). At most sizes only a sample of
// the calls is timed and the total extrapolated from the mean call time (labelled).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { HEADS, attentionFlops, relativeError } from './common.mjs';

export async function loadRuvector(peersDir) {
  const dir = join(peersDir, 'node_modules/@ruvector/attention-wasm');
  const version = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).version;
  const mod = await import(pathToFileURL(join(dir, 'ruvector_attention_wasm.js')).href);
  // In Node, the default async init would fetch() a file URL; initSync takes the bytes.
  mod.initSync({ module: readFileSync(join(dir, 'ruvector_attention_wasm_bg.wasm')) });
  return { mod, version };
}

// inputs: {q,k,v} as [seq][heads][dim]; ours: this library's output for the same call
// (to check the work matches). samples: number of (query, head) calls timed, or 0 for all.
export function benchRuvector({ mod }, { seq, dim, causal, inputs, ours, samples, blockSize = 64 }) {
  const { q, k, v } = inputs;
  const rowOf = (a, i, h) => a.subarray((i * HEADS + h) * dim, (i * HEADS + h + 1) * dim);
  const keys = [];
  const values = [];
  for (let h = 0; h < HEADS; ++h) {
    keys.push(Array.from({ length: seq }, (_, j) => rowOf(k, j, h)));
    values.push(Array.from({ length: seq }, (_, j) => rowOf(v, j, h)));
  }
  const total = seq * HEADS;
  const calls = [];
  if (!samples || samples >= total) {
    for (let i = 0; i < seq; ++i) for (let h = 0; h < HEADS; ++h) calls.push([i, h]);
  } else {
    // Evenly spaced query positions (so causal key counts average out), heads in turn.
    for (let s = 0; s < samples; ++s) calls.push([Math.floor(((s + 0.5) * seq) / samples), s % HEADS]);
  }
  const fa = new mod.WasmFlashAttention(dim, blockSize);
  const args = ([i, h]) => {
    const n = causal ? i + 1 : seq;
    return [rowOf(q, i, h), n === seq ? keys[h] : keys[h].slice(0, n), n === seq ? values[h] : values[h].slice(0, n)];
  };
  // Warm-up (not timed), then the timed calls.
  for (let w = 0; w < 3; ++w) fa.compute(...args(calls[w % calls.length]));
  const got = [];
  const want = [];
  let ms = 0;
  for (const c of calls) {
    const a = args(c);
    const t = performance.now();
    const out = fa.compute(...a);
    ms += performance.now() - t;
    if (got.length < 64 * dim) {
      got.push(...out);
      want.push(...rowOf(ours, c[0], c[1]));
    }
  }
  fa.free();
  const perCallMs = ms / calls.length;
  const totalMs = perCallMs * total;
  return {
    ok: true,
    calls: calls.length,
    callsTotal: total,
    extrapolated: calls.length < total,
    perCallMs,
    medianMs: totalMs,
    gflops: attentionFlops(seq, dim, causal) / totalMs / 1e6,
    relErrVsAttnkit: relativeError(Float32Array.from(got), Float32Array.from(want)),
  };
}
