// A TypeScript consumer of every exported symbol, type-checked (never run) with
// `tsc -p tests/types`. The `@ts-expect-error` lines prove wrong calls are rejected: if the
// declarations ever accepted one of them, tsc would fail on the unused directive.
import init, {
  init as namedInit,
  createRuntime,
  getRuntimeInfo,
  setNumThreads,
  checkSIMDSupport,
  checkThreadSupport,
  createMask,
  computeAttentionSparsity,
  measureAttentionEfficiency,
  memoryEfficientAttention,
  WasmFlashAttention,
  WasmLinearAttention,
  WasmSparseAttention,
  WasmASAMLayer,
  WasmASAMEncoder,
  WasmHybridASAM,
  WasmKVCache,
  WasmAdaptiveRankAttention,
  lowRankAttention,
  WasmMultiHeadAttention,
  WasmCrossAttention,
  quantizeASAMModel,
} from 'attnkit';
import type {
  ASAMEncoderOptions,
  ASAMInfo,
  ASAMLayerOptions,
  AttentionEfficiency,
  AttentionEfficiencyOptions,
  AttentionMask,
  AttnRuntime,
  BenchmarkOptions,
  BenchmarkResult,
  CausalMode,
  FlashAttentionOptions,
  FlashInputs,
  FlashResult,
  FeatureMapName,
  InitOptions,
  LinearAttentionOptions,
  LinearForwardOptions,
  LinearInputs,
  MultiHeadAttentionOptions,
  CrossAttentionOptions,
  MultiHeadInputs,
  MultiHeadNamedWeights,
  MaskLayout,
  MaskType,
  MemoryEfficientAttentionOptions,
  MemoryInfo,
  PositionList,
  RuntimeInfo,
  SparseAttentionOptions,
  SparseForwardOptions,
  SparseMaskOptions,
  SparsePatternName,
  SparseStats,
  WasmVariant,
  QuantizationReport,
  WeightMemoryInfo,
} from 'attnkit';

// Exact type equality, for return types.
type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
function assertType<T extends true>(): T | void {}

// init: default and named export are the same function; string | URL | InitOptions.
const sameInit: typeof init = namedInit;
await sameInit();
await init('/static/attnkit-simd.wasm');
await init(new URL('https://example.com/attnkit.wasm'));
const initOptions: InitOptions = { wasmUrl: '/a.wasm', numThreads: 4, variant: 'auto' };
const initDone: Promise<void> = init(initOptions);
await initDone;

// Runtimes.
const single: AttnRuntime = await createRuntime({ variant: 'simd' });
const fromUrl: AttnRuntime = await createRuntime(new URL('file:///x.wasm'));
const variant: WasmVariant = single.variant;
const runtimeInfo: RuntimeInfo = single.info();
single.setNumThreads(1);
const counts: number[] = [single.threads, single.maxThreads, fromUrl.threads, runtimeInfo.threads];
const reason: string = single.reason;
const info: RuntimeInfo = getRuntimeInfo();
const simdFlag: true = info.simd;
setNumThreads(info.maxThreads);
const probes: boolean[] = [checkSIMDSupport(), checkThreadSupport()];

// Masks.
const maskType: MaskType = 'padding';
const positions: PositionList = [1, 3];
const causalMask: Float32Array = createMask('causal', 16);
const paddingMask = createMask(maskType, 16, positions);
const blockMask = createMask('block', 16, Int32Array.of(4, 8));
assertType<Equals<typeof paddingMask, Float32Array>>();
const booleanMask: AttentionMask = new Uint8Array(16 * 16).fill(1);
const layout: MaskLayout = 'bhqk';

// WasmFlashAttention.
const options: FlashAttentionOptions = {
  heads: 8, dim: 64, blockSize: 128, causal: true, dropout: 0.1, scale: 0.125, simd: true, seed: 42, runtime: single,
};
const attn = new WasmFlashAttention(options);
const defaults = new WasmFlashAttention();
const heads: number = attn.heads;
const flags: boolean[] = [attn.causal, attn.simd, attn.disposed];
const numbers: number[] = [attn.dim, attn.blockSize, attn.dropout, attn.scale, attn.seed];

const Q = new Float32Array(16 * 8 * 64), K = new Float32Array(16 * 8 * 64), V = new Float32Array(16 * 8 * 64);
const out: Float32Array = attn.forward(Q, K, V);
attn.forward(Q, K, V, causalMask);
attn.forward(Q, K, V, booleanMask);
attn.forward(Q, K, V, null);

const causalModes: CausalMode[] = [true, false, 'top-left', 'bottom-right', 'none'];
const inputs: FlashInputs = {
  q: Q, k: K, v: V, batch: 1, headsKv: 2, valueDim: 64, scale: 0.1, softcap: 30, dropout: 0.2, seed: 7,
  causal: causalModes[3], mask: blockMask, maskLayout: 'qk', blockQ: 48,
};
const result: FlashResult = attn.forwardExtended(inputs);
const maybeLse: Float32Array | undefined = result.lse;
const withLse = attn.forwardExtended({ q: Q, k: K, v: V, returnLse: true, mask: booleanMask, maskLayout: layout });
const lse: Float32Array = withLse.lse;  // present: returnLse is true
const scores: Float32Array = attn.attentionScores(Q, K);
attn.attentionScores(Q, K, paddingMask);

const benchOptions: BenchmarkOptions = { minTimeMs: 100, minRuns: 5 };
const bench: BenchmarkResult = attn.benchmark(256, benchOptions);
defaults.benchmark(64);
const benchNumbers: number[] = [
  bench.opsPerSecond, bench.latencyMs, bench.throughputGBps, bench.threads, bench.runs, bench.firstCallMs, bench.flopsPerCall,
];
const benchSimd: boolean = bench.simdEnabled;
const benchVariant: WasmVariant = bench.variant;
const memory: MemoryInfo = attn.getMemoryUsage();
const memoryNumbers: number[] = [memory.heapUsed, memory.heapTotal, memory.paramCount];
const disposed: void = attn.dispose();

// Wrong calls the declarations must reject.
// @ts-expect-error init takes no number
init(42);
// @ts-expect-error unknown variant
createRuntime({ variant: 'wasm64' });
// @ts-expect-error numThreads is a number
createRuntime({ numThreads: '4' });
// @ts-expect-error AttnRuntime is exported as a type only: it cannot be constructed
new (await import('attnkit')).AttnRuntime();
// @ts-expect-error setNumThreads takes a number
setNumThreads('2');
// @ts-expect-error unknown mask type
createMask('diagonal', 4);
// @ts-expect-error seqLen is required
createMask('causal');
// @ts-expect-error positions are numbers
createMask('padding', 4, ['1']);
// @ts-expect-error heads is a number
new WasmFlashAttention({ heads: '8' });
// @ts-expect-error the constructor's causal is a boolean (strings are per call)
new WasmFlashAttention({ causal: 'bottom-right' });
// @ts-expect-error unknown option
new WasmFlashAttention({ head: 8 });
// @ts-expect-error runtime must come from createRuntime
new WasmFlashAttention({ runtime: {} });
// @ts-expect-error Q must be a Float32Array
attn.forward([1, 2, 3], K, V);
// @ts-expect-error Float64Array is not accepted
attn.forward(new Float64Array(4), K, V);
// @ts-expect-error masks are Float32Array or Uint8Array
attn.forward(Q, K, V, new Int8Array(4));
// @ts-expect-error V is required
attn.forward(Q, K);
// @ts-expect-error q, k and v are required
attn.forwardExtended({ q: Q, k: K });
// @ts-expect-error unknown causal mode
attn.forwardExtended({ q: Q, k: K, v: V, causal: 'upper' });
// @ts-expect-error unknown mask layout
attn.forwardExtended({ q: Q, k: K, v: V, maskLayout: 'kq' });
// @ts-expect-error lse may be absent without returnLse: true
const noLse: Float32Array = attn.forwardExtended({ q: Q, k: K, v: V }).lse;
// @ts-expect-error seqLen is a number
attn.benchmark('256');
// @ts-expect-error disposed is read-only
attn.disposed = true;
// @ts-expect-error heads is read-only
attn.heads = 4;
// @ts-expect-error the result's numbers are not strings
const latency: string = bench.latencyMs;

// Linear attention.
const linearOptions: LinearAttentionOptions = { dim: 64, heads: 8, featureMap: 'dpfp', eps: 1e-6, causal: true };
const linear = new WasmLinearAttention(linearOptions);
const linearOut: Float32Array = linear.forward(Q, K, V);
const linearForwardOptions: LinearForwardOptions = { out: linearOut };
const linearInto: Float32Array = linear.forward(Q, K, V, linearForwardOptions);
const linearInputs: LinearInputs = { q: Q, k: K, v: V, batch: 1, causal: false, out: linearInto };
const linearResult: Float32Array = linear.forwardExtended(linearInputs).output;
const map: FeatureMapName = linear.featureMap;
const linearMemory: number = linear.getMemoryUsage().heapUsed;
linear.dispose();
// @ts-expect-error dim is required
new WasmLinearAttention({ heads: 8 });
// @ts-expect-error unknown feature map
new WasmLinearAttention({ dim: 64, featureMap: 'softmax' });
// @ts-expect-error V is required
linear.forward(Q, K);
// @ts-expect-error out is a Float32Array
linear.forward(Q, K, V, { out: new Float64Array(4) });
// @ts-expect-error featureMap is read-only
linear.featureMap = 'relu';

// Sparse (ASAM) attention.
const sparseOptions: SparseAttentionOptions = {
  heads: 8, headDim: 64, pattern: 'clustered', windowSize: 128, stride: 32, blockSize: 64, scales: [4, 16, 64], seed: 3,
  numClusters: 16, scale: 0.125, runtime: single,
};
const sparse = new WasmSparseAttention(sparseOptions);
const centroids = new Float32Array(8 * 16 * 64);
const sparseForward: SparseForwardOptions = { batch: 1, centroids, out: null };
const sparseOut: Float32Array = sparse.forward(Q, K, V, sparseForward);
sparse.forward(Q, K, V, { out: sparseOut, centroids });
const sparseStats: SparseStats | null = sparse.lastStats;
const sparseRatio: number | undefined = sparseStats?.sparseRatio;
const sparseCounts: number[] = sparseStats ? [sparseStats.visitedBlocks, sparseStats.denseBlocks, sparseStats.computedScores, sparseStats.denseScores] : [];
const maskOptions: SparseMaskOptions = { Q, K, centroids, batch: 1 };
const patternMask: Uint8Array = sparse.getPatternMask(16, maskOptions);
new WasmSparseAttention({ headDim: 32 }).getPatternMask(8);
const patternName: SparsePatternName = sparse.pattern;
const sparseScales: readonly number[] = sparse.scales;
const sparseMemory: number = sparse.getMemoryUsage().heapUsed;
sparse.dispose();
// @ts-expect-error headDim is required
new WasmSparseAttention({ heads: 8 });
// @ts-expect-error unknown pattern
new WasmSparseAttention({ headDim: 64, pattern: 'dilated' });
// @ts-expect-error scales are numbers
new WasmSparseAttention({ headDim: 64, scales: ['4'] });
// @ts-expect-error centroids are a Float32Array
sparse.forward(Q, K, V, { centroids: [1, 2] });
// @ts-expect-error the mask is a Uint8Array
const floatMask: Float32Array = sparse.getPatternMask(16);
// @ts-expect-error lastStats may be null
const ratioNow: number = sparse.lastStats.sparseRatio;
// @ts-expect-error the statistics are read-only
sparseStats!.sparseRatio = 0;
// @ts-expect-error pattern is read-only
sparse.pattern = 'local';

// ASAM utilities.
const sparsity: number = computeAttentionSparsity(booleanMask) + computeAttentionSparsity(causalMask);
const chunkOptions: MemoryEfficientAttentionOptions = { heads: 8, headDim: 64, chunkSize: 4, causal: true, mask: causalMask, runtime: single };
const chunked: Float32Array = memoryEfficientAttention(Q, K, V, chunkOptions);
memoryEfficientAttention(Q, K, V, { heads: 8, headDim: 64, seqLen: 16, mask: null, scale: 0.1 });
const efficiencyOptions: AttentionEfficiencyOptions = { numWarmup: 1, numRuns: 5, flops: 1e6, runtime: single };
const efficiency: AttentionEfficiency = measureAttentionEfficiency((a, b, c) => attn.forward(a, b, c), Q, K, V, efficiencyOptions);
const efficiencyNumbers: number[] = [efficiency.avgTimeMs, efficiency.peakMemoryMb];
const maybeFlops: number | null = measureAttentionEfficiency(() => 0, 'q', 'k', 'v').flops;
// @ts-expect-error flops may be null
const flopsNow: number = efficiency.flops;
// @ts-expect-error heads and headDim are required
memoryEfficientAttention(Q, K, V, { chunkSize: 4 });
// @ts-expect-error causal is a boolean here
memoryEfficientAttention(Q, K, V, { heads: 8, headDim: 64, causal: 'bottom-right' });
// @ts-expect-error attnFn's parameters follow q, k, v
measureAttentionEfficiency((a: Float32Array) => a, 'q', 'k', 'v');
// @ts-expect-error a Float64Array is no mask
computeAttentionSparsity(new Float64Array(4));

// Multi-head and cross attention.
const mhaOptions: MultiHeadAttentionOptions = { modelDim: 64, heads: 8, kdim: 32, vdim: 48, bias: true, dropout: 0, seed: 1 };
const mha = new WasmMultiHeadAttention(mhaOptions);
const mhaOut: Float32Array = mha.forward(Q, K, V, createMask('causal', 4));
const mhaInputs: MultiHeadInputs = { query: Q, key: K, value: V, batch: 1, causal: true };
const mhaResult: Float32Array = mha.forwardExtended(mhaInputs).output;
const mhaWeights: Float32Array = mha.getAttentionWeights();
const saved: Uint8Array = mha.saveWeights();
mha.loadWeights(saved);
const named: MultiHeadNamedWeights = { in_proj_weight: new Float32Array(3 * 64 * 64), 'out_proj.weight': new Float32Array(64 * 64) };
mha.loadWeights(named);
const params: number = mha.getMemoryUsage().paramCount;
mha.dispose();
const crossOptions: CrossAttentionOptions = { queryDim: 64, keyDim: 32, heads: 4 };
const cross = new WasmCrossAttention(crossOptions);
const crossDims: number = cross.queryDim + cross.keyDim + cross.headDim;
// @ts-expect-error modelDim is required
new WasmMultiHeadAttention({ heads: 8 });
// @ts-expect-error keyDim is required
new WasmCrossAttention({ queryDim: 64 });
// @ts-expect-error weights are a Uint8Array or named Float32Arrays
mha.loadWeights([1, 2, 3]);
// @ts-expect-error unknown weight name
mha.loadWeights({ bias_k: new Float32Array(4) });

// ASAM layer and encoder.
const asamOptions: ASAMLayerOptions = {
  dim: 64, numHeads: 4, dimHead: 0, dropout: 0, patternType: 'adaptive', windowSize: 32, stride: 8, numClusters: 4,
  useAdaptiveGate: true, gateHiddenDim: 16, confidenceThreshold: 0.5, blockSize: 32, seed: 1, runtime: single,
};
const asam = new WasmASAMLayer(asamOptions);
const asamX = new Float32Array(10 * 64);
const asamOut: Float32Array = asam.forward(asamX);
const asamResult: { output: Float32Array; info: ASAMInfo } = asam.forward(asamX, { returnInfo: true, batch: 1 });
const asamRatio: number = asamResult.info.sparseRatio;
const asamPatterns: readonly string[] = asamResult.info.patterns;
asam.loadWeights(asam.saveWeights());
const asamSizes: Record<string, number> = asam.parameterSizes();
const encoderOptions: ASAMEncoderOptions = { ...asamOptions, numLayers: 2 };
const encoder = new WasmASAMEncoder(encoderOptions);
const encoderInfos: ASAMInfo[] = encoder.forward(asamX, { returnInfo: true }).infos;
encoder.loadWeights(1, encoder.saveWeights(0));
encoder.dispose();
asam.dispose();
const hybrid = new WasmHybridASAM({ dim: 64, numHeads: 4, localWindowSize: 32, numGlobalTokens: 2, blockSize: 32 });
const hybridRatio: number = hybrid.forward(asamX, { returnInfo: true }).info.sparseRatio;
hybrid.loadWeights({ 'q_proj.weight': new Float32Array(64 * 64) });
hybrid.dispose();
// @ts-expect-error the hybrid has no binary weights format
hybrid.loadWeights(new Uint8Array(4));
const kv = new WasmKVCache({ heads: 8, headDim: 64, precision: 'bf16', capacity: 1024 });
kv.append(new Float32Array(8 * 64), new Float32Array(8 * 64));
const kvOut: Float32Array = kv.attend(new Float32Array(8 * 64), { scale: 0.125 });
const kvBytes: number = kv.getMemoryUsage().cacheBytes + kv.length;
kv.dispose();
// @ts-expect-error unknown precision
new WasmKVCache({ headDim: 64, precision: 'fp8' });
const rankAttn = new WasmAdaptiveRankAttention({ embedDim: 64, numHeads: 4, rankRatio: 1, rankEstimationMethod: 'power', adaptiveThreshold: 0.9 });
const rankOut: Float32Array = rankAttn.forward(new Float32Array(64), new Float32Array(64), new Float32Array(64), { batch: 1, causal: false });
const rankStats = rankAttn.getRankStatistics();
const rankEstimate: number | null = rankStats.lastCall.heads[0]?.estimate ?? null;
const rankDecision: 'lowRank' | 'dense' | undefined = rankStats.lastCall.heads[0]?.decision;
const bare: Float32Array = lowRankAttention(new Float32Array(64), new Float32Array(64), new Float32Array(64), { heads: 4, headDim: 16, landmarks: 1 });
rankAttn.dispose();
// @ts-expect-error unknown estimation method
new WasmAdaptiveRankAttention({ embedDim: 64, rankEstimationMethod: 'svd' });
// @ts-expect-error unknown pattern type
new WasmASAMLayer({ patternType: 'diagonal' });
// @ts-expect-error masks are not supported
asam.forward(asamX, { mask: new Uint8Array(4) });

export const used = [
  asamOut, asamRatio, asamPatterns, asamSizes, encoderInfos, hybridRatio, kvOut, kvBytes,
  rankOut, rankEstimate, rankDecision, bare,
  sparsity, chunked, efficiencyNumbers, maybeFlops, flopsNow,
  sparseOut, sparseRatio, sparseCounts, patternMask, patternName, sparseScales, sparseMemory, floatMask, ratioNow,
  mhaOut, mhaResult, mhaWeights, params, crossDims,
  linearOut, linearInto, linearResult, map, linearMemory,
  counts, reason, simdFlag, probes, variant, out, maybeLse, lse, scores, benchNumbers, benchSimd, benchVariant,
  memoryNumbers, disposed, heads, flags, numbers, noLse, latency, result,
];

// AdaAttn's DenseAttention.
import { WasmDenseAttention } from 'attnkit';
import type { DenseAttentionOptions, DenseMaskLayout } from 'attnkit';
const denseOptions: DenseAttentionOptions = { embedDim: 64, numHeads: 4, dropout: 0.1, causal: true, seed: 3 };
const dense = new WasmDenseAttention(denseOptions);
const denseLayout: DenseMaskLayout = 'bk';
const denseResult = dense.eval().forward(new Float32Array(2 * 5 * 64), new Float32Array(2 * 7 * 64),
  new Float32Array(2 * 7 * 64), { batch: 2, needWeights: true, attentionMask: new Uint8Array(2 * 7), maskLayout: denseLayout });
const denseOut: Float32Array = denseResult.output;
const denseWeights: Float32Array | null = denseResult.weights;
const denseTraining: boolean = dense.train().training;
const denseSeed: number = dense.nextDropoutSeed + dense.getMemoryUsage().paramCount;
dense.loadWeights(dense.saveWeights());
dense.loadWeights({ in_proj_weight: new Float32Array(3 * 64 * 64) });
dense.dispose();
// @ts-expect-error embedDim is required
new WasmDenseAttention({ numHeads: 4 });
// @ts-expect-error unknown mask layout
dense.forward(new Float32Array(64), new Float32Array(64), new Float32Array(64), { maskLayout: 'kq' });
export const denseUsed = [denseOut, denseWeights, denseTraining, denseSeed];

// AdaAttn's AdaptivePrecisionAttention.
import { WasmAdaptivePrecisionAttention } from 'attnkit';
import type { AdaptivePrecisionOptions, PrecisionDecision, PrecisionStatistics, PrecisionChoice } from 'attnkit';
const precisionChoice: PrecisionChoice = 'adaptive';
const precisionOptions: AdaptivePrecisionOptions = { embedDim: 64, numHeads: 4, defaultPrecision: precisionChoice, tolerance: 1e-3 };
const adaptive = new WasmAdaptivePrecisionAttention(precisionOptions);
const prefill = adaptive.forward(new Float32Array(9 * 64), new Float32Array(9 * 64), new Float32Array(9 * 64),
  { causal: 'top-left', keepCache: true });
const stepped = adaptive.step(new Float32Array(64), new Float32Array(64), new Float32Array(64));
const storedAs: 'fp32' | 'fp16' | 'bf16' = stepped.precision;
const decision: PrecisionDecision | null = adaptive.lastDecision;
const sampled: number | null = decision ? decision.sampledErrorBf16 : null;
const precisionStats: PrecisionStatistics = adaptive.getPrecisionStatistics();
const cacheBytes: number = adaptive.getMemoryUsage().cacheBytes + adaptive.cacheLength;
adaptive.dispose();
// @ts-expect-error unknown precision
new WasmAdaptivePrecisionAttention({ embedDim: 8, defaultPrecision: 'fp8' });
export const adaptiveUsed = [prefill.output, prefill.reason, storedAs, sampled, precisionStats.recent, cacheBytes];
// Int8 / fp16 projection weights.
const qMha = new WasmMultiHeadAttention({ modelDim: 64, heads: 8 });
const qReport: QuantizationReport = qMha.quantizeWeights('int8', { probe: { query: Q, key: K, value: V } });
const qError: number | undefined = qReport.outputError?.relative;
const qUsage: WeightMemoryInfo = qMha.getMemoryUsage();
const qBytes: number = qUsage.weightBytes - qReport.weightBytesBefore;
qMha.quantizeWeights('fp16', { probe: Q });
// @ts-expect-error: not a precision
qMha.quantizeWeights('int4');
const qLayer: WasmASAMLayer = quantizeASAMModel(new WasmASAMLayer({ dim: 64, numHeads: 4 }), 'qint8');
const qEncoder: WasmASAMEncoder = quantizeASAMModel(new WasmASAMEncoder({ dim: 64, numLayers: 2 }), 'fp16', { probe: Q });
const qLast: QuantizationReport | null = qLayer.getMemoryUsage().quantization;
// @ts-expect-error: quantize_asam_model takes int8 or fp16 only
quantizeASAMModel(qLayer, 'fp32');
void [qError, qBytes, qEncoder, qLast];

// AttentionWorker: the classes in a worker, promises for results, transfer() for inputs.
import { AttentionWorker, transfer } from 'attnkit';
import type { RemoteObject, Transferred } from 'attnkit';
const worker: AttentionWorker = await AttentionWorker.create({ numThreads: 2, variant: 'auto' });
const workerVariant: 'simd' | 'simd-threads' = worker.info.variant;
const remoteFlash: RemoteObject<WasmFlashAttention> = await worker.construct('WasmFlashAttention', { heads: 2, dim: 4 });
const moved: Transferred<Float32Array> = transfer(new Float32Array(8));
const remoteOut: Float32Array = await remoteFlash.forward(moved, new Float32Array(8), transfer(new Float32Array(8)));
const remoteExt = await remoteFlash.forwardExtended({ q: transfer(new Float32Array(8)), k: new Float32Array(8),
  v: new Float32Array(8), returnLse: true });
const remoteHeads: number = await remoteFlash.get('heads');
const remoteSparse = await worker.construct('WasmSparseAttention', { heads: 1, headDim: 32, pattern: 'local' });
const remoteStats: SparseStats | null = await remoteSparse.get('lastStats');
await worker.setNumThreads(1);
worker.dispose();
// @ts-expect-error not a class the worker makes
await worker.construct('WasmNothing', {});
// @ts-expect-error a remote method returns a promise, not the array
const notAwaited: Float32Array = remoteFlash.forward(new Float32Array(8), new Float32Array(8), new Float32Array(8));
// @ts-expect-error the worker's objects use the worker's runtime
await worker.construct('WasmFlashAttention', { heads: 2, runtime: single });
// @ts-expect-error new AttentionWorker() is private: use create()
new AttentionWorker();
export const workerUsed = [workerVariant, remoteOut, remoteExt.lse, remoteHeads, remoteStats, notAwaited];
