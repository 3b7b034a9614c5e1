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
  T* dst = smem + swizzled<kCols>(r, chunk);
  const T* src = gmem + (int64_t{row0} + r) * row_stride + chunk * 8;
#pragma unroll
  for (int pass = 0; pass < kRows / kRowsPerPass; ++pass) {
    const bool valid = row0 + r + pass * kRowsPerPass < limit;
    cp_async_16(dst + pass * kRowsPerPass * kCols,
                valid ? src + pass * kRowsPerPass * row_stride : gmem, valid);
  }
}

}  // namespace attn::cuda::detail
