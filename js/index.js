// attnkit: attention kernels on WebAssembly SIMD128 with threads.
// In Node the module initialises itself on import; in browsers, await init() first.
import { IS_NODE } from './features.js';
import { init } from './runtime.js';

export { init, createRuntime, getRuntimeInfo, setNumThreads } from './runtime.js';
export { checkSIMDSupport, checkThreadSupport } from './features.js';
export { WasmFlashAttention } from './flash_attention.js';
export { WasmLinearAttention } from './linear_attention.js';
export { WasmSparseAttention } from './sparse_attention.js';
export { WasmASAMEncoder, WasmASAMLayer, WasmHybridASAM } from './asam_layer.js';
export { WasmKVCache } from './kv_cache.js';
export { WasmDenseAttention } from './dense_attention.js';
export { WasmAdaptivePrecisionAttention } from './adaptive_precision_attention.js';
export { WasmAdaptiveRankAttention, lowRankAttention } from './adaptive_rank_attention.js';
export { WasmCrossAttention, WasmMultiHeadAttention } from './multihead_attention.js';
export { createMask } from './masks.js';
export { quantizeASAMModel } from './quantization.js';
export { computeAttentionSparsity, measureAttentionEfficiency, memoryEfficientAttention } from './asam_utils.js';
export { AttentionWorker, transfer } from './attention_worker.js';
export default init;

// js/worker.js sets the mark: it starts its own runtime with the options it is given.
if (IS_NODE && !globalThis[Symbol.for('attnkit.worker')]) await init();
