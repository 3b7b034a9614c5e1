// Whether to run the Hopper (sm_90a: wgmma, TMA) kernels: built for sm_90 (ATTN_CUDA_SM90A)
// and running on a compute capability 9.0 device (arch-specific `a` features are not forward
// compatible), unless ATTN_CUDA_NO_WGMMA is set (the mma.sync kernels everywhere, for
// comparisons).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <cstdlib>

#include "attn_cuda/tensor.h"
#include "fwd_params.h"

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

// Whether the Hopper forward takes p (16-bit q / k / v and out assumed; it may still refuse
// tensors the copy engine cannot describe): softcap, dropout, segment ids and softmax out are
// the mma.sync general kernel's alone, and narrow sliding windows stay on mma.sync: a block
// then visits two or three key tiles, and the wgmma kernel's per-block costs (barriers, the
// producer, the pipeline's fill) outweigh its speed (H100, window 128: 0.171 -> 0.220 ms at
// d = 64, 0.231 -> 0.277 ms at d = 128; only window 128 was measured, 1024 keys is a guess at
// the crossover). A bias must be of the element type `element` (a DType code) with 16-byte
// aligned rows of contiguous keys (the kernel copies 16-byte chunks); a mask or keep window
// is read through the pre-pass's kept-key bits (FwdParams::kept_bits), any layout.
inline bool sm90_forward_applies(const FwdParams& p, int element) {
  if (!use_sm90_kernels()) return false;
  if (p.q_segment != nullptr || p.softcap > 0.0f || p.dropout || p.softmax != nullptr) return false;
  constexpr int64_t kUnbounded = int64_t{1} << 40;
  const int64_t left_span = p.window_left < 0 ? kUnbounded : p.window_left;
  const int64_t right_span = p.causal ? 0 : p.window_right < 0 ? kUnbounded : p.window_right;  // past the diagonal
  if (left_span + right_span + 1 < 1024) return false;
  return p.bias == nullptr || (p.bias_dtype == element && stageable(p.bias, 2, p.bias_stride, p.seq_k));
}

}  // namespace attn::cuda::detail
