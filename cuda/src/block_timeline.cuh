// Per-block timestamps of the Hopper kernels for the block-timeline diagnostic
// (cuda/bench/block_timeline.sh): where a block's time goes besides its loop (the first
// copies' wait, the last products, the epilogue, the switch to the next block) and how
// evenly the multiprocessors finish. Only a build with -DATTN_BLOCK_TIMELINE records them;
// otherwise the marks are empty and the kernels compile as without them.
#pragma once

#ifdef ATTN_BLOCK_TIMELINE
#include "block_order.cuh"

namespace attn::cuda::detail {

// 16 words per item (a block's work: the kernels pass its linear index, x fastest): [0, 6)
// the global timer (ns) at marks 0-5, [6, 12) the multiprocessor's clock at the same marks,
// 14 the multiprocessor, 15 the item's steps (key tiles or query blocks). Null: nothing is
// recorded.
__device__ unsigned long long* block_timeline = nullptr;

__device__ __forceinline__ void timeline_put(int item, int slot, unsigned long long value) {
  if (block_timeline == nullptr) return;
  block_timeline[static_cast<long long>(item) * 16 + slot] = value;
}

__device__ __forceinline__ void timeline_mark(int item, int slot) {
  unsigned long long ns;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(ns));
  timeline_put(item, slot, ns);
  timeline_put(item, slot + 6, clock64());
}

__device__ __forceinline__ void timeline_begin(int item, int steps) {
  unsigned sm;
  asm volatile("mov.u32 %0, %%smid;" : "=r"(sm));
  timeline_mark(item, 0);
  timeline_put(item, 14, sm);
  timeline_put(item, 15, steps);
}

}  // namespace attn::cuda::detail

// Thread 0 of the block records (the kernels place each mark where thread 0 passes).
#define ATTN_TIMELINE_BEGIN(item, steps) \
  ((threadIdx.x == 0) ? attn::cuda::detail::timeline_begin(item, steps) : void())
#define ATTN_TIMELINE_MARK(item, slot) ((threadIdx.x == 0) ? attn::cuda::detail::timeline_mark(item, slot) : void())
#define ATTN_TIMELINE_STEPS(item, steps) ((threadIdx.x == 0) ? attn::cuda::detail::timeline_put(item, 15, steps) : void())
#else
#define ATTN_TIMELINE_BEGIN(item, steps) ((void)0)
#define ATTN_TIMELINE_MARK(item, slot) ((void)0)
#define ATTN_TIMELINE_STEPS(item, steps) ((void)0)
#endif
