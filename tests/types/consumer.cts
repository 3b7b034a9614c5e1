// A CommonJS TypeScript consumer: `require('attnkit')` resolves through the "require"
// condition of package.json "exports" to types/index.d.cts.
import attnkitCjs = require('attnkit');

async function main(): Promise<number> {
  const attnkit = await attnkitCjs.load();
  await attnkitCjs.load({ variant: 'simd', numThreads: 1 });
  const attn = new attnkit.WasmFlashAttention({ heads: 1, dim: 2 });
  const out: Float32Array = attn.forward(new Float32Array(4), new Float32Array(4), new Float32Array(4));
  const info: ReturnType<typeof attnkit.getRuntimeInfo> = attnkit.getRuntimeInfo();
  const threads: number = info.threads;
  attn.dispose();
  const sparse = new attnkit.WasmSparseAttention({ heads: 1, headDim: 2, pattern: 'local' });
  const sparseOut: Float32Array = sparse.forward(new Float32Array(4), new Float32Array(4), new Float32Array(4));
  const ratio: number = sparse.lastStats?.sparseRatio ?? 0;
  sparse.dispose();
  const chunked: Float32Array = attnkit.memoryEfficientAttention(new Float32Array(4), new Float32Array(4), new Float32Array(4), { heads: 1, headDim: 2, chunkSize: 1 });
  const blocked: number = attnkit.computeAttentionSparsity(new Uint8Array([1, 0]));
  const { avgTimeMs } = attnkit.measureAttentionEfficiency(() => chunked, 1, 2, 3, { numRuns: 1 });
  // @ts-expect-error load takes no number
  await attnkitCjs.load(5);
  // @ts-expect-error the CommonJS entry exports load() only
  attnkitCjs.WasmFlashAttention;
  return out.length + threads + sparseOut.length + ratio + chunked.length + blocked + avgTimeMs;
}

export = main;
