// The Hopper backward kernels (wgmma), compiled for sm_90a alone (cuda/CMakeLists.txt).
#include "bwd_params.h"
#include "flash_bwd_sm90.cuh"

namespace attn::cuda::detail {
template cudaError_t launch_flash_bwd_sm90<__nv_bfloat16, 64>(const BwdParams&, cudaStream_t);
template cudaError_t launch_flash_bwd_sm90<__nv_bfloat16, 128>(const BwdParams&, cudaStream_t);
template cudaError_t launch_flash_bwd_sm90<__half, 64>(const BwdParams&, cudaStream_t);
template cudaError_t launch_flash_bwd_sm90<__half, 128>(const BwdParams&, cudaStream_t);
}  // namespace attn::cuda::detail
