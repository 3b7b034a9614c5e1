// float32 -> bfloat16 copies of the inputs of the float32 path (strided in, contiguous out).
#include <cuda_bf16.h>

#include "convert.h"

namespace attn::cuda::detail {
namespace {

struct Rank4 {
  int64_t shape[4];
  int64_t stride[4];
};

__global__ void to_bf16_kernel(const float* src, Rank4 layout, int64_t count, __nv_bfloat16* dst) {
  for (int64_t n = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; n < count;
       n += int64_t{gridDim.x} * blockDim.x) {
    int64_t rest = n, offset = 0;
    for (int d = 3; d >= 0; --d) {
      offset += (rest % layout.shape[d]) * layout.stride[d];
      rest /= layout.shape[d];
    }
    dst[n] = __float2bfloat16_rn(src[offset]);
  }
}

}  // namespace

cudaError_t launch_to_bf16(const TensorView& src, void* dst, cudaStream_t stream) {
  Rank4 layout{};
  for (int d = 0; d < 4; ++d) {
    layout.shape[d] = src.shape[d];
    layout.stride[d] = src.stride[d];
  }
  const int64_t count = src.numel();
  const int blocks = static_cast<int>(std::min<int64_t>((count + 255) / 256, 65535));
  to_bf16_kernel<<<blocks, 256, 0, stream>>>(static_cast<const float*>(src.data), layout, count,
                                             static_cast<__nv_bfloat16*>(dst));
  return cudaGetLastError();
}

}  // namespace attn::cuda::detail
