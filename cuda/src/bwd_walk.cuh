// What both backward kernels share about their walk: a thread block owns a block of keys
// and visits every (query head of its kv group, query block) step that can see them, and
// each step stages Q, dO and two per-row statistics in shared memory.
#pragma once
#include <math_constants.h>

#include "bwd_params.h"
#include "smem_tile.cuh"

namespace attn::cuda::detail {

template <int kBlockM>
struct QueryWalk {
  int m_begin;  // under the causal rule, query blocks before this one see none of the keys
  int blocks;   // query blocks per head from m_begin
  int steps;    // group * blocks

  __device__ __forceinline__ QueryWalk(const BwdParams& p, int n0) {
    const int m_tiles = (p.seq_q + kBlockM - 1) / kBlockM;
    m_begin = 0;
    if (p.causal) {
      const int64_t first = int64_t{n0} - p.causal_offset;  // first query that sees key n0
      m_begin = first <= 0 ? 0 : static_cast<int>(first / kBlockM < m_tiles ? first / kBlockM : m_tiles);
    }
    blocks = m_tiles - m_begin;
    steps = p.group * blocks;
  }
  __device__ __forceinline__ int head(const BwdParams& p, int hk, int step) const { return hk * p.group + step / blocks; }
  __device__ __forceinline__ int first_query(int step) const { return (m_begin + step % blocks) * kBlockM; }
};

// The (query head, first query) of successive steps of a QueryWalk, advanced by additions:
// the division and remainder of head() / first_query() at every step, computed by all 256
// threads, were a tenth of the dense kernel's instructions.
template <int kBlockM>
struct StepCursor {
  int h, m0;
  int m_first, m_end;  // first query of a head's first step; end of its last step

  __device__ __forceinline__ StepCursor(const QueryWalk<kBlockM>& walk, const BwdParams& p, int hk)
      : h(hk * p.group), m0(walk.m_begin * kBlockM), m_first(walk.m_begin * kBlockM),
        m_end((walk.m_begin + walk.blocks) * kBlockM) {}
  __device__ __forceinline__ void advance() {
    m0 += kBlockM;
    if (m0 >= m_end) {
      m0 = m_first;
      ++h;
    }
  }
};

// Q and dO rows [m0, m0 + kBlockM) of head h into one stage's tiles (cp.async, uncommitted).
template <typename T, int kHeadDim, int kBlockM, int kThreads>
__device__ __forceinline__ void copy_query_tiles(T* sQ, T* sdO, const BwdParams& p, int b, int h, int m0) {
  copy_tile_async<T, kHeadDim, kBlockM, kThreads>(
      sQ, static_cast<const T*>(p.q) + b * p.q_stride.batch + h * p.q_stride.head, p.q_stride.row, m0, p.seq_q);
  copy_tile_async<T, kHeadDim, kBlockM, kThreads>(
      sdO, static_cast<const T*>(p.dout) + b * p.do_stride.batch + h * p.do_stride.head, p.do_stride.row, m0,
      p.seq_q);
}

// A staged natural-log lse -> log2 units, +inf for a row that saw no key (lse = -inf) so
// that its probabilities come out 0.
__device__ __forceinline__ float lse_log2(float lse) {
  return lse == -CUDART_INF_F ? CUDART_INF_F : lse * 1.4426950408889634f;
}

// Query row i of head h: x = its lse in log2 units (+inf where the row gets no weight: past
// seq_q, or a row that saw no key), y = D = rowsum(dO * O) (0 past seq_q).
__device__ __forceinline__ float2 query_row_statistics(const BwdParams& p, int b, int h, int64_t i) {
  float2 stats = make_float2(CUDART_INF_F, 0.0f);
  if (i < p.seq_q) {
    stats.x = lse_log2(p.lse[b * p.lse_stride.batch + h * p.lse_stride.head + i * p.lse_stride.row]);
    stats.y = p.delta[(int64_t{b} * p.heads_q + h) * p.seq_q + i];
  }
  return stats;
}

// copy_query_tiles, and per row query_row_statistics.
template <typename T, int kHeadDim, int kBlockM, int kThreads>
__device__ __forceinline__ void stage_query_step(T* sQ, T* sdO, float* sLse, float* sD, const BwdParams& p,
                                                 int b, int h, int m0) {
  copy_query_tiles<T, kHeadDim, kBlockM, kThreads>(sQ, sdO, p, b, h, m0);
  // One row per thread (a loop only when rows outnumber threads: as a loop in the dense
  // kernel, the compiler spilled 80 more bytes).
  constexpr int kPasses = (kBlockM + kThreads - 1) / kThreads;
#pragma unroll
  for (int pass = 0; pass < kPasses; ++pass) {
    const int r = threadIdx.x + pass * kThreads;
    if (r >= kBlockM) break;
    const float2 stats = query_row_statistics(p, b, h, m0 + r);
    sLse[r] = stats.x;
    sD[r] = stats.y;
  }
}

// The same, with the two row statistics also copied by cp.async, as they are: no thread
// waits on a global load at the top of a step (the dense kernel's warps 0 and 1 did, for
// a whole memory latency, while the rest then waited for them at the next barrier). Rows
// past seq_q get 0s; the reader converts lse with lse_log2() and gives those rows +inf.
template <typename T, int kHeadDim, int kBlockM, int kThreads>
__device__ __forceinline__ void stage_query_step_async(T* sQ, T* sdO, float* sLse, float* sD, const BwdParams& p,
                                                       int b, int h, int m0) {
  static_assert(2 * kBlockM <= kThreads, "one statistic per thread");
  copy_query_tiles<T, kHeadDim, kBlockM, kThreads>(sQ, sdO, p, b, h, m0);
  if (threadIdx.x < 2 * kBlockM) {
    const int r = threadIdx.x % kBlockM, i = m0 + r;
    const bool valid = i < p.seq_q;
    const int64_t row = valid ? i : 0;
    if (threadIdx.x < kBlockM) {
      cp_async_4(sLse + r, p.lse + b * p.lse_stride.batch + h * p.lse_stride.head + row * p.lse_stride.row, valid);
    } else {
      cp_async_4(sD + r, p.delta + (int64_t{b} * p.heads_q + h) * p.seq_q + row, valid);
    }
  }
}

}  // namespace attn::cuda::detail
