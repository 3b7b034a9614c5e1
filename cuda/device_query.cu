// Placeholder of the CUDA backend: reports the device the kernels will run on.
#include <cuda_runtime.h>

#include <string>

namespace attn::cuda {

// Name and compute capability of device 0, or the CUDA error string.
std::string describe_device() {
  cudaDeviceProp prop{};
  const cudaError_t status = cudaGetDeviceProperties(&prop, 0);
  if (status != cudaSuccess) return std::string("no CUDA device: ") + cudaGetErrorString(status);
  return std::string(prop.name) + " (sm_" + std::to_string(prop.major) + std::to_string(prop.minor) + ")";
}

}  // namespace attn::cuda
