#include "flash/gemm_tile.h"

namespace attn {

void gemm_panels(int m, int n, int depth, const float* a, int64_t a_group_stride, int64_t a_step,
                 const float* b_packed, int64_t panel_rows, float* c, int64_t ldc,
                 bool accumulate) {
  for (int col = 0; col < n; col += kPanel) {
    const float* panel = b_packed + col * panel_rows;
    for (int row = 0; row < m; row += kTileRows) {
      gemm_tile(a + (row / kTileRows) * a_group_stride, a_step, panel, c + row * ldc + col, ldc,
                depth, accumulate);
    }
  }
}

}  // namespace attn
