// The fp16 backward kernel for head dim 128 (one translation unit per kernel so that
// nvcc builds them in parallel).
#include "flash_bwd_kernel.cuh"

namespace attn::cuda::detail {
template cudaError_t launch_flash_bwd<__half, 128>(const BwdParams&, cudaStream_t);
}  // namespace attn::cuda::detail
