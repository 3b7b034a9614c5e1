// ASAMLayer, ASAMEncoder and HybridASAM against float64 references written here from the
// layers' own weights (read through named_parameters()): projections in double, attention
// in double under attn::asam::pattern_mask's mask per head, the gate's routing decisions
// and values taken from the layer's info (the gate has its own tests) and the mix recomputed
// in double. Also: sparse_ratio against the kernel's own counts, weights round trips and
// refusals, the encoder as its layers in sequence.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "asam/asam_layer.h"
#include "asam/hybrid_asam.h"
#include "multihead/multihead_attention.h"
#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "test_util.h"

namespace {

using attn::FlashShape;
using attn::MaskView;
using attn::asam::ASAMConfig;
using attn::asam::ASAMEncoder;
using attn::asam::ASAMInfo;
using attn::asam::ASAMLayer;
using attn::asam::HybridASAM;
using attn::asam::PatternType;

using Weights = std::map<std::string, std::vector<float>>;

Weights weights_of(const std::vector<attn::ParameterView>& params) {
  Weights w;
  for (const auto& p : params) {
    size_t n = 1;
    for (int d : p.shape) n *= size_t(d);
    w[p.name].assign(p.data, p.data + n);
  }
  return w;
}

attn::NamedWeights named_of(const Weights& w) {
  attn::NamedWeights named;
  for (const auto& [name, x] : w) named.emplace_back(name, x);
  return named;
}

// y [rows][out] = x [rows][in] . W^T + b, in double.
std::vector<double> linear(const std::vector<double>& x, int64_t rows, int in, const std::vector<float>& w,
                           const std::vector<float>& b, int out) {
  std::vector<double> y(size_t(rows) * out);
  for (int64_t r = 0; r < rows; ++r)
    for (int o = 0; o < out; ++o) {
      double s = b[size_t(o)];
      for (int i = 0; i < in; ++i) s += x[size_t(r * in + i)] * double(w[size_t(int64_t{o} * in + i)]);
      y[size_t(r * out + o)] = s;
    }
  return y;
}

struct Projected {
  std::vector<double> q, k, v;  // [b][n][heads][d]
};

Projected project(const Weights& w, const std::vector<float>& x, int64_t rows, int dim, int inner) {
  const std::vector<double> xd(x.begin(), x.end());
  return {linear(xd, rows, dim, w.at("q_proj.weight"), w.at("q_proj.bias"), inner),
          linear(xd, rows, dim, w.at("k_proj.weight"), w.at("k_proj.bias"), inner),
          linear(xd, rows, dim, w.at("v_proj.weight"), w.at("v_proj.bias"), inner)};
}

// Softmax attention of head h of batch element b over the keys allowed[i][j] lets through
// (all when null); rows that attend nothing give zeros. Writes [n][d] into out.
void attend(const Projected& p, int b, int h, int n, int heads, int d, const uint8_t* allowed, double* out) {
  const double scale = 1.0 / std::sqrt(double(d));
  auto at = [&](int t) { return ((int64_t{b} * n + t) * heads + h) * d; };
  std::vector<double> s(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    double mx = -INFINITY;
    for (int j = 0; j < n; ++j) {
      s[size_t(j)] = -INFINITY;
      if (allowed != nullptr && !allowed[int64_t{i} * n + j]) continue;
      double dot = 0;
      for (int c = 0; c < d; ++c) dot += p.q[size_t(at(i) + c)] * p.k[size_t(at(j) + c)];
      s[size_t(j)] = dot * scale;
      mx = std::max(mx, s[size_t(j)]);
    }
    double* o = out + int64_t{i} * d;
    std::fill(o, o + d, 0.0);
    if (mx == -INFINITY) continue;
    double sum = 0;
    for (int j = 0; j < n; ++j) {
      if (s[size_t(j)] == -INFINITY) continue;
      const double e = std::exp(s[size_t(j)] - mx);
      sum += e;
      for (int c = 0; c < d; ++c) o[c] += e * p.v[size_t(at(j) + c)];
    }
    for (int c = 0; c < d; ++c) o[c] /= sum;
  }
}

std::vector<float> to_float(const std::vector<double>& x, size_t from, size_t count) {
  return std::vector<float>(x.begin() + int64_t(from), x.begin() + int64_t(from + count));
}

// The layer's output recomputed in double from its weights and its info's routing and gate.
// Also checks the info against what the reference sees: the patterns, the routing, and
// sparse_ratio against the sparse kernel's own counts.
std::vector<double> reference_layer(const ASAMLayer& layer, int batch, int n, const std::vector<float>& x,
                                    const ASAMInfo& info) {
  const ASAMConfig& c = layer.config();
  const int heads = c.num_heads, d = c.dim_head, inner = c.inner_dim();
  const Weights w = weights_of(layer.named_parameters());
  const Projected p = project(w, x, int64_t{batch} * n, c.dim, inner);
  std::vector<double> attended(size_t(batch) * n * inner);
  std::vector<double> part(size_t(n) * d), dense(size_t(n) * d);
  int64_t sparse_scores = 0, mixed_heads = 0;
  const size_t per_batch = size_t(n) * inner;
  for (int b = 0; b < batch; ++b) {
    const PatternType type = info.patterns.at(size_t(b));
    if (c.pattern_type == "adaptive") {
      EXPECT_STREQ(attn::asam::pattern_name(type),
                   attn::asam::gate_pattern(info.pattern_logits.data() + b * attn::asam::kGatePatternCount));
    } else {
      EXPECT_EQ(type, attn::asam::parse_pattern_type(c.pattern_type));
    }
    const FlashShape shape{1, n, n, heads, heads, d, d};
    const auto qf = to_float(p.q, b * per_batch, per_batch), kf = to_float(p.k, b * per_batch, per_batch);
    const auto vf = to_float(p.v, b * per_batch, per_batch);
    const auto mask = attn::asam::pattern_mask(shape, layer.pattern_params(type), qf.data(), kf.data());
    std::vector<float> scratch(per_batch);
    sparse_scores += attn::asam::sparse_attention(shape, layer.pattern_params(type), std::nullopt, qf.data(),
                                                  kf.data(), vf.data(), scratch.data(), nullptr)
                         .computed_scores;
    for (int h = 0; h < heads; ++h) {
      attend(p, b, h, n, heads, d, mask.data() + int64_t{h} * n * n, part.data());
      const size_t bh = size_t(b) * heads + h;
      const bool mixed = c.use_adaptive_gate && info.confidence.at(bh) < c.confidence_threshold;
      EXPECT_EQ(info.mixed.at(bh), mixed ? 1 : 0) << "b " << b << " h " << h;
      if (mixed) {
        ++mixed_heads;
        attend(p, b, h, n, heads, d, nullptr, dense.data());
        for (int t = 0; t < n; ++t) {
          const double g = info.gate_values.at(bh * n + t);
          for (int e = 0; e < d; ++e) {
            part[size_t(t * d + e)] = g * part[size_t(t * d + e)] + (1 - g) * dense[size_t(t * d + e)];
          }
        }
      }
      for (int t = 0; t < n; ++t)
        for (int e = 0; e < d; ++e) attended[((size_t(b) * n + t) * heads + h) * d + e] = part[size_t(t * d + e)];
    }
  }
  EXPECT_EQ(info.sparse_stats.computed_scores, sparse_scores);
  EXPECT_EQ(info.dense_path_scores, mixed_heads * n * n);
  const double all = double(batch) * heads * n * n;
  EXPECT_DOUBLE_EQ(info.sparse_ratio, 1.0 - double(sparse_scores + mixed_heads * n * n) / all);
  return linear(attended, int64_t{batch} * n, inner, w.at("out_proj.weight"), w.at("out_proj.bias"), c.dim);
}

ASAMConfig small_config(const std::string& pattern, bool gate, uint64_t seed) {
  ASAMConfig c;
  c.dim = 20;
  c.num_heads = 3;
  c.dim_head = 7;  // inner width 21, not dim: the seed's layer allows it
  c.dropout = 0.0f;
  c.pattern_type = pattern;
  c.window_size = 16;
  c.stride = 8;
  c.num_clusters = 3;
  c.use_adaptive_gate = gate;
  c.gate_hidden_dim = 12;
  c.block_size = 32;
  c.seed = seed;
  return c;
}

// Gate biases that make head 0 confident with g near 1, head 1 confident with g near 0 and
// the others undecided: both routes in one call.
void split_routes(ASAMLayer& layer) {
  Weights w = weights_of(layer.named_parameters());
  auto& bias = w.at("gate.gate_proj.bias");
  bias[0] = 9.0f;
  if (bias.size() > 1) bias[1] = -9.0f;
  for (size_t h = 2; h < bias.size(); ++h) bias[h] = 0.0f;
  layer.load_named(named_of(w));
}

void check_layer(const ASAMLayer& layer, int batch, int n, attn::ThreadPool* pool, std::mt19937_64& rng,
                 ASAMInfo* info_out = nullptr) {
  const int dim = layer.config().dim;
  const auto x = testutil::randn(rng, size_t(batch) * n * dim);
  testutil::Guarded<float> out(x.size(), testutil::kNaN);
  ASAMInfo info;
  layer.forward(batch, n, x.data(), MaskView{}, out.data(), &info, pool);
  EXPECT_TRUE(out.guards_intact());
  const bool gate_ran = layer.config().use_adaptive_gate || layer.config().pattern_type == "adaptive";
  EXPECT_EQ(info.gate_values.size(), gate_ran ? size_t(batch) * layer.config().num_heads * n : 0u);
  if (gate_ran) EXPECT_EQ(info.gate_values, layer.gate().forward(batch, n, x.data(), nullptr).gate_values);
  const auto want = reference_layer(layer, batch, n, x, info);
  const auto e = testutil::rel_error(out.data(), want);
  EXPECT_LT(e.value, 1e-4) << layer.config().pattern_type << " gate " << layer.config().use_adaptive_gate << " n "
                           << n << " batch " << batch << " worst at " << e.worst;
  if (info_out != nullptr) *info_out = std::move(info);
}

const char* const kPatterns[] = {"local", "strided", "random", "clustered", "hierarchical", "adaptive"};

TEST(ASAMLayer, MatchesFloat64ReferenceForEveryPatternRouteAndSize) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::ThreadPool pool(3);
  int mixed = 0, sparse_only = 0;
  for (const char* pattern : kPatterns)
    for (bool gate : {true, false})
      for (int n : {1, 3, 17, 130})
        for (int batch : {1, 2}) {
          ASAMLayer layer(small_config(pattern, gate, rng()));
          if (gate) split_routes(layer);
          ASAMInfo info;
          check_layer(layer, batch, n, n % 2 == 0 ? &pool : nullptr, rng, &info);
          for (uint8_t m : info.mixed) (m ? mixed : sparse_only) += 1;
        }
  EXPECT_GT(mixed, 0);
  EXPECT_GT(sparse_only, 0);
}

TEST(ASAMLayer, DimHeadZeroAndTheSeedsShapes) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  ASAMConfig c = small_config("hierarchical", true, 5);
  c.dim = 24, c.num_heads = 4, c.dim_head = 0;  // 6 per head
  c.window_size = 8, c.stride = 4;
  ASAMLayer layer(c);
  EXPECT_EQ(layer.config().dim_head, 6);
  check_layer(layer, 2, 130, nullptr, rng);
}

// Adaptive: each batch element runs the pattern its own logits pick, so one call can run
// several patterns. Random layers until a batch of 4 picks at least two.
TEST(ASAMLayer, AdaptivePicksThePatternPerBatchElement) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  bool found = false;
  for (int attempt = 0; attempt < 200 && !found; ++attempt) {
    ASAMLayer layer(small_config("adaptive", attempt % 2 == 0, rng()));
    ASAMInfo info;
    check_layer(layer, 4, 40, nullptr, rng, &info);
    for (PatternType t : info.patterns) found = found || t != info.patterns[0];
  }
  EXPECT_TRUE(found) << "no batch picked two patterns";
  // And each of the four gate patterns, forced through the logits' bias.
  for (int pick = 0; pick < attn::asam::kGatePatternCount; ++pick) {
    ASAMLayer layer(small_config("adaptive", true, rng()));
    Weights w = weights_of(layer.named_parameters());
    for (int i = 0; i < attn::asam::kGatePatternCount; ++i) w.at("gate.pattern_proj.bias")[size_t(i)] = i == pick ? 50.0f : 0.0f;
    layer.load_named(named_of(w));
    ASAMInfo info;
    check_layer(layer, 2, 70, nullptr, rng, &info);
    for (PatternType t : info.patterns) EXPECT_STREQ(attn::asam::pattern_name(t), attn::asam::kGatePatterns[pick]);
  }
}

TEST(ASAMLayer, RoutingFollowsTheConfidenceThreshold) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  const int batch = 2, n = 200;
  for (float threshold : {0.0f, 1.0f}) {
    ASAMConfig c = small_config("local", true, 3);
    c.confidence_threshold = threshold;
    ASAMLayer layer(c);
    ASAMInfo info;
    check_layer(layer, batch, n, nullptr, rng, &info);
    // Random gates are never all exactly 0 or 1: threshold 1 mixes every head, 0 none.
    const int64_t heads = int64_t{batch} * c.num_heads;
    EXPECT_EQ(info.dense_path_scores, threshold == 1.0f ? heads * n * n : 0);
    for (uint8_t m : info.mixed) EXPECT_EQ(m, threshold == 1.0f ? 1 : 0);
    if (threshold == 0.0f) EXPECT_GT(info.sparse_ratio, 0.0);
    if (threshold == 1.0f) EXPECT_LT(info.sparse_ratio, 0.0);  // both paths: more work than dense
  }
}

// The reported ratio is the kernels' own count: local at a length where it skips most blocks.
TEST(ASAMLayer, SparseRatioIsTheKernelsCount) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  ASAMConfig c = small_config("local", false, 9);
  ASAMLayer layer(c);
  const int n = 1024;
  const auto x = testutil::randn(rng, size_t(n) * c.dim);
  std::vector<float> out(x.size());
  ASAMInfo info;
  layer.forward(1, n, x.data(), MaskView{}, out.data(), &info, nullptr);
  const FlashShape shape{1, n, n, c.num_heads, c.num_heads, c.dim_head, c.dim_head};
  const auto q = testutil::randn(rng, size_t(n) * c.inner_dim());
  std::vector<float> scratch(q.size());
  const auto stats = attn::asam::sparse_attention(shape, layer.pattern_params(PatternType::kLocal), std::nullopt,
                                                  q.data(), q.data(), q.data(), scratch.data(), nullptr);
  EXPECT_EQ(info.sparse_stats.computed_scores, stats.computed_scores);
  EXPECT_EQ(info.sparse_stats.visited_blocks, stats.visited_blocks);
  EXPECT_DOUBLE_EQ(info.sparse_ratio, stats.sparse_ratio());
  EXPECT_GT(info.sparse_ratio, 0.9);
}

TEST(ASAMLayer, SameSeedSameWeightsOtherSeedOthers) {
  EXPECT_EQ(ASAMLayer(small_config("local", true, 1)).save(), ASAMLayer(small_config("local", true, 1)).save());
  EXPECT_NE(ASAMLayer(small_config("local", true, 1)).save(), ASAMLayer(small_config("local", true, 2)).save());
  const Weights w = weights_of(ASAMLayer(small_config("local", true, 1)).named_parameters());
  const float bound = 1.0f / std::sqrt(20.0f);
  for (float v : w.at("q_proj.weight")) EXPECT_LE(std::abs(v), bound);
  EXPECT_EQ(w.at("centroids").size(), 3u * 3u * 7u);
  EXPECT_EQ(w.count("gate.token_proj.weight"), 1u);
  EXPECT_NE(w.at("q_proj.weight"), w.at("k_proj.weight"));
}

TEST(ASAMLayer, SaveLoadRoundTripIsBitExact) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  ASAMLayer a(small_config("clustered", true, 11)), b(small_config("clustered", true, 12));
  const auto bytes = a.save();
  EXPECT_EQ(bytes.size(), size_t(4 + 4 + 24 + 4) + size_t(a.param_count()) * sizeof(float));
  b.load(bytes.data(), bytes.size());
  EXPECT_EQ(b.save(), bytes);
  const auto x = testutil::randn(rng, size_t(2) * 33 * 20);
  std::vector<float> ya(x.size()), yb(x.size());
  a.forward(2, 33, x.data(), MaskView{}, ya.data(), nullptr, nullptr);
  b.forward(2, 33, x.data(), MaskView{}, yb.data(), nullptr, nullptr);
  EXPECT_EQ(0, std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(float)));
  // Named weights round trip too.
  ASAMLayer c(small_config("clustered", true, 13));
  c.load_named(named_of(weights_of(a.named_parameters())));
  EXPECT_EQ(c.save(), bytes);
}

void expect_refused(ASAMLayer& layer, const std::vector<uint8_t>& buf, const std::string& needle) {
  const auto before = layer.save();
  try {
    layer.load(buf.data(), buf.size());
    ADD_FAILURE() << "accepted: " << needle;
  } catch (const attn::AttnError& e) {
    EXPECT_EQ(e.param(), "weights") << e.what();
    EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
  EXPECT_EQ(layer.save(), before) << needle;
}

TEST(ASAMLayer, BadBuffersAreRefusedAndTheOldWeightsStay) {
  ASAMLayer layer(small_config("local", true, 21));
  const auto good = ASAMLayer(small_config("local", true, 22)).save();
  auto flipped = good;
  flipped[good.size() / 2] ^= 0x10;
  expect_refused(layer, flipped, "checksum");
  expect_refused(layer, std::vector<uint8_t>(good.begin(), good.end() - 1), "expected");
  expect_refused(layer, std::vector<uint8_t>(good.begin(), good.begin() + 20), "too short");
  auto version = good;
  version[4] = 2;
  expect_refused(layer, version, "version 2");
  expect_refused(layer, attn::MultiHeadAttention({20, 4, 0, 0, true, 0.0f, 1}).save(), "bad magic");
  ASAMConfig other = small_config("local", true, 22);
  other.num_clusters = 4;
  expect_refused(layer, ASAMLayer(other).save(), "numClusters");
  other = small_config("local", true, 22);
  other.num_heads = 2;
  expect_refused(layer, ASAMLayer(other).save(), "numHeads");
  EXPECT_THROW(layer.load(nullptr, 0), attn::AttnError);
}

TEST(ASAMLayer, NamedWeightsAreCheckedByName) {
  ASAMLayer layer(small_config("local", true, 31));
  const auto before = layer.save();
  const Weights good = weights_of(ASAMLayer(small_config("local", true, 32)).named_parameters());
  auto refused = [&](attn::NamedWeights named, const std::string& param) {
    try {
      layer.load_named(named);
      ADD_FAILURE() << "accepted, expected an error naming " << param;
    } catch (const attn::AttnError& e) {
      EXPECT_EQ(e.param(), param) << e.what();
    }
    EXPECT_EQ(layer.save(), before) << param;
  };
  Weights w = good;
  w.erase("centroids");
  refused(named_of(w), "centroids");
  w = good;
  w.erase("gate.gate_proj.bias");
  refused(named_of(w), "gate.gate_proj.bias");
  w = good;
  w.at("out_proj.bias").pop_back();
  refused(named_of(w), "out_proj.bias");
  w = good;
  w.at("gate.token_proj.weight")[0] = testutil::kNaN;
  refused(named_of(w), "gate.token_proj.weight");
  w = good;
  w["in_proj_weight"] = {1.0f};
  refused(named_of(w), "in_proj_weight");
  w = good;  // the empty name (a JS key ""), found by tests/fuzz/weights_load_fuzz
  w[""] = {1.0f};
  refused(named_of(w), "(empty name)");
  w = good;
  w["gate."] = {1.0f};
  refused(named_of(w), "gate.(empty name)");
  // A NUL in a name cut what() short, and re-naming the gate's error threw std::out_of_range
  // (found by tests/fuzz/weights_load_fuzz).
  const std::string nul_name("gate.x\0yyyyyyyyyyyyyyyyyyyyyyyy", 30);
  w = good;
  w[nul_name] = {1.0f};
  refused(named_of(w), nul_name);
}

TEST(ASAMLayer, RefusesMasksAndBadCalls) {
  ASAMLayer layer(small_config("hierarchical", true, 41));
  std::vector<float> x(size_t(2) * 5 * 20, 0.5f), out(x.size());
  std::vector<uint8_t> allowed(25, 1);
  MaskView mask;
  mask.allowed = allowed.data();
  mask.row_stride = 5;
  auto param_of = [&](auto&& call) {
    try {
      call();
    } catch (const attn::AttnError& e) {
      return e.param();
    }
    return std::string("(no error)");
  };
  EXPECT_EQ(param_of([&] { layer.forward(2, 5, x.data(), mask, out.data(), nullptr, nullptr); }), "mask");
  EXPECT_EQ(param_of([&] { layer.forward(0, 5, x.data(), MaskView{}, out.data(), nullptr, nullptr); }), "batch");
  EXPECT_EQ(param_of([&] { layer.forward(2, 0, x.data(), MaskView{}, out.data(), nullptr, nullptr); }), "seqLen");
  EXPECT_EQ(param_of([&] { layer.forward(2, 5, nullptr, MaskView{}, out.data(), nullptr, nullptr); }), "x");
  EXPECT_EQ(param_of([&] { layer.forward(2, 5, x.data(), MaskView{}, nullptr, nullptr, nullptr); }), "out");
  for (float t : {-0.1f, 1.5f, testutil::kNaN}) {
    ASAMConfig c = small_config("local", true, 1);
    c.confidence_threshold = t;
    EXPECT_EQ(param_of([&] { ASAMLayer bad(c); }), "confidenceThreshold") << t;
  }
  ASAMConfig c = small_config("local", true, 1);
  c.pattern_type = "dense";
  EXPECT_EQ(param_of([&] { ASAMLayer bad(c); }), "patternType");
  EXPECT_EQ(param_of([&] { ASAMEncoder bad(small_config("local", true, 1), 0); }), "numLayers");
}

TEST(ASAMEncoder, IsItsLayersAppliedInSequence) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::ThreadPool pool(2);
  const ASAMConfig c = small_config("adaptive", true, 51);
  const ASAMEncoder encoder(c, 3);
  ASSERT_EQ(encoder.num_layers(), 3);
  EXPECT_NE(encoder.layer(0).save(), encoder.layer(1).save());
  EXPECT_EQ(ASAMEncoder(c, 3).layer(2).save(), encoder.layer(2).save());
  const int batch = 2, n = 45;
  const auto x = testutil::randn(rng, size_t(batch) * n * c.dim);
  std::vector<float> out(x.size());
  std::vector<ASAMInfo> infos;
  encoder.forward(batch, n, x.data(), MaskView{}, out.data(), &infos, &pool);
  ASSERT_EQ(infos.size(), 3u);
  std::vector<float> y = x, next(x.size());
  for (int i = 0; i < 3; ++i) {
    ASAMInfo info;
    encoder.layer(i).forward(batch, n, y.data(), MaskView{}, next.data(), &info, &pool);
    EXPECT_EQ(info.sparse_ratio, infos[size_t(i)].sparse_ratio);
    EXPECT_EQ(info.gate_values, infos[size_t(i)].gate_values);
    // Each layer against the float64 reference on its own input.
    const auto e = testutil::rel_error(next.data(), reference_layer(encoder.layer(i), batch, n, y, info));
    EXPECT_LT(e.value, 1e-4) << "layer " << i;
    y.swap(next);
  }
  EXPECT_EQ(0, std::memcmp(y.data(), out.data(), out.size() * sizeof(float)));
}

// Hybrid: one softmax over |i - j| <= w/2, i < G or j < G.
std::vector<double> reference_hybrid(const HybridASAM& hybrid, int batch, int n, const std::vector<float>& x) {
  const ASAMConfig& c = hybrid.config();
  const int heads = c.num_heads, d = c.dim_head, inner = c.inner_dim();
  const int g = hybrid.num_global_tokens(), half = hybrid.local_window_size() / 2;
  const Weights w = weights_of(hybrid.named_parameters());
  const Projected p = project(w, x, int64_t{batch} * n, c.dim, inner);
  std::vector<uint8_t> allowed(size_t(n) * n);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) allowed[size_t(i) * n + j] = std::abs(i - j) <= half || i < g || j < g;
  std::vector<double> attended(size_t(batch) * n * inner), part(size_t(n) * d);
  for (int b = 0; b < batch; ++b)
    for (int h = 0; h < heads; ++h) {
      attend(p, b, h, n, heads, d, allowed.data(), part.data());
      for (int t = 0; t < n; ++t)
        for (int e = 0; e < d; ++e) attended[((size_t(b) * n + t) * heads + h) * d + e] = part[size_t(t * d + e)];
    }
  return linear(attended, int64_t{batch} * n, inner, w.at("out_proj.weight"), w.at("out_proj.bias"), c.dim);
}

TEST(HybridASAM, MatchesFloat64ReferenceOfWindowPlusGlobalTokens) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::ThreadPool pool(3);
  for (int window : {1, 6, 33})
    for (int global : {0, 1, 5, 40})
      for (int n : {1, 3, 17, 130})
        for (int batch : {1, 2}) {
          const HybridASAM hybrid(small_config("hierarchical", true, rng()), window, global);
          const auto x = testutil::randn(rng, size_t(batch) * n * 20);
          testutil::Guarded<float> out(x.size(), testutil::kNaN);
          attn::asam::HybridInfo info;
          hybrid.forward(batch, n, x.data(), MaskView{}, out.data(), &info, batch == 2 ? &pool : nullptr);
          EXPECT_TRUE(out.guards_intact());
          const auto e = testutil::rel_error(out.data(), reference_hybrid(hybrid, batch, n, x));
          EXPECT_LT(e.value, 1e-4) << "window " << window << " global " << global << " n " << n << " batch " << batch;
          const double all = double(batch) * 3 * n * n;
          EXPECT_DOUBLE_EQ(info.sparse_ratio,
                           1.0 - double(info.local_stats.computed_scores + info.global_scores) / all);
          if (global == 0 || n == 1) EXPECT_EQ(info.global_scores, 0);
        }
}

TEST(HybridASAM, SkipsMostScoresOnLongSequences) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  const HybridASAM hybrid(small_config("local", true, 3), 64, 8);
  const int n = 2048;
  const auto x = testutil::randn(rng, size_t(n) * 20);
  std::vector<float> out(x.size());
  attn::asam::HybridInfo info;
  hybrid.forward(1, n, x.data(), MaskView{}, out.data(), &info, nullptr);
  EXPECT_GT(info.sparse_ratio, 0.8);
  EXPECT_EQ(testutil::count_nan(out.data(), out.size()), 0u);
  EXPECT_THROW(HybridASAM(small_config("local", true, 3), 0, 1), attn::AttnError);
  EXPECT_THROW(HybridASAM(small_config("local", true, 3), 8, -1), attn::AttnError);
}

}  // namespace
