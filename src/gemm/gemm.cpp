#include "gemm/gemm.h"

#include <algorithm>
#include <cmath>

#include "flash/gemm_tile.h"
#include "runtime/errors.h"
#include "simd/half_float.h"
#include "simd/vec.h"

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

// A: group g holds rows g*kTileRows.. at [step][row], steps 0..k-1.
void pack_a(int m, int k, MatrixView a, GemmScratch& s) {
  const int64_t mp = round_up(m, kTileRows);
  s.a.resize(static_cast<size_t>(mp * k));
  for (int64_t g = 0; g < mp; g += kTileRows) {
    float* group = s.a.data() + g * k;
    for (int64_t step = 0; step < k; ++step) {
      for (int r = 0; r < kTileRows; ++r) {
        group[step * kTileRows + r] = g + r < m ? a.at(g + r, step) : 0.0f;
      }
    }
  }
}

// C from the padded result tile.
void write_c(int m, int n, const GemmScratch& s, int64_t np, float* c, int64_t ldc, bool accumulate) {
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

// Shapes with nothing to multiply: true when C is done (zeroed unless accumulating).
bool empty_product(int m, int n, int k, float* c, int64_t ldc, bool accumulate) {
  if (m <= 0 || n <= 0) return true;
  if (k > 0) return false;
  for (int r = 0; r < m && !accumulate; ++r) std::fill(c + r * ldc, c + r * ldc + n, 0.0f);
  return true;
}

void gemm_with_panels(int m, int n, int k, MatrixView a, const float* panels, float* c, int64_t ldc,
                      bool accumulate, GemmScratch& s) {
  if (empty_product(m, n, k, c, ldc, accumulate)) return;
  const int64_t mp = round_up(m, kTileRows), np = round_up(n, kPanel);
  pack_a(m, k, a, s);
  s.c.resize(static_cast<size_t>(mp * np));
  gemm_panels(static_cast<int>(mp), static_cast<int>(np), k, s.a.data(), int64_t{kTileRows} * k, kTileRows,
              panels, k, s.c.data(), np, false);
  write_c(m, n, s, np, c, ldc, accumulate);
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

PackedBHalf to_half(const PackedB& b) {
  PackedBHalf h;
  h.k = b.k, h.n = b.n;
  h.panels.resize(b.panels.size());
  for (size_t i = 0; i < b.panels.size(); ++i) {
    if (!(std::fabs(b.panels[i]) <= 65504.0f)) throw_range("weights", "hold a value fp16 cannot store (|w| > 65504 or not finite)");
    h.panels[i] = simd::float_to_fp16(b.panels[i]);
  }
  return h;
}

PackedB to_float(const PackedBHalf& h) {
  PackedB b;
  b.k = h.k, b.n = h.n;
  b.panels.resize(h.panels.size());
  for (size_t i = 0; i < h.panels.size(); ++i) b.panels[i] = simd::fp16_to_float(h.panels[i]);
  return b;
}

void gemm(int m, MatrixView a, const PackedBHalf& b, float* c, int64_t ldc, bool accumulate, GemmScratch& s) {
  const int n = b.n, k = b.k;
  if (empty_product(m, n, k, c, ldc, accumulate)) return;
  const int64_t mp = round_up(m, kTileRows), np = round_up(n, kPanel);
  pack_a(m, k, a, s);
  s.c.resize(static_cast<size_t>(mp * np));
  const int64_t panel_size = int64_t{k} * kPanel;
  s.b.resize(static_cast<size_t>(panel_size));
  for (int64_t p = 0; p < np; p += kPanel) {
    // Finite halves only (to_half refuses the rest): the short widening applies.
    const uint16_t* half = b.panels.data() + p * k;
    for (int64_t i = 0; i < panel_size; i += simd::kLanes) simd::store(s.b.data() + i, simd::load_fp16_ordinary(half + i));
    gemm_panels(static_cast<int>(mp), kPanel, k, s.a.data(), int64_t{kTileRows} * k, kTileRows, s.b.data(), k,
                s.c.data() + p, np, false);
  }
  write_c(m, n, s, np, c, ldc, accumulate);
}

}  // namespace attn
