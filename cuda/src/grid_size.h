// Thread blocks of 256 covering one thread per item, for the kernels without a grid-stride
// loop (every item needs its own thread: the grid is not capped below the hardware's
// 2^31 - 1 blocks).
#pragma once
#include <algorithm>
#include <cstdint>

namespace attn::cuda::detail {

constexpr int kItemBlock = 256;

inline unsigned blocks_for(int64_t threads) {
  return static_cast<unsigned>(std::min<int64_t>((threads + kItemBlock - 1) / kItemBlock, (int64_t{1} << 31) - 1));
}

}  // namespace attn::cuda::detail
