// Weight precision of the layers' projections (src/gemm/projection.h): 'int8' stores each
// weight matrix as int8 per output channel and multiplies in integers (activations
// quantized per row on the fly), 'fp16' stores it as IEEE halves widened for the float
// GEMM, 'fp32' as float32. The float32 matrices are dropped, so the memory is saved for
// real. quantizeWeights() on a layer and quantizeASAMModel() (the ASAM seed's
// quantize_asam_model) report the weight bytes before and after, measured in the heap
// object, and the output error against the layer as it was, measured on a probe input.
import { raiseStatus, rangeError, typeError } from './errors.js';

const NAMES = { int8: 'int8', qint8: 'int8', fp16: 'fp16', float16: 'fp16', fp32: 'fp32', float32: 'fp32' };

// 'int8' | 'fp16' | 'fp32' from those names or torch's ('qint8', 'float16', 'float32').
export function weightPrecision(where, name, value, allowed = ['int8', 'fp16', 'fp32']) {
  const precision = typeof value === 'string' ? NAMES[value] : undefined;
  if (precision === undefined || !allowed.includes(precision)) {
    const expected = Object.keys(NAMES).filter((k) => allowed.includes(NAMES[k])).map((k) => `'${k}'`).join(', ');
    const got = typeof value === 'string' ? `'${value}'` : String(value);
    throw (typeof value === 'string' ? rangeError : typeError)(where, name, `expected one of ${expected}, got ${got}`);
  }
  return precision;
}

// The default probe: `length` values in [-1, 1) from the bench's LCG, seeded, so the
// same layer gives the same report.
export function probeValues(length, seed) {
  const out = new Float32Array(length);
  let s = seed >>> 0;
  for (let i = 0; i < length; ++i) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 2147483648 - 1;
  }
  return out;
}

function outputError(after, before) {
  let num = 0;
  let den = 0;
  let maxAbs = 0;
  for (let i = 0; i < before.length; ++i) {
    const d = after[i] - before[i];
    num += d * d;
    den += before[i] * before[i];
    maxAbs = Math.max(maxAbs, Math.abs(d));
  }
  return { relative: Math.sqrt(num / Math.max(den, 1e-30)), maxAbs };
}

// Stores the handle's projections in `precision`, running `run` (the probe's forward)
// before and after; `run` null when outputs are not comparable (dropout).
export function quantizeWith(where, handle, precision, probe, run, reason) {
  const previousPrecision = handle.precision();
  const weightBytesBefore = handle.weightBytes();
  const before = run ? run() : null;
  raiseStatus(handle.setPrecision(precision), where);
  const after = run ? run() : null;
  return Object.freeze({
    precision,
    previousPrecision,
    weightBytesBefore,
    weightBytesAfter: handle.weightBytes(),
    outputError: run ? Object.freeze({ ...outputError(after, before), reference: previousPrecision, probe }) : null,
    ...(run ? {} : { outputErrorReason: reason }),
  });
}

// The ASAM seed's quantize_asam_model(model, dtype): dtype 'int8' (or 'qint8') or 'fp16'
// (or 'float16'). Quantizes in place and returns the same model (a copy would hold both
// sets of weights in the heap); its report is model.getMemoryUsage().quantization.
// options: { probe } as the model's quantizeWeights takes it.
export function quantizeASAMModel(model, dtype, options) {
  const where = 'quantizeASAMModel';
  if (model === null || typeof model !== 'object' || typeof model.quantizeWeights !== 'function') {
    throw typeError(where, 'model', 'expected a WasmASAMLayer, WasmASAMEncoder, WasmHybridASAM or WasmMultiHeadAttention');
  }
  model.quantizeWeights(weightPrecision(where, 'dtype', dtype, ['int8', 'fp16']), options);
  return model;
}
