#include "gemm/int8_projection.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "flash/gemm_tile.h"
#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "simd/dot_i16.h"

namespace attn {

namespace {

using namespace simd;

constexpr int64_t kRowsPerTask = 64;  // as project_rows: rows per parallel task
constexpr int kGroupRows = kTileRows;

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// max |x[i]|, or NaN when x holds an inf or NaN (x * 0 is NaN exactly for those, and a sum
// keeps a NaN where max() may drop it).
float abs_max(const float* x, int n) {
  Vec m = zero(), poison = zero();
  int i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    const Vec v = load(x + i);
    m = max(m, max(v, sub(zero(), v)));
    poison = add(poison, mul(v, zero()));
  }
  float r = reduce_max(m), p = reduce_add(poison);
  for (; i < n; ++i) r = std::max(r, std::fabs(x[i])), p += x[i] * 0.0f;
  return p == 0.0f ? r : NAN;
}

// One row: s_x, and q_x into out [pairs * 2] (the odd tail zero). A row with inf or NaN
// gets scale NaN and zero codes, so its outputs are NaN.
float quantize_row(const float* x, int k, int16_t* out) {
  const float m = abs_max(x, k);
  const bool finite = !std::isnan(m);
  const int padded = static_cast<int>(round_up(k, 2));
  if (!finite || m == 0.0f) {
    std::fill(out, out + padded, int16_t{0});
    return finite ? 0.0f : NAN;
  }
  const float inv = 127.0f / m;
  int i = 0;
  for (; i + kQuantBlock <= k; i += kQuantBlock) quantize_i16(x + i, inv, out + i);
  for (; i < k; ++i) out[i] = static_cast<int16_t>(std::nearbyint(x[i] * inv));
  for (; i < padded; ++i) out[i] = 0;
  return m / 127.0f;
}

// Rows of x quantized into groups of kGroupRows: [pair][row][2] int16, scales [row];
// rows past `rows` are zero with scale 0.
struct QuantizedGroups {
  std::vector<int16_t> pairs;
  std::vector<float> scales;
  std::vector<int16_t> row;   // one quantized row before it is interleaved
  std::vector<int16_t> wide;  // one weight panel widened to int16
};

void quantize_groups(int64_t rows, int k, const float* x, QuantizedGroups& q) {
  const int pairs = (k + 1) / 2;
  const int64_t padded_rows = round_up(rows, kGroupRows);
  q.pairs.assign(size_t(padded_rows) * pairs * 2, 0);
  q.scales.assign(size_t(padded_rows), 0.0f);
  q.row.resize(size_t(pairs) * 2);
  for (int64_t r = 0; r < rows; ++r) {
    q.scales[size_t(r)] = quantize_row(x + r * k, k, q.row.data());
    // A pair moves as one 32-bit word.
    int16_t* group = q.pairs.data() + (r / kGroupRows) * kGroupRows * pairs * 2 + (r % kGroupRows) * 2;
    for (int j = 0; j < pairs; ++j) std::memcpy(group + j * kGroupRows * 2, q.row.data() + size_t(j) * 2, 4);
  }
}

// The accumulators of one tile: kGroupRows rows x kPanel columns (2 vectors).
struct Tile {
  IVec lo[kGroupRows], hi[kGroupRows];
};

inline PairVec load_pairs(const int8_t* p) { return load_i8_pairs(p); }
inline PairVec load_pairs(const int16_t* p) { return load_i16_pairs(p); }

// B: the panel as stored (int8) or widened to int16 beforehand.
template <typename B>
inline Tile int8_tile(const int16_t* a, const B* b, int pairs) {
  Tile t;
  for (int r = 0; r < kGroupRows; ++r) t.lo[r] = izero(), t.hi[r] = izero();
  for (const B* end = b + int64_t{pairs} * kPanel * 2; b != end; b += kPanel * 2, a += kGroupRows * 2) {
    const PairVec b0 = load_pairs(b);
    const PairVec b1 = load_pairs(b + kLanes * 2);
    for (int r = 0; r < kGroupRows; ++r) {
      const PairVec av = splat_pair(a + r * 2);
      t.lo[r] = dot_pairs_add(t.lo[r], av, b0);
      t.hi[r] = dot_pairs_add(t.hi[r], av, b1);
    }
  }
  return t;
}

// The hot kernels are functions called once per tile: V8 optimizes a wasm function only
// when it is called again (TOOLCHAIN.md).
template <typename B>
[[gnu::noinline]] void int8_tile_i32(const int16_t* a, const B* b, int pairs, int32_t* c, int64_t ldc) {
  const Tile t = int8_tile(a, b, pairs);
  for (int r = 0; r < kGroupRows; ++r) {
    store_i32(c + r * ldc, t.lo[r]);
    store_i32(c + r * ldc + kLanes, t.hi[r]);
  }
}

// c[r][col] = acc * s_x[r] * s_w[col] + bias[col] for the whole padded tile.
template <typename B>
[[gnu::noinline]] void int8_tile_f32(const int16_t* a, const B* b, int pairs, const float* sx, const float* sw,
                                     const float* bias, float* c, int64_t ldc) {
  const Tile t = int8_tile(a, b, pairs);
  const Vec w0 = load(sw), w1 = load(sw + kLanes), b0 = load(bias), b1 = load(bias + kLanes);
  for (int r = 0; r < kGroupRows; ++r) {
    const Vec s = set1(sx[r]);
    store(c + r * ldc, mul_add(mul(to_float(t.lo[r]), s), w0, b0));
    store(c + r * ldc + kLanes, mul_add(mul(to_float(t.hi[r]), s), w1, b1));
  }
}

// Row groups from which a panel is widened to int16 once (into `wide`) rather than by every
// load: the widening then costs a small share of the tiles that reuse it.
constexpr int64_t kWidenMinGroups = 4;

// Runs tile(group, panel, b) for `groups` row groups over every panel of w, b the panel's
// weights (int8, or int16 in `wide`). Panels outermost: one panel stays in L1 while the
// row groups pass over it.
template <typename TileFn>
void for_tiles(const Int8Weight& w, int64_t groups, std::vector<int16_t>& wide, TileFn tile) {
  const int64_t panel_size = int64_t{w.pairs()} * kPanel * 2;
  const int panels = static_cast<int>(round_up(w.n, kPanel) / kPanel);
  for (int p = 0; p < panels; ++p) {
    const int8_t* b = w.panels.data() + p * panel_size;
    if (groups < kWidenMinGroups) {
      for (int64_t g = 0; g < groups; ++g) tile(g, p, b);
      continue;
    }
    wide.resize(size_t(panel_size));
    for (int64_t i = 0; i < panel_size; ++i) wide[size_t(i)] = b[i];
    for (int64_t g = 0; g < groups; ++g) tile(g, p, static_cast<const int16_t*>(wide.data()));
  }
}

template <typename Body>
void run_row_tasks(int64_t rows, ThreadPool* pool, Body body) {
  const int64_t tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
  auto run = [&](int64_t begin, int64_t end, int worker) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t r0 = t * kRowsPerTask;
      body(r0, std::min(kRowsPerTask, rows - r0), worker);
    }
  };
  if (pool != nullptr) {
    pool->parallel_for(tasks, 1, run);
  } else {
    run(0, tasks, 0);
  }
}

}  // namespace

int8_t Int8Weight::at(int out, int in) const {
  const int64_t panel = out / kPanel, col = out % kPanel;
  return panels[size_t(((panel * pairs() + in / 2) * kPanel + col) * 2 + in % 2)];
}

int64_t Int8Weight::bytes() const {
  return int64_t(panels.size() * sizeof(int8_t) + scales.size() * sizeof(float));
}

Int8Weight quantize_weight_int8(int out_features, int in_features, const std::vector<float>& weight) {
  if (in_features > kMaxInt8Depth) {
    throw_range("weights", "int8 quantization takes at most " + std::to_string(kMaxInt8Depth) +
                               " input features (int32 sums), got " + std::to_string(in_features));
  }
  Int8Weight w;
  w.k = in_features, w.n = out_features;
  const int64_t np = round_up(out_features, kPanel);
  const int pairs = w.pairs();
  w.panels.assign(size_t(np * pairs * 2), 0);
  w.scales.assign(size_t(np), 0.0f);
  for (int c = 0; c < out_features; ++c) {
    const float* row = weight.data() + int64_t{c} * in_features;
    float m = 0.0f;
    for (int k = 0; k < in_features; ++k) {
      if (!std::isfinite(row[k])) throw_range("weights", "hold a value that is not finite");
      m = std::max(m, std::fabs(row[k]));
    }
    if (m == 0.0f) continue;  // a zero channel: codes 0, scale 0
    w.scales[size_t(c)] = m / 127.0f;
    const float inv = 127.0f / m;
    int8_t* panel = w.panels.data() + (c / kPanel) * int64_t{pairs} * kPanel * 2 + (c % kPanel) * 2;
    for (int k = 0; k < in_features; ++k) {
      panel[(k / 2) * kPanel * 2 + k % 2] = static_cast<int8_t>(std::nearbyint(row[k] * inv));
    }
  }
  return w;
}

std::vector<float> dequantize_weight(const Int8Weight& w) {
  std::vector<float> out(size_t(w.n) * w.k);
  for (int c = 0; c < w.n; ++c) {
    for (int k = 0; k < w.k; ++k) out[size_t(c) * w.k + k] = float(w.at(c, k)) * w.scales[size_t(c)];
  }
  return out;
}

QuantizedRows quantize_rows_int8(int64_t rows, int k, const float* x) {
  QuantizedRows q;
  q.values.resize(size_t(rows) * k);
  q.scales.resize(size_t(rows));
  std::vector<int16_t> row(size_t(round_up(k, 2)));
  for (int64_t r = 0; r < rows; ++r) {
    q.scales[size_t(r)] = quantize_row(x + r * k, k, row.data());
    std::copy(row.begin(), row.begin() + k, q.values.begin() + r * k);
  }
  return q;
}

void int8_matmul_i32(const Int8Weight& w, int64_t rows, const float* x, int32_t* acc) {
  const int pairs = w.pairs();
  QuantizedGroups q;
  quantize_groups(rows, w.k, x, q);
  std::vector<int32_t> tile(size_t(kGroupRows) * kPanel);
  for_tiles(w, round_up(rows, kGroupRows) / kGroupRows, q.wide, [&](int64_t g, int p, const auto* b) {
    int8_tile_i32(q.pairs.data() + g * kGroupRows * pairs * 2, b, pairs, tile.data(), kPanel);
    for (int r = 0; r < kGroupRows && g * kGroupRows + r < rows; ++r) {
      for (int c = 0; c < kPanel && p * kPanel + c < w.n; ++c) {
        acc[(g * kGroupRows + r) * w.n + p * kPanel + c] = tile[size_t(r) * kPanel + c];
      }
    }
  });
}

void project_rows_int8(const Int8Weight& w, const std::vector<float>& bias, int64_t rows, const float* x, float* y,
                       ThreadPool* pool) {
  const int pairs = w.pairs(), n = w.n;
  const int panels = static_cast<int>(round_up(n, kPanel) / kPanel);
  std::vector<float> padded_bias(size_t(panels) * kPanel, 0.0f);
  std::copy(bias.begin(), bias.end(), padded_bias.begin());
  const int workers = pool != nullptr ? pool->size() : 1;
  std::vector<QuantizedGroups> scratch(static_cast<size_t>(workers));
  run_row_tasks(rows, pool, [&](int64_t r0, int64_t count, int worker) {
    QuantizedGroups& q = scratch[size_t(worker)];
    quantize_groups(count, w.k, x + r0 * w.k, q);
    float edge[kGroupRows * kPanel];
    for_tiles(w, round_up(count, kGroupRows) / kGroupRows, q.wide, [&](int64_t g, int p, const auto* b) {
      const int16_t* a = q.pairs.data() + g * kGroupRows * pairs * 2;
      const int64_t col = int64_t{p} * kPanel, row = g * kGroupRows;
      const float* sx = q.scales.data() + row;
      float* dst = y + (r0 + row) * n + col;
      if (row + kGroupRows <= count && col + kPanel <= n) {
        int8_tile_f32(a, b, pairs, sx, w.scales.data() + col, padded_bias.data() + col, dst, n);
        return;
      }
      int8_tile_f32(a, b, pairs, sx, w.scales.data() + col, padded_bias.data() + col, edge, kPanel);
      for (int64_t r = 0; r < kGroupRows && row + r < count; ++r) {
        for (int64_t c = 0; c < kPanel && col + c < n; ++c) dst[r * n + c] = edge[r * kPanel + c];
      }
    });
  });
}

}  // namespace attn
