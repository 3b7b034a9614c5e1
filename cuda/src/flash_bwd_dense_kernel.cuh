// The backward kernel of the dense case (no bias, mask, softcap or dropout; causal, GQA
// and any lengths are fine), with FlashAttention-2's work split: one thread block of 8
// warps per (128 keys, kv head, batch) walks every (query head of the group, block of kM
// queries) the causal rule leaves; kM = 128 at head dim 64 on Hopper, else 64 (the dK / dV
// accumulators of d = 128 leave no registers for bigger steps; see dense_bwd_shape). Each product gets its own
// warp layout, and every operand comes from shared memory, so no warp holds a sliver of
// 16 rows (the general kernel's layout, whose fragments each feed one mma and which is
// bound by shared-memory reads):
//   S = Q K^T and dP = dO V^T   2 (queries) x 4 (keys) warps of kM/2 x 32
//   dV += P^T dO, dK += dS^T Q  warps 0-3 dV, 4-7 dK, each 32 keys x d
//   dQ += dS K                  kM/32 (queries) x 256/kM (head-dim parts) warps of 32 x d kM/256
// P and dS pass through shared memory as 16-bit [query][key] tiles. dK and dV stay in
// registers for the whole walk (GQA sums are deterministic); dQ is added to the float32
// scratch once per step and 128 keys (bulk reductions on Hopper, atomics else).
#pragma once
#include <math_constants.h>

#include "bwd_params.h"
#include "bwd_walk.cuh"
#include "mma_sm80.cuh"
#include "smem_tile.cuh"

namespace attn::cuda::detail {

constexpr int kDenseBwdBlockN = 128;  // keys per thread block
constexpr int kDenseBwdThreads = 8 * 32;

// Queries per step, depth of the Q / dO / lse / D ring, and how dQ leaves the block. On
// Hopper (227 KB of shared memory per block): 128-query steps at head dim 64, which halve
// the per-step work that does not scale with the step (barriers, staging, P / dS stores) and
// read fewer shared-memory bytes per mma (S / dP warp tiles of 64 x 32; H100: 0.85x ->
// 0.91-0.94x of FA2's kernel); and dQ staged in shared memory, from where the TMA unit adds
// each row to the float32 scratch (cp.reduce.async.bulk). The warps' own atomics had stalled
// them: the next reduction's address registers waited for the previous reductions to read
// theirs (H100, kernel alone: d = 128 0.90-0.99x -> 1.00-1.07x of FA2's, d = 64 0.91-1.03x ->
// 0.95-1.06x). The dQ tile leaves room for two ring stages only (a third had given d = 64
// +3-4% with atomics). sm_80 GPUs (A100: 163 KB per block) get 64-query steps, two stages and
// atomics (d = 128: 161 KB).
struct DenseBwdShape {
  int block_m, stages;
  bool bulk_dq;  // dQ through a shared-memory tile and the TMA unit's bulk reductions
};
__host__ __device__ constexpr DenseBwdShape dense_bwd_shape(int head_dim, bool hopper) {
  return {hopper && head_dim <= 64 ? 128 : 64, 2, hopper};
}
// The dQ tile's row pitch in floats: 8 more than d, so the rows g = 0..3 of a half-warp's
// 8-byte stores start 8 banks apart and hit 32 distinct banks (with + 4 they overlapped two
// ways: H100, kernel alone, 1-3% slower).
__host__ __device__ constexpr int dense_bwd_dq_pitch(int head_dim) { return head_dim + 8; }
__host__ __device__ constexpr size_t dense_bwd_smem_bytes(int head_dim, DenseBwdShape s) {
  // K, V; the stages of Q and dO; P and dS (16-bit); the stages of lse and D (float); dQ.
  return 2 * (2 * kDenseBwdBlockN * head_dim + 2 * s.stages * s.block_m * head_dim + 2 * s.block_m * kDenseBwdBlockN) +
         4 * 2 * s.stages * s.block_m + (s.bulk_dq ? 4 * s.block_m * dense_bwd_dq_pitch(head_dim) : 0);
}
// The shape a kernel body was compiled for: by the virtual architecture of its code (so a
// JIT-compiled sm_80 PTX running on a Hopper GPU keeps the sm_80 shape); the host reads the
// same back from the kernel's ptxVersion.
__device__ constexpr bool compiled_for_hopper() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  return true;
#else
  return false;
#endif
}

// c[kMt row tiles][4 n8 tiles] = A . B^T for this warp's (16 kMt) x 32 block: A rows
// [a_row0, +16 kMt) of a [rows][kDim] tile, B rows [b_row0, +32) of another (S = Q K^T,
// dP = dO V^T).
template <typename T, int kDim, int kMt>
__device__ __forceinline__ void warp_scores(float (&c)[kMt][4][4], const T* sA, int a_row0, const T* sB,
                                            int b_row0, int lane) {
#pragma unroll
  for (int mt = 0; mt < kMt; ++mt)
#pragma unroll
    for (int nt = 0; nt < 4; ++nt) c[mt][nt][0] = c[mt][nt][1] = c[mt][nt][2] = c[mt][nt][3] = 0.0f;
  const int lm = lane >> 3, lr = lane & 7;
  const SwizzledRows<kDim> a_rows(sA, a_row0 + (lm & 1) * 8 + lr, lm >> 1);
  const SwizzledRows<kDim> b_rows(sB, b_row0 + (lm >> 1) * 8 + lr, lm & 1);
#pragma unroll
  for (int kk = 0; kk < kDim / 16; ++kk) {
    uint32_t a[kMt][4];
#pragma unroll
    for (int mt = 0; mt < kMt; ++mt) ldmatrix_x4(a[mt], a_rows.at(kk, mt * 16));
#pragma unroll
    for (int np = 0; np < 2; ++np) {
      uint32_t bb[4];
      ldmatrix_x4(bb, b_rows.at(kk, np * 16));
#pragma unroll
      for (int mt = 0; mt < kMt; ++mt) {
        MmaOp<T>::run(c[mt][2 * np], a[mt], bb[0], bb[1]);
        MmaOp<T>::run(c[mt][2 * np + 1], a[mt], bb[2], bb[3]);
      }
    }
  }
}

// acc[2 row tiles][kCols / 8] += X^T . Y for this warp's 32 keys x kCols columns, X a
// [kM queries][kN keys] tile (P or dS; read transposed) and Y a [kM][kDim] tile (dO or Q)
// from column col0: dV += P^T dO and dK += dS^T Q.
template <typename T, int kDim, int kCols, int kM>
__device__ __forceinline__ void warp_grad_keys(float (&acc)[2][kCols / 8][4], const T* sX,
                                               int key0, const T* sY, int col0, int lane) {
  const int lm = lane >> 3, lr = lane & 7;
  const SwizzledRows<kDenseBwdBlockN> x_rows(sX, (lm >> 1) * 8 + lr, lm & 1, key0 / 8);
  const SwizzledRows<kDim> y_rows(sY, (lm & 1) * 8 + lr, lm >> 1, col0 / 8);
#pragma unroll
  for (int kc = 0; kc < kM / 16; ++kc) {
    uint32_t a[2][4];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) ldmatrix_x4_trans(a[mt], x_rows.at(mt, kc * 16));
#pragma unroll
    for (int dp = 0; dp < kCols / 16; ++dp) {
      uint32_t bb[4];
      ldmatrix_x4_trans(bb, y_rows.at(dp, kc * 16));
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        MmaOp<T>::run(acc[mt][2 * dp], a[mt], bb[0], bb[1]);
        MmaOp<T>::run(acc[mt][2 * dp + 1], a[mt], bb[2], bb[3]);
      }
    }
  }
}

// acc[2][kCols / 8] = dS K for this warp's 32 queries (from q0) x kCols columns (from col0).
template <typename T, int kDim, int kCols>
__device__ __forceinline__ void warp_grad_queries(float (&acc)[2][kCols / 8][4], const T* sdS,
                                                  int q0, const T* sK, int col0, int lane) {
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int nt = 0; nt < kCols / 8; ++nt) acc[mt][nt][0] = acc[mt][nt][1] = acc[mt][nt][2] = acc[mt][nt][3] = 0.0f;
  const int lm = lane >> 3, lr = lane & 7;
  const SwizzledRows<kDenseBwdBlockN> ds_rows(sdS, q0 + (lm & 1) * 8 + lr, lm >> 1);
  const SwizzledRows<kDim> k_rows(sK, (lm & 1) * 8 + lr, lm >> 1, col0 / 8);
#pragma unroll
  for (int kc = 0; kc < kDenseBwdBlockN / 16; ++kc) {
    uint32_t a[2][4];
#pragma unroll
    for (int mt = 0; mt < 2; ++mt) ldmatrix_x4(a[mt], ds_rows.at(kc, mt * 16));
#pragma unroll
    for (int dp = 0; dp < kCols / 16; ++dp) {
      uint32_t bb[4];
      ldmatrix_x4_trans(bb, k_rows.at(dp, kc * 16));
#pragma unroll
      for (int mt = 0; mt < 2; ++mt) {
        MmaOp<T>::run(acc[mt][2 * dp], a[mt], bb[0], bb[1]);
        MmaOp<T>::run(acc[mt][2 * dp + 1], a[mt], bb[2], bb[3]);
      }
    }
  }
}

// Adds a warp's 32 x kCols accumulator block (queries q0.., columns col0..) to the float32
// dQ scratch (the store kernel applies the scale), skipping rows at or past rows_left. On sm_90 each adjacent
// pair is one 8-byte vector reduction: the scalar atomics filled the global-memory queue
// (lg_throttle stalls in Nsight Compute; backward 0.55-0.68x -> 0.60-0.82x of SDPA flash).
// Pairing lanes by shuffles into 16-byte reductions measured slower (more spills).
template <int kCols>
__device__ __forceinline__ void add_dq_block(float* dq_row0, int64_t row_stride, const float (&acc)[2][kCols / 8][4],
                                             int rows_left, int q0, int lane) {
  const int g = lane >> 2, t = lane & 3;
  float* const lane_row0 = dq_row0 + (q0 + g) * row_stride + 2 * t;
  const bool all_rows = q0 + 32 <= rows_left;  // warp-uniform: no per-row tests
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int k = mt * 2 + half;  // row q0 + g + 8k
      if (!all_rows && q0 + g + 8 * k >= rows_left) continue;
      float* row = lane_row0 + k * 8 * row_stride;
#pragma unroll
      for (int nt = 0; nt < kCols / 8; ++nt) {
        const float a = acc[mt][nt][half * 2], b = acc[mt][nt][half * 2 + 1];
#if __CUDA_ARCH__ >= 900
        atomicAdd(reinterpret_cast<float2*>(row + nt * 8), make_float2(a, b));
#else
        atomicAdd(row + nt * 8, a);
        atomicAdd(row + nt * 8 + 1, b);
#endif
      }
    }
}

// Row tiles kMt0.. of n8 tile nt of an accumulator block: rows 16 mt + g and 16 mt + g + 8
// at immediate offsets from `address` (a compile-time recursion: the offsets must be
// constants of the instruction).
template <typename T, int kMt, int kRowBytes, int kMt0 = 0>
__device__ __forceinline__ void store_row_tiles(uint32_t address, const float (&c)[kMt][4][4], int nt) {
  if constexpr (kMt0 < kMt) {
    st_shared_b32<16 * kMt0 * kRowBytes>(address, pack2<T>(c[kMt0][nt][0], c[kMt0][nt][1]));
    st_shared_b32<(16 * kMt0 + 8) * kRowBytes>(address, pack2<T>(c[kMt0][nt][2], c[kMt0][nt][3]));
    store_row_tiles<T, kMt, kRowBytes, kMt0 + 1>(address, c, nt);
  }
}

// Writes a warp's (16 kMt) x 32 accumulator block (rows q0.., keys key0..) into a swizzled
// [kM][kN] tile. The lane's rows q0 + g + 8k all have row & 7 = g (q0 is a multiple of 8),
// so each n8 tile's swizzled column is computed once and the rows are immediate offsets.
template <typename T, int kMt>
__device__ __forceinline__ void store_score_block(T* tile, const float (&c)[kMt][4][4], int q0, int key0,
                                                  int lane) {
  constexpr int kRowBytes = kDenseBwdBlockN * 2;
  const int g = lane >> 2, t = lane & 3;
  const uint32_t lane_row = smem_address(tile + (q0 + g) * kDenseBwdBlockN) + 4 * t;
#pragma unroll
  for (int nt = 0; nt < 4; ++nt) {
    const uint32_t address = lane_row + static_cast<uint32_t>(((key0 / 8 + nt) ^ g) << 4);
    store_row_tiles<T, kMt, kRowBytes>(address, c, nt);
  }
}

template <typename T, int kHeadDim>
__global__ void __launch_bounds__(kDenseBwdThreads, 1) flash_bwd_dense_kernel(const BwdParams p) {
  constexpr DenseBwdShape kShape = dense_bwd_shape(kHeadDim, compiled_for_hopper());
  constexpr int kN = kDenseBwdBlockN, kM = kShape.block_m, kD = kHeadDim;
  constexpr int kSMt = kM / 32;                  // 16-row tiles of a warp's S / dP block
  constexpr int kQueryWarps = kM / 32;           // dQ: warps along the queries
  constexpr int kQueryCols = kD * kQueryWarps / 8;  // dQ columns per warp
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sK = reinterpret_cast<T*>(smem_raw);  // [kN][kD]
  T* sV = sK + kN * kD;                    // [kN][kD]
  constexpr int kS = kShape.stages;
  T* sQ = sV + kN * kD;                    // kS stages of [kM][kD]
  T* sdO = sQ + kS * kM * kD;              // kS stages of [kM][kD]
  T* sP = sdO + kS * kM * kD;              // [kM][kN]
  T* sdS = sP + kM * kN;                   // [kM][kN]
  float* sLse = reinterpret_cast<float*>(sdS + kM * kN);  // kS x [kM], natural log as given
  float* sD = sLse + kS * kM;                             // kS x [kM]
  float* sdQ = sD + kS * kM;                              // [kM][kD + 4] (bulk_dq)
  constexpr bool kBulkDq = kShape.bulk_dq;
  constexpr int kDqPitch = dense_bwd_dq_pitch(kD);

  const int n0 = blockIdx.x * kN, hk = blockIdx.y, b = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  const int sq0 = (warp & 1) * (kM / 2), sk0 = (warp >> 1) * 32;   // S, dP block
  // dK / dV: warps 0-3 add to dV = P^T dO, warps 4-7 to dK = dS^T Q, keys gk0.. x all of d.
  // One product per warp, over all of d, loads each P^T / dS^T fragment once for twice the
  // mma (a quarter fewer ldmatrix than both products over half of d each, the same
  // accumulator registers). H100, kernel alone: d = 64 0.97-1.08x -> 1.02-1.13x of FA2's,
  // d = 128 1.01-1.09x -> 1.02-1.11x.
  const int gk0 = (warp & 3) * 32;
  const bool dv_warp = warp < 4;
  const int qq0 = (warp % kQueryWarps) * 32, qd0 = (warp / kQueryWarps) * kQueryCols;  // dQ block
  int prev_h = 0, prev_m0 = 0;  // the step whose dQ tile waits in sdQ
  // Threads 0..kM-1 each add one row of the staged dQ tile to the scratch (one bulk reduction).
  auto reduce_dq_tile = [&](int h_, int m0_) {
    if constexpr (kBulkDq) {
      const int r = threadIdx.x;
      if (r < kM && m0_ + r < p.seq_q) {
        float* dst = p.dq_accum + ((int64_t{b} * p.seq_q + m0_ + r) * p.heads_q + h_) * kD;
        bulk_reduce_add_f32<kD * 4>(dst, sdQ + r * kDqPitch);
      }
    }
  };

  copy_tile_async<T, kD, kN, kDenseBwdThreads>(
      sK, static_cast<const T*>(p.k) + b * p.k_stride.batch + hk * p.k_stride.head, p.k_stride.row, n0, p.seq_k);
  copy_tile_async<T, kD, kN, kDenseBwdThreads>(
      sV, static_cast<const T*>(p.v) + b * p.v_stride.batch + hk * p.v_stride.head, p.v_stride.row, n0, p.seq_k);

  const QueryWalk<kM> walk(p, n0);
  StepCursor<kM> cur(walk, p, hk), next = cur;  // this step's and the next copy's
  auto load_step = [&](const StepCursor<kM>& at, int stage) {
    stage_query_step_async<T, kD, kM, kDenseBwdThreads>(
        sQ + stage * kM * kD, sdO + stage * kM * kD, sLse + stage * kM, sD + stage * kM, p, b, at.h, at.m0);
  };

  float dkv[2][kD / 8][4];  // this warp's dV or dK block
#pragma unroll
  for (int mt = 0; mt < 2; ++mt)
#pragma unroll
    for (int nt = 0; nt < kD / 8; ++nt)
#pragma unroll
      for (int e = 0; e < 4; ++e) dkv[mt][nt][e] = 0.0f;

  // The ring: steps 0 .. kS - 2 are copied up front (one commit group each, K and V in the
  // first); step it + kS - 1 is copied at the top of step it into the stage step it - 1 used.
  static_assert(kS >= 2, "a ring of two or more stages");
#pragma unroll
  for (int ahead = 0; ahead < kS - 1; ++ahead) {
    if (ahead < walk.steps) load_step(next, ahead);
    cp_async_commit();
    next.advance();
  }
  int stage = 0, load_stage = kS - 1;
  for (int it = 0; it < walk.steps; ++it) {
    cp_async_wait<kS - 2>();  // all but the newest group: step `it` landed
    __syncthreads();          // ... for every thread; everyone is done with step it - 1's tiles
    if constexpr (kBulkDq) {
      if (it > 0) reduce_dq_tile(prev_h, prev_m0);  // the previous step's tile, complete now
    }
    if (it + kS - 1 < walk.steps) load_step(next, load_stage);
    cp_async_commit();
    next.advance();
    load_stage = load_stage == kS - 1 ? 0 : load_stage + 1;

    const int h = cur.h, m0 = cur.m0;
    const T* sQs = sQ + stage * kM * kD;
    const T* sdOs = sdO + stage * kM * kD;
    const float* sLses = sLse + stage * kM;
    const float* sDs = sD + stage * kM;
    const bool elementwise = (p.causal && n0 + kN - 1 > m0 + p.causal_offset) || n0 + kN > p.seq_k;

    // P = exp(scale S - lse), zero past the causal frontier and the last key (tested per
    // element only in the key blocks that reach them: a block-uniform branch).
    float pr[kSMt][4][4];
    warp_scores<T, kD, kSMt>(pr, sQs, sq0, sK, sk0, lane);
#pragma unroll
    for (int mt = 0; mt < kSMt; ++mt)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int il = sq0 + mt * 16 + g + half * 8;
        const float lse2 = m0 + il < p.seq_q ? lse_log2(sLses[il]) : CUDART_INF_F;
#pragma unroll
        for (int nt = 0; nt < 4; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            float& x = pr[mt][nt][half * 2 + e];
            x = ex2_approx(fmaf(x, p.scale_log2, -lse2));
          }
      }
    if (elementwise) {
#pragma unroll
      for (int mt = 0; mt < kSMt; ++mt)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int il = sq0 + mt * 16 + g + half * 8;
          const int64_t last = p.causal ? m0 + il + p.causal_offset : int64_t{p.seq_k} - 1;
          const int64_t limit = last < p.seq_k - 1 ? last : p.seq_k - 1;  // keys j <= limit
          const int64_t room = limit - (n0 + sk0 + 2 * t);  // the lane's key nt * 8 + e is kept if <= room
#pragma unroll
          for (int nt = 0; nt < 4; ++nt)
#pragma unroll
            for (int e = 0; e < 2; ++e)
              if (nt * 8 + e > room) pr[mt][nt][half * 2 + e] = 0.0f;
        }
    }
    store_score_block<T, kSMt>(sP, pr, sq0, sk0, lane);

    // dS = P (dP - D), dP = dO V^T.
    float ds[kSMt][4][4];
    warp_scores<T, kD, kSMt>(ds, sdOs, sq0, sV, sk0, lane);
#pragma unroll
    for (int mt = 0; mt < kSMt; ++mt)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const float d = sDs[sq0 + mt * 16 + g + half * 8];
#pragma unroll
        for (int nt = 0; nt < 4; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            float& x = ds[mt][nt][half * 2 + e];
            x = pr[mt][nt][half * 2 + e] * (x - d);
          }
      }
    store_score_block<T, kSMt>(sdS, ds, sq0, sk0, lane);
    if constexpr (kBulkDq) {  // the dQ tile's last reductions have read it: it may be rewritten
      if (threadIdx.x < kM) bulk_wait_reads();
    }
    __syncthreads();  // P and dS complete

    warp_grad_keys<T, kD, kD, kM>(dkv, dv_warp ? sP : sdS, gk0, dv_warp ? sdOs : sQs, 0, lane);
    {
      float dq[2][kQueryCols / 8][4];
      warp_grad_queries<T, kD, kQueryCols>(dq, sdS, qq0, sK, qd0, lane);
      // Rows of the scratch [batch][seq_q][heads_q][kD] for query m0 of head h, column qd0.
      if constexpr (kBulkDq) {
#pragma unroll
        for (int mt = 0; mt < 2; ++mt)
#pragma unroll
          for (int half = 0; half < 2; ++half) {
            float* row = sdQ + (qq0 + mt * 16 + g + half * 8) * kDqPitch + qd0 + 2 * t;
#pragma unroll
            for (int nt = 0; nt < kQueryCols / 8; ++nt)
              *reinterpret_cast<float2*>(row + nt * 8) = make_float2(dq[mt][nt][half * 2], dq[mt][nt][half * 2 + 1]);
          }
        // The TMA unit reads the tile through the async proxy: order these stores before it.
        fence_proxy_async_shared();
        prev_h = h, prev_m0 = m0;
      } else {
        const int64_t row_stride = int64_t{p.heads_q} * kD;
        add_dq_block<kQueryCols>(p.dq_accum + ((int64_t{b} * p.seq_q + m0) * p.heads_q + h) * kD + qd0, row_stride,
                                 dq, p.seq_q - m0, qq0, lane);
      }
    }
    cur.advance();
    stage = stage == kS - 1 ? 0 : stage + 1;
  }
  cp_async_wait<0>();  // nothing to do (causal): drain the K / V copies
  if constexpr (kBulkDq) {
    if (walk.steps > 0) {
      __syncthreads();  // the last tile complete
      reduce_dq_tile(prev_h, prev_m0);
    }
    bulk_wait_complete();
  }

  // dV, or dK times the scale (S = scale Q K^T): rows gk0.., all columns.
  auto store = [&](void* base, const BwdStrides3& st, bool as_float, const float (&acc)[2][kD / 8][4], float mul) {
#pragma unroll
    for (int mt = 0; mt < 2; ++mt)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int j = n0 + gk0 + mt * 16 + g + half * 8;
        if (j >= p.seq_k) continue;
        const int64_t off = b * st.batch + hk * st.head + int64_t{j} * st.row + 2 * t;
#pragma unroll
        for (int nt = 0; nt < kD / 8; ++nt) {
          const float x0 = acc[mt][nt][half * 2] * mul, x1 = acc[mt][nt][half * 2 + 1] * mul;
          if (as_float) store2<float>(static_cast<float*>(base) + off + nt * 8, x0, x1);
          else store2<T>(static_cast<T*>(base) + off + nt * 8, x0, x1);
        }
      }
  };
  if (dv_warp) store(p.dv, p.dv_stride, p.dv_float, dkv, 1.0f);
  else store(p.dk, p.dk_stride, p.dk_float, dkv, p.scale);
}

// Whether a call is the dense case (else the general kernel of flash_bwd_kernel.cuh runs).
inline bool dense_bwd_applies(const BwdParams& p) {
  return p.bias == nullptr && p.active == nullptr && p.softcap == 0.0f && !p.dropout &&
         p.dbias_accum == nullptr;
}

template <typename T, int kHeadDim>
cudaError_t launch_flash_bwd_dense(const BwdParams& p, cudaStream_t stream) {
  auto kernel = flash_bwd_dense_kernel<T, kHeadDim>;
  cudaFuncAttributes attributes;
  cudaError_t err = cudaFuncGetAttributes(&attributes, kernel);
  if (err != cudaSuccess) return err;
  const size_t smem = dense_bwd_smem_bytes(kHeadDim, dense_bwd_shape(kHeadDim, attributes.ptxVersion >= 90));
  err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (err != cudaSuccess) return err;
  const dim3 grid((p.seq_k + kDenseBwdBlockN - 1) / kDenseBwdBlockN, p.heads_kv, p.batch);
  kernel<<<grid, kDenseBwdThreads, smem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace attn::cuda::detail
