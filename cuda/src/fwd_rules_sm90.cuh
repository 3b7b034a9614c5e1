// The dynamic-mask (flash_dma) rules of the Hopper forward (flash_fwd_sm90.cuh): a bias (the
// zoh) and the pre-pass's kept keys as bits (the active mask, the causal rule and the
// keep-window thresholds folded into one bit per key: 1/16 of a 16-bit mask's bytes), staged
// per consumer warp in shared memory, and the pre-pass's tile map, which makes skipped key
// tiles cost nothing (neither copies nor products).
//
// Why per-warp cp.async and not registers or the producer's TMA: a tile's 16-bit bias is
// 32 KB for the block. Loaded into registers at the start of a step (so their latency
// overlaps the products) the values must be held across the step's products, and the
// d = 128 kernel spilled. The producer's copies would need another stage that does not fit.
// Copied by each warp for its own rows, they need no registers in flight and no block-wide
// barrier; at d = 128 the K / V ring drops to two stages to make room.
//
// Which calls come here: sm90_forward_applies (sm90_dispatch.h).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math_constants.h>

#include <cstdint>

#include "fwd_key_range.cuh"
#include "fwd_params.h"
#include "mma_sm80.cuh"

namespace attn::cuda::detail {

// Which rules a Hopper forward kernel is compiled for (its kRules): a bias and / or the
// pre-pass's kept-key bits, or neither (the dense case). Compile-time, so the per-key work has
// no branches: with run-time flags the kernel executed ten times the dense kernel's branches
// and twice its instructions.
constexpr int kSm90Dense = 0, kSm90RuleBias = 1, kSm90RuleBits = 2;

// One consumer warp's rules. Each warp stages the bias and the kept-key bits of its own 16 rows
// and a key tile in its own 8 KB of shared memory (16-byte cp.async, issued a tile ahead so
// their latency overlaps a step's softmax and products, into no registers), so only
// __syncwarp orders them. Layout: 16-byte chunk c of bias row r (keys 8c .. 8c + 7) at
// c * 256 + r * 16, so the copies write 128 contiguous bytes per 8 lanes and the reads (word t
// of chunk nt of rows g and g + 8) hit 32 banks at compile-time offsets from one address per
// thread (a per-row layout, XOR-swizzled, left addresses that the compiler kept in registers
// across the loop: the kernels spilled); then the bits, row r's 16 bytes at 4096 + r * 16.
constexpr int kSm90RulesWarpBytes = 8192;
template <typename T, int kRules>
struct Sm90Rules {
  static constexpr bool kBias = (kRules & kSm90RuleBias) != 0;
  static constexpr bool kBits = (kRules & kSm90RuleBits) != 0;
  const T* bias_row = nullptr;      // row warp_row0 + (lane & 15)'s first key (copies)
  const uint8_t* bits_row = nullptr;
  uint32_t copy_smem, read_smem;    // this lane's first copy destination, first read
  int seq_k, lane;
  float inv_scale;                  // the addend is bias / scale, added to raw q.k (see apply)

  __device__ Sm90Rules(const FwdParams& p, int b, int hk, int row0, unsigned char* warp_smem)
      : seq_k(p.seq_k), lane(threadIdx.x & 31), inv_scale(1.0f / p.scale) {
    const int g = lane >> 2;
    // Rows past the end are read (clamped) and never stored.
    const int64_t copy_row = min(row0 - g + (lane & 15), p.seq_q - 1);
    if (kBias)
      bias_row = static_cast<const T*>(p.bias) + b * p.bias_stride.batch + hk * p.bias_stride.head + copy_row * p.bias_stride.row;
    if (kBits) bits_row = p.kept_bits + ((int64_t{b} * p.heads_kv + hk) * p.seq_q + copy_row) * kept_bits_row_bytes(p.seq_k);
    copy_smem = smem_address(warp_smem) + (lane & 15) * 16 + (lane >> 4) * 256;
    read_smem = smem_address(warp_smem) + g * 16;
  }

  // Copies the warp's rows of key tile j0.. (128 keys) into its shared memory: the bias's
  // chunks past seq_k are zero-filled and the bits' rows are padded to whole chunks (those keys
  // are dropped by position).
  __device__ __forceinline__ void issue(int j0) const {
    if constexpr (kBias) {
      const int first = j0 + 8 * (lane >> 4);  // this lane's chunks: keys first + 16 k
#pragma unroll
      for (int k = 0; k < 8; ++k) cp_async_16(copy_smem + k * 512, bias_row + first + 16 * k, first + 16 * k < seq_k);
    }
    if constexpr (kBits) {
      if (lane < 16) cp_async_16_full(copy_smem + 4096, bits_row + j0 / 8);
    }
    cp_async_commit();
  }

  // s (raw q.k, the kernel's accumulator layout s[nt * 4 + half * 2 + e]) += bias / scale, so
  // that the softmax's scale * log2(e) makes it q.k * scale + bias in log2 units. Where the
  // key is not kept the bias pair's half becomes -inf first, and one FFMA makes the score -inf
  // (for any finite q.k). Waits for this step's copies; the warp's buffer is free again on
  // return. (With a 16-bit mask and the thresholds read and tested here instead of the bits,
  // and -inf selected per score after the FFMA, the kernel took 1.05 ms at d = 128, n = 4096,
  // H200, where the dense one takes 0.31.)
  __device__ __forceinline__ void apply(float (&s)[64]) const {
    cp_async_wait<0>();
    __syncwarp();
    const int t = lane & 3;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      // The row's 128 kept bits, shifted so that this thread's keys 8 nt + 2 t, + 1 are bits
      // 0, 1 of byte nt % 4 of word nt / 4.
      [[maybe_unused]] uint32_t kept[4];
      if constexpr (kBits) {
        const uint4 w = ld_shared_v4(read_smem + 4096 + half * 128);
        kept[0] = w.x >> (2 * t), kept[1] = w.y >> (2 * t), kept[2] = w.z >> (2 * t), kept[3] = w.w >> (2 * t);
      }
#pragma unroll
      for (int nt = 0; nt < 16; ++nt) {
        uint32_t add = kBias ? ld_shared_u32(read_smem + nt * 256 + half * 128 + 4 * t) : 0u;
        if constexpr (kBits) {
          const uint32_t y = kept[nt >> 2] >> (8 * (nt & 3));
          const uint32_t keep = ((y & 1u) | ((y << 15) & 0x10000u)) * 0xffffu;  // 0xffff per kept half
          add = (add & keep) | (kNegInf2<T> & ~keep);
        }
        const float2 a = unpack2<T>(add);
        s[nt * 4 + half * 2] = fmaf(a.x, inv_scale, s[nt * 4 + half * 2]);
        s[nt * 4 + half * 2 + 1] = fmaf(a.y, inv_scale, s[nt * 4 + half * 2 + 1]);
      }
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
    map = tile_map_row(p, b, hk, m_block);
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
