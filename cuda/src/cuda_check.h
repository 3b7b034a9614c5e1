// CUDA runtime errors as exceptions that name what failed.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace attn::cuda {

class CudaError : public std::runtime_error {
 public:
  CudaError(const std::string& what, cudaError_t code)
      : std::runtime_error(what + ": " + cudaGetErrorString(code)), code_(code) {}
  cudaError_t code() const { return code_; }

 private:
  cudaError_t code_;
};

inline void check_cuda(cudaError_t code, const char* what) {
  if (code != cudaSuccess) throw CudaError(what, code);
}

}  // namespace attn::cuda
