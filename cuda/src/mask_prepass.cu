// The pre-pass of the dynamic-mask forward: for every (batch, kv head, query block of 128)
// it decides which key tiles of 64 hold at least one attended pair, and with
// keep_window_size it finds, per query, the bias value of its keep_window_size-th best
// key (an exact radix select), so that the forward kernel skips everything else.
//
// One warp per query row: it reads the row's bias / mask from global memory (the row stays
// in L1 between the passes), four 8-bit radix passes narrow the threshold down, and a last
// pass marks the tiles that hold kept keys.
#include <math_constants.h>

#include "mask_access.cuh"
#include "mask_prepass.h"

namespace attn::cuda::detail {
namespace {

constexpr int kPrepassWarps = 8;

// Float -> unsigned key with the same order (negative floats reversed).
__device__ __forceinline__ uint32_t ordered_key(float x) {
  const uint32_t u = __float_as_uint(x);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ float key_to_float(uint32_t k) {
  return __uint_as_float((k & 0x80000000u) ? (k & 0x7fffffffu) : ~k);
}

struct RowView {
  const FwdParams& p;
  int b, hk, i;
  int64_t visible_end;  // keys [0, visible_end) pass the causal rule
  __device__ bool candidate(int j) const {
    if (j >= visible_end) return false;
    if (p.active == nullptr) return true;
    const int64_t at = int64_t{b} * p.active_stride.batch + int64_t{hk} * p.active_stride.head +
                       int64_t{i} * p.active_stride.row + j * p.active_stride.col;
    return load_as_float(p.active, p.active_dtype, at) != 0.0f;
  }
  __device__ uint32_t key(int j) const {
    const int64_t at = int64_t{b} * p.bias_stride.batch + int64_t{hk} * p.bias_stride.head +
                       int64_t{i} * p.bias_stride.row + j * p.bias_stride.col;
    return ordered_key(load_as_float(p.bias, p.bias_dtype, at));
  }
};

// Key of the k-th largest candidate (k >= 1, k <= candidates), by the warp.
__device__ uint32_t radix_select(const RowView& row, int seq_k, int64_t k, unsigned* hist,
                                 const uint32_t* cand_bits, int lane) {
  uint32_t prefix = 0, prefix_mask = 0;
  int64_t remaining = k;
  for (int shift = 24; shift >= 0; shift -= 8) {
    for (int bin = lane; bin < 256; bin += 32) hist[bin] = 0;
    __syncwarp();
    for (int j = lane; j < seq_k; j += 32) {
      if (!((cand_bits[j >> 5] >> (j & 31)) & 1u)) continue;
      const uint32_t key = row.key(j);
      if ((key & prefix_mask) == prefix) atomicAdd(&hist[(key >> shift) & 255u], 1u);
    }
    __syncwarp();
    // Bins from the top: lane l sums bins 255-8l .. 248-8l, a warp scan finds the lane
    // whose bins hold the remaining-th largest, that lane walks its 8 bins.
    unsigned local = 0;
    for (int q = 0; q < 8; ++q) local += hist[255 - lane * 8 - q];
    unsigned inclusive = local;
    for (int off = 1; off < 32; off <<= 1) {
      const unsigned other = __shfl_up_sync(0xffffffffu, inclusive, off);
      if (lane >= off) inclusive += other;
    }
    const unsigned exclusive = inclusive - local;
    const unsigned found = __ballot_sync(0xffffffffu, inclusive >= remaining && exclusive < remaining);
    const int owner = __ffs(found) - 1;
    uint32_t bin_found = 0;
    int64_t rem_after = 0;
    if (lane == owner) {
      unsigned cum = exclusive;
      for (int q = 0; q < 8; ++q) {
        const int bin = 255 - lane * 8 - q;
        if (cum + hist[bin] >= remaining) {
          bin_found = bin;
          rem_after = remaining - cum;
          break;
        }
        cum += hist[bin];
      }
    }
    bin_found = __shfl_sync(0xffffffffu, bin_found, owner);
    remaining = __shfl_sync(0xffffffffu, rem_after, owner);
    prefix |= bin_found << shift;
    prefix_mask |= 255u << shift;
    __syncwarp();
  }
  return prefix;
}

__global__ void __launch_bounds__(kPrepassWarps * 32) mask_prepass_kernel(FwdParams p,
                                                                          int64_t keep_window,
                                                                          float* threshold,
                                                                          uint8_t* tile_active) {
  extern __shared__ unsigned char smem_raw[];
  const int words = (p.seq_k + 31) / 32;
  int* tile_flag = reinterpret_cast<int*>(smem_raw);                      // [k_tiles]
  unsigned* hist_all = reinterpret_cast<unsigned*>(tile_flag + p.k_tiles);  // [warps][256]
  uint32_t* bits_all = hist_all + kPrepassWarps * 256;                      // [warps][words]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  unsigned* hist = hist_all + warp * 256;
  uint32_t* cand_bits = bits_all + int64_t{warp} * words;

  const int m_block = blockIdx.x, hk = blockIdx.y, b = blockIdx.z;
  for (int t = threadIdx.x; t < p.k_tiles; t += blockDim.x) tile_flag[t] = 0;
  __syncthreads();

  const bool select = keep_window > 0 && p.seq_k > keep_window;
  for (int r = warp; r < kBlockM; r += kPrepassWarps) {
    const int i = m_block * kBlockM + r;
    if (i >= p.seq_q) break;
    RowView row{p, b, hk, i, p.seq_k};
    if (p.causal) {
      const int64_t end = i + p.causal_offset + 1;
      row.visible_end = end < 0 ? 0 : (end > p.seq_k ? p.seq_k : end);
    }

    // Candidates (causal and active), as bits; their count.
    int count = 0;
    for (int w0 = 0; w0 < words; w0 += 1) {
      const int j = w0 * 32 + lane;
      const bool c = j < p.seq_k && row.candidate(j);
      const uint32_t word = __ballot_sync(0xffffffffu, c);
      if (lane == 0) cand_bits[w0] = word;
      count += __popc(word);
    }
    __syncwarp();

    uint32_t cut = 0;  // keys >= cut are kept
    if (select && count > keep_window) cut = radix_select(row, p.seq_k, keep_window, hist, cand_bits, lane);
    if (select && lane == 0) {
      threshold[(int64_t{b} * p.heads_kv + hk) * p.seq_q + i] =
          count > keep_window ? key_to_float(cut) : -CUDART_INF_F;
    }
    for (int j = lane; j < p.seq_k; j += 32) {
      if (!((cand_bits[j >> 5] >> (j & 31)) & 1u)) continue;
      if (cut != 0 && row.key(j) < cut) continue;
      tile_flag[j / kBlockN] = 1;
    }
    __syncwarp();
  }
  __syncthreads();
  uint8_t* out = tile_active + ((int64_t{b} * p.heads_kv + hk) * p.q_tiles + m_block) * p.k_tiles;
  for (int t = threadIdx.x; t < p.k_tiles; t += blockDim.x) out[t] = tile_flag[t] ? 1 : 0;
}

}  // namespace

size_t mask_prepass_smem_bytes(const FwdParams& p) {
  const size_t words = (size_t(p.seq_k) + 31) / 32;
  return size_t(p.k_tiles) * 4 + kPrepassWarps * 256 * 4 + kPrepassWarps * words * 4;
}

cudaError_t launch_mask_prepass(const FwdParams& p, int64_t keep_window, float* threshold,
                                uint8_t* tile_active, cudaStream_t stream) {
  const size_t smem = mask_prepass_smem_bytes(p);
  cudaError_t err = cudaFuncSetAttribute(mask_prepass_kernel,
                                         cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (err != cudaSuccess) return err;
  const dim3 grid(p.q_tiles, p.heads_kv, p.batch);
  mask_prepass_kernel<<<grid, kPrepassWarps * 32, smem, stream>>>(p, keep_window, threshold,
                                                                  tile_active);
  return cudaGetLastError();
}

}  // namespace attn::cuda::detail
