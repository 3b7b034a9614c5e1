// The random pattern's key blocks (sparse_attention.h): query block qb of head h attends its
// own key block and a few others drawn by a partial Fisher-Yates shuffle from splitmix64,
// seeded by (seed, h, qb). Header-only, so that the CPU core and the CUDA backend draw the
// same lists from the same seed.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace attn::asam {

inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Key blocks per query block: its own and ceil(window_size / block_size) others (all of
// them when there are fewer).
inline int random_blocks_per_query_block(int64_t blocks, int64_t window_size, int64_t block_size) {
  return 1 + static_cast<int>(std::min<int64_t>(blocks - 1, (window_size + block_size - 1) / block_size));
}

// The `count` key blocks of query block qb of `head`, ascending, into out[0 .. count); pool
// is scratch.
inline void random_key_blocks(uint64_t seed, int64_t head, int qb, int blocks, int count,
                              std::vector<int32_t>& pool, int32_t* out) {
  pool.resize(blocks);
  for (int x = 0; x < blocks; ++x) pool[x] = x;
  std::swap(pool[0], pool[qb]);  // the diagonal block first, always kept
  uint64_t state = seed ^ (uint64_t(head) << 32) ^ uint64_t(qb) * 0x632BE59BD9B4E019ull;
  for (int x = 1; x < count; ++x) {  // partial Fisher-Yates over the rest
    const int pick = x + static_cast<int>(splitmix64(state) % uint64_t(blocks - x));
    std::swap(pool[x], pool[pick]);
  }
  std::copy(pool.begin(), pool.begin() + count, out);
  std::sort(out, out + count);
}

}  // namespace attn::asam
