// The flash-attention forward kernel (sm_80+, mma.sync): one thread block per 128 queries
// of one (batch, head); 4 warps, each owning 32 query rows (two m16 tiles). K and V
// tiles of 64 keys stream through two shared-memory stages with cp.async so that the copy
// of tile j+1 overlaps the math of tile j. Scores and the online softmax live in the mma
// accumulators; P is re-packed in registers as the A operand of P.V (no shared memory).
#pragma once
#include <math_constants.h>

#include <type_traits>

#include "fwd_key_range.cuh"
#include "fwd_launch.h"
#include "fwd_params.h"
#include "mask_access.cuh"
#include "mma_sm80.cuh"
#include "sm90_dispatch.h"
#include "smem_tile.cuh"

namespace attn::cuda::detail {

// Rows [row0, row0 + kRows) of a [rows][kHeadDim] global matrix into a swizzled tile.
template <typename T, int kHeadDim, int kRows>
__device__ __forceinline__ void load_tile(T* smem, const T* gmem, int64_t row_stride, int row0,
                                          int limit) {
  copy_tile_async<T, kHeadDim, kRows, kFwdThreads>(smem, gmem, row_stride, row0, limit);
}

// The key / value tiles of the main loop: this thread's source chunk and shared-memory
// destination are computed once, so a tile costs a 64-bit multiply-add plus one 64-bit add
// and one copy per row pass; only a tile that runs past the last key predicates (and
// zero-fills) its rows. (The general copy computed addresses and predicates afresh for each
// tile: ~230 integer instructions per tile at head dim 128, a fifth of the loop.)
template <typename T, int kCols, int kRows>
struct TileStream {
  static constexpr int kChunks = kCols / 8;
  static constexpr int kRowsPerPass = kFwdThreads / kChunks;
  static constexpr int kPasses = kRows / kRowsPerPass;
  static_assert(kFwdThreads % kChunks == 0 && kRowsPerPass % 8 == 0 && kRows % kRowsPerPass == 0,
                "each pass must cover whole groups of 8 rows");
  const char* src;       // this thread's chunk of row `row` of tile 0
  int64_t row_bytes;     // row stride in bytes
  uint32_t dst;          // its shared-memory byte address in stage 0
  int row, limit;

  __device__ __forceinline__ TileStream(const T* smem, const T* gmem, int64_t row_stride, int limit_)
      : row(threadIdx.x / kChunks), limit(limit_) {
    const int chunk = threadIdx.x % kChunks;
    row_bytes = row_stride * int64_t{sizeof(T)};
    src = reinterpret_cast<const char*>(gmem + chunk * 8) + row * row_bytes;
    dst = smem_address(smem + swizzled<kCols>(row, chunk));
  }
  // Issues the copies of rows [tile * kRows, + kRows) into stage `stage` (kRows x kCols each).
  __device__ __forceinline__ void load(int tile, int stage) const {
    const int row0 = tile * kRows;
    const char* s = src + row0 * row_bytes;
    const int64_t pass_bytes = kRowsPerPass * row_bytes;
    const uint32_t d = dst + static_cast<uint32_t>(stage * kRows * kCols * sizeof(T));
    if (row0 + kRows <= limit) {
#pragma unroll
      for (int pass = 0; pass < kPasses; ++pass)
        cp_async_16_full(d + pass * kRowsPerPass * kCols * sizeof(T), s + pass * pass_bytes);
    } else {
#pragma unroll
      for (int pass = 0; pass < kPasses; ++pass) {
        const bool valid = row0 + row + pass * kRowsPerPass < limit;
        cp_async_16(d + pass * kRowsPerPass * kCols * sizeof(T), valid ? s + pass * pass_bytes : src, valid);
      }
    }
  }
};

// Q fragments of the warp's row tiles: kept in registers for the whole kernel when they
// fit (head dim 64), else re-read from shared memory for each k16 slice (head dim 128,
// whose output accumulators already take half the register file).
template <typename T, int kHeadDim>
struct QueryFragments {
  static constexpr bool kInRegisters = kHeadDim <= 64;
  static constexpr int kSlices = kInRegisters ? kHeadDim / 16 : 1;
  uint32_t f[kRowTiles][kSlices][4];
  const T* sQ;
  int warp, lane;

  __device__ __forceinline__ void load_slice(int mt, int kk, uint32_t (&r)[4]) const {
    const int m = lane >> 3, rr = lane & 7;
    const SwizzledRows<kHeadDim> rows(sQ, warp * 16 * kRowTiles + (m & 1) * 8 + rr, m >> 1);
    ldmatrix_x4(r, rows.at(kk, mt * 16));
  }
  __device__ __forceinline__ void preload() {
    if constexpr (kInRegisters) {
#pragma unroll
      for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
        for (int kk = 0; kk < kSlices; ++kk) load_slice(mt, kk, f[mt][kk]);
    }
  }
  // Slice kk of row tile mt into `a` (a register copy the compiler elides, or ldmatrix).
  __device__ __forceinline__ void fetch(int mt, int kk, uint32_t (&a)[4]) const {
    if constexpr (kInRegisters) {
#pragma unroll
      for (int i = 0; i < 4; ++i) a[i] = f[mt][kk][i];
    } else {
      load_slice(mt, kk, a);
    }
  }
};

// S (this warp's 2 x 16 rows x 64 keys) = Q . K^T for the key tile in `sK`.
template <typename T, int kHeadDim>
__device__ __forceinline__ void tile_scores(float (&s)[kRowTiles][kBlockN / 8][4],
                                            const QueryFragments<T, kHeadDim>& qf, const T* sK,
                                            int lane) {
#pragma unroll
  for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
    for (int nt = 0; nt < kBlockN / 8; ++nt) s[mt][nt][0] = s[mt][nt][1] = s[mt][nt][2] = s[mt][nt][3] = 0.0f;
  const int m = lane >> 3, r = lane & 7;
  const SwizzledRows<kHeadDim> key_rows(sK, (m >> 1) * 8 + r, m & 1);
#pragma unroll
  for (int kk = 0; kk < kHeadDim / 16; ++kk) {
    uint32_t a[kRowTiles][4];
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt) qf.fetch(mt, kk, a[mt]);
#pragma unroll
    for (int np = 0; np < kBlockN / 16; ++np) {
      uint32_t b[4];
      ldmatrix_x4(b, key_rows.at(kk, np * 16));
#pragma unroll
      for (int mt = 0; mt < kRowTiles; ++mt) {
        MmaOp<T>::run(s[mt][2 * np], a[mt], b[0], b[1]);
        MmaOp<T>::run(s[mt][2 * np + 1], a[mt], b[2], b[3]);
      }
    }
  }
}

// AddendTile::build_staged's typed reads of staged raw tiles: eight consecutive elements.
template <typename BiasT>
__device__ __forceinline__ void read_bias8(const unsigned char* at, float (&v)[8]) {  // 16-bit types
  const uint4 w = *reinterpret_cast<const uint4*>(at);
  const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
  for (int k = 0; k < 4; ++k) {
    const float2 f = unpack2<BiasT>(words[k]);
    v[2 * k] = f.x;
    v[2 * k + 1] = f.y;
  }
}
template <>
__device__ __forceinline__ void read_bias8<float>(const unsigned char* at, float (&v)[8]) {
  const float4 x = reinterpret_cast<const float4*>(at)[0], y = reinterpret_cast<const float4*>(at)[1];
  v[0] = x.x, v[1] = x.y, v[2] = x.z, v[3] = x.w, v[4] = y.x, v[5] = y.y, v[6] = y.z, v[7] = y.w;
}
// Eight mask elements of kBytes each -> a bit per element: set where the element has a
// nonzero bit other than a float's sign (so -0 is inactive, as in the pre-pass).
template <int kBytes>
__device__ __forceinline__ uint32_t active_bits8(const unsigned char* at) {
  uint32_t bits = 0;
  if constexpr (kBytes == 1) {
    const uint2 w = *reinterpret_cast<const uint2*>(at);
#pragma unroll
    for (int e = 0; e < 8; ++e) bits |= (((e < 4 ? w.x : w.y) >> (8 * (e & 3))) & 0xffu) != 0 ? 1u << e : 0u;
  } else if constexpr (kBytes == 2) {
    const uint4 w = *reinterpret_cast<const uint4*>(at);
    const uint32_t words[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
    for (int e = 0; e < 8; ++e) bits |= ((words[e / 2] >> (16 * (e & 1))) & 0x7fffu) != 0 ? 1u << e : 0u;
  } else {
    const uint4 x = reinterpret_cast<const uint4*>(at)[0], y = reinterpret_cast<const uint4*>(at)[1];
    const uint32_t words[8] = {x.x, x.y, x.z, x.w, y.x, y.y, y.z, y.w};
#pragma unroll
    for (int e = 0; e < 8; ++e) bits |= (words[e] & 0x7fffffffu) != 0 ? 1u << e : 0u;
  }
  return bits;
}

// Bias / active-mask tiles (128 queries x 64 keys) staged in shared memory by cp.async
// when their rows are 16-byte aligned (RulesTile::usable decides on the host), so the
// kernel reads them with the latency hidden behind Q.K^T. Rows are padded by 16 bytes:
// the 8 rows one warp reads at a time then fall in different banks.
struct RulesTile {
  static constexpr int kPad = 16;
  __host__ __device__ static int pitch(int dtype_bytes) { return kBlockN * dtype_bytes + kPad; }
  __host__ __device__ static int bytes(int dtype_bytes) { return kBlockM * pitch(dtype_bytes); }

  // Issues the copies of rows [m0, m0 + kBlockM) x keys [j0, j0 + kBlockN) of one tensor
  // (the element size dispatched once: with it a run-time value, the loop's division and
  // address arithmetic were a sixth of the masked forward's instructions).
  __device__ static void load(unsigned char* smem, const void* base, int dtype_bytes,
                              const Strides3Rows& st, int64_t offset, int m0, int j0,
                              const FwdParams& p) {
    const char* g = static_cast<const char*>(base) + offset * dtype_bytes;
    switch (dtype_bytes) {
      case 1: load_typed<1>(smem, g, st.row, m0, j0, p); break;
      case 2: load_typed<2>(smem, g, st.row, m0, j0, p); break;
      default: load_typed<4>(smem, g, st.row, m0, j0, p); break;
    }
  }
  template <int kBytes>
  __device__ static void load_typed(unsigned char* smem, const char* g, int64_t row_stride, int m0, int j0,
                                    const FwdParams& p) {
    constexpr int kChunks = kBlockN * kBytes / 16, kPerChunk = 16 / kBytes;
    constexpr int kRowsPerPass = kFwdThreads / kChunks;
    static_assert(kFwdThreads % kChunks == 0 && kBlockM % kRowsPerPass == 0, "whole rows per pass");
    const int r = threadIdx.x / kChunks, ch = threadIdx.x % kChunks;
    const uint32_t dst = smem_address(smem + r * pitch(kBytes) + ch * 16);
    const char* src = g + (int64_t{m0 + r} * row_stride + j0 + ch * kPerChunk) * kBytes;
    const int64_t pass_stride = kRowsPerPass * row_stride * kBytes;
    if (m0 + kBlockM <= p.seq_q && j0 + kBlockN <= p.seq_k) {  // a whole tile: no predicates
#pragma unroll
      for (int pass = 0; pass < kBlockM / kRowsPerPass; ++pass)
        cp_async_16_full(dst + pass * kRowsPerPass * pitch(kBytes), src + pass * pass_stride);
      return;
    }
    const bool col_valid = j0 + ch * kPerChunk < p.seq_k;
#pragma unroll
    for (int pass = 0; pass < kBlockM / kRowsPerPass; ++pass) {
      const bool valid = col_valid && m0 + r + pass * kRowsPerPass < p.seq_q;
      cp_async_16(dst + pass * kRowsPerPass * pitch(kBytes), valid ? src + pass * pass_stride : g, valid);
    }
  }
};

// The additive tile of the masked path: for each (query, key) of the tile, the bias (0
// without one) where the pair is attended, -inf where the active mask or the keep window
// drops it. Built once per tile by the whole block from the staged copies (or global
// memory), so the per-thread score code stays small whatever the mask dtypes.
struct AddendTile {
  static constexpr int kPitch = kBlockN + 4;  // floats; padding spreads rows over banks
  // The tile holds bias * log2(e) (the scores' log2 units), so that a score costs one FFMA.
  static constexpr float kLog2e = 1.4426950408889634f;
  static constexpr int kBytes = kBlockM * kPitch * 4;

  // Eight consecutive elements (row_at, keys j .. j+7) of a bias or mask in global memory.
  __device__ static void load8(const void* base, int dtype, int64_t row_at, int64_t col_stride,
                               int j, int seq_k, float (&v)[8]) {
#pragma unroll
    for (int e = 0; e < 8; ++e)
      v[e] = j + e < seq_k ? load_as_float(base, dtype, row_at + (j + e) * col_stride) : 0.0f;
  }

  // The tile from staged raw tiles, with the dtypes dispatched once per tile to typed
  // loops: the bias pass writes bias-or-minus-infinity, then the mask pass (the same
  // thread, the same chunks, so no barrier between them) sets -inf where the mask is off.
  // Per-element dtype switches had made the masked forward instruction-bound
  // (H100, n = 4096: 8x the dense forward's time, its code overflowing the instruction
  // cache).
  __device__ static void build_staged(float* tile, const FwdParams& p, int b, int hk, int m0, int j0,
                                      const unsigned char* bias_raw, const unsigned char* active_raw) {
    switch (p.bias == nullptr ? -1 : p.bias_dtype) {
      case static_cast<int>(DType::kBFloat16): bias_pass<__nv_bfloat16>(tile, p, b, hk, m0, j0, bias_raw); break;
      case static_cast<int>(DType::kFloat16): bias_pass<__half>(tile, p, b, hk, m0, j0, bias_raw); break;
      case static_cast<int>(DType::kFloat32): bias_pass<float>(tile, p, b, hk, m0, j0, bias_raw); break;
      default: bias_pass<void>(tile, p, b, hk, m0, j0, nullptr); break;
    }
    if (p.active == nullptr) return;
    switch (element_bytes(p.active_dtype)) {
      case 1: mask_pass<1>(tile, active_raw); break;
      case 2: mask_pass<2>(tile, active_raw); break;
      default: mask_pass<4>(tile, active_raw); break;
    }
  }
  static constexpr int kChunksPerThread = kBlockM * (kBlockN / 8) / kFwdThreads;

  template <typename BiasT>  // void: no bias (zeros)
  __device__ static void bias_pass(float* tile, const FwdParams& p, int b, int hk, int m0, int j0,
                                   const unsigned char* raw) {
    constexpr int kChunks = kBlockN / 8;
    const float* thresholds =
        p.row_threshold != nullptr ? p.row_threshold + (int64_t{b} * p.heads_kv + hk) * p.seq_q : nullptr;
#pragma unroll 1  // a rolled loop: unrolled, its registers spilled the S and O accumulators
    for (int k = 0; k < kChunksPerThread; ++k) {
      const int c = threadIdx.x + k * kFwdThreads, r = c / kChunks, ch = c % kChunks, i = m0 + r, j = j0 + ch * 8;
      float v[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      float threshold = -CUDART_INF_F;
      if constexpr (!std::is_void_v<BiasT>) {
        read_bias8<BiasT>(raw + r * RulesTile::pitch(sizeof(BiasT)) + ch * 8 * sizeof(BiasT), v);
        if (thresholds != nullptr && i < p.seq_q) threshold = thresholds[i];
      }
      const bool row_in = i < p.seq_q;
#pragma unroll
      for (int e = 0; e < 8; ++e)
        v[e] = row_in && j + e < p.seq_k && v[e] >= threshold ? v[e] * kLog2e : -CUDART_INF_F;
      float4* dst = reinterpret_cast<float4*>(tile + r * kPitch + ch * 8);
      dst[0] = make_float4(v[0], v[1], v[2], v[3]);
      dst[1] = make_float4(v[4], v[5], v[6], v[7]);
    }
  }

  template <int kMaskBytes>
  __device__ static void mask_pass(float* tile, const unsigned char* raw) {
    constexpr int kChunks = kBlockN / 8;
#pragma unroll 1
    for (int k = 0; k < kChunksPerThread; ++k) {
      const int c = threadIdx.x + k * kFwdThreads, r = c / kChunks, ch = c % kChunks;
      const uint32_t on = active_bits8<kMaskBytes>(raw + r * RulesTile::pitch(kMaskBytes) + ch * 8 * kMaskBytes);
      if (on == 0xffu) continue;
      float4* at = reinterpret_cast<float4*>(tile + r * kPitch + ch * 8);
      float4 x = at[0], y = at[1];
      x.x = on & 1u ? x.x : -CUDART_INF_F, x.y = on & 2u ? x.y : -CUDART_INF_F;
      x.z = on & 4u ? x.z : -CUDART_INF_F, x.w = on & 8u ? x.w : -CUDART_INF_F;
      y.x = on & 16u ? y.x : -CUDART_INF_F, y.y = on & 32u ? y.y : -CUDART_INF_F;
      y.z = on & 64u ? y.z : -CUDART_INF_F, y.w = on & 128u ? y.w : -CUDART_INF_F;
      at[0] = x, at[1] = y;
    }
  }

  // The tile straight from global memory, element by element (tensors whose tiles could not
  // be staged, and return_softmax's second pass): each thread does 8 of the 1024 chunks.
  __device__ static void build(float* tile, const FwdParams& p, int b, int hk, int m0, int j0) {
    constexpr int kChunks = kBlockN / 8;
    const int64_t bias_base = int64_t{b} * p.bias_stride.batch + int64_t{hk} * p.bias_stride.head;
    const int64_t active_base =
        int64_t{b} * p.active_stride.batch + int64_t{hk} * p.active_stride.head;
    for (int c = threadIdx.x; c < kBlockM * kChunks; c += kFwdThreads) {
      const int r = c / kChunks, ch = c % kChunks, i = m0 + r, j = j0 + ch * 8;
      float add[8];
      if (i >= p.seq_q || j >= p.seq_k) {
#pragma unroll
        for (int e = 0; e < 8; ++e) add[e] = -CUDART_INF_F;
      } else {
        float bias[8] = {0, 0, 0, 0, 0, 0, 0, 0}, on[8] = {1, 1, 1, 1, 1, 1, 1, 1};
        float threshold = -CUDART_INF_F;
        if (p.bias != nullptr) {
          load8(p.bias, p.bias_dtype, bias_base + i * p.bias_stride.row, p.bias_stride.col, j, p.seq_k, bias);
          if (p.row_threshold != nullptr)
            threshold = p.row_threshold[(int64_t{b} * p.heads_kv + hk) * p.seq_q + i];
        }
        if (p.active != nullptr) {
          load8(p.active, p.active_dtype, active_base + i * p.active_stride.row, p.active_stride.col, j, p.seq_k, on);
        }
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          const bool keep = j + e < p.seq_k && on[e] != 0.0f && bias[e] >= threshold;
          add[e] = keep ? bias[e] * kLog2e : -CUDART_INF_F;
        }
      }
      float4* dst = reinterpret_cast<float4*>(tile + r * kPitch + ch * 8);
      dst[0] = make_float4(add[0], add[1], add[2], add[3]);
      dst[1] = make_float4(add[4], add[5], add[6], add[7]);
    }
  }
};

// The per-element score rules of one tile (softcap, causal, the addend tile). With any
// rule (softcap, bias or mask) the scores become logits in log2 units; without, they stay
// raw q.k and the softmax applies scale * log2(e) inside its exponent (one FFMA), so
// apply() only blocks the keys past the causal frontier or the end of the sequence.
// This thread's rows are row_g and row_g + 8, keys j0 + nt*8 + 2t + e.
struct ScoreRules {
  const FwdParams& p;
  int m0;
  const float* addend = nullptr;  // AddendTile, when a bias or mask is given

  // What the softmax multiplies the tile's values by to get log2-unit logits.
  __device__ __forceinline__ float log2_factor(bool any_rules) const {
    return any_rules ? 1.0f : p.scale_log2;
  }

  // any_rules: the tile's scores become logits (softcap, then + the addend); edges: the
  // tile reaches the causal frontier, a window edge or the last key, so each key's position
  // is tested. Both are block-uniform, and the softcap test is made once per call: per
  // element the common cases cost one FFMA (bias / mask) or nothing (an interior tile).
  __device__ __forceinline__ void apply(float (&s)[kBlockN / 8][4], int row_g, int j0, int t, bool edges,
                                        bool any_rules) const {
    constexpr float kLog2e = 1.4426950408889634f;
    if (any_rules) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const float* add_row = addend != nullptr ? addend + (row_g + half * 8 - m0) * AddendTile::kPitch : nullptr;
#pragma unroll
        for (int nt = 0; nt < kBlockN / 8; ++nt) {
          float2 add = make_float2(0.0f, 0.0f);  // bias * log2(e), or -inf where dropped
          if (add_row != nullptr) add = *reinterpret_cast<const float2*>(add_row + nt * 8 + 2 * t);
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            float& x = s[nt][half * 2 + e];
            const float a = e == 0 ? add.x : add.y;
            // A dropped key stays -inf even where q.k is NaN or infinite.
            if (p.softcap > 0.0f) {
              x = a == -CUDART_INF_F ? -CUDART_INF_F : fmaf(p.softcap * tanhf(x * p.scale / p.softcap), kLog2e, a);
            } else {
              x = a == -CUDART_INF_F ? -CUDART_INF_F : fmaf(x, p.scale_log2, a);
            }
          }
        }
      }
    }
    if (!edges) return;
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const KeyRange keys = visible_keys(p, row_g + half * 8);
      // The lane's key nt * 8 + e (of the tile) is kept if first_room <= it <= last_room.
      const int64_t last_room = keys.last - (j0 + 2 * t), first_room = keys.first - (j0 + 2 * t);
#pragma unroll
      for (int nt = 0; nt < kBlockN / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 2; ++e)
          if (nt * 8 + e > last_room || nt * 8 + e < first_room) s[nt][half * 2 + e] = -CUDART_INF_F;
    }
  }
};

// Whether key tile `nb` of this query block can hold an attended pair.
__device__ __forceinline__ bool tile_is_active(const FwdParams& p, int b, int hk, int m_block,
                                               int nb) {
  if (p.tile_active == nullptr) return true;
  return tile_map_row(p, b, hk, m_block)[nb] != 0;
}

// kGeneral = false compiles the dense path alone (no bias, mask, tile map, softcap,
// dropout or return_softmax): fewer registers and no dead branches in the hot loop.
template <typename T, int kHeadDim, typename OutT, bool kGeneral>
__global__ void __launch_bounds__(kFwdThreads, 2) flash_fwd_kernel(const FwdParams p) {
  static_assert(kHeadDim % 16 == 0, "head_dim must be a multiple of 16");
  static_assert(kBlockM == kFwdWarps * kRowTiles * 16, "each warp owns kRowTiles row tiles");
  constexpr int kTilesN = kBlockN / 8;      // n8 tiles of scores per row tile
  constexpr int kTilesD = kHeadDim / 8;     // n8 tiles of output per row tile
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
  // This thread's rows: row_of(mt) and row_of(mt) + 8 for each row tile mt.
  auto row_of = [&](int mt) { return m0 + warp * 16 * kRowTiles + mt * 16 + g; };

  const T* q = static_cast<const T*>(p.q) + b * p.q_stride.batch + h * p.q_stride.head;
  const T* k = static_cast<const T*>(p.k) + b * p.k_stride.batch + hk * p.k_stride.head;
  const T* v = static_cast<const T*>(p.v) + b * p.v_stride.batch + hk * p.v_stride.head;

  // Segment ids (kGeneral only, rare): their accessor is rebuilt where used, so the general
  // kernel carries no registers for them (holding it and the rows' segments throughout had
  // grown its d = 128 spill from 88 to 136 bytes).
  const bool segmented = kGeneral && p.q_segment != nullptr;
  TileRange key_tiles = visible_key_tiles(p, m0, kBlockM, kBlockN);
  if (segmented) key_tiles = Segments(p, b, h, hk).clip(p, key_tiles, m0, kBlockM, kBlockN);
  const int n_begin = key_tiles.begin, n_end = key_tiles.end;
  auto next_active = [&](int nb) {
    if constexpr (kGeneral) {
      while (nb < n_end && !tile_is_active(p, b, hk, m_block, nb)) ++nb;
    }
    return nb;
  };

  float o[kRowTiles][kTilesD][4];
  float row_max[kRowTiles][2], row_sum[kRowTiles][2];
#pragma unroll
  for (int mt = 0; mt < kRowTiles; ++mt) {
#pragma unroll
    for (int d = 0; d < kTilesD; ++d) o[mt][d][0] = o[mt][d][1] = o[mt][d][2] = o[mt][d][3] = 0.0f;
    row_max[mt][0] = row_max[mt][1] = -CUDART_INF_F;
    row_sum[mt][0] = row_sum[mt][1] = 0.0f;
  }
  const bool any_mask = kGeneral && (p.bias != nullptr || p.active != nullptr);
  const bool any_rules = any_mask || (kGeneral && p.softcap > 0.0f);
  const bool stage_rules = kGeneral && p.stage_rules;
  const bool dropout = kGeneral && p.dropout;
  // After the K / V stages: the addend tile, then the staged raw bias / mask tiles.
  float* addend = reinterpret_cast<float*>(sV + 2 * kBlockN * kHeadDim);
  unsigned char* bias_smem = reinterpret_cast<unsigned char*>(addend) + AddendTile::kBytes;
  unsigned char* active_smem =
      bias_smem + (p.bias != nullptr ? RulesTile::bytes(element_bytes(p.bias_dtype)) : 0);
  const unsigned char* bias_raw = stage_rules && p.bias != nullptr ? bias_smem : nullptr;
  const unsigned char* active_raw = stage_rules && p.active != nullptr ? active_smem : nullptr;
  const ScoreRules rules{p, m0, any_mask ? addend : nullptr};
  const int64_t bias_offset = int64_t{b} * p.bias_stride.batch + int64_t{hk} * p.bias_stride.head;
  const int64_t active_offset = int64_t{b} * p.active_stride.batch + int64_t{hk} * p.active_stride.head;

  int nb = next_active(n_begin);
  const TileStream<T, kHeadDim, kBlockN> k_stream(sK, k, p.k_stride.row, p.seq_k);
  const TileStream<T, kHeadDim, kBlockN> v_stream(sV, v, p.v_stride.row, p.seq_k);
  load_tile<T, kHeadDim, kBlockM>(sQ, q, p.q_stride.row, m0, p.seq_q);
  if (nb < n_end) {
    k_stream.load(nb, 0);
    v_stream.load(nb, 0);
  }
  cp_async_commit();

  QueryFragments<T, kHeadDim> qf{{}, sQ, warp, lane};
  bool q_loaded = false;
  int stage = 0;
  while (nb < n_end) {
    const int nb_next = next_active(nb + 1);
    // Copy groups in flight, oldest first: K/V of this tile, its bias / mask tiles (when
    // staged), K/V of the next tile.
    if (stage_rules) {
      if (p.bias != nullptr)
        RulesTile::load(bias_smem, p.bias, element_bytes(p.bias_dtype), p.bias_stride, bias_offset,
                        m0, nb * kBlockN, p);
      if (p.active != nullptr)
        RulesTile::load(active_smem, p.active, element_bytes(p.active_dtype), p.active_stride,
                        active_offset, m0, nb * kBlockN, p);
      cp_async_commit();
    }
    if (nb_next < n_end) {
      k_stream.load(nb_next, stage ^ 1);
      v_stream.load(nb_next, stage ^ 1);
    }
    cp_async_commit();  // possibly empty: keeps the group count the same every iteration
    if (stage_rules) {
      cp_async_wait<2>();
    } else {
      cp_async_wait<1>();
    }
    __syncthreads();
    if (!q_loaded) {
      qf.preload();
      q_loaded = true;
    }
    const T* sKs = sK + stage * kBlockN * kHeadDim;
    const T* sVs = sV + stage * kBlockN * kHeadDim;

    const int j0 = nb * kBlockN;
    const bool edges = tile_has_edges(p, m0, kBlockM, j0, kBlockN);
    float s[kRowTiles][kTilesN][4];
    tile_scores<T, kHeadDim>(s, qf, sKs, lane);
    if (any_mask) {  // this tile's bias / mask (copies issued before Q.K^T) -> addend
      if (stage_rules) cp_async_wait<1>();
      __syncthreads();
      if (stage_rules) AddendTile::build_staged(addend, p, b, hk, m0, j0, bias_raw, active_raw);
      else AddendTile::build(addend, p, b, hk, m0, j0);
      __syncthreads();
    }
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt) rules.apply(s[mt], row_of(mt), j0, t, edges, any_rules);
    if (segmented) {
      const Segments segments(p, b, h, hk);
      if (segments.mixed(p, m0, kBlockM, j0, kBlockN)) segments.drop_other_keys(s, row_of(0), p, j0, t);
    }

    // Online softmax over this tile, per row (half 0: row_of(mt), half 1: + 8). row_max is
    // kept in log2 units; the tile's values become log2 units by `factor` (> 0, so the
    // maximum can be taken before scaling), folded into each exponent's FFMA.
    // Lazy rescaling: a row's reference maximum moves only when the tile's maximum exceeds it
    // by more than kSlack (log2 units), so probabilities stay <= 2^kSlack (exact in float32,
    // and as precise in 16 bits) and the output rescale, a warp-uniform branch before the
    // exponentials, is rare after the first tiles (it cost 128 multiplies per thread and
    // tile, and register moves around the mma accumulators).
    constexpr float kSlack = 8.0f;
    const float factor = rules.log2_factor(any_rules);
    float tile_max[kRowTiles][2];
    bool grow = false;
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        float mx = -CUDART_INF_F;
#pragma unroll
        for (int nt = 0; nt < kTilesN; ++nt)
          mx = fmaxf(mx, fmaxf(s[mt][nt][half * 2], s[mt][nt][half * 2 + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        tile_max[mt][half] = mx * factor;
        grow = grow || tile_max[mt][half] > row_max[mt][half] + kSlack;
      }
    }
    if (__any_sync(0xffffffffu, grow)) {
      float alpha[kRowTiles][2];
#pragma unroll
      for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const float mx = tile_max[mt][half];
          const bool move = mx > row_max[mt][half] + kSlack;  // never when mx = -inf
          alpha[mt][half] = move ? ex2_approx(row_max[mt][half] - mx) : 1.0f;  // 0 from -inf
          if (move) row_max[mt][half] = mx;
          row_sum[mt][half] *= alpha[mt][half];
        }
#pragma unroll
      for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
        for (int d = 0; d < kTilesD; ++d) {
          o[mt][d][0] *= alpha[mt][0];
          o[mt][d][1] *= alpha[mt][0];
          o[mt][d][2] *= alpha[mt][1];
          o[mt][d][3] *= alpha[mt][1];
        }
    }
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt) {
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        // A row that has seen nothing yet keeps -inf: its exponentials are ex2(-inf) = 0.
        const float neg_base = row_max[mt][half] == -CUDART_INF_F ? 0.0f : -row_max[mt][half];
        float sum[2] = {0.0f, 0.0f};  // two chains of additions
#pragma unroll
        for (int nt = 0; nt < kTilesN; ++nt) {
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            float& x = s[mt][nt][half * 2 + e];
            x = ex2_approx(fmaf(x, factor, neg_base));
            sum[nt & 1] += x;
          }
        }
        row_sum[mt][half] += sum[0] + sum[1];
      }
    }
    if (dropout) {
#pragma unroll
      for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
        for (int half = 0; half < 2; ++half) {
          const int i = row_of(mt) + half * 8;
          const uint64_t row_base = ((uint64_t(b) * p.heads_q + h) * p.seq_q + i) * p.seq_k;
#pragma unroll
          for (int nt = 0; nt < kTilesN; ++nt)
#pragma unroll
            for (int e = 0; e < 2; ++e) {
              const int j = j0 + nt * 8 + 2 * t + e;
              float& pe = s[mt][nt][half * 2 + e];
              if (!p.rng.keep(row_base + j)) pe = 0.0f;  // kept ones: 1 / (1 - p) in the epilogue
            }
        }
    }

    // O += P . V: P's accumulator layout is the A layout of the next mma (two n8 tiles
    // make one k16 slice), V comes through ldmatrix.trans; each V fragment feeds both
    // row tiles.
    const int m = lane >> 3, r = lane & 7;
    const SwizzledRows<kHeadDim> value_rows(sVs, (m & 1) * 8 + r, m >> 1);
#pragma unroll
    for (int kc = 0; kc < kBlockN / 16; ++kc) {
      uint32_t a[kRowTiles][4];
#pragma unroll
      for (int mt = 0; mt < kRowTiles; ++mt) {
        a[mt][0] = pack2<T>(s[mt][2 * kc][0], s[mt][2 * kc][1]);
        a[mt][1] = pack2<T>(s[mt][2 * kc][2], s[mt][2 * kc][3]);
        a[mt][2] = pack2<T>(s[mt][2 * kc + 1][0], s[mt][2 * kc + 1][1]);
        a[mt][3] = pack2<T>(s[mt][2 * kc + 1][2], s[mt][2 * kc + 1][3]);
      }
#pragma unroll
      for (int dp = 0; dp < kHeadDim / 16; ++dp) {
        uint32_t bv[4];
        ldmatrix_x4_trans(bv, value_rows.at(dp, kc * 16));
#pragma unroll
        for (int mt = 0; mt < kRowTiles; ++mt) {
          MmaOp<T>::run(o[mt][2 * dp], a[mt], bv[0], bv[1]);
          MmaOp<T>::run(o[mt][2 * dp + 1], a[mt], bv[2], bv[3]);
        }
      }
    }
    __syncthreads();  // this stage is refilled by the next iteration's copy
    stage ^= 1;
    nb = nb_next;
  }
  cp_async_wait<0>();  // nothing attended: drain the Q copy (and the empty groups)

  // Epilogue: finish the row sums across the quad, normalise, store O and lse.
  float inv[kRowTiles][2];
  OutT* out = static_cast<OutT*>(p.out) + b * p.o_stride.batch + h * p.o_stride.head;
#pragma unroll
  for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      float sum = row_sum[mt][half];
      sum += __shfl_xor_sync(0xffffffffu, sum, 1);
      sum += __shfl_xor_sync(0xffffffffu, sum, 2);
      row_sum[mt][half] = sum;
      inv[mt][half] = sum > 0.0f ? 1.0f / sum : 0.0f;
      const int i = row_of(mt) + half * 8;
      if (i >= p.seq_q) continue;
      OutT* orow = out + i * p.o_stride.row;
      // Dropout's 1 / (1 - p) for the kept weights is applied here (probabilities go up to
      // 2^kSlack in the loop: scaled there they could overflow float16 for p near 1).
      const float out_scale = dropout ? inv[mt][half] * p.rng.keep_scale() : inv[mt][half];
#pragma unroll
      for (int d = 0; d < kTilesD; ++d)
        store2<OutT>(orow + d * 8 + 2 * t, o[mt][d][half * 2] * out_scale,
                     o[mt][d][half * 2 + 1] * out_scale);
      if (p.lse != nullptr && t == 0) {
        constexpr float kLn2 = 0.6931471805599453f;
        p.lse[b * p.lse_stride.batch + h * p.lse_stride.head + i * p.lse_stride.row] =
            sum > 0.0f ? row_max[mt][half] * kLn2 + logf(sum) : -CUDART_INF_F;
      }
    }

  // return_softmax (a debugging aid): recompute each tile's scores and write the final
  // probabilities; tiles the loop skipped are written as zeros.
  if (!kGeneral || p.softmax == nullptr) return;
  T* prob = static_cast<T*>(p.softmax) + b * p.softmax_stride[0] + h * p.softmax_stride[1];
  for (int tile = 0; tile < p.k_tiles; ++tile) {
    const bool visited = tile >= n_begin && tile < n_end && tile_is_active(p, b, hk, m_block, tile);
    float s[kRowTiles][kTilesN][4];
    if (visited) {
      __syncthreads();
      load_tile<T, kHeadDim, kBlockN>(sK, k, p.k_stride.row, tile * kBlockN, p.seq_k);
      cp_async_commit();
      cp_async_wait<0>();
      __syncthreads();
      if (any_mask) AddendTile::build(addend, p, b, hk, m0, tile * kBlockN);
      __syncthreads();
      tile_scores<T, kHeadDim>(s, qf, sK, lane);
#pragma unroll
      for (int mt = 0; mt < kRowTiles; ++mt) rules.apply(s[mt], row_of(mt), tile * kBlockN, t, true, any_rules);
      if (segmented) Segments(p, b, h, hk).drop_other_keys(s, row_of(0), p, tile * kBlockN, t);
    }
#pragma unroll
    for (int mt = 0; mt < kRowTiles; ++mt)
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int i = row_of(mt) + half * 8;
        if (i >= p.seq_q) continue;
        const float base = row_max[mt][half] == -CUDART_INF_F ? 0.0f : row_max[mt][half];
        const float factor = rules.log2_factor(any_rules);
#pragma unroll
        for (int nt = 0; nt < kTilesN; ++nt)
#pragma unroll
          for (int e = 0; e < 2; ++e) {
            const int j = tile * kBlockN + nt * 8 + 2 * t + e;
            if (j >= p.seq_k) continue;
            const float pr =
                visited ? exp2f(fmaf(s[mt][nt][half * 2 + e], factor, -base)) * inv[mt][half] : 0.0f;
            prob[int64_t{i} * p.softmax_stride[2] + j] = from_float<T>(pr);
          }
      }
  }
}

template <typename T, int kHeadDim, typename OutT>
cudaError_t launch_flash_fwd(const FwdParams& params, cudaStream_t stream) {
  FwdParams p = params;
  size_t smem = sizeof(T) * kHeadDim * (kBlockM + 4 * kBlockN);
  if (p.bias != nullptr || p.active != nullptr) smem += AddendTile::kBytes;
  if (p.stage_rules) {
    size_t staged = 0;
    if (p.bias != nullptr) staged += RulesTile::bytes(dtype_bytes(static_cast<DType>(p.bias_dtype)));
    if (p.active != nullptr) staged += RulesTile::bytes(dtype_bytes(static_cast<DType>(p.active_dtype)));
    // Staged bias / mask tiles need up to 202 KB of shared memory per block; where the GPU
    // has less (A100: 163 KB), the kernel reads them from global memory instead.
    int device = 0, limit = 0;
    cudaError_t err = cudaGetDevice(&device);
    if (err == cudaSuccess) err = cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
    if (err != cudaSuccess) return err;
    if (smem + staged <= static_cast<size_t>(limit)) smem += staged;
    else p.stage_rules = false;
  }
  const bool general = p.bias != nullptr || p.active != nullptr || p.tile_active != nullptr ||
                       p.q_segment != nullptr || p.softcap > 0.0f || p.dropout || p.softmax != nullptr;
  if constexpr (std::is_same_v<OutT, T>) {
    constexpr DType kElement = std::is_same_v<T, __half> ? DType::kFloat16 : DType::kBFloat16;
    if (sm90_forward_applies(p, static_cast<int>(kElement))) {
      const cudaError_t err = launch_flash_fwd_sm90<T, kHeadDim>(p, stream);
      if (err != cudaErrorNotSupported) return err;  // else layouts it cannot read: mma.sync
    }
  }
  auto kernel = general ? flash_fwd_kernel<T, kHeadDim, OutT, true>
                        : flash_fwd_kernel<T, kHeadDim, OutT, false>;
  cudaError_t err = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, int(smem));
  if (err != cudaSuccess) return err;
  const dim3 grid(p.q_tiles, p.heads_q, p.batch);
  kernel<<<grid, kFwdThreads, smem, stream>>>(p);
  return cudaGetLastError();
}

}  // namespace attn::cuda::detail
