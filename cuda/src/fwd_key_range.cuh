// The keys each query row may see under FwdParams' causal rule, sliding window and sequence
// end, the key tiles a block of rows must visit, and whether a tile needs per-key tests:
// shared by the mma.sync (flash_fwd_kernel.cuh) and wgmma (flash_fwd_sm90.cuh) forwards.
#pragma once
#include <math_constants.h>

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

// The pre-pass's tile map (FwdParams::tile_active) row of query block m_block of (b, hk):
// one flag per key tile of kBlockN.
__device__ __forceinline__ const uint8_t* tile_map_row(const FwdParams& p, int b, int hk, int m_block) {
  return p.tile_active + ((int64_t{b} * p.heads_kv + hk) * p.q_tiles + m_block) * p.k_tiles;
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

// Segment ids (FwdParams::q_segment / k_segment, non-decreasing): one (batch, head)'s rows.
struct Segments {
  const int32_t* q = nullptr;  // nullptr: no segments
  const int32_t* k = nullptr;
  __device__ __forceinline__ Segments(const FwdParams& p, int b, int h, int hk) {
    if (p.q_segment == nullptr) return;
    q = p.q_segment + b * p.q_segment_batch_stride + int64_t{h} * p.seq_q;
    k = p.k_segment + b * p.k_segment_batch_stride + int64_t{hk} * p.seq_k;
  }
  // The first key whose segment is >= value (binary search; seq_k when none).
  __device__ __forceinline__ int64_t first_key_from(const FwdParams& p, int32_t value) const {
    int64_t lo = 0, hi = p.seq_k;
    while (lo < hi) {
      const int64_t mid = (lo + hi) / 2;
      if (k[mid] < value) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
  // r narrowed to the key tiles holding the segments of rows m0 .. m0 + block_m - 1.
  __device__ __forceinline__ TileRange clip(const FwdParams& p, TileRange r, int m0, int block_m, int block_n) const {
    const int64_t last_row = min(m0 + block_m, p.seq_q) - 1;
    const int64_t first_key = first_key_from(p, q[m0]), end_key = first_key_from(p, q[last_row] + 1);
    const int begin = static_cast<int>(first_key / block_n);
    const int end = first_key >= end_key ? begin : static_cast<int>((end_key + block_n - 1) / block_n);
    return {max(r.begin, begin), min(r.end, end)};
  }
  // Row i's segment (clamped: rows past the end are never stored).
  __device__ __forceinline__ int32_t row(const FwdParams& p, int64_t i) const { return q[min(i, int64_t{p.seq_q} - 1)]; }
  // Whether the tile's rows or keys span more than one segment (then each key is tested).
  __device__ __forceinline__ bool mixed(const FwdParams& p, int m0, int block_m, int64_t j0, int block_n) const {
    const int32_t first = q[m0];
    const int64_t last_key = min(j0 + block_n, int64_t{p.seq_k}) - 1;
    return q[min(m0 + block_m, p.seq_q) - 1] != first || k[j0] != first || k[last_key] != first;
  }
  // Scores of keys in another segment than their row's -> -inf. s: an mma.sync tile, this
  // thread's rows row_first + 16 mt + 8 half and keys j0 + nt * 8 + 2 t + e (each key's and
  // row's segment read once per tile; keys past the end are already dropped).
  template <int kRowTiles, int kTilesN>
  __device__ __forceinline__ void drop_other_keys(float (&s)[kRowTiles][kTilesN][4], int row_first, const FwdParams& p,
                                                  int64_t j0, int t) const {
    int32_t key_segment[kTilesN][2];
#pragma unroll
    for (int nt = 0; nt < kTilesN; ++nt)
#pragma unroll
      for (int e = 0; e < 2; ++e) key_segment[nt][e] = k[min(j0 + nt * 8 + 2 * t + e, int64_t{p.seq_k} - 1)];
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int32_t row_segment = row(p, row_first + mt * 16 + half * 8);
#pragma unroll
        for (int nt = 0; nt < kTilesN; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e)
            if (key_segment[nt][e] != row_segment) s[mt][nt][half * 2 + e] = -CUDART_INF_F;
      }
  }
};

}  // namespace attn::cuda::detail
