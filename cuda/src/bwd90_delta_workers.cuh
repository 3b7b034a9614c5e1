// D = rowsum(dO * O) computed by a few of the Hopper backward kernel's own blocks (the last
// ones) before they take items, unit by unit, while the other blocks walk; the kernel's
// producers stage a row's D once it is written (flash_bwd_sm90.cuh). As a pass before the
// kernel, D had cost 4-7% of a call at n = 1024, and the kernel's blocks started only once
// all of it was done.
// - D is filled with a NaN no arithmetic produces (kDeltaPending) before the kernel, and a
//   row is ready once its value differs: each row is one 4-byte store, so no fence or count
//   stands between a worker's store and a producer's load. (A count per unit, raised behind a
//   fence, held a worker to about 18 GB/s: one fence's round trip per 32 KB unit.)
// - A worker streams O and dO through a ring of shared-memory stages filled by the tensor
//   copy engine, so that its multiprocessor keeps about 200 KB in flight.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "bwd_delta.cuh"
#include "bwd_params.h"
#include "dependent_launch.cuh"
#include "mma_sm80.cuh"
#include "tma_sm90.cuh"

namespace attn::cuda::detail {

// A unit is kM rows of one (batch, query head) pair: pair b * heads_q + h, query block m.
// Units go in the order the walks first need them: pairs in blocks of pair_block (about
// those one wave of items covers, block_order.cuh), query block-major within a block
// (a wave's walks all start at their heads' first query blocks).
struct DeltaUnit {
  int pair, m;
};
__device__ __forceinline__ DeltaUnit delta_unit(int u, int pair_block, int pairs, int m_tiles) {
  const int first = u / (pair_block * m_tiles) * pair_block;
  const int size = pairs - first < pair_block ? pairs - first : pair_block;
  const int within = u - first * m_tiles;
  return {first + within % size, within / size};
}

// D's value while not yet written: a quiet NaN no sum here can produce (the GPU's arithmetic
// returns the canonical NaN 0x7fffffff, and a 16-bit NaN widened keeps its low 13 bits 0).
constexpr uint32_t kDeltaPending = 0x7fc0dead;

// The D of kRows rows (delta[i * stride], i < kRows, of which the first `valid`), once
// written by the workers; each lane of the calling warp its own rows. All loads are issued
// before any is tested (a test after each load had serialized their round trips: the
// producer then paced the kernel: the call 0.67-0.93x).
template <int kRows>
__device__ __forceinline__ void wait_for_delta(float (&out)[kRows], const float* delta, int stride, int valid) {
  uint32_t v[kRows];
  auto load = [&](int k) {
    asm volatile("ld.relaxed.gpu.global.b32 %0, [%1];\n" : "=r"(v[k]) : "l"(delta + int64_t{k} * stride));
  };
#pragma unroll
  for (int k = 0; k < kRows; ++k) {
    v[k] = 0;
    if (k < valid) load(k);
  }
  for (;;) {
    bool pending = false;
#pragma unroll
    for (int k = 0; k < kRows; ++k) pending |= v[k] == kDeltaPending;
    if (!pending) break;
    __nanosleep(64);
#pragma unroll
    for (int k = 0; k < kRows; ++k)
      if (v[k] == kDeltaPending) load(k);
  }
#pragma unroll
  for (int k = 0; k < kRows; ++k) out[k] = __uint_as_float(v[k]);
}

// Worker `worker` of `workers` takes units worker, worker + workers, ... (all workers keep
// pace, so units complete about in order). O and dO tiles (kM rows, 64-column panels in the
// 128-byte swizzle, as the kernel's Q and dO) land in kStages stages of the ring at `ring`,
// issued by thread kComputeThreads on full / empty barriers at `barriers` (2 x kStages x 8
// bytes, invalidated before returning); the first kComputeThreads threads sum rows, a row's
// 16-byte chunks in adjacent lanes, each warp at its own pace; the block's other threads
// wait at the end (a __syncthreads). (Issued by one thread between two __syncthreads per
// unit, a worker managed about 37 GB/s, the ring waiting for every unit's sums; this way
// 50-55 GB/s.)
template <typename T, int kHeadDim, int kM, int kComputeThreads, int kStages>
__device__ __forceinline__ void delta_worker(const CUtensorMap* o_map, const CUtensorMap* do_map, const BwdParams& p,
                                             int worker, int workers, int pair_block, uint32_t ring, uint32_t barriers) {
  constexpr int kPanel = kM * 128, kTile = (kHeadDim / 64) * kPanel, kStage = 2 * kTile;
  constexpr int kChunks = kHeadDim / 8, kUnitChunks = kM * kChunks, kWarps = kComputeThreads / 32;
  static_assert(kUnitChunks % kComputeThreads == 0, "whole rows per warp");
  const int pairs = p.batch * p.heads_q, m_tiles = (p.seq_q + kM - 1) / kM, units = pairs * m_tiles;
  const int mine = units > worker ? (units - worker + workers - 1) / workers : 0;
  const uint32_t full = barriers, empty = barriers + 8 * kStages;
  if (threadIdx.x == 0) {
    for (int s = 0; s < kStages; ++s) {
      mbarrier_init(full + 8 * s, 1);
      mbarrier_init(empty + 8 * s, kWarps);
    }
    mbarrier_init_fence();
  }
  __syncthreads();
  if (threadIdx.x == kComputeThreads) {  // the issuing thread
#pragma unroll 1
    for (int r = 0; r < mine; ++r) {
      const int s = r % kStages;
      if (r >= kStages) mbarrier_wait(empty + 8 * s, (r / kStages - 1) & 1);
      const DeltaUnit unit = delta_unit(worker + r * workers, pair_block, pairs, m_tiles);
      const int b = unit.pair / p.heads_q, h = unit.pair % p.heads_q;
      const uint32_t stage = ring + s * kStage;
      mbarrier_arrive_expect_tx(full + 8 * s, kStage);
#pragma unroll
      for (int pn = 0; pn < kHeadDim / 64; ++pn) {
        tma_load_4d(stage + pn * kPanel, o_map, full + 8 * s, pn * 64, unit.m * kM, h, b);
        tma_load_4d(stage + kTile + pn * kPanel, do_map, full + 8 * s, pn * 64, unit.m * kM, h, b);
      }
    }
  } else if (threadIdx.x < kComputeThreads) {
#pragma unroll 1
    for (int r = 0; r < mine; ++r) {
      const int s = r % kStages;
      const uint32_t o_tile = ring + s * kStage, do_tile = o_tile + kTile;
      const DeltaUnit unit = delta_unit(worker + r * workers, pair_block, pairs, m_tiles);
      float* const out = p.delta + int64_t{unit.pair} * p.seq_q + int64_t{unit.m} * kM;
      const int rows = p.seq_q - unit.m * kM;  // valid rows of the unit (if under kM)
      mbarrier_wait(full + 8 * s, (r / kStages) & 1);
#pragma unroll
      for (int index0 = 0; index0 < kUnitChunks; index0 += kComputeThreads) {
        const int index = index0 + static_cast<int>(threadIdx.x);
        const int row = index / kChunks, part = index % kChunks;
        const uint32_t offset = (part / 8) * kPanel + row * 128 + (((part % 8) ^ (row & 7)) << 4);
        const float sum =
            sum_over_lanes<kChunks>(chunk_dot<T>(ld_shared_v4(o_tile + offset), ld_shared_v4(do_tile + offset)));
        if (part == 0 && row < rows) {  // (the producers' loads race with it: a relaxed store)
          asm volatile("st.relaxed.gpu.global.f32 [%0], %1;\n" ::"l"(out + row), "f"(sum) : "memory");
        }
      }
      __syncwarp();
      if ((threadIdx.x & 31) == 0) mbarrier_arrive(empty + 8 * s);  // this warp's reads of the stage done
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int s = 0; s < 2 * kStages; ++s) mbarrier_inval(barriers + 8 * s);
  }
  __syncthreads();
}

// Before the Hopper kernel whose blocks compute D: its counters zeroed and D's rows marked
// pending, letting that kernel's blocks be placed meanwhile (the kernel waits for this one
// before it counts or reads D). (D of the units the first wave of walks needs at once,
// computed here as well, measured no faster: 0.98-1.01x at n = 1024-2048.)
static __global__ void prepare_delta_kernel(int* counters, int count, uint32_t* delta, int64_t rows) {
  allow_dependent_launch();
  const int64_t thread = blockIdx.x * int64_t{blockDim.x} + threadIdx.x, threads = int64_t{gridDim.x} * blockDim.x;
  if (thread < count) counters[thread] = 0;
  for (int64_t i = 4 * thread; i < rows; i += 4 * threads) {
    if (i + 4 <= rows) {
      *reinterpret_cast<uint4*>(delta + i) = make_uint4(kDeltaPending, kDeltaPending, kDeltaPending, kDeltaPending);
    } else {
      for (int64_t j = i; j < rows; ++j) delta[j] = kDeltaPending;
    }
  }
}

inline cudaError_t launch_prepare_delta(const BwdParams& p, int counters, cudaStream_t stream) {
  const int64_t rows = int64_t{p.batch} * p.heads_q * p.seq_q;
  const int64_t blocks = std::max<int64_t>((rows / 4 + 255) / 256, (counters + 255) / 256);
  prepare_delta_kernel<<<static_cast<unsigned>(std::min<int64_t>(blocks, 1024)), 256, 0, stream>>>(
      p.counters, counters, reinterpret_cast<uint32_t*>(p.delta), rows);
  return cudaGetLastError();
}

}  // namespace attn::cuda::detail
