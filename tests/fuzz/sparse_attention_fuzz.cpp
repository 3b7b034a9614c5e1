// libFuzzer target: ASAM's block-sparse attention (attn::asam::sparse_attention and
// pattern_mask) with fuzzed shapes, every pattern (local, strided, hierarchical with fuzzed
// scales, random with a seed, clustered with fuzzed centroids), window / stride / block
// sizes, scale, lse and threads, and data with NaN, ±Inf, huge and denormal values.
//
// Invariants: only AttnError escapes; where the data are finite and every score and V sum
// representable, the output and lse are finite, rows the pattern leaves empty are zero
// (lse -inf), and both match the float64 reference (tests/cpp/reference_attention.h) under
// the pattern's own boolean mask, within a bound derived from the inputs; the random
// pattern always keeps each query block's own key block; the counters are not negative.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "asam/sparse_attention.h"
#include "fuzz_common.h"
#include "reference_attention.h"

namespace {

using attn::FlashShape;
using attn::asam::PatternParams;
using attn::asam::PatternType;

constexpr double kUnit = 1.0 / 16777216.0;

void run(FuzzedDataProvider& in) {
  FlashShape s;
  s.batch = fuzz::in_range_or(in, 1, 2, 0);
  s.heads_q = in.ConsumeIntegralInRange(1, 3);
  s.heads_kv = in.ConsumeIntegralInRange(0, 31) == 31 ? in.ConsumeIntegralInRange(1, 3) : s.heads_q;
  s.seq_q = fuzz::in_range_or(in, 1, 260, 0);
  s.seq_k = in.ConsumeIntegralInRange(0, 31) == 31 ? in.ConsumeIntegralInRange(0, 260) : s.seq_q;
  s.head_dim = fuzz::in_range_or(in, 1, 40, 0);
  s.value_dim = in.ConsumeBool() ? fuzz::in_range_or(in, 1, 40, 0) : s.head_dim;
  // Bounded work: the reference and the mask are O(n²) per (batch, head).
  const int n_max = int(std::sqrt(3e6 / (std::max(1, s.batch) * s.heads_q * double(s.head_dim + s.value_dim + 2))));
  s.seq_q = std::min(s.seq_q, n_max), s.seq_k = std::min(s.seq_k, n_max);

  PatternParams p;
  p.type = static_cast<PatternType>(in.ConsumeIntegralInRange(0, 4));
  p.window_size = fuzz::in_range_or(in, 1, 300, -1);
  p.stride = fuzz::in_range_or(in, 1, 80, 0);
  p.block_size = in.PickValueInArray({32, 32, 64, 64, 96, 128, 1024, 0, 48, 2048});
  if (in.ConsumeBool()) {
    p.scales.clear();
    const int count = in.ConsumeIntegralInRange(0, 4);
    for (int i = 0; i < count; ++i) p.scales.push_back(in.ConsumeIntegralInRange(-1, 130));
  }
  p.seed = in.ConsumeIntegral<uint64_t>();
  p.num_clusters = fuzz::in_range_or(in, 1, 9, 0);
  std::optional<float> scale;
  if (in.ConsumeBool()) scale = fuzz::make_option(in, -4.0f, 4.0f);
  const bool want_lse = in.ConsumeBool();
  attn::ThreadPool* pool = in.ConsumeBool() ? fuzz::shared_pool() : nullptr;

  const int64_t b = s.batch, h = s.heads_q, n = s.seq_q;
  const fuzz::Tensor centroids = fuzz::make_tensor(in, size_t(h * std::max(0, p.num_clusters) * s.head_dim));
  if (in.ConsumeIntegralInRange(0, 31) != 31) p.centroids = centroids.data();
  const fuzz::Tensor q = fuzz::make_tensor(in, size_t(b * n * h * s.head_dim));
  const fuzz::Tensor k = fuzz::make_tensor(in, size_t(b * std::max(0, s.seq_k) * std::max(0, s.heads_kv) * s.head_dim));
  const fuzz::Tensor v = fuzz::make_tensor(in, size_t(b * std::max(0, s.seq_k) * std::max(0, s.heads_kv) * s.value_dim));
  std::vector<float> out(size_t(b * n * h * s.value_dim), -7.0f), lse(size_t(b * h * n), -7.0f);

  attn::asam::SparseStats stats;
  if (!fuzz::returns([&] {
        stats = attn::asam::sparse_attention(s, p, scale, q.data(), k.data(), v.data(), out.data(), pool,
                                             want_lse ? lse.data() : nullptr);
      })) {
    return;
  }
  fuzz::require(stats.visited_blocks >= 0 && stats.computed_scores >= 0 && stats.dense_blocks >= 0 &&
                    stats.dense_scores >= 0,
                "negative SparseStats");
  std::vector<uint8_t> mask;
  fuzz::require(fuzz::returns([&] { mask = attn::asam::pattern_mask(s, p, q.data(), k.data()); }),
                "pattern_mask refused a pattern sparse_attention accepted");
  fuzz::require(mask.size() == size_t(b * h * n * n), "pattern_mask has the wrong size");
  if (p.type == PatternType::kRandom) {
    for (int64_t bh = 0; bh < b * h; ++bh) {
      for (int64_t i = 0; i < n; ++i) {
        fuzz::require(mask[size_t((bh * n + i) * n + i)] == 1, "random pattern without the query's own block");
      }
    }
  }
  if (q.nonfinite || k.nonfinite || v.nonfinite) return;

  ref::Config c;
  c.batch = s.batch, c.seq_q = c.seq_k = s.seq_q, c.heads_q = c.heads_kv = s.heads_q;
  c.head_dim = s.head_dim, c.value_dim = s.value_dim;
  c.has_scale = scale.has_value();
  c.scale = scale.value_or(0.0f);
  c.mask_bool = mask.data();
  c.mask_row_stride = n, c.mask_head_stride = n * n, c.mask_batch_stride = h * n * n;
  const ref::Result r = ref::attention(c, q.data(), k.data(), v.data(), false);
  const double sc = std::fabs(scale ? double(*scale) : 1.0 / std::sqrt(double(s.head_dim)));
  for (int64_t bi = 0; bi < b; ++bi) {
    for (int64_t hh = 0; hh < h; ++hh) {
      for (int64_t i = 0; i < n; ++i) {
        double dot_abs = 0, v_abs = 0;
        const float* qi = q.data() + ((bi * n + i) * h + hh) * s.head_dim;
        for (int64_t j = 0; j < n; ++j) {
          const float* kj = k.data() + ((bi * n + j) * h + hh) * s.head_dim;
          double sum = 0;
          for (int c2 = 0; c2 < s.head_dim; ++c2) sum += std::fabs(double(qi[c2]) * double(kj[c2]));
          dot_abs = std::max(dot_abs, sum);
          const float* vj = v.data() + ((bi * n + j) * h + hh) * s.value_dim;
          for (int c2 = 0; c2 < s.value_dim; ++c2) v_abs = std::max(v_abs, double(std::fabs(vj[c2])));
        }
        double q_abs = 0;  // q times the prescale is an intermediate too
        for (int c2 = 0; c2 < s.head_dim; ++c2) q_abs = std::max(q_abs, double(std::fabs(qi[c2])));
        if (!(sc * std::max(dot_abs, q_abs) * 1.4427 < 1e30 && double(n) * v_abs < 1e30)) continue;
        const size_t row = size_t((bi * h + hh) * n + i);
        // Parts merged through their lse add a few roundings on top of one flash call's.
        const double logit_err = (s.head_dim + 4) * 2 * kUnit * sc * dot_abs + 1e-30;
        const double bound = (2 * logit_err + 4e-6 + (n + 16) * 4 * kUnit) * v_abs + 1e-35;
        for (int c2 = 0; c2 < s.value_dim; ++c2) {
          const size_t at = size_t(((bi * n + i) * h + hh) * s.value_dim + c2);
          if (!std::isfinite(out[at])) fuzz::fail("output not finite for representable finite inputs", out[at], r.out[at]);
          if (r.row_masked[row] && out[at] != 0.0f) fuzz::fail("a row its pattern leaves empty is not zero", out[at], 0);
          if (!(std::fabs(out[at] - r.out[at]) <= bound)) fuzz::fail("output differs from dense attention under the pattern", out[at], r.out[at], bound);
        }
        if (want_lse) {
          if (r.row_masked[row]) {
            if (lse[row] != -std::numeric_limits<float>::infinity()) fuzz::fail("lse of an empty row is not -inf", lse[row], r.lse[row]);
          } else {
            const double lse_bound = logit_err + 4e-6 * (1 + std::fabs(r.lse[row])) + (n + 16) * 4 * kUnit;
            if (!(std::fabs(lse[row] - r.lse[row]) <= lse_bound)) fuzz::fail("lse differs from the float64 reference", lse[row], r.lse[row], lse_bound);
          }
        }
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  run(in);
  return 0;
}
