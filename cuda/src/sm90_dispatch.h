// Whether to run the Hopper (sm_90a: wgmma, TMA) kernels: built for sm_90 (ATTN_CUDA_SM90A)
// and running on a compute capability 9.0 device (arch-specific `a` features are not forward
// compatible), unless ATTN_CUDA_NO_WGMMA is set (the mma.sync kernels everywhere, for
// comparisons).
#pragma once
#include <cuda_runtime.h>

#include <cstdlib>

namespace attn::cuda::detail {

inline bool use_sm90_kernels() {
#if defined(ATTN_CUDA_SM90A)
  // Read at each call, so a benchmark can compare both kernels in one process.
  const bool disabled = std::getenv("ATTN_CUDA_NO_WGMMA") != nullptr;
  int device = 0, major = 0, minor = 0;
  if (disabled || cudaGetDevice(&device) != cudaSuccess) return false;
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device) != cudaSuccess) {
    return false;
  }
  return major == 9 && minor == 0;
#else
  return false;
#endif
}

}  // namespace attn::cuda::detail
