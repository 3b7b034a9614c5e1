// Stream-ordered scratch memory in GPU memory, freed on its stream when it goes out of scope.
#pragma once
#include <cuda_runtime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "cuda_check.h"

namespace attn::cuda::detail {

// Lets the current device's default memory pool keep up to 1 GiB of freed memory (once per
// device). With the default threshold, 0, the pool hands its memory back to the driver at
// every synchronization, so each call re-maps its scratch (the backward's dQ scratch is
// 128 MiB at 16 heads x 16384 tokens x d 128), which the call then pays for.
inline void retain_pool_memory() {
  static std::atomic<uint64_t> configured{0};  // one bit per device
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || device < 0 || device >= 64) return;
  const uint64_t bit = uint64_t{1} << device;
  if (configured.fetch_or(bit) & bit) return;
  cudaMemPool_t pool;
  if (cudaDeviceGetDefaultMemPool(&pool, device) != cudaSuccess) return;
  uint64_t threshold = 0;
  if (cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &threshold) != cudaSuccess) return;
  uint64_t wanted = uint64_t{1} << 30;
  if (threshold < wanted) cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &wanted);
}

class StreamBuffer {
 public:
  StreamBuffer(size_t bytes, cudaStream_t stream) : stream_(stream) {
    if (bytes == 0) return;
    retain_pool_memory();
    check_cuda(cudaMallocAsync(&ptr_, bytes, stream), "cudaMallocAsync");
  }
  ~StreamBuffer() {
    if (ptr_ != nullptr) cudaFreeAsync(ptr_, stream_);
  }
  StreamBuffer(const StreamBuffer&) = delete;
  StreamBuffer& operator=(const StreamBuffer&) = delete;
  void* get() const { return ptr_; }
  template <typename T>
  T* as() const { return static_cast<T*>(ptr_); }

 private:
  void* ptr_ = nullptr;
  cudaStream_t stream_;
};

}  // namespace attn::cuda::detail
