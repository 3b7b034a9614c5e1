// float32 -> bfloat16 conversion for the float32 path of the forward.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>

#include "attn_cuda/tensor.h"

namespace attn::cuda::detail {

// Writes src (rank 4, float32, any strides) into dst as contiguous bfloat16.
cudaError_t launch_to_bf16(const TensorView& src, void* dst, cudaStream_t stream);

}  // namespace attn::cuda::detail
