#include "flash/gemm_tile.h"

namespace attn {

namespace {

// Rows left over after the full kMaxRows tiles.
void gemm_tile_rows(int rows, const float* a, int64_t lda, const float* b, float* c, int64_t ldc,
                    int depth, bool accumulate) {
  switch (rows) {
    case 1: gemm_tile<1>(a, lda, b, c, ldc, depth, accumulate); break;
    case 2: gemm_tile<2>(a, lda, b, c, ldc, depth, accumulate); break;
    case 3: gemm_tile<3>(a, lda, b, c, ldc, depth, accumulate); break;
    case 4: gemm_tile<4>(a, lda, b, c, ldc, depth, accumulate); break;
    case 5: gemm_tile<5>(a, lda, b, c, ldc, depth, accumulate); break;
    default: break;
  }
}

}  // namespace

void gemm_panels(int m, int n, int depth, const float* a, int64_t lda, const float* b_packed,
                 float* c, int64_t ldc, bool accumulate) {
  for (int col = 0; col < n; col += kPanel) {
    const float* panel = b_packed + static_cast<int64_t>(col) * depth;
    int row = 0;
    for (; row + kMaxRows <= m; row += kMaxRows) {
      gemm_tile<kMaxRows>(a + row * lda, lda, panel, c + row * ldc + col, ldc, depth, accumulate);
    }
    if (row < m) {
      gemm_tile_rows(m - row, a + row * lda, lda, panel, c + row * ldc + col, ldc, depth,
                     accumulate);
    }
  }
}

}  // namespace attn
