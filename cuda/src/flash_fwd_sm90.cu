// The Hopper forward kernels (wgmma), compiled for sm_90a alone (cuda/CMakeLists.txt).
#include "flash_fwd_sm90.cuh"
#include "fwd_launch.h"

namespace attn::cuda::detail {
template cudaError_t launch_flash_fwd_sm90<__nv_bfloat16, 64>(const FwdParams&, cudaStream_t);
template cudaError_t launch_flash_fwd_sm90<__nv_bfloat16, 128>(const FwdParams&, cudaStream_t);
template cudaError_t launch_flash_fwd_sm90<__half, 64>(const FwdParams&, cudaStream_t);
template cudaError_t launch_flash_fwd_sm90<__half, 128>(const FwdParams&, cudaStream_t);
}  // namespace attn::cuda::detail
