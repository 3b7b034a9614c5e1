// onnxruntime-web running a whole multi-head attention layer (bench/multihead.mjs) with one
// thread count per process (env.wasm.numThreads is read once per process).
//   node bench/ort_mha_child.mjs '<json: {peersDir, threads, modelDim, heads, seq, dumpFile?}>'
// Prints one JSON line: { ok, medianMs, runs } or { ok: false, error }.
import { writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { engineWarmup, median, warmRunsAsync } from './common.mjs';
import { layerInput, layerWeights } from './multihead.mjs';
import { multiHeadLayerModel } from './onnx_model.mjs';

const config = JSON.parse(process.argv[2]);
const require = createRequire(join(config.peersDir, 'node_modules', '.placeholder'));
const ort = require('onnxruntime-web');
ort.env.wasm.numThreads = config.threads;
ort.env.wasm.simd = true;
ort.env.logLevel = 'error';

try {
  const { modelDim, heads, seq } = config;
  const model = multiHeadLayerModel({ modelDim, heads, ...layerWeights(modelDim).onnx });
  const session = await ort.InferenceSession.create(model, { executionProviders: ['wasm'] });
  const feeds = { input: new ort.Tensor('float32', layerInput(config), [1, seq, modelDim]) };
  await engineWarmup(() => session.run(feeds), 2000);  // V8 tier-up, as for attnkit
  const first = await session.run(feeds);
  if (config.dumpFile) {
    const out = first.output.data;
    writeFileSync(config.dumpFile, Buffer.from(out.buffer, out.byteOffset, out.byteLength));
  }
  const times = await warmRunsAsync(() => session.run(feeds), { minRuns: 5, minMs: 1500, maxRuns: 30 });
  process.stdout.write(`${JSON.stringify({ ok: true, medianMs: median(times), runs: times.length })}\n`);
} catch (err) {
  process.stdout.write(`${JSON.stringify({ ok: false, error: String(err?.message ?? err) })}\n`);
}
process.exit(0);
