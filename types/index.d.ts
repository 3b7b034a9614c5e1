// Type definitions for attnkit 0.1
// Hand-written declarations of the JS API in js/index.js.
//
// Conventions shared by every function below:
// - Q, K, V and outputs are row-major `Float32Array`s laid out `[seqLen][heads][dim]`
//   (with a leading `[batch]` in {@link WasmFlashAttention.forwardExtended}).
// - Masks are additive `Float32Array`s (`0` attends, `-Infinity` blocks, any finite value is
//   a bias added to the scaled score) or boolean `Uint8Array`s (`1` attends, `0` blocks).
//   A query row whose keys are all blocked yields a zero output row (never NaN) and an lse
//   of `-Infinity`.
// - Bad input throws a `TypeError` (wrong kind of value) or a `RangeError` (right kind,
//   outside what is allowed) whose message starts with `"<where>: <parameter>: "` and whose
//   `param` property names the parameter; using a disposed object throws an `Error`.
//   The WebAssembly instance keeps working after any of them.

/** Which WebAssembly build a runtime runs. Both use SIMD128. */
export type WasmVariant = 'simd-threads' | 'simd';

/**
 * The causal rule of a call.
 * - `false` / `'none'`: no causal mask.
 * - `true` / `'top-left'`: query `i` sees keys `j <= i` (PyTorch / ONNX without a cache).
 * - `'bottom-right'`: query `i` sees keys `j <= i + (seqK - seqQ)` (a KV cache). When
 *   `seqQ > seqK` the first `seqQ - seqK` rows see no key and give zero rows.
 */
export type CausalMode = boolean | 'top-left' | 'bottom-right' | 'none';

/**
 * An attention mask: additive `Float32Array` (`0` attends, `-Infinity` blocks, finite
 * values bias the scaled score) or boolean `Uint8Array` (`1` attends, `0` blocks).
 * Any other typed array (including `Uint8ClampedArray`) is refused with a `TypeError`;
 * `+Infinity` or `NaN` in an additive mask with a `RangeError` naming `mask` (README, "NaN
 * and infinity").
 */
export type AttentionMask = Float32Array | Uint8Array;

/**
 * How a mask is broadcast, each a row-major block of `[seqQ][seqK]` values:
 * `'qk'` one for all, `'bqk'` one per batch, `'hqk'` one per query head,
 * `'bhqk'` one per (batch, query head).
 */
export type MaskLayout = 'qk' | 'bqk' | 'hqk' | 'bhqk';

/** The masks {@link createMask} builds. */
export type MaskType = 'causal' | 'padding' | 'block';

/** Positions accepted by {@link createMask}: an array or a typed array of integers. */
export type PositionList =
  | readonly number[]
  | Int8Array | Uint8Array | Uint8ClampedArray | Int16Array | Uint16Array
  | Int32Array | Uint32Array | Float32Array | Float64Array;

/** Options of {@link init} and {@link createRuntime}. */
export interface InitOptions {
  /**
   * Where the `.wasm` file of the chosen variant is: a URL, or in Node a file path or
   * `file:` URL. Default: the file shipped in `dist/wasm/`.
   */
  wasmUrl?: string | URL | undefined;
  /**
   * Threads to run with: a positive integer, capped at 64. Default: every core
   * (`os.availableParallelism()` in Node, `navigator.hardwareConcurrency` in browsers).
   * @throws {TypeError} if not a number. @throws {RangeError} if not a positive integer.
   */
  numThreads?: number | undefined;
  /**
   * `'auto'` (default) picks `'simd-threads'` when threads are available (SharedArrayBuffer;
   * a cross-origin-isolated page in browsers) and more than one thread is wanted, else
   * `'simd'`. Naming `'simd-threads'` where it cannot run rejects with an `Error`.
   */
  variant?: 'auto' | WasmVariant | undefined;
}

/** What {@link getRuntimeInfo} and {@link AttnRuntime.info} report. */
export interface RuntimeInfo {
  /** The build that runs. */
  variant: WasmVariant;
  /** Always `true`: both builds use WebAssembly SIMD128. */
  simd: true;
  /** The vector layer the core was compiled with (`'wasm-simd128'`). */
  simdBackend: string;
  /** Threads the kernels use now. */
  threads: number;
  /** The most threads this runtime can use (1 for `'simd'`). */
  maxThreads: number;
  /** Why this variant was chosen, in words. */
  reason: string;
}

/**
 * One instantiated WebAssembly module with its own heap and thread pool. The package keeps
 * a default one ({@link init}); {@link createRuntime} makes more, which can be passed as the
 * `runtime` option of {@link WasmFlashAttention} (to compare variants side by side).
 * Not constructible directly: the class is exported as a type only.
 */
declare class AttnRuntime {
  private constructor();
  /** The build this runtime runs. */
  readonly variant: WasmVariant;
  /** The most threads this runtime can use. */
  readonly maxThreads: number;
  /** Why this variant was chosen. */
  readonly reason: string;
  /** Threads the kernels use now. */
  readonly threads: number;
  /**
   * Sets how many threads this runtime's kernels use.
   * @param numThreads an integer in `[1, maxThreads]`.
   * @throws {TypeError} if `numThreads` is not a number.
   * @throws {RangeError} if it is not an integer in `[1, maxThreads]`.
   */
  setNumThreads(numThreads: number): void;
  /** A snapshot of this runtime's variant and threads. */
  info(): RuntimeInfo;
}
export type { AttnRuntime };

/**
 * Initialises the default runtime once; later calls return (a promise of) the same one.
 * In Node the import of the package already did it; in browsers it must be awaited before
 * any class is used. Accepts the `.wasm` location directly or an {@link InitOptions}.
 * @throws {TypeError} (rejects) if `options` is not a string, URL or object, or an option has
 *   the wrong type. @throws {RangeError} (rejects) if an option is out of range.
 * @throws {Error} (rejects) if the engine lacks SIMD128 or the module cannot be loaded.
 */
export function init(options?: string | URL | InitOptions): Promise<void>;
export default init;

/**
 * Loads a further, independent runtime (its own heap and thread pool).
 * @example const single = await createRuntime({ variant: 'simd' });
 *          const attn = new WasmFlashAttention({ heads: 8, dim: 64, runtime: single });
 * @throws {TypeError} | {RangeError} (rejects) for bad options, as {@link init}.
 * @throws {Error} (rejects) if the requested variant cannot run here or cannot be loaded.
 */
export function createRuntime(options?: string | URL | InitOptions): Promise<AttnRuntime>;

/**
 * The default runtime's variant, threads and the reason for the choice.
 * @throws {Error} if the default runtime is not initialised (browsers: `await init()` first).
 */
export function getRuntimeInfo(): RuntimeInfo;

/**
 * Sets how many threads the default runtime uses.
 * @param numThreads an integer in `[1, getRuntimeInfo().maxThreads]`.
 * @throws {TypeError} if `numThreads` is not a number.
 * @throws {RangeError} if it is not an integer in that range.
 * @throws {Error} if the default runtime is not initialised.
 */
export function setNumThreads(numThreads: number): void;

/** Whether this JavaScript engine runs WebAssembly SIMD128 (which attnkit requires). */
export function checkSIMDSupport(): boolean;

/**
 * Whether the threaded build can run here: SharedArrayBuffer and shared WebAssembly memory
 * (and, in browsers, a cross-origin-isolated page with Web Workers).
 */
export function checkThreadSupport(): boolean;

/**
 * Builds a common additive mask, `[seqLen][seqLen]` (`0` attends, `-Infinity` blocks).
 * - `'causal'`: query `i` attends keys `j <= i` (`positions` is ignored).
 * - `'padding'`: `positions` are key positions no query attends to (default none).
 * - `'block'`: `positions` are the strictly increasing starts of the blocks after the first;
 *   tokens attend within their own block (default: one block).
 * @param seqLen a positive integer.
 * @throws {TypeError} if `type` is not a string, `seqLen` not a number, or `positions` not an
 *   array / typed array.
 * @throws {RangeError} for an unknown `type`, a non-positive or non-integer `seqLen`, a position
 *   outside `[0, seqLen)` or not an integer, or block starts that do not increase.
 */
export function createMask(type: MaskType, seqLen: number, positions?: PositionList): Float32Array;

/** Options of the {@link WasmFlashAttention} constructor. */
export interface FlashAttentionOptions {
  /** Query heads. Positive integer. Default `8`. */
  heads?: number | undefined;
  /** Width of each head of Q and K (and of V unless a call says `valueDim`). Positive integer. Default `64`. */
  dim?: number | undefined;
  /** Keys per tile of the IO-aware tiling, in `[1, 4096]`. Default `128`. */
  blockSize?: number | undefined;
  /**
   * Causal mask for every call (top-left: query `i` sees keys `j <= i`). Default `false`.
   * A call of {@link WasmFlashAttention.forwardExtended} may override it, also with
   * `'bottom-right'`.
   */
  causal?: boolean | undefined;
  /** Probability of dropping an attention weight, in `[0, 1)`. Default `0`. */
  dropout?: number | undefined;
  /** Factor of the scores `q·k`. Any finite number. Default `1 / sqrt(dim)`. */
  scale?: number | undefined;
  /**
   * Accepted for compatibility with the seed API: SIMD128 is always used, both builds being
   * SIMD builds ({@link BenchmarkResult.simdEnabled} reports it). Default `true`.
   */
  simd?: boolean | undefined;
  /**
   * Dropout seed: a non-negative safe integer. Default `0`. Calls that give no `seed` use
   * `seed`, `seed + 1`, `seed + 2`, ... in turn, so consecutive calls drop different weights
   * and two objects built with the same seed drop the same ones. The kept weights depend only
   * on the seed and the (batch, head, query, key) position, never on threads or tiling.
   */
  seed?: number | undefined;
  /** The runtime to run on (from {@link createRuntime}). Default: the default runtime. */
  runtime?: AttnRuntime | undefined;
}

/** The tensors and per-call options of {@link WasmFlashAttention.forwardExtended}. */
export interface FlashInputs {
  /** Queries, `[batch][seqQ][heads][dim]`; `seqQ` is inferred from the length. */
  q: Float32Array;
  /** Keys, `[batch][seqK][headsKv][dim]`; `seqK` is inferred from the length and may differ from `seqQ`. */
  k: Float32Array;
  /** Values, `[batch][seqK][headsKv][valueDim]`. */
  v: Float32Array;
  /** Leading batch dimension of q, k and v. Positive integer. Default `1`. */
  batch?: number | undefined;
  /**
   * Key/value heads (GQA / MQA): must divide `heads`; query head `h` reads key/value head
   * `floor(h / (heads / headsKv))`. Default `heads`.
   */
  headsKv?: number | undefined;
  /** Width of V and of the output per head. Positive integer. Default `dim`. */
  valueDim?: number | undefined;
  /** Overrides the constructor's scale. Finite number. */
  scale?: number | undefined;
  /** When `> 0`, scores `s` become `softcap * tanh(s / softcap)` before masking. Default `0` (off). */
  softcap?: number | undefined;
  /** Overrides the constructor's dropout, in `[0, 1)`; `0` turns it off for this call. */
  dropout?: number | undefined;
  /** Dropout seed of this call (non-negative safe integer); default: the next one of the object. */
  seed?: number | undefined;
  /** Overrides the constructor's causal rule. Default: the constructor's (`'top-left'` or `'none'`). */
  causal?: CausalMode | undefined;
  /**
   * A mask of `[seqQ][seqK]` blocks, broadcast as {@link maskLayout} says; without
   * `maskLayout` the layout is inferred from the length.
   */
  mask?: AttentionMask | null | undefined;
  /**
   * The layout of `mask`. Required when `batch == heads > 1` and the mask has
   * `batch * seqQ * seqK` elements (`'bqk'` and `'hqk'` are then indistinguishable).
   */
  maskLayout?: MaskLayout | undefined;
  /** Also return the log-sum-exp of each row. Default `false`. */
  returnLse?: boolean | undefined;
  /** Query rows per task, in `[0, 4096]`; `0` (default) chooses automatically. */
  blockQ?: number | undefined;
}

/** The result of {@link WasmFlashAttention.forwardExtended}. */
export interface FlashResult {
  /** `[batch][seqQ][heads][valueDim]`. */
  output: Float32Array;
  /**
   * Natural log of each row's softmax denominator over the scaled, capped and masked scores,
   * `[batch][heads][seqQ]` (`-Infinity` for rows with no visible key; dropout does not
   * change it). Present when `returnLse` was `true`.
   */
  lse?: Float32Array | undefined;
}

/** Options of {@link WasmFlashAttention.benchmark}. */
export interface BenchmarkOptions {
  /** Keep timing until this many milliseconds have passed. Default `200`. */
  minTimeMs?: number | undefined;
  /** Time at least this many calls. Default `3`. */
  minRuns?: number | undefined;
}

/** What {@link WasmFlashAttention.benchmark} measured. */
export interface BenchmarkResult {
  /** Floating-point operations per second: `flopsPerCall / (latencyMs / 1000)`. */
  opsPerSecond: number;
  /** Mean latency of the timed calls, in milliseconds. */
  latencyMs: number;
  /** Bytes of Q, K, V read and the output written per call, over the latency, in GB/s. */
  throughputGBps: number;
  /** Whether SIMD was used: always `true`. */
  simdEnabled: boolean;
  /** Threads the runtime used. */
  threads: number;
  /** The WebAssembly build that ran. */
  variant: WasmVariant;
  /** Timed calls. */
  runs: number;
  /** The first (cold, untimed) call, in milliseconds. */
  firstCallMs: number;
  /**
   * Floating-point operations of one call: 2 per multiply-add of `q·kᵀ` and of `p·v` over
   * the (query, key) pairs the causal rule keeps: `4·n²·dim·heads` without causal.
   */
  flopsPerCall: number;
}

/** WebAssembly heap figures of the object's runtime. */
export interface MemoryInfo {
  /** Bytes the allocator currently hands out (the whole runtime's, not only this object's). */
  heapUsed: number;
  /** Bytes of WebAssembly memory (grows on demand, up to 4 GiB). */
  heapTotal: number;
  /** Learned parameters held: `0` for flash attention, which has none. */
  paramCount: number;
}

/**
 * Flash attention (tiled, online softmax, O(seqLen) extra memory) on WebAssembly SIMD128,
 * threaded on the `'simd-threads'` build.
 *
 * @example
 * const attn = new WasmFlashAttention({ heads: 8, dim: 64, causal: true });
 * const out = attn.forward(Q, K, V);   // Float32Array, [seqLen][8][64]
 * attn.dispose();
 */
export class WasmFlashAttention {
  /**
   * @throws {TypeError} if `options` is not an object, or an option has the wrong type
   *   (`runtime` not from {@link createRuntime} included).
   * @throws {RangeError} if `heads`, `dim` or `blockSize` is not a positive integer (or
   *   `blockSize > 4096`), `dropout` is outside `[0, 1)`, `scale` is not finite, or `seed`
   *   is not a non-negative safe integer.
   * @throws {Error} if the default runtime is not initialised (browsers: `await init()`).
   */
  constructor(options?: FlashAttentionOptions);

  /** Query heads (the `heads` option, default 8). */
  readonly heads: number;
  /** Per-head width of Q and K (the `dim` option, default 64). */
  readonly dim: number;
  /** Keys per tile (default 128). */
  readonly blockSize: number;
  /** Whether calls are causal (top-left) unless they say otherwise. */
  readonly causal: boolean;
  /** Dropout probability of calls that do not override it. */
  readonly dropout: number;
  /** Score scale of calls that do not override it (default `1 / sqrt(dim)`). */
  readonly scale: number;
  /** The `simd` option as given (SIMD is always used). */
  readonly simd: boolean;
  /** The constructor's dropout seed. */
  readonly seed: number;

  /**
   * Attention over one sequence: `softmax(mask(scale · Q Kᵀ)) V` per head.
   * @param Q queries, `[seqQ][heads][dim]`.
   * @param K keys, `[seqK][heads][dim]` (`seqK` may differ from `seqQ`).
   * @param V values, `[seqK][heads][dim]`.
   * @param mask optional `[seqQ][seqK]` mask (or per head, `[heads][seqQ][seqK]`).
   * @returns a new `Float32Array`, `[seqQ][heads][dim]`.
   * @throws {TypeError} if Q, K or V is not a `Float32Array`, or `mask` is neither a
   *   `Float32Array` nor a `Uint8Array`.
   * @throws {RangeError} if a length does not fit the shapes (named `Q`, `K`, `V`, `mask`).
   * @throws {Error} if the object was disposed.
   */
  forward(Q: Float32Array, K: Float32Array, V: Float32Array, mask?: AttentionMask | null): Float32Array;

  /**
   * The full call: batch, `seqQ != seqK`, GQA/MQA, a different value width, softcap, dropout,
   * masks broadcast over batch and heads, causal top-left or bottom-right, and the lse.
   * @returns `{ output, lse }` with `lse` present exactly when `returnLse` is `true`.
   * @throws {TypeError} if `inputs` is not an object, a tensor is not a `Float32Array`, the mask
   *   has the wrong type, or an option has the wrong type.
   * @throws {RangeError} if a length does not fit the shapes, `headsKv` does not divide `heads`,
   *   a size is not a positive integer, an option is out of range (or not finite), `causal` or
   *   `maskLayout` is an unknown string, or the mask length is ambiguous (give `maskLayout`).
   * @throws {Error} if the object was disposed.
   */
  forwardExtended(inputs: FlashInputs & { returnLse: true }): FlashResult & { lse: Float32Array };
  forwardExtended(inputs: FlashInputs): FlashResult;

  /**
   * The softmax weights themselves (no dropout), for inspection: O(seqQ · seqK) memory.
   * @param Q queries, `[seqQ][heads][dim]`.
   * @param K keys, `[seqK][heads][dim]`.
   * @param mask optional mask, as in {@link forward}.
   * @returns a new `Float32Array`, `[heads][seqQ][seqK]`; rows with every key blocked are zeros.
   * @throws {TypeError} | {RangeError} as {@link forward}. @throws {Error} if disposed.
   */
  attentionScores(Q: Float32Array, K: Float32Array, mask?: AttentionMask | null): Float32Array;

  /**
   * Times `forward` on `[seqLen][heads][dim]` pseudo-random inputs with this object's options.
   * @param seqLen a positive integer.
   * @throws {TypeError} if `seqLen` is not a number. @throws {RangeError} if it is not a
   *   positive integer. @throws {Error} if the object was disposed.
   */
  benchmark(seqLen: number, options?: BenchmarkOptions): BenchmarkResult;

  /**
   * Heap figures of this object's runtime.
   * @throws {Error} if the object was disposed.
   */
  getMemoryUsage(): MemoryInfo;

  /**
   * Releases the object. Idempotent; every other method afterwards throws an `Error` that
   * says it was disposed. (Calls hold no WASM memory between them, so nothing leaks if it
   * is never called.)
   */
  dispose(): void;

  /** Whether {@link dispose} was called. */
  readonly disposed: boolean;
}

/** Feature map φ of {@link WasmLinearAttention}. */
export type FeatureMapName = 'elu' | 'relu' | 'dpfp';

/** Options of the {@link WasmLinearAttention} constructor. */
export interface LinearAttentionOptions {
  /** Width of each head of Q and K. Positive integer. Required. */
  dim: number;
  /** Heads. Positive integer. Default `8`. */
  heads?: number | undefined;
  /**
   * φ applied to queries and keys: `'elu'` (elu(x) + 1), `'relu'` (max(x, 0)) or `'dpfp'`
   * (Schlag et al. 2021, ν = 1: `2 · dim` features). Default `'elu'`.
   */
  featureMap?: FeatureMapName | undefined;
  /** Added to the denominator; a finite number `>= 0`. Default `1e-6`. */
  eps?: number | undefined;
  /** Query `i` attends to keys `j <= i` (needs as many queries as keys). Default `false`. */
  causal?: boolean | undefined;
  /** The runtime to run on (from {@link createRuntime}). Default: the default runtime. */
  runtime?: AttnRuntime | undefined;
}

/** The tensors and per-call options of {@link WasmLinearAttention.forwardExtended}. */
export interface LinearInputs {
  /** Queries, `[batch][seqQ][heads][dim]`. */
  q: Float32Array;
  /** Keys, `[batch][seqK][heads][dim]`. */
  k: Float32Array;
  /** Values, `[batch][seqK][heads][valueDim]`; `valueDim` is inferred from the length. */
  v: Float32Array;
  /** Batch size. Positive integer. Default `1`. */
  batch?: number | undefined;
  /** Overrides the constructor's `causal`. */
  causal?: boolean | undefined;
  /**
   * Receives the output, `[batch][seqQ][heads][valueDim]`, instead of a new array (and is
   * returned as `output`). `null` or absent: a new array.
   */
  out?: Float32Array | null | undefined;
}

/** Per-call options of {@link WasmLinearAttention.forward}. */
export interface LinearForwardOptions {
  /**
   * A `Float32Array` of exactly `seqQ * heads * valueDim` floats that receives the output
   * and is returned, sparing a new array per call (worth it for long sequences: at
   * n = 65536, 8 heads, d = 64 each new output is 128 MiB). It may be one of Q, K, V: the
   * inputs are read before it is written. `null` or absent: a new array.
   */
  out?: Float32Array | null | undefined;
}

/**
 * Linear attention: `out_i = φ(q_i)ᵀ S / (φ(q_i)ᵀ z + eps)` with `S = Σ_j φ(k_j) v_jᵀ` and
 * `z = Σ_j φ(k_j)` (over `j <= i` when causal). Time O(seqLen · F · valueDim) and memory
 * O(F · valueDim) per thread beyond the tensors: it never builds a seqLen × seqLen matrix.
 * Heads (and batches) run in parallel on the `'simd-threads'` build.
 *
 * @example
 * const linear = new WasmLinearAttention({ dim: 64, heads: 8, featureMap: 'elu' });
 * const out = linear.forward(Q, K, V);   // Float32Array, [seqLen][8][64]
 * linear.dispose();
 */
export class WasmLinearAttention {
  /**
   * @throws {TypeError} if `options` is not an object, `dim` is missing, or an option has the
   *   wrong type (`runtime` not from {@link createRuntime} included).
   * @throws {RangeError} if `dim` or `heads` is not a positive integer, `featureMap` is an
   *   unknown name, or `eps` is negative or not finite.
   * @throws {Error} if the default runtime is not initialised (browsers: `await init()`).
   */
  constructor(options: LinearAttentionOptions);

  /** Per-head width of Q and K. */
  readonly dim: number;
  /** Heads. */
  readonly heads: number;
  /** The feature map. */
  readonly featureMap: FeatureMapName;
  /** The denominator's epsilon. */
  readonly eps: number;
  /** Whether calls are causal unless they say otherwise. */
  readonly causal: boolean;

  /**
   * @param Q queries, `[seqQ][heads][dim]`.
   * @param K keys, `[seqK][heads][dim]`.
   * @param V values, `[seqK][heads][valueDim]` (`valueDim` inferred from the length).
   * @param options `{ out }`: an array to write the output into (see {@link LinearForwardOptions}).
   * @returns `[seqQ][heads][valueDim]`: `options.out` when given, else a new `Float32Array`.
   * @throws {TypeError} if Q, K, V or `out` is not a `Float32Array`, or `options` is not an object.
   * @throws {RangeError} if a length does not fit the shapes (named `Q`, `K`, `V`, `out`), or
   *   the call is causal with `seqQ != seqK` (named `causal`).
   * @throws {Error} if the object was disposed.
   */
  forward(Q: Float32Array, K: Float32Array, V: Float32Array, options?: LinearForwardOptions): Float32Array;

  /**
   * The call with a batch dimension, a per-call `causal` and an optional `out`.
   * @throws {TypeError} | {RangeError} as {@link forward}; also if `inputs` is not an object or
   *   `batch` is not a positive integer. @throws {Error} if disposed.
   */
  forwardExtended(inputs: LinearInputs): { output: Float32Array };

  /**
   * Heap figures of this object's runtime.
   * @throws {Error} if the object was disposed.
   */
  getMemoryUsage(): MemoryInfo;

  /** Releases the object (idempotent); every other method afterwards throws an `Error`. */
  dispose(): void;

  /** Whether {@link dispose} was called. */
  readonly disposed: boolean;
}

/**
 * Pattern of {@link WasmSparseAttention} (query `i`, key `j`, block size `B`):
 * - `'local'`: `|i - j| <= windowSize / 2`.
 * - `'strided'`: `|i - j| <= stride / 2`, or `j ≡ i (mod stride)`.
 * - `'hierarchical'`: the local window, plus for each scale `s` the keys `j ≡ i (mod s)` with
 *   `|i - j| <= s · windowSize / 2` (dilated windows reaching further at coarser scales).
 * - `'random'`: whole blocks: each query block attends its own key block and
 *   `ceil(windowSize / B)` other key blocks drawn per head from `seed`.
 * - `'clustered'`: queries and keys go to the nearest centroid of their head (largest dot
 *   product); `i` attends `j` when their clusters match.
 */
export type SparsePatternName = 'local' | 'strided' | 'hierarchical' | 'random' | 'clustered';

/** Options of the {@link WasmSparseAttention} constructor. */
export interface SparseAttentionOptions {
  /** Width of each head of Q and K. Positive integer. Required. */
  headDim: number;
  /** Heads. Positive integer. Default `8`. */
  heads?: number | undefined;
  /** The sparse pattern. Default `'hierarchical'`. */
  pattern?: SparsePatternName | undefined;
  /** Window of `'local'` and `'hierarchical'`; blocks drawn by `'random'`. Positive integer. Default `128`. */
  windowSize?: number | undefined;
  /** Stride of `'strided'`. Positive integer. Default `32`. */
  stride?: number | undefined;
  /** Queries and keys per block: a multiple of 32 in `[32, 1024]`. Default `64`. */
  blockSize?: number | undefined;
  /**
   * Dilations of `'hierarchical'`: increasing integers `> 1`, each a multiple of the one before.
   * Default `[4, 16, 64]`.
   */
  scales?: readonly number[] | undefined;
  /** Seed of `'random'`: a non-negative safe integer. Default `0`. */
  seed?: number | undefined;
  /** Centroids per head of `'clustered'`. Positive integer. Default `32`. */
  numClusters?: number | undefined;
  /** Score scale, a finite number. Default `1 / sqrt(headDim)`. */
  scale?: number | undefined;
  /** The runtime to run on (from {@link createRuntime}). Default: the default runtime. */
  runtime?: AttnRuntime | undefined;
}

/** Per-call options of {@link WasmSparseAttention.forward}. */
export interface SparseForwardOptions {
  /** Batch size (the leading dimension of Q, K, V). Positive integer. Default `1`. */
  batch?: number | undefined;
  /**
   * `'clustered'` only (required there, ignored by the other patterns): `[heads][numClusters][headDim]`.
   */
  centroids?: Float32Array | null | undefined;
  /**
   * A `Float32Array` of exactly `batch * seq * heads * valueDim` floats that receives the
   * output and is returned. `null` or absent: a new array.
   */
  out?: Float32Array | null | undefined;
}

/** Options of {@link WasmSparseAttention.getPatternMask}. */
export interface SparseMaskOptions {
  /** Batch size. Positive integer. Default `1`. */
  batch?: number | undefined;
  /** `'clustered'` only: queries, `[batch][seqLen][heads][headDim]`. */
  Q?: Float32Array | null | undefined;
  /** `'clustered'` only: keys, `[batch][seqLen][heads][headDim]`. */
  K?: Float32Array | null | undefined;
  /** `'clustered'` only: `[heads][numClusters][headDim]`. */
  centroids?: Float32Array | null | undefined;
}

/**
 * What one {@link WasmSparseAttention.forward} computed, measured by the kernel, against dense
 * attention over the same batch, heads and sequence.
 */
export interface SparseStats {
  /**
   * The fraction of the dense scores the kernel did not compute: `1 - computedScores / denseScores`
   * (whole blocks are skipped; the blocks it visits count in full). Below 1 whenever anything is
   * attended; it can be negative on short sequences, where the dilated patterns' blocks overlap
   * more than the pattern saves.
   */
  readonly sparseRatio: number;
  /** Blocks of scores (at most `blockSize × blockSize`) the kernel computed. */
  readonly visitedBlocks: number;
  /** Blocks dense attention would compute: `batch · heads · ceil(seq / blockSize)²`. */
  readonly denseBlocks: number;
  /** Query-key scores the kernel computed. */
  readonly computedScores: number;
  /** Scores dense attention would compute: `batch · heads · seq²`. */
  readonly denseScores: number;
}

/**
 * ASAM block-sparse self-attention: softmax(Q Kᵀ · scale, restricted to the pattern) V, where the
 * kernel visits only the key blocks the pattern selects, so the work is proportional to the
 * active blocks. A query row the pattern leaves empty gets a zero output.
 *
 * @example
 * const sparse = new WasmSparseAttention({ heads: 8, headDim: 64, pattern: 'local', windowSize: 128 });
 * const out = sparse.forward(Q, K, V);        // Float32Array, [seqLen][8][64]
 * console.log(sparse.lastStats?.sparseRatio); // 0.66 at seqLen 512: a third of the scores
 * sparse.dispose();
 */
export class WasmSparseAttention {
  /**
   * @throws {TypeError} if `options` is not an object, `headDim` is missing, or an option has the
   *   wrong type (`runtime` not from {@link createRuntime} included).
   * @throws {RangeError} if a size is not a positive integer, `pattern` is an unknown name,
   *   `blockSize` is not a multiple of 32 in `[32, 1024]`, `scales` do not increase by multiples,
   *   `seed` is not a non-negative safe integer, or `scale` is not finite.
   * @throws {Error} if the default runtime is not initialised (browsers: `await init()`).
   */
  constructor(options: SparseAttentionOptions);

  readonly heads: number;
  readonly headDim: number;
  readonly pattern: SparsePatternName;
  readonly windowSize: number;
  readonly stride: number;
  readonly blockSize: number;
  readonly scales: readonly number[];
  readonly seed: number;
  readonly numClusters: number;
  readonly scale: number;

  /** What the last successful {@link forward} computed; `null` before the first. */
  readonly lastStats: SparseStats | null;

  /**
   * @param Q queries, `[batch][seq][heads][headDim]`.
   * @param K keys, the same shape (self-attention).
   * @param V values, `[batch][seq][heads][valueDim]` (`valueDim` inferred from the length).
   * @returns `[batch][seq][heads][valueDim]`: `options.out` when given, else a new `Float32Array`.
   * @throws {TypeError} if Q, K, V, `centroids` or `out` is not a `Float32Array`, `options` is
   *   not an object, or `'clustered'` lacks `centroids`.
   * @throws {RangeError} if a length does not fit the shapes (named `Q`, `K`, `V`, `centroids`,
   *   `out`) or `batch` is not a positive integer.
   * @throws {Error} if the object was disposed.
   */
  forward(Q: Float32Array, K: Float32Array, V: Float32Array, options?: SparseForwardOptions): Float32Array;

  /**
   * The pattern's boolean mask (1 = attends), `[batch][heads][seqLen][seqLen]`, for inspection:
   * {@link forward} equals dense attention under it. Costs O(seqLen²) time and memory.
   * @throws {TypeError} if `seqLen` is not a number or `'clustered'` lacks Q, K or `centroids`.
   * @throws {RangeError} if `seqLen` or `batch` is not a positive integer or a length does not fit.
   * @throws {Error} if the object was disposed.
   */
  getPatternMask(seqLen: number, options?: SparseMaskOptions): Uint8Array;

  /** Heap figures of this object's runtime. @throws {Error} if the object was disposed. */
  getMemoryUsage(): MemoryInfo;

  /** Releases the object (idempotent); every other method afterwards throws an `Error`. */
  dispose(): void;

  /** Whether {@link dispose} was called. */
  readonly disposed: boolean;
}

/**
 * The fraction of (query, key) pairs a mask blocks (the ASAM seed's
 * `compute_attention_sparsity`): `0` = dense, `1` = completely sparse. A boolean `Uint8Array`
 * blocks where it holds `0`; an additive `Float32Array` where it holds `-Infinity` (finite
 * values, however negative, are biases and still attend). Any layout: every element counts.
 * @throws {TypeError} if `mask` is neither a `Float32Array` nor a `Uint8Array`.
 * @throws {RangeError} if `mask` is empty.
 */
export function computeAttentionSparsity(mask: AttentionMask): number;

/** Options of {@link measureAttentionEfficiency}. */
export interface AttentionEfficiencyOptions {
  /** Untimed calls first: a non-negative integer. Default `3`. */
  numWarmup?: number | undefined;
  /** Timed calls: a positive integer. Default `10`. */
  numRuns?: number | undefined;
  /** Floating-point operations of one call, reported back as `flops`: a finite number `>= 0`. */
  flops?: number | null | undefined;
  /** The runtime whose heap is reported (from {@link createRuntime}). Default: the default runtime. */
  runtime?: AttnRuntime | undefined;
}

/** What {@link measureAttentionEfficiency} measured. */
export interface AttentionEfficiency {
  /** Mean wall-clock time of one timed call (`performance.now()`), in milliseconds. */
  avgTimeMs: number;
  /**
   * The size of the runtime's WebAssembly memory after the runs, in MiB (2²⁰ bytes). That memory
   * only grows, so this bounds from above what the calls held in the heap at once; it also counts
   * whatever earlier work grew it, and JS-side arrays are not included.
   */
  peakMemoryMb: number;
  /** The `flops` option as given, or `null`: `attnFn` is opaque, so nothing is derived from it. */
  flops: number | null;
}

/**
 * Times `attnFn(q, k, v)` (the ASAM seed's `measure_attention_efficiency`): `numWarmup`
 * untimed calls, then `numRuns` timed one by one. `q`, `k`, `v` are passed as given.
 * Errors thrown by `attnFn` propagate.
 * @example
 * const attn = new WasmFlashAttention({ heads: 8, dim: 64 });
 * const { avgTimeMs } = measureAttentionEfficiency((q, k, v) => attn.forward(q, k, v), Q, K, V,
 *   { flops: 4 * n * n * 64 * 8 });
 * @throws {TypeError} if `attnFn` is not a function or returns a Promise (only synchronous
 *   functions are timed), `options` is not an object, or an option has the wrong type.
 * @throws {RangeError} if `numWarmup`, `numRuns` or `flops` is out of range.
 * @throws {Error} if no `runtime` is given and the default runtime is not initialised.
 */
export function measureAttentionEfficiency<Q, K, V>(
  attnFn: (q: Q, k: K, v: V) => unknown, q: Q, k: K, v: V, options?: AttentionEfficiencyOptions,
): AttentionEfficiency;

/** Options of {@link memoryEfficientAttention}. */
export interface MemoryEfficientAttentionOptions {
  /** Heads. Positive integer. Required. */
  heads: number;
  /** Width of each head of Q and K. Positive integer. Required. */
  headDim: number;
  /** If given, checked against the rows of Q. */
  seqLen?: number | undefined;
  /** Query rows per flash call: a positive integer. Default `1024`. */
  chunkSize?: number | undefined;
  /** `[seqQ][seqK]` or per head `[heads][seqQ][seqK]`, additive or boolean. */
  mask?: AttentionMask | null | undefined;
  /** Query `i` sees keys `j <= i` (top-left). Default `false`. */
  causal?: boolean | undefined;
  /** Score scale. Default `1 / sqrt(headDim)`. */
  scale?: number | undefined;
  /** The runtime to run on (from {@link createRuntime}). Default: the default runtime. */
  runtime?: AttnRuntime | undefined;
}

/**
 * Attention computed `chunkSize` query rows at a time (the ASAM seed's
 * `memory_efficient_attention`): one {@link WasmFlashAttention} call per chunk, so the heap holds
 * K, V and one chunk of Q, mask and output at a time, never the whole `[seqQ][seqK]` mask. The
 * result equals one flash call over the whole sequence. Causal chunks read only the keys their
 * rows can see.
 * @param Q queries, `[seqQ][heads][headDim]`.
 * @param K keys, `[seqK][heads][headDim]`.
 * @param V values, `[seqK][heads][valueDim]` (`valueDim` inferred from the length).
 * @returns a new `Float32Array`, `[seqQ][heads][valueDim]`.
 * @throws {TypeError} if Q, K or V is not a `Float32Array`, `options`, `heads` or `headDim` is
 *   missing, the mask has the wrong type, or an option has the wrong type.
 * @throws {RangeError} if a size is not a positive integer, a length does not fit the shapes
 *   (named `Q`, `K`, `V`, `mask`), `seqLen` differs from Q's rows, or `scale` is not finite.
 * @throws {Error} if no `runtime` is given and the default runtime is not initialised.
 */
export function memoryEfficientAttention(
  Q: Float32Array, K: Float32Array, V: Float32Array, options: MemoryEfficientAttentionOptions,
): Float32Array;

/** Options of the {@link WasmMultiHeadAttention} constructor (PyTorch `nn.MultiheadAttention`). */
export interface MultiHeadAttentionOptions {
  /** Width of the query, the projections and the output (`embed_dim`). Positive integer. Required. */
  modelDim: number;
  /** Heads; must divide `modelDim`. Default `8`. */
  heads?: number | undefined;
  /** Width of the keys. Default `modelDim`. */
  kdim?: number | undefined;
  /** Width of the values. Default `modelDim`. */
  vdim?: number | undefined;
  /** Biases in the projections. Default `true`. */
  bias?: boolean | undefined;
  /**
   * Dropout on the attention weights, in `[0, 1)`, applied only in training mode
   * ({@link WasmMultiHeadAttention.train}); eval mode, the default, never drops. Default `0`.
   */
  dropout?: number | undefined;
  /** Seed of the initial weights (and of dropout masks): a non-negative safe integer. Default `0`. */
  seed?: number | undefined;
  /** Query `i` attends to keys `j <= i` unless a call says otherwise. Default `false`. */
  causal?: boolean | undefined;
  /** Start in training mode (dropout on). Default `false`: inference, deterministic. */
  training?: boolean | undefined;
  /** The runtime to run on (from {@link createRuntime}). Default: the default runtime. */
  runtime?: AttnRuntime | undefined;
}

/** Options of the {@link WasmCrossAttention} constructor. */
export interface CrossAttentionOptions extends Omit<MultiHeadAttentionOptions, 'modelDim' | 'kdim' | 'vdim'> {
  /** Width of the queries and the output. Positive integer. Required. */
  queryDim: number;
  /** Width of the keys and values. Positive integer. Required. */
  keyDim: number;
}

/** The tensors and per-call options of {@link WasmMultiHeadAttention.forwardExtended}. */
export interface MultiHeadInputs {
  /** `[batch][seqQ][modelDim]`. */
  query: Float32Array;
  /** `[batch][seqK][kdim]`. */
  key: Float32Array;
  /** `[batch][seqK][vdim]`. */
  value: Float32Array;
  /** Batch size. Default `1`. */
  batch?: number | undefined;
  /** `[seqQ][seqK]`, `[batch][seqQ][seqK]`, `[heads][seqQ][seqK]` or `[batch][heads][seqQ][seqK]`. */
  mask?: AttentionMask | null | undefined;
  /** Which of those layouts, when the length is ambiguous. */
  maskLayout?: MaskLayout | undefined;
  /** Overrides the constructor's `causal`. */
  causal?: boolean | undefined;
}

/** PyTorch state-dict arrays of `nn.MultiheadAttention`, row-major `[out_features][in_features]`. */
export interface MultiHeadNamedWeights {
  /** `[3·modelDim][modelDim]` (only when `kdim = vdim = modelDim`). */
  in_proj_weight?: Float32Array;
  q_proj_weight?: Float32Array;
  k_proj_weight?: Float32Array;
  v_proj_weight?: Float32Array;
  /** `[3·modelDim]`. */
  in_proj_bias?: Float32Array;
  'out_proj.weight'?: Float32Array;
  'out_proj.bias'?: Float32Array;
}

/**
 * Multi-head attention with PyTorch `nn.MultiheadAttention` semantics (batch first): input
 * projections (SIMD GEMM), per-head flash attention, output projection. The weights live in
 * the WebAssembly heap until {@link dispose} (or, for objects never disposed, until a
 * `FinalizationRegistry` frees them after garbage collection).
 *
 * @example
 * const mha = new WasmMultiHeadAttention({ modelDim: 512, heads: 8 });
 * const out = mha.forward(X, X, X);        // [seqLen][512]
 * const bytes = mha.saveWeights();         // Uint8Array
 * mha.dispose();
 */
export class WasmMultiHeadAttention {
  /**
   * @throws {TypeError} if `options` is not an object, `modelDim` is missing, or an option has the wrong type.
   * @throws {RangeError} if a size is not a positive integer, `heads` does not divide `modelDim`,
   *   `dropout` is outside `[0, 1)`, or `seed` is not a non-negative safe integer.
   * @throws {Error} if the default runtime is not initialised (browsers: `await init()`).
   */
  constructor(options: MultiHeadAttentionOptions);

  readonly modelDim: number;
  readonly heads: number;
  /** `modelDim / heads`. */
  readonly headDim: number;
  readonly kdim: number;
  readonly vdim: number;
  readonly bias: boolean;
  readonly dropout: number;
  readonly seed: number;
  readonly causal: boolean;
  /** Whether dropout applies (training mode). */
  readonly training: boolean;
  /** The dropout seed of the next training call: `seed` + training calls so far. */
  readonly nextDropoutSeed: number;
  /** Training mode (`true`, dropout on) or eval mode. @returns this. */
  train(mode?: boolean): this;
  /** Eval mode (the default): no dropout, equal inputs give equal outputs. @returns this. */
  eval(): this;

  /**
   * @param query `[seqQ][modelDim]`. @param key `[seqK][kdim]`. @param value `[seqK][vdim]`.
   * @param mask optional `[seqQ][seqK]` (or per head) additive `Float32Array` or boolean `Uint8Array`.
   * @returns a new `Float32Array`, `[seqQ][modelDim]`.
   * @throws {TypeError} if an input is not a `Float32Array` or the mask has the wrong type.
   * @throws {RangeError} if a length does not fit (named `query`, `key`, `value`, `mask`).
   * @throws {Error} if the object was disposed.
   */
  forward(query: Float32Array, key: Float32Array, value: Float32Array, mask?: AttentionMask | null): Float32Array;

  /** The call with a batch, broadcast masks and a per-call `causal`. @throws as {@link forward}. */
  forwardExtended(inputs: MultiHeadInputs): { output: Float32Array };

  /**
   * The softmax weights of the last forward, `[batch][heads][seqQ][seqK]`, recomputed on demand.
   * @throws {Error} before any forward, or if disposed.
   */
  getAttentionWeights(): Float32Array;

  /** The weights in attnkit's versioned binary format (magic, version, shapes, checksum). */
  saveWeights(): Uint8Array;

  /**
   * Loads a buffer from {@link saveWeights} (same shapes) or PyTorch-named arrays. On any error the
   * old weights stay.
   * @throws {TypeError} if `weights` is neither, or a named entry is not a `Float32Array`.
   * @throws {RangeError} naming `weights` (bad buffer: magic, version, shapes, size, checksum) or
   *   the offending array (unknown name, wrong length, missing, not finite).
   */
  loadWeights(weights: Uint8Array | MultiHeadNamedWeights): void;

  /**
   * Heap figures; `paramCount` is the number of weights; `weightBytes` what the projections'
   * weights and biases take now. @throws {Error} if disposed.
   */
  getMemoryUsage(): WeightMemoryInfo;

  /**
   * Stores the four projections' weights as `'int8'` (per output channel; each call quantizes
   * activations per row and multiplies in integers), `'fp16'` or `'fp32'`, in place, dropping
   * the float32 matrices. `probe`: `{ query, key, value, batch? }` or one array (self-attention;
   * default 64 random rows). Loads keep the precision; {@link saveWeights} writes the weights in
   * use as float32 (they quantize back to the same layer).
   * @returns what it measured (bytes held, output error on the probe vs the layer before).
   * @throws {TypeError} | {RangeError} naming `precision`, `probe` (or its `query`, `key`,
   *   `value`), `options`, or `weights` (fp16 cannot hold a value); {Error} if disposed.
   */
  quantizeWeights(precision?: WeightPrecisionName, options?: QuantizeOptions<MultiHeadInputs | Float32Array>): QuantizationReport;

  /** Frees the weights (idempotent); every other method afterwards throws an `Error`. */
  dispose(): void;

  readonly disposed: boolean;
}

/**
 * Cross attention: queries of width `queryDim` attend over keys and values of width `keyDim`
 * (and another length). A {@link WasmMultiHeadAttention} with `kdim = vdim = keyDim`.
 */
export class WasmCrossAttention extends WasmMultiHeadAttention {
  /** @throws as {@link WasmMultiHeadAttention}'s constructor; `queryDim` and `keyDim` are required. */
  constructor(options: CrossAttentionOptions);
  readonly queryDim: number;
  readonly keyDim: number;
}

/** `patternType` of {@link WasmASAMLayer}: a fixed pattern, or `'adaptive'` (the gate's logits pick). */
export type ASAMPatternType = 'local' | 'strided' | 'random' | 'clustered' | 'hierarchical' | 'adaptive';

/** Options of {@link WasmASAMLayer} (the seed's `ASAMConfig`, camelCase, with its defaults). */
export interface ASAMLayerOptions {
  /** Model width. Default `512`. */
  dim?: number | undefined;
  /** Heads. Default `8`. */
  numHeads?: number | undefined;
  /** Width per head; `0` (default) = `dim / numHeads`. */
  dimHead?: number | undefined;
  /** Accepted and not applied: the layer runs inference only. Default `0.1`. */
  dropout?: number | undefined;
  /** Default `'hierarchical'`. */
  patternType?: ASAMPatternType | undefined;
  /** Local window (keys per query). Default `128`. */
  windowSize?: number | undefined;
  /** Stride of the strided pattern. Default `32`. */
  stride?: number | undefined;
  /** Centroids of the clustered pattern. Default `32`. */
  numClusters?: number | undefined;
  /** Route per head by the adaptive gate (sparse only when confident, else mix dense). Default `true`. */
  useAdaptiveGate?: boolean | undefined;
  /** Width of the gate's hidden layer. Default `128`. */
  gateHiddenDim?: number | undefined;
  /** A head with confidence at least this runs the sparse path only; in `[0, 1]`. Default `0.5`. */
  confidenceThreshold?: number | undefined;
  /** Queries and keys per block of the sparse kernel: a multiple of 32 in `[32, 1024]`. Default `64`. */
  blockSize?: number | undefined;
  /** Initial weights and the random pattern: a non-negative safe integer. Default `0`. */
  seed?: number | undefined;
  /** The runtime to run on (from {@link createRuntime}). Default: the default runtime. */
  runtime?: AttnRuntime | undefined;
}

/** Options of {@link WasmASAMEncoder}: a layer's options plus the number of layers. */
export interface ASAMEncoderOptions extends ASAMLayerOptions {
  /** Layers applied in sequence, each with its own seed derived from `seed`. Default `6`. */
  numLayers?: number | undefined;
}

/** Per-call options of {@link WasmASAMLayer.forward} and {@link WasmASAMEncoder.forward}. */
export interface ASAMForwardOptions {
  /** Batch size: `x` is `[batch][seq][dim]`. Default `1`. */
  batch?: number | undefined;
  /** Also return what the layer did (the info object). Default `false`. */
  returnInfo?: boolean | undefined;
  /** A `Float32Array` of `batch · seq · dim` floats to write the output into (and return). */
  out?: Float32Array | null | undefined;
  /** Not supported: the sparse pattern is the attention mask (passing one throws). */
  mask?: null | undefined;
}

/** What one ASAM layer did in a call (the seed's `info`, camelCase, measured). */
export interface ASAMInfo {
  /** The gate's per-token sparse weight, `[batch][heads][seq]` (empty when the gate did not run). */
  readonly gateValues: Float32Array;
  /** The gate's confidence per head, `[batch][heads]`. */
  readonly confidence: Float32Array;
  /** The gate's pattern logits, `[batch][4]`: local, strided, clustered, hierarchical. */
  readonly patternLogits: Float32Array;
  /** The pattern each batch element ran. */
  readonly patterns: readonly string[];
  /** `[batch][heads]`: 1 where the head also ran dense attention and mixed it in per token. */
  readonly mixedHeads: Uint8Array;
  /**
   * The fraction of the dense layer's score computations this call skipped:
   * `1 - (computedScores + densePathScores) / denseScores`; negative when mixing many heads
   * did more work than dense attention would have.
   */
  readonly sparseRatio: number;
  readonly visitedBlocks: number;
  readonly denseBlocks: number;
  readonly computedScores: number;
  readonly denseScores: number;
  readonly densePathScores: number;
}

/**
 * The ASAM seed's attention layer: Q/K/V projections, block-sparse attention under the
 * pattern, the adaptive gate's routing, the output projection. Inference only.
 */
export class WasmASAMLayer {
  /**
   * @throws {TypeError} if `options` is not an object or an option has the wrong type.
   * @throws {RangeError} if an option is out of range (named, e.g. `numHeads`, `blockSize`).
   * @throws {Error} if the default runtime is not initialised (browsers: `await init()`).
   */
  constructor(options?: ASAMLayerOptions);
  readonly config: Readonly<Required<Omit<ASAMLayerOptions, 'runtime'>>>;
  /**
   * @param x `[batch][seq][dim]`.
   * @returns the output `[batch][seq][dim]`, or `{ output, info }` with `returnInfo`.
   * @throws {TypeError} | {RangeError} naming `x`, `batch`, `out` or `mask`; {Error} if disposed.
   */
  forward(x: Float32Array, options?: ASAMForwardOptions & { returnInfo?: false | undefined }): Float32Array;
  forward(x: Float32Array, options: ASAMForwardOptions & { returnInfo: true }): { output: Float32Array; info: ASAMInfo };
  /** The weights in attnkit's versioned, checksummed binary format. */
  saveWeights(): Uint8Array;
  /** A Uint8Array from {@link saveWeights}, or every weight by name (see {@link parameterSizes}). Old weights stay on error. */
  loadWeights(weights: Uint8Array | Readonly<Record<string, Float32Array>>): void;
  /** `{ name: number of floats }` of each weight. */
  parameterSizes(): Record<string, number>;
  getMemoryUsage(): WeightMemoryInfo;
  /**
   * Stores the projections' weights (every layer's) as `'int8'`, `'fp16'` or `'fp32'` in place;
   * the gate and centroids stay float32. `probe`: x `[seq][dim]` (default 128 random rows).
   * @throws {TypeError} | {RangeError} naming `precision`, `probe`, `options` or `weights`.
   */
  quantizeWeights(precision?: WeightPrecisionName, options?: QuantizeOptions<Float32Array>): QuantizationReport;
  dispose(): void;
  readonly disposed: boolean;
}

/** `numLayers` {@link WasmASAMLayer}s applied in sequence (the seed's `ASAMEncoder`). */
export class WasmASAMEncoder {
  /** @throws as {@link WasmASAMLayer}, or naming `numLayers`. */
  constructor(options?: ASAMEncoderOptions);
  readonly config: Readonly<Required<Omit<ASAMLayerOptions, 'runtime'>>>;
  readonly numLayers: number;
  forward(x: Float32Array, options?: ASAMForwardOptions & { returnInfo?: false | undefined }): Float32Array;
  forward(x: Float32Array, options: ASAMForwardOptions & { returnInfo: true }): { output: Float32Array; infos: ASAMInfo[] };
  /** The weights of layer `layer` (default 0). */
  saveWeights(layer?: number): Uint8Array;
  loadWeights(layer: number, weights: Uint8Array | Readonly<Record<string, Float32Array>>): void;
  parameterSizes(): Record<string, number>;
  getMemoryUsage(): WeightMemoryInfo;
  /**
   * Stores the projections' weights (every layer's) as `'int8'`, `'fp16'` or `'fp32'` in place;
   * the gate and centroids stay float32. `probe`: x `[seq][dim]` (default 128 random rows).
   * @throws {TypeError} | {RangeError} naming `precision`, `probe`, `options` or `weights`.
   */
  quantizeWeights(precision?: WeightPrecisionName, options?: QuantizeOptions<Float32Array>): QuantizationReport;
  dispose(): void;
  readonly disposed: boolean;
}

/** Options of {@link WasmHybridASAM}: the layer's options (the projections' sizes, `blockSize`, `seed`) plus the window and the global tokens. */
export interface HybridASAMOptions extends ASAMLayerOptions {
  /** The sliding window: query `i` attends keys with `|i − j| ≤ localWindowSize / 2`. Default `512`. */
  localWindowSize?: number | undefined;
  /** The first `numGlobalTokens` tokens attend to, and are attended by, every token. Default `1`. */
  numGlobalTokens?: number | undefined;
}

/** What one {@link WasmHybridASAM.forward} computed. */
export interface HybridASAMInfo {
  /** `1 − (local and global scores computed) / denseScores`. */
  readonly sparseRatio: number;
  readonly visitedBlocks: number;
  readonly denseBlocks: number;
  readonly computedScores: number;
  readonly denseScores: number;
  readonly globalScores: number;
}

/**
 * The ASAM seed's `HybridASAM`: a sliding window plus global tokens (the Longformer
 * arrangement) with an ASAM layer's projections; one softmax over exactly those keys, no
 * score computed twice. Inference only.
 */
export class WasmHybridASAM {
  /** @throws as {@link WasmASAMLayer}, or naming `localWindowSize` or `numGlobalTokens`. */
  constructor(options?: HybridASAMOptions);
  readonly config: Readonly<Required<Omit<HybridASAMOptions, 'runtime'>>>;
  forward(x: Float32Array, options?: ASAMForwardOptions & { returnInfo?: false | undefined }): Float32Array;
  forward(x: Float32Array, options: ASAMForwardOptions & { returnInfo: true }): { output: Float32Array; info: HybridASAMInfo };
  /** Every weight by name (see {@link parameterSizes}): q_proj.*, k_proj.*, v_proj.*, out_proj.*. Old weights stay on error. */
  loadWeights(weights: Readonly<Record<string, Float32Array>>): void;
  parameterSizes(): Record<string, number>;
  getMemoryUsage(): Omit<WeightMemoryInfo, 'paramCount'>;
  /** As {@link WasmASAMLayer.quantizeWeights}. */
  quantizeWeights(precision?: WeightPrecisionName, options?: QuantizeOptions<Float32Array>): QuantizationReport;
  dispose(): void;
  readonly disposed: boolean;
}

/** Storage precision of a {@link WasmKVCache}: float32, or half precision (half the memory). */
export type KVCachePrecision = 'fp32' | 'fp16' | 'bf16';

/** Options of {@link WasmKVCache}. */
export interface KVCacheOptions {
  /** Heads. Default `8`. */
  heads?: number | undefined;
  /** Key width per head (required). */
  headDim: number;
  /** Value width per head. Default `headDim`. */
  valueDim?: number | undefined;
  /** How keys and values are stored (rounded to nearest even); arithmetic is float32. Default `'fp32'`. */
  precision?: KVCachePrecision | undefined;
  /** Rows to allocate up front. Default `0` (grows on demand). */
  capacity?: number | undefined;
  /** The runtime to run on (from {@link createRuntime}). Default: the default runtime. */
  runtime?: AttnRuntime | undefined;
}

/**
 * A key/value cache for incremental decoding: append keys and values a few rows at a time,
 * attend one or a few new queries over every cached key (no causal rule: decoding).
 * Half-precision storage halves the memory and the bytes each decode step reads.
 */
export class WasmKVCache {
  /** @throws {TypeError} | {RangeError} naming the option; {Error} if the runtime is not initialised. */
  constructor(options: KVCacheOptions);
  readonly heads: number;
  readonly headDim: number;
  readonly valueDim: number;
  readonly precision: KVCachePrecision;
  /** Rows cached. */
  readonly length: number;
  /** K `[rows][heads][headDim]`, V `[rows][heads][valueDim]`. @throws naming `K` or `V`. */
  append(K: Float32Array, V: Float32Array): void;
  /**
   * Q `[queries][heads][headDim]` → `[queries][heads][valueDim]`: `options.out` when given.
   * An empty cache gives zeros. @throws naming `Q`, `scale` or `out`.
   */
  attend(Q: Float32Array, options?: {
    scale?: number | undefined;
    /** The queries are the last rows appended: query t sees keys up to row `length − queries + t`. Default `false`. */
    causal?: boolean | undefined;
    out?: Float32Array | null | undefined;
  }): Float32Array;
  /** Forgets every row (keeps the allocation). */
  clear(): void;
  /** Heap figures and `cacheBytes`, the bytes of key and value storage allocated. */
  getMemoryUsage(): Pick<MemoryInfo, 'heapUsed' | 'heapTotal'> & { cacheBytes: number };
  dispose(): void;
  readonly disposed: boolean;
}

/**
 * How a {@link WasmDenseAttention} `attentionMask` is laid out: `'bk'` a key-padding mask
 * `[batch][seqK]` (every query of a batch element sees the same keys), or a row-major block of
 * `[seqQ][seqK]` values `'qk'` for all, `'bqk'` per batch element, `'hqk'` per head, `'bhqk'` per
 * (batch element, head).
 */
export type DenseMaskLayout = 'bk' | MaskLayout;

/** Options of {@link WasmDenseAttention} (AdaAttn's `DenseAttention(embed_dim, num_heads, dropout, causal)`). */
export interface DenseAttentionOptions {
  /** Model width of queries, keys, values and output (required). */
  embedDim: number;
  /** Heads; must divide `embedDim`. Default `8`. */
  numHeads?: number | undefined;
  /** Probability of dropping an attention weight, in `[0, 1)`, applied only in training mode. Default `0`. */
  dropout?: number | undefined;
  /** Query i sees keys j ≤ i (top-left, also when seqQ ≠ seqK). Default `false`. */
  causal?: boolean | undefined;
  /** Biases on the four projections. Default `true`. */
  bias?: boolean | undefined;
  /** Seed of the initial weights (PyTorch's initialisation) and of the dropout masks. Default `0`. */
  seed?: number | undefined;
  /** Start in training mode (dropout on). Default `false`: inference, deterministic. */
  training?: boolean | undefined;
  /** The runtime to run on (from {@link createRuntime}). Default: the default runtime. */
  runtime?: AttnRuntime | undefined;
}

/** Options of {@link WasmDenseAttention.forward}. */
export interface DenseAttentionForwardOptions {
  /** Leading batch dimension of query, key and value. Default `1`. */
  batch?: number | undefined;
  /** Also return the weights averaged over heads. Default `false` (then none are computed). */
  needWeights?: boolean | undefined;
  /** Boolean `Uint8Array` (1 attends) or additive `Float32Array` (0 attends, `-Infinity` blocks). */
  attentionMask?: AttentionMask | null | undefined;
  /** The mask's layout; needed only when its length fits two layouts that differ (e.g. batch = seqQ). */
  maskLayout?: DenseMaskLayout | undefined;
  /** Receives the output instead of a new array: `batch·seqQ·embedDim` floats. */
  out?: Float32Array | null | undefined;
}

/**
 * AdaAttn's dense multi-head attention over `[batch][seq][embedDim]`, returning on request its
 * softmax weights averaged over heads. PyTorch `nn.MultiheadAttention` weights (the same
 * initialisation, names and binary format as {@link WasmMultiHeadAttention}). Dropout applies
 * only in training mode ({@link WasmDenseAttention.train}); the default eval mode is deterministic.
 */
export class WasmDenseAttention {
  /**
   * @throws {TypeError} if `options` is not an object, `embedDim` is missing, or an option has the wrong type.
   * @throws {RangeError} if a size is not a positive integer, `numHeads` does not divide `embedDim`,
   *   `dropout` is NaN or outside `[0, 1)`, or `seed` is not a non-negative safe integer.
   * @throws {Error} if the default runtime is not initialised (browsers: `await init()`).
   */
  constructor(options: DenseAttentionOptions);
  readonly embedDim: number;
  readonly numHeads: number;
  /** `embedDim / numHeads`. */
  readonly headDim: number;
  readonly dropout: number;
  readonly causal: boolean;
  readonly bias: boolean;
  readonly seed: number;
  /** Whether dropout applies. */
  readonly training: boolean;
  /** The dropout seed of the next training call: `seed` + training calls so far. */
  readonly nextDropoutSeed: number;
  /** Training mode (`true`, dropout on) or eval mode. @returns this. */
  train(mode?: boolean): this;
  /** Eval mode: no dropout, equal inputs give equal outputs. @returns this. */
  eval(): this;
  /**
   * @param query `[batch][seqQ][embedDim]`. @param key `[batch][seqK][embedDim]`. @param value as key.
   * @returns `output` `[batch][seqQ][embedDim]` and, with `needWeights`, `weights` `[batch][seqQ][seqK]`
   *   averaged over heads as they multiplied V (after dropout in training: rows then sum to 1 only
   *   in expectation); otherwise `null`. A row whose keys are all masked has zero weights and the
   *   output `out_proj.bias` (zero without bias), never NaN.
   * @throws {TypeError} if an input or the mask has the wrong type.
   * @throws {RangeError} naming `query`, `key`, `value`, `attentionMask`, `maskLayout`, `batch` or `out`.
   * @throws {Error} if the object was disposed.
   */
  forward(query: Float32Array, key: Float32Array, value: Float32Array,
    options?: DenseAttentionForwardOptions): { output: Float32Array; weights: Float32Array | null };
  /** The weights in attnkit's versioned binary format (the same as {@link WasmMultiHeadAttention}'s). */
  saveWeights(): Uint8Array;
  /** A buffer from `saveWeights()` or PyTorch-named arrays; on any error the old weights stay. @throws as {@link WasmMultiHeadAttention.loadWeights}. */
  loadWeights(weights: Uint8Array | MultiHeadNamedWeights): void;
  /** Heap figures; `paramCount` is the number of weights. @throws {Error} if disposed. */
  getMemoryUsage(): MemoryInfo;
  /** Frees the weights (idempotent); every other method afterwards throws an `Error`. */
  dispose(): void;
  readonly disposed: boolean;
}

/** Storage of keys and values in {@link WasmAdaptivePrecisionAttention}, or `'adaptive'`: decided per call. */
export type PrecisionChoice = 'fp32' | 'fp16' | 'bf16' | 'adaptive';

/** Options of {@link WasmAdaptivePrecisionAttention} (AdaAttn's `AdaptivePrecisionAttention`). */
export interface AdaptivePrecisionOptions {
  /** Model width of queries, keys, values and output (required). */
  embedDim: number;
  /** Heads; must divide `embedDim`. Default `8`. */
  numHeads?: number | undefined;
  /** Key/value storage, or `'adaptive'` (default): bf16, else fp16, else fp32, the first whose measured error is within `tolerance`. */
  defaultPrecision?: PrecisionChoice | undefined;
  /** Relative output error `'adaptive'` may spend on half-precision storage, ≥ 0. Default `1e-2`. */
  tolerance?: number | undefined;
  /** Query rows (over the batch) whose outputs are measured per adaptive decision. Default `16`. */
  sampleRows?: number | undefined;
  /** Default causal rule of `forward` (top-left). Default `false`. */
  causal?: boolean | undefined;
  /** Biases on the four projections. Default `true`. */
  bias?: boolean | undefined;
  /** Seed of the initial weights (PyTorch's initialisation). Default `0`. */
  seed?: number | undefined;
  runtime?: AttnRuntime | undefined;
}

/** Options of {@link WasmAdaptivePrecisionAttention.forward}. */
export interface AdaptivePrecisionForwardOptions {
  /** Leading batch dimension of query, key and value. Default `1`. */
  batch?: number | undefined;
  /** `true` or `'top-left'`: query i sees keys j ≤ i; `'bottom-right'`: j ≤ i + seqK − seqQ. Default: the constructor's `causal`. */
  causal?: boolean | 'top-left' | 'bottom-right' | undefined;
  /** Boolean `Uint8Array` (1 attends) or additive `Float32Array`, laid out as {@link DenseMaskLayout}. */
  attentionMask?: AttentionMask | null | undefined;
  maskLayout?: DenseMaskLayout | undefined;
  /** Batch 1: replace the layer's KV cache by this call's keys and values, as stored (a decoder's prefill). Default `false`. */
  keepCache?: boolean | undefined;
  /** Receives the output instead of a new array: `batch·seqQ·embedDim` floats. */
  out?: Float32Array | null | undefined;
}

/** What one call of {@link WasmAdaptivePrecisionAttention} stored its keys and values in, and why. */
export interface PrecisionDecision {
  precision: 'fp32' | 'fp16' | 'bf16';
  /** In words, with the measured figures it compared. */
  reason: string;
  /** A `step()` (else a `forward()`). */
  incremental: boolean;
  /** Largest |projected key| and |projected value| of the call. */
  maxAbsKey: number;
  maxAbsValue: number;
  /** Relative error of the sampled rows' outputs against float32 storage; `null` where not measured. */
  sampledErrorBf16: number | null;
  sampledErrorFp16: number | null;
  sampledRows: number;
  /** Keys/values that became infinite in fp16 storage (a fixed `'fp16'` policy only). */
  overflowed: number;
  /** `step()`: the fp16 cache was converted to fp32 for values beyond fp16's range. */
  convertedCache: boolean;
}

/** {@link WasmAdaptivePrecisionAttention.getPrecisionStatistics}. */
export interface PrecisionStatistics {
  calls: number;
  /** Calls that used each storage. */
  fp32: number;
  fp16: number;
  bf16: number;
  cacheConversions: number;
  /** The last 32 decisions, oldest first. */
  recent: PrecisionDecision[];
}

/**
 * AdaAttn's multi-head attention with keys and values stored in fp32, fp16 or bf16 and float32
 * arithmetic. `'adaptive'` decides per call from measured statistics (fp16's range; the error of
 * sampled rows against the caller's tolerance) and reports the choice and its reason. `step()`
 * decodes incrementally over a KV cache held at the chosen precision (half the memory, faster reads).
 * Weights as {@link WasmMultiHeadAttention}'s.
 */
export class WasmAdaptivePrecisionAttention {
  /**
   * @throws {TypeError} if `options` is not an object, `embedDim` is missing, or an option has the wrong type.
   * @throws {RangeError} naming `embedDim`, `numHeads`, `defaultPrecision`, `tolerance`, `sampleRows` or `seed`.
   */
  constructor(options: AdaptivePrecisionOptions);
  readonly embedDim: number;
  readonly numHeads: number;
  readonly headDim: number;
  readonly defaultPrecision: PrecisionChoice;
  readonly tolerance: number;
  readonly causal: boolean;
  /**
   * @param query `[batch][seqQ][embedDim]`. @param key `[batch][seqK][embedDim]`. @param value as key.
   * @throws {RangeError} naming `query`, `key`, `value`, `batch`, `causal`, `attentionMask`, `maskLayout`, `keepCache` or `out`.
   */
  forward(query: Float32Array, key: Float32Array, value: Float32Array, options?: AdaptivePrecisionForwardOptions):
    { output: Float32Array; precision: 'fp32' | 'fp16' | 'bf16'; reason: string };
  /**
   * Incremental decoding: `rows` new tokens (`[rows][embedDim]` each); their keys and values join the
   * cache and token t's query attends over the cache up to itself.
   * @throws {RangeError} naming `query`, `key`, `value` or `out`.
   */
  step(query: Float32Array, key: Float32Array, value: Float32Array, options?: { out?: Float32Array | null | undefined }):
    { output: Float32Array; precision: 'fp32' | 'fp16' | 'bf16'; reason: string };
  /** The last call's decision, or `null` before any call. */
  readonly lastDecision: PrecisionDecision | null;
  getPrecisionStatistics(): PrecisionStatistics;
  resetPrecisionStatistics(): void;
  /** Forgets the cached tokens. */
  resetCache(): void;
  readonly cacheLength: number;
  readonly cachePrecision: 'fp32' | 'fp16' | 'bf16' | null;
  saveWeights(): Uint8Array;
  loadWeights(weights: Uint8Array | MultiHeadNamedWeights): void;
  /** Heap figures; `cacheBytes` is the key/value storage the cache holds. */
  getMemoryUsage(): MemoryInfo & { cacheBytes: number };
  dispose(): void;
  readonly disposed: boolean;
}


/** How {@link WasmAdaptiveRankAttention} measures a head's sample (see the README). */
export type RankEstimationMethod = 'entropy' | 'power' | 'random';

/** Options of {@link WasmAdaptiveRankAttention} (the seed's AdaptiveRankAttention, camelCase). */
export interface AdaptiveRankAttentionOptions {
  /** Model width (required); `numHeads` must divide it. */
  embedDim: number;
  /** Heads. Default `8`. */
  numHeads?: number | undefined;
  /** Landmarks of a low-rank head = max(1, round(rankRatio · headDim)), at most the sequence. Default `0.5`. */
  rankRatio?: number | undefined;
  /** Default `'entropy'`. */
  rankEstimationMethod?: RankEstimationMethod | undefined;
  /** A head runs low rank when its estimate (in [0, 1]) is at least this. Default `0.95`. */
  adaptiveThreshold?: number | undefined;
  /**
   * A low-rank head's output is compared with exact attention on 8 sampled query rows; a relative
   * error above this (≥ 0) sends the head back to dense (reason `'sampled-error>max'`). Default `0.05`.
   */
  maxSampledError?: number | undefined;
  /** Initial weights and the samples' positions. Default `0`. */
  seed?: number | undefined;
  /** The runtime to run on (from {@link createRuntime}). Default: the default runtime. */
  runtime?: AttnRuntime | undefined;
}

/** Options of {@link WasmAdaptiveRankAttention.forward} and `attention`. */
export interface AdaptiveRankCallOptions {
  /** Leading batch dimension. Default `1`. */
  batch?: number | undefined;
  /** Top-left causal rule; every head then runs dense. Default `false`. */
  causal?: boolean | undefined;
  /** `[seqQ][seqK]` or `[batch][seqQ][seqK]`; every head then runs dense. */
  mask?: AttentionMask | undefined;
  maskLayout?: 'qk' | 'bqk' | undefined;
  /** Receives the result instead of a new array. */
  out?: Float32Array | null | undefined;
}

/** Why a head ran as it did. */
export type RankDecisionReason = 'estimate>=threshold' | 'estimate<threshold' | 'causal' | 'mask' | 'not-cheaper'
  | 'sampled-error>max';

/** What {@link WasmAdaptiveRankAttention.getRankStatistics} reports; every number is measured. */
export interface RankStatistics {
  method: RankEstimationMethod;
  threshold: number;
  /** Landmarks a low-rank head uses (before clamping to the sequence). */
  rank: number;
  calls: number;
  lastCall: {
    seqQ: number;
    seqK: number;
    /** One per (batch element, head). `estimate` is null when no sample was taken (see `reason`). */
    heads: Array<{
      batch: number; head: number; decision: 'lowRank' | 'dense'; rank: number | null;
      estimate: number | null;
      /** Relative error of the low-rank output on the sampled rows vs exact attention; null when low rank did not run. */
      sampledError: number | null;
      reason: RankDecisionReason;
    }>;
  };
  /** Totals per head over every call since construction or `resetRankStatistics()`. */
  perHead: Array<{
    head: number; lowRank: number; dense: number;
    /** Decisions sent back to dense by the sampled error (counted in `dense`). */
    rejected: number;
    estimated: number;
    meanEstimate: number | null; minEstimate: number | null; maxEstimate: number | null;
  }>;
}

/**
 * Multi-head attention whose heads each run dense (flash) or low rank (Nyström landmarks,
 * O(n·r·d)), decided per call and per (batch element, head) from a sample of the head's
 * scores. Causal rules and masks run dense.
 */
export class WasmAdaptiveRankAttention {
  /** @throws {TypeError} | {RangeError} naming the option. */
  constructor(options: AdaptiveRankAttentionOptions);
  readonly config: Readonly<Required<Omit<AdaptiveRankAttentionOptions, 'runtime'>> & { headDim: number }>;
  readonly rank: number;
  /** query `[batch][seqQ][embedDim]`, key/value `[batch][seqK][embedDim]` → `[batch][seqQ][embedDim]`. */
  forward(query: Float32Array, key: Float32Array, value: Float32Array, options?: AdaptiveRankCallOptions): Float32Array;
  /** Projected Q `[batch][seqQ][numHeads][headDim]`, K/V `[batch][seqK][numHeads][headDim]` → Q's layout. */
  attention(Q: Float32Array, K: Float32Array, V: Float32Array, options?: AdaptiveRankCallOptions): Float32Array;
  getRankStatistics(): RankStatistics;
  resetRankStatistics(): void;
  parameterSizes(): Record<string, number>;
  /** Named Float32Arrays (`q_proj.weight`, …, `out_proj.bias`), all of them. */
  loadWeights(weights: Record<string, Float32Array>): void;
  getWeights(): Record<string, Float32Array>;
  dispose(): void;
  readonly disposed: boolean;
}

/** Options of {@link lowRankAttention}. */
export interface LowRankAttentionOptions {
  heads?: number | undefined;
  headDim: number;
  headsKv?: number | undefined;
  valueDim?: number | undefined;
  /** Nyström landmarks (segment means), at most the sequence lengths. */
  landmarks: number;
  batch?: number | undefined;
  /** Default `1/sqrt(headDim)`. */
  scale?: number | undefined;
  out?: Float32Array | null | undefined;
  runtime?: AttnRuntime | undefined;
}

/** The bare Nyström kernel in the flash layout: softmax(scale·QKᵀ)V approximated at rank `landmarks`. */
export function lowRankAttention(Q: Float32Array, K: Float32Array, V: Float32Array, options: LowRankAttentionOptions): Float32Array;

/** How a layer stores its projections' weights (`'qint8'`, `'float16'`, `'float32'` are accepted too). */
export type WeightPrecisionName = 'int8' | 'fp16' | 'fp32' | 'qint8' | 'float16' | 'float32';

/** Options of `quantizeWeights` and {@link quantizeASAMModel}. */
export interface QuantizeOptions<Probe> {
  /** The input the output error is measured on (default: seeded random rows). */
  probe?: Probe | undefined;
}

/** What a `quantizeWeights` call measured. */
export interface QuantizationReport {
  readonly precision: 'int8' | 'fp16' | 'fp32';
  readonly previousPrecision: 'int8' | 'fp16' | 'fp32';
  /** Bytes of the projections' weights and biases held before and after (float32 keeps row-major and packed copies). */
  readonly weightBytesBefore: number;
  readonly weightBytesAfter: number;
  /**
   * The output on the probe against the layer before the call: `relative` = ‖after − before‖ / ‖before‖,
   * `maxAbs` the largest difference. `null` for a multi-head layer with dropout (random outputs).
   */
  readonly outputError: {
    readonly relative: number;
    readonly maxAbs: number;
    readonly reference: 'int8' | 'fp16' | 'fp32';
    readonly probe: 'random' | 'given';
  } | null;
  readonly outputErrorReason?: string;
}

/** {@link MemoryInfo} of a layer with projections. */
export interface WeightMemoryInfo extends MemoryInfo {
  readonly weightPrecision: 'int8' | 'fp16' | 'fp32';
  /** Bytes of the projections' weights and biases as held now. */
  readonly weightBytes: number;
  /** The last `quantizeWeights` report, or `null`. */
  readonly quantization: QuantizationReport | null;
}

/**
 * The ASAM seed's `quantize_asam_model(model, dtype)`: stores the model's projection weights as
 * int8 (`'int8'` / `'qint8'`) or fp16 (`'fp16'` / `'float16'`) in place and returns the same
 * model; the report is `model.getMemoryUsage().quantization`.
 * @throws {TypeError} naming `model`; {RangeError} naming `dtype`; as the model's `quantizeWeights`.
 */
export declare function quantizeASAMModel<M extends WasmASAMLayer | WasmASAMEncoder | WasmHybridASAM | WasmMultiHeadAttention>(
  model: M, dtype: 'int8' | 'qint8' | 'fp16' | 'float16', options?: QuantizeOptions<Float32Array>): M;


// ---- AttentionWorker: the classes in a worker, behind promises ---------------------------

/** What {@link transfer} returns: a typed array moved to the worker instead of copied. */
export interface Transferred<T extends ArrayBufferView | ArrayBuffer> {
  readonly value: T;
}

/**
 * Marks a typed array (or `ArrayBuffer`) as an argument to move to the worker: its memory is
 * handed over instead of copied, and the caller's array is detached (length 0) afterwards.
 * @throws {TypeError} naming `value` if it is not a typed array or `ArrayBuffer`.
 */
export declare function transfer<T extends ArrayBufferView | ArrayBuffer>(value: T): Transferred<T>;

/** An argument as it may be sent to a worker: typed arrays, anywhere in it, may be {@link transfer}red. */
export type Sendable<A> =
  A extends ArrayBufferView | ArrayBuffer ? A | Transferred<A> :
  A extends (...args: never[]) => unknown ? never :
  A extends object ? { [K in keyof A]: Sendable<A[K]> } : A;

/** The classes {@link AttentionWorker.construct} makes, by name. */
export interface WorkerClasses {
  WasmFlashAttention: typeof WasmFlashAttention;
  WasmLinearAttention: typeof WasmLinearAttention;
  WasmSparseAttention: typeof WasmSparseAttention;
  WasmASAMLayer: typeof WasmASAMLayer;
  WasmASAMEncoder: typeof WasmASAMEncoder;
  WasmHybridASAM: typeof WasmHybridASAM;
  WasmKVCache: typeof WasmKVCache;
  WasmMultiHeadAttention: typeof WasmMultiHeadAttention;
  WasmCrossAttention: typeof WasmCrossAttention;
  WasmDenseAttention: typeof WasmDenseAttention;
  WasmAdaptivePrecisionAttention: typeof WasmAdaptivePrecisionAttention;
  WasmAdaptiveRankAttention: typeof WasmAdaptiveRankAttention;
}

/**
 * An object living in an {@link AttentionWorker}: each method of `T` returns a promise of its
 * result (typed arrays in it are moved, not copied, out of the worker). A call that throws in
 * the worker rejects with the same error class, message and `param`; the object stays usable.
 * Calls run one at a time, in the order they were made (also when several are in flight), so
 * one RemoteObject may be shared by any number of async tasks; objects of one worker share its
 * runtime and run one call at a time: for parallel work, use several workers.
 */
export type RemoteObject<T> = {
  [K in keyof T as T[K] extends (...args: never[]) => unknown ? K : never]:
    T[K] extends (...args: infer P) => infer R ? (...args: { [I in keyof P]: Sendable<P[I]> }) => Promise<Awaited<R>> : never;
} & {
  /** The class this object is an instance of. */
  readonly className: string;
  /** Reads a property (`lastStats`, `heads`, …) of the object in the worker. */
  get<K extends keyof T>(property: K): Promise<T[K]>;
};

/**
 * Sharing an instance (every class): an object belongs to the thread that made it and its
 * runtime; it cannot be handed to another worker (make one there, or use an AttentionWorker).
 * On its thread each call runs whole before the next starts, so async tasks may share one
 * instance; what carries over between calls (a KV cache's rows, `lastStats`,
 * `getAttentionWeights()`, dropout and training state, precision and rank statistics)
 * follows the calls in the order they ran: read it right after your call, before an `await`.
 *
 * A worker (Web Worker in browsers, `worker_threads` in Node) with its own WebAssembly runtime,
 * so that long calls keep the page (or the event loop) responsive. The synchronous classes stay
 * as they are; this runs the same classes off the calling thread:
 * ```js
 * const worker = await AttentionWorker.create({ numThreads: 4 });
 * const attn = await worker.construct('WasmFlashAttention', { heads: 8, dim: 64 });
 * const out = await attn.forward(transfer(Q), transfer(K), transfer(V));
 * worker.dispose();
 * ```
 * In Node an idle worker does not keep the process alive.
 */
export declare class AttentionWorker {
  private constructor();
  /**
   * Starts a worker and its runtime with {@link init}'s options (chosen in the worker: a page
   * that is not cross-origin isolated gets `'simd'` on one thread). Rejects with init's errors.
   */
  static create(options?: InitOptions): Promise<AttentionWorker>;
  /** The worker's runtime: variant, threads and why. */
  readonly info: RuntimeInfo;
  /**
   * Makes an instance of the named class in the worker.
   * @throws {TypeError} naming `className` for an unknown class, `runtime` if options carry one;
   * rejects with the constructor's own errors.
   */
  construct<N extends keyof WorkerClasses>(
    className: N,
    options?: Sendable<Omit<NonNullable<ConstructorParameters<WorkerClasses[N]>[0]>, 'runtime'>>,
  ): Promise<RemoteObject<InstanceType<WorkerClasses[N]>>>;
  /** Sets the worker runtime's thread count (at most `info.maxThreads`); `info` follows. */
  setNumThreads(numThreads: number): Promise<void>;
  /** Terminates the worker: calls in flight and later calls reject with an `Error`. */
  dispose(): void;
}
