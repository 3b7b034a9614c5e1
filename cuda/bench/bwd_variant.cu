// Experiment harness (cuda/bench/kernel_variants.sh bwd): the dense bf16 backward kernel alone in a
// small shared library, so kernel variants (other source trees, compile flags) can be built
// side by side and timed against PyTorch's flash backend in one device run. The caller
// passes lse, D = rowsum(dO * O) and a zeroed float32 dQ scratch. Not part of the library;
// CI does not compile it.
#include <cmath>

#include "flash_bwd_kernel.cuh"

using namespace attn::cuda::detail;

template <int kHeadDim>
static int launch(const void* q, const void* k, const void* v, const void* dout, const float* lse,
                  const float* delta, float* dq_accum, void* dk, void* dv, int b, int n, int h,
                  int causal, cudaStream_t stream) {
  BwdParams p;
  p.q = q, p.k = k, p.v = v, p.dout = dout, p.dk = dk, p.dv = dv;
  const int64_t row = int64_t{h} * kHeadDim;
  p.q_stride = p.k_stride = p.v_stride = p.do_stride = p.dk_stride = p.dv_stride =
      BwdStrides3{int64_t{n} * row, row, kHeadDim};
  p.lse = lse;
  p.lse_stride = BwdStrides3{int64_t{h} * n, 1, n};  // lse [b][h][n]
  p.delta = const_cast<float*>(delta);  // (the launch or the kernel writes it)
  p.dq_accum = dq_accum;
  static int* counters = nullptr;  // the Hopper kernel's counters (zeroed before it by the launch)
  static size_t counters_size = 0;
  const size_t need = bwd_counter_ints(b, n);
  if (counters_size < need) {
    cudaFree(counters);
    if (cudaMalloc(&counters, sizeof(int) * need) != cudaSuccess) return -2;
    counters_size = need;
  }
  p.counters = counters;
  p.out = dout;  // D from dout x dout: a stand-in for the forward's output (the timing is the same)
  p.o_stride = p.do_stride;
  p.batch = b, p.seq_q = p.seq_k = n, p.heads_q = p.heads_kv = h, p.group = 1;
  p.head_dim = kHeadDim;
  p.causal = causal != 0;
  p.scale = 1.0f / std::sqrt(float(kHeadDim));
  p.scale_log2 = p.scale * 1.4426950408889634f;
  return int(launch_flash_bwd<__nv_bfloat16, kHeadDim>(p, stream));
}

extern "C" int bwd_variant(const void* q, const void* k, const void* v, const void* dout, const float* lse,
                           const float* delta, float* dq_accum, void* dk, void* dv, int b, int n, int h, int d,
                           int causal, void* stream) {
  auto s = static_cast<cudaStream_t>(stream);
  if (d == 64) return launch<64>(q, k, v, dout, lse, delta, dq_accum, dk, dv, b, n, h, causal, s);
  if (d == 128) return launch<128>(q, k, v, dout, lse, delta, dq_accum, dk, dv, b, n, h, causal, s);
  return -1;
}
