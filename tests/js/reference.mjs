// Float64 reference of the flash forward and of attentionScores, written from the
// contract (SPEC.md, src/flash/flash_params.h, src/flash/dropout_rng.h) rather than from
// the kernel: plain loops over (batch, head, query, key), no tiling, no online softmax.
//
// Layouts (row-major):
//   q   [batch][seqQ][headsQ][headDim]
//   k   [batch][seqK][headsKv][headDim]
//   v   [batch][seqK][headsKv][valueDim]
//   out [batch][seqQ][headsQ][valueDim]
//   lse [batch][headsQ][seqQ]             (-Infinity for rows with no visible key)
//   scores [batch][headsQ][seqQ][seqK]
// Query head h reads key/value head floor(h / (headsQ / headsKv)).

const M64 = (1n << 64n) - 1n;

// splitmix64's finalizer, as in dropout_rng.h.
export function mix64(x) {
  x = BigInt.asUintN(64, x);
  x ^= x >> 30n;
  x = (x * 0xbf58476d1ce4e5b9n) & M64;
  x ^= x >> 27n;
  x = (x * 0x94d049bb133111ebn) & M64;
  x ^= x >> 31n;
  return x;
}

// The keep rule of DropoutRng: weight at flat index
// ((b * headsQ + h) * seqQ + i) * seqK + j is kept when the top 24 bits of
// mix64(mix64(seed + golden) ^ index) are >= floor(float32(p) * 2^24).
export function dropoutRule(seed, probability) {
  const mixedSeed = mix64((BigInt(seed) + 0x9e3779b97f4a7c15n) & M64);
  const p32 = Math.fround(probability);
  const threshold = Math.floor(p32 * 16777216);
  return {
    threshold,
    keepScale: 1 / (1 - p32),
    keep(element) {
      return Number(mix64(mixedSeed ^ BigInt(element)) >> 40n) >= threshold;
    },
  };
}

// Strides (in elements) of a mask laid out as 'qk', 'bqk', 'hqk' or 'bhqk'.
export function maskStrides(layout, headsQ, seqQ, seqK) {
  const qk = seqQ * seqK;
  switch (layout) {
    case 'qk': return { batchStride: 0, headStride: 0 };
    case 'bqk': return { batchStride: qk, headStride: 0 };
    case 'hqk': return { batchStride: 0, headStride: qk };
    case 'bhqk': return { batchStride: headsQ * qk, headStride: qk };
    default: throw new Error(`reference: unknown mask layout ${layout}`);
  }
}

function normalise(p) {
  const s = {
    batch: p.batch ?? 1,
    headsQ: p.headsQ,
    headsKv: p.headsKv ?? p.headsQ,
    headDim: p.headDim,
  };
  s.valueDim = p.valueDim ?? s.headDim;
  s.seqQ = p.q.length / (s.batch * s.headsQ * s.headDim);
  s.seqK = p.k.length / (s.batch * s.headsKv * s.headDim);
  if (!Number.isInteger(s.seqQ) || !Number.isInteger(s.seqK)) throw new Error('reference: bad q/k length');
  if (s.headsQ % s.headsKv !== 0) throw new Error('reference: headsKv must divide headsQ');
  s.scale = p.scale ?? 1 / Math.sqrt(s.headDim);
  s.softcap = p.softcap ?? 0;
  s.causal = p.causal === true ? 'top-left' : (p.causal === false || p.causal === undefined ? 'none' : p.causal);
  s.offset = s.causal === 'bottom-right' ? s.seqK - s.seqQ : 0;
  s.mask = p.mask ?? null;
  if (s.mask) {
    s.maskBoolean = s.mask instanceof Uint8Array;
    Object.assign(s, maskStrides(p.maskLayout ?? 'qk', s.headsQ, s.seqQ, s.seqK));
  }
  return s;
}

// Logits of one row (b, h, i): softcap, causal frontier, mask. Blocked keys are -Infinity.
function rowLogits(s, q, k, b, h, i, out) {
  const { seqQ, seqK, headsQ, headsKv, headDim: d } = s;
  const hk = Math.floor(h / (headsQ / headsKv));
  const qBase = ((b * seqQ + i) * headsQ + h) * d;
  const visible = s.causal === 'none' ? seqK : Math.max(0, Math.min(seqK, i + s.offset + 1));
  const maskRow = s.mask ? b * s.batchStride + h * s.headStride + i * seqK : 0;
  for (let j = 0; j < seqK; ++j) {
    if (j >= visible) { out[j] = -Infinity; continue; }
    const kBase = ((b * seqK + j) * headsKv + hk) * d;
    let dot = 0;
    for (let c = 0; c < d; ++c) dot += q[qBase + c] * k[kBase + c];
    let x = dot * s.scale;
    if (s.softcap > 0) x = s.softcap * Math.tanh(x / s.softcap);
    if (s.mask) {
      if (s.maskBoolean) {
        if (!s.mask[maskRow + j]) x = -Infinity;
      } else {
        x += s.mask[maskRow + j];
      }
    }
    out[j] = x;
  }
  return out;
}

// Softmax of a row in place; returns { max, sum } (sum 0 for an empty row).
function softmaxInPlace(row) {
  let max = -Infinity;
  for (const x of row) if (x > max) max = x;
  if (max === -Infinity) {
    row.fill(0);
    return { max, sum: 0 };
  }
  let sum = 0;
  for (let j = 0; j < row.length; ++j) sum += (row[j] = Math.exp(row[j] - max));
  for (let j = 0; j < row.length; ++j) row[j] /= sum;
  return { max, sum };
}

// params: { q, k, v, batch?, headsQ, headsKv?, headDim, valueDim?, scale?, softcap?,
//           causal? (boolean | 'none' | 'top-left' | 'bottom-right'), mask?, maskLayout?,
//           dropout?, seed? }
// Returns { output: Float64Array, lse: Float64Array, kept: number, total: number }.
export function referenceFlash(params) {
  const s = normalise(params);
  const { batch, seqQ, seqK, headsQ, headsKv, valueDim: dv } = s;
  const dropout = params.dropout ?? 0;
  const rule = dropout > 0 ? dropoutRule(params.seed ?? 0, dropout) : null;
  const output = new Float64Array(batch * seqQ * headsQ * dv);
  const lse = new Float64Array(batch * headsQ * seqQ);
  const row = new Float64Array(seqK);
  const hkOf = (h) => Math.floor(h / (headsQ / headsKv));
  let kept = 0, total = 0;
  for (let b = 0; b < batch; ++b) {
    for (let h = 0; h < headsQ; ++h) {
      const hk = hkOf(h);
      for (let i = 0; i < seqQ; ++i) {
        rowLogits(s, params.q, params.k, b, h, i, row);
        const { max, sum } = softmaxInPlace(row);
        lse[(b * headsQ + h) * seqQ + i] = sum > 0 ? max + Math.log(sum) : -Infinity;
        const oBase = ((b * seqQ + i) * headsQ + h) * dv;
        if (sum === 0) continue;
        const element0 = ((b * headsQ + h) * seqQ + i) * seqK;
        for (let j = 0; j < seqK; ++j) {
          let w = row[j];
          if (rule) {
            ++total;
            if (rule.keep(element0 + j)) { ++kept; w *= rule.keepScale; } else w = 0;
          }
          if (w === 0) continue;
          const vBase = ((b * seqK + j) * headsKv + hk) * dv;
          for (let c = 0; c < dv; ++c) output[oBase + c] += w * params.v[vBase + c];
        }
      }
    }
  }
  return { output, lse, kept, total };
}

// The softmax weights, [batch][headsQ][seqQ][seqK], no dropout; empty rows are zeros.
export function referenceScores(params) {
  const s = normalise({ ...params, v: null });
  const { batch, seqQ, seqK, headsQ } = s;
  const out = new Float64Array(batch * headsQ * seqQ * seqK);
  const row = new Float64Array(seqK);
  for (let b = 0; b < batch; ++b) {
    for (let h = 0; h < headsQ; ++h) {
      for (let i = 0; i < seqQ; ++i) {
        rowLogits(s, params.q, params.k, b, h, i, row);
        softmaxInPlace(row);
        out.set(row, ((b * headsQ + h) * seqQ + i) * seqK);
      }
    }
  }
  return out;
}
