#include "gemm/projection.h"

#include <algorithm>

#include "flash/gemm_tile.h"
#include "runtime/errors.h"
#include "runtime/thread_pool.h"

namespace attn {

namespace {
constexpr int64_t kRowsPerTask = 64;  // rows of a projection per parallel task
}  // namespace

PackedB pack_weight(int out_features, int in_features, const std::vector<float>& weight) {
  return pack_b(in_features, out_features, {weight.data(), in_features, true});
}

template <typename Packed>
void project_packed(const Packed& w, const std::vector<float>& b, int64_t rows, const float* x, float* y,
                    ThreadPool* pool) {
  const int out = w.n, in = w.k;
  const int64_t tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
  const int workers = pool != nullptr ? pool->size() : 1;
  std::vector<GemmScratch> scratch(static_cast<size_t>(workers));
  auto body = [&](int64_t begin, int64_t end, int worker) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t r0 = t * kRowsPerTask;
      const int n_rows = static_cast<int>(std::min(kRowsPerTask, rows - r0));
      float* dst = y + r0 * out;
      gemm(n_rows, {x + r0 * in, in, false}, w, dst, out, false, scratch[static_cast<size_t>(worker)]);
      if (!b.empty()) {
        for (int r = 0; r < n_rows; ++r) {
          for (int c = 0; c < out; ++c) dst[int64_t{r} * out + c] += b[size_t(c)];
        }
      }
    }
  };
  if (pool != nullptr) {
    pool->parallel_for(tasks, 1, body);
  } else {
    body(0, tasks, 0);
  }
}

void project_rows(const PackedB& w, const std::vector<float>& b, int64_t rows, const float* x, float* y,
                  ThreadPool* pool) {
  project_packed(w, b, rows, x, y, pool);
}

const char* precision_name(WeightPrecision p) {
  switch (p) {
    case WeightPrecision::kFp16: return "fp16";
    case WeightPrecision::kInt8: return "int8";
    default: return "fp32";
  }
}

WeightPrecision parse_precision(const std::string& name) {
  for (WeightPrecision p : {WeightPrecision::kFp32, WeightPrecision::kFp16, WeightPrecision::kInt8}) {
    if (name == precision_name(p)) return p;
  }
  throw_range("precision", "must be 'fp32', 'fp16' or 'int8', got '" + name + "'");
}

int64_t ProjectionWeights::bytes() const {
  switch (precision) {
    case WeightPrecision::kFp16: return int64_t(f16.panels.size() * sizeof(uint16_t));
    case WeightPrecision::kInt8: return i8.bytes();
    default: return int64_t(f32.panels.size() * sizeof(float));
  }
}

ProjectionWeights pack_weight(int out_features, int in_features, const std::vector<float>& weight,
                              WeightPrecision precision) {
  ProjectionWeights w;
  w.precision = precision;
  if (precision == WeightPrecision::kInt8) {
    w.i8 = quantize_weight_int8(out_features, in_features, weight);
  } else if (precision == WeightPrecision::kFp16) {
    w.f16 = to_half(pack_weight(out_features, in_features, weight));
  } else {
    w.f32 = pack_weight(out_features, in_features, weight);
  }
  return w;
}

std::vector<float> unpack_weight(const ProjectionWeights& w) {
  if (w.precision == WeightPrecision::kInt8) return dequantize_weight(w.i8);
  const PackedB f = w.precision == WeightPrecision::kFp16 ? to_float(w.f16) : PackedB{};
  const PackedB& b = w.precision == WeightPrecision::kFp16 ? f : w.f32;
  // Panels hold W^T: column `out` of panel out / kPanel, step `in`.
  std::vector<float> out(size_t(b.n) * b.k);
  for (int o = 0; o < b.n; ++o) {
    const float* panel = b.panels.data() + int64_t{o / kPanel} * kPanel * b.k;
    for (int i = 0; i < b.k; ++i) out[size_t(o) * b.k + i] = panel[int64_t{i} * kPanel + o % kPanel];
  }
  return out;
}

void project_rows(const ProjectionWeights& w, const std::vector<float>& b, int64_t rows, const float* x, float* y,
                  ThreadPool* pool) {
  switch (w.precision) {
    case WeightPrecision::kFp16: return project_packed(w.f16, b, rows, x, y, pool);
    case WeightPrecision::kInt8: return project_rows_int8(w.i8, b, rows, x, y, pool);
    default: return project_packed(w.f32, b, rows, x, y, pool);
  }
}

}  // namespace attn
