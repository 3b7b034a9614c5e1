// The keys each query row may see under FwdParams' causal rule, sliding window and sequence
// end, the key tiles a block of rows must visit, and whether a tile needs per-key tests:
// shared by the mma.sync (flash_fwd_kernel.cuh) and wgmma (flash_fwd_sm90.cuh) forwards.
#pragma once
#include <cstdint>

#include "fwd_params.h"

namespace attn::cuda::detail {

// Keys first <= j <= last (empty when last < first).
struct KeyRange {
  int64_t first, last;
};
__device__ __forceinline__ KeyRange visible_keys(const FwdParams& p, int64_t row) {
  int64_t last = p.causal ? row + p.causal_offset : int64_t{p.seq_k} - 1;
  if (p.window_right >= 0 && row + p.causal_offset + p.window_right < last) last = row + p.causal_offset + p.window_right;
  if (last > p.seq_k - 1) last = p.seq_k - 1;
  const int64_t first = p.window_left >= 0 ? row + p.causal_offset - p.window_left : 0;
  return {first, last};
}

// Key tiles [begin, end) of block_n keys that some row of the query block m0.. (block_m
// rows) sees: under the causal rule the block's last row sees keys j <= last_row + offset; a
// window bounds the tiles on both sides (the last row's right edge, the first row's left).
struct TileRange {
  int begin, end;
};
__device__ __forceinline__ TileRange visible_key_tiles(const FwdParams& p, int m0, int block_m, int block_n) {
  const int64_t last_row = min(m0 + block_m, p.seq_q) - 1;
  TileRange r{0, (p.seq_k + block_n - 1) / block_n};
  auto clip_end = [&](int64_t visible) {
    const int64_t tiles = visible <= 0 ? 0 : (visible + block_n - 1) / block_n;
    if (tiles < r.end) r.end = static_cast<int>(tiles);
  };
  if (p.causal) clip_end(last_row + p.causal_offset + 1);
  if (p.window_right >= 0) clip_end(last_row + p.causal_offset + p.window_right + 1);
  if (p.window_left >= 0) {
    const int64_t first_key = int64_t{m0} + p.causal_offset - p.window_left;
    r.begin = static_cast<int>(first_key <= 0 ? 0 : first_key / block_n);
  }
  return r;
}

// Whether some row of the query block loses some key of the tile j0.. to the causal
// frontier, a window edge (its last row's first key, its first row's last key) or the
// sequence's end: only such tiles need visible_keys per element (a block-uniform test).
__device__ __forceinline__ bool tile_has_edges(const FwdParams& p, int m0, int block_m, int64_t j0, int block_n) {
  const int64_t last_row = min(m0 + block_m, p.seq_q) - 1;
  return (p.causal && j0 + block_n - 1 > m0 + p.causal_offset) || j0 + block_n > p.seq_k ||
         (p.window_left >= 0 && j0 < last_row + p.causal_offset - p.window_left) ||
         (p.window_right >= 0 && j0 + block_n - 1 > int64_t{m0} + p.causal_offset + p.window_right);
}

}  // namespace attn::cuda::detail
