// The Hopper forward kernels (wgmma) for float16, compiled for sm_90a alone (cuda/CMakeLists.txt); one
// translation unit per element type so nvcc builds them in parallel (each holds the dense
// kernel and the three dynamic-mask rule kinds, for head dims 64 and 128).
#include "flash_fwd_sm90.cuh"
#include "fwd_launch.h"

namespace attn::cuda::detail {
template cudaError_t launch_flash_fwd_sm90<__half, 64>(const FwdParams&, cudaStream_t);
template cudaError_t launch_flash_fwd_sm90<__half, 128>(const FwdParams&, cudaStream_t);
}  // namespace attn::cuda::detail
