// Thread blocks of 256 covering one thread per item, for the kernels without a grid-stride
// loop (every item needs its own thread: the grid is not capped below the hardware's
// 2^31 - 1 blocks).
// Also the device's multiprocessor count, which grids sized by waves need.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

namespace attn::cuda::detail {

constexpr int kItemBlock = 256;

inline unsigned blocks_for(int64_t threads) {
  return static_cast<unsigned>(std::min<int64_t>((threads + kItemBlock - 1) / kItemBlock, (int64_t{1} << 31) - 1));
}

// The current device's multiprocessors (132, an H100's, if the runtime cannot say).
inline int multiprocessor_count() {
  int device = 0, sms = 132;
  if (cudaGetDevice(&device) == cudaSuccess) cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  return sms;
}

}  // namespace attn::cuda::detail
