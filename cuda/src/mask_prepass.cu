// The pre-pass of the dynamic-mask forward: for every (batch, kv head, query block of 128)
// it decides which key tiles of 64 hold at least one attended pair, and with
// keep_window_size it finds, per query, the bias value of its keep_window_size-th best
// key (an exact radix select), so that the forward kernel skips everything else.
//
// One warp per query row: it reads the row's bias / mask from global memory 8 keys per
// lane at a time (the row stays in L1 between the passes), four 8-bit radix passes narrow
// the threshold down, and a last pass marks the tiles that hold kept keys.
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

// A 16-bit bias has at most 65536 values: its keys are the 16-bit pattern in the same
// order, so the radix select needs two passes instead of four.
__device__ __forceinline__ uint32_t ordered_key16(float x, int dtype) {
  const uint32_t b = static_cast<DType>(dtype) == DType::kBFloat16
                         ? (__float_as_uint(x) >> 16)  // exact: x came from a bf16
                         : __half_as_ushort(__float2half_rn(x));  // exact: x came from a half
  return (b & 0x8000u) ? (~b & 0xffffu) : (b | 0x8000u);
}
__device__ __forceinline__ float key16_to_float(uint32_t k, int dtype) {
  const uint16_t b = static_cast<uint16_t>((k & 0x8000u) ? (k & 0x7fffu) : (~k & 0xffffu));
  return static_cast<DType>(dtype) == DType::kBFloat16 ? __bfloat162float(__ushort_as_bfloat16(b))
                                                     : __half2float(__ushort_as_half(b));
}

// One row of the bias / active mask, read 8 keys at a time: one 16-byte load when the row
// is 16-bit, contiguous and aligned (the usual seed-004 layout), element by element else.
struct RowView {
  const FwdParams& p;
  int b, hk, i;
  int64_t visible_end;  // keys [0, visible_end) pass the causal rule

  __device__ const void* row_base(const void* base, int dtype, const Strides3Rows& st) const {
    const int64_t at = int64_t{b} * st.batch + int64_t{hk} * st.head + int64_t{i} * st.row;
    return static_cast<const char*>(base) + at * element_bytes(dtype);
  }
  __device__ static bool vectorizable(const void* row, int dtype, const Strides3Rows& st,
                                      int seq_k) {
    return element_bytes(dtype) == 2 && st.col == 1 && seq_k % 8 == 0 &&
           (reinterpret_cast<uintptr_t>(row) & 15) == 0;
  }
  // values[e] = element j0 + e of the row as float (j0 a multiple of 8; keys past seq_k: 0).
  __device__ void load8(const void* base, int dtype, const Strides3Rows& st, int j0,
                        float (&values)[8]) const {
    const void* row = row_base(base, dtype, st);
    if (vectorizable(row, dtype, st, p.seq_k)) {
      const uint4 raw = *reinterpret_cast<const uint4*>(static_cast<const char*>(row) + int64_t{j0} * 2);
      const uint16_t* h = reinterpret_cast<const uint16_t*>(&raw);
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        values[e] = static_cast<DType>(dtype) == DType::kBFloat16
                        ? __bfloat162float(__ushort_as_bfloat16(h[e]))
                        : __half2float(__ushort_as_half(h[e]));
      }
      return;
    }
    const int64_t at = (int64_t{b} * st.batch + int64_t{hk} * st.head + int64_t{i} * st.row);
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const int j = j0 + e;
      values[e] = j < p.seq_k ? load_as_float(base, dtype, at + int64_t{j} * st.col) : 0.0f;
    }
  }
  // Bit e set when key j0 + e passes the causal rule and the active mask.
  __device__ uint32_t candidates8(int j0) const {
    uint32_t bits = 0;
    if (p.active != nullptr) {
      float a[8];
      load8(p.active, p.active_dtype, p.active_stride, j0, a);
#pragma unroll
      for (int e = 0; e < 8; ++e) bits |= (a[e] != 0.0f ? 1u : 0u) << e;
    } else {
      bits = 0xffu;
    }
    const int64_t visible = visible_end - j0;  // keys j0 .. j0 + visible - 1 are visible
    if (visible < 8) bits &= visible <= 0 ? 0u : (1u << visible) - 1u;
    return bits;
  }
  __device__ int key_bits() const { return element_bytes(p.bias_dtype) == 2 ? 16 : 32; }
  __device__ float key_value(uint32_t key) const {
    return key_bits() == 16 ? key16_to_float(key, p.bias_dtype) : key_to_float(key);
  }
  __device__ void keys8(int j0, uint32_t (&keys)[8]) const {
    float v[8];
    load8(p.bias, p.bias_dtype, p.bias_stride, j0, v);
#pragma unroll
    for (int e = 0; e < 8; ++e)
      keys[e] = key_bits() == 16 ? ordered_key16(v[e], p.bias_dtype) : ordered_key(v[e]);
  }
};

// Key of the k-th largest candidate (k >= 1, k <= candidates), by the warp. cand[g] holds
// the candidate bits of keys 8g .. 8g+7.
__device__ uint32_t radix_select(const RowView& row, int groups, int64_t k, unsigned* hist,
                                 const uint8_t* cand, int lane) {
  uint32_t prefix = 0, prefix_mask = 0;
  int64_t remaining = k;
  for (int shift = row.key_bits() - 8; shift >= 0; shift -= 8) {
    for (int bin = lane; bin < 256; bin += 32) hist[bin] = 0;
    __syncwarp();
    for (int grp = lane; grp < groups; grp += 32) {
      const uint32_t bits = cand[grp];
      if (bits == 0) continue;
      uint32_t keys[8];
      row.keys8(grp * 8, keys);
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        if (((bits >> e) & 1u) && (keys[e] & prefix_mask) == prefix)
          atomicAdd(&hist[(keys[e] >> shift) & 255u], 1u);
      }
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
  const int groups = (p.seq_k + 7) / 8;
  const int group_pitch = (groups + 15) / 16 * 16;
  int* tile_flag = reinterpret_cast<int*>(smem_raw);  // [k_tiles], padded to 16 bytes
  unsigned* hist_all = reinterpret_cast<unsigned*>(tile_flag + (p.k_tiles + 3) / 4 * 4);  // [warps][256]
  uint8_t* cand_all = reinterpret_cast<uint8_t*>(hist_all + kPrepassWarps * 256);  // [warps][groups]
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  unsigned* hist = hist_all + warp * 256;
  uint8_t* cand = cand_all + int64_t{warp} * group_pitch;

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
    // Candidates (causal and active) as 8-bit groups; their count.
    int count = 0;
    for (int grp = lane; grp < groups; grp += 32) {
      const uint32_t bits = row.candidates8(grp * 8);
      cand[grp] = static_cast<uint8_t>(bits);
      count += __popc(bits);
    }
    for (int off = 16; off > 0; off >>= 1) count += __shfl_xor_sync(0xffffffffu, count, off);
    __syncwarp();

    const bool cut_row = select && count > keep_window;
    const uint32_t cut = cut_row ? radix_select(row, groups, keep_window, hist, cand, lane) : 0;
    if (select && lane == 0) {
      threshold[(int64_t{b} * p.heads_kv + hk) * p.seq_q + i] = cut_row ? row.key_value(cut) : -CUDART_INF_F;
    }
    if (cut_row) {  // keep only the candidates at or above the cut
      for (int grp = lane; grp < groups; grp += 32) {
        uint32_t bits = cand[grp];
        if (bits == 0) continue;
        uint32_t keys[8];
        row.keys8(grp * 8, keys);
#pragma unroll
        for (int e = 0; e < 8; ++e)
          if (keys[e] < cut) bits &= ~(1u << e);
        cand[grp] = static_cast<uint8_t>(bits);
      }
      __syncwarp();
    }
    // A tile of 64 keys is 8 groups: one 8-byte word of cand.
    for (int t = lane; t < p.k_tiles; t += 32) {
      uint64_t word = 0;
      const int g0 = t * 8;
      if (g0 + 8 <= groups) {
        word = *reinterpret_cast<const uint64_t*>(cand + g0);
      } else {
        for (int q = g0; q < groups; ++q) word |= cand[q];
      }
      if (word != 0) tile_flag[t] = 1;
    }
    __syncwarp();
  }
  __syncthreads();
  uint8_t* out = tile_active + ((int64_t{b} * p.heads_kv + hk) * p.q_tiles + m_block) * p.k_tiles;
  for (int t = threadIdx.x; t < p.k_tiles; t += blockDim.x) out[t] = tile_flag[t] ? 1 : 0;
}

}  // namespace

size_t mask_prepass_smem_bytes(const FwdParams& p) {
  const size_t groups = (size_t(p.seq_k) + 7) / 8;
  const size_t pitch = (groups + 15) / 16 * 16;
  return (size_t(p.k_tiles) + 3) / 4 * 16 + kPrepassWarps * 256 * 4 + kPrepassWarps * pitch;
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
