// float32 -> bfloat16 copies of the inputs of the float32 path (strided in, contiguous out).
#include <cuda_bf16.h>

#include "convert.h"
#include "strided.cuh"

namespace attn::cuda::detail {
namespace {

__global__ void to_bf16_kernel(const float* src, Rank4 layout, int64_t count, __nv_bfloat16* dst) {
  for (int64_t n = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; n < count;
       n += int64_t{gridDim.x} * blockDim.x) {
    dst[n] = __float2bfloat16_rn(src[strided_offset(layout, n)]);
  }
}

}  // namespace

cudaError_t launch_to_bf16(const TensorView& src, void* dst, cudaStream_t stream) {
  const int64_t count = src.numel();
  to_bf16_kernel<<<stride_blocks(count), kStrideThreads, 0, stream>>>(
      static_cast<const float*>(src.data), rank4_of(src), count, static_cast<__nv_bfloat16*>(dst));
  return cudaGetLastError();
}

}  // namespace attn::cuda::detail
