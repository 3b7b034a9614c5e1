// Conversions between float32 and the tensors' dtypes (convert.cu).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>

#include "attn_cuda/tensor.h"

namespace attn::cuda::detail {

// Writes src (rank 4, float32, any strides) into dst as contiguous bfloat16.
cudaError_t launch_to_bf16(const TensorView& src, void* dst, cudaStream_t stream);

// A contiguous float32 scratch in dst's logical order, times `scale` -> dst (its dtype,
// float16 / bfloat16 / float32, and strides; rank 4). programmatic (compute capability 9.0
// and up only): launched as a programmatic dependent of the kernel before it, whose blocks'
// end it overlaps (dependent_launch.cuh).
cudaError_t launch_store(const float* src, float scale, const TensorView& dst, cudaStream_t stream,
                         bool programmatic = false);

}  // namespace attn::cuda::detail
