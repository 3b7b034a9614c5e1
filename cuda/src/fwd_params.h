// What the forward kernels read: the validated arguments of flash_forward flattened into
// one trivially copyable struct passed by value (strides in elements).
#pragma once
#include <cstdint>

#include "flash/dropout_rng.h"

namespace attn::cuda::detail {

// Tile shape shared by the forward kernel and the mask pre-pass (its tile map must
// describe the tiles the kernel walks).
constexpr int kBlockM = 128;  // queries per thread block (4 warps x 2 row tiles of 16)
constexpr int kBlockN = 64;   // keys per tile
constexpr int kFwdWarps = 4;
constexpr int kRowTiles = 2;  // m16 tiles per warp: each K/V fragment read from shared
                              // memory feeds two mma, halving shared-memory traffic
constexpr int kFwdThreads = kFwdWarps * 32;

// dtype codes of the optional bias / mask tensors (as attn::cuda::DType)
struct Strides3 {
  int64_t batch = 0, row = 0, head = 0;
};
struct Strides3Rows {  // bias / mask [batch][heads_kv][seq_q][seq_k]
  int64_t batch = 0, head = 0, row = 0, col = 1;
};

// Whether a bias / mask tensor (element_bytes each) can be copied 16 bytes at a time:
// contiguous keys, rows and base 16-byte aligned, seq_k a whole number of 16-byte chunks
// (the mma.sync kernel's staged tiles, the Hopper forward's bias).
inline bool stageable(const void* data, int64_t element_bytes, const Strides3Rows& st, int64_t seq_k) {
  if (data == nullptr) return true;
  return st.col == 1 && (st.row * element_bytes) % 16 == 0 && (st.head * element_bytes) % 16 == 0 &&
         (st.batch * element_bytes) % 16 == 0 && (seq_k * element_bytes) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(data) % 16 == 0;
}

// Bytes per row of the kept-key bit map: a bit per key, rows padded to 16 bytes (the Hopper
// forward copies 16-byte chunks).
constexpr int64_t kept_bits_row_bytes(int64_t seq_k) { return ((seq_k + 7) / 8 + 15) / 16 * 16; }

struct FwdParams {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  void* out = nullptr;
  Strides3 q_stride, k_stride, v_stride, o_stride;

  const void* bias = nullptr;
  int bias_dtype = 0;
  Strides3Rows bias_stride;
  const void* active = nullptr;
  int active_dtype = 0;
  Strides3Rows active_stride;

  bool stage_rules = false;  // bias / mask tiles copied to shared memory (aligned rows)
  const float* row_threshold = nullptr;  // [batch][heads_kv][seq_q]: keep-window cut-off
  const uint8_t* tile_active = nullptr;  // [batch][heads_kv][q_tiles][k_tiles]
  // The pre-pass's kept keys as bits (mask_prepass.h), for the Hopper forward, which then
  // reads neither the mask nor the thresholds.
  const uint8_t* kept_bits = nullptr;
  // Segment ids (ASAM's random and clustered patterns on the GPU, asam_sparse.cu): key j
  // is visible to query i only where q_segment[i] == k_segment[j]. Both non-decreasing along
  // their sequence, so a query block's keys are one range (found by binary search) and a
  // tile inside one segment needs no per-key test. Element (b, h, i) at
  // b * segment_batch_stride + h * seq + i (heads_q rows for q, heads_kv for k).
  const int32_t* q_segment = nullptr;
  const int32_t* k_segment = nullptr;
  int64_t q_segment_batch_stride = 0, k_segment_batch_stride = 0;
  float* lse = nullptr;                  // [batch][heads_q][seq_q]
  Strides3 lse_stride;                   // batch, row (= 1 usually), head
  void* softmax = nullptr;               // [batch][heads_q][seq_q][seq_k]
  int64_t softmax_stride[4] = {0, 0, 0, 1};

  int batch = 0, seq_q = 0, seq_k = 0, heads_q = 0, heads_kv = 0, group = 1;
  int q_tiles = 0, k_tiles = 0;
  bool causal = false;
  int64_t causal_offset = 0;  // query i sees keys j <= i + causal_offset
  // Sliding window around the diagonal j = i + causal_offset: keys from i + causal_offset -
  // window_left to i + causal_offset + window_right; -1 = unlimited on that side.
  int64_t window_left = -1, window_right = -1;
  float scale = 1.0f;         // natural units
  float scale_log2 = 1.0f;    // scale * log2(e), for the fast path
  float softcap = 0.0f;
  bool dropout = false;
  attn::DropoutRng rng{0, 0.0f};
};

}  // namespace attn::cuda::detail
