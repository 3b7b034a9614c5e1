// Conversions between float32 and the tensors' dtypes: bfloat16 copies of the inputs of the
// float32 path (strided in, contiguous out), and float32 scratch results stored into their
// destination tensors (contiguous in, strided out).
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "convert.h"
#include "dependent_launch.cuh"
#include "mma_sm80.cuh"
#include "strided.cuh"

namespace attn::cuda::detail {
namespace {

__global__ void to_bf16_kernel(const float* src, Rank4 layout, int64_t count, __nv_bfloat16* dst) {
  for (int64_t n = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; n < count;
       n += int64_t{gridDim.x} * blockDim.x) {
    dst[n] = __float2bfloat16_rn(src[strided_offset(layout, n)]);
  }
}

// A contiguous float32 scratch of `dst`'s shape -> dst (its dtype and strides).
__global__ void store_kernel(const float* src, float scale, int64_t count, Rank4 dst_layout, void* dst, int dtype) {
  wait_for_prerequisite_grids();  // (launch_store's `programmatic`)
  for (int64_t n = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; n < count;
       n += int64_t{gridDim.x} * blockDim.x) {
    const int64_t offset = strided_offset(dst_layout, n);
    const float x = src[n] * scale;
    switch (static_cast<DType>(dtype)) {
      case DType::kFloat16: static_cast<__half*>(dst)[offset] = __float2half_rn(x); break;
      case DType::kBFloat16: static_cast<__nv_bfloat16*>(dst)[offset] = __float2bfloat16_rn(x); break;
      default: static_cast<float*>(dst)[offset] = x; break;
    }
  }
}

// The same for rows of a multiple of 8 elements, contiguous in the last dimension (dq:
// head_dim 64 or 128, checked 16-byte aligned): 8 elements per thread, the row's offset
// computed once, 32-byte loads and 16-byte stores. Last elements first: the kernels that fill
// the scratches (the backward's dQ and dbias) finish with their end, which is then still in
// L2 (H100 backward, whole call: +0.1-1.6% at n <= 2048, same run).
template <typename T>
__global__ void store_rows8_kernel(const float* src, float scale, int64_t count8, Rank4 dst_layout, T* dst) {
  wait_for_prerequisite_grids();  // (launch_store's `programmatic`)
  const int64_t per_row = dst_layout.shape[3] / 8;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count8;
       i += int64_t{gridDim.x} * blockDim.x) {
    const int64_t n = count8 - 1 - i;
    int64_t rest = n / per_row, offset = (n % per_row) * 8;
    for (int d = 2; d >= 0; --d) {
      offset += (rest % dst_layout.shape[d]) * dst_layout.stride[d];
      rest /= dst_layout.shape[d];
    }
    float4 a = reinterpret_cast<const float4*>(src)[2 * n];
    float4 b = reinterpret_cast<const float4*>(src)[2 * n + 1];
    a = make_float4(a.x * scale, a.y * scale, a.z * scale, a.w * scale);
    b = make_float4(b.x * scale, b.y * scale, b.z * scale, b.w * scale);
    if constexpr (sizeof(T) == 4) {
      reinterpret_cast<float4*>(dst + offset)[0] = a;
      reinterpret_cast<float4*>(dst + offset)[1] = b;
    } else {
      const uint4 packed = make_uint4(pack2<T>(a.x, a.y), pack2<T>(a.z, a.w),
                                      pack2<T>(b.x, b.y), pack2<T>(b.z, b.w));
      *reinterpret_cast<uint4*>(dst + offset) = packed;
    }
  }
}

}  // namespace

cudaError_t launch_to_bf16(const TensorView& src, void* dst, cudaStream_t stream) {
  const int64_t count = src.numel();
  to_bf16_kernel<<<stride_blocks(count), kStrideThreads, 0, stream>>>(
      static_cast<const float*>(src.data), rank4_of(src), count, static_cast<__nv_bfloat16*>(dst));
  return cudaGetLastError();
}

// A float32 scratch times `scale` -> dst (the kernels leave dQ unscaled: one multiply per
// element here instead of one per element and key block in the kernel).
cudaError_t launch_store(const float* src, float scale, const TensorView& dst, cudaStream_t stream, bool programmatic) {
  const int64_t count = dst.numel();
  const Rank4 layout = rank4_of(dst);
  const dim3 threads(kStrideThreads);
  if (layout.shape[3] % 8 == 0 && layout.stride[3] == 1) {
    const int64_t count8 = count / 8;
    const dim3 blocks(stride_blocks(count8));
    switch (dst.dtype) {
      case DType::kFloat16:
        return launch_dependent(store_rows8_kernel<__half>, blocks, threads, 0, stream, programmatic, src, scale, count8,
                                layout, static_cast<__half*>(dst.data));
      case DType::kBFloat16:
        return launch_dependent(store_rows8_kernel<__nv_bfloat16>, blocks, threads, 0, stream, programmatic, src, scale,
                                count8, layout, static_cast<__nv_bfloat16*>(dst.data));
      default:
        return launch_dependent(store_rows8_kernel<float>, blocks, threads, 0, stream, programmatic, src, scale, count8,
                                layout, static_cast<float*>(dst.data));
    }
  }
  return launch_dependent(store_kernel, dim3(stride_blocks(count)), threads, 0, stream, programmatic, src, scale, count,
                          layout, dst.data, static_cast<int>(dst.dtype));
}

}  // namespace attn::cuda::detail
