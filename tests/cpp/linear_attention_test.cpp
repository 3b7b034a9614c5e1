// Linear attention against SPEC.md's formula in float64, written as the O(n^2) masked
// products (a different algorithm from the chunked one under test): every feature map,
// causal and not, odd sizes across the 64-row chunk boundaries, several pool sizes.
#include "linear/linear_attention.h"

#include <gtest/gtest.h>

#include <memory>

#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "test_util.h"

namespace {

using attn::FeatureMap;
using attn::LinearOptions;
using attn::LinearShape;

std::vector<double> phi(FeatureMap map, const float* x, int dim) {
  std::vector<double> f;
  if (map == FeatureMap::kDpfp) {
    std::vector<double> xp(2 * size_t(dim));
    for (int c = 0; c < dim; ++c) xp[c] = std::max(double(x[c]), 0.0), xp[dim + c] = std::max(-double(x[c]), 0.0);
    for (int c = 0; c < 2 * dim; ++c) f.push_back(xp[c] * xp[(c + 2 * dim - 1) % (2 * dim)]);
  } else {
    for (int c = 0; c < dim; ++c) {
      const double v = x[c];
      f.push_back(map == FeatureMap::kElu ? (v > 0 ? v + 1 : std::exp(v)) : std::max(v, 0.0));
    }
  }
  return f;
}

std::vector<double> reference(const LinearShape& s, const LinearOptions& o, const std::vector<float>& q,
                              const std::vector<float>& k, const std::vector<float>& v) {
  std::vector<double> out(size_t(s.batch) * s.seq_q * s.heads * s.value_dim);
  for (int b = 0; b < s.batch; ++b) {
    for (int h = 0; h < s.heads; ++h) {
      std::vector<std::vector<double>> fks;
      for (int j = 0; j < s.seq_k; ++j) {
        fks.push_back(phi(o.feature_map, &k[((size_t(b) * s.seq_k + j) * s.heads + h) * s.head_dim], s.head_dim));
      }
      for (int i = 0; i < s.seq_q; ++i) {
        const auto fq = phi(o.feature_map, &q[((size_t(b) * s.seq_q + i) * s.heads + h) * s.head_dim], s.head_dim);
        std::vector<double> num(s.value_dim, 0.0);
        double den = o.eps;
        for (int j = 0; j < (o.causal ? i + 1 : s.seq_k); ++j) {
          const auto& fk = fks[size_t(j)];
          double a = 0;
          for (size_t f = 0; f < fq.size(); ++f) a += fq[f] * fk[f];
          den += a;
          const float* vj = &v[((size_t(b) * s.seq_k + j) * s.heads + h) * s.value_dim];
          for (int c = 0; c < s.value_dim; ++c) num[c] += a * vj[c];
        }
        double* dst = &out[((size_t(b) * s.seq_q + i) * s.heads + h) * s.value_dim];
        for (int c = 0; c < s.value_dim; ++c) dst[c] = den > 0 ? num[c] / den : 0.0;
      }
    }
  }
  return out;
}

void check(const LinearShape& s, const LinearOptions& o, int threads, std::mt19937_64& rng) {
  const auto q = testutil::randn(rng, size_t(s.batch) * s.seq_q * s.heads * s.head_dim);
  const auto k = testutil::randn(rng, size_t(s.batch) * s.seq_k * s.heads * s.head_dim);
  const auto v = testutil::randn(rng, size_t(s.batch) * s.seq_k * s.heads * s.value_dim);
  const testutil::Guarded<float> gq(q, testutil::kNaN), gk(k, testutil::kNaN), gv(v, testutil::kNaN);
  testutil::Guarded<float> out(size_t(s.batch) * s.seq_q * s.heads * s.value_dim, -3.0f);
  std::unique_ptr<attn::ThreadPool> pool;
  if (threads > 0) pool = std::make_unique<attn::ThreadPool>(threads);
  attn::linear_attention(s, o, gq.data(), gk.data(), gv.data(), out.data(), pool.get());
  const auto ref = reference(s, o, q, k, v);
  const auto e = testutil::rel_error(out.data(), ref);
  EXPECT_LT(e.value, 1e-5) << "map " << int(o.feature_map) << " causal " << o.causal << " b" << s.batch << " q"
                           << s.seq_q << " k" << s.seq_k << " h" << s.heads << " d" << s.head_dim << " dv"
                           << s.value_dim << " threads " << threads << " worst " << e.worst;
  EXPECT_TRUE(out.guards_intact());
}

TEST(LinearAttention, MatchesFloat64Formula) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  const LinearShape shapes[] = {
      {1, 1, 1, 1, 1, 1},    {2, 3, 3, 3, 5, 7},     {1, 17, 17, 2, 16, 16}, {2, 63, 63, 3, 8, 12},
      {1, 64, 64, 2, 32, 32}, {1, 65, 65, 1, 64, 64}, {2, 130, 130, 3, 17, 9}, {1, 1031, 1031, 2, 32, 16},
  };
  for (FeatureMap map : {FeatureMap::kElu, FeatureMap::kRelu, FeatureMap::kDpfp}) {
    for (bool causal : {false, true}) {
      for (const auto& s : shapes) check(s, {map, causal, 1e-6f}, 0, rng);
    }
  }
}

TEST(LinearAttention, MoreKeysThanQueriesAndThreads) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  for (int threads : {0, 1, 2, 3}) {
    check({2, 33, 200, 3, 16, 24}, {FeatureMap::kElu, false, 1e-6f}, threads, rng);
    check({1, 150, 150, 5, 8, 8}, {FeatureMap::kDpfp, true, 1e-3f}, threads, rng);
  }
}

TEST(LinearAttention, ReluWithNoOverlapGivesZeros) {
  // Queries all negative and keys all positive: relu features never meet, so every row's
  // denominator is eps alone and its numerator 0.
  const LinearShape s{1, 5, 5, 1, 4, 3};
  std::vector<float> q(20, -1.0f), k(20, 1.0f), v(15, 2.0f), out(15, 9.0f);
  attn::linear_attention(s, {FeatureMap::kRelu, true, 1e-6f}, q.data(), k.data(), v.data(), out.data(), nullptr);
  for (float x : out) EXPECT_EQ(x, 0.0f);
  // A denormal eps: 1/eps overflows, and 0 * inf gave NaN (found by tests/fuzz/linear_attention_fuzz).
  for (bool causal : {true, false}) {
    attn::linear_attention(s, {FeatureMap::kRelu, causal, 3e-45f}, q.data(), k.data(), v.data(), out.data(), nullptr);
    for (float x : out) EXPECT_EQ(x, 0.0f) << "causal " << causal;
  }
  // Denormal weights with a denormal eps: finite (not accurate: the weights have few bits left).
  std::vector<float> tiny_q(20, 1e-23f), tiny_k(20, 1e-23f);
  attn::linear_attention(s, {FeatureMap::kRelu, false, 1e-45f}, tiny_q.data(), tiny_k.data(), v.data(), out.data(), nullptr);
  for (float x : out) EXPECT_TRUE(std::isfinite(x)) << x;
}

TEST(LinearAttention, RefusesBadArguments) {
  auto expect_param = [](const LinearShape& s, const LinearOptions& o, const std::string& param) {
    try {
      attn::validate_linear(s, o);
      ADD_FAILURE() << "accepted a bad " << param;
    } catch (const attn::AttnError& e) {
      EXPECT_EQ(e.param(), param) << e.what();
    }
  };
  const LinearShape good{1, 4, 4, 2, 8, 8};
  EXPECT_NO_THROW(attn::validate_linear(good, {}));
  expect_param({0, 4, 4, 2, 8, 8}, {}, "batch");
  expect_param({1, 4, 4, 2, 0, 8}, {}, "head_dim");
  expect_param({1, 4, 5, 2, 8, 8}, {FeatureMap::kElu, true, 1e-6f}, "causal");
  expect_param(good, {FeatureMap::kElu, false, std::nanf("")}, "eps");
  expect_param(good, {FeatureMap::kElu, false, -1.0f}, "eps");
  expect_param(good, {static_cast<FeatureMap>(7), false, 1e-6f}, "featureMap");
}

}  // namespace
