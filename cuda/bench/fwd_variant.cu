// Experiment harness (cuda/bench/kernel_variants.sh fwd): the dense bf16 forward kernels alone in a
// small shared library, so kernel variants (other source trees, compile flags) can be built
// side by side and timed against PyTorch's flash backend in one device run. Not part of the
// library; CI does not compile it.
#include <cmath>

#include "flash_fwd_kernel.cuh"

using namespace attn::cuda::detail;

template <int kHeadDim>
static int launch(const void* q, const void* k, const void* v, void* out, int b, int n, int h,
                  int causal, cudaStream_t stream) {
  FwdParams p;
  p.q = q, p.k = k, p.v = v, p.out = out;
  const int64_t row = int64_t{h} * kHeadDim;
  p.q_stride = p.k_stride = p.v_stride = p.o_stride = Strides3{int64_t{n} * row, row, kHeadDim};
  p.batch = b, p.seq_q = p.seq_k = n, p.heads_q = p.heads_kv = h, p.group = 1;
  p.q_tiles = (n + kBlockM - 1) / kBlockM;
  p.k_tiles = (n + kBlockN - 1) / kBlockN;
  p.causal = causal != 0;
  p.scale = 1.0f / std::sqrt(float(kHeadDim));
  p.scale_log2 = p.scale * 1.4426950408889634f;
  using T = __nv_bfloat16;
  const size_t smem = sizeof(T) * kHeadDim * (kBlockM + 4 * kBlockN);
  auto kernel = flash_fwd_kernel<T, kHeadDim, T, false>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (err != cudaSuccess) return int(err);
  kernel<<<dim3(p.q_tiles, h, b), kFwdThreads, smem, stream>>>(p);
  return int(cudaGetLastError());
}

extern "C" int fwd_variant(const void* q, const void* k, const void* v, void* out, int b, int n,
                           int h, int d, int causal, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  if (d == 64) return launch<64>(q, k, v, out, b, n, h, causal, s);
  if (d == 128) return launch<128>(q, k, v, out, b, n, h, causal, s);
  return -1;
}
