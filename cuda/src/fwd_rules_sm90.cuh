// The dynamic-mask (flash_dma) rules of the Hopper forward (flash_fwd_sm90.cuh): a bias (the
// zoh), an active mask and the pre-pass's keep-window thresholds, staged per consumer warp in
// shared memory, and the pre-pass's tile map, which makes skipped key tiles cost nothing
// (neither copies nor products).
//
// Why per-warp cp.async and not registers or the producer's TMA: a tile's 16-bit bias and
// mask are 64 KB for the block. Loaded into registers at the start of a step (so their
// latency overlaps the products) they must be held across the step's products, and the
// d = 128 kernel spilled 176-316 bytes. The producer's copies would need a second buffer
// that does not fit. Copied by each warp for its own rows, they need no registers in flight
// and no block-wide barrier; at d = 128 the K / V ring drops to two stages to make room.
//
// Supported layouts (sm90_rules_supported): a bias of the kernel's element type, a mask of
// that type or of bytes, keys contiguous, rows and bases 16-byte aligned and seq_k a whole
// number of 16-byte chunks. Others run on the mma.sync general kernel.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math_constants.h>

#include <cstdint>
#include <type_traits>

#include "attn_cuda/tensor.h"
#include "fwd_params.h"
#include "mma_sm80.cuh"

namespace attn::cuda::detail {

// Which rules a Hopper forward kernel is compiled for (its kRules): 0 none (the dense case),
// else whether there is a bias and the mask's bytes per key (0: none, 1: bytes, 2: the element
// type). Compile-time, so the per-key work has no branches: with run-time flags the kernel
// executed ten times the dense kernel's branches and twice its instructions.
constexpr int kSm90Dense = 0;
constexpr int sm90_rules(bool bias, int mask_bytes) { return 1 + (bias ? 4 : 0) + mask_bytes; }
constexpr bool sm90_rules_bias(int rules) { return rules >= 5; }
constexpr int sm90_rules_mask_bytes(int rules) { return rules == kSm90Dense ? 0 : (rules - 1) & 3; }

// Whether the Hopper kernel can read p's bias / mask (the layouts above), for element type
// `element` (a DType code).
inline bool sm90_rules_supported(const FwdParams& p, int element) {
  auto chunked = [&](const void* data, int dtype, const Strides3Rows& st) {
    if (data == nullptr) return true;
    const int64_t bytes = dtype == static_cast<int>(DType::kUInt8) ? 1 : 2;
    return st.col == 1 && (st.row * bytes) % 16 == 0 && (st.head * bytes) % 16 == 0 && (st.batch * bytes) % 16 == 0 &&
           (p.seq_k * bytes) % 16 == 0 && reinterpret_cast<uintptr_t>(data) % 16 == 0;
  };
  const bool bias_ok = p.bias == nullptr || p.bias_dtype == element;
  const bool mask_ok = p.active == nullptr || p.active_dtype == element || p.active_dtype == static_cast<int>(DType::kUInt8);
  return bias_ok && mask_ok && chunked(p.bias, p.bias_dtype, p.bias_stride) &&
         chunked(p.active, p.active_dtype, p.active_stride);
}

__device__ __forceinline__ uint32_t ld_shared_u32(uint32_t address) {
  uint32_t v;
  asm volatile("ld.shared.b32 %0, [%1];\n" : "=r"(v) : "r"(address));
  return v;
}
__device__ __forceinline__ uint32_t ld_shared_u16(uint32_t address) {
  uint16_t v;
  asm volatile("ld.shared.b16 %0, [%1];\n" : "=h"(v) : "r"(address));
  return v;
}

// 16-bit pair helpers for T = __half / __nv_bfloat16, on raw 32-bit words.
template <typename T>
struct Pair16;
template <>
struct Pair16<__nv_bfloat16> {
  static constexpr uint32_t kNegInf = 0xff80ff80u;
  __device__ static uint32_t ge_mask(uint32_t a, uint32_t b) {  // 0xffff per half where a >= b
    uint32_t d;
    asm("set.ge.u32.bf16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    return d;
  }
  __device__ static uint32_t nonzero_mask(uint32_t a) {  // 0xffff per half where a != 0 (NaN too)
    uint32_t d;
    asm("set.neu.u32.bf16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(0u));
    return d;
  }
  __device__ static float2 to_float2(uint32_t u) {  // bf16 -> float is a 16-bit shift
    return make_float2(__uint_as_float(u << 16), __uint_as_float(u & 0xffff0000u));
  }
  __device__ static uint32_t from_float(float x) {
    const __nv_bfloat16 h = __float2bfloat16_rn(x);
    const uint32_t bits = *reinterpret_cast<const uint16_t*>(&h);
    return bits | (bits << 16);
  }
};
template <>
struct Pair16<__half> {
  static constexpr uint32_t kNegInf = 0xfc00fc00u;
  __device__ static uint32_t ge_mask(uint32_t a, uint32_t b) {
    uint32_t d;
    asm("set.ge.u32.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
    return d;
  }
  __device__ static uint32_t nonzero_mask(uint32_t a) {
    uint32_t d;
    asm("set.neu.u32.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(0u));
    return d;
  }
  __device__ static float2 to_float2(uint32_t u) { return __half22float2(*reinterpret_cast<const __half2*>(&u)); }
  __device__ static uint32_t from_float(float x) {
    const __half h = __float2half_rn(x);
    const uint32_t bits = *reinterpret_cast<const uint16_t*>(&h);
    return bits | (bits << 16);
  }
};

// Byte permute (prmt.b32): selector nibbles with the top bit set replicate that byte's sign.
__device__ __forceinline__ uint32_t byte_perm_sign(uint32_t a, uint32_t sel) {
  uint32_t d;
  asm("prmt.b32 %0, %1, 0, %2;" : "=r"(d) : "r"(a), "r"(sel));
  return d;
}
// 0xffff in each half of the result for each nonzero byte of the low half of w.
__device__ __forceinline__ uint32_t nonzero8x2(uint32_t w) {
  const uint32_t tops = ((w & 0x7f7fu) + 0x7f7fu) | w;  // bit 7 of each byte: nonzero
  return byte_perm_sign(tops, 0x9988u);
}

// One consumer warp's rules. Each warp stages the bias / mask of its own 16 rows and a key tile
// in its own 8 KB of shared memory (16-byte cp.async, issued at the start of a step so their
// latency overlaps the step's products, into no registers), so only __syncwarp orders them.
// Layout: 16-byte chunk c of row r (keys 8c .. 8c + 7 of a 16-bit tensor, 16c .. 16c + 15 of
// a byte mask) at c * 256 + r * 16. The copies then write 128 contiguous bytes per 8 lanes,
// and the reads (word t of chunk nt of rows g and g + 8) hit 32 banks at offsets that are
// compile-time constants from one address per thread. (A per-row layout, XOR-swizzled, left
// addresses that the compiler kept in registers across the loop: the kernels spilled.)
constexpr int kSm90RulesWarpBytes = 8192;  // 16 rows x 256 bytes of bias, the same of mask
template <typename T, int kRules>
struct Sm90Rules {
  static constexpr bool kBias = sm90_rules_bias(kRules);
  static constexpr int kMaskBytes = sm90_rules_mask_bytes(kRules);
  const T* bias_row = nullptr;          // row warp_row0 + (lane & 15)'s first key (copies)
  const unsigned char* mask_row = nullptr;
  uint32_t copy_smem, read_smem;        // this lane's first copy destination, first read
  int seq_k, lane;
  uint32_t threshold[2];  // rows g, g + 8: the keep-window cut-off as a T pair (-inf: none)
  float inv_scale;        // the addend is bias / scale, added to raw q.k (see apply)

  __device__ Sm90Rules(const FwdParams& p, int b, int hk, int row0, unsigned char* warp_smem)
      : seq_k(p.seq_k), lane(threadIdx.x & 31), inv_scale(1.0f / p.scale) {
    const int g = lane >> 2, t = lane & 3;
    // Rows past the end are read (clamped) and never stored.
    const int64_t copy_row = min(row0 - g + (lane & 15), p.seq_q - 1);
    if (kBias)
      bias_row = static_cast<const T*>(p.bias) + b * p.bias_stride.batch + hk * p.bias_stride.head + copy_row * p.bias_stride.row;
    if (kMaskBytes > 0)
      mask_row = static_cast<const unsigned char*>(p.active) +
                 (b * p.active_stride.batch + hk * p.active_stride.head + copy_row * p.active_stride.row) * kMaskBytes;
    copy_smem = smem_address(warp_smem) + (lane & 15) * 16 + (lane >> 4) * 256;
    read_smem = smem_address(warp_smem) + g * 16;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int64_t i = min(row0 + half * 8, p.seq_q - 1);
      const float cut = kBias && p.row_threshold != nullptr ? p.row_threshold[(int64_t{b} * p.heads_kv + hk) * p.seq_q + i]
                                                   : -CUDART_INF_F;
      threshold[half] = Pair16<T>::from_float(cut);  // exact: the cut-off is a bias value
    }
    (void)t;
  }

  // Copies the warp's rows of key tile j0.. (128 keys) into its shared memory; chunks past
  // seq_k are zero-filled (those keys are dropped by position).
  __device__ __forceinline__ void issue(int j0) const {
    const int first = j0 + 8 * (lane >> 4);  // this lane's chunks: keys first + 16 k (16-bit)
    if constexpr (kBias) {
#pragma unroll
      for (int k = 0; k < 8; ++k) cp_async_16(copy_smem + k * 512, bias_row + first + 16 * k, first + 16 * k < seq_k);
    }
    if constexpr (kMaskBytes == 2) {
#pragma unroll
      for (int k = 0; k < 8; ++k)
        cp_async_16(copy_smem + 4096 + k * 512, mask_row + 2 * (first + 16 * k), first + 16 * k < seq_k);
    } else if constexpr (kMaskBytes == 1) {
      const int first8 = j0 + 16 * (lane >> 4);  // keys first8 + 32 k
#pragma unroll
      for (int k = 0; k < 4; ++k)
        cp_async_16(copy_smem + 4096 + k * 512, mask_row + first8 + 32 * k, first8 + 32 * k < seq_k);
    }
    cp_async_commit();
  }

  // s (raw q.k, the kernel's accumulator layout s[nt * 4 + half * 2 + e]) += bias / scale, so
  // that the softmax's scale * log2(e) makes it q.k * scale + bias in log2 units. Where the
  // mask is zero or the bias under the row's threshold the bias pair's half becomes -inf
  // first, and one FFMA makes the score -inf (for any finite q.k): per pair of keys a shared
  // load, two compares, a select, two conversions and two FFMA. (Selecting -inf per score
  // after the FFMA, the apply cost as much as the softmax and the kernel ran at 0.77 ms
  // where the dense one takes 0.33, bias only, d = 128, n = 4096.) Waits for this step's
  // copies; the warp's buffer is free again on return.
  __device__ __forceinline__ void apply(float (&s)[64]) const {
    cp_async_wait<0>();
    __syncwarp();
    const int t = lane & 3;
#pragma unroll
    for (int half = 0; half < 2; ++half)
#pragma unroll
      for (int nt = 0; nt < 16; ++nt) {
        const uint32_t b2 = kBias ? ld_shared_u32(read_smem + nt * 256 + half * 128 + 4 * t) : 0u;
        uint32_t keep = kBias ? Pair16<T>::ge_mask(b2, threshold[half]) : 0xffffffffu;
        if constexpr (kMaskBytes == 2)
          keep &= Pair16<T>::nonzero_mask(ld_shared_u32(read_smem + 4096 + nt * 256 + half * 128 + 4 * t));
        else if constexpr (kMaskBytes == 1)
          keep &= nonzero8x2(ld_shared_u16(read_smem + 4096 + (nt >> 1) * 256 + half * 128 + (nt & 1) * 8 + 2 * t));
        const float2 a = Pair16<T>::to_float2((b2 & keep) | (Pair16<T>::kNegInf & ~keep));
        s[nt * 4 + half * 2] = fmaf(a.x, inv_scale, s[nt * 4 + half * 2]);
        s[nt * 4 + half * 2 + 1] = fmaf(a.y, inv_scale, s[nt * 4 + half * 2 + 1]);
      }
    __syncwarp();
  }
};

// What the dense kernel holds instead (nothing).
struct Sm90NoRules {
  __device__ Sm90NoRules(const FwdParams&, int, int, int, unsigned char*) {}
};

// The key tiles of 128 a query block visits under the pre-pass's tile map (tiles of 64 keys,
// kBlockN): a warp-wide cursor that reads the flags of 32 tiles at a time (one ballot), so a
// tile's lookup costs no memory latency. Every lane of the warp calls next() together.
struct ActiveKeyTiles {
  const uint8_t* map = nullptr;  // this query block's row of the map; nullptr: every tile
  int map_tiles = 0, end = 0;    // flags in the row; tiles of 128 before `end`
  int base = -64;                // bits: tiles base .. base + 31
  uint32_t bits = 0;

  __device__ ActiveKeyTiles(const FwdParams& p, int b, int hk, int m_block, int end_tile) : end(end_tile) {
    if (p.tile_active == nullptr) return;
    map = p.tile_active + ((int64_t{b} * p.heads_kv + hk) * p.q_tiles + m_block) * p.k_tiles;
    map_tiles = p.k_tiles;
  }
  // The first visited tile >= nb (end when none).
  __device__ __forceinline__ int next(int nb) {
    if (map == nullptr) return nb;
    while (nb < end) {
      if (nb < base || nb >= base + 32) {
        base = nb;
        const int tile = base + (threadIdx.x & 31), half_tile = 2 * tile;
        const bool on = tile < end && (map[half_tile] != 0 || (half_tile + 1 < map_tiles && map[half_tile + 1] != 0));
        bits = __ballot_sync(0xffffffffu, on);
      }
      const uint32_t rest = bits >> (nb - base);
      if (rest != 0) return nb + __ffs(rest) - 1;
      nb = base + 32;
    }
    return end;
  }
};

}  // namespace attn::cuda::detail
