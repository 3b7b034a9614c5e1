// libFuzzer target: attn::linear_attention with fuzzed shapes (batch, seq_q != seq_k, value
// width), feature maps (elu, relu, dpfp, and out-of-range values), causal, eps, threads, and
// data with NaN, ±Inf, huge and denormal values.
//
// Invariants: only AttnError escapes; where the data are finite and the feature sums
// representable, the output is finite and matches the float64 formula of SPEC.md,
// out_i = φ(q_i)ᵀ S / (φ(q_i)ᵀ z + eps). Every feature is >= 0, so the output is a
// weighted mean of the values shrunk by eps, and its rounding error is bounded by the
// largest |v| times the float32 error of the sums, plus what products of tiny features
// lose to underflow relative to the row's total weight.
#include <cmath>
#include <cstdint>
#include <vector>

#include "fuzz_common.h"
#include "linear/linear_attention.h"

namespace {

using attn::FeatureMap;
using attn::LinearOptions;
using attn::LinearShape;

constexpr double kUnit = 1.0 / 16777216.0;
constexpr double kDenormMin = 1.4012984643e-45;

std::vector<double> features(FeatureMap map, const float* x, int d) {
  std::vector<double> f;
  switch (map) {
    case FeatureMap::kElu:
      for (int c = 0; c < d; ++c) f.push_back(x[c] > 0 ? double(x[c]) + 1.0 : std::exp(double(x[c])));
      break;
    case FeatureMap::kRelu:
      for (int c = 0; c < d; ++c) f.push_back(std::max(0.0, double(x[c])));
      break;
    case FeatureMap::kDpfp: {  // x' = [relu(x), relu(-x)], phi_i = x'_i x'_{i-1 mod 2d}
      std::vector<double> xp;
      for (int c = 0; c < d; ++c) xp.push_back(std::max(0.0, double(x[c])));
      for (int c = 0; c < d; ++c) xp.push_back(std::max(0.0, -double(x[c])));
      for (int i = 0; i < 2 * d; ++i) f.push_back(xp[size_t(i)] * xp[size_t((i + 2 * d - 1) % (2 * d))]);
      break;
    }
  }
  return f;
}

void run(FuzzedDataProvider& in) {
  LinearShape s;
  s.batch = in.ConsumeIntegralInRange(0, 2);
  s.heads = in.ConsumeIntegralInRange(0, 3);
  s.seq_q = in.ConsumeIntegralInRange(0, 200);
  s.seq_k = in.ConsumeBool() ? s.seq_q : in.ConsumeIntegralInRange(0, 200);
  s.head_dim = in.ConsumeIntegralInRange(0, 40);
  s.value_dim = in.ConsumeBool() ? s.head_dim : in.ConsumeIntegralInRange(0, 40);
  LinearOptions o;
  o.feature_map = static_cast<FeatureMap>(in.ConsumeIntegralInRange(in.ConsumeIntegralInRange(0, 31) == 0 ? -1 : 0, 3));
  o.causal = in.ConsumeBool();
  o.eps = in.ConsumeBool() ? 1e-6f : fuzz::make_option(in, 0.0f, 1e-2f);
  attn::ThreadPool* pool = in.ConsumeBool() ? fuzz::shared_pool() : nullptr;

  const int64_t b = s.batch, hh = s.heads, d = s.head_dim, dv = s.value_dim;
  const fuzz::Tensor q = fuzz::make_tensor(in, size_t(b * s.seq_q * hh * d));
  const fuzz::Tensor k = fuzz::make_tensor(in, size_t(b * s.seq_k * hh * d));
  const fuzz::Tensor v = fuzz::make_tensor(in, size_t(b * s.seq_k * hh * dv));
  std::vector<float> out(size_t(b * s.seq_q * hh * dv), -7.0f);
  if (!fuzz::returns([&] { attn::linear_attention(s, o, q.data(), k.data(), v.data(), out.data(), pool); })) return;
  if (q.nonfinite || k.nonfinite || v.nonfinite) return;

  const int F = attn::linear_feature_count(o.feature_map, s.head_dim);
  for (int64_t bi = 0; bi < b; ++bi) {
    for (int64_t h = 0; h < hh; ++h) {
      std::vector<std::vector<double>> phi_k;
      double v_abs = 0;
      for (int64_t j = 0; j < s.seq_k; ++j) {
        phi_k.push_back(features(o.feature_map, k.data() + ((bi * s.seq_k + j) * hh + h) * d, s.head_dim));
        for (int64_t c = 0; c < dv; ++c) v_abs = std::max(v_abs, double(std::fabs(v.data()[((bi * s.seq_k + j) * hh + h) * dv + c])));
      }
      for (int64_t i = 0; i < s.seq_q; ++i) {
        const std::vector<double> phi_q = features(o.feature_map, q.data() + ((bi * s.seq_q + i) * hh + h) * d, s.head_dim);
        const int64_t keys = o.causal ? i + 1 : s.seq_k;
        std::vector<double> num(size_t(dv), 0.0);
        double den = 0, largest = 0;
        for (int64_t j = 0; j < keys; ++j) {
          double w = 0;
          for (int f = 0; f < F; ++f) {
            w += phi_q[size_t(f)] * phi_k[size_t(j)][size_t(f)];
            largest = std::max({largest, phi_q[size_t(f)], phi_k[size_t(j)][size_t(f)]});
          }
          den += w;
          const float* vj = v.data() + ((bi * s.seq_k + j) * hh + h) * dv;
          for (int64_t c = 0; c < dv; ++c) num[size_t(c)] += w * double(vj[c]);
        }
        // Past this, float32 sums of features and weights can overflow.
        if (!(largest * largest * F * double(keys) * std::max(1.0, v_abs) < 1e30)) continue;
        const double total = den + double(o.eps);
        const double sums_err = 2 * (keys + F + 8) * 2 * kUnit * den + 1e-6 * den;
        const double underflow = 4.0 * double(keys + 1) * F * kDenormMin;
        const double bound = total > 0 ? (sums_err + 2 * underflow) * v_abs / total + 1e-35 : 1e-35;
        for (int64_t c = 0; c < dv; ++c) {
          const float got = out[size_t(((bi * s.seq_q + i) * hh + h) * dv + c)];
          const double want = total > 0 ? num[size_t(c)] / total : 0.0;
          if (!std::isfinite(got)) fuzz::fail("output not finite for representable finite inputs", got, want);
          if (!(std::fabs(got - want) <= bound)) fuzz::fail("output differs from the float64 formula", got, want, bound);
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
