// ASAM's HybridASAM (a sliding window plus global tokens) and ASAMEncoder (stacked layers):
// what each call computed, measured, against dense attention's n² scores.
//   node examples/node/hybrid.mjs
import { WasmASAMEncoder, WasmHybridASAM } from '../../js/index.js';

const dim = 256, numHeads = 4, seqLen = 2048;
const x = Float32Array.from({ length: seqLen * dim }, () => Math.random() * 2 - 1);

const hybrid = new WasmHybridASAM({ dim, numHeads, localWindowSize: 256, numGlobalTokens: 4, seed: 1 });
hybrid.forward(x);  // warm-up
let t0 = performance.now();
const { info } = hybrid.forward(x, { returnInfo: true });
console.log(`HybridASAM (window 256, 4 global tokens, n ${seqLen}): ${(performance.now() - t0).toFixed(1)} ms, ` +
  `${info.computedScores} of ${info.denseScores} scores computed (sparseRatio ${info.sparseRatio.toFixed(3)}), ` +
  `${info.globalScores} of them for the global tokens`);
hybrid.dispose();

const encoder = new WasmASAMEncoder({ dim, numHeads, numLayers: 3, patternType: 'local', windowSize: 128, useAdaptiveGate: false, seed: 1 });
t0 = performance.now();
const { infos } = encoder.forward(x, { returnInfo: true });
console.log(`ASAMEncoder (3 local layers): ${(performance.now() - t0).toFixed(1)} ms; sparseRatio per layer ` +
  infos.map((i) => i.sparseRatio.toFixed(3)).join(', '));
encoder.dispose();
