// Argument checks shared by the forward and backward entry points (tensor_checks.h).
#include "tensor_checks.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "runtime/errors.h"

namespace attn::cuda::detail {

std::string shape_string(const TensorView& t) {
  std::string s = "[";
  for (int i = 0; i < std::min(t.rank, kMaxRank); ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
  return s + "]";
}

void check_device_memory(const char* name, const void* data) {
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, data) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error of the query
    throw_type(name, "is not a pointer the CUDA runtime knows (must be GPU memory)");
  }
  if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged) {
    throw_type(name, "must be in GPU memory (got host memory)");
  }
}

void check_rank(const char* name, const TensorView& t, int rank) {
  if (t.rank != rank) {
    throw_range(name, "must have " + std::to_string(rank) + " dimensions, got " +
                          std::to_string(t.rank) + " " + shape_string(t));
  }
}

}  // namespace attn::cuda::detail
