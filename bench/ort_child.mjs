// One onnxruntime-web configuration per process: env.wasm.numThreads is read only
// when ORT first initializes its WebAssembly module (initializeWebAssembly() runs once
// and OrtInit(numThreads) builds the global thread pool), so setting it again later in
// the same process has no effect. bench/run.mjs runs this file once per thread count.
//
//   node bench/ort_child.mjs '<json: {threads, cases:[{dim, causal, seqs}], dumpDir?, dump?}>'
// Prints one JSON line: { ok, version, threads, results: [...] }.
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { HEADS, attentionFlops, cpuMeter, engineWarmup, makeInputs, median, runPlan, warmRunsAsync } from './common.mjs';
import { multiHeadAttentionModel } from './onnx_model.mjs';

const config = JSON.parse(process.argv[2]);
const require = createRequire(join(config.peersDir, 'node_modules', '.placeholder'));
const ort = require('onnxruntime-web');
const version = JSON.parse(readFileSync(join(config.peersDir, 'node_modules/onnxruntime-web/package.json'), 'utf8')).version;

ort.env.wasm.numThreads = config.threads;
ort.env.wasm.simd = true;
ort.env.logLevel = 'error';

// Untimed calls first, as for attnkit: the first dozen calls of a fresh process run
// while V8 still tiers the module up (common.mjs, engineWarmup).
{
  const session = await ort.InferenceSession.create(multiHeadAttentionModel({ heads: HEADS, dim: 64, causal: false }),
    { executionProviders: ['wasm'] });
  const { q, k, v } = makeInputs(512, 64);
  const shape = [1, 512, HEADS * 64];
  const feeds = { query: new ort.Tensor('float32', q, shape), key: new ort.Tensor('float32', k, shape),
    value: new ort.Tensor('float32', v, shape) };
  await engineWarmup(() => session.run(feeds), 2400);
  await session.release();
}

const results = [];
for (const { dim, causal, seqs } of config.cases) {
  const model = multiHeadAttentionModel({ heads: HEADS, dim, causal });
  let session;
  const tCreate = performance.now();
  try {
    session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'] });
  } catch (err) {
    for (const seq of seqs) results.push({ dim, causal, seq, ok: false, error: `session: ${err.message}` });
    continue;
  }
  const sessionMs = performance.now() - tCreate;
  for (const seq of seqs) {
    const { q, k, v } = makeInputs(seq, dim);
    const shape = [1, seq, HEADS * dim];
    const feeds = {
      query: new ort.Tensor('float32', q, shape),
      key: new ort.Tensor('float32', k, shape),
      value: new ort.Tensor('float32', v, shape),
    };
    const meter = cpuMeter();
    let first;
    const t0 = performance.now();
    try {
      first = await session.run(feeds);
    } catch (err) {
      const msg = String(err?.message ?? err).replace(/\s+/g, ' ').trim();
      results.push({ dim, causal, seq, ok: false, failMs: performance.now() - t0, error: msg });
      continue;
    }
    const firstCallMs = performance.now() - t0;
    if (config.dump && config.dump.seq === seq && config.dump.dim === dim) {
      writeFileSync(join(config.dumpDir, `ort-out-${seq}-${dim}-${causal ? 'causal' : 'full'}.f32`),
        Buffer.from(first.output.data.buffer, first.output.data.byteOffset, first.output.data.byteLength));
    }
    const times = await warmRunsAsync(() => session.run(feeds), runPlan(seq));
    const medianMs = median(times);
    results.push({
      dim, causal, seq, ok: true, runs: times.length, medianMs, minMs: Math.min(...times), firstCallMs,
      sessionMs, gflops: attentionFlops(seq, dim, causal) / medianMs / 1e6, otherLoadCores: meter(),
    });
  }
  await session.release();
}
process.stdout.write(`${JSON.stringify({ ok: true, version, threads: config.threads, results })}\n`);
process.exit(0);
