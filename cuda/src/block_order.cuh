// Which (tile, head, batch) item each thread block of the Hopper kernels takes. The hardware
// starts blocks in index order (x fastest), one per multiprocessor here, each as one ends.
// Under the causal rule items differ in length up to tiles-fold, and a long item started
// late keeps its multiprocessor busy after the rest have run dry. Items therefore go in
// groups of a few (batch, head) pairs, each group's items longest first across its pairs:
// the blocks started last are short ones, as in a greedy longest-first schedule, while the
// blocks in flight at once still share a few heads' K and V in L2. (Longest first across
// all pairs would put every head's K and V in flight at once: from DRAM at n >= 4096.)
#pragma once
#include <cuda_runtime.h>

#include "grid_size.h"

namespace attn::cuda::detail {

struct BlockItem {
  int tile;  // 0 .. tiles - 1
  int head;  // 0 .. heads - 1
  int batch;
};

// The items of a grid of (tiles, heads, batch) blocks whose (batch, head)
// pairs go in groups of about group_pairs, sized evenly (a short last group would start its
// longest items last); rank 0 of a group is tile tiles - 1 when longest_last_tile (the
// forward's query blocks under the causal rule), else tile 0 (the backward's key blocks).
// group_pairs = 1 is plain index order.
__device__ __forceinline__ int block_linear() { return blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z); }

// Item `linear` of (tiles, heads, pairs = heads x batch) items, in the order above.
__device__ __forceinline__ BlockItem grouped_longest_first(int linear, int group_pairs, bool longest_last_tile,
                                                           int tiles, int heads, int pairs) {
  const int groups = (pairs + group_pairs - 1) / group_pairs;
  const int small = pairs / groups, large_groups = pairs % groups;  // sizes small + 1, then small
  const int large_blocks = large_groups * (small + 1) * tiles;
  int size, first_pair;
  if (linear < large_blocks) {
    size = small + 1;
    first_pair = linear / (size * tiles) * size;
  } else {
    size = small;
    first_pair = large_groups * (small + 1) + (linear - large_blocks) / (size * tiles) * size;
  }
  const int within = linear - first_pair * tiles;
  const int rank = within / size, pair = first_pair + within % size;
  return {longest_last_tile ? tiles - 1 - rank : rank, pair % heads, pair / heads};
}

// Block `linear`'s item of this grid (block_linear(): this block's).
__device__ __forceinline__ BlockItem grouped_longest_first(int linear, int group_pairs, bool longest_last_tile) {
  return grouped_longest_first(linear, group_pairs, longest_last_tile, gridDim.x, gridDim.y, gridDim.y * gridDim.z);
}

// The block that starts about when this one ends, one wave later (one block per
// multiprocessor; %nsmid counts the multiprocessors' identifiers, about their number), or -1.
__device__ __forceinline__ int block_a_wave_later() {
  unsigned sms;
  asm("mov.u32 %0, %%nsmid;" : "=r"(sms));
  const int later = block_linear() + static_cast<int>(sms);
  return later < static_cast<int>(gridDim.x * gridDim.y * gridDim.z) ? later : -1;
}

// (batch, head) pairs per group: under the causal rule about one wave of the device's
// multiprocessors (H100, d = 128, causal: groups of 4 pairs at n = 4096, 2 at 8192 measured
// +4-5% over plain order; 8 at 4096 or 9 unevenly grouped, less or slower); otherwise items
// are equally long and plain order (one pair) keeps the fewest heads' K and V in L2.
inline int order_group_pairs(int tiles, bool causal) {
  if (!causal) return 1;
  const int sms = multiprocessor_count();
  return sms / tiles > 1 ? sms / tiles : 1;
}

}  // namespace attn::cuda::detail
