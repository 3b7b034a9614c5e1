// AdaptiveGate against a naive float64 gate with the same weights (read through
// named_parameters()): odd sizes (one token, fewer tokens than pools, across the 64-token
// task blocks, 1000+), batches, dims, pool sizes; results that do not depend on the thread
// pool; the documented meaning of confidence; seeded PyTorch-like initial weights; loading
// by name; errors.
#include "asam/adaptive_gate.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <memory>

#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "test_util.h"

namespace {

using attn::asam::AdaptiveGate;
using attn::asam::GateOutput;
using attn::asam::kGatePatternCount;

struct Reference {
  std::vector<double> gate_values, confidence, pattern_logits;
};

std::map<std::string, std::vector<double>> weights_of(const AdaptiveGate& g) {
  std::map<std::string, std::vector<double>> w;
  for (const auto& p : g.named_parameters()) {
    size_t n = 1;
    for (int s : p.shape) n *= size_t(s);
    w[p.name].assign(p.data, p.data + n);
  }
  return w;
}

double gelu_tanh(double x) {
  const double k = std::sqrt(2.0 / M_PI);
  return 0.5 * x * (1.0 + std::tanh(k * (x + 0.044715 * x * x * x)));
}

Reference reference(const AdaptiveGate& g, int batch, int seq, const std::vector<float>& x) {
  const int dim = g.dim(), heads = g.num_heads(), hidden = g.hidden_dim(), pools = g.num_pools();
  auto w = weights_of(g);
  const auto &w1 = w["token_proj.weight"], &b1 = w["token_proj.bias"], &w2 = w["gate_proj.weight"],
             &b2 = w["gate_proj.bias"], &w3 = w["pattern_proj.weight"], &b3 = w["pattern_proj.bias"];
  Reference ref;
  ref.gate_values.resize(size_t(batch) * heads * seq);
  ref.confidence.resize(size_t(batch) * heads);
  ref.pattern_logits.resize(size_t(batch) * kGatePatternCount);
  for (int b = 0; b < batch; ++b) {
    std::vector<double> h(size_t(seq) * hidden);
    for (int t = 0; t < seq; ++t) {
      const float* xt = &x[(size_t(b) * seq + t) * dim];
      for (int c = 0; c < hidden; ++c) {
        double s = b1[size_t(c)];
        for (int i = 0; i < dim; ++i) s += w1[size_t(c) * dim + i] * xt[i];
        h[size_t(t) * hidden + c] = gelu_tanh(s);
      }
      for (int hh = 0; hh < heads; ++hh) {
        double z = b2[size_t(hh)];
        for (int c = 0; c < hidden; ++c) z += w2[size_t(hh) * hidden + c] * h[size_t(t) * hidden + c];
        ref.gate_values[(size_t(b) * heads + hh) * seq + t] = 1.0 / (1.0 + std::exp(-z));
      }
    }
    for (int hh = 0; hh < heads; ++hh) {
      double s = 0;
      for (int t = 0; t < seq; ++t) s += std::abs(2.0 * ref.gate_values[(size_t(b) * heads + hh) * seq + t] - 1.0);
      ref.confidence[size_t(b) * heads + hh] = s / seq;
    }
    // nn.AdaptiveAvgPool1d over the tokens: segment p is [floor(p n / P), ceil((p + 1) n / P)).
    std::vector<double> pooled(size_t(pools) * hidden, 0.0);
    for (int p = 0; p < pools; ++p) {
      const int begin = int(std::floor(double(p) * seq / pools)), end = int(std::ceil(double(p + 1) * seq / pools));
      for (int t = begin; t < end; ++t) {
        for (int c = 0; c < hidden; ++c) pooled[size_t(p) * hidden + c] += h[size_t(t) * hidden + c] / (end - begin);
      }
    }
    for (int o = 0; o < kGatePatternCount; ++o) {
      double s = b3[size_t(o)];
      for (size_t j = 0; j < pooled.size(); ++j) s += w3[size_t(o) * pooled.size() + j] * pooled[j];
      ref.pattern_logits[size_t(b) * kGatePatternCount + o] = s;
    }
  }
  return ref;
}

struct Shape {
  int dim, heads, hidden, pools, batch, seq;
  std::string str() const {
    return "dim " + std::to_string(dim) + " heads " + std::to_string(heads) + " hidden " + std::to_string(hidden) +
           " pools " + std::to_string(pools) + " batch " + std::to_string(batch) + " seq " + std::to_string(seq);
  }
};

void check_against_reference(const Shape& s, int threads, float sigma, std::mt19937_64& rng) {
  const AdaptiveGate g(s.dim, s.heads, s.hidden, s.pools, rng());
  const auto x = testutil::randn(rng, size_t(s.batch) * s.seq * s.dim, sigma);
  std::unique_ptr<attn::ThreadPool> pool;
  if (threads > 0) pool = std::make_unique<attn::ThreadPool>(threads);
  testutil::Guarded<float> gate(size_t(s.batch) * s.heads * s.seq, -7.0f), conf(size_t(s.batch) * s.heads, -7.0f),
      logits(size_t(s.batch) * kGatePatternCount, -7.0f);
  g.forward(s.batch, s.seq, x.data(), gate.data(), conf.data(), logits.data(), pool.get());
  const Reference ref = reference(g, s.batch, s.seq, x);
  const std::string what = s.str() + " threads " + std::to_string(threads) + " sigma " + std::to_string(sigma);
  EXPECT_LT(testutil::rel_error(gate.data(), ref.gate_values).value, 1e-4) << what;
  EXPECT_LT(testutil::rel_error(conf.data(), ref.confidence).value, 1e-4) << what;
  EXPECT_LT(testutil::rel_error(logits.data(), ref.pattern_logits).value, 1e-4) << what;
  EXPECT_TRUE(gate.guards_intact() && conf.guards_intact() && logits.guards_intact()) << what;
  for (size_t i = 0; i < gate.size(); ++i) {
    ASSERT_TRUE(gate[i] > 0.0f && gate[i] < 1.0f) << what << " gate " << i << " = " << gate[i];
  }
  for (size_t i = 0; i < conf.size(); ++i) {
    ASSERT_TRUE(conf[i] >= 0.0f && conf[i] <= 1.0f) << what << " confidence " << i << " = " << conf[i];
  }
}

TEST(AdaptiveGate, MatchesNaiveFloat64) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  const Shape shapes[] = {
      {16, 4, 32, 4, 1, 1},      {16, 4, 32, 4, 3, 3},       // fewer tokens than pools
      {33, 3, 37, 5, 3, 17},     {8, 1, 16, 1, 1, 64},       // one pool
      {24, 8, 40, 4, 2, 65},     {64, 8, 128, 4, 1, 1000},   // 64-token blocks straddling segments
      {48, 5, 20, 7, 3, 1031},   {512, 8, 128, 4, 1, 130},   // the seed's sizes
      {7, 2, 1, 3, 2, 10},       {1, 1, 3, 2, 1, 5},         // a hidden width of one, a dim of one
  };
  for (const Shape& s : shapes) {
    for (int threads : {0, 3}) check_against_reference(s, threads, 1.0f, rng);
  }
  check_against_reference({32, 4, 64, 4, 2, 200}, 2, 3.0f, rng);  // larger inputs, gates further from 0.5
}

TEST(AdaptiveGate, ResultsDoNotDependOnThePool) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  const AdaptiveGate g(40, 6, 48, 5, rng());
  const int batch = 3, seq = 1111;
  const auto x = testutil::randn(rng, size_t(batch) * seq * 40);
  const GateOutput alone = g.forward(batch, seq, x.data(), nullptr);
  for (int threads : {1, 2, 5}) {
    attn::ThreadPool pool(threads);
    const GateOutput shared = g.forward(batch, seq, x.data(), &pool);
    EXPECT_EQ(shared.gate_values, alone.gate_values) << threads << " threads";
    EXPECT_EQ(shared.confidence, alone.confidence) << threads << " threads";
    EXPECT_EQ(shared.pattern_logits, alone.pattern_logits) << threads << " threads";
  }
}

TEST(AdaptiveGate, OutputShapes) {
  std::mt19937_64 rng(1);
  const AdaptiveGate g(12, 3, 10);
  const auto x = testutil::randn(rng, size_t(2) * 9 * 12);
  const GateOutput out = g.forward(2, 9, x.data(), nullptr);
  EXPECT_EQ(out.gate_values.size(), size_t(2 * 3 * 9));
  EXPECT_EQ(out.confidence.size(), size_t(2 * 3));
  EXPECT_EQ(out.pattern_logits.size(), size_t(2 * 4));
  EXPECT_EQ(g.num_pools(), 4);  // the seed's default
}

// Loads the gate with zero weights except the gate bias: every token's gate is sigmoid(bias).
void set_gate_bias(AdaptiveGate& g, float bias) {
  attn::NamedWeights w;
  for (const auto& p : g.named_parameters()) {
    size_t n = 1;
    for (int s : p.shape) n *= size_t(s);
    w.push_back({p.name, std::vector<float>(n, p.name == "gate_proj.bias" ? bias : 0.0f)});
  }
  g.load_named(w);
}

TEST(AdaptiveGate, ConfidenceIsZeroWhenUndecidedAndNearOneWhenDecisive) {
  std::mt19937_64 rng(2);
  AdaptiveGate g(16, 2, 8, 4, 3);
  const auto x = testutil::randn(rng, size_t(50) * 16);
  set_gate_bias(g, 0.0f);
  GateOutput out = g.forward(1, 50, x.data(), nullptr);
  for (float v : out.gate_values) EXPECT_FLOAT_EQ(v, 0.5f);
  for (float c : out.confidence) EXPECT_FLOAT_EQ(c, 0.0f);
  for (float bias : {8.0f, -8.0f}) {
    set_gate_bias(g, bias);
    out = g.forward(1, 50, x.data(), nullptr);
    for (float c : out.confidence) EXPECT_NEAR(c, 1.0 - 2.0 / (1.0 + std::exp(8.0)), 1e-6) << bias;
  }
}

TEST(AdaptiveGate, GatePatternIsTheLargestLogit) {
  using attn::asam::gate_pattern;
  const float a[] = {0.1f, -2.0f, 0.3f, 0.2f}, b[] = {1.0f, 1.0f, 0.0f, 0.0f}, c[] = {-3.0f, -2.0f, -1.0f, 5.0f};
  EXPECT_STREQ(gate_pattern(a), "clustered");
  EXPECT_STREQ(gate_pattern(b), "local");
  EXPECT_STREQ(gate_pattern(c), "hierarchical");
  const float d[] = {0.0f, 2.0f, 0.0f, 0.0f};
  EXPECT_STREQ(gate_pattern(d), "strided");
}

TEST(AdaptiveGate, SameSeedSameWeightsAndPyTorchInitBounds) {
  const AdaptiveGate a(24, 4, 20, 3, 11), b(24, 4, 20, 3, 11), c(24, 4, 20, 3, 12);
  const auto wa = weights_of(a), wb = weights_of(b), wc = weights_of(c);
  EXPECT_EQ(wa, wb);
  for (const auto& [name, values] : wa) EXPECT_NE(values, wc.at(name)) << name;
  const std::map<std::string, double> fan_in = {{"token_proj.weight", 24}, {"token_proj.bias", 24},
                                                {"gate_proj.weight", 20},  {"gate_proj.bias", 20},
                                                {"pattern_proj.weight", 60}, {"pattern_proj.bias", 60}};
  int64_t count = 0;
  for (const auto& p : a.named_parameters()) {
    const std::vector<double>& values = wa.at(p.name);
    const double bound = 1.0 / std::sqrt(fan_in.at(p.name));
    double largest = 0;
    for (double v : values) {
      EXPECT_LE(std::abs(v), bound) << p.name;
      largest = std::max(largest, std::abs(v));
    }
    if (values.size() >= 20) EXPECT_GT(largest, 0.5 * bound) << p.name;  // spread over the range
    count += int64_t(values.size());
  }
  EXPECT_EQ(count, a.param_count());
  EXPECT_EQ(count, 20 * 24 + 20 + 4 * 20 + 4 + 4 * 60 + 4);
  const std::vector<std::vector<int>> shapes = {{20, 24}, {20}, {4, 20}, {4}, {4, 60}, {4}};
  const auto params = a.named_parameters();
  ASSERT_EQ(params.size(), shapes.size());
  for (size_t i = 0; i < params.size(); ++i) EXPECT_EQ(params[i].shape, shapes[i]) << params[i].name;
}

attn::NamedWeights named_copy(const AdaptiveGate& g) {
  attn::NamedWeights w;
  for (const auto& [name, values] : weights_of(g)) w.push_back({name, std::vector<float>(values.begin(), values.end())});
  return w;
}

TEST(AdaptiveGate, LoadsByNameAndRefusesBadWeightsKeepingTheOld) {
  std::mt19937_64 rng(4);
  AdaptiveGate a(10, 2, 6, 3, 1);
  const AdaptiveGate b(10, 2, 6, 3, 2);
  const auto x = testutil::randn(rng, size_t(2) * 25 * 10);
  a.load_named(named_copy(b));
  const GateOutput ga = a.forward(2, 25, x.data(), nullptr), gb = b.forward(2, 25, x.data(), nullptr);
  EXPECT_EQ(ga.gate_values, gb.gate_values);
  EXPECT_EQ(ga.pattern_logits, gb.pattern_logits);

  const auto before = weights_of(a);
  auto refused = [&](attn::NamedWeights w, const std::string& param) {
    try {
      a.load_named(w);
      ADD_FAILURE() << "accepted bad weights for " << param;
    } catch (const attn::AttnError& e) {
      EXPECT_EQ(e.param(), param) << e.what();
    }
    EXPECT_EQ(weights_of(a), before) << param;
  };
  auto w = named_copy(b);
  w.pop_back();  // the last name in order is token_proj.weight
  refused(w, "token_proj.weight");
  w = named_copy(b);
  w[0].second.pop_back();
  refused(w, w[0].first);
  w = named_copy(b);
  w[1].second[0] = NAN;
  refused(w, w[1].first);
  w = named_copy(b);
  w.push_back({"to_qkv.weight", {1.0f}});
  refused(w, "to_qkv.weight");
}

TEST(AdaptiveGate, RefusesBadSizesAndCalls) {
  auto refused = [](auto make, const std::string& param) {
    try {
      make();
      ADD_FAILURE() << "accepted a bad " << param;
    } catch (const attn::AttnError& e) {
      EXPECT_EQ(e.param(), param) << e.what();
    }
  };
  refused([] { AdaptiveGate g(0, 8); }, "dim");
  refused([] { AdaptiveGate g(16, 0); }, "numHeads");
  refused([] { AdaptiveGate g(16, 4, -1); }, "hiddenDim");
  refused([] { AdaptiveGate g(16, 4, 8, 0); }, "numPools");
  const AdaptiveGate g(4, 2, 3);
  std::vector<float> x(4 * 5), gate(2 * 5), conf(2), logits(4);
  refused([&] { g.forward(0, 5, x.data(), nullptr); }, "batch");
  refused([&] { g.forward(1, 0, x.data(), nullptr); }, "seqLen");
  refused([&] { g.forward(1, 5, nullptr, nullptr); }, "x");
  refused([&] { g.forward(1, 5, x.data(), gate.data(), nullptr, logits.data(), nullptr); }, "outputs");
}

}  // namespace
