// The flash-attention forward kernel (sm_80+, mma.sync): one thread block per 128 queries
// of one (batch, head); 8 warps, each owning 16 query rows. Q stays in registers; K and V
// tiles of 64 keys stream through two shared-memory stages with cp.async so that the copy
// of tile j+1 overlaps the math of tile j. Scores and the online softmax live in the mma
// accumulators; P is re-packed in registers as the A operand of P.V (no shared memory).
#pragma once
#include <math_constants.h>

#include "fwd_params.h"
#include "mask_access.cuh"
#include "mma_sm80.cuh"

namespace attn::cuda::detail {

// Shared-memory rows are 16-byte chunks XOR-swizzled by (row % 8), so the 8 rows one
// ldmatrix reads at the same column sit in 8 different bank groups.
template <int kHeadDim>
__device__ __forceinline__ int swizzled(int row, int chunk) {
  return row * kHeadDim + ((chunk ^ (row & 7)) << 3);
}

// Copies rows [row0, row0 + kRows) of a [rows][kHeadDim] global matrix (row stride in
// elements) into swizzled shared memory; rows at or past `limit` are zero-filled.
template <typename T, int kHeadDim, int kRows>
__device__ __forceinline__ void load_tile(T* smem, const T* gmem, int64_t row_stride, int row0,
                                          int limit) {
  constexpr int kChunks = kHeadDim / 8;
  for (int c = threadIdx.x; c < kRows * kChunks; c += kFwdThreads) {
    const int r = c / kChunks, chunk = c % kChunks;
    const bool valid = row0 + r < limit;
    const T* src = valid ? gmem + (row0 + r) * row_stride + chunk * 8 : gmem;
    cp_async_16(smem + swizzled<kHeadDim>(r, chunk), src, valid);
  }
}

// S (16 rows x 64 keys of this warp) = Q . K^T for the key tile in `sK`.
template <typename T, int kHeadDim>
__device__ __forceinline__ void tile_scores(float (&s)[kBlockN / 8][4],
                                            const uint32_t (&qf)[kHeadDim / 16][4], const T* sK,
                                            int lane) {
#pragma unroll
  for (int nt = 0; nt < kBlockN / 8; ++nt) s[nt][0] = s[nt][1] = s[nt][2] = s[nt][3] = 0.0f;
  const int m = lane >> 3, r = lane & 7;
#pragma unroll
  for (int kk = 0; kk < kHeadDim / 16; ++kk) {
#pragma unroll
    for (int np = 0; np < kBlockN / 16; ++np) {
      uint32_t b[4];
      ldmatrix_x4(b, sK + swizzled<kHeadDim>(np * 16 + (m >> 1) * 8 + r, kk * 2 + (m & 1)));
      MmaOp<T>::run(s[2 * np], qf[kk], b[0], b[1]);
      MmaOp<T>::run(s[2 * np + 1], qf[kk], b[2], b[3]);
    }
  }
}

// The per-element score rules of one tile (scale, softcap, bias, masks), in log2 units.
// `rows[2]` are this thread's two query rows, keys j0 + nt*8 + 2t + e.
struct ScoreRules {
  const FwdParams& p;
  int b, hk;
  __device__ __forceinline__ void apply(float (&s)[kBlockN / 8][4], int row_g, int j0, int t,
                                        bool elementwise) const {
    constexpr float kLog2e = 1.4426950408889634f;
    if (!elementwise) {
#pragma unroll
      for (int nt = 0; nt < kBlockN / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) s[nt][e] *= p.scale_log2;
      return;
    }
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int i = row_g + half * 8;
      const bool row_ok = i < p.seq_q;
      const float threshold =
          (p.row_threshold != nullptr && row_ok)
              ? p.row_threshold[(int64_t{b} * p.heads_kv + hk) * p.seq_q + i]
              : -CUDART_INF_F;
      const int64_t bias_row = int64_t{b} * p.bias_stride.batch + int64_t{hk} * p.bias_stride.head +
                               int64_t{i} * p.bias_stride.row;
      const int64_t active_row = int64_t{b} * p.active_stride.batch +
                                 int64_t{hk} * p.active_stride.head +
                                 int64_t{i} * p.active_stride.row;
#pragma unroll
      for (int nt = 0; nt < kBlockN / 8; ++nt) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int j = j0 + nt * 8 + 2 * t + e;
          float x = s[nt][half * 2 + e] * p.scale;
          if (p.softcap > 0.0f) x = p.softcap * tanhf(x / p.softcap);
          bool keep = row_ok && j < p.seq_k && (!p.causal || j <= i + p.causal_offset);
          if (keep && p.bias != nullptr) {
            const float bias = load_as_float(p.bias, p.bias_dtype, bias_row + j * p.bias_stride.col);
            x += bias;
            keep = bias >= threshold;
          }
          if (keep && p.active != nullptr) {
            keep = load_as_float(p.active, p.active_dtype,
                                 active_row + j * p.active_stride.col) != 0.0f;
          }
          s[nt][half * 2 + e] = keep ? x * kLog2e : -CUDART_INF_F;
        }
      }
    }
  }
};

// Whether key tile `nb` of this query block can hold an attended pair.
__device__ __forceinline__ bool tile_is_active(const FwdParams& p, int b, int hk, int m_block,
                                               int nb) {
  if (p.tile_active == nullptr) return true;
  return p.tile_active[((int64_t{b} * p.heads_kv + hk) * p.q_tiles + m_block) * p.k_tiles + nb] != 0;
}

template <typename T, int kHeadDim, typename OutT>
__global__ void __launch_bounds__(kFwdThreads, 1) flash_fwd_kernel(const FwdParams p) {
  static_assert(kHeadDim % 16 == 0, "head_dim must be a multiple of 16");
  constexpr int kTilesN = kBlockN / 8;      // n8 tiles of scores per warp
  constexpr int kTilesD = kHeadDim / 8;     // n8 tiles of output per warp
  extern __shared__ __align__(128) unsigned char smem_raw[];
  T* sQ = reinterpret_cast<T*>(smem_raw);
  T* sK = sQ + kBlockM * kHeadDim;          // 2 stages
  T* sV = sK + 2 * kBlockN * kHeadDim;      // 2 stages

  // Last query blocks first: under a causal mask they have the most key tiles.
  const int m_block = gridDim.x - 1 - blockIdx.x;
  const int h = blockIdx.y, b = blockIdx.z;
  const int hk = h / p.group;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  const int m0 = m_block * kBlockM;
  const int row_g = m0 + warp * 16 + g;  // this thread's rows: row_g and row_g + 8

  const T* q = static_cast<const T*>(p.q) + b * p.q_stride.batch + h * p.q_stride.head;
  const T* k = static_cast<const T*>(p.k) + b * p.k_stride.batch + hk * p.k_stride.head;
  const T* v = static_cast<const T*>(p.v) + b * p.v_stride.batch + hk * p.v_stride.head;

  // Key tiles [0, n_end) can be visible: under the causal rule the block's last row sees
  // keys j <= last_row + offset.
  int n_end = p.k_tiles;
  if (p.causal) {
    const int64_t last_row = min(m0 + kBlockM, p.seq_q) - 1;
    const int64_t visible = last_row + p.causal_offset + 1;
    const int64_t tiles = visible <= 0 ? 0 : (visible + kBlockN - 1) / kBlockN;
    n_end = static_cast<int>(tiles < n_end ? tiles : n_end);
  }
  auto next_active = [&](int nb) {
    while (nb < n_end && !tile_is_active(p, b, hk, m_block, nb)) ++nb;
    return nb;
  };

  float o[kTilesD][4];
#pragma unroll
  for (int d = 0; d < kTilesD; ++d) o[d][0] = o[d][1] = o[d][2] = o[d][3] = 0.0f;
  float row_max[2] = {-CUDART_INF_F, -CUDART_INF_F};
  float row_sum[2] = {0.0f, 0.0f};
  const bool any_rules = p.bias != nullptr || p.active != nullptr || p.softcap > 0.0f;
  const ScoreRules rules{p, b, hk};

  int nb = next_active(0);
  load_tile<T, kHeadDim, kBlockM>(sQ, q, p.q_stride.row, m0, p.seq_q);
  if (nb < n_end) {
    load_tile<T, kHeadDim, kBlockN>(sK, k, p.k_stride.row, nb * kBlockN, p.seq_k);
    load_tile<T, kHeadDim, kBlockN>(sV, v, p.v_stride.row, nb * kBlockN, p.seq_k);
  }
  cp_async_commit();

  uint32_t qf[kHeadDim / 16][4];
  bool q_loaded = false;
  int stage = 0;
  while (nb < n_end) {
    const int nb_next = next_active(nb + 1);
    if (nb_next < n_end) {
      load_tile<T, kHeadDim, kBlockN>(sK + (stage ^ 1) * kBlockN * kHeadDim, k, p.k_stride.row,
                                      nb_next * kBlockN, p.seq_k);
      load_tile<T, kHeadDim, kBlockN>(sV + (stage ^ 1) * kBlockN * kHeadDim, v, p.v_stride.row,
                                      nb_next * kBlockN, p.seq_k);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    if (!q_loaded) {
      const int m = lane >> 3, r = lane & 7;
#pragma unroll
      for (int kk = 0; kk < kHeadDim / 16; ++kk)
        ldmatrix_x4(qf[kk], sQ + swizzled<kHeadDim>(warp * 16 + (m & 1) * 8 + r, kk * 2 + (m >> 1)));
      q_loaded = true;
    }
    const T* sKs = sK + stage * kBlockN * kHeadDim;
    const T* sVs = sV + stage * kBlockN * kHeadDim;

    float s[kTilesN][4];
    tile_scores<T, kHeadDim>(s, qf, sKs, lane);
    const int j0 = nb * kBlockN;
    const bool crosses_diagonal = p.causal && j0 + kBlockN - 1 > m0 + p.causal_offset;
    rules.apply(s, row_g, j0, t, any_rules || crosses_diagonal || j0 + kBlockN > p.seq_k);

    // Online softmax over this tile, rows row_g (half 0) and row_g + 8 (half 1).
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float mx = row_max[half];
#pragma unroll
      for (int nt = 0; nt < kTilesN; ++nt)
        mx = fmaxf(mx, fmaxf(s[nt][half * 2], s[nt][half * 2 + 1]));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
      mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
      const float base = mx == -CUDART_INF_F ? 0.0f : mx;  // a row that sees nothing yet
      const float alpha = exp2f(row_max[half] - base);
      row_max[half] = mx;
      float sum = 0.0f;
#pragma unroll
      for (int nt = 0; nt < kTilesN; ++nt) {
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const float pe = exp2f(s[nt][half * 2 + e] - base);
          sum += pe;
          s[nt][half * 2 + e] = pe;
        }
      }
      row_sum[half] = row_sum[half] * alpha + sum;
#pragma unroll
      for (int d = 0; d < kTilesD; ++d) {
        o[d][half * 2] *= alpha;
        o[d][half * 2 + 1] *= alpha;
      }
    }
    if (p.dropout) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int i = row_g + half * 8;
        const uint64_t row_base = ((uint64_t(b) * p.heads_q + h) * p.seq_q + i) * p.seq_k;
#pragma unroll
        for (int nt = 0; nt < kTilesN; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int j = j0 + nt * 8 + 2 * t + e;
            float& pe = s[nt][half * 2 + e];
            pe = p.rng.keep(row_base + j) ? pe * p.rng.keep_scale() : 0.0f;
          }
      }
    }

    // O += P . V: P's accumulator layout is the A layout of the next mma (two n8 tiles
    // make one k16 slice), V comes through ldmatrix.trans.
    const int m = lane >> 3, r = lane & 7;
#pragma unroll
    for (int kc = 0; kc < kBlockN / 16; ++kc) {
      uint32_t a[4];
      a[0] = pack2<T>(s[2 * kc][0], s[2 * kc][1]);
      a[1] = pack2<T>(s[2 * kc][2], s[2 * kc][3]);
      a[2] = pack2<T>(s[2 * kc + 1][0], s[2 * kc + 1][1]);
      a[3] = pack2<T>(s[2 * kc + 1][2], s[2 * kc + 1][3]);
#pragma unroll
      for (int dp = 0; dp < kHeadDim / 16; ++dp) {
        uint32_t bv[4];
        ldmatrix_x4_trans(bv, sVs + swizzled<kHeadDim>(kc * 16 + (m & 1) * 8 + r, dp * 2 + (m >> 1)));
        MmaOp<T>::run(o[2 * dp], a, bv[0], bv[1]);
        MmaOp<T>::run(o[2 * dp + 1], a, bv[2], bv[3]);
      }
    }
    __syncthreads();  // this stage is refilled by the next iteration's copy
    stage ^= 1;
    nb = nb_next;
  }
  if (!q_loaded) cp_async_wait<0>();  // nothing attended: drain the Q copy

  // Epilogue: finish the row sums across the quad, normalise, store O and lse.
  float inv[2];
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    float sum = row_sum[half];
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    sum += __shfl_xor_sync(0xffffffffu, sum, 2);
    row_sum[half] = sum;
    inv[half] = sum > 0.0f ? 1.0f / sum : 0.0f;
  }
  OutT* out = static_cast<OutT*>(p.out) + b * p.o_stride.batch + h * p.o_stride.head;
#pragma unroll
  for (int half = 0; half < 2; ++half) {
    const int i = row_g + half * 8;
    if (i >= p.seq_q) continue;
    OutT* orow = out + i * p.o_stride.row;
#pragma unroll
    for (int d = 0; d < kTilesD; ++d)
      store2<OutT>(orow + d * 8 + 2 * t, o[d][half * 2] * inv[half], o[d][half * 2 + 1] * inv[half]);
    if (p.lse != nullptr && t == 0) {
      constexpr float kLn2 = 0.6931471805599453f;
      p.lse[b * p.lse_stride.batch + h * p.lse_stride.head + i * p.lse_stride.row] =
          row_sum[half] > 0.0f ? row_max[half] * kLn2 + logf(row_sum[half]) : -CUDART_INF_F;
    }
  }

  // return_softmax (a debugging aid): recompute each tile's scores and write the final
  // probabilities; tiles the loop skipped are written as zeros.
  if (p.softmax == nullptr) return;
  T* prob = static_cast<T*>(p.softmax) + b * p.softmax_stride[0] + h * p.softmax_stride[1];
  for (int tile = 0; tile < p.k_tiles; ++tile) {
    const bool visited = tile < n_end && tile_is_active(p, b, hk, m_block, tile);
    float s[kTilesN][4];
    if (visited) {
      __syncthreads();
      load_tile<T, kHeadDim, kBlockN>(sK, k, p.k_stride.row, tile * kBlockN, p.seq_k);
      cp_async_commit();
      cp_async_wait<0>();
      __syncthreads();
      tile_scores<T, kHeadDim>(s, qf, sK, lane);
      rules.apply(s, row_g, tile * kBlockN, t, true);
    }
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int i = row_g + half * 8;
      if (i >= p.seq_q) continue;
      const float base = row_max[half] == -CUDART_INF_F ? 0.0f : row_max[half];
#pragma unroll
      for (int nt = 0; nt < kTilesN; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e) {
          const int j = tile * kBlockN + nt * 8 + 2 * t + e;
          if (j >= p.seq_k) continue;
          const float pr = visited ? exp2f(s[nt][half * 2 + e] - base) * inv[half] : 0.0f;
          prob[int64_t{i} * p.softmax_stride[2] + j] = from_float<T>(pr);
        }
    }
  }
}

}  // namespace attn::cuda::detail

namespace attn::cuda::detail {

template <typename T, int kHeadDim, typename OutT>
cudaError_t launch_flash_fwd(const FwdParams& p, cudaStream_t stream) {
  constexpr size_t kSmem = sizeof(T) * kHeadDim * (kBlockM + 4 * kBlockN);
  auto kernel = flash_fwd_kernel<T, kHeadDim, OutT>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(kSmem));
  if (err != cudaSuccess) return err;
  const dim3 grid(p.q_tiles, p.heads_q, p.batch);
  kernel<<<grid, kFwdThreads, kSmem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace attn::cuda::detail
