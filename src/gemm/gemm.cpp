#include "gemm/gemm.h"

#include <algorithm>

#include "flash/gemm_tile.h"

namespace attn {

namespace {

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// B: panel p holds columns p.. at [step][column], zero past n.
void pack_panels(int k, int n, MatrixView b, std::vector<float>& out) {
  const int64_t np = round_up(n, kPanel);
  out.resize(static_cast<size_t>(np * k));
  for (int64_t p = 0; p < np; p += kPanel) {
    float* panel = out.data() + p * k;
    for (int64_t step = 0; step < k; ++step) {
      for (int col = 0; col < kPanel; ++col) {
        panel[step * kPanel + col] = p + col < n ? b.at(step, p + col) : 0.0f;
      }
    }
  }
}

void gemm_with_panels(int m, int n, int k, MatrixView a, const float* panels, float* c, int64_t ldc,
                      bool accumulate, GemmScratch& s) {
  if (m <= 0 || n <= 0) return;
  const int64_t mp = round_up(m, kTileRows), np = round_up(n, kPanel);
  if (k <= 0) {
    for (int r = 0; r < m && !accumulate; ++r) std::fill(c + r * ldc, c + r * ldc + n, 0.0f);
    return;
  }
  // A: group g holds rows g*kTileRows.. at [step][row], steps 0..k-1.
  s.a.resize(static_cast<size_t>(mp * k));
  for (int64_t g = 0; g < mp; g += kTileRows) {
    float* group = s.a.data() + g * k;
    for (int64_t step = 0; step < k; ++step) {
      for (int r = 0; r < kTileRows; ++r) {
        group[step * kTileRows + r] = g + r < m ? a.at(g + r, step) : 0.0f;
      }
    }
  }
  s.c.resize(static_cast<size_t>(mp * np));
  gemm_panels(static_cast<int>(mp), static_cast<int>(np), k, s.a.data(), int64_t{kTileRows} * k, kTileRows,
              panels, k, s.c.data(), np, false);
  for (int r = 0; r < m; ++r) {
    const float* src = s.c.data() + r * np;
    float* dst = c + r * ldc;
    if (accumulate) {
      for (int col = 0; col < n; ++col) dst[col] += src[col];
    } else {
      std::copy(src, src + n, dst);
    }
  }
}

}  // namespace

PackedB pack_b(int k, int n, MatrixView b) {
  PackedB packed;
  packed.k = k, packed.n = n;
  if (k > 0 && n > 0) pack_panels(k, n, b, packed.panels);
  return packed;
}

void gemm(int m, int n, int k, MatrixView a, MatrixView b, float* c, int64_t ldc, bool accumulate,
          GemmScratch& s) {
  if (m > 0 && n > 0 && k > 0) pack_panels(k, n, b, s.b);
  gemm_with_panels(m, n, k, a, s.b.data(), c, ldc, accumulate, s);
}

void gemm(int m, MatrixView a, const PackedB& b, float* c, int64_t ldc, bool accumulate, GemmScratch& s) {
  gemm_with_panels(m, b.n, b.k, a, b.panels.data(), c, ldc, accumulate, s);
}

}  // namespace attn
