// Rank-4 tensors addressed by their strides inside kernels, and the grid of the
// grid-stride loops that walk them.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "attn_cuda/tensor.h"

namespace attn::cuda::detail {

// A TensorView's shape and strides, passed to a kernel by value.
struct Rank4 {
  int64_t shape[4];
  int64_t stride[4];
};

inline Rank4 rank4_of(const TensorView& t) {
  Rank4 r{};
  for (int d = 0; d < 4; ++d) {
    r.shape[d] = t.shape[d];
    r.stride[d] = t.stride[d];
  }
  return r;
}

// Offset (in elements) of element n of the tensor in row-major order.
__device__ __forceinline__ int64_t strided_offset(const Rank4& l, int64_t n) {
  int64_t offset = 0;
  for (int d = 3; d >= 0; --d) {
    offset += (n % l.shape[d]) * l.stride[d];
    n /= l.shape[d];
  }
  return offset;
}

// Blocks of 256 threads for a grid-stride loop over `count` items.
constexpr int kStrideThreads = 256;
inline int stride_blocks(int64_t count) {
  return static_cast<int>(std::min<int64_t>((count + kStrideThreads - 1) / kStrideThreads, 65535));
}

}  // namespace attn::cuda::detail
