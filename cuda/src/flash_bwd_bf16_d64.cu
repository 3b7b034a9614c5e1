// The bf16 backward kernel for head dim 64 (one translation unit per kernel so that
// nvcc builds them in parallel).
#include "flash_bwd_kernel.cuh"

namespace attn::cuda::detail {
template cudaError_t launch_flash_bwd<__nv_bfloat16, 64>(const BwdParams&, cudaStream_t);
}  // namespace attn::cuda::detail
