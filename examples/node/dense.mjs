// AdaAttn's DenseAttention in Node: padded batches, the weights averaged over heads, and
// dropout only in training mode.
//   node examples/node/dense.mjs
import { WasmDenseAttention } from '../../js/index.js';

const random = (length) => Float32Array.from({ length }, () => Math.random() * 2 - 1);

// Two sequences of up to 256 tokens, the second only 200 long: a key-padding mask [batch, seqLen].
const embedDim = 512, numHeads = 8, batch = 2, seqLen = 256;
const attention = new WasmDenseAttention({ embedDim, numHeads, dropout: 0.1, causal: false, seed: 1 });
const x = random(batch * seqLen * embedDim);
const padding = new Uint8Array(batch * seqLen).fill(1).fill(0, seqLen + 200);
attention.forward(x, x, x, { batch, attentionMask: padding });  // the first call also tiers up the WASM code
let t0 = performance.now();
attention.forward(x, x, x, { batch, attentionMask: padding });
console.log(`forward: ${batch} x ${seqLen} x ${embedDim}, ${numHeads} heads, ${(performance.now() - t0).toFixed(1)} ms`);
t0 = performance.now();
const { output, weights } = attention.forward(x, x, x, { batch, needWeights: true, attentionMask: padding });
console.log(`forward with the weights averaged over heads ([batch][seqQ][seqK], ${weights.length} floats): ` +
  `${(performance.now() - t0).toFixed(1)} ms`);

// Row 3 of the second sequence: its weights sum to 1 and none falls on a padded key.
const row = weights.subarray((seqLen + 3) * seqLen, (seqLen + 4) * seqLen);
const sum = row.reduce((a, b) => a + b, 0), onPadding = row.subarray(200).reduce((a, b) => a + b, 0);
console.log(`weights of sequence 1, query 3: sum ${sum.toFixed(6)}, on padded keys ${onPadding}`);

// Eval mode (the default) is deterministic; train() applies the dropout, a new mask per call.
const again = attention.forward(x, x, x, { batch, attentionMask: padding }).output;
console.log(`eval: equal outputs ${again.every((v, i) => v === output[i])}`);
attention.train();
const a = attention.forward(x, x, x, { batch, attentionMask: padding }).output;
const b = attention.forward(x, x, x, { batch, attentionMask: padding }).output;
console.log(`training: the two calls differ ${a.some((v, i) => v !== b[i])}; next dropout seed ${attention.nextDropoutSeed}`);
attention.dispose();
