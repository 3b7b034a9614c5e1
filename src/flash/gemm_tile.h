// The register-blocked micro-kernel both products of attention run on:
//   C[kTileRows][kPanel] (+)= A[kTileRows][depth] · B[depth][kPanel]
// A is read k-major: the kTileRows values of step k sit together at a + k*a_step
// (a_step = kTileRows for a packed K group; the row stride of Sᵀ for weights), so each
// step is kTileRows broadcast loads from one pointer. B is a packed panel: row k of
// the panel is kPanel consecutive floats. C is row-major with leading dimension ldc.
//
// Why 4 x 2 vectors: measured in V8 (Node 20), 8 accumulators reach ~30-34 GFLOP/s per
// core; 6x2, 4x3 and unrolled loops (12+ live vectors) spill registers and drop to ~20.
#pragma once
#include <cstdint>

#include "simd/vec.h"

namespace attn {

constexpr int kPanel = 2 * simd::kLanes;
constexpr int kTileRows = 4;

inline void gemm_tile(const float* a, int64_t a_step, const float* b, float* c, int64_t ldc,
                      int depth, bool accumulate) {
  using namespace simd;
  Vec lo[kTileRows], hi[kTileRows];
  for (int r = 0; r < kTileRows; ++r) {
    lo[r] = accumulate ? load(c + r * ldc) : zero();
    hi[r] = accumulate ? load(c + r * ldc + kLanes) : zero();
  }
  for (const float* end = b + int64_t{depth} * kPanel; b != end; b += kPanel, a += a_step) {
    const Vec b0 = load(b);
    const Vec b1 = load(b + kLanes);
    for (int r = 0; r < kTileRows; ++r) {
      const Vec av = set1(a[r]);
      lo[r] = mul_add(av, b0, lo[r]);
      hi[r] = mul_add(av, b1, hi[r]);
    }
  }
  for (int r = 0; r < kTileRows; ++r) {
    store(c + r * ldc, lo[r]);
    store(c + r * ldc + kLanes, hi[r]);
  }
}

// C[m][n] (+)= A · B for m a multiple of kTileRows and n a multiple of kPanel.
// Row group g of A starts at a + g * a_group_stride; B holds n / kPanel panels of
// panel_rows >= depth rows each, back to back (only the first depth rows of each are
// read, so a product can stop short of the packed length). Panels outermost, so one
// panel stays in L1 while every row group passes over it.
void gemm_panels(int m, int n, int depth, const float* a, int64_t a_group_stride, int64_t a_step,
                 const float* b_packed, int64_t panel_rows, float* c, int64_t ldc,
                 bool accumulate);

}  // namespace attn
