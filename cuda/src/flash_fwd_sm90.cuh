// The dense forward on Hopper (sm_90a): Q K^T and P V by warpgroup matrix products (wgmma)
// instead of mma.sync. A thread block of two warpgroups owns 128 queries (64 each) and walks
// the key tiles of 128; Q, K and V sit in shared memory in wgmma's 128-byte swizzled layout
// (panels of 64 columns: 16-byte chunk c of row r at chunk c ^ (r & 7)), copied by cp.async,
// K / V two stages deep. S = Q K^T reads both operands from shared memory; P stays in
// registers as the A operand of O += P V (its accumulator layout is the A fragment), V is
// read transposed. The online softmax is the mma.sync kernel's (flash_fwd_kernel.cuh): log2
// units, lazy rescaling. Covers the dense case (no bias, mask, softcap, dropout or softmax
// out), causal with any offset, sliding windows, GQA.
#pragma once
#include <math_constants.h>

#include "fwd_params.h"
#include "mma_sm80.cuh"
#include "wgmma_sm90.cuh"

namespace attn::cuda::detail {

constexpr int kSm90BlockM = 128, kSm90BlockN = 128, kSm90Threads = 256;
constexpr int kPanelRows = 128;                 // every tile here has 128 rows
constexpr int kPanelBytes = kPanelRows * 128;  // one 64-column panel of a tile

template <int kHeadDim>
constexpr size_t sm90_fwd_smem_bytes() {
  // Q, then two stages of K and V; + 1 KB to align the base to the swizzle's 1024 bytes.
  return size_t{kHeadDim / 64} * kPanelBytes * 5 + 1024;
}

// Copies rows row0.. of a [rows][kHeadDim] 16-bit tensor (rows at row_stride elements) into
// the swizzled panels at `tile`; rows at or past `rows` are zero-filled.
template <typename T, int kHeadDim>
__device__ __forceinline__ void load_swizzled_tile(uint32_t tile, const T* src, int64_t row_stride, int row0,
                                                   int rows) {
  constexpr int kChunks = kHeadDim / 8;  // 16-byte chunks per row
  constexpr int kPerThread = kPanelRows * kChunks / kSm90Threads;
#pragma unroll
  for (int it = 0; it < kPerThread; ++it) {
    const int c = it * kSm90Threads + threadIdx.x;
    const int r = c / kChunks, chunk = c % kChunks;
    const bool valid = row0 + r < rows;
    const T* from = src + int64_t{valid ? row0 + r : 0} * row_stride + chunk * 8;
    const uint32_t to = tile + (chunk / 8) * kPanelBytes + r * 128 + (((chunk & 7) ^ (r & 7)) << 4);
    cp_async_16(to, from, valid);
  }
}

template <typename T, int kHeadDim>
__global__ void __launch_bounds__(kSm90Threads, 1) flash_fwd_sm90_kernel(const FwdParams p) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  constexpr int kPanels = kHeadDim / 64;
  constexpr int kTileBytes = kPanels * kPanelBytes;
  extern __shared__ unsigned char smem_raw[];
  const uint32_t base = (smem_address(smem_raw) + 1023) & ~1023u;
  const uint32_t sQ = base, sK = base + kTileBytes, sV = base + 3 * kTileBytes;  // K, V: 2 stages

  const int m_block = gridDim.x - 1 - blockIdx.x;  // last (longest under causal) blocks first
  const int h = blockIdx.y, b = blockIdx.z, hk = h / p.group;
  const int wg = threadIdx.x >> 7, warp = (threadIdx.x >> 5) & 3, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  const int m0 = m_block * kSm90BlockM;
  const int row0 = m0 + wg * 64 + warp * 16 + g;  // this thread's rows: row0, row0 + 8

  const T* q = static_cast<const T*>(p.q) + b * p.q_stride.batch + h * p.q_stride.head;
  const T* k = static_cast<const T*>(p.k) + b * p.k_stride.batch + hk * p.k_stride.head;
  const T* v = static_cast<const T*>(p.v) + b * p.v_stride.batch + hk * p.v_stride.head;

  // Key tiles [n_begin, n_end) that some row of the block can see (as in flash_fwd_kernel).
  const int k_tiles = (p.seq_k + kSm90BlockN - 1) / kSm90BlockN;
  const int64_t last_row = min(m0 + kSm90BlockM, p.seq_q) - 1;
  int n_end = k_tiles, n_begin = 0;
  auto clip_end = [&](int64_t visible) {
    const int64_t tiles = visible <= 0 ? 0 : (visible + kSm90BlockN - 1) / kSm90BlockN;
    if (tiles < n_end) n_end = static_cast<int>(tiles);
  };
  if (p.causal) clip_end(last_row + p.causal_offset + 1);
  if (p.window_right >= 0) clip_end(last_row + p.causal_offset + p.window_right + 1);
  if (p.window_left >= 0) {
    const int64_t first_key = int64_t{m0} + p.causal_offset - p.window_left;
    n_begin = static_cast<int>(first_key <= 0 ? 0 : first_key / kSm90BlockN);
  }

  load_swizzled_tile<T, kHeadDim>(sQ, q, p.q_stride.row, m0, p.seq_q);
  if (n_begin < n_end) {
    load_swizzled_tile<T, kHeadDim>(sK, k, p.k_stride.row, n_begin * kSm90BlockN, p.seq_k);
    load_swizzled_tile<T, kHeadDim>(sV, v, p.v_stride.row, n_begin * kSm90BlockN, p.seq_k);
  }
  cp_async_commit();

  float o[kPanels][32];  // O rows row0 / row0 + 8, columns 64 * panel + ...
#pragma unroll
  for (int pn = 0; pn < kPanels; ++pn)
#pragma unroll
    for (int i = 0; i < 32; ++i) o[pn][i] = 0.0f;
  float row_max[2] = {-CUDART_INF_F, -CUDART_INF_F}, row_sum[2] = {0.0f, 0.0f};
  const float factor = p.scale_log2;
  constexpr float kSlack = 8.0f;  // lazy rescaling, as flash_fwd_kernel

  // This warpgroup's 64 rows of Q, K-major.
  const uint32_t q_rows = sQ + wg * 64 * 128;
  int stage = 0;
  for (int nb = n_begin; nb < n_end; ++nb) {
    cp_async_wait<0>();
    fence_proxy_async_shared();  // the copies' writes, before wgmma reads them (async proxy)
    __syncthreads();             // ... for every thread; the other stage is free (tile nb - 1 done)
    if (nb + 1 < n_end) {
      load_swizzled_tile<T, kHeadDim>(sK + (stage ^ 1) * kTileBytes, k, p.k_stride.row, (nb + 1) * kSm90BlockN, p.seq_k);
      load_swizzled_tile<T, kHeadDim>(sV + (stage ^ 1) * kTileBytes, v, p.v_stride.row, (nb + 1) * kSm90BlockN, p.seq_k);
    }
    cp_async_commit();
    const uint32_t k_tile = sK + stage * kTileBytes, v_tile = sV + stage * kTileBytes;

    // S = Q K^T: 64 x 128 per warpgroup, k16 steps along the head dim (32 bytes within a
    // panel's 128-byte rows).
    float s[64];
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < kHeadDim / 16; ++kk) {
      const uint32_t offset = (kk / 4) * kPanelBytes + (kk % 4) * 32;
      wgmma_m64n128k16_ss<T>(s, sw128_descriptor(q_rows + offset, 16, 1024),
                             sw128_descriptor(k_tile + offset, 16, 1024), kk > 0);
    }
    wgmma_commit();
    wgmma_wait<0>();
    pin_registers(s);

    // Keys past the causal frontier, a window edge or the last key: -inf (edge tiles only).
    const int j0 = nb * kSm90BlockN;
    const bool edges = (p.causal && j0 + kSm90BlockN - 1 > m0 + p.causal_offset) || j0 + kSm90BlockN > p.seq_k ||
                       (p.window_left >= 0 && j0 < last_row + p.causal_offset - p.window_left) ||
                       (p.window_right >= 0 && j0 + kSm90BlockN - 1 > int64_t{m0} + p.causal_offset + p.window_right);
    if (edges) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int64_t i = row0 + half * 8;
        int64_t last = p.causal ? i + p.causal_offset : int64_t{p.seq_k} - 1;
        if (p.window_right >= 0 && i + p.causal_offset + p.window_right < last) last = i + p.causal_offset + p.window_right;
        if (last > p.seq_k - 1) last = p.seq_k - 1;
        const int64_t first = p.window_left >= 0 ? i + p.causal_offset - p.window_left : 0;
#pragma unroll
        for (int nt = 0; nt < 16; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int64_t j = j0 + nt * 8 + 2 * t + e;
            if (j > last || j < first) s[nt * 4 + half * 2 + e] = -CUDART_INF_F;
          }
      }
    }

    // Online softmax per row (half 0: row0, half 1: row0 + 8), as flash_fwd_kernel.
    float tile_max[2];
    bool grow = false;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float mx = -CUDART_INF_F;
#pragma unroll
      for (int nt = 0; nt < 16; ++nt) mx = fmaxf(mx, fmaxf(s[nt * 4 + half * 2], s[nt * 4 + half * 2 + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      tile_max[half] = mx * factor;
      grow = grow || tile_max[half] > row_max[half] + kSlack;
    }
    if (__any_sync(0xffffffffu, grow)) {
      float alpha[2];
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const bool move = tile_max[half] > row_max[half] + kSlack;
        alpha[half] = move ? ex2_approx(row_max[half] - tile_max[half]) : 1.0f;
        if (move) row_max[half] = tile_max[half];
        row_sum[half] *= alpha[half];
      }
#pragma unroll
      for (int pn = 0; pn < kPanels; ++pn)
#pragma unroll
        for (int i = 0; i < 32; ++i) o[pn][i] *= alpha[(i >> 1) & 1];
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

    // O += P V: P's k16 slice kk is n8 blocks 2kk and 2kk + 1 of S; V's rows kk * 16.. (8-row
    // groups 1024 bytes apart), one wgmma per 64-column panel.
    uint32_t a[8][4];
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) {
      a[kk][0] = pack2<T>(s[8 * kk + 0], s[8 * kk + 1]);
      a[kk][1] = pack2<T>(s[8 * kk + 2], s[8 * kk + 3]);
      a[kk][2] = pack2<T>(s[8 * kk + 4], s[8 * kk + 5]);
      a[kk][3] = pack2<T>(s[8 * kk + 6], s[8 * kk + 7]);
    }
    wgmma_fence();
#pragma unroll
    for (int kk = 0; kk < 8; ++kk)
#pragma unroll
      for (int pn = 0; pn < kPanels; ++pn)
        wgmma_m64n64k16_rs_tb<T>(o[pn], a[kk], sw128_descriptor(v_tile + pn * kPanelBytes + kk * 2048, kPanelBytes, 1024));
    wgmma_commit();
    wgmma_wait<0>();
#pragma unroll
    for (int pn = 0; pn < kPanels; ++pn) pin_registers(o[pn]);
#pragma unroll
    for (int kk = 0; kk < 8; ++kk) pin_registers(a[kk]);
    stage ^= 1;
  }
  cp_async_wait<0>();

  // Epilogue: finish the row sums across the quad, normalise, store O and lse.
  T* out = static_cast<T*>(p.out) + b * p.o_stride.batch + h * p.o_stride.head;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float sum = row_sum[half];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    const float inv = sum > 0.0f ? 1.0f / sum : 0.0f;
    const int i = row0 + half * 8;
    if (i >= p.seq_q) continue;
    T* orow = out + i * p.o_stride.row;
#pragma unroll
    for (int pn = 0; pn < kPanels; ++pn)
#pragma unroll
      for (int nt = 0; nt < 8; ++nt)
        store2<T>(orow + pn * 64 + nt * 8 + 2 * t, o[pn][nt * 4 + half * 2] * inv, o[pn][nt * 4 + half * 2 + 1] * inv);
    if (p.lse != nullptr && t == 0) {
      constexpr float kLn2 = 0.6931471805599453f;
      p.lse[b * p.lse_stride.batch + h * p.lse_stride.head + i * p.lse_stride.row] =
          sum > 0.0f ? row_max[half] * kLn2 + logf(sum) : -CUDART_INF_F;
    }
  }
#endif
}

template <typename T, int kHeadDim>
cudaError_t launch_flash_fwd_sm90(const FwdParams& p, cudaStream_t stream) {
  auto kernel = flash_fwd_sm90_kernel<T, kHeadDim>;
  constexpr size_t smem = sm90_fwd_smem_bytes<kHeadDim>();
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (err != cudaSuccess) return err;
  const dim3 grid((p.seq_q + kSm90BlockM - 1) / kSm90BlockM, p.heads_q, p.batch);
  kernel<<<grid, kSm90Threads, smem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace attn::cuda::detail
