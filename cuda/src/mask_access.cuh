// Reads one element of a bias or mask tensor whose dtype is known only at run time (the
// branch is uniform across the block, so it costs a compare, not divergence).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "attn_cuda/tensor.h"

namespace attn::cuda::detail {

__device__ __forceinline__ int element_bytes(int dtype) {
  switch (static_cast<DType>(dtype)) {
    case DType::kFloat16:
    case DType::kBFloat16: return 2;
    case DType::kFloat32: return 4;
    case DType::kUInt8: return 1;
  }
  return 1;
}

__device__ __forceinline__ float load_as_float(const void* base, int dtype, int64_t index) {
  switch (static_cast<DType>(dtype)) {
    case DType::kFloat16: return __half2float(static_cast<const __half*>(base)[index]);
    case DType::kBFloat16:
      return __bfloat162float(static_cast<const __nv_bfloat16*>(base)[index]);
    case DType::kFloat32: return static_cast<const float*>(base)[index];
    case DType::kUInt8: return static_cast<const uint8_t*>(base)[index] != 0 ? 1.0f : 0.0f;
  }
  return 0.0f;
}

}  // namespace attn::cuda::detail
