// Programmatic dependent launch (Hopper): a kernel launched with launch_dependent(...,
// true, ...) may have its blocks placed on the multiprocessors while the kernel before it in
// the stream still runs (once every block of that one has called allow_dependent_launch, or
// ended), and waits in wait_for_prerequisite_grids until that kernel has finished and its
// writes are visible. The backward's three launches (D pass, kernel, dQ store) use it so that
// each one's start overlaps the previous one's last blocks instead of following its end.
// Before compute capability 9.0 both device calls compile to nothing, and the host passes
// programmatic = false there.
#pragma once
#include <cuda_runtime.h>

#include <utility>

namespace attn::cuda::detail {

// Lets the next kernel (if launched as a programmatic dependent) be placed; one call per block
// counts (later ones do nothing). It says nothing about this kernel's writes.
__device__ __forceinline__ void allow_dependent_launch() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
#endif
}

// Waits (this thread) until the kernel before this one has finished and its writes are
// visible to this grid; returns at once if this kernel was not launched as a dependent.
__device__ __forceinline__ void wait_for_prerequisite_grids() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}

// kernel<<<grid, block, smem, stream>>>(args...), as a programmatic dependent of the kernel
// before it when `programmatic`.
template <typename... Params, typename... Args>
cudaError_t launch_dependent(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                             bool programmatic, Args&&... args) {
  cudaLaunchAttribute attribute = {};
  attribute.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attribute.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = &attribute;
  config.numAttrs = programmatic ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

}  // namespace attn::cuda::detail
