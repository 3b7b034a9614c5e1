// float16 forward kernels.
#include "flash_fwd_kernel.cuh"
#include "fwd_launch.h"

namespace attn::cuda::detail {
template cudaError_t launch_flash_fwd<__half, 64, __half>(const FwdParams&, cudaStream_t);
template cudaError_t launch_flash_fwd<__half, 128, __half>(const FwdParams&, cudaStream_t);
}  // namespace attn::cuda::detail
