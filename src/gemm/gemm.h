// A general row-major matrix product on the register-blocked micro-kernel of
// flash/gemm_tile.h: the operands are packed (A in k-major groups of kTileRows rows, B in
// kPanel-column panels, zero-padded), multiplied into a padded scratch tile, and the result
// written or added to C. Single-threaded: callers parallelise over independent products
// (heads, batches), as the attention kernels do.
#pragma once
#include <cstdint>
#include <vector>

namespace attn {

// A row-major matrix view: element (r, c) at data[r * ld + c], or at data[c * ld + r] when
// transposed (the matrix is stored as its transpose).
struct MatrixView {
  const float* data = nullptr;
  int64_t ld = 0;
  bool transposed = false;

  float at(int64_t r, int64_t c) const { return transposed ? data[c * ld + r] : data[r * ld + c]; }
};

// Packed operands and the padded result, reused across calls to avoid allocations.
struct GemmScratch {
  std::vector<float> a, b, c;
};

// B[k][n] packed once into kPanel-column panels, for a B used by many products (weights).
struct PackedB {
  int k = 0, n = 0;
  std::vector<float> panels;
};
PackedB pack_b(int k, int n, MatrixView b);

// The same panels stored as IEEE fp16 (half the memory), for weights whose values fit fp16
// (finite, |w| <= 65504). The product widens one panel at a time into float scratch (which
// every row group of the call then reuses), so it runs at the float GEMM's speed.
struct PackedBHalf {
  int k = 0, n = 0;
  std::vector<uint16_t> panels;
};
// Rounds to nearest even; throws AttnError("weights") on a value fp16 cannot hold.
PackedBHalf to_half(const PackedB& b);
// Back to float panels: the values the half product uses.
PackedB to_float(const PackedBHalf& b);

// C[m][n] = A[m][k] . B[k][n] (+ C when accumulate); C is row-major with leading dimension ldc.
void gemm(int m, int n, int k, MatrixView a, MatrixView b, float* c, int64_t ldc, bool accumulate,
          GemmScratch& scratch);
// The same with B packed beforehand (n and k from it).
void gemm(int m, MatrixView a, const PackedB& b, float* c, int64_t ldc, bool accumulate, GemmScratch& scratch);
void gemm(int m, MatrixView a, const PackedBHalf& b, float* c, int64_t ldc, bool accumulate, GemmScratch& scratch);

}  // namespace attn
