// The dense forward on Hopper (sm_90a): Q K^T and P V by warpgroup matrix products (wgmma)
// instead of mma.sync, FlashAttention-3's design. A thread block owns 128 queries: two
// consumer warpgroups of 64 queries each walk the key tiles of 128, and a producer
// warpgroup's thread copies Q, K and V into shared memory with the tensor copy engine (TMA),
// in wgmma's 128-byte swizzled layout (panels of 64 columns: 16-byte chunk c of row r at
// chunk c ^ (r & 7)). K / V are three stages deep, each stage's copies completing on an
// mbarrier and released by the consumers on another, so no warp waits at a block-wide
// barrier. S = Q K^T reads both operands from shared memory; P stays in registers as the A
// operand of O += P V (its accumulator layout is the A fragment), V is read transposed. The
// consumers take turns at the tensor cores (named barriers), each issuing P V of its
// previous tile with S of the next, so one's softmax runs while the other's products do.
// The online softmax is the mma.sync kernel's (flash_fwd_kernel.cuh): log2 units, lazy
// rescaling. Covers the dense case, causal with any offset, sliding windows, GQA, and with
// kRuleKind the dynamic mask: a bias, the pre-pass's kept-key bits (the active mask and the
// keep-window thresholds) and its tile map (fwd_rules_sm90.cuh); softcap, dropout, segments
// and softmax out stay on mma.sync (sm90_forward_applies).
#pragma once
#include <math_constants.h>

#include <type_traits>

#include "block_order.cuh"
#include "block_timeline.cuh"
#include "fwd_key_range.cuh"
#include "fwd_params.h"
#include "fwd_rules_sm90.cuh"
#include "mma_sm80.cuh"
#include "tma_sm90.cuh"
#include "wgmma_sm90.cuh"

namespace attn::cuda::detail {

// Two consumer warpgroups (256 threads) and a producer warpgroup, one of whose threads issues
// the copies; registers move from the producer to the consumers (setmaxnreg). With the copies
// issued by a thread of the second consumer warpgroup instead (no producer), and 256 threads
// at up to 255 registers: H100 d = 128 0.88-1.0x, d = 64 0.82-0.88x of this.
constexpr int kSm90BlockM = 128, kSm90BlockN = 128, kSm90Consumers = 256, kSm90Threads = 384, kSm90Stages = 3;
constexpr int kSm90ProducerRegs = 40, kSm90ConsumerRegs = 232;  // 128 x 40 + 256 x 232 <= 64 K
// With the dynamic-mask rules: 128 x 24 + 256 x 240 <= 64 K (set while the first version held
// the bias in registers and spilled at d = 128; not measured against 40 / 232 since).
constexpr int kSm90RulesProducerRegs = 24, kSm90RulesConsumerRegs = 240;
constexpr int kPanelRows = 128;                // every tile here has 128 rows
enum Sm90EdgeTests { kNoTests, kTests, kTestIfNeeded };  // per-key tests of a key tile
constexpr int kPanelBytes = kPanelRows * 128;  // one 64-column panel of a tile

// K / V stages: two at d = 128 with the dynamic-mask rules (their 64 KB of staging would not
// fit beside three).
constexpr int sm90_fwd_stages(int head_dim, bool rules) { return rules && head_dim == 128 ? 2 : kSm90Stages; }
template <int kHeadDim, bool kRules>  // kRules: any rules
constexpr size_t sm90_fwd_smem_bytes() {
  // Q, the stages of K and V, the rules' staging, the barriers; + 1 KB to align the base to
  // the swizzle's 1024.
  constexpr int stages = sm90_fwd_stages(kHeadDim, kRules);
  return size_t{kHeadDim / 64} * kPanelBytes * (1 + 2 * stages) + (kRules ? 8 * kSm90RulesWarpBytes : 0) +
         8 * (3 * stages + 1) + 1024;
}

template <typename T, int kHeadDim, int kRuleKind>
__global__ void __launch_bounds__(kSm90Threads, 1)
    flash_fwd_sm90_kernel(const __grid_constant__ CUtensorMap q_map, const __grid_constant__ CUtensorMap k_map,
                          const __grid_constant__ CUtensorMap v_map, const FwdParams p, int order_pairs) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int kPanels = kHeadDim / 64;
  constexpr int kTileBytes = kPanels * kPanelBytes;
  constexpr bool kRules = kRuleKind != kSm90Dense;
  constexpr int kS = sm90_fwd_stages(kHeadDim, kRules);
  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (smem_address(smem_raw) + 1023) & ~1023u;
  const uint32_t sQ = base, sK = base + kTileBytes, sV = sK + kS * kTileBytes;
  // Barriers: K and V of each stage landed (the copy engine counts the bytes), each stage
  // released by all 256 threads, Q landed.
  const uint32_t s_rules = sV + kS * kTileBytes;  // kRules: 8 KB per consumer warp
  const uint32_t k_full = s_rules + (kRules ? 8 * kSm90RulesWarpBytes : 0), v_full = k_full + 8 * kS, empty = v_full + 8 * kS,
                 q_full = empty + 8 * kS;

  // The last query blocks (the longest under the causal rule) first, a few heads at a time.
  const BlockItem item = grouped_longest_first(block_linear(), order_pairs, true);
  const int m_block = item.tile, h = item.head, b = item.batch, hk = h / p.group;
  const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  const int m0 = m_block * kSm90BlockM;
  const int row0 = m0 + wg * 64 + warp * 16 + g;  // this thread's rows: row0, row0 + 8
  ATTN_TIMELINE_BEGIN(block_linear(), 0);

  const TileRange key_tiles = visible_key_tiles(p, m0, kSm90BlockM, kSm90BlockN);
  const int n_begin = key_tiles.begin, n_end = max(key_tiles.end, n_begin);
  // The tiles visited: all of [n_begin, n_end), or with kRules those the tile map marks.
  ActiveKeyTiles visited(p, b, hk, m_block, n_end);
  auto next_tile = [&](int nb) {
    if constexpr (kRules) return visited.next(nb);
    else return nb;
  };

  // The copies of key tile nb, the i-th visited, into its stage: K and V panels, each half on
  // its own barrier.
  auto load_tile = [&](int i, int nb) {
    const int stage = i % kS, key0 = nb * kSm90BlockN;
    mbarrier_arrive_expect_tx(k_full + 8 * stage, kTileBytes);
#pragma unroll
    for (int pn = 0; pn < kPanels; ++pn)
      tma_load_4d(sK + stage * kTileBytes + pn * kPanelBytes, &k_map, k_full + 8 * stage, pn * 64, key0, hk, b);
    mbarrier_arrive_expect_tx(v_full + 8 * stage, kTileBytes);
#pragma unroll
    for (int pn = 0; pn < kPanels; ++pn)
      tma_load_4d(sV + stage * kTileBytes + pn * kPanelBytes, &v_map, v_full + 8 * stage, pn * 64, key0, hk, b);
  };
  if (threadIdx.x == 0) {
    for (int s = 0; s < kS; ++s) {
      mbarrier_init(k_full + 8 * s, 1);
      mbarrier_init(v_full + 8 * s, 1);
      mbarrier_init(empty + 8 * s, kSm90Consumers);
    }
    mbarrier_init(q_full, 1);
    mbarrier_init_fence();
  }
  __syncthreads();
  // The producer warpgroup's first warp walks the visited tiles (the tile map's cursor is
  // warp-wide) and its first thread issues every copy: Q, then each key tile once its stage
  // has been released by all 256 consumer threads (tile i - kS done).
  if (threadIdx.x >= kSm90Consumers) {
    set_max_registers_dec<kRules ? kSm90RulesProducerRegs : kSm90ProducerRegs>();
    if (warp == 0) {
      const bool issuer = lane == 0;
      if (issuer) {
        mbarrier_arrive_expect_tx(q_full, kTileBytes);
#pragma unroll
        for (int pn = 0; pn < kPanels; ++pn) tma_load_4d(sQ + pn * kPanelBytes, &q_map, q_full, pn * 64, m0, h, b);
        // Q of the block a wave later into L2, so that block's first wait is an L2 read, not
        // DRAM's (Q is the one tile no other block in flight reads): H100 d = 128 causal
        // n = 4096, entry to Q landed 1.54 -> 1.25 us (median), the kernel up to 1% faster.
        // (The backward's K and V the same way measured 1-2% slower.)
        const int later = block_a_wave_later();
        if (later >= 0) {
          const BlockItem next = grouped_longest_first(later, order_pairs, true);
#pragma unroll
          for (int pn = 0; pn < kPanels; ++pn) tma_prefetch_4d(&q_map, pn * 64, next.tile * kSm90BlockM, next.head, next.batch);
        }
      }
      int i = 0;
      for (int nb = next_tile(n_begin); nb < n_end; nb = next_tile(nb + 1), ++i) {
        if (i >= kS) mbarrier_wait(empty + 8 * (i % kS), ((i - kS) / kS) & 1);
        if (issuer) load_tile(i, nb);
      }
    }
  } else {
    set_max_registers_inc<kRules ? kSm90RulesConsumerRegs : kSm90ConsumerRegs>();
    unsigned char* warp_rules = smem_raw + (s_rules - smem_address(smem_raw)) + (threadIdx.x >> 5) * kSm90RulesWarpBytes;
    const std::conditional_t<kRules, Sm90Rules<T, kRuleKind>, Sm90NoRules> rules(p, b, hk, row0, warp_rules);

    float o[kPanels][32];  // O rows row0 / row0 + 8, columns 64 * panel + ...
#pragma unroll
    for (int pn = 0; pn < kPanels; ++pn)
#pragma unroll
      for (int i = 0; i < 32; ++i) o[pn][i] = 0.0f;
    float row_max[2] = {-CUDART_INF_F, -CUDART_INF_F}, row_sum[2] = {0.0f, 0.0f};
    const float factor = p.scale_log2;
    constexpr float kSlack = 8.0f;  // lazy rescaling, as flash_fwd_kernel

    // Turns at the tensor cores: warpgroup w waits on named barrier 1 + w, which the other
    // arrives at once it has issued its products; the second warpgroup lets the first start.
    auto take_turn = [&] { named_barrier_sync(1 + wg, kSm90Consumers); };
    auto pass_turn = [&] { named_barrier_arrive(2 - wg, kSm90Consumers); };
    if (wg == 1) pass_turn();

    // This warpgroup's 64 rows of Q, K-major.
    const uint64_t q_desc = sw128_descriptor(sQ + wg * 64 * 128, 16, 1024);
    // The products of P (tile i - 1) V and of S = Q K^T (tile i) are issued together, one turn
    // at the tensor cores; the softmax of tile i then runs while the other warpgroup's turn
    // keeps them busy (FlashAttention-3's schedule). P waits in registers as wgmma's A operand.
    uint32_t a[8][4];  // P of the previous tile: k16 slice kk is n8 blocks 2kk, 2kk + 1 of S
    // O += P V for the tile in `stage`: V's rows kk * 16.. (8-row groups 1024 bytes apart), one
    // wgmma per 64-column panel, MN-major (V is read transposed).
    auto issue_pv = [&](int stage) {
      const uint32_t v_tile = sV + stage * kTileBytes;
      const uint64_t v_desc = sw128_descriptor(v_tile, kPanelBytes, 1024);  // + 2048 bytes per k16
#pragma unroll
      for (int kk = 0; kk < 8; ++kk)
        wgmma_rs_tb<T, kHeadDim>(reinterpret_cast<float(&)[kHeadDim / 2]>(o), a[kk], v_desc + kk * (2048 >> 4));
      wgmma_commit();
    };
    auto pv_done = [&] {
#pragma unroll
      for (int pn = 0; pn < kPanels; ++pn) pin_registers(o[pn]);
#pragma unroll
      for (int kk = 0; kk < 8; ++kk) pin_registers(a[kk]);
    };
    // After tile i's P V: this thread releases the stage (for the producer to refill).
    auto release = [&](int i) { mbarrier_arrive(empty + 8 * (i % kS)); };
    // One key tile, nb, the i-th visited (`next` follows it); the first has no previous P V (a
    // compile-time case: wgmma under a run-time condition makes the compiler serialize all of
    // them). edge_tests: kNoTests (a tile no row loses a key of by position), kTests, or
    // kTestIfNeeded (decided per tile, for the first).
    auto step = [&](int i, int nb, int next, auto first_tile, auto edge_tests) {
      constexpr bool kFirst = decltype(first_tile)::value;
      constexpr int kEdgeTests = decltype(edge_tests)::value;
      const int stage = i % kS, prev = (i + kS - 1) % kS;
      const uint32_t parity = (i / kS) & 1;
      const uint32_t k_tile = sK + stage * kTileBytes;
      const int j0 = nb * kSm90BlockN;

      // S = Q K^T: 64 x 128 per warpgroup, k16 steps along the head dim (32 bytes within a
      // panel's 128-byte rows).
      float s[64];
      mbarrier_wait(k_full + 8 * stage, parity);
      if constexpr (!kFirst) mbarrier_wait(v_full + 8 * prev, ((i - 1) / kS) & 1);
      take_turn();
      wgmma_fence();
      const uint64_t k_desc = sw128_descriptor(k_tile, 16, 1024);
#pragma unroll
      for (int kk = 0; kk < kHeadDim / 16; ++kk) {  // descriptors advance by the byte offset / 16
        const uint32_t offset = ((kk / 4) * kPanelBytes + (kk % 4) * 32) >> 4;
        wgmma_m64n128k16_ss<T>(s, q_desc + offset, k_desc + offset, kk > 0);
      }
      wgmma_commit();
      if constexpr (!kFirst) issue_pv(prev);
      pass_turn();
      // S is done; P V may still run, except with the rules: waiting for it here measured
      // faster (d = 128, n = 4096, H200: bias only 0.52 vs 0.67 ms, bias + kept bits 0.55 vs
      // 0.74), and frees P's registers for the rules' reads.
      constexpr bool kPvOverlapsSoftmax = !kFirst && !kRules;
      wgmma_wait<kPvOverlapsSoftmax ? 1 : 0>();
      pin_registers(s);
      if constexpr (kRules) {
        if constexpr (!kFirst && !kPvOverlapsSoftmax) {
          pv_done();
          release(i - 1);
        }
        rules.apply(s);
        // The next tile's bias / bits: copied while this tile's softmax and the next products
        // run.
        if (next < n_end) rules.issue(next * kSm90BlockN);
      }
      // Keys past the causal frontier, a window edge or the last key: -inf. Each row's visible
      // keys relative to this thread's first column, in 32 bits (clamped), against compile-time
      // offsets.
      auto drop_invisible_keys = [&] {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const KeyRange keys = visible_keys(p, row0 + half * 8);
          const int64_t first_column = int64_t{j0} + 2 * t;
          const int last_room = clamp_offset(keys.last - first_column, 1024);
          const int first_room = clamp_offset(keys.first - first_column, 1024);
#pragma unroll
          for (int nt = 0; nt < 16; ++nt)
#pragma unroll
            for (int e = 0; e < 2; ++e)
              if (nt * 8 + e > last_room || nt * 8 + e < first_room) s[nt * 4 + half * 2 + e] = -CUDART_INF_F;
        }
      };
      if constexpr (kEdgeTests == kTests) {
        drop_invisible_keys();
      } else if constexpr (kEdgeTests == kTestIfNeeded) {
        if (tile_has_edges(p, m0, kSm90BlockM, j0, kSm90BlockN)) drop_invisible_keys();
      }

      // Online softmax per row (half 0: row0, half 1: row0 + 8), as flash_fwd_kernel.
      float tile_max[2];
      bool grow = false;
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float part[4];  // four independent chains, then a tree
#pragma unroll
        for (int c = 0; c < 4; ++c) part[c] = fmaxf(s[c * 4 + half * 2], s[c * 4 + half * 2 + 1]);
#pragma unroll
        for (int nt = 4; nt < 16; ++nt)
          part[nt & 3] = fmaxf(part[nt & 3], fmaxf(s[nt * 4 + half * 2], s[nt * 4 + half * 2 + 1]));
        float mx = fmaxf(fmaxf(part[0], part[1]), fmaxf(part[2], part[3]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        tile_max[half] = mx * factor;
        grow = grow || tile_max[half] > row_max[half] + kSlack;
      }
      const bool rescale = __any_sync(0xffffffffu, grow);
      float alpha[2] = {1.0f, 1.0f};  // applied to O once the previous P V is done
      if (rescale) {
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const bool move = tile_max[half] > row_max[half] + kSlack;
          alpha[half] = move ? ex2_approx(row_max[half] - tile_max[half]) : 1.0f;
          if (move) row_max[half] = tile_max[half];
          row_sum[half] *= alpha[half];
        }
      }
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const float neg_base = row_max[half] == -CUDART_INF_F ? 0.0f : -row_max[half];
        float sum[2] = {0.0f, 0.0f};
#pragma unroll
        for (int nt = 0; nt < 16; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            float& x = s[nt * 4 + half * 2 + e];
            x = ex2_approx(fmaf(x, factor, neg_base));
            sum[nt & 1] += x;
          }
        row_sum[half] += sum[0] + sum[1];
      }

      if constexpr (kPvOverlapsSoftmax) {
        wgmma_wait<0>();
        pv_done();
        release(i - 1);
      }
      if (rescale) {
#pragma unroll
        for (int pn = 0; pn < kPanels; ++pn)
#pragma unroll
          for (int r = 0; r < 32; ++r) o[pn][r] *= alpha[(r >> 1) & 1];
      }
#pragma unroll
      for (int kk = 0; kk < 8; ++kk) {
        a[kk][0] = pack2<T>(s[8 * kk + 0], s[8 * kk + 1]);
        a[kk][1] = pack2<T>(s[8 * kk + 2], s[8 * kk + 3]);
        a[kk][2] = pack2<T>(s[8 * kk + 4], s[8 * kk + 5]);
        a[kk][3] = pack2<T>(s[8 * kk + 6], s[8 * kk + 7]);
      }
    };
    mbarrier_wait(q_full, 0);
    ATTN_TIMELINE_MARK(block_linear(), 1);  // Q landed
    // Tiles that need per-key tests come first (a window's left edge) and last (the causal
    // frontier, a window's right edge, the sequence's end); the ones between run a step
    // compiled without the tests. (With the tests in every step, behind a run-time branch, the
    // d = 128 kernel spilled and ran 4-5% slower non-causal although no tile took the branch.)
    using NoTests = std::integral_constant<int, kNoTests>;
    using Tests = std::integral_constant<int, kTests>;
    auto edge_tile = [&](int nb) { return tile_has_edges(p, m0, kSm90BlockM, nb * kSm90BlockN, kSm90BlockN); };
    int front = n_begin + 1, back = n_end;  // tiles [front, back) need no tests
    while (front < n_end && edge_tile(front)) ++front;
    while (back > front && edge_tile(back - 1)) --back;
    front = min(front, n_end);
    int steps = 0, nb = next_tile(n_begin), next = nb < n_end ? next_tile(nb + 1) : n_end;
    auto advance = [&] {
      nb = next;
      next = nb < n_end ? next_tile(nb + 1) : n_end;
    };
    if constexpr (kRules) {
      if (nb < n_end) rules.issue(nb * kSm90BlockN);
    }
    if (nb < n_end) {
      step(steps++, nb, next, std::true_type{}, std::integral_constant<int, kTestIfNeeded>{});
      advance();
    }
    for (; nb < front; advance()) step(steps++, nb, next, std::false_type{}, Tests{});
    for (; nb < back; advance()) step(steps++, nb, next, std::false_type{}, NoTests{});
    for (; nb < n_end; advance()) step(steps++, nb, next, std::false_type{}, Tests{});
    ATTN_TIMELINE_MARK(block_linear(), 3);  // the loop done
    ATTN_TIMELINE_STEPS(block_linear(), steps);
    if (steps > 0) {  // the last tile's P V
      const int last = steps - 1;
      mbarrier_wait(v_full + 8 * (last % kS), (last / kS) & 1);
      take_turn();
      wgmma_fence();
      issue_pv(last % kS);
      pass_turn();
      wgmma_wait<0>();
      pv_done();
      release(last);
    }
    if (wg == 0) take_turn();  // the second warpgroup's last pass, so no arrival is left over
    ATTN_TIMELINE_MARK(block_linear(), 4);  // the last P V done

    // Epilogue: finish the row sums across the quad, normalise, store lse, and O through
    // shared memory: this warpgroup's 64 rows of the Q tile (no product reads Q any more)
    // take the normalised values in Q's swizzled layout, then each thread copies 16-byte
    // pieces of whole rows out, a warp two 256-byte rows at d = 128. (The accumulators' 4-byte
    // pairs stored straight to global memory wrote 16 bytes per row and instruction.)
    float inv[2];
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float sum = row_sum[half];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      inv[half] = sum > 0.0f ? 1.0f / sum : 0.0f;
      const int i = row0 + half * 8;
      if (p.lse != nullptr && t == 0 && i < p.seq_q) {
        constexpr float kLn2 = 0.6931471805599453f;
        p.lse[b * p.lse_stride.batch + h * p.lse_stride.head + i * p.lse_stride.row] =
            sum > 0.0f ? row_max[half] * kLn2 + logf(sum) : -CUDART_INF_F;
      }
    }
    // Row r of the tile keeps 16-byte chunk c of a panel at chunk c ^ (r % 8); this thread's
    // rows are = g (mod 8).
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int row = wg * 64 + warp * 16 + g + 8 * half;
#pragma unroll
      for (int pn = 0; pn < kPanels; ++pn)
#pragma unroll
        for (int nt = 0; nt < 8; ++nt)
          st_shared_b32<0>(sQ + pn * kPanelBytes + row * 128 + ((nt ^ g) << 4) + 4 * t,
                           pack2<T>(o[pn][nt * 4 + half * 2] * inv[half], o[pn][nt * 4 + half * 2 + 1] * inv[half]));
    }
    named_barrier_sync(3 + wg, 128);  // this warpgroup's rows staged
    T* out = static_cast<T*>(p.out) + b * p.o_stride.batch + h * p.o_stride.head;
    constexpr int kChunks = kHeadDim / 8;  // 16-byte chunks per row
#pragma unroll
    for (int pass = 0; pass < 64 * kChunks / 128; ++pass) {
      const int piece = pass * 128 + (threadIdx.x & 127), c = piece % kChunks;
      const int row = wg * 64 + piece / kChunks, i = m0 + row;
      const uint4 x = ld_shared_v4(sQ + (c / 8) * kPanelBytes + row * 128 + (((c % 8) ^ (row & 7)) << 4));
      if (i < p.seq_q) *reinterpret_cast<uint4*>(out + i * p.o_stride.row + c * 8) = x;
    }
    ATTN_TIMELINE_MARK(block_linear(), 5);  // O stored
  }
#endif
}

// cudaErrorNotSupported where the tensors cannot be described to the copy engine (strides
// not multiples of 16 bytes, say) or a bias / mask layout is not read here
// (sm90_rules_supported): the caller then runs the mma.sync kernel.
template <typename T, int kHeadDim>
cudaError_t launch_flash_fwd_sm90(const FwdParams& p, cudaStream_t stream) {
  // A mask or a keep window only through the pre-pass's kept-key bits (sm90_forward_applies
  // checked the rest).
  const bool masked = p.active != nullptr || p.row_threshold != nullptr || p.tile_active != nullptr;
  if (masked && p.kept_bits == nullptr) return cudaErrorNotSupported;
  const int rule_kind = (p.bias != nullptr ? kSm90RuleBias : 0) | (masked ? kSm90RuleBits : 0);
  const bool rules = rule_kind != kSm90Dense;
  CUtensorMap maps[3];
  if (make_panel_map<T>(&maps[0], p.q, p.batch, p.seq_q, p.heads_q, kHeadDim, p.q_stride, kPanelRows) != cudaSuccess ||
      make_panel_map<T>(&maps[1], p.k, p.batch, p.seq_k, p.heads_kv, kHeadDim, p.k_stride, kPanelRows) != cudaSuccess ||
      make_panel_map<T>(&maps[2], p.v, p.batch, p.seq_k, p.heads_kv, kHeadDim, p.v_stride, kPanelRows) != cudaSuccess) {
    return cudaErrorNotSupported;
  }
  auto kernel = flash_fwd_sm90_kernel<T, kHeadDim, kSm90Dense>;
  switch (rule_kind) {
    case kSm90RuleBias: kernel = flash_fwd_sm90_kernel<T, kHeadDim, kSm90RuleBias>; break;
    case kSm90RuleBits: kernel = flash_fwd_sm90_kernel<T, kHeadDim, kSm90RuleBits>; break;
    case kSm90RuleBias | kSm90RuleBits: kernel = flash_fwd_sm90_kernel<T, kHeadDim, kSm90RuleBias | kSm90RuleBits>; break;
    default: break;
  }
  const size_t smem = rules ? sm90_fwd_smem_bytes<kHeadDim, true>() : sm90_fwd_smem_bytes<kHeadDim, false>();
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (err != cudaSuccess) return err;
  const dim3 grid((p.seq_q + kSm90BlockM - 1) / kSm90BlockM, p.heads_q, p.batch);
  kernel<<<grid, kSm90Threads, smem, stream>>>(maps[0], maps[1], maps[2], p, order_group_pairs(grid.x, p.causal));
  return cudaGetLastError();
}

}  // namespace attn::cuda::detail
