// Block-timeline diagnostic of the Hopper kernels (cuda/bench/block_timeline.sh builds it with
// -DATTN_BLOCK_TIMELINE, so the kernels' ATTN_TIMELINE marks record): runs the dense bf16
// forward or backward kernel alone on random inputs (batch x n = 16384 tokens, 16 heads), times
// it, then runs it once more recording every block's marks and writes them to a file for
// block_timeline.py. Also prints an FNV hash of the output (o, or dk) so that variants meant
// to be bit-identical can be compared. Not part of the library; CI does not compile it.
//   block_timeline fwd|bwd HEAD_DIM N CAUSAL OUT.bin
#include <cuda_bf16.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "bwd_params.h"
#include "flash_bwd_sm90.cuh"
#include "flash_fwd_sm90.cuh"
#include "fwd_params.h"

using namespace attn::cuda::detail;
using bf16 = __nv_bfloat16;

#define CHECK(x)                                                                          \
  do {                                                                                    \
    cudaError_t e = (x);                                                                  \
    if (e != cudaSuccess) {                                                               \
      std::fprintf(stderr, "%s: %s (line %d)\n", #x, cudaGetErrorString(e), __LINE__);   \
      std::exit(1);                                                                       \
    }                                                                                     \
  } while (0)

// Uniform values in [-1, 1) from a hash of the index (no cuRAND needed).
__global__ void fill_uniform(bf16* x, size_t n, unsigned seed) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) {
    unsigned h = static_cast<unsigned>(i) * 2654435761u ^ seed;
    h ^= h >> 13;
    h *= 0x5bd1e995u;
    h ^= h >> 15;
    x[i] = __float2bfloat16((h & 0xffff) / 32768.0f - 1.0f);
  }
}
__global__ void fill_value(float* x, size_t n, float value) {
  for (size_t i = blockIdx.x * size_t{blockDim.x} + threadIdx.x; i < n; i += size_t{gridDim.x} * blockDim.x) x[i] = value;
}

int main(int argc, char** argv) {
  if (argc != 6 || (std::strcmp(argv[1], "fwd") != 0 && std::strcmp(argv[1], "bwd") != 0)) {
    std::fprintf(stderr, "usage: %s fwd|bwd HEAD_DIM N CAUSAL OUT.bin\n", argv[0]);
    return 2;
  }
  const bool forward = argv[1][0] == 'f';
  const int d = std::atoi(argv[2]), n = std::atoi(argv[3]), causal = std::atoi(argv[4]);
  if ((d != 64 && d != 128) || n < 128 || n > 16384) {
    std::fprintf(stderr, "HEAD_DIM must be 64 or 128, N 128..16384\n");
    return 2;
  }
  const int batch = 16384 / n, heads = 16;
  const size_t elems = size_t(batch) * n * heads * d, rows = size_t(batch) * heads * n;
  bf16 *q, *k, *v, *o, *dout, *dk, *dv;
  float *lse, *delta, *dq_accum;
  for (bf16** x : {&q, &k, &v, &o, &dout, &dk, &dv}) CHECK(cudaMalloc(x, elems * sizeof(bf16)));
  CHECK(cudaMalloc(&lse, rows * 4));
  CHECK(cudaMalloc(&delta, rows * 4));
  CHECK(cudaMalloc(&dq_accum, elems * 4));
  int* counters;  // the Hopper backward's counters (zeroed by its launch)
  CHECK(cudaMalloc(&counters, sizeof(int) * bwd_counter_ints(batch, n)));
  fill_uniform<<<1024, 256>>>(q, elems, 1);
  fill_uniform<<<1024, 256>>>(k, elems, 2);
  fill_uniform<<<1024, 256>>>(v, elems, 3);
  fill_uniform<<<1024, 256>>>(dout, elems, 4);
  fill_uniform<<<1024, 256>>>(o, elems, 5);  // the backward's D pass reads it (the forward overwrites it)
  fill_value<<<1024, 256>>>(lse, rows, 8.0f);  // any finite lse: the timing does not depend on it
  fill_value<<<1024, 256>>>(delta, rows, 0.0f);

  const int64_t row = int64_t{heads} * d;
  const float scale = 1.0f / std::sqrt(float(d));
  FwdParams fp;
  fp.q = q, fp.k = k, fp.v = v, fp.out = o;
  fp.q_stride = fp.k_stride = fp.v_stride = fp.o_stride = Strides3{n * row, row, d};
  fp.batch = batch, fp.seq_q = fp.seq_k = n, fp.heads_q = fp.heads_kv = heads, fp.group = 1;
  fp.q_tiles = fp.k_tiles = (n + 127) / 128;
  fp.causal = causal != 0, fp.scale = scale, fp.scale_log2 = scale * 1.4426950408889634f;
  BwdParams bp;
  bp.q = q, bp.k = k, bp.v = v, bp.dout = dout, bp.out = o, bp.dk = dk, bp.dv = dv;
  bp.q_stride = bp.k_stride = bp.v_stride = bp.do_stride = bp.o_stride = bp.dk_stride = bp.dv_stride =
      BwdStrides3{n * row, row, d};
  bp.lse = lse, bp.lse_stride = BwdStrides3{int64_t{heads} * n, 1, n}, bp.delta = delta, bp.dq_accum = dq_accum;
  bp.batch = batch, bp.seq_q = bp.seq_k = n, bp.heads_q = bp.heads_kv = heads, bp.group = 1, bp.head_dim = d;
  bp.causal = causal != 0, bp.scale = scale, bp.scale_log2 = fp.scale_log2;
  bp.counters = counters;
  auto launch = [&]() -> cudaError_t {
    if (forward) return d == 64 ? launch_flash_fwd_sm90<bf16, 64>(fp, 0) : launch_flash_fwd_sm90<bf16, 128>(fp, 0);
    return d == 64 ? launch_flash_bwd_sm90<bf16, 64>(bp, 0) : launch_flash_bwd_sm90<bf16, 128>(bp, 0);
  };

  // Timing without recording (the marks then test a null pointer only), then one recorded run.
  for (int i = 0; i < 5; ++i) CHECK(launch());
  cudaEvent_t start, end;
  CHECK(cudaEventCreate(&start));
  CHECK(cudaEventCreate(&end));
  CHECK(cudaEventRecord(start));
  for (int i = 0; i < 10; ++i) CHECK(launch());
  CHECK(cudaEventRecord(end));
  CHECK(cudaEventSynchronize(end));
  float ms = 0.0f;
  CHECK(cudaEventElapsedTime(&ms, start, end));
  ms /= 10;
  const size_t blocks = size_t((n + 127) / 128) * heads * batch;
  unsigned long long* marks;
  CHECK(cudaMalloc(&marks, blocks * 16 * 8));
  CHECK(cudaMemset(marks, 0, blocks * 16 * 8));
  CHECK(cudaMemcpyToSymbol(block_timeline, &marks, sizeof(marks)));
  CHECK(launch());
  CHECK(cudaDeviceSynchronize());
  std::vector<unsigned long long> host(blocks * 16);
  CHECK(cudaMemcpy(host.data(), marks, host.size() * 8, cudaMemcpyDeviceToHost));
  FILE* f = std::fopen(argv[5], "wb");
  if (f == nullptr || std::fwrite(host.data(), 8, host.size(), f) != host.size()) {
    std::fprintf(stderr, "cannot write %s\n", argv[5]);
    return 1;
  }
  std::fclose(f);

  std::vector<unsigned short> result(elems);
  CHECK(cudaMemcpy(result.data(), forward ? static_cast<void*>(o) : static_cast<void*>(dk), elems * 2,
                   cudaMemcpyDeviceToHost));
  unsigned long long hash = 1469598103934665603ull;
  for (unsigned short x : result) hash = (hash ^ x) * 1099511628211ull;
  const double flops = 4.0 * batch * heads * double(n) * n * d * (causal ? 0.5 : 1.0) * (forward ? 1.0 : 2.5);
  std::printf("%s d%d n%d causal%d: %.3f ms (%.0f TFLOP/s), %zu blocks, %s hash %016llx\n", argv[1], d, n, causal, ms,
              flops / ms / 1e9, blocks, forward ? "o" : "dk", hash);
  return 0;
}
