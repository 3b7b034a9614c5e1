// Random attention problems and their float64 reference results, shared by the
// correctness and dropout suites. Inputs are generated once per case (seeded; the seed is
// part of every assertion message) and compared on every runtime.
import assert from 'node:assert/strict';
import { WasmFlashAttention } from '../../js/index.js';
import { assertClose, describeCase, freshSeed, makeRandom, randomF32 } from './helpers.mjs';
import { referenceFlash, referenceScores } from './reference.mjs';

function maskLength(layout, batch, heads, seqQ, seqK) {
  const qk = seqQ * seqK;
  return { qk, bqk: batch * qk, hqk: heads * qk, bhqk: batch * heads * qk }[layout];
}

// spec.mask: { kind: 'additive' | 'boolean', layout, blockProbability, emptyRows }
// emptyRows: how many [q] rows (of any batch/head slice) are blocked entirely.
function makeMask(random, spec, batch, heads, seqQ, seqK) {
  const length = maskLength(spec.layout, batch, heads, seqQ, seqK);
  const additive = spec.kind === 'additive';
  const mask = additive ? new Float32Array(length) : new Uint8Array(length);
  const pBlock = spec.blockProbability ?? 0.3;
  for (let n = 0; n < length; ++n) {
    const blocked = random() < pBlock;
    if (additive) mask[n] = blocked ? -Infinity : (random() * 4 - 2);
    else mask[n] = blocked ? 0 : 1;
  }
  const rows = length / seqK;
  for (let e = 0; e < (spec.emptyRows ?? 0); ++e) {
    const r = Math.floor(random() * rows);
    mask.fill(additive ? -Infinity : 0, r * seqK, (r + 1) * seqK);
  }
  return mask;
}

// A case: { heads, dim, seqQ, seqK?, batch?, headsKv?, valueDim?, scale?, softcap?,
//   causal?, ctorCausal?, mask?, maskLayout?, blockSize?, blockQ?, amp?, dropout?, seed? }
export function makeProblem(c) {
  const seed = c.inputSeed ?? freshSeed();
  const random = makeRandom(seed);
  const batch = c.batch ?? 1, heads = c.heads, headsKv = c.headsKv ?? heads;
  const dim = c.dim, valueDim = c.valueDim ?? dim, seqQ = c.seqQ, seqK = c.seqK ?? seqQ;
  const q = randomF32(random, batch * seqQ * heads * dim, c.amp ?? 1);
  const k = randomF32(random, batch * seqK * headsKv * dim, c.amp ?? 1);
  const v = randomF32(random, batch * seqK * headsKv * valueDim, 1);
  const mask = c.mask ? makeMask(random, c.mask, batch, heads, seqQ, seqK) : undefined;
  const causal = c.causal ?? (c.ctorCausal ? 'top-left' : 'none');
  const context = `case ${describeCase(c)}, input seed ${seed}`;
  let ref = null;
  return {
    c, q, k, v, mask, context,
    reference() {
      ref ??= referenceFlash({
        q, k, v, batch, headsQ: heads, headsKv, headDim: dim, valueDim,
        scale: c.scale, softcap: c.softcap, causal, mask, maskLayout: c.mask?.layout,
        dropout: c.dropout, seed: c.seed,
      });
      return ref;
    },
    scoresReference() {
      return referenceScores({
        q, k, batch, headsQ: heads, headsKv, headDim: dim, scale: c.scale, softcap: c.softcap,
        causal, mask, maskLayout: c.mask?.layout,
      });
    },
    inputs() {
      const inputs = { q, k, v, returnLse: true };
      for (const key of ['batch', 'headsKv', 'valueDim', 'scale', 'softcap', 'causal', 'blockQ', 'dropout', 'seed']) {
        if (c[key] !== undefined) inputs[key] = c[key];
      }
      if (mask) {
        inputs.mask = mask;
        if (c.explicitLayout) inputs.maskLayout = c.mask.layout;
      }
      return inputs;
    },
    make(runtime, extra = {}) {
      const options = { heads, dim, runtime, ...extra };
      if (c.blockSize !== undefined) options.blockSize = c.blockSize;
      if (c.ctorCausal) options.causal = true;
      return new WasmFlashAttention(options);
    },
  };
}

// Runs a problem through forwardExtended on `runtime` and checks output and lse against
// the reference; rows the reference leaves empty must be exact zeros with lse -Infinity.
export function checkForwardExtended(problem, runtime, label) {
  const attn = problem.make(runtime);
  const result = attn.forwardExtended(problem.inputs());
  attn.dispose();
  const ref = problem.reference();
  const context = `${label}: ${problem.context}`;
  assert.ok(result.output instanceof Float32Array, `output type (${context})`);
  assert.ok(result.lse instanceof Float32Array, `lse type (${context})`);
  for (let n = 0; n < result.output.length; ++n) {
    assert.ok(!Number.isNaN(result.output[n]), `NaN at output[${n}] (${context})`);
  }
  const errOut = assertClose(result.output, ref.output, `output, ${context}`);
  // lse: compare -Infinity exactly, finite values with an absolute/relative blend.
  let errLse = 0;
  for (let n = 0; n < ref.lse.length; ++n) {
    if (ref.lse[n] === -Infinity) {
      assert.equal(result.lse[n], -Infinity, `lse[${n}] should be -Infinity (${context})`);
    } else {
      const e = Math.abs(result.lse[n] - ref.lse[n]) / Math.max(1, Math.abs(ref.lse[n]));
      errLse = Math.max(errLse, e);
    }
  }
  assert.ok(errLse < 1e-4, `lse relative error ${errLse} (${context})`);
  // Exact zeros where the reference row is empty.
  const { batch = 1, heads, seqQ } = problem.c;
  const valueDim = problem.c.valueDim ?? problem.c.dim;
  let emptyRows = 0;
  for (let b = 0; b < batch; ++b) {
    for (let h = 0; h < heads; ++h) {
      for (let i = 0; i < seqQ; ++i) {
        if (ref.lse[(b * heads + h) * seqQ + i] !== -Infinity) continue;
        ++emptyRows;
        const base = ((b * seqQ + i) * heads + h) * valueDim;
        for (let c = 0; c < valueDim; ++c) {
          assert.ok(result.output[base + c] === 0, `empty row (b ${b}, h ${h}, i ${i}) not zero (${context})`);
        }
      }
    }
  }
  return { errOut, errLse, emptyRows, result };
}
