// Random invalid calls across the whole public API, on both WebAssembly variants: a seeded
// generator (the seed is printed; ATTNKIT_TEST_SEED replays a run) picks an API entry (a
// constructor, a method of a live object, a free function), one of its parameters and a
// class of bad input for that parameter, and calls it with every other argument valid.
// Each call must throw exactly the expected TypeError / RangeError / Error whose message
// names the parameter; afterwards the module still computes a correct small result, every
// object used still gives its first answer, and the heap holds what it held before.
// A table of the bad-input classes tried (count per class, count passed) is printed.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  WasmASAMEncoder, WasmASAMLayer, WasmAdaptivePrecisionAttention, WasmAdaptiveRankAttention,
  WasmCrossAttention, WasmDenseAttention, WasmFlashAttention, WasmHybridASAM, WasmKVCache, WasmLinearAttention,
  WasmMultiHeadAttention, WasmSparseAttention, computeAttentionSparsity, createMask, createRuntime,
  lowRankAttention, measureAttentionEfficiency, memoryEfficientAttention, quantizeASAMModel, setNumThreads, transfer,
} from '../../js/index.js';
import { assertClose, baseSeed, freshSeed, makeRandom, randomF32 } from './helpers.mjs';
import { referenceFlash } from './reference.mjs';

const CALLS_PER_RUNTIME = Number(process.env.ATTNKIT_FUZZ_CALLS ?? 2500);
// ATTNKIT_FUZZ_TRACE=1 prints each call before it is made (to find one that never returns).
const TRACE = process.env.ATTNKIT_FUZZ_TRACE === '1';
const simdRuntime = await createRuntime({ variant: 'simd' });
const RUNTIMES = [
  { name: 'simd-threads', runtime: undefined },
  { name: 'simd', runtime: simdRuntime },
];

// ---- Parameter kinds: the bad values of each, grouped into the classes the table reports.
// [class, ErrorClass, values]; a value may be a function of the parameter's spec.
const NOT_A_NUMBER = ['8', true, null, {}, [8], 8n, Symbol('bad'), () => 8];
const NOT_A_BOOLEAN = [1, 0, 'true', null, {}, [true], 1n];
const NOT_AN_ARRAY = [Array.from({ length: 4 }, () => 0.5), new Float64Array(4), new Int32Array(4), new Uint8Array(4),
  new ArrayBuffer(16), new DataView(new ArrayBuffer(16)), 'abcd', 4, null, { length: 4 }, true];
const NOT_OPTIONS = [5, 'options', true, [], [1, 2], 5n, Symbol('options')];
const KINDS = {
  posInt: [
    ['wrong type', TypeError, NOT_A_NUMBER], ['NaN', RangeError, [NaN]], ['infinite', RangeError, [Infinity, -Infinity]],
    ['negative', RangeError, [-1, -7, -(2 ** 31)]], ['zero', RangeError, [0, -0]], ['non-integer', RangeError, [1.5, 2.0001, 1e-9]],
    ['over 2^31 - 1', RangeError, [2 ** 31, 2 ** 32 + 3, 2 ** 53, 1e300]],
  ],
  nonNegInt: [
    ['wrong type', TypeError, NOT_A_NUMBER], ['NaN', RangeError, [NaN]], ['infinite', RangeError, [Infinity, -Infinity]],
    ['negative', RangeError, [-1, -(2 ** 31)]], ['non-integer', RangeError, [0.5, 3.25]],
    ['over 2^31 - 1', RangeError, [2 ** 31, 2 ** 53, 1e300]],
  ],
  number: [
    ['wrong type', TypeError, NOT_A_NUMBER], ['NaN', RangeError, [NaN]], ['infinite', RangeError, [Infinity, -Infinity]],
    ['out of range', RangeError, (p) => p.outside ?? []],
  ],
  seed: [
    ['wrong type', TypeError, ['7', true, null, {}, 7n]], ['NaN', RangeError, [NaN]], ['infinite', RangeError, [Infinity]],
    ['negative', RangeError, [-1]], ['non-integer', RangeError, [0.5]], ['over 2^53', RangeError, [2 ** 53, 1e300]],
  ],
  boolean: [['wrong type', TypeError, NOT_A_BOOLEAN]],
  // allowed: the accepted values; a string outside them is a RangeError, anything else a TypeError.
  enum: [
    ['unknown option value', RangeError, (p) => ['bogus', '', p.allowed.filter((a) => typeof a === 'string')[0]?.toUpperCase() ?? 'X', ' none']],
    ['wrong type', TypeError, (p) => [5, {}, [p.allowed[0]], 1n, p.nullable ? undefined : null].filter((v) => v !== undefined && !p.allowed.includes(v))],
  ],
  // A Float32Array argument of a fixed expected length.
  tensor: [
    ['wrong array type', TypeError, (p) => [...NOT_AN_ARRAY, ...(p.nullable ? [] : [undefined])].filter((v) => v !== null || !p.nullable)],
    ['wrong length', RangeError, (p) => [new Float32Array(p.length + 1), new Float32Array(p.length * 2 + 1),
      new Float32Array(p.length + 1).subarray(1, p.length)]],
    ['empty', RangeError, [new Float32Array(0)]],
  ],
  // A mask: Float32Array (additive) or Uint8Array (boolean) of a fitting length.
  mask: [
    ['wrong array type', TypeError, [new Float64Array(4), new Int8Array(4), new Uint16Array(4), [0, 0, 0, 0], 'mask', 7, {}]],
    ['wrong length', RangeError, (p) => [new Float32Array(p.length + 1), new Uint8Array(p.length * 7 + 1), new Float32Array(0)]],
  ],
  options: [['not an object', TypeError, NOT_OPTIONS]],
  // Sizes a 32-bit heap cannot hold (the parameter, or "memory", must be named).
  heap: [['too large for the heap', RangeError, (p) => p.huge]],
  // Values a parameter refuses for its own reasons (a divisor that does not divide, ...).
  custom: [['refused value', (p) => p.error ?? RangeError, (p) => p.values]],
};

// ---- The problem every call uses: small shapes, valid inputs.
const HEADS = 2, DIM = 4, SEQ = 3;
const tensorRandom = makeRandom(0x5eed);
const T = (n) => randomF32(tensorRandom, n);
const Q = T(SEQ * HEADS * DIM), K = T(SEQ * HEADS * DIM), V = T(SEQ * HEADS * DIM);
const E = HEADS * DIM;  // model width of the layers
const X = T(SEQ * E), XK = T(SEQ * E), XV = T(SEQ * E);

// A parameter spec: { kind, length (tensors), nullable (null/undefined mean "absent"),
// names (what the message may name instead: a length error of V may name valueDim) }.
const tensor = (length, extra) => ({ kind: 'tensor', length, ...extra });
const mask = (length, extra) => ({ kind: 'mask', length, ...extra });
const posInt = (extra) => ({ kind: 'posInt', ...extra });
const nonNegInt = (extra) => ({ kind: 'nonNegInt', ...extra });
const number = (outside, extra) => ({ kind: 'number', outside, ...extra });
const boolean = { kind: 'boolean' };
const seed = { kind: 'seed' };
const oneOf = (allowed, extra) => ({ kind: 'enum', allowed, ...extra });
const RUNTIME = { kind: 'custom', error: TypeError, values: [{}, 'simd', 5, null, { module: {} }] };
const OPTIONS = { kind: 'options' };

// The options object of a call: `$options` (a bad one) or the named fields that are set.
function opts(a, names, extra = {}) {
  if ('$options' in a) return a.$options;
  const o = { ...extra };
  for (const n of names) if (a[n] !== undefined) o[n] = a[n];
  return o;
}

// ---- The API. Each entry: valid args, a call, and the spec of each parameter it checks.
// `obj` is a live object of the entry's class (made once per runtime by `make`).
const FLASH_OPT = ['heads', 'dim', 'blockSize', 'causal', 'dropout', 'scale', 'simd', 'seed', 'runtime'];
const API = [];

function entry(name, spec) { API.push({ name, ...spec }); }

entry('new WasmFlashAttention', {
  args: () => ({ heads: HEADS, dim: DIM }),
  call: (rt, a) => new WasmFlashAttention(opts(a, FLASH_OPT, { runtime: rt })),
  params: {
    $options: OPTIONS, heads: posInt(), dim: posInt(), blockSize: posInt(),
    causal: boolean, dropout: number([1, 1.5, -0.1]), scale: number([]), simd: boolean, seed, runtime: RUNTIME,
  },
  custom: { blockSize: { values: [4097, 2 ** 30] } },
});
const flashTensors = { Q: tensor(Q.length), K: tensor(K.length), V: tensor(V.length, { names: ['V', 'valueDim'] }) };
entry('WasmFlashAttention.forward', {
  cls: 'flash', args: () => ({ Q, K, V, mask: undefined }),
  call: (o, a) => o.forward(a.Q, a.K, a.V, a.mask),
  params: { ...flashTensors, mask: mask(SEQ * SEQ, { nullable: true }) },
});
entry('WasmFlashAttention.forwardExtended', {
  cls: 'flash', args: () => ({ Q, K, V }),
  call: (o, a) => o.forwardExtended('$options' in a ? a.$options
    : { q: a.Q, k: a.K, v: a.V, ...opts(a, ['batch', 'headsKv', 'valueDim', 'scale', 'softcap', 'dropout', 'seed', 'causal', 'blockQ', 'mask', 'maskLayout', 'returnLse']) }),
  params: {
    $options: { kind: 'custom', error: TypeError, values: [null, 5, 'q'], names: ['inputs'] },
    ...flashTensors, batch: posInt({ names: ['batch', 'Q'] }), headsKv: posInt({ names: ['headsKv', 'K'] }),
    valueDim: posInt({ names: ['valueDim', 'V'] }), scale: number([]), softcap: number([-1, -1e-9]),
    dropout: number([1, -0.5]), seed, causal: oneOf([true, false, 'top-left', 'bottom-right', 'none']),
    blockQ: nonNegInt(), mask: mask(SEQ * SEQ, { nullable: true }), maskLayout: oneOf(['qk', 'bqk', 'hqk', 'bhqk']),
    returnLse: boolean,
  },
  custom: { headsKv: { values: [3, 4], names: ['headsKv'] }, blockQ: { values: [4097, 2 ** 31 - 1], names: ['blockQ'] } },
});
entry('WasmFlashAttention.attentionScores', {
  cls: 'flash', args: () => ({ Q, K }),
  call: (o, a) => o.attentionScores(a.Q, a.K, a.mask),
  params: { Q: flashTensors.Q, K: flashTensors.K, mask: mask(SEQ * SEQ, { nullable: true }) },
});
entry('WasmFlashAttention.benchmark', {
  cls: 'flash', args: () => ({ seqLen: 4, minRuns: 1, minTimeMs: 0 }),
  call: (o, a) => o.benchmark(a.seqLen, opts(a, ['minTimeMs', 'minRuns'])),
  params: {
    seqLen: posInt({ huge: [2 ** 29, 2 ** 31 - 1] }), $options: { kind: 'options', nullable: true },
    minTimeMs: number([-1, 60001]), minRuns: posInt(),
  },
  custom: { minRuns: { values: [10001] } },
});

const LINEAR_OPT = ['dim', 'heads', 'featureMap', 'eps', 'causal', 'runtime'];
entry('new WasmLinearAttention', {
  args: () => ({ dim: DIM, heads: HEADS }),
  call: (rt, a) => new WasmLinearAttention(opts(a, LINEAR_OPT, { runtime: rt })),
  params: {
    $options: OPTIONS, dim: posInt({ required: true }), heads: posInt(), featureMap: oneOf(['elu', 'relu', 'dpfp']),
    eps: number([-1e-6]), causal: boolean, runtime: RUNTIME,
  },
});
entry('WasmLinearAttention.forward', {
  cls: 'linear', args: () => ({ Q, K, V }),
  call: (o, a) => o.forward(a.Q, a.K, a.V, opts(a, ['out'])),
  params: { ...flashTensors, V: tensor(V.length), $options: { kind: 'options', nullable: true }, out: tensor(Q.length, { nullable: true }) },
});
entry('WasmLinearAttention.forwardExtended', {
  cls: 'linear', args: () => ({ Q, K, V }),
  call: (o, a) => o.forwardExtended('$options' in a ? a.$options : { q: a.Q, k: a.K, v: a.V, ...opts(a, ['batch', 'causal', 'out']) }),
  params: {
    $options: { kind: 'custom', error: TypeError, values: [null, 5, 'q'], names: ['inputs'] },
    Q: flashTensors.Q, K: flashTensors.K, V: tensor(V.length), batch: posInt({ names: ['batch', 'Q'] }), causal: boolean,
    out: tensor(Q.length, { nullable: true }),
  },
});

const SPARSE_OPT = ['heads', 'headDim', 'pattern', 'windowSize', 'stride', 'blockSize', 'scales', 'seed', 'numClusters', 'scale', 'runtime'];
const CENTROIDS = T(HEADS * 2 * DIM);
entry('new WasmSparseAttention', {
  args: () => ({ heads: HEADS, headDim: DIM, pattern: 'clustered', numClusters: 2, blockSize: 32 }),
  call: (rt, a) => new WasmSparseAttention(opts(a, SPARSE_OPT, { runtime: rt })),
  params: {
    $options: OPTIONS, heads: posInt(), headDim: posInt({ required: true }),
    pattern: oneOf(['local', 'strided', 'random', 'clustered', 'hierarchical']), windowSize: posInt(), stride: posInt(),
    blockSize: posInt(), scales: { kind: 'custom', error: TypeError, values: [4, 'x', { 0: 4 }, null, new Int32Array([4])] },
    seed, numClusters: posInt(), scale: number([]), runtime: RUNTIME,
  },
  custom: {
    blockSize: { values: [16, 33, 2048, 1056] },
    scales: { values: [[0], [3, 2], [4, 6], [1], [4, 4], [-4], [4.5], [4, 2 ** 31]] },
    scales$type: { values: [['4'], [null], [4n]], error: TypeError },
  },
});
entry('WasmSparseAttention.forward', {
  cls: 'sparse', args: () => ({ Q, K, V, centroids: CENTROIDS }),
  call: (o, a) => o.forward(a.Q, a.K, a.V, opts(a, ['batch', 'centroids', 'out'])),
  params: {
    Q: flashTensors.Q, K: flashTensors.K, V: tensor(V.length), $options: { kind: 'options', nullable: true },
    batch: posInt({ names: ['batch', 'Q'] }), centroids: tensor(CENTROIDS.length), out: tensor(Q.length, { nullable: true }),
  },
});
// The mask of a pattern without centroids (seqLen and batch alone decide its size) ...
entry('WasmSparseAttention.getPatternMask', {
  cls: 'sparseLocal', args: () => ({ seqLen: SEQ }),
  call: (o, a) => o.getPatternMask(a.seqLen, opts(a, ['batch'])),
  params: {
    seqLen: posInt({ huge: [2 ** 16 + 1, 2 ** 20, 2 ** 31 - 1] }), $options: { kind: 'options', nullable: true },
    batch: posInt({ huge: [2 ** 30, 2 ** 31 - 1] }),
  },
});
// ... and of the clustered one, which needs Q, K and the centroids.
entry('WasmSparseAttention.getPatternMask (clustered)', {
  cls: 'sparse', args: () => ({ seqLen: SEQ, Q, K, centroids: CENTROIDS }),
  call: (o, a) => o.getPatternMask(a.seqLen, opts(a, ['batch', 'Q', 'K', 'centroids'])),
  params: {
    seqLen: posInt({ names: ['seqLen', 'Q'] }), batch: posInt({ names: ['batch', 'Q'] }), Q: tensor(Q.length),
    K: tensor(K.length), centroids: tensor(CENTROIDS.length),
  },
});

const KV_OPT = ['heads', 'headDim', 'valueDim', 'precision', 'capacity', 'runtime'];
entry('new WasmKVCache', {
  args: () => ({ heads: HEADS, headDim: DIM }),
  call: (rt, a) => new WasmKVCache(opts(a, KV_OPT, { runtime: rt })),
  params: {
    $options: OPTIONS, heads: posInt(), headDim: posInt({ required: true }), valueDim: posInt(),
    precision: oneOf(['fp32', 'fp16', 'bf16']), capacity: nonNegInt({ huge: [2 ** 28, 2 ** 31 - 1] }), runtime: RUNTIME,
  },
});
entry('WasmKVCache.append', {
  cls: 'kv', args: () => ({ K, V }),
  call: (o, a) => o.append(a.K, a.V),
  params: { K: tensor(K.length), V: tensor(V.length) },
});
entry('WasmKVCache.attend', {
  cls: 'kv', args: () => ({ Q }),
  call: (o, a) => o.attend(a.Q, opts(a, ['scale', 'causal', 'out'])),
  params: {
    Q: tensor(Q.length), $options: { kind: 'options', nullable: true }, scale: number([0, -1]), causal: boolean,
    out: tensor(Q.length, { nullable: true }),
  },
  custom: { Q: { values: [T(4 * HEADS * DIM)], names: ['Q'], extra: { causal: true } } },
});

const MHA_OPT = ['modelDim', 'heads', 'kdim', 'vdim', 'bias', 'dropout', 'seed', 'causal', 'runtime'];
entry('new WasmMultiHeadAttention', {
  args: () => ({ modelDim: E, heads: HEADS }),
  call: (rt, a) => new WasmMultiHeadAttention(opts(a, MHA_OPT, { runtime: rt })),
  params: {
    $options: OPTIONS, modelDim: posInt({ required: true, huge: [2 ** 20, 2 ** 28, 2 ** 31 - 1] }), heads: posInt(),
    kdim: posInt({ huge: [2 ** 30] }), vdim: posInt({ huge: [2 ** 30] }), bias: boolean, dropout: number([1, -0.1]), seed,
    causal: boolean, runtime: RUNTIME,
  },
  custom: { heads: { values: [3, 5, 16] } },
});
entry('new WasmCrossAttention', {
  args: () => ({ queryDim: E, keyDim: 6, heads: HEADS }),
  call: (rt, a) => new WasmCrossAttention(opts(a, ['queryDim', 'keyDim', 'heads', 'bias', 'runtime'], { runtime: rt })),
  params: {
    $options: OPTIONS, queryDim: posInt({ required: true, huge: [2 ** 20] }), keyDim: posInt({ required: true, huge: [2 ** 30] }),
    heads: posInt(), bias: boolean, runtime: RUNTIME,
  },
});
const MHA_TENSORS = { query: tensor(X.length), key: tensor(XK.length), value: tensor(XV.length) };
const WEIGHTS = {
  $weights: { kind: 'custom', error: TypeError, values: [5, 'w', null, [], new Float32Array(4), new Int8Array(4)], names: ['weights'] },
};
const MHA_WEIGHT_CUSTOM = {
  $weights: { values: [new Uint8Array(3), new Uint8Array(64).fill(7), { bogus: new Float32Array(4) }, { in_proj_weight: new Float32Array(5) }],
    names: ['weights', 'bogus', 'in_proj_weight'] },
  $weights$type: { values: [{ in_proj_weight: new Float64Array(3 * E * E) }, { 'out_proj.weight': [1, 2] }], error: TypeError,
    names: ['in_proj_weight', 'out_proj.weight'] },
};
const CROSS_KV = T(SEQ * 6);
for (const [cls, where] of [['mha', 'WasmMultiHeadAttention'], ['cross', 'WasmCrossAttention']]) {
  const key = cls === 'cross' ? CROSS_KV : XK, value = cls === 'cross' ? CROSS_KV : XV;
  const tensors = { query: tensor(X.length), key: tensor(key.length), value: tensor(value.length) };
  entry(`${where}.forward`, {
    cls, args: () => ({ query: X, key, value }),
    call: (o, a) => o.forward(a.query, a.key, a.value, a.mask),
    params: { ...tensors, mask: mask(SEQ * SEQ, { nullable: true }) },
  });
  entry(`${where}.forwardExtended`, {
    cls, args: () => ({ query: X, key, value }),
    call: (o, a) => o.forwardExtended('$options' in a ? a.$options : opts(a, ['query', 'key', 'value', 'batch', 'mask', 'maskLayout', 'causal'])),
    params: {
      $options: { kind: 'custom', error: TypeError, values: [null, 5, 'q'], names: ['inputs'] }, ...tensors,
      batch: posInt({ names: ['batch', 'query'] }), mask: mask(SEQ * SEQ, { nullable: true }),
      maskLayout: oneOf(['qk', 'bqk', 'hqk', 'bhqk']), causal: boolean,
    },
  });
  entry(`${where}.loadWeights`, { cls, args: () => ({}), call: (o, a) => o.loadWeights(a.$weights), params: WEIGHTS, custom: MHA_WEIGHT_CUSTOM });
  entry(`${where}.quantizeWeights`, {
    cls, args: () => ({ precision: 'int8' }),
    call: (o, a) => o.quantizeWeights(a.precision, opts(a, ['probe'])),
    params: {
      precision: oneOf(['int8', 'fp16', 'fp32', 'qint8', 'float16', 'float32']), $options: { kind: 'options', nullable: true },
      probe: { kind: 'custom', error: TypeError, values: [5, 'x', null, new Float64Array(4)] },
    },
    custom: { probe: { values: cls === 'cross' ? [X] : [new Float32Array(E + 1), { query: X, key: XK, value: new Float32Array(3) }],
      names: ['probe', 'value', 'query'] } },
  });
}

const DENSE_OPT = ['embedDim', 'numHeads', 'dropout', 'causal', 'bias', 'seed', 'training', 'runtime'];
entry('new WasmDenseAttention', {
  args: () => ({ embedDim: E, numHeads: HEADS }),
  call: (rt, a) => new WasmDenseAttention(opts(a, DENSE_OPT, { runtime: rt })),
  params: {
    $options: OPTIONS, embedDim: posInt({ required: true, huge: [2 ** 20, 2 ** 31 - 1] }), numHeads: posInt(),
    dropout: number([1, -0.1]), causal: boolean, bias: boolean, seed, training: boolean, runtime: RUNTIME,
  },
  custom: { numHeads: { values: [3, 16] } },
});
const LAYER_FORWARD = {
  ...MHA_TENSORS, $options: { kind: 'options', nullable: true }, batch: posInt({ names: ['batch', 'query'] }),
  attentionMask: mask(SEQ * SEQ, { nullable: true }), maskLayout: oneOf(['bk', 'qk', 'bqk', 'hqk', 'bhqk']),
  out: tensor(X.length, { nullable: true }),
};
LAYER_FORWARD.attentionMask = { ...LAYER_FORWARD.attentionMask, names: ['attentionMask'] };
entry('WasmDenseAttention.forward', {
  cls: 'dense', args: () => ({ query: X, key: XK, value: XV }),
  call: (o, a) => o.forward(a.query, a.key, a.value, opts(a, ['batch', 'needWeights', 'attentionMask', 'maskLayout', 'out'])),
  params: { ...LAYER_FORWARD, needWeights: boolean },
});
entry('WasmDenseAttention.train', { cls: 'dense', args: () => ({}), call: (o, a) => o.train(a.mode), params: { mode: { ...boolean, nullable: true } } });
entry('WasmDenseAttention.loadWeights', { cls: 'dense', args: () => ({}), call: (o, a) => o.loadWeights(a.$weights), params: WEIGHTS, custom: MHA_WEIGHT_CUSTOM });

const PREC_OPT = ['embedDim', 'numHeads', 'defaultPrecision', 'tolerance', 'sampleRows', 'causal', 'bias', 'seed', 'runtime'];
entry('new WasmAdaptivePrecisionAttention', {
  args: () => ({ embedDim: E, numHeads: HEADS }),
  call: (rt, a) => new WasmAdaptivePrecisionAttention(opts(a, PREC_OPT, { runtime: rt })),
  params: {
    $options: OPTIONS, embedDim: posInt({ required: true, huge: [2 ** 16, 2 ** 20] }), numHeads: posInt(),
    defaultPrecision: oneOf(['fp32', 'fp16', 'bf16', 'adaptive']), tolerance: number([-1e-3]), sampleRows: posInt(),
    causal: boolean, bias: boolean, seed, runtime: RUNTIME,
  },
  custom: { numHeads: { values: [3] } },
});
entry('WasmAdaptivePrecisionAttention.forward', {
  cls: 'precision', args: () => ({ query: X, key: XK, value: XV }),
  call: (o, a) => o.forward(a.query, a.key, a.value, opts(a, ['batch', 'causal', 'attentionMask', 'maskLayout', 'keepCache', 'out'])),
  params: { ...LAYER_FORWARD, causal: oneOf([false, true, 'top-left', 'bottom-right']), keepCache: boolean },
});
entry('WasmAdaptivePrecisionAttention.step', {
  cls: 'precision', args: () => ({ query: X, key: XK, value: XV }),
  call: (o, a) => o.step(a.query, a.key, a.value, opts(a, ['out'])),
  params: { ...MHA_TENSORS, $options: { kind: 'options', nullable: true }, out: tensor(X.length, { nullable: true }) },
});
entry('WasmAdaptivePrecisionAttention.loadWeights', {
  cls: 'precision', args: () => ({}), call: (o, a) => o.loadWeights(a.$weights), params: WEIGHTS, custom: MHA_WEIGHT_CUSTOM,
});

const RANK_OPT = ['embedDim', 'numHeads', 'rankRatio', 'rankEstimationMethod', 'adaptiveThreshold', 'maxSampledError', 'seed', 'runtime'];
entry('new WasmAdaptiveRankAttention', {
  args: () => ({ embedDim: E, numHeads: HEADS }),
  call: (rt, a) => new WasmAdaptiveRankAttention(opts(a, RANK_OPT, { runtime: rt })),
  params: {
    $options: OPTIONS, embedDim: posInt({ required: true, huge: [2 ** 16, 2 ** 20] }), numHeads: posInt(),
    rankRatio: number([0, -1]), rankEstimationMethod: oneOf(['entropy', 'power', 'random']),
    adaptiveThreshold: number([-0.1, 1.1]), maxSampledError: number([-1]), seed, runtime: RUNTIME,
  },
  custom: { numHeads: { values: [3] } },
});
for (const [method, names, width] of [['forward', ['query', 'key', 'value'], E], ['attention', ['q', 'k', 'v'], E]]) {
  const tensors = Object.fromEntries(names.map((n) => [n, tensor(SEQ * width)]));
  entry(`WasmAdaptiveRankAttention.${method}`, {
    cls: 'rank', args: () => ({ [names[0]]: X, [names[1]]: XK, [names[2]]: XV }),
    call: (o, a) => o[method](a[names[0]], a[names[1]], a[names[2]], opts(a, ['batch', 'causal', 'mask', 'maskLayout', 'out'])),
    params: {
      ...tensors, $options: { kind: 'options', nullable: true }, batch: posInt({ names: ['batch', names[0]] }), causal: boolean,
      mask: mask(SEQ * SEQ, { nullable: true }), maskLayout: oneOf(['qk', 'bqk', 'hqk', 'bhqk']), out: tensor(X.length, { nullable: true }),
    },
  });
}
entry('WasmAdaptiveRankAttention.loadWeights', {
  cls: 'rank', args: () => ({}), call: (o, a) => o.loadWeights(a.$weights),
  params: { $weights: { ...WEIGHTS.$weights, values: [...WEIGHTS.$weights.values, new Uint8Array(8)] } },
  custom: { $weights: { values: [{ bogus: new Float32Array(4) }, { 'q_proj.weight': new Float32Array(3) }], names: ['bogus', 'q_proj.weight', 'name'] } },
});

const ASAM_OPT = ['dim', 'numHeads', 'dimHead', 'dropout', 'patternType', 'windowSize', 'stride', 'numClusters',
  'useAdaptiveGate', 'gateHiddenDim', 'confidenceThreshold', 'blockSize', 'seed', 'runtime'];
const ASAM_PARAMS = {
  $options: OPTIONS, dim: posInt({ huge: [2 ** 20, 2 ** 31 - 1] }), numHeads: posInt(), dimHead: nonNegInt({ huge: [2 ** 26, 2 ** 31 - 1] }),
  dropout: number([1, -0.1]), patternType: oneOf(['local', 'strided', 'random', 'clustered', 'hierarchical', 'adaptive']),
  windowSize: posInt(), stride: posInt(), numClusters: posInt({ huge: [2 ** 28, 2 ** 31 - 1] }), useAdaptiveGate: boolean,
  gateHiddenDim: posInt({ huge: [2 ** 28, 2 ** 31 - 1] }), confidenceThreshold: number([-0.1, 1.5]), blockSize: posInt(),
  seed, runtime: RUNTIME,
};
const ASAM_ARGS = { dim: E, numHeads: HEADS, gateHiddenDim: 4, numClusters: 2, blockSize: 32, windowSize: 32, stride: 8 };
entry('new WasmASAMLayer', {
  args: () => ({ ...ASAM_ARGS }),
  call: (rt, a) => new WasmASAMLayer(opts(a, ASAM_OPT, { runtime: rt })),
  params: ASAM_PARAMS, custom: { numHeads: { values: [3, 16] } },
});
entry('new WasmASAMEncoder', {
  args: () => ({ ...ASAM_ARGS, numLayers: 2 }),
  call: (rt, a) => new WasmASAMEncoder(opts(a, [...ASAM_OPT, 'numLayers'], { runtime: rt })),
  params: { ...ASAM_PARAMS, numLayers: posInt({ huge: [2 ** 24, 2 ** 31 - 1] }) },
});
entry('new WasmHybridASAM', {
  args: () => ({ ...ASAM_ARGS, localWindowSize: 4 }),
  call: (rt, a) => new WasmHybridASAM(opts(a, [...ASAM_OPT, 'localWindowSize', 'numGlobalTokens'], { runtime: rt })),
  params: { ...ASAM_PARAMS, localWindowSize: posInt(), numGlobalTokens: nonNegInt() },
});
for (const [cls, where] of [['asam', 'WasmASAMLayer'], ['encoder', 'WasmASAMEncoder'], ['hybrid', 'WasmHybridASAM']]) {
  entry(`${where}.forward`, {
    cls, args: () => ({ x: X }),
    call: (o, a) => o.forward(a.x, opts(a, ['batch', 'returnInfo', 'out', 'mask'])),
    params: {
      x: tensor(X.length), $options: { kind: 'options', nullable: true }, batch: posInt({ names: ['batch', 'x'] }),
      returnInfo: boolean, out: tensor(X.length, { nullable: true }),
      mask: { kind: 'custom', error: TypeError, values: [new Float32Array(SEQ * SEQ), new Uint8Array(SEQ * SEQ), 0] },
    },
  });
  entry(`${where}.quantizeWeights`, {
    cls, args: () => ({ precision: 'fp16' }),
    call: (o, a) => o.quantizeWeights(a.precision, opts(a, ['probe'])),
    params: {
      precision: oneOf(['int8', 'fp16', 'fp32', 'qint8', 'float16', 'float32']), $options: { kind: 'options', nullable: true },
      probe: { kind: 'custom', error: TypeError, values: [5, null, [1, 2], new Float64Array(E)] },
    },
    custom: { probe: { values: [new Float32Array(E + 3), new Float32Array(0)] } },
  });
  const load = where === 'WasmASAMEncoder' ? (o, a) => o.loadWeights(a.layer ?? 0, a.$weights) : (o, a) => o.loadWeights(a.$weights);
  entry(`${where}.loadWeights`, {
    cls, args: () => ({}), call: load, params: WEIGHTS,
    custom: { $weights: { values: [{ bogus: new Float32Array(4) }, { 'q_proj.weight': new Float32Array(3) },
      ...(where === 'WasmHybridASAM' ? [] : [new Uint8Array(40).fill(1)])],
    names: ['weights', 'bogus', 'q_proj.weight'] } },
  });
}
entry('WasmASAMEncoder.saveWeights', {
  cls: 'encoder', args: () => ({ layer: 0 }), call: (o, a) => o.saveWeights(a.layer),
  params: { layer: nonNegInt() },
  custom: { layer: { values: [2, 3, 1000] } },
});

entry('createMask', {
  args: () => ({ type: 'padding', seqLen: 4, positions: [1] }),
  call: (rt, a) => createMask(a.type, a.seqLen, a.positions),
  params: {
    type: oneOf(['causal', 'padding', 'block'], { required: true }), seqLen: posInt({ required: true, huge: [2 ** 20, 2 ** 31 - 1] }),
    positions: { kind: 'custom', error: TypeError, values: [5, 'x', { 0: 1 }, true] },
  },
  custom: { positions: { values: [[-1], [4], [1.5], ['1'], [NaN], [Infinity]] } },
});
entry('computeAttentionSparsity', {
  args: () => ({ mask: new Float32Array(4) }),
  call: (rt, a) => computeAttentionSparsity(a.mask),
  params: { mask: { kind: 'custom', error: TypeError, values: [undefined, null, [0, 1], new Float64Array(4), 'm', 3] } },
  custom: { mask: { values: [new Float32Array(0), new Uint8Array(0)] } },
});
entry('measureAttentionEfficiency', {
  args: () => ({ attnFn: () => {}, numWarmup: 0, numRuns: 1 }),
  call: (rt, a) => measureAttentionEfficiency(a.attnFn, Q, K, V, opts(a, ['numWarmup', 'numRuns', 'flops', 'runtime'], { runtime: rt })),
  params: {
    attnFn: { kind: 'custom', error: TypeError, values: [undefined, null, 5, 'f', {}] }, $options: { kind: 'options', nullable: true },
    numWarmup: nonNegInt(), numRuns: posInt(), flops: { ...number([-1]), nullable: true }, runtime: RUNTIME,
  },
  custom: { attnFn: { values: [async () => {}], error: TypeError } },
});
entry('memoryEfficientAttention', {
  args: () => ({ Q, K, V, heads: HEADS, headDim: DIM, chunkSize: 2 }),
  call: (rt, a) => memoryEfficientAttention(a.Q, a.K, a.V, opts(a, ['heads', 'headDim', 'chunkSize', 'causal', 'scale', 'mask', 'seqLen', 'runtime'], { runtime: rt })),
  params: {
    Q: flashTensors.Q, K: flashTensors.K, V: tensor(V.length), $options: { kind: 'options' }, heads: posInt({ required: true, names: ['heads', 'Q'] }),
    headDim: posInt({ required: true, names: ['headDim', 'Q'] }), chunkSize: posInt(), causal: boolean, scale: number([]),
    mask: mask(SEQ * SEQ, { nullable: true }), seqLen: posInt(), runtime: RUNTIME,
  },
  custom: { seqLen: { values: [SEQ + 1, 1] } },
});
entry('lowRankAttention', {
  args: () => ({ Q, K, V, heads: HEADS, headDim: DIM, landmarks: 2 }),
  call: (rt, a) => lowRankAttention(a.Q, a.K, a.V, opts(a, ['heads', 'headDim', 'headsKv', 'valueDim', 'landmarks', 'batch', 'scale', 'out', 'runtime'], { runtime: rt })),
  params: {
    Q: flashTensors.Q, K: flashTensors.K, V: tensor(V.length, { names: ['V', 'valueDim'] }), $options: { kind: 'options', nullable: true },
    heads: posInt({ names: ['heads', 'Q'] }), headDim: posInt({ required: true, names: ['headDim', 'Q'] }),
    headsKv: posInt({ names: ['headsKv', 'K'] }), valueDim: posInt({ names: ['valueDim', 'V'] }), landmarks: posInt({ required: true }),
    batch: posInt({ names: ['batch', 'Q'] }), scale: number([0, -1]), out: tensor(Q.length, { nullable: true }), runtime: RUNTIME,
  },
});
entry('quantizeASAMModel', {
  cls: 'asam', args: () => ({ dtype: 'int8' }),
  call: (o, a) => quantizeASAMModel('model' in a ? a.model : o, a.dtype, opts(a, ['probe'])),
  params: {
    model: { kind: 'custom', error: TypeError, values: [undefined, null, {}, 5, 'model', { quantizeWeights: 1 }] },
    dtype: oneOf(['int8', 'qint8', 'fp16', 'float16'], { required: true }), $options: { kind: 'options', nullable: true },
  },
  custom: { dtype: { values: ['fp32', 'float32', 'int4'] } },
});
entry('transfer', {
  args: () => ({}), call: (rt, a) => transfer(a.value),
  params: { value: { kind: 'custom', error: TypeError, values: [undefined, null, 5, 'x', [1, 2], {}, { buffer: new ArrayBuffer(4) }] } },
});
entry('setNumThreads', {
  args: () => ({}), call: (rt, a) => (rt ? rt.setNumThreads(a.numThreads) : setNumThreads(a.numThreads)),
  params: { numThreads: posInt({ required: true }) },
  custom: { numThreads: { values: [65, 257, 10000] } },
});

// ---- Live objects per runtime (cls -> object), made with valid options.
function makeObjects(runtime) {
  const o = {
    flash: new WasmFlashAttention({ heads: HEADS, dim: DIM, runtime }),
    linear: new WasmLinearAttention({ heads: HEADS, dim: DIM, runtime }),
    sparse: new WasmSparseAttention({ heads: HEADS, headDim: DIM, pattern: 'clustered', numClusters: 2, blockSize: 32, runtime }),
    sparseLocal: new WasmSparseAttention({ heads: HEADS, headDim: DIM, pattern: 'local', windowSize: 2, blockSize: 32, runtime }),
    kv: new WasmKVCache({ heads: HEADS, headDim: DIM, runtime }),
    mha: new WasmMultiHeadAttention({ modelDim: E, heads: HEADS, seed: 1, runtime }),
    cross: new WasmCrossAttention({ queryDim: E, keyDim: 6, heads: HEADS, seed: 2, runtime }),
    dense: new WasmDenseAttention({ embedDim: E, numHeads: HEADS, seed: 3, runtime }),
    precision: new WasmAdaptivePrecisionAttention({ embedDim: E, numHeads: HEADS, seed: 4, runtime }),
    rank: new WasmAdaptiveRankAttention({ embedDim: E, numHeads: HEADS, seed: 5, runtime }),
    asam: new WasmASAMLayer({ ...ASAM_ARGS, seed: 6, runtime }),
    encoder: new WasmASAMEncoder({ ...ASAM_ARGS, numLayers: 2, seed: 7, runtime }),
    hybrid: new WasmHybridASAM({ ...ASAM_ARGS, localWindowSize: 4, seed: 8, runtime }),
  };
  o.kv.append(K, V);
  return o;
}

// One deterministic answer per object: compared before and after the invalid calls.
function answers(o) {
  return {
    flash: o.flash.forward(Q, K, V),
    linear: o.linear.forward(Q, K, V),
    sparse: o.sparse.forward(Q, K, V, { centroids: CENTROIDS }),
    sparseLocal: o.sparseLocal.getPatternMask(SEQ),
    kv: o.kv.attend(Q.subarray(0, HEADS * DIM)),
    mha: o.mha.forward(X, XK, XV),
    cross: o.cross.forward(X, CROSS_KV, CROSS_KV),
    dense: o.dense.forward(X, XK, XV).output,
    precision: o.precision.forward(X, XK, XV).output,
    rank: o.rank.forward(X, XK, XV),
    asam: o.asam.forward(X),
    encoder: o.encoder.forward(X),
    hybrid: o.hybrid.forward(X),
  };
}

// ---- The generator.
function pick(random, list) { return list[Math.floor(random() * list.length)]; }

// Every (entry, parameter, bad class, values, ErrorClass, names) the API admits.
function candidates(e) {
  const out = [];
  for (const [param, spec] of Object.entries(e.params)) {
    for (const [cls, ErrorClass, values] of KINDS[spec.kind]) {
      let list = typeof values === 'function' ? values(spec) : values;
      if (spec.nullable) list = list.filter((v) => v !== null && v !== undefined);
      if (list.length === 0) continue;
      const Err = typeof ErrorClass === 'function' && ErrorClass.prototype instanceof Error || ErrorClass === Error ? ErrorClass : ErrorClass(spec);
      out.push({ param, cls, ErrorClass: Err, values: list, names: spec.names ?? [param.replace(/^\$/, '')] });
    }
    if (spec.required && !spec.nullable && spec.kind !== 'tensor') {
      out.push({ param, cls: 'missing', ErrorClass: TypeError, values: [undefined], names: spec.names ?? [param] });
    }
    if (spec.huge) {
      out.push({ param, cls: 'too large for the heap', ErrorClass: RangeError, values: spec.huge, names: [...(spec.names ?? [param]), 'memory'] });
    }
  }
  for (const [key, c] of Object.entries(e.custom ?? {})) {
    const param = key.replace(/\$type$/, '');
    out.push({
      param, cls: 'refused value', ErrorClass: c.error ?? RangeError, values: c.values, names: c.names ?? [param.replace(/^\$/, '')],
      extra: c.extra,
    });
  }
  return out;
}

const TALLY = new Map();  // bad-input class -> { tried, passed }
const API_TALLY = new Map();

function tally(map, key, ok) {
  const row = map.get(key) ?? { tried: 0, passed: 0 };
  row.tried += 1;
  if (ok) row.passed += 1;
  map.set(key, row);
}

function describeValue(v) {
  if (typeof v === 'symbol') return v.toString();
  if (typeof v === 'bigint') return `${v}n`;
  if (typeof v === 'function') return 'a function';
  if (ArrayBuffer.isView(v)) return `${v.constructor.name}(${v.length ?? v.byteLength})`;
  if (v instanceof ArrayBuffer) return `ArrayBuffer(${v.byteLength})`;
  try { return JSON.stringify(v) ?? String(v); } catch { return String(v); }
}

// One invalid call; returns null when it behaved, else what went wrong.
function check(e, c, value, target) {
  const args = { ...e.args(), ...(c.extra ?? {}) };
  if (c.param === '$options' && value === undefined) return null;
  args[c.param] = value;
  let thrown = null;
  let result;
  try {
    result = e.call(target, args);
  } catch (err) {
    thrown = err;
  }
  if (thrown === null) {
    if (result && typeof result.dispose === 'function') result.dispose();
    return 'nothing was thrown';
  }
  if (!(thrown instanceof Error)) return `threw a non-Error: ${describeValue(thrown)}`;
  if (thrown.constructor !== c.ErrorClass) return `${thrown.constructor.name} instead of ${c.ErrorClass.name}: ${thrown.message}`;
  if (!c.names.some((n) => new RegExp(`(^|[^A-Za-z_.])${n.replace(/[.$]/g, '\\$&')}($|[^A-Za-z_])`).test(thrown.message))) {
    return `the message names none of ${c.names.join(', ')}: ${thrown.message}`;
  }
  return null;
}

function tinyFlashCheck(runtime, label) {
  const random = makeRandom(freshSeed());
  const q = randomF32(random, 2 * 3 * 4), k = randomF32(random, 5 * 3 * 4), v = randomF32(random, 5 * 3 * 4);
  const attn = new WasmFlashAttention({ heads: 3, dim: 4, runtime });
  try {
    assertClose(attn.forward(q, k, v), referenceFlash({ q, k, v, headsQ: 3, headDim: 4 }).output, label);
  } finally {
    attn.dispose();
  }
}

for (const { name, runtime } of RUNTIMES) {
  describe(`random invalid calls on ${name}`, () => {
    test(`${CALLS_PER_RUNTIME} calls across the API each throw the expected error naming the parameter`, { timeout: 240000 }, () => {
      const FAILURES = [];
      const seedValue = freshSeed();
      const random = makeRandom(seedValue);
      console.log(`fault fuzz on ${name}: seed ${seedValue} (base seed ${baseSeed()}; ATTNKIT_TEST_SEED=${baseSeed()} replays)`);
      const objects = makeObjects(runtime);
      const first = answers(objects);
      tinyFlashCheck(runtime, 'before');
      const heapBefore = objects.flash.getMemoryUsage().heapUsed;
      const all = API.flatMap((e) => candidates(e).map((c) => ({ e, c })));
      for (let i = 0; i < CALLS_PER_RUNTIME; ++i) {
        const { e, c } = pick(random, all);
        const value = pick(random, c.values);
        const target = e.cls ? objects[e.cls] : runtime;
        if (TRACE) console.log(`#${i} ${e.name}(${c.param} = ${describeValue(value)}) [${c.cls}]`);
        const problem = check(e, c, value, target);
        tally(TALLY, c.cls, problem === null);
        tally(API_TALLY, e.name, problem === null);
        if (problem !== null && FAILURES.length < 60) {
          FAILURES.push(`${name} #${i}: ${e.name}(${c.param} = ${describeValue(value)}) [${c.cls}]: ${problem}`);
        }
        if (i % 250 === 249) tinyFlashCheck(runtime, `after call ${i} (seed ${seedValue})`);
      }
      const heapAfter = objects.flash.getMemoryUsage().heapUsed;
      // Disposed objects: every method (and the getters that reach the C++ object) throws an
      // Error that says so; dispose() stays harmless.
      const disposed = makeObjects(runtime);
      for (const [cls, object] of Object.entries(disposed)) {
        object.dispose();
        object.dispose();
        for (const method of methodsOf(object)) {
          if (method === 'dispose') continue;
          let problem = null;
          try {
            const r = method.startsWith('get ') ? object[method.slice(4)] : object[method](Q, K, V);
            problem = `${cls}.${method} returned ${describeValue(r)} after dispose`;
          } catch (err) {
            if (err.constructor !== Error || !/disposed/.test(err.message)) problem = `${cls}.${method}: ${err.constructor.name}: ${err.message}`;
          }
          tally(TALLY, 'disposed object', problem === null);
          tally(API_TALLY, `${object.constructor.name} (disposed)`, problem === null);
          if (problem !== null) FAILURES.push(`${name}: disposed ${problem}`);
        }
      }
      // The module, and every object the calls were made on, still give their first answers.
      tinyFlashCheck(runtime, `after ${CALLS_PER_RUNTIME} invalid calls (seed ${seedValue})`);
      const last = answers(objects);
      for (const key of Object.keys(first)) assert.deepEqual(last[key], first[key], `${name}: ${key} changed after the invalid calls`);
      for (const object of Object.values(objects)) object.dispose();
      assert.deepEqual(FAILURES, [], `seed ${seedValue}`);
      // Nothing the failed calls allocated stays (tinyFlashCheck's objects come and go).
      assert.equal(heapAfter, heapBefore, `${name}: the invalid calls left the heap changed by ${heapAfter - heapBefore} bytes`);
    });
  });
}

// Methods of an object's classes, own and inherited, plus the getters that need the C++ object.
const LIVE_GETTERS = ['length', 'training', 'nextDropoutSeed', 'lastDecision', 'cacheLength', 'cachePrecision', 'rank'];
function methodsOf(object) {
  const names = new Set();
  for (let p = Object.getPrototypeOf(object); p && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    for (const n of Object.getOwnPropertyNames(p)) {
      const d = Object.getOwnPropertyDescriptor(p, n);
      if (n === 'constructor') continue;
      if (typeof d.value === 'function') names.add(n);
      if (d.get && LIVE_GETTERS.includes(n)) names.add(`get ${n}`);
    }
  }
  return [...names];
}

after(() => {
  const total = { tried: 0, passed: 0 };
  const row = (label, r) => `  ${label.padEnd(48)}${String(r.tried).padStart(7)}${String(r.passed).padStart(8)}`;
  const lines = [`random invalid calls, both variants (base seed ${baseSeed()}; ATTNKIT_TEST_SEED replays):`,
    `  ${'bad-input class'.padEnd(48)}${'tried'.padStart(7)}${'passed'.padStart(8)}`];
  for (const [cls, r] of [...TALLY].sort((a, b) => b[1].tried - a[1].tried)) {
    lines.push(row(cls, r));
    total.tried += r.tried;
    total.passed += r.passed;
  }
  lines.push(row('total', total), '', `  ${'API entry'.padEnd(48)}${'tried'.padStart(7)}${'passed'.padStart(8)}`);
  for (const [api, r] of [...API_TALLY].sort((a, b) => a[0].localeCompare(b[0]))) lines.push(row(api, r));
  console.log(lines.join('\n'));
});
