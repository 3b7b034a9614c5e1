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
#include <cstdlib>
#include <limits>
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
  // Options first and every range valid at its minimum: bytes run out from the end, and an
  // exhausted input then still makes a valid call. One input in 32 breaks one field.
  const int broken = in.ConsumeIntegralInRange(0, 31) == 31 ? in.ConsumeIntegralInRange(0, 6) : -1;
  LinearOptions o;
  o.causal = in.ConsumeBool();
  o.feature_map = static_cast<FeatureMap>(in.ConsumeIntegralInRange(0, 2));
  o.eps = in.ConsumeBool() ? fuzz::make_option(in, 0.0f, 1e-2f) : 1e-6f;
  attn::ThreadPool* pool = in.ConsumeBool() ? fuzz::shared_pool() : nullptr;
  LinearShape s;
  s.batch = in.ConsumeIntegralInRange(1, 2);
  s.heads = in.ConsumeIntegralInRange(1, 3);
  s.seq_q = in.ConsumeIntegralInRange(1, 300);
  s.seq_k = o.causal || in.ConsumeBool() ? s.seq_q : in.ConsumeIntegralInRange(1, 300);
  s.head_dim = in.ConsumeIntegralInRange(1, 40);
  s.value_dim = in.ConsumeBool() ? in.ConsumeIntegralInRange(1, 40) : s.head_dim;
  switch (broken) {
    case 0: s.batch = 0; break;
    case 1: s.heads = -1; break;
    case 2: o.causal = true, s.seq_k = s.seq_q + 1; break;
    case 3: s.head_dim = 0; break;
    case 4: o.feature_map = static_cast<FeatureMap>(in.PickValueInArray({-1, 3, 1000})); break;
    case 5: o.eps = in.PickValueInArray({-1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}); break;
    case 6: s.value_dim = 0; break;
    default: break;
  }

  const int64_t b = std::max(0, s.batch), hh = std::max(0, s.heads), d = std::max(0, s.head_dim), dv = std::max(0, s.value_dim);
  const fuzz::Tensor q = fuzz::make_tensor(in, size_t(b * s.seq_q * hh * d));
  const fuzz::Tensor k = fuzz::make_tensor(in, size_t(b * s.seq_k * hh * d));
  const fuzz::Tensor v = fuzz::make_tensor(in, size_t(b * s.seq_k * hh * dv));
  std::vector<float> out(size_t(b * s.seq_q * hh * dv), -7.0f);
  const bool ran = fuzz::returns([&] { attn::linear_attention(s, o, q.data(), k.data(), v.data(), out.data(), pool); });
  if (std::getenv("FUZZ_VERBOSE") != nullptr) {
    std::fprintf(stderr, "shape b %d sq %d sk %d h %d d %d dv %d; map %d causal %d eps %g pool %d; |q| %g |k| %g |v| %g%s\n",
                 s.batch, s.seq_q, s.seq_k, s.heads, s.head_dim, s.value_dim, int(o.feature_map), o.causal,
                 double(o.eps), pool != nullptr, q.max_abs, k.max_abs, v.max_abs, ran ? "" : " (refused)");
  }
  const bool eps_ok = std::isfinite(o.eps) && o.eps >= 0.0f;
  fuzz::require(ran == (broken < 0 && eps_ok), ran ? "a broken call was accepted" : "a valid call was refused");
  if (!ran || q.nonfinite || k.nonfinite || v.nonfinite) return;

  // The float64 formula through its running sums: S = Σ φ(k_j) v_jᵀ and z = Σ φ(k_j) (over
  // j <= i when causal), so the reference costs O(n·F·dv) like the kernel, not O(n²).
  const int F = attn::linear_feature_count(o.feature_map, s.head_dim);
  for (int64_t bi = 0; bi < b; ++bi) {
    for (int64_t h = 0; h < hh; ++h) {
      std::vector<double> S(size_t(F) * size_t(dv), 0.0), z(size_t(F), 0.0);
      double v_abs = 0, largest_k = 0;
      int64_t added = 0;
      auto add_key = [&](int64_t j) {
        const std::vector<double> phi = features(o.feature_map, k.data() + ((bi * s.seq_k + j) * hh + h) * d, s.head_dim);
        const float* vj = v.data() + ((bi * s.seq_k + j) * hh + h) * dv;
        for (int f = 0; f < F; ++f) {
          z[size_t(f)] += phi[size_t(f)];
          largest_k = std::max(largest_k, phi[size_t(f)]);
          for (int64_t c = 0; c < dv; ++c) S[size_t(f * dv + c)] += phi[size_t(f)] * double(vj[c]);
        }
        for (int64_t c = 0; c < dv; ++c) v_abs = std::max(v_abs, double(std::fabs(vj[c])));
        ++added;
      };
      if (!o.causal) {
        for (int64_t j = 0; j < s.seq_k; ++j) add_key(j);
      }
      for (int64_t i = 0; i < s.seq_q; ++i) {
        if (o.causal) add_key(i);
        const std::vector<double> phi_q = features(o.feature_map, q.data() + ((bi * s.seq_q + i) * hh + h) * d, s.head_dim);
        double den = 0, largest = largest_k;
        for (int f = 0; f < F; ++f) den += phi_q[size_t(f)] * z[size_t(f)], largest = std::max(largest, phi_q[size_t(f)]);
        // Past this, float32 sums of features and weights can overflow.
        if (!(largest * largest * F * double(added) * std::max(1.0, v_abs) < 1e30)) continue;
        const double total = den + double(o.eps);
        const double sums_err = 2 * (added + F + 8) * 2 * kUnit * den + 1e-6 * den;
        const double underflow = 4.0 * double(added + 1) * F * kDenormMin;
        const double bound = total > 0 ? (sums_err + 2 * underflow) * v_abs / total + 1e-35 : 1e-35;
        for (int64_t c = 0; c < dv; ++c) {
          double num = 0;
          for (int f = 0; f < F; ++f) num += phi_q[size_t(f)] * S[size_t(f * dv + c)];
          const float got = out[size_t(((bi * s.seq_q + i) * hh + h) * dv + c)];
          const double want = total > 0 ? num / total : 0.0;
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
