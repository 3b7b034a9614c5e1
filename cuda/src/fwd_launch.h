// The forward kernels compiled into the library, one per (element type, head dim, output
// type); each is instantiated in its own translation unit (flash_fwd_*.cu) so nvcc builds
// them in parallel.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "fwd_params.h"

namespace attn::cuda::detail {

template <typename T, int kHeadDim, typename OutT>
cudaError_t launch_flash_fwd(const FwdParams& p, cudaStream_t stream);

// The Hopper (sm_90a, wgmma) kernel of the dense case: flash_fwd_sm90.cuh. Compiled only when
// the build targets sm_90 (ATTN_CUDA_SM90A); launch_flash_fwd picks it on compute capability
// 9.0 devices. cudaErrorNotSupported: the tensors cannot be described to the copy engine.
template <typename T, int kHeadDim>
cudaError_t launch_flash_fwd_sm90(const FwdParams& p, cudaStream_t stream);

// Head dims with a compiled kernel.
constexpr int kFwdHeadDims[] = {64, 128};

}  // namespace attn::cuda::detail
