// The register-blocked matrix micro-kernel both products of attention run on:
//   C[M][N] (+)= A[M][depth] · B[depth][N]
// A is row-major with leading dimension lda (the query block, or the weights P).
// B is packed in panels of kPanel columns: panel p holds rows 0..depth-1 of
// columns [p*kPanel, (p+1)*kPanel) contiguously, so each step of the depth loop
// reads kPanel consecutive floats. N must be a multiple of kPanel.
// Each kMaxRows x kPanel tile keeps 2*kMaxRows = 8 vector accumulators. Measured in
// V8 (Node 20): 4x2 tiles reach ~30 GFLOP/s per core; 6x2 and 4x3 (12 chains) spill
// registers (V8 keeps ~15 xmm free) and fall to ~23.
#pragma once
#include <cstdint>

#include "simd/vec.h"

namespace attn {

constexpr int kPanel = 2 * simd::kLanes;
constexpr int kMaxRows = 4;

template <int Rows>
inline void gemm_tile(const float* a, int64_t lda, const float* b_panel, float* c, int64_t ldc,
                      int depth, bool accumulate) {
  using namespace simd;
  Vec lo[Rows], hi[Rows];
  for (int r = 0; r < Rows; ++r) {
    lo[r] = accumulate ? load(c + r * ldc) : zero();
    hi[r] = accumulate ? load(c + r * ldc + kLanes) : zero();
  }
  for (int k = 0; k < depth; ++k) {
    const Vec b0 = load(b_panel + k * kPanel);
    const Vec b1 = load(b_panel + k * kPanel + kLanes);
    for (int r = 0; r < Rows; ++r) {
      const Vec av = set1(a[r * lda + k]);
      lo[r] = mul_add(av, b0, lo[r]);
      hi[r] = mul_add(av, b1, hi[r]);
    }
  }
  for (int r = 0; r < Rows; ++r) {
    store(c + r * ldc, lo[r]);
    store(c + r * ldc + kLanes, hi[r]);
  }
}

// Full product over M rows and N columns (N a multiple of kPanel). Panels outermost,
// so one packed panel of B stays in L1 while every row tile of A passes over it.
void gemm_panels(int m, int n, int depth, const float* a, int64_t lda, const float* b_packed,
                 float* c, int64_t ldc, bool accumulate);

}  // namespace attn
