// The dense backward on Hopper (sm_90a): the five products by warpgroup matrix products
// (wgmma) over operands the tensor copy engine (TMA) stages, FlashAttention-3's layout. An
// item is a block of 128 keys, two consumer warpgroups 64 keys each, walking every (query
// head of the kv group, block of kM queries) step the causal rule leaves (bwd_walk.cuh), as
// the mma.sync dense kernel (flash_bwd_dense_kernel.cuh); kM = 64 at head dim 128, 128 at 64.
// The kernel is persistent: one thread block per multiprocessor takes items one after
// another (block_order.cuh's order, through a counter in global memory), so an item's K and
// V load while the one before writes dK and dV, and no block starts or ends in between
// (H100, n = 1024: the kernel 3-10% faster than a block per item; n = 4096-8192 up to 3.4%).
// Per step and warpgroup:
//   S^T = K Q^T, dP^T = V dO^T      SS, both K-major (64 keys x kM queries, k over d)
//   P^T = exp2(S^T scale log2(e) - lse), dS^T = P^T (dP^T - D)   in registers
//   dV += P^T dO, dK += dS^T Q      RS: P^T / dS^T are the A operand straight from their
//                                   accumulators; dO / Q read transposed (MN-major)
//   dQ = dS K                       SS, both transposed: dS^T staged in shared memory by
//                                   both warpgroups ([128 keys][kM queries], swizzled); each
//                                   warpgroup computes half of dQ (bwd90_queries)
// dK and dV stay in registers for the whole walk (GQA sums deterministic); each step's dQ
// tile goes through shared memory (two buffers, so a step never waits for the reductions of
// the one before; 32-float panels in the 128-byte swizzle) to the float32 scratch by the TMA
// unit's tensor reductions (cp.reduce.async.bulk.tensor): each warpgroup adds its half with
// two of them, issued by one thread, so the warpgroups meet only where both halves of dS^T
// are needed. (At head dim 128, one bulk reduction per dQ row, 64 per step issued by 64
// threads, measured about 0.95x as fast, and a 256-byte half row per warpgroup and row 0.8x.) The
// products are issued dV, (barrier), dQ, dK, so the tensor cores have work while the
// warpgroups meet and while dQ leaves (dV and dK together before the barrier: 0.95x). A
// producer warp issues the copies: per item K and V, then per step Q and dO (two stages,
// full / empty mbarriers, counted across items) with the rows' lse (log2 units) and D. D
// comes from the kernel's last few blocks, which compute it unit by unit before they take
// items (bwd90_delta_workers.cuh); the producer stages a row's D once it is written (as a
// pass before the kernel, D had cost 4-7% of a call at n = 1024, and the kernel's blocks
// waited for all of it). The float32 scratch is zeroed by
// the kernel itself, ahead of the walks: one thread per block copies zeros into it piece by
// piece and counts each query block's pieces in global memory, and the producer stages a
// step only once its query block is zeroed (the D pass writing the zeros had been 7-8% of a
// call at n = 1024; the zeros now go out while the tensor cores work).
// 16-bit types, no bias / mask / softcap / dropout (dense_bwd_applies).
#pragma once
#include <math_constants.h>

#include <algorithm>
#include <cstdlib>
#include <type_traits>

#include "block_order.cuh"
#include "block_timeline.cuh"
#include "bwd90_delta_workers.cuh"
#include "bwd_delta.cuh"
#include "bwd_params.h"
#include "bwd_walk.cuh"
#include "dependent_launch.cuh"
#include "mma_sm80.cuh"
#include "tma_sm90.cuh"
#include "wgmma_sm90.cuh"

namespace attn::cuda::detail {

constexpr int kBwd90Keys = 128, kBwd90Stages = 2;
constexpr int kBwd90Consumers = 256, kBwd90Threads = 384;
constexpr int kBwd90ProducerRegs = 24, kBwd90ConsumerRegs = 240;  // 128 x 24 + 256 x 240 <= 64 K
// The dQ scratch is zeroed by the kernel itself, in pieces of this many bytes copied from a
// zeroed shared-memory buffer (see the zeroing warp below).
constexpr int kBwd90ZeroPiece = 16384;
// Stages of the D workers' ring (bwd90_delta_workers.cuh): 6 x 32 KB.
constexpr int kBwd90DeltaStages = 6;

// Queries per step, and how the two warpgroups share dQ = dS K: at head dim 128, 64 queries
// (dK and dV hold 128 registers per thread) and each warpgroup computes all queries x its 64
// columns; at 64, 128 queries (FlashAttention-3's shape: half the per-step costs per query)
// and each warpgroup its 64 queries x all columns.
template <int kHeadDim>
constexpr int bwd90_queries() { return kHeadDim == 64 ? 128 : 64; }

// Shared memory, byte offsets from a 1024-aligned base (swizzled tiles need it). Tiles are
// 64-column panels of 128-byte rows (dQ: 32-float panels).
template <int kHeadDim>
struct Bwd90Layout {
  static constexpr int kM = bwd90_queries<kHeadDim>();
  static constexpr int kPanels = kHeadDim / 64;
  static constexpr int kKeyPanel = kBwd90Keys * 128, kQueryPanel = kM * 128;
  static constexpr int kKeyTile = kPanels * kKeyPanel, kQueryTile = kPanels * kQueryPanel;
  static constexpr int kDsPanel = kBwd90Keys * 128;  // [128 keys][64 queries] 16-bit
  static constexpr int kDqPanel = kM * 128;          // [kM queries][32 floats]
  static constexpr int kDqTile = (kHeadDim / 32) * kDqPanel;
  static constexpr int kK = 0, kV = kKeyTile, kQ = 2 * kKeyTile;
  static constexpr int kDo = kQ + kBwd90Stages * kQueryTile;
  static constexpr int kDs = kDo + kBwd90Stages * kQueryTile;  // kM / 64 panels
  static constexpr int kDq = kDs + (kM / 64) * kDsPanel;        // 2 dQ tiles
  static constexpr int kZero = kDq + 2 * kDqTile;               // kBwd90ZeroPiece zero bytes
  static constexpr int kLse = kZero + kBwd90ZeroPiece;          // stages x [kM] float
  static constexpr int kD = kLse + kBwd90Stages * kM * 4;
  static constexpr int kBarriers = kD + kBwd90Stages * kM * 4;  // kv_full, kv_empty, q_full[], q_empty[]
  static constexpr int kItem = kBarriers + 8 * (2 + 2 * kBwd90Stages);
  static constexpr size_t kBytes = kItem + 32 + 1024;
  static_assert(kBytes <= 227 * 1024, "fits a multiprocessor's shared memory");
  static_assert(kKeyTile <= kDqTile, "dK and dV are staged in the dQ buffers");
  // The D workers' ring (O and dO tiles) below the zeros, its barriers in lse's place.
  static_assert(kBwd90DeltaStages * 2 * kQueryTile <= kZero && kBwd90DeltaStages * 16 <= kD - kLse, "D workers' ring");
};

template <typename T, int kHeadDim>
__global__ void __launch_bounds__(kBwd90Threads, 1)
    flash_bwd_sm90_kernel(const __grid_constant__ CUtensorMap q_map, const __grid_constant__ CUtensorMap k_map,
                          const __grid_constant__ CUtensorMap v_map, const __grid_constant__ CUtensorMap do_map,
                          const __grid_constant__ CUtensorMap dq_map, const __grid_constant__ CUtensorMap dk_map,
                          const __grid_constant__ CUtensorMap dv_map, const __grid_constant__ CUtensorMap o_map,
                          const BwdParams p, int order_pairs,
                          int d_workers, int d_pair_block, int zero_lookahead) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  static_assert(kHeadDim == 64 || kHeadDim == 128, "head dims 64 and 128");
  using L = Bwd90Layout<kHeadDim>;
  constexpr int kS = kBwd90Stages, kM = L::kM;
  constexpr bool kSplitQueries = kHeadDim == 64;  // dQ: each warpgroup its queries (else its columns)
  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (smem_address(smem_raw) + 1023) & ~1023u;
  unsigned char* base_ptr = smem_raw + (base - smem_address(smem_raw));
  float* sLse = reinterpret_cast<float*>(base_ptr + L::kLse);
  float* sD = reinterpret_cast<float*>(base_ptr + L::kD);
  const uint32_t kv_full = base + L::kBarriers, kv_empty = kv_full + 8, q_full = kv_empty + 8, q_empty = q_full + 8 * kS;
  // The items whose K and V load, alternately in two slots of {linear index or -1 (no more),
  // first key, kv head, batch}, written by the producer before the loads (the consumers read
  // a slot once its K and V have landed; the producer rewrites it two items later).
  const uint32_t item_slots = base + L::kItem;

  // Items: key blocks, the first ones (the longest under the causal rule) first, a few heads
  // at a time; block i takes item i, then the next one not yet taken (p.counters[0]).
  const int key_tiles = (p.seq_k + kBwd90Keys - 1) / kBwd90Keys, pairs = p.heads_kv * p.batch;
  const int items = key_tiles * pairs;
  auto item_of = [&](int linear) { return grouped_longest_first(linear, order_pairs, false, key_tiles, p.heads_kv, pairs); };
  const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
  // The dQ scratch's rows of query block m of batch b (all heads: contiguous) are zeroed in
  // zero_pieces pieces of kBwd90ZeroPiece bytes (kM x head dim floats per head: 2 per head;
  // fewer bytes in a batch's last block), counted in p.counters[1 + b * m_tiles + m].
  const int m_tiles = (p.seq_q + kM - 1) / kM, zero_pieces = kM * kHeadDim * 4 / kBwd90ZeroPiece * p.heads_q;
  int* const items_taken = p.counters;
  int* const blocks_zeroed = p.counters + 1;
  // D comes from the last d_workers blocks, before they take items (or, with none, from the
  // D pass before this kernel).
  const bool is_d_worker = static_cast<int>(blockIdx.x) >= static_cast<int>(gridDim.x) - d_workers;

#pragma unroll 1
  for (int off = threadIdx.x * 16; off < kBwd90ZeroPiece; off += kBwd90Threads * 16) {
    asm volatile("st.shared.v4.b32 [%0], {%1, %1, %1, %1};\n" ::"r"(base + L::kZero + off), "r"(0) : "memory");
  }
  fence_proxy_async_shared();  // the copy engine reads the zeros
  if (threadIdx.x == 0) {
    mbarrier_init(kv_full, 1);
    mbarrier_init(kv_empty, kBwd90Consumers);
    for (int s = 0; s < kS; ++s) {
      mbarrier_init(q_full + 8 * s, 32);  // the producer warp's lanes (lane 0 also announces the bytes)
      mbarrier_init(q_empty + 8 * s, kBwd90Consumers);
    }
    mbarrier_init_fence();
    allow_dependent_launch();  // the dQ store's blocks take the multiprocessors these leave
  }
  __syncthreads();
  if (is_d_worker) {  // (the counters zeroed first)
    wait_for_prerequisite_grids();
    delta_worker<T, kHeadDim, kM, kBwd90Consumers, kBwd90DeltaStages>(
        &o_map, &do_map, p, static_cast<int>(blockIdx.x) - (static_cast<int>(gridDim.x) - d_workers), d_workers,
        d_pair_block, base, base + L::kLse);
  }

  if (wg == 2) {  // the producer warpgroup: its first warp stages everything
    set_max_registers_dec<kBwd90ProducerRegs>();
    if (warp == 1 && lane == 0) {
      // The zeroing thread. Pieces are numbered query block by query block in the items'
      // order (batch 0's blocks first); thread block i takes pieces i, i + zeroers, ... (the
      // D workers take none: they start late), and
      // counts each in its query block's counter once its write has completed (release; the
      // producer's acquire below). The walks run behind it, and it zeroes a batch's rows only
      // once the items taken are within zero_lookahead of the batch's first ones, so that
      // the zeros are still in L2 when the reductions add into them.
      const int total = p.batch * m_tiles * zero_pieces;
      int done_block = -1;
      auto count = [&](int block) {  // once its pieces' writes have completed
        // The counters are zeroed by the D pass, which may still run (programmatic dependent
        // launch): the first pieces are written meanwhile. (Once it has ended the wait costs
        // nothing; a flag for it measured more spills.)
        wait_for_prerequisite_grids();
        release_count(blocks_zeroed + block);
      };
      const int grid = static_cast<int>(gridDim.x), zeroers = grid > d_workers ? grid - d_workers : grid;
      for (int k = blockIdx.x < zeroers ? static_cast<int>(blockIdx.x) : total; k < total; k += zeroers) {
        const int block = k / zero_pieces, piece = k % zero_pieces, m = block % m_tiles;
        // The batch's first items (block_order.cuh: pair-major, or groups of about a wave's
        // pairs under the causal rule) start at about block / m_tiles x items_per_batch.
        const int due = block / m_tiles * (key_tiles * p.heads_kv) - zero_lookahead - grid;
        if (due > 0) {
          wait_for_prerequisite_grids();  // (items_taken zeroed)
          if (acquire_count(items_taken) < due) {
            if (done_block >= 0) {  // the pieces so far counted first
              bulk_wait_complete<0>();
              count(done_block);
              done_block = -1;
            }
            while (acquire_count(items_taken) < due) __nanosleep(1000);
          }
        }
        const int64_t block_bytes = int64_t{min(kM, p.seq_q - m * kM)} * p.heads_q * kHeadDim * 4;
        const int64_t start = int64_t{piece} * kBwd90ZeroPiece;
        if (start < block_bytes) {
          char* dst = reinterpret_cast<char*>(p.dq_accum + (int64_t{block / m_tiles} * p.seq_q + m * kM) * p.heads_q * kHeadDim);
          bulk_copy_to_global(dst + start, base + L::kZero,
                              static_cast<uint32_t>(block_bytes - start < kBwd90ZeroPiece ? block_bytes - start
                                                                                          : kBwd90ZeroPiece));
        }
        bulk_commit_group();
        if (done_block >= 0) {
          bulk_wait_complete<1>();
          count(done_block);
        }
        done_block = block;
      }
      if (done_block >= 0) {
        bulk_wait_complete<0>();
        count(done_block);
      }
      return;
    }
    if (warp != 0) return;
    int next = blockIdx.x;
    int zeroed_block = -1;  // lane 0: the query block last seen zeroed
    for (int j = 0, step = 0;; ++j) {  // step: counted across items (the stages' ring)
      const int linear = next;
      // K and V of the item before no longer read (its walk done, its dK and dV staged
      // elsewhere: the epilogue below).
      if (j > 0) mbarrier_wait(kv_empty, (j - 1) & 1);
      if (linear >= items) {
        if (lane == 0) {
          st_shared_b32<0>(item_slots + 16 * (j & 1), static_cast<uint32_t>(-1));
          mbarrier_arrive(kv_full);  // (the arrival releases the slot's store to the waiters)
        }
        return;
      }
      const BlockItem item = item_of(linear);
      const int n0 = item.tile * kBwd90Keys, hk = item.head, b = item.batch;
      if (lane == 0) {
        const uint32_t slot = item_slots + 16 * (j & 1);
        st_shared_b32<0>(slot, static_cast<uint32_t>(linear));
        st_shared_b32<4>(slot, static_cast<uint32_t>(n0));
        st_shared_b32<8>(slot, static_cast<uint32_t>(hk));
        st_shared_b32<12>(slot, static_cast<uint32_t>(b));
        mbarrier_arrive_expect_tx(kv_full, 2 * L::kKeyTile);
#pragma unroll
        for (int pn = 0; pn < L::kPanels; ++pn) {
          tma_load_4d(base + L::kK + pn * L::kKeyPanel, &k_map, kv_full, pn * 64, n0, hk, b);
          tma_load_4d(base + L::kV + pn * L::kKeyPanel, &v_map, kv_full, pn * 64, n0, hk, b);
        }
      }
      // The D pass before this kernel may still run (programmatic dependent launch): its D,
      // and the counters it zeroes, are read from here on. (K and V are inputs, and the
      // zeroing thread writes only the scratch before its own wait.)
      if (j == 0) wait_for_prerequisite_grids();
      const QueryWalk<kM> walk(p, n0);
      StepCursor<kM> cur(walk, p, hk);
      for (int i = 0; i < walk.steps; ++i, ++step, cur.advance()) {
        const int s = step % kS;
        // The step's dQ rows zeroed (the consumers add into them once Q and dO have landed).
        const int block = b * m_tiles + cur.m0 / kM;
        if (lane == 0 && block != zeroed_block) {
          while (acquire_count(blocks_zeroed + block) < zero_pieces) __nanosleep(64);
          zeroed_block = block;
        }
        if (step >= kS) mbarrier_wait(q_empty + 8 * s, ((step - kS) / kS) & 1);
        if (lane == 0) {
          mbarrier_expect_tx(q_full + 8 * s, 2 * L::kQueryTile);
#pragma unroll
          for (int pn = 0; pn < L::kPanels; ++pn) {
            tma_load_4d(base + L::kQ + s * L::kQueryTile + pn * L::kQueryPanel, &q_map, q_full + 8 * s, pn * 64,
                        cur.m0, cur.h, b);
            tma_load_4d(base + L::kDo + s * L::kQueryTile + pn * L::kQueryPanel, &do_map, q_full + 8 * s, pn * 64,
                        cur.m0, cur.h, b);
          }
        }
        // The rows' lse (log2 units) and D once written (while Q and dO load): rows lane + 32
        // k; then the lanes' arrivals.
        float lse[kM / 32], delta[kM / 32];
#pragma unroll
        for (int part = 0; part < kM / 32; ++part) {
          const int i = cur.m0 + lane + 32 * part;
          lse[part] = i < p.seq_q ? p.lse[b * p.lse_stride.batch + cur.h * p.lse_stride.head + i * p.lse_stride.row]
                                  : -CUDART_INF_F;
        }
        const int rows_left = p.seq_q - cur.m0 - lane;  // this lane's rows: the first (rows_left + 31) / 32
        wait_for_delta(delta, p.delta + (int64_t{b} * p.heads_q + cur.h) * p.seq_q + cur.m0 + lane, 32,
                       rows_left <= 0 ? 0 : (rows_left + 31) / 32);
#pragma unroll
        for (int part = 0; part < kM / 32; ++part) {
          const int r = lane + 32 * part;
          const bool row = cur.m0 + r < p.seq_q;  // (lse_log2: a row past seq_q gets no weight)
          sLse[s * kM + r] = lse_log2(lse[part]);
          sD[s * kM + r] = row ? delta[part] : 0.0f;
        }
        mbarrier_arrive(q_full + 8 * s);
      }
      // The next item, taken once this one's copies are all issued (two steps before its walk
      // ends). (Taken as this item started, items queued behind long causal walks while other
      // multiprocessors ran dry: H100 d = 128 causal n = 8192 4% slower than a block per item.
      // Its K and V fetched into L2 meanwhile: up to 1.7% slower.)
      if (lane == 0) next = atomicAdd(items_taken, 1) + static_cast<int>(gridDim.x);
      next = __shfl_sync(0xffffffffu, next, 0);
    }
  }

  // Consumers: warpgroup wg owns keys n0 + 64 wg .. + 63 of each item; this thread's
  // accumulator rows are key_row and key_row + 8.
  set_max_registers_inc<kBwd90ConsumerRegs>();
  for (int j = 0, step = 0;; ++j) {  // step: counted across items, as the producer's
    // What the walk derives from the shared-memory base is derived again for each item, from
    // a copy of the base the compiler cannot hoist out of this loop (these names shadow the
    // kernel's): computed once and held across items, they spilled at d = 128.
    const uint32_t base = (opaque_copy(smem_address(smem_raw)) + 1023) & ~1023u;
    const int thread = static_cast<int>(opaque_copy(threadIdx.x));
    const int wg = thread >> 7, warp = (thread >> 5) & 3, g = (thread & 31) >> 2, t = thread & 3;
    unsigned char* base_ptr = smem_raw + (base - smem_address(smem_raw));
    float* sLse = reinterpret_cast<float*>(base_ptr + L::kLse);
    float* sD = reinterpret_cast<float*>(base_ptr + L::kD);
    const uint32_t kv_full = base + L::kBarriers, kv_empty = kv_full + 8, q_full = kv_empty + 8,
                   q_empty = q_full + 8 * kS, item_slots = base + L::kItem;
    const int key_local = wg * 64 + warp * 16 + g;
    // This warpgroup's 64 rows of K and V as A operands (K-major; panels kKeyPanel apart).
    const uint64_t k_desc = sw128_descriptor(base + L::kK + wg * 64 * 128, 16, 1024);
    const uint64_t v_desc = sw128_descriptor(base + L::kV + wg * 64 * 128, 16, 1024);
    // dQ's operands: dS^T as A (MN-major: its panel wg, or its only one), K's panel wg (or its
    // only one) as B (MN-major); both advance 16 key rows (2048 bytes) per k16 step.
    const uint64_t ds_desc =
        sw128_descriptor(base + L::kDs + (kSplitQueries ? wg * L::kDsPanel : 0), L::kDsPanel, 1024);
    const uint64_t kt_desc =
        sw128_descriptor(base + L::kK + (kSplitQueries ? 0 : wg * L::kKeyPanel), L::kKeyPanel, 1024);
    const bool issues_dq = (thread & 127) == 0;  // one thread per warpgroup adds its part of dQ

    mbarrier_wait(kv_full, j & 1);
    const uint32_t slot = item_slots + 16 * (j & 1);
    const int linear = static_cast<int>(ld_shared_u32(slot));
    if (linear < 0) break;
    const int n0 = static_cast<int>(ld_shared_u32(slot + 4)), hk = static_cast<int>(ld_shared_u32(slot + 8));
    const int b = static_cast<int>(ld_shared_u32(slot + 12)), key_row = n0 + key_local;
    // The last item's dK and dV stores have read the dQ buffers (long since: K and V have
    // landed).
    if (issues_dq) bulk_wait_reads<0>();
    const QueryWalk<kM> walk(p, n0);
    ATTN_TIMELINE_BEGIN(linear, walk.steps);
    ATTN_TIMELINE_MARK(linear, 1);  // K and V landed
    float dv[kHeadDim / 2], dk[kHeadDim / 2];
#pragma unroll
    for (int i = 0; i < kHeadDim / 2; ++i) dv[i] = dk[i] = 0.0f;
    StepCursor<kM> cur(walk, p, hk);
    // One step; kTests: whether it may hold keys past the causal frontier or past seq_k (then
    // tested per key). The steps that need the tests run a copy compiled with them (as the
    // forward's edge tiles: with the tests behind a run-time branch in every step, the forward
    // had spilled and slowed down 4-5%).
    auto do_step = [&](int step, auto tests) {
      constexpr bool kTests = decltype(tests)::value;
      const int s = step % kS, m0 = cur.m0, h = cur.h;
      const uint32_t q_tile = base + L::kQ + s * L::kQueryTile, do_tile = base + L::kDo + s * L::kQueryTile;
      mbarrier_wait(q_full + 8 * s, (step / kS) & 1);

      // S^T = K Q^T and dP^T = V dO^T: 64 keys x kM queries, k16 steps along d (32 bytes within
      // a panel's rows), one commit group each.
      float st[kM / 2], dpt[kM / 2];
      auto issue_scores = [&](float(&acc)[kM / 2], uint64_t key_desc, uint32_t query_tile) {
        const uint64_t query_desc = sw128_descriptor(query_tile, 16, 1024);
#pragma unroll
        for (int kk = 0; kk < kHeadDim / 16; ++kk) {
          const uint32_t key_off = ((kk / 4) * L::kKeyPanel + (kk % 4) * 32) >> 4;
          const uint32_t query_off = ((kk / 4) * L::kQueryPanel + (kk % 4) * 32) >> 4;
          wgmma_ss<T, kM>(acc, key_desc + key_off, query_desc + query_off, kk > 0);
        }
        wgmma_commit();
      };
      wgmma_fence();
      issue_scores(st, k_desc, q_tile);
      issue_scores(dpt, v_desc, do_tile);
      wgmma_wait<1>();
      pin_registers(st);

      // P^T: register 4 nt + 2 half + e is key key_row + 8 half, query m0 + 8 nt + 2 t + e; the
      // pair e = 0, 1 shares one 8-byte read of lse (and of D below).
      const float* lse = sLse + s * kM;
#pragma unroll
      for (int nt = 0; nt < kM / 8; ++nt) {
        const float2 l2 = *reinterpret_cast<const float2*>(lse + nt * 8 + 2 * t);
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          float* x = st + nt * 4 + half * 2;
          x[0] = ex2_approx(fmaf(x[0], p.scale_log2, -l2.x));
          x[1] = ex2_approx(fmaf(x[1], p.scale_log2, -l2.y));
        }
      }
      // Keys past the causal frontier or past seq_k get no weight (their K rows are zeros, but
      // exp2(-lse) could overflow 16 bits and then poison dQ). A separate loop: folded into the
      // one above, the compiler computed every test on every tile (a fifth of the issued
      // instructions at head dim 64).
      if constexpr (kTests) {
        // Key j drops query i when j - i > causal_offset: in 32 bits, relative to this thread's
        // first key and column (clamped: far-off tiles are all-in or all-out).
        const int lead =
            clamp_offset(int64_t{key_row} - m0 - 2 * t - (p.causal ? p.causal_offset : int64_t{1} << 40), 1 << 20);
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const bool past_end = key_row + 8 * half >= p.seq_k;
#pragma unroll
          for (int nt = 0; nt < kM / 8; ++nt)
#pragma unroll
            for (int e = 0; e < 2; ++e)
              if (past_end || lead + 8 * half - nt * 8 - e > 0) st[nt * 4 + half * 2 + e] = 0.0f;
        }
      }
      wgmma_wait<0>();
      pin_registers(dpt);
      const float* dsum = sD + s * kM;
#pragma unroll
      for (int nt = 0; nt < kM / 8; ++nt) {
        const float2 d2 = *reinterpret_cast<const float2*>(dsum + nt * 8 + 2 * t);
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          float* x = dpt + nt * 4 + half * 2;
          const float* pr = st + nt * 4 + half * 2;
          x[0] = pr[0] * (x[0] - d2.x);
          x[1] = pr[1] * (x[1] - d2.y);
        }
      }
      // P^T and dS^T as A fragments (k16 slice kk = queries 16 kk ..: n8 blocks 2 kk, 2 kk + 1).
      uint32_t a_p[kM / 16][4], a_ds[kM / 16][4];
#pragma unroll
      for (int kk = 0; kk < kM / 16; ++kk)
#pragma unroll
        for (int r = 0; r < 4; ++r) {
          a_p[kk][r] = pack2<T>(st[8 * kk + 2 * r], st[8 * kk + 2 * r + 1]);
          a_ds[kk][r] = pack2<T>(dpt[8 * kk + 2 * r], dpt[8 * kk + 2 * r + 1]);
        }
      // dS^T into its swizzled panels (row = key; queries 8 nt.. are panel nt / 8's chunk nt % 8,
      // stored at chunk ^ (row & 7)).
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int row = key_local + 8 * half;
#pragma unroll
        for (int nt = 0; nt < kM / 8; ++nt)
          st_shared_b32<0>(base + L::kDs + (nt / 8) * L::kDsPanel + row * 128 + (((nt % 8) ^ (row & 7)) << 4) + 4 * t,
                           a_ds[nt / 2][(nt & 1) * 2 + half]);
      }
      fence_proxy_async_shared();  // the stores, then wgmma's reads through the async proxy

      // dV += P^T dO (before the barrier, so the tensor cores work while the warpgroups meet),
      // then dQ, then dK += dS^T Q, whose product overlaps dQ's trip to the scratch. B of dV
      // and dK: [64 queries][d] MN-major, 16 query rows per k16 step.
      wgmma_fence();
      const uint64_t do_b = sw128_descriptor(do_tile, L::kQueryPanel, 1024), q_b = sw128_descriptor(q_tile, L::kQueryPanel, 1024);
#pragma unroll
      for (int kk = 0; kk < kM / 16; ++kk) wgmma_rs_tb<T, kHeadDim>(dv, a_p[kk], do_b + kk * (2048 >> 4));
      wgmma_commit();
      if (issues_dq) bulk_wait_reads<1>();  // the reductions of two steps ago have read their buffer
      named_barrier_sync(1, kBwd90Consumers);  // both halves of dS^T stored

      // dQ = dS K over the 128 keys: this warpgroup's queries x all columns, or all queries x
      // its columns.
      float dq[32];
      wgmma_fence();
#pragma unroll
      for (int kk = 0; kk < kBwd90Keys / 16; ++kk) {
        wgmma_m64n64k16_ss_ta_tb<T>(dq, ds_desc + kk * (2048 >> 4), kt_desc + kk * (2048 >> 4), kk > 0);
      }
      wgmma_commit();
#pragma unroll
      for (int kk = 0; kk < kM / 16; ++kk) wgmma_rs_tb<T, kHeadDim>(dk, a_ds[kk], q_b + kk * (2048 >> 4));
      wgmma_commit();
      wgmma_wait<1>();  // dV and dQ done; dK may still run
      pin_registers(dq);

      // dQ rows: query (64 wg when split by queries +) 16 warp + g (+ 8), columns (64 wg when
      // split by columns +) 8 nt + 2 t, into buffer step % 2 (its reductions of two steps ago
      // have read it: waited for before the barrier above): column c in panel c / 32, its
      // 16-byte chunk (c % 32) / 4 at chunk ^ (row & 7).
      const uint32_t dq_tile = base + L::kDq + (step & 1) * L::kDqTile;
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int row = (kSplitQueries ? wg * 64 : 0) + warp * 16 + g + 8 * half;
#pragma unroll
        for (int nt = 0; nt < 8; ++nt) {
          const int panel = (kSplitQueries ? 0 : 2 * wg) + nt / 4, chunk = 2 * (nt % 4) + t / 2;
          st_shared_v2_f32(dq_tile + panel * L::kDqPanel + row * 128 + ((chunk ^ (row & 7)) << 4) + (t & 1) * 8,
                           dq[nt * 4 + half * 2], dq[nt * 4 + half * 2 + 1]);
        }
      }
      fence_proxy_async_shared();  // the TMA unit reads the tile through the async proxy
      named_barrier_sync(2 + wg, 128);
      if (issues_dq) {  // this warpgroup's two 64-row x 32-float boxes
        fence_proxy_async_global();  // after the zeros, acquired through the producer's wait
#pragma unroll
        for (int pp = 0; pp < 2; ++pp) {
          if constexpr (kSplitQueries) {
            tma_reduce_add_4d(&dq_map, dq_tile + pp * L::kDqPanel + wg * 64 * 128, pp * 32, m0 + wg * 64, h, b);
          } else {
            tma_reduce_add_4d(&dq_map, dq_tile + (2 * wg + pp) * L::kDqPanel, wg * 64 + pp * 32, m0, h, b);
          }
        }
        bulk_commit_group();
      }
      wgmma_wait<0>();
      pin_registers(dv);
      pin_registers(dk);
#pragma unroll
      for (int kk = 0; kk < kM / 16; ++kk) {
        pin_registers(a_p[kk]);
        pin_registers(a_ds[kk]);
      }
      mbarrier_arrive(q_empty + 8 * s);  // Q and dO of this stage are no longer read
      cur.advance();
    };
    // Per head of the group, the walk's first query blocks may reach past the causal frontier
    // (m0 + causal_offset < n0 + 127), and every block does when the keys run past seq_k.
    int tested_blocks = walk.blocks;
    if (n0 + kBwd90Keys <= p.seq_k) {
      tested_blocks = 0;
      if (p.causal) {
        const int64_t first_free = int64_t{n0} + kBwd90Keys - 1 - p.causal_offset;  // blocks from here need no tests
        const int64_t m_first = int64_t{walk.m_begin} * kM;
        if (first_free > m_first) {
          const int64_t count = (first_free - m_first + kM - 1) / kM;
          tested_blocks = static_cast<int>(count < walk.blocks ? count : walk.blocks);
        }
      }
    }
    for (int head = 0; head < p.group && walk.blocks > 0; ++head) {
      for (int blk = 0; blk < tested_blocks; ++blk, ++step) do_step(step, std::true_type{});
      for (int blk = tested_blocks; blk < walk.blocks; ++blk, ++step) do_step(step, std::false_type{});
    }
    mbarrier_arrive(kv_empty);  // this thread's products no longer read K and V: the next item's may load

    // dV, and dK times the scale (S = scale Q K^T): this thread's rows key_local (+ 8),
    // columns 8 nt + 2 t. 16-bit outputs leave through shared memory, the two dQ buffers (once
    // the last reductions have read them; K's and V's tiles already take the next item's), in
    // K's swizzled layout, by the copy engine's tensor stores of each warpgroup's 64 rows,
    // which the next item's first step waits to have read them. (The accumulators' 4-byte
    // pairs stored straight out wrote 16 bytes per row and instruction: d = 128 spent 3.6-4.4
    // us a block on them.) float32 outputs go straight out.
    ATTN_TIMELINE_MARK(linear, 3);  // this warpgroup's walk done
    if (issues_dq) bulk_wait_reads<0>();
    named_barrier_sync(1, kBwd90Consumers);  // both warpgroups' reductions have read the dQ buffers
    ATTN_TIMELINE_MARK(linear, 4);
    auto store = [&](void* dst, const BwdStrides3& st, bool as_float, const float (&acc)[kHeadDim / 2], float mul,
                     uint32_t tile, const CUtensorMap* map) {
      if (as_float) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int j = key_row + 8 * half;
          if (j >= p.seq_k) continue;
          float* row = static_cast<float*>(dst) + b * st.batch + hk * st.head + int64_t{j} * st.row + 2 * t;
#pragma unroll
          for (int nt = 0; nt < kHeadDim / 8; ++nt)
            store2<float>(row + nt * 8, acc[nt * 4 + half * 2] * mul, acc[nt * 4 + half * 2 + 1] * mul);
        }
        return;
      }
      // Row r keeps 16-byte chunk c of a panel at chunk c ^ (r % 8); this thread's rows are = g (mod 8).
#pragma unroll
      for (int half = 0; half < 2; ++half)
#pragma unroll
        for (int nt = 0; nt < kHeadDim / 8; ++nt)
          st_shared_b32<0>(tile + (nt / 8) * L::kKeyPanel + (key_local + 8 * half) * 128 + (((nt % 8) ^ g) << 4) + 4 * t,
                           pack2<T>(acc[nt * 4 + half * 2] * mul, acc[nt * 4 + half * 2 + 1] * mul));
      fence_proxy_async_shared();       // the copy engine reads the tile through the async proxy
      named_barrier_sync(2 + wg, 128);  // this warpgroup's 64 rows staged
      if (issues_dq) {
#pragma unroll
        for (int pn = 0; pn < L::kPanels; ++pn)
          tma_store_4d(map, tile + pn * L::kKeyPanel + wg * 64 * 128, pn * 64, n0 + wg * 64, hk, b);
        bulk_commit_group();
      }
    };
    store(p.dv, p.dv_stride, p.dv_float, dv, 1.0f, base + L::kDq, &dv_map);
    store(p.dk, p.dk_stride, p.dk_float, dk, p.scale, base + L::kDq + L::kDqTile, &dk_map);
    ATTN_TIMELINE_MARK(linear, 5);
  }
  // The dQ reductions and the stores still under way must have read their shared-memory
  // tiles before the block ends (their writes complete without the block).
  if ((threadIdx.x & 127) == 0) bulk_wait_reads<0>();
#endif
}

// An integer switch from the environment, or `fallback` where unset or empty; read per call,
// so that A/B runs can switch it between calls (the two below are for measurements).
inline int env_int(const char* name, int fallback) {
  const char* value = std::getenv(name);
  return value != nullptr && *value != '\0' ? std::atoi(value) : fallback;
}

// How many of the kernel's blocks compute D before they take items (the last ones): about
// one in 16, at most 8. ATTN_BWD90_D_WORKERS overrides it (0: a D pass before the kernel
// instead).
inline int bwd90_delta_workers(int blocks) {
  const int forced = env_int("ATTN_BWD90_D_WORKERS", -1);
  return forced >= 0 ? std::min(forced, blocks) : std::clamp(blocks / 16, 1, 8);
}

// How far ahead of the items taken the kernel zeroes the dQ scratch's rows: under the causal
// rule two waves of items, else all at once. (H100, whole call, n = 1024-2048: causal -0.9%
// to +1.8%, d = 128 n = 1024 +1.3%; non-causal 0.98-1.0x paced, so left unpaced.)
// ATTN_BWD90_ZERO_AHEAD (waves; negative: all at once) overrides it.
inline int bwd90_zero_lookahead(int blocks, bool causal) {
  const int waves = env_int("ATTN_BWD90_ZERO_AHEAD", causal ? 2 : -1);
  return waves < 0 ? (1 << 30) : waves * blocks;
}

// cudaErrorNotSupported where the tensors cannot be described to the copy engine: the
// caller then runs the mma.sync kernel.
template <typename T, int kHeadDim>
cudaError_t launch_flash_bwd_sm90(const BwdParams& p, cudaStream_t stream) {
  CUtensorMap maps[8] = {};
  constexpr int kM = bwd90_queries<kHeadDim>();
  if (make_panel_map<T>(&maps[0], p.q, p.batch, p.seq_q, p.heads_q, kHeadDim, p.q_stride, kM) != cudaSuccess ||
      make_panel_map<T>(&maps[1], p.k, p.batch, p.seq_k, p.heads_kv, kHeadDim, p.k_stride, kBwd90Keys) != cudaSuccess ||
      make_panel_map<T>(&maps[2], p.v, p.batch, p.seq_k, p.heads_kv, kHeadDim, p.v_stride, kBwd90Keys) != cudaSuccess ||
      make_panel_map<T>(&maps[3], p.dout, p.batch, p.seq_q, p.heads_q, kHeadDim, p.do_stride, kM) !=
          cudaSuccess ||
      make_swizzled_map(&maps[4], p.dq_accum, CU_TENSOR_MAP_DATA_TYPE_FLOAT32, 4, p.batch, p.seq_q, p.heads_q, kHeadDim,
                        BwdStrides3{int64_t{p.seq_q} * p.heads_q * kHeadDim, int64_t{p.heads_q} * kHeadDim, kHeadDim},
                        64) != cudaSuccess) {
    return cudaErrorNotSupported;
  }
  // dK and dV of q's dtype leave by tensor stores of 64-row boxes (float32 ones: plain stores).
  if ((!p.dk_float && make_panel_map<T>(&maps[5], p.dk, p.batch, p.seq_k, p.heads_kv, kHeadDim, p.dk_stride, 64) !=
                          cudaSuccess) ||
      (!p.dv_float && make_panel_map<T>(&maps[6], p.dv, p.batch, p.seq_k, p.heads_kv, kHeadDim, p.dv_stride, 64) !=
                          cudaSuccess)) {
    return cudaErrorNotSupported;
  }
  auto kernel = flash_bwd_sm90_kernel<T, kHeadDim>;
  constexpr size_t smem = Bwd90Layout<kHeadDim>::kBytes;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (err != cudaSuccess) return err;
  // One block per multiprocessor (or per item, if fewer), each taking items until none is left.
  const int key_tiles = (p.seq_k + kBwd90Keys - 1) / kBwd90Keys;
  const int64_t items = int64_t{key_tiles} * p.heads_kv * p.batch;
  const int blocks = static_cast<int>(std::min<int64_t>(items, multiprocessor_count()));
  // D by the kernel's last blocks, read through the copy engine (or by a pass before it).
  int d_workers = bwd90_delta_workers(blocks);
  if (make_panel_map<T>(&maps[7], p.out, p.batch, p.seq_q, p.heads_q, kHeadDim, p.o_stride, kM) != cudaSuccess) {
    d_workers = 0;
  }
  // D's units in blocks of about the (query) pairs one wave of items covers.
  const int d_pair_block = std::max(1, multiprocessor_count() / key_tiles) * p.group;
  // The counters zeroed, and D marked pending (or computed, where no blocks of the kernel
  // compute it); the kernel zeroes the dQ scratch.
  const int counters = static_cast<int>(bwd_counter_ints(p.batch, p.seq_q));
  if (d_workers > 0) {
    err = launch_prepare_delta(p, counters, stream);
  } else {
    err = launch_delta<T, kHeadDim>(p, false, counters, stream);
  }
  if (err != cudaSuccess) return err;
  // Placed while the kernel before it ends (dependent_launch.cuh); the kernel waits for it
  // where it reads what that one writes. H100, whole call against the same without (then
  // after a D pass): +0.4-1.6% at n <= 2048 (one row -0.9%), within the noise at 8192.
  return launch_dependent(kernel, dim3(blocks), dim3(kBwd90Threads), smem, stream, true, maps[0], maps[1],
                          maps[2], maps[3], maps[4], maps[5], maps[6], maps[7], p, order_group_pairs(key_tiles, p.causal),
                          d_workers, d_pair_block, bwd90_zero_lookahead(blocks, p.causal));
}

}  // namespace attn::cuda::detail
