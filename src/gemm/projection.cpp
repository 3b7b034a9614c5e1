#include "gemm/projection.h"

#include <algorithm>

#include "runtime/thread_pool.h"

namespace attn {

namespace {
constexpr int64_t kRowsPerTask = 64;  // rows of a projection per parallel task
}  // namespace

PackedB pack_weight(int out_features, int in_features, const std::vector<float>& weight) {
  return pack_b(in_features, out_features, {weight.data(), in_features, true});
}

void project_rows(const PackedB& w, const std::vector<float>& b, int64_t rows, const float* x, float* y,
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

}  // namespace attn
