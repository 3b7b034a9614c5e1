// AdaptivePrecisionAttention against plain float64 loops: the layer's projections in
// double, K and V rounded to the storage precision the layer reports, attention in double.
// Fixed policies over odd shapes, masks and causal; the adaptive choice against the
// caller's tolerance (bf16, fp16, fp32 and fp16 out of range), with its sampled error
// checked against the error the whole call really has; incremental steps over the cache
// (bottom-right causal), the fp16 cache converted on overflow; statistics; bad options.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "adaattn/adaptive_precision_attention.h"
#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "simd/half_float.h"
#include "test_util.h"

namespace {

using attn::AdaptivePrecisionAttention;
using attn::AdaptivePrecisionConfig;
using attn::CausalAlign;
using attn::MaskView;
using attn::PrecisionPolicy;
using attn::StoragePrecision;

struct Weights {
  std::vector<float> q, k, v, out, in_bias, out_bias;
};

// Normal values rounded to multiples of 2^-6: the projections of the layer (float32 GEMM)
// and of the reference (double) are then both exact (products are multiples of 2^-12 and
// sums stay below 2^8: 20 bits), so K and V round to the same halves in both; otherwise a
// float32 projection one ulp from a half's rounding boundary rounds the other way now and
// then, and the comparison would measure that. They still need more bits than a half has.
std::vector<float> coarse(std::mt19937_64& rng, size_t n, float sigma, float step) {
  auto x = testutil::randn(rng, n, sigma);
  for (auto& v : x) v = std::round(v / step) * step;
  return x;
}
constexpr float kStep = 0x1p-6f;
std::vector<float> inputs(std::mt19937_64& rng, size_t n) { return coarse(rng, n, 1.0f, kStep); }

Weights random_weights(int e, std::mt19937_64& rng) {
  const float s = 1.0f / std::sqrt(float(e));
  const size_t ee = size_t(e) * e;
  return {coarse(rng, ee, s, kStep), coarse(rng, ee, s, kStep), coarse(rng, ee, s, kStep),
          coarse(rng, ee, s, kStep), coarse(rng, 3 * size_t(e), 0.5f, kStep), coarse(rng, e, 0.5f, kStep)};
}

void load(AdaptivePrecisionAttention& layer, const Weights& w) {
  std::vector<float> in_proj(w.q);
  in_proj.insert(in_proj.end(), w.k.begin(), w.k.end());
  in_proj.insert(in_proj.end(), w.v.begin(), w.v.end());
  layer.projections().load_named({{"in_proj_weight", in_proj}, {"out_proj.weight", w.out},
                                  {"in_proj_bias", w.in_bias}, {"out_proj.bias", w.out_bias}});
}

std::vector<double> linear(const std::vector<float>& x, int64_t rows, int e, const std::vector<float>& w,
                           const std::vector<float>& bias, size_t offset) {
  std::vector<double> y(size_t(rows) * e);
  for (int64_t r = 0; r < rows; ++r) {
    for (int o = 0; o < e; ++o) {
      double s = bias[offset + o];
      for (int i = 0; i < e; ++i) s += double(x[size_t(r) * e + i]) * double(w[size_t(o) * e + i]);
      y[size_t(r) * e + o] = s;
    }
  }
  return y;
}

double stored(StoragePrecision p, double x) {
  const float f = float(x);
  switch (p) {
    case StoragePrecision::kFp16: return attn::simd::fp16_to_float(attn::simd::float_to_fp16(f));
    case StoragePrecision::kBf16: return attn::simd::bf16_to_float(attn::simd::float_to_bf16(f));
    default: return x;
  }
}

// The layer in float64 with K and V stored in `p`. Query i of a batch element sees keys
// j < visible(i); mask: additive [seq_q][seq_k] shared by every batch element and head.
template <class Visible>
std::vector<double> reference(int e, int heads, const Weights& w, int batch, int sq, int sk,
                              const std::vector<float>& query, const std::vector<float>& key,
                              const std::vector<float>& value, StoragePrecision p, Visible visible,
                              const std::vector<float>& mask = {}) {
  const int d = e / heads;
  const auto q = linear(query, int64_t{batch} * sq, e, w.q, w.in_bias, 0);
  auto k = linear(key, int64_t{batch} * sk, e, w.k, w.in_bias, size_t(e));
  auto v = linear(value, int64_t{batch} * sk, e, w.v, w.in_bias, 2 * size_t(e));
  for (auto& x : k) x = stored(p, x);
  for (auto& x : v) x = stored(p, x);
  std::vector<float> attended(size_t(batch) * sq * e, 0.0f);
  std::vector<double> s(sk), acc(d);
  for (int b = 0; b < batch; ++b) {
    for (int h = 0; h < heads; ++h) {
      for (int i = 0; i < sq; ++i) {
        double mx = -INFINITY;
        const int n = visible(i);
        for (int j = 0; j < n; ++j) {
          double dot = 0;
          for (int t = 0; t < d; ++t) dot += q[(size_t(b) * sq + i) * e + h * d + t] * k[(size_t(b) * sk + j) * e + h * d + t];
          s[j] = dot / std::sqrt(double(d)) + (mask.empty() ? 0.0 : mask[size_t(i) * sk + j]);
          mx = std::max(mx, s[j]);
        }
        if (mx == -INFINITY) continue;
        double sum = 0;
        for (int j = 0; j < n; ++j) sum += (s[j] = std::exp(s[j] - mx));
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int j = 0; j < n; ++j) {
          for (int t = 0; t < d; ++t) acc[t] += s[j] / sum * v[(size_t(b) * sk + j) * e + h * d + t];
        }
        // The output projection reads float32 heads, as the layer's does.
        for (int t = 0; t < d; ++t) attended[(size_t(b) * sq + i) * e + h * d + t] = float(acc[t]);
      }
    }
  }
  return linear(attended, int64_t{batch} * sq, e, w.out, w.out_bias, 0);
}

auto all_keys(int sk) {
  return [sk](int) { return sk; };
}

double rel(const std::vector<float>& got, const std::vector<double>& want) {
  return testutil::rel_error(got.data(), want).value;
}

AdaptivePrecisionConfig config(int e, int heads, PrecisionPolicy policy, double tolerance = 1e-2) {
  AdaptivePrecisionConfig c;
  c.embed_dim = e;
  c.num_heads = heads;
  c.policy = policy;
  c.tolerance = tolerance;
  return c;
}

TEST(AdaptivePrecision, FixedPoliciesEqualAttentionOverTheStoredKeysAndValues) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::ThreadPool pool(3);
  struct Shape { int e, heads, batch, sq, sk; bool causal, mask; };
  for (const Shape sh : {Shape{32, 4, 2, 17, 23, false, true}, Shape{24, 3, 1, 1, 1, false, false},
                         Shape{16, 2, 3, 3, 3, true, false}, Shape{64, 8, 1, 1000, 1000, true, false}}) {
    for (PrecisionPolicy policy : {PrecisionPolicy::kFp32, PrecisionPolicy::kFp16, PrecisionPolicy::kBf16}) {
      SCOPED_TRACE(std::string(attn::precision_policy_name(policy)) + " e=" + std::to_string(sh.e) +
                   " sq=" + std::to_string(sh.sq) + " sk=" + std::to_string(sh.sk));
      AdaptivePrecisionAttention layer(config(sh.e, sh.heads, policy));
      const Weights w = random_weights(sh.e, rng);
      load(layer, w);
      const auto query = inputs(rng, size_t(sh.batch) * sh.sq * sh.e);
      const auto key = inputs(rng, size_t(sh.batch) * sh.sk * sh.e);
      const auto value = inputs(rng, size_t(sh.batch) * sh.sk * sh.e);
      std::vector<float> mask;
      MaskView view;
      if (sh.mask) {  // biases, blocked keys, and one fully blocked row
        mask = testutil::randn(rng, size_t(sh.sq) * sh.sk, 0.5f);
        for (size_t x = 0; x < mask.size(); x += 3) mask[x] = -INFINITY;
        for (int j = 0; j < sh.sk; ++j) mask[size_t(sh.sq / 2) * sh.sk + j] = -INFINITY;
        view.additive = mask.data();
        view.row_stride = sh.sk;
      }
      std::vector<float> out(query.size());
      const auto& d = layer.forward(sh.batch, sh.sq, sh.sk, query.data(), key.data(), value.data(), view,
                                    sh.causal ? CausalAlign::kTopLeft : CausalAlign::kNone, false, out.data(), &pool);
      const StoragePrecision p = d.precision;
      EXPECT_EQ(attn::precision_policy_name(policy), std::string(attn::storage_precision_name(p)));
      const auto visible = [&](int i) { return sh.causal ? std::min(i + 1, sh.sk) : sh.sk; };
      EXPECT_LT(rel(out, reference(sh.e, sh.heads, w, sh.batch, sh.sq, sh.sk, query, key, value, p, visible, mask)), 1e-4);
      // And within the storage's rounding of float32 storage.
      const double budget = p == StoragePrecision::kFp32 ? 1e-4 : p == StoragePrecision::kFp16 ? 3e-3 : 2.5e-2;
      EXPECT_LT(rel(out, reference(sh.e, sh.heads, w, sh.batch, sh.sq, sh.sk, query, key, value,
                                   StoragePrecision::kFp32, visible, mask)), budget);
      EXPECT_FALSE(d.sampled_error_bf16.has_value());  // a fixed policy measures nothing
      EXPECT_NE(d.reason.find("fixed"), std::string::npos) << d.reason;
    }
  }
}

// The adaptive policy against tolerances either side of the errors it measures; the error
// it reports for the sample predicts the error of the whole call.
TEST(AdaptivePrecision, AdaptiveChoosesTheCheapestStorageWithinTolerance) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::ThreadPool pool(2);
  const int e = 32, heads = 4, batch = 2, sq = 60, sk = 70;
  const Weights w = random_weights(e, rng);
  const auto query = inputs(rng, size_t(batch) * sq * e);
  const auto key = inputs(rng, size_t(batch) * sk * e);
  const auto value = inputs(rng, size_t(batch) * sk * e);
  auto run = [&](double tolerance, std::vector<float>& out) {
    AdaptivePrecisionAttention layer(config(e, heads, PrecisionPolicy::kAdaptive, tolerance));
    load(layer, w);
    out.resize(query.size());
    return layer.forward(batch, sq, sk, query.data(), key.data(), value.data(), {}, CausalAlign::kNone, false,
                         out.data(), &pool);
  };
  const auto exact = reference(e, heads, w, batch, sq, sk, query, key, value, StoragePrecision::kFp32, all_keys(sk));
  std::vector<float> out;
  const auto loose = run(1e-2, out);
  ASSERT_EQ(loose.precision, StoragePrecision::kBf16) << loose.reason;
  ASSERT_TRUE(loose.sampled_error_bf16.has_value());
  EXPECT_GE(loose.sampled_rows, 16);
  const double bf16_error = *loose.sampled_error_bf16;
  EXPECT_GT(bf16_error, 1e-4);
  EXPECT_LT(bf16_error, 1e-2);
  // The whole call's error (through the output projection) is of the sample's order.
  const double whole_bf16 = rel(out, exact);
  EXPECT_LT(whole_bf16, 4 * bf16_error);
  EXPECT_GT(whole_bf16, bf16_error / 4);
  EXPECT_LT(rel(out, reference(e, heads, w, batch, sq, sk, query, key, value, StoragePrecision::kBf16, all_keys(sk))), 1e-4);

  const auto tighter = run(bf16_error / 2, out);
  ASSERT_EQ(tighter.precision, StoragePrecision::kFp16) << tighter.reason;
  ASSERT_TRUE(tighter.sampled_error_fp16.has_value());
  EXPECT_LT(*tighter.sampled_error_fp16, bf16_error / 2);
  EXPECT_LT(rel(out, reference(e, heads, w, batch, sq, sk, query, key, value, StoragePrecision::kFp16, all_keys(sk))), 1e-4);

  const auto strict = run(0.0, out);
  EXPECT_EQ(strict.precision, StoragePrecision::kFp32) << strict.reason;
  EXPECT_NE(strict.reason.find("fp16's"), std::string::npos) << strict.reason;
  EXPECT_LT(rel(out, exact), 1e-4);
}

TEST(AdaptivePrecision, AdaptiveRulesOutFp16BeyondItsRange) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  const int e = 16, heads = 2, sq = 9, sk = 11;
  AdaptivePrecisionAttention layer(config(e, heads, PrecisionPolicy::kAdaptive, 1e-6));
  Weights w = random_weights(e, rng);
  // Values far beyond 65504: the projected V has a standard deviation of about 1.7e5, so
  // its largest of 176 entries exceeds fp16's range for any seed (at 3e4 it did not always).
  for (auto& x : w.v) x *= 3e5f;
  load(layer, w);
  const auto query = testutil::randn(rng, size_t(sq) * e), key = testutil::randn(rng, size_t(sk) * e);
  const auto value = testutil::randn(rng, size_t(sk) * e);
  std::vector<float> out(query.size());
  const auto& d = layer.forward(1, sq, sk, query.data(), key.data(), value.data(), {}, CausalAlign::kNone, false,
                                out.data(), nullptr);
  EXPECT_EQ(d.precision, StoragePrecision::kFp32);
  EXPECT_GT(d.max_abs_v, 65504.0f);
  EXPECT_FALSE(d.sampled_error_fp16.has_value());
  EXPECT_NE(d.reason.find("out of range"), std::string::npos) << d.reason;
  EXPECT_LT(rel(out, reference(e, heads, w, 1, sq, sk, query, key, value, StoragePrecision::kFp32, all_keys(sk))), 1e-4);

  // A fixed fp16 policy stores them anyway and says how many overflowed.
  AdaptivePrecisionAttention forced(config(e, heads, PrecisionPolicy::kFp16));
  load(forced, w);
  const auto& f = forced.forward(1, sq, sk, query.data(), key.data(), value.data(), {}, CausalAlign::kNone, false,
                                 out.data(), nullptr);
  EXPECT_GT(f.overflowed, 0);
  EXPECT_NE(f.reason.find("infinite"), std::string::npos) << f.reason;
}

// Prefill with keep_cache, then steps of 1 and 3 tokens: each step equals the layer over
// every token so far (K and V as stored), the new tokens seeing the cache up to themselves.
TEST(AdaptivePrecision, StepsAttendOverTheCacheBottomRightCausal) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::ThreadPool pool(3);
  const int e = 32, heads = 4, prefill = 37;
  for (PrecisionPolicy policy : {PrecisionPolicy::kFp32, PrecisionPolicy::kBf16, PrecisionPolicy::kAdaptive}) {
    SCOPED_TRACE(attn::precision_policy_name(policy));
    AdaptivePrecisionAttention layer(config(e, heads, policy));
    const Weights w = random_weights(e, rng);
    load(layer, w);
    std::vector<float> tokens = inputs(rng, size_t(prefill + 4) * e);  // self-attention inputs
    std::vector<float> out(size_t(prefill) * e);
    const auto& first = layer.forward(1, prefill, prefill, tokens.data(), tokens.data(), tokens.data(), {},
                                      CausalAlign::kTopLeft, true, out.data(), &pool);
    const StoragePrecision p = first.precision;
    EXPECT_EQ(layer.cache_rows(), prefill);
    EXPECT_EQ(layer.cache_bytes() / (int64_t{prefill} * 2 * e), attn::storage_bytes(p));
    int done = prefill;
    for (int rows : {1, 3}) {
      std::vector<float> step_out(size_t(rows) * e);
      const float* x = tokens.data() + size_t(done) * e;
      const auto& d = layer.step(rows, x, x, x, step_out.data(), &pool);
      EXPECT_TRUE(d.incremental);
      EXPECT_EQ(d.precision, p);
      const int total = done + rows;
      const std::vector<float> all(tokens.begin(), tokens.begin() + size_t(total) * e);
      const std::vector<float> last(tokens.begin() + size_t(done) * e, tokens.begin() + size_t(total) * e);
      const auto want = reference(e, heads, w, 1, rows, total, last, all, all, p,
                                  [&](int i) { return total - rows + i + 1; });
      EXPECT_LT(rel(step_out, want), 1e-4) << rows << " rows";
      done = total;
    }
    EXPECT_EQ(layer.cache_rows(), done);
    EXPECT_EQ(layer.statistics().calls, 3);
    layer.reset_cache();
    EXPECT_EQ(layer.cache_rows(), 0);
  }
}

TEST(AdaptivePrecision, Fp16CacheBecomesFp32WhenANewValueOverflows) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  const int e = 16, heads = 2, prefill = 40;
  const Weights w = random_weights(e, rng);
  const auto tokens = testutil::randn(rng, size_t(prefill) * e);
  // Find a tolerance that picks fp16 on this prefill: between fp16's and bf16's errors.
  AdaptivePrecisionAttention probe(config(e, heads, PrecisionPolicy::kAdaptive, 0.0));
  load(probe, w);
  std::vector<float> out(size_t(prefill) * e);
  const auto errors = probe.forward(1, prefill, prefill, tokens.data(), tokens.data(), tokens.data(), {},
                                    CausalAlign::kTopLeft, false, out.data(), nullptr);
  ASSERT_TRUE(errors.sampled_error_fp16 && errors.sampled_error_bf16);
  const double tolerance = std::sqrt(*errors.sampled_error_fp16 * *errors.sampled_error_bf16);
  AdaptivePrecisionAttention layer(config(e, heads, PrecisionPolicy::kAdaptive, tolerance));
  load(layer, w);
  ASSERT_EQ(layer.forward(1, prefill, prefill, tokens.data(), tokens.data(), tokens.data(), {},
                          CausalAlign::kTopLeft, true, out.data(), nullptr).precision,
            StoragePrecision::kFp16);
  std::vector<float> big = testutil::randn(rng, e);
  for (auto& x : big) x *= 1e6f;
  std::vector<float> step_out(e);
  const auto& d = layer.step(1, big.data(), big.data(), big.data(), step_out.data(), nullptr);
  EXPECT_TRUE(d.converted_cache);
  EXPECT_EQ(d.precision, StoragePrecision::kFp32);
  EXPECT_EQ(layer.cache_precision(), StoragePrecision::kFp32);
  EXPECT_EQ(layer.statistics().cache_conversions, 1);
  EXPECT_EQ(layer.statistics().fp16, 1);
  EXPECT_EQ(layer.statistics().fp32, 1);
  for (float x : step_out) EXPECT_TRUE(std::isfinite(x));
}

TEST(AdaptivePrecision, BadOptionsAndCallsNameTheParameter) {
  auto message = [](auto fn) {
    try {
      fn();
    } catch (const attn::AttnError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([] { AdaptivePrecisionAttention(config(0, 1, PrecisionPolicy::kFp32)); }).find("embedDim"), std::string::npos);
  EXPECT_NE(message([] { AdaptivePrecisionAttention(config(10, 3, PrecisionPolicy::kFp32)); }).find("numHeads"), std::string::npos);
  EXPECT_NE(message([] { AdaptivePrecisionAttention(config(8, 2, PrecisionPolicy::kAdaptive, NAN)); }).find("tolerance"), std::string::npos);
  EXPECT_NE(message([] { AdaptivePrecisionAttention(config(8, 2, PrecisionPolicy::kAdaptive, -1)); }).find("tolerance"), std::string::npos);
  AdaptivePrecisionConfig c = config(8, 2, PrecisionPolicy::kAdaptive);
  c.sample_rows = 0;
  EXPECT_NE(message([&] { AdaptivePrecisionAttention{c}; }).find("sampleRows"), std::string::npos);

  AdaptivePrecisionAttention layer(config(8, 2, PrecisionPolicy::kAdaptive));
  std::vector<float> x(2 * 3 * 8), out(2 * 3 * 8);
  EXPECT_NE(message([&] { layer.forward(2, 3, 3, x.data(), x.data(), x.data(), {}, CausalAlign::kNone, true, out.data(), nullptr); })
                .find("batch"), std::string::npos);
  EXPECT_NE(message([&] { layer.step(0, x.data(), x.data(), x.data(), out.data(), nullptr); }).find("rows"), std::string::npos);
  EXPECT_EQ(layer.statistics().calls, 0);  // failed calls decide nothing
  layer.forward(2, 3, 3, x.data(), x.data(), x.data(), {}, CausalAlign::kNone, false, out.data(), nullptr);
  EXPECT_EQ(layer.statistics().calls, 1);
}

}  // namespace
