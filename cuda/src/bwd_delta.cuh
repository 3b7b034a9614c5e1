// D = rowsum(dO * O) per query row (float32, as dS needs it), two ways:
// - the D pass before the mma.sync backward kernels (delta_kernel), which also zeroes their
//   float32 dQ scratch;
// - on Hopper, by a few of the backward kernel's own blocks before they take items
//   (bwd90_delta_workers.cuh).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "bwd_params.h"
#include "dependent_launch.cuh"
#include "mma_sm80.cuh"

namespace attn::cuda::detail {

// The dot product of 8 + 8 16-bit values (a 16-byte chunk of an O row and of the dO row).
template <typename T>
__device__ __forceinline__ float chunk_dot(uint4 x, uint4 y) {
  const uint32_t xs[4] = {x.x, x.y, x.z, x.w}, ys[4] = {y.x, y.y, y.z, y.w};
  float sum = 0.0f;
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const float2 a = unpack2<T>(xs[k]), c = unpack2<T>(ys[k]);
    sum += a.x * c.x + a.y * c.y;
  }
  return sum;
}

// The sum over groups of kLanes adjacent lanes (a row's chunks), in every lane of the group.
template <int kLanes>
__device__ __forceinline__ float sum_over_lanes(float v) {
  static_assert(32 % kLanes == 0, "groups within one warp");
#pragma unroll
  for (int m = kLanes / 2; m > 0; m >>= 1) v += __shfl_xor_sync(0xffffffffu, v, m);
  return v;
}

// kHeadDim / 8 threads per row with 16-byte loads (rows are checked contiguous and 16-byte
// aligned); with zero_scratch the same threads zero the row's scratch [b][i][h][d] (one pass
// instead of a memset beside it). The first `counters` threads zero p.counters.
template <typename T, int kHeadDim>
__global__ void delta_kernel(const BwdParams p, int64_t rows, bool zero_scratch, int counters) {
  constexpr int kThreadsPerRow = kHeadDim / 8;
  const int64_t thread = blockIdx.x * int64_t{blockDim.x} + threadIdx.x;
  const int64_t row = thread / kThreadsPerRow;  // [b][h][i] order, as delta
  const int part = static_cast<int>(thread % kThreadsPerRow);
  allow_dependent_launch();  // the Hopper kernel after it waits for its writes (flash_bwd_sm90.cuh)
  if (thread < counters) p.counters[thread] = 0;
  float sum = 0.0f;
  if (row < rows) {
    const int64_t heads = p.heads_q, seq = p.seq_q;
    const int64_t i = row % seq, h = (row / seq) % heads, b = row / (seq * heads);
    const uint4 x = *reinterpret_cast<const uint4*>(static_cast<const T*>(p.out) + b * p.o_stride.batch +
                                                    i * p.o_stride.row + h * p.o_stride.head + part * 8);
    const uint4 y = *reinterpret_cast<const uint4*>(static_cast<const T*>(p.dout) + b * p.do_stride.batch +
                                                    i * p.do_stride.row + h * p.do_stride.head + part * 8);
    sum = chunk_dot<T>(x, y);
    if (zero_scratch) {
      float4* dq = reinterpret_cast<float4*>(p.dq_accum + ((b * seq + i) * heads + h) * kHeadDim + part * 8);
      dq[0] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
      dq[1] = make_float4(0.0f, 0.0f, 0.0f, 0.0f);
    }
  }
  sum = sum_over_lanes<kThreadsPerRow>(sum);
  if (row < rows && part == 0) p.delta[row] = sum;
}

template <typename T, int kHeadDim>
cudaError_t launch_delta(const BwdParams& p, bool zero_scratch, int counters, cudaStream_t stream) {
  const int64_t rows = int64_t{p.batch} * p.heads_q * p.seq_q;
  const int64_t threads = std::max<int64_t>(rows * (kHeadDim / 8), counters);
  delta_kernel<T, kHeadDim><<<static_cast<unsigned>((threads + 255) / 256), 256, 0, stream>>>(p, rows, zero_scratch,
                                                                                               counters);
  return cudaGetLastError();
}

}  // namespace attn::cuda::detail
