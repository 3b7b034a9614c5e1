// Run by heap_flatness.test.mjs with --expose-gc: makes objects that own C++ memory, drops
// them without dispose(), collects garbage and waits for the FinalizationRegistry to free
// their memory. Prints one JSON line per run: [{ variant, held, left, rounds }].
import {
  WasmASAMLayer, WasmDenseAttention, WasmKVCache, WasmMultiHeadAttention, createRuntime,
} from '../../../js/index.js';

if (typeof globalThis.gc !== 'function') throw new Error('run with --expose-gc');

function forget(runtime) {
  // Made in a scope that ends, so nothing refers to them afterwards.
  for (let i = 0; i < 20; ++i) {
    new WasmMultiHeadAttention({ modelDim: 64, heads: 4, runtime });
    new WasmDenseAttention({ embedDim: 64, numHeads: 4, runtime });
    new WasmKVCache({ heads: 4, headDim: 16, capacity: 512, runtime });
    new WasmASAMLayer({ dim: 32, numHeads: 4, gateHiddenDim: 8, numClusters: 4, blockSize: 32, runtime });
  }
}

const results = [];
for (const variant of ['simd-threads', 'simd']) {
  const runtime = await createRuntime({ variant, numThreads: variant === 'simd' ? 1 : 2 });
  const module = runtime.module;
  const baseline = module.heapUsed();
  forget(runtime);
  const held = module.heapUsed() - baseline;
  let rounds = 0;
  while (module.heapUsed() !== baseline && rounds < 200) {
    globalThis.gc();
    // Finalization callbacks run as tasks after a collection.
    await new Promise((resolve) => setTimeout(resolve, 5));
    ++rounds;
  }
  results.push({ variant, held, left: module.heapUsed() - baseline, rounds });
  console.log(`${variant}: ${held} bytes held by 80 objects never disposed; ${module.heapUsed() - baseline} left after ${rounds} collection round(s)`);
}
console.log(JSON.stringify(results));
