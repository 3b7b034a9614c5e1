// bfloat16 forward kernels, and the ones behind float32 inputs (bf16 operands, float out).
#include "flash_fwd_kernel.cuh"
#include "fwd_launch.h"

namespace attn::cuda::detail {
template cudaError_t launch_flash_fwd<__nv_bfloat16, 64, __nv_bfloat16>(const FwdParams&, cudaStream_t);
template cudaError_t launch_flash_fwd<__nv_bfloat16, 128, __nv_bfloat16>(const FwdParams&, cudaStream_t);
template cudaError_t launch_flash_fwd<__nv_bfloat16, 64, float>(const FwdParams&, cudaStream_t);
template cudaError_t launch_flash_fwd<__nv_bfloat16, 128, float>(const FwdParams&, cudaStream_t);
}  // namespace attn::cuda::detail
