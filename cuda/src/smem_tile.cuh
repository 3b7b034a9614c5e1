// Shared-memory tiles of 16-bit elements used by the forward and backward kernels: the
// swizzled layout ldmatrix reads without bank conflicts, and the cp.async copy that fills it.
#pragma once
#include <cstdint>

#include "mma_sm80.cuh"

namespace attn::cuda::detail {

// Offset of 16-byte chunk `chunk` of row `row` in a [rows][kCols] tile whose chunks are
// XOR-swizzled by the row (modulo 8, or the chunks per row when fewer), so the 8 rows one
// ldmatrix reads at the same column sit in different bank groups.
template <int kCols>
__device__ __forceinline__ int swizzled(int row, int chunk) {
  constexpr int kChunks = kCols / 8;
  constexpr int kMask = kChunks >= 8 ? 7 : kChunks - 1;
  return row * kCols + ((chunk ^ (row & kMask)) << 3);
}

// Byte addresses for one lane's ldmatrix reads of a swizzled [rows][kCols] 16-bit tile
// (kCols >= 64), at row `row` (+ multiples of 8 rows) and chunks 2 * step + low_bit. Since
// 2 * step + low_bit = (2 * step) ^ low_bit, the swizzled chunk is (2 * step) ^ (low_bit ^
// (row & 7)): the lane's part is computed once and each step costs one XOR with a constant,
// while the extra rows become the load's immediate offset (address arithmetic had been a
// third of the forward's instructions at head dim 128).
template <int kCols>
struct SwizzledRows {
  static_assert(kCols >= 64, "needs 8 or more chunks per row");
  uint32_t lane_address;  // byte address of the lane's row | (low_bit ^ (row & 7)) << 4

  // The tile must start 128-byte aligned: then a row's address has its low 7 bits clear,
  // and adding a chunk offset below 128 bytes is the same as or-ing / xor-ing it in.
  // chunk0 (a run-time first chunk, e.g. a warp's column block) must share no bit with the
  // 2 * step + low_bit of any step used (chunk0 % 8 = 4 allows steps 0 and 1 only): then
  // its low 3 bits fold into the lane's XOR term and the rest into the address.
  __device__ __forceinline__ SwizzledRows(const void* tile, int row, int low_bit, int chunk0 = 0)
      : lane_address((smem_address(tile) + static_cast<uint32_t>(row * kCols * 2 + (chunk0 >> 3) * 128)) |
                     static_cast<uint32_t>((low_bit ^ (row & 7) ^ (chunk0 & 7)) << 4)) {}

  // Chunk chunk0 + 2 * step + low_bit of row + extra_rows (extra_rows a multiple of 8). The
  // swizzle touches only the chunk's low 3 bits, so chunks 8.. sit 128 bytes after chunks
  // 0..: one XOR with a constant per distinct step & 3 (step a compile-time constant), and
  // the rest is the load's immediate.
  __device__ __forceinline__ uint32_t at(int step, int extra_rows = 0) const {
    return (lane_address ^ (static_cast<uint32_t>(step & 3) << 5)) +
           static_cast<uint32_t>((step >> 2) * 128 + extra_rows * kCols * 2);
  }
};

// Copies rows [row0, row0 + kRows) of a [rows][kCols] global matrix (row stride in
// elements) into a swizzled tile with cp.async; rows at or past `limit` are zero-filled.
// Thread i copies chunk i % kChunks of rows i / kChunks + k * kRowsPerPass: its row's
// swizzle (row & 7) and its addresses are computed once, and every pass adds a constant,
// so the fully unrolled loop is one predicate and one copy per 16 bytes.
template <typename T, int kCols, int kRows, int kThreads>
__device__ __forceinline__ void copy_tile_async(T* smem, const T* gmem, int64_t row_stride,
                                                int row0, int limit) {
  constexpr int kChunks = kCols / 8;
  constexpr int kRowsPerPass = kThreads / kChunks;
  static_assert(kThreads % kChunks == 0 && kRowsPerPass % 8 == 0 && kRows % kRowsPerPass == 0,
                "each pass must cover whole groups of 8 rows");
  const int r = threadIdx.x / kChunks, chunk = threadIdx.x % kChunks;
  const uint32_t dst = smem_address(smem + swizzled<kCols>(r, chunk));
  const T* src = gmem + (int64_t{row0} + r) * row_stride + chunk * 8;
  const int64_t pass_stride = kRowsPerPass * row_stride;
  if (row0 + kRows <= limit) {  // a whole tile (warp-uniform): no predicates
#pragma unroll
    for (int pass = 0; pass < kRows / kRowsPerPass; ++pass)
      cp_async_16_full(dst + pass * kRowsPerPass * kCols * sizeof(T), src + pass * pass_stride);
    return;
  }
#pragma unroll
  for (int pass = 0; pass < kRows / kRowsPerPass; ++pass) {
    const bool valid = row0 + r + pass * kRowsPerPass < limit;
    cp_async_16(dst + pass * kRowsPerPass * kCols * sizeof(T), valid ? src + pass * pass_stride : gmem, valid);
  }
}

}  // namespace attn::cuda::detail
