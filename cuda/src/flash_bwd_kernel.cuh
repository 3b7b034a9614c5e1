// The general flash-attention backward kernel (bias, active mask, softcap, dropout, dbias;
// the dense case runs flash_bwd_dense_kernel.cuh instead). FlashAttention-2 algorithm,
// sm_80+ mma.sync: one
// thread block per (64 keys, kv head, batch); 4 warps, each owning 16 keys. K and V stay
// in shared memory; the block walks every (query head of the kv group, query block) pair
// the causal rule leaves, with Q / dO tiles double-buffered through cp.async. dK and dV
// accumulate in registers over the whole walk (so GQA sums are deterministic); dQ goes to
// a float32 scratch with atomicAdd.
//
// Each warp works on transposed scores S^T (rows = its keys, columns = queries): then P^T
// and dS^T sit in mma accumulators in exactly the A layout that dV += P^T dO and
// dK += dS^T Q need. dQ = dS K needs dS with queries as rows, so dS^T goes through shared
// memory as 16-bit and comes back with ldmatrix.trans.
#pragma once
#include <cuda_fp16.h>
#include <math_constants.h>

#include "bwd_delta.cuh"
#include "bwd_params.h"
#include "bwd_walk.cuh"
#include "flash_bwd_dense_kernel.cuh"
#include "mask_access.cuh"
#include "mma_sm80.cuh"
#include "sm90_dispatch.h"
#include "smem_tile.cuh"

namespace attn::cuda::detail {

// Rows [row0, row0 + kRows) of a [rows][kCols] global matrix into a swizzled tile; rows
// at or past `limit` are zero-filled (their scores then come out as 0 and the masks or
// lse = +inf give them zero weight).
template <typename T, int kCols, int kRows>
__device__ __forceinline__ void bwd_load_tile(T* smem, const T* gmem, int64_t row_stride,
                                              int row0, int limit) {
  copy_tile_async<T, kCols, kRows, kBwdThreads>(smem, gmem, row_stride, row0, limit);
}

// C[16 x kN] = A . B^T with A = rows [row0, row0 + 16) of sA and B = the kN rows of sB,
// both [rows][kDim] in shared memory (S^T = K Q^T and dP^T = V dO^T).
template <typename T, int kDim, int kN>
__device__ __forceinline__ void gemm_rows_nt(float (&c)[kN / 8][4], const T* sA, int row0,
                                             const T* sB, int lane) {
#pragma unroll
  for (int nt = 0; nt < kN / 8; ++nt) c[nt][0] = c[nt][1] = c[nt][2] = c[nt][3] = 0.0f;
  const int m = lane >> 3, r = lane & 7;
#pragma unroll
  for (int kk = 0; kk < kDim / 16; ++kk) {
    uint32_t a[4];
    ldmatrix_x4(a, sA + swizzled<kDim>(row0 + (m & 1) * 8 + r, kk * 2 + (m >> 1)));
#pragma unroll
    for (int np = 0; np < kN / 16; ++np) {
      uint32_t b[4];
      ldmatrix_x4(b, sB + swizzled<kDim>(np * 16 + (m >> 1) * 8 + r, kk * 2 + (m & 1)));
      MmaOp<T>::run(c[2 * np], a, b[0], b[1]);
      MmaOp<T>::run(c[2 * np + 1], a, b[2], b[3]);
    }
  }
}

// acc[16 x kDim] += A . B with A in registers (k16 slices already packed, accumulator
// layout of a [16 x kK] product) and B = [kK][kDim] rows of shared memory read through
// ldmatrix.trans (dV += P^T dO, dK += dS^T Q).
template <typename T, int kK, int kDim>
__device__ __forceinline__ void gemm_regs_nn(float (&acc)[kDim / 8][4],
                                             const uint32_t (&a)[kK / 16][4], const T* sB,
                                             int lane) {
  const int m = lane >> 3, r = lane & 7;
#pragma unroll
  for (int kc = 0; kc < kK / 16; ++kc) {
#pragma unroll
    for (int dp = 0; dp < kDim / 16; ++dp) {
      uint32_t b[4];
      ldmatrix_x4_trans(b, sB + swizzled<kDim>(kc * 16 + (m & 1) * 8 + r, dp * 2 + (m >> 1)));
      MmaOp<T>::run(acc[2 * dp], a[kc], b[0], b[1]);
      MmaOp<T>::run(acc[2 * dp + 1], a[kc], b[2], b[3]);
    }
  }
}

// Float accumulators [16 x kK] -> the A fragments of the next product (two n8 tiles make
// one k16 slice; this is the identity between the C and A layouts of m16n8k16).
template <typename T, int kK>
__device__ __forceinline__ void pack_a(uint32_t (&a)[kK / 16][4], const float (&c)[kK / 8][4]) {
#pragma unroll
  for (int kc = 0; kc < kK / 16; ++kc) {
    a[kc][0] = pack2<T>(c[2 * kc][0], c[2 * kc][1]);
    a[kc][1] = pack2<T>(c[2 * kc][2], c[2 * kc][3]);
    a[kc][2] = pack2<T>(c[2 * kc + 1][0], c[2 * kc + 1][1]);
    a[kc][3] = pack2<T>(c[2 * kc + 1][2], c[2 * kc + 1][3]);
  }
}

// Per-element position of accumulator element (nt, e4) of this thread in a warp's S^T
// tile: key row g (+8 for e4 >= 2), query column nt * 8 + 2t + (e4 & 1).
__device__ __forceinline__ int acc_query(int nt, int e4, int t) { return nt * 8 + 2 * t + (e4 & 1); }

// S^T -> P^T = exp(rules(S) - lse), exactly the forward's rules (scale, softcap, bias,
// causal, active mask, bounds). Also returns the softcap derivative 1 - tanh^2 (as half2,
// enough for a factor in [0, 1]) and the dropout keep bits (bit nt * 4 + e4).
template <int kBlockM>
struct ProbRules {
  const BwdParams& p;
  int b, hk, h;

  __device__ __forceinline__ void apply(float (&s)[kBlockM / 8][4], __half2 (&dcap)[kBlockM / 8][2],
                                        uint32_t& keep_bits, const float* sLse, int j_row,
                                        int m0, int t, bool elementwise) const {
    constexpr float kLog2e = 1.4426950408889634f;
#pragma unroll
    for (int nt = 0; nt < kBlockM / 8; ++nt) {
      float dc[4] = {1.0f, 1.0f, 1.0f, 1.0f};
#pragma unroll
      for (int e4 = 0; e4 < 4; ++e4) {
        const int il = acc_query(nt, e4, t);
        const float lse2 = sLse[il];  // +inf for rows that get no weight
        if (!elementwise) {
          s[nt][e4] = exp2f(s[nt][e4] * p.scale_log2 - lse2);
          continue;
        }
        const int i = m0 + il, j = j_row + (e4 >> 1) * 8;
        float x = s[nt][e4] * p.scale;
        if (p.softcap > 0.0f) {
          const float th = tanhf(x / p.softcap);
          x = p.softcap * th;
          dc[e4] = 1.0f - th * th;
        }
        bool keep = i < p.seq_q && j < p.seq_k && (!p.causal || j <= i + p.causal_offset);
        if (keep && p.bias != nullptr) {
          x += load_as_float(p.bias, p.bias_dtype,
                             b * p.bias_stride.batch + hk * p.bias_stride.head +
                                 int64_t{i} * p.bias_stride.row + int64_t{j} * p.bias_stride.col);
        }
        if (keep && p.active != nullptr) {
          keep = load_as_float(p.active, p.active_dtype,
                               b * p.active_stride.batch + hk * p.active_stride.head +
                                   int64_t{i} * p.active_stride.row +
                                   int64_t{j} * p.active_stride.col) != 0.0f;
        }
        s[nt][e4] = keep ? exp2f(x * kLog2e - lse2) : 0.0f;
      }
      dcap[nt][0] = __floats2half2_rn(dc[0], dc[1]);
      dcap[nt][1] = __floats2half2_rn(dc[2], dc[3]);
    }
    keep_bits = ~0u;
    if (!p.dropout) return;
    keep_bits = 0;
#pragma unroll
    for (int nt = 0; nt < kBlockM / 8; ++nt)
#pragma unroll
      for (int e4 = 0; e4 < 4; ++e4) {
        const int i = m0 + acc_query(nt, e4, t), j = j_row + (e4 >> 1) * 8;
        const uint64_t element = ((uint64_t(b) * p.heads_q + h) * p.seq_q + i) * p.seq_k + j;
        if (p.rng.keep(element)) keep_bits |= 1u << (nt * 4 + e4);
      }
  }
};

// dP^T -> dS^T = P (dP - D) (dP first dropped like P was), adding dS into the dbias scratch
// (before the softcap factor: the bias is added after the cap), then the softcap factor.
template <int kBlockM>
__device__ __forceinline__ void grad_scores(float (&dp)[kBlockM / 8][4], const float (&pr)[kBlockM / 8][4],
                                            const __half2 (&dcap)[kBlockM / 8][2], uint32_t keep_bits,
                                            const float* sD, const BwdParams& p, int b, int hk,
                                            int j_row, int m0, int t) {
  const float keep_scale = p.rng.keep_scale();
#pragma unroll
  for (int nt = 0; nt < kBlockM / 8; ++nt) {
    const float2 dc0 = __half22float2(dcap[nt][0]), dc1 = __half22float2(dcap[nt][1]);
    const float dc[4] = {dc0.x, dc0.y, dc1.x, dc1.y};
#pragma unroll
    for (int e4 = 0; e4 < 4; ++e4) {
      const int il = acc_query(nt, e4, t);
      float g = dp[nt][e4];
      if (p.dropout) g = (keep_bits >> (nt * 4 + e4)) & 1u ? g * keep_scale : 0.0f;
      float ds = pr[nt][e4] * (g - sD[il]);
      if (p.dbias_accum != nullptr && ds != 0.0f) {
        const int64_t i = m0 + il, j = j_row + (e4 >> 1) * 8;
        atomicAdd(p.dbias_accum + ((int64_t{b} * p.heads_kv + hk) * p.seq_q + i) * p.seq_k + j, ds);
      }
      if (p.softcap > 0.0f) ds *= dc[e4];
      dp[nt][e4] = ds;
    }
  }
}

// dQ tile (16 queries x 64 head-dim columns) = dS K for the block's 64 keys, added to the
// float32 scratch (unscaled: the store kernel multiplies by the scale of S = scale Q K^T).
template <typename T, int kHeadDim, int kBlockM>
__device__ __forceinline__ void add_dq_tile(const T* sdS, const T* sK, int qt, int dh,
                                            const BwdParams& p, int b, int h, int m0, int lane) {
  float acc[8][4];
#pragma unroll
  for (int nt = 0; nt < 8; ++nt) acc[nt][0] = acc[nt][1] = acc[nt][2] = acc[nt][3] = 0.0f;
  const int m = lane >> 3, r = lane & 7;
#pragma unroll
  for (int kc = 0; kc < kBwdBlockN / 16; ++kc) {
    uint32_t a[4];  // dS rows = queries: the transpose of the stored [key][query] tile
    ldmatrix_x4_trans(a, sdS + swizzled<kBlockM>(kc * 16 + (m >> 1) * 8 + r, qt * 2 + (m & 1)));
#pragma unroll
    for (int dp = 0; dp < 4; ++dp) {
      uint32_t bk[4];
      ldmatrix_x4_trans(bk, sK + swizzled<kHeadDim>(kc * 16 + (m & 1) * 8 + r, dh * 8 + dp * 2 + (m >> 1)));
      MmaOp<T>::run(acc[2 * dp], a, bk[0], bk[1]);
      MmaOp<T>::run(acc[2 * dp + 1], a, bk[2], bk[3]);
    }
  }
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int i = m0 + qt * 16 + g + half * 8;
    if (i >= p.seq_q) continue;
    float* row = p.dq_accum + ((int64_t{b} * p.seq_q + i) * p.heads_q + h) * kHeadDim + dh * 64 + 2 * t;
#pragma unroll
    for (int nt = 0; nt < 8; ++nt) {
      atomicAdd(row + nt * 8, acc[nt][half * 2]);
      atomicAdd(row + nt * 8 + 1, acc[nt][half * 2 + 1]);
    }
  }
}

// Stores a warp's 16 x kHeadDim accumulator rows (keys j_row, j_row + 8) as T or float.
template <typename T, int kHeadDim>
__device__ __forceinline__ void store_rows(void* base, const BwdStrides3& st, bool as_float,
                                           const float (&acc)[kHeadDim / 8][4], float mul,
                                           const BwdParams& p, int b, int hk, int j_row, int t) {
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int j = j_row + half * 8;
    if (j >= p.seq_k) continue;
    const int64_t off = b * st.batch + hk * st.head + int64_t{j} * st.row + 2 * t;
#pragma unroll
    for (int dt = 0; dt < kHeadDim / 8; ++dt) {
      const float x0 = acc[dt][half * 2] * mul, x1 = acc[dt][half * 2 + 1] * mul;
      if (as_float) store2<float>(static_cast<float*>(base) + off + dt * 8, x0, x1);
      else store2<T>(static_cast<T*>(base) + off + dt * 8, x0, x1);
    }
  }
}

template <typename T, int kHeadDim>
__global__ void __launch_bounds__(kBwdThreads, 2) flash_bwd_kernel(const BwdParams p) {
  constexpr int kBlockM = bwd_block_m<kHeadDim>();
  constexpr int kBlockN = kBwdBlockN;
  constexpr int kTilesM = kBlockM / 8;
  constexpr int kTilesD = kHeadDim / 8;
  static_assert(kTilesM * 4 <= 32, "dropout keep bits must fit one word");
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sK = reinterpret_cast<T*>(smem_raw);  // [64][d]
  T* sV = sK + kBlockN * kHeadDim;         // [64][d]
  T* sQ = sV + kBlockN * kHeadDim;         // 2 stages of [M][d]
  T* sdO = sQ + 2 * kBlockM * kHeadDim;    // 2 stages of [M][d]
  T* sdS = sdO + 2 * kBlockM * kHeadDim;   // [64 keys][M queries]
  float* sLse = reinterpret_cast<float*>(sdS + kBlockN * kBlockM);  // 2 x [M], log2 units
  float* sD = sLse + 2 * kBlockM;                                   // 2 x [M]

  const int n0 = blockIdx.x * kBlockN, hk = blockIdx.y, b = blockIdx.z;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, t = lane & 3;
  const int j_row = n0 + warp * 16 + (lane >> 2);  // this thread's first key (+8: second)

  bwd_load_tile<T, kHeadDim, kBlockN>(sK, static_cast<const T*>(p.k) + b * p.k_stride.batch + hk * p.k_stride.head,
                                      p.k_stride.row, n0, p.seq_k);
  bwd_load_tile<T, kHeadDim, kBlockN>(sV, static_cast<const T*>(p.v) + b * p.v_stride.batch + hk * p.v_stride.head,
                                      p.v_stride.row, n0, p.seq_k);

  const QueryWalk<kBlockM> walk(p, n0);
  auto load_step = [&](int it, int stage) {
    stage_query_step<T, kHeadDim, kBlockM, kBwdThreads>(
        sQ + stage * kBlockM * kHeadDim, sdO + stage * kBlockM * kHeadDim,
        sLse + stage * kBlockM, sD + stage * kBlockM, p, b, walk.head(p, hk, it), walk.first_query(it));
  };

  float dk[kTilesD][4], dv[kTilesD][4];
#pragma unroll
  for (int d = 0; d < kTilesD; ++d)
#pragma unroll
    for (int e = 0; e < 4; ++e) dk[d][e] = dv[d][e] = 0.0f;
  const bool any_rules = p.bias != nullptr || p.active != nullptr || p.softcap > 0.0f ||
                         n0 + kBlockN > p.seq_k;

  if (walk.steps > 0) load_step(0, 0);
  cp_async_commit();
  int stage = 0;
  for (int it = 0; it < walk.steps; ++it) {
    cp_async_wait<0>();
    __syncthreads();  // step `it` landed; everyone is done with step it - 1's buffers
    if (it + 1 < walk.steps) load_step(it + 1, stage ^ 1);
    cp_async_commit();

    const int h = walk.head(p, hk, it), m0 = walk.first_query(it);
    const T* sQs = sQ + stage * kBlockM * kHeadDim;
    const T* sdOs = sdO + stage * kBlockM * kHeadDim;
    const float* sLses = sLse + stage * kBlockM;
    const float* sDs = sD + stage * kBlockM;

    // P^T for this warp's 16 keys x kBlockM queries.
    float pr[kTilesM][4];
    __half2 dcap[kTilesM][2];
    uint32_t keep_bits;
    gemm_rows_nt<T, kHeadDim, kBlockM>(pr, sK, warp * 16, sQs, lane);
    const bool crosses = p.causal && n0 + kBlockN - 1 > m0 + p.causal_offset;
    ProbRules<kBlockM>{p, b, hk, h}.apply(pr, dcap, keep_bits, sLses, j_row, m0, t, any_rules || crosses);

    {  // dV += dropout(P)^T dO
      float pd[kTilesM][4];
#pragma unroll
      for (int nt = 0; nt < kTilesM; ++nt)
#pragma unroll
        for (int e4 = 0; e4 < 4; ++e4)
          pd[nt][e4] = (keep_bits >> (nt * 4 + e4)) & 1u ? pr[nt][e4] * (p.dropout ? p.rng.keep_scale() : 1.0f) : 0.0f;
      uint32_t a[kBlockM / 16][4];
      pack_a<T, kBlockM>(a, pd);
      gemm_regs_nn<T, kBlockM, kHeadDim>(dv, a, sdOs, lane);
    }

    // dS^T from dP^T = V dO^T, then dK += dS^T Q and dS^T to shared memory for dQ.
    float ds[kTilesM][4];
    gemm_rows_nt<T, kHeadDim, kBlockM>(ds, sV, warp * 16, sdOs, lane);
    grad_scores<kBlockM>(ds, pr, dcap, keep_bits, sDs, p, b, hk, j_row, m0, t);
    {
      uint32_t a[kBlockM / 16][4];
      pack_a<T, kBlockM>(a, ds);
      gemm_regs_nn<T, kBlockM, kHeadDim>(dk, a, sQs, lane);
      const int kr = warp * 16 + (lane >> 2);
#pragma unroll
      for (int kc = 0; kc < kBlockM / 16; ++kc) {  // a[kc] = rows kr, kr + 8; chunks 2kc, 2kc+1
        *reinterpret_cast<uint32_t*>(sdS + swizzled<kBlockM>(kr, 2 * kc) + 2 * t) = a[kc][0];
        *reinterpret_cast<uint32_t*>(sdS + swizzled<kBlockM>(kr + 8, 2 * kc) + 2 * t) = a[kc][1];
        *reinterpret_cast<uint32_t*>(sdS + swizzled<kBlockM>(kr, 2 * kc + 1) + 2 * t) = a[kc][2];
        *reinterpret_cast<uint32_t*>(sdS + swizzled<kBlockM>(kr + 8, 2 * kc + 1) + 2 * t) = a[kc][3];
      }
    }
    __syncthreads();  // dS^T complete

    // dQ: (kBlockM / 16) query tiles x (kHeadDim / 64) column halves over the 4 warps.
    constexpr int kDqTiles = (kBlockM / 16) * (kHeadDim / 64);
#pragma unroll
    for (int tile = warp; tile < kDqTiles; tile += kBwdWarps)
      add_dq_tile<T, kHeadDim, kBlockM>(sdS, sK, tile % (kBlockM / 16), tile / (kBlockM / 16), p, b, h, m0, lane);
    stage ^= 1;
  }
  cp_async_wait<0>();  // nothing to do (causal): drain the K / V copies

  store_rows<T, kHeadDim>(p.dk, p.dk_stride, p.dk_float, dk, p.scale, p, b, hk, j_row, t);
  store_rows<T, kHeadDim>(p.dv, p.dv_stride, p.dv_float, dv, 1.0f, p, b, hk, j_row, t);
}

template <typename T, int kHeadDim>
cudaError_t launch_flash_bwd(const BwdParams& p, cudaStream_t stream) {
  if (dense_bwd_applies(p) && use_sm90_kernels()) {
    const cudaError_t err = launch_flash_bwd_sm90<T, kHeadDim>(p, stream);  // (its own D pass)
    if (err != cudaErrorNotSupported) return err;  // else tensors TMA cannot describe: mma.sync
  }
  cudaError_t err = launch_delta<T, kHeadDim>(p, true, 0, stream);
  if (err != cudaSuccess) return err;
  if (dense_bwd_applies(p)) return launch_flash_bwd_dense<T, kHeadDim>(p, stream);
  constexpr int kBlockM = bwd_block_m<kHeadDim>();
  constexpr size_t kSmem = sizeof(T) * (2 * kBwdBlockN * kHeadDim + 4 * kBlockM * kHeadDim + kBwdBlockN * kBlockM) +
                           sizeof(float) * 4 * kBlockM;
  auto kernel = flash_bwd_kernel<T, kHeadDim>;
  err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kSmem));
  if (err != cudaSuccess) return err;
  const dim3 grid((p.seq_k + kBwdBlockN - 1) / kBwdBlockN, p.heads_kv, p.batch);
  kernel<<<grid, kBwdThreads, kSmem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace attn::cuda::detail
