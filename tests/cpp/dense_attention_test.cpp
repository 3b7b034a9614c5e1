// DenseAttention against a naive float64 multi-head attention with the same weights (loaded
// by PyTorch names): self and cross attention, causal (top-left), key-padding, full boolean
// and additive masks in every layout, fully masked rows, odd sizes up to a 1000+ sequence,
// pool sizes; the weights averaged over heads (equal to the reference's, rows summing to 1,
// or 0 when fully masked); dropout only in training, with the seeded mask at its rate;
// weights interchangeable with MultiHeadAttention; bad options and calls refused by name.
#include "adaattn/dense_attention.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>

#include "flash/dropout_rng.h"  // keep() only: the reference must draw the kernel's mask
#include "multihead/multihead_attention.h"
#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "test_util.h"

namespace {

using attn::DenseAttention;
using attn::DenseConfig;
using attn::MaskView;

enum class MaskKind { kNone, kAdditive, kBoolean };
// kKeyPadding is [batch][seq_k]; the others are [seq_q][seq_k] blocks per batch and/or head.
enum class Layout { kKeyPadding, kQK, kBQK, kHQK, kBHQK };

// A mask and the value it gives each (batch, head, query, key), read through the layout's
// own index formula (the layer reads it through MaskView strides).
struct TestMask {
  MaskKind kind = MaskKind::kNone;
  Layout layout = Layout::kQK;
  int batch = 1, heads = 1, sq = 1, sk = 1;
  std::vector<float> additive;
  std::vector<uint8_t> allowed;

  size_t index(int b, int h, int i, int j) const {
    switch (layout) {
      case Layout::kKeyPadding: return size_t(b) * sk + j;
      case Layout::kQK: return size_t(i) * sk + j;
      case Layout::kBQK: return (size_t(b) * sq + i) * sk + j;
      case Layout::kHQK: return (size_t(h) * sq + i) * sk + j;
      case Layout::kBHQK: return ((size_t(b) * heads + h) * sq + i) * sk + j;
    }
    return 0;
  }
  size_t size() const {
    switch (layout) {
      case Layout::kKeyPadding: return size_t(batch) * sk;
      case Layout::kQK: return size_t(sq) * sk;
      case Layout::kBQK: return size_t(batch) * sq * sk;
      case Layout::kHQK: return size_t(heads) * sq * sk;
      case Layout::kBHQK: return size_t(batch) * heads * sq * sk;
    }
    return 0;
  }
  // The logit bias: 0 attends, -inf blocks.
  double at(int b, int h, int i, int j) const {
    if (kind == MaskKind::kNone) return 0.0;
    const size_t n = index(b, h, i, j);
    if (kind == MaskKind::kAdditive) return additive[n];
    return allowed[n] ? 0.0 : -INFINITY;
  }
  MaskView view() const {
    MaskView v;
    if (kind == MaskKind::kAdditive) v.additive = additive.data();
    if (kind == MaskKind::kBoolean) v.allowed = allowed.data();
    const int64_t qk = int64_t{sq} * sk;
    switch (layout) {
      case Layout::kKeyPadding: v.batch_stride = sk, v.row_stride = 0; break;
      case Layout::kQK: v.row_stride = sk; break;
      case Layout::kBQK: v.batch_stride = qk, v.row_stride = sk; break;
      case Layout::kHQK: v.head_stride = qk, v.row_stride = sk; break;
      case Layout::kBHQK: v.batch_stride = heads * qk, v.head_stride = qk, v.row_stride = sk; break;
    }
    return v;
  }
};

// Random blocked entries (about a quarter), some finite biases when additive, and one
// fully blocked row (a whole batch element's keys for key padding) when `empty_row`.
TestMask random_mask(MaskKind kind, Layout layout, int batch, int heads, int sq, int sk, bool empty_row,
                     std::mt19937_64& rng) {
  TestMask m{kind, layout, batch, heads, sq, sk, {}, {}};
  if (kind == MaskKind::kNone) return m;
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  const size_t n = m.size();
  std::vector<bool> block(n);
  for (size_t x = 0; x < n; ++x) block[x] = u(rng) < 0.25f;
  if (empty_row) {
    const size_t row = layout == Layout::kKeyPadding ? size_t(batch - 1) : size_t(rng() % (n / sk));
    for (int j = 0; j < sk; ++j) block[row * sk + j] = true;
  }
  if (kind == MaskKind::kAdditive) {
    m.additive.resize(n);
    for (size_t x = 0; x < n; ++x) m.additive[x] = block[x] ? -INFINITY : (u(rng) < 0.3f ? 2.0f * u(rng) - 1.0f : 0.0f);
  } else {
    m.allowed.resize(n);
    for (size_t x = 0; x < n; ++x) m.allowed[x] = block[x] ? 0 : 1;
  }
  return m;
}

struct Weights {
  std::vector<float> q, k, v, out, in_bias, out_bias;  // in_bias [3E]: q, k, v
};

Weights random_weights(int e, bool bias, std::mt19937_64& rng) {
  const float s = 1.0f / std::sqrt(float(e));
  const size_t ee = size_t(e) * e;
  Weights w{testutil::randn(rng, ee, s), testutil::randn(rng, ee, s), testutil::randn(rng, ee, s),
            testutil::randn(rng, ee, s), {}, {}};
  if (bias) w.in_bias = testutil::randn(rng, 3 * size_t(e), 0.5f), w.out_bias = testutil::randn(rng, e, 0.5f);
  return w;
}

attn::NamedWeights named(const Weights& w) {
  std::vector<float> in_proj(w.q);
  in_proj.insert(in_proj.end(), w.k.begin(), w.k.end());
  in_proj.insert(in_proj.end(), w.v.begin(), w.v.end());
  attn::NamedWeights n = {{"in_proj_weight", in_proj}, {"out_proj.weight", w.out}};
  if (!w.in_bias.empty()) n.push_back({"in_proj_bias", w.in_bias}), n.push_back({"out_proj.bias", w.out_bias});
  return n;
}

// y [rows][e] = x [rows][e] . W^T + b (b at bias[offset..]).
std::vector<double> linear(const std::vector<double>& x, int64_t rows, int e, const std::vector<float>& w,
                           const std::vector<float>& bias, size_t offset) {
  std::vector<double> y(size_t(rows) * e);
  for (int64_t r = 0; r < rows; ++r) {
    for (int o = 0; o < e; ++o) {
      double s = bias.empty() ? 0.0 : bias[offset + o];
      for (int i = 0; i < e; ++i) s += x[size_t(r) * e + i] * double(w[size_t(o) * e + i]);
      y[size_t(r) * e + o] = s;
    }
  }
  return y;
}

struct Reference {
  std::vector<double> out, weights;  // weights [batch][seq_q][seq_k], averaged over heads
  std::vector<bool> empty_row;       // [batch][seq_q]: no head's row saw a key
};

// Plain float64 loops. dropout > 0: the weights that multiply V are p * keep / (1 - dropout)
// with the kernel's counter-based keep rule for `seed`.
Reference reference(const DenseConfig& c, const Weights& w, int batch, int sq, int sk, const std::vector<float>& query,
                    const std::vector<float>& key, const std::vector<float>& value, const TestMask& mask,
                    float dropout, uint64_t seed) {
  const int e = c.embed_dim, heads = c.num_heads, d = e / heads;
  auto to_d = [](const std::vector<float>& x) { return std::vector<double>(x.begin(), x.end()); };
  const auto q = linear(to_d(query), int64_t{batch} * sq, e, w.q, w.in_bias, 0);
  const auto k = linear(to_d(key), int64_t{batch} * sk, e, w.k, w.in_bias, size_t(e));
  const auto v = linear(to_d(value), int64_t{batch} * sk, e, w.v, w.in_bias, 2 * size_t(e));
  const attn::DropoutRng rng(seed, dropout);
  const double keep_scale = 1.0 / (1.0 - double(dropout));
  std::vector<double> attended(size_t(batch) * sq * e, 0.0);
  Reference r;
  r.weights.assign(size_t(batch) * sq * sk, 0.0);
  r.empty_row.assign(size_t(batch) * sq, true);
  std::vector<double> s(sk);
  for (int b = 0; b < batch; ++b) {
    for (int h = 0; h < heads; ++h) {
      for (int i = 0; i < sq; ++i) {
        double mx = -INFINITY;
        for (int j = 0; j < sk; ++j) {
          double dot = 0;
          for (int t = 0; t < d; ++t) dot += q[(size_t(b) * sq + i) * e + h * d + t] * k[(size_t(b) * sk + j) * e + h * d + t];
          s[j] = (c.causal && j > i) ? -INFINITY : dot / std::sqrt(double(d)) + mask.at(b, h, i, j);
          mx = std::max(mx, s[j]);
        }
        if (mx == -INFINITY) continue;
        r.empty_row[size_t(b) * sq + i] = false;
        double sum = 0;
        for (int j = 0; j < sk; ++j) sum += (s[j] = std::exp(s[j] - mx));
        for (int j = 0; j < sk; ++j) {
          double p = s[j] / sum;
          if (dropout > 0.0f) {
            p = rng.keep(((uint64_t(b) * heads + h) * sq + i) * sk + j) ? p * keep_scale : 0.0;
          }
          r.weights[(size_t(b) * sq + i) * sk + j] += p / heads;
          for (int t = 0; t < d; ++t) attended[(size_t(b) * sq + i) * e + h * d + t] += p * v[(size_t(b) * sk + j) * e + h * d + t];
        }
      }
    }
  }
  r.out = linear(attended, int64_t{batch} * sq, e, w.out, w.out_bias, 0);
  return r;
}

struct Case {
  int e, heads, batch, sq, sk;
  bool causal, bias;
  MaskKind kind;
  Layout layout;
  bool empty_row;
  int threads;
};

std::string describe(const Case& c) {
  const char* kinds[] = {"none", "additive", "boolean"};
  const char* layouts[] = {"key-padding", "qk", "bqk", "hqk", "bhqk"};
  return "E" + std::to_string(c.e) + " h" + std::to_string(c.heads) + " b" + std::to_string(c.batch) + " q" +
         std::to_string(c.sq) + " k" + std::to_string(c.sk) + (c.causal ? " causal" : "") +
         (c.bias ? " bias" : "") + " mask " + kinds[int(c.kind)] + "/" + layouts[int(c.layout)] +
         (c.empty_row ? " +empty row" : "") + " threads " + std::to_string(c.threads);
}

void check_case(const Case& c, std::mt19937_64& rng) {
  SCOPED_TRACE(describe(c));
  const DenseConfig config{c.e, c.heads, 0.0f, c.causal, c.bias, rng()};
  DenseAttention layer(config);
  const Weights w = random_weights(c.e, c.bias, rng);
  layer.load_named(named(w));
  const auto query = testutil::randn(rng, size_t(c.batch) * c.sq * c.e);
  const auto key = testutil::randn(rng, size_t(c.batch) * c.sk * c.e);
  const auto value = testutil::randn(rng, size_t(c.batch) * c.sk * c.e);
  const TestMask mask = random_mask(c.kind, c.layout, c.batch, c.heads, c.sq, c.sk, c.empty_row, rng);
  std::unique_ptr<attn::ThreadPool> pool;
  if (c.threads > 0) pool = std::make_unique<attn::ThreadPool>(c.threads);

  testutil::Guarded<float> out(size_t(c.batch) * c.sq * c.e, -5.0f);
  testutil::Guarded<float> weights(size_t(c.batch) * c.sq * c.sk, -5.0f);
  layer.forward(c.batch, c.sq, c.sk, query.data(), key.data(), value.data(), mask.view(), out.data(),
                weights.data(), pool.get());
  const Reference ref = reference(config, w, c.batch, c.sq, c.sk, query, key, value, mask, 0.0f, 0);
  EXPECT_LT(testutil::rel_error(out.data(), ref.out).value, 1e-4);
  EXPECT_LT(testutil::rel_error(weights.data(), ref.weights).value, 1e-4);
  EXPECT_TRUE(out.guards_intact());
  EXPECT_TRUE(weights.guards_intact());
  EXPECT_EQ(testutil::count_nan(out.data(), out.size()), 0u);

  // Rows of the averaged weights: 1 where some head saw a key; 0, with the output equal to
  // the output projection of zero, where none did. A head whose own row is empty adds 0, so
  // a row seen by only some heads sums to (those heads) / heads.
  for (int b = 0; b < c.batch; ++b) {
    for (int i = 0; i < c.sq; ++i) {
      const size_t row = size_t(b) * c.sq + i;
      double sum = 0, want = 0;
      for (int j = 0; j < c.sk; ++j) sum += weights[row * c.sk + j], want += ref.weights[row * c.sk + j];
      EXPECT_NEAR(sum, want, 1e-5) << "row " << row;
      if (ref.empty_row[row]) {
        EXPECT_EQ(sum, 0.0) << "row " << row;
        for (int t = 0; t < c.e; ++t) EXPECT_EQ(out[row * c.e + t], c.bias ? w.out_bias[t] : 0.0f);
      }
    }
  }
  // Where the mask leaves every head's row a key (all masks but per-head ones, or none), the
  // row sums to 1 exactly as a softmax should.
  if (c.layout != Layout::kHQK && c.layout != Layout::kBHQK) {
    for (size_t row = 0; row < ref.empty_row.size(); ++row) {
      if (ref.empty_row[row]) continue;
      double sum = 0;
      for (int j = 0; j < c.sk; ++j) sum += weights[row * c.sk + j];
      EXPECT_NEAR(sum, 1.0, 1e-5) << "row " << row;
    }
  }

  // Without weights, the same output (the weights cost nothing when not asked for).
  testutil::Guarded<float> alone(out.size(), -5.0f);
  layer.forward(c.batch, c.sq, c.sk, query.data(), key.data(), value.data(), mask.view(), alone.data(), nullptr,
                pool.get());
  EXPECT_EQ(alone.body(), out.body());
}

TEST(DenseAttention, MatchesNaiveFloat64WithAveragedWeights) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  using K = MaskKind;
  using L = Layout;
  const Case cases[] = {
      // e, heads, batch, sq, sk, causal, bias, mask kind, layout, empty row, threads
      {16, 4, 1, 17, 17, false, true, K::kNone, L::kQK, false, 0},
      {16, 4, 2, 17, 17, true, true, K::kNone, L::kQK, false, 2},
      {12, 3, 3, 3, 17, false, true, K::kBoolean, L::kKeyPadding, true, 2},     // cross, padding
      {12, 3, 2, 17, 3, true, false, K::kBoolean, L::kKeyPadding, false, 0},    // causal, Lq > Lk
      {16, 2, 2, 9, 13, false, false, K::kBoolean, L::kQK, true, 3},
      {16, 2, 2, 9, 13, true, true, K::kAdditive, L::kBQK, true, 2},
      {16, 4, 2, 5, 7, false, true, K::kAdditive, L::kHQK, true, 0},
      {8, 2, 3, 6, 11, false, false, K::kBoolean, L::kBHQK, true, 2},
      {8, 1, 1, 1, 1, false, true, K::kNone, L::kQK, false, 0},
      {8, 2, 2, 1, 1, true, true, K::kBoolean, L::kKeyPadding, true, 2},       // the only key padded
      {8, 2, 3, 1, 19, false, true, K::kAdditive, L::kKeyPadding, true, 2},    // decode-like
      {32, 4, 1, 5, 1031, false, true, K::kBoolean, L::kKeyPadding, false, 2}, // long keys
      {16, 2, 1, 1003, 1003, true, true, K::kNone, L::kQK, false, 2},          // long sequence
  };
  for (const Case& c : cases) check_case(c, rng);
}

TEST(DenseAttention, EvalIsDeterministicAndTrainingDropsAtTheRate) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  const int e = 8, batch = 2, sq = 40, sk = 48;
  const float p = 0.3f;
  const DenseConfig config{e, 1, p, false, true, rng()};  // one head: each weight is dropped or not
  DenseAttention layer(config);
  const Weights w = random_weights(e, true, rng);
  layer.load_named(named(w));
  const auto query = testutil::randn(rng, size_t(batch) * sq * e);
  const auto key = testutil::randn(rng, size_t(batch) * sk * e);
  const auto value = testutil::randn(rng, size_t(batch) * sk * e);
  const TestMask none;
  attn::ThreadPool pool(2);
  auto run = [&](std::vector<float>& out, std::vector<float>& weights) {
    out.assign(size_t(batch) * sq * e, 0.0f), weights.assign(size_t(batch) * sq * sk, 0.0f);
    layer.forward(batch, sq, sk, query.data(), key.data(), value.data(), MaskView{}, out.data(), weights.data(), &pool);
  };

  EXPECT_FALSE(layer.training());  // inference by default: dropout off
  std::vector<float> out1, w1, out2, w2;
  run(out1, w1), run(out2, w2);
  EXPECT_EQ(out1, out2);
  EXPECT_EQ(w1, w2);
  const Reference plain = reference(config, w, batch, sq, sk, query, key, value, none, 0.0f, 0);
  EXPECT_LT(testutil::rel_error(out1.data(), plain.out).value, 1e-4);
  EXPECT_EQ(layer.next_dropout_seed(), config.seed);  // eval calls draw no masks

  layer.set_training(true);
  std::vector<float> prev_out;
  for (int call = 0; call < 2; ++call) {
    SCOPED_TRACE("training call " + std::to_string(call));
    const uint64_t seed = layer.next_dropout_seed();
    EXPECT_EQ(seed, config.seed + call);
    std::vector<float> out, weights;
    run(out, weights);
    const Reference ref = reference(config, w, batch, sq, sk, query, key, value, none, p, seed);
    EXPECT_LT(testutil::rel_error(out.data(), ref.out).value, 1e-4);
    EXPECT_LT(testutil::rel_error(weights.data(), ref.weights).value, 1e-4);
    size_t dropped = 0;
    for (size_t x = 0; x < weights.size(); ++x) {
      if (weights[x] == 0.0f) ++dropped;
      else EXPECT_NEAR(weights[x], w1[x] / (1.0f - p), 1e-5f) << x;  // kept ones scaled up
    }
    // 3840 weights: the rate's standard deviation is 0.0074, so 0.04 is over 5 sigma.
    EXPECT_NEAR(double(dropped) / double(weights.size()), p, 0.04);
    EXPECT_NE(out, out1);
    if (call == 1) EXPECT_NE(out, prev_out);  // each training call draws a new mask
    prev_out = out;
  }
  layer.set_training(false);
  std::vector<float> out3, w3;
  run(out3, w3);
  EXPECT_EQ(out3, out1);
  EXPECT_EQ(w3, w1);
}

TEST(DenseAttention, WeightsAreMultiHeadAttentionsAndTheSameSeedGivesTheSameLayer) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  const int e = 16, heads = 4, batch = 2, sq = 7, sk = 9;
  DenseAttention dense({e, heads, 0.0f, true, true, 5}), same({e, heads, 0.0f, true, true, 5});
  attn::MultiHeadAttention mha({e, heads, 0, 0, true, 0.0f, 5});
  EXPECT_EQ(dense.save(), mha.save());  // PyTorch's initialisation from the same seed
  EXPECT_EQ(dense.save(), same.save());
  EXPECT_EQ(dense.param_count(), 4 * e * e + 4 * e);

  attn::MultiHeadAttention trained({e, heads, 0, 0, true, 0.0f, 6});
  trained.load_named(named(random_weights(e, true, rng)));
  const auto bytes = trained.save();
  dense.load(bytes.data(), bytes.size());
  EXPECT_EQ(dense.save(), bytes);
  const auto query = testutil::randn(rng, size_t(batch) * sq * e);
  const auto key = testutil::randn(rng, size_t(batch) * sk * e);
  const auto value = testutil::randn(rng, size_t(batch) * sk * e);
  std::vector<float> a(size_t(batch) * sq * e), b(a.size());
  dense.forward(batch, sq, sk, query.data(), key.data(), value.data(), MaskView{}, a.data(), nullptr, nullptr);
  trained.forward(batch, sq, sk, query.data(), key.data(), value.data(), MaskView{}, attn::CausalAlign::kTopLeft,
                  b.data(), nullptr);
  EXPECT_EQ(a, b);
}

void expect_refused(const std::function<void()>& fn, const std::string& param) {
  try {
    fn();
    ADD_FAILURE() << "accepted; expected an error naming " << param;
  } catch (const attn::AttnError& e) {
    EXPECT_EQ(e.param(), param) << e.what();
  }
}

TEST(DenseAttention, BadOptionsAndCallsAreRefusedByName) {
  expect_refused([] { DenseAttention({0, 1, 0.0f, false, true, 0}); }, "embedDim");
  expect_refused([] { DenseAttention({8, 0, 0.0f, false, true, 0}); }, "numHeads");
  expect_refused([] { DenseAttention({10, 3, 0.0f, false, true, 0}); }, "numHeads");
  expect_refused([] { DenseAttention({8, 2, NAN, false, true, 0}); }, "dropout");
  expect_refused([] { DenseAttention({8, 2, 1.0f, false, true, 0}); }, "dropout");
  expect_refused([] { DenseAttention({8, 2, -0.1f, false, true, 0}); }, "dropout");
  expect_refused([] { DenseAttention({1 << 30, 1, 0.0f, false, true, 0}); }, "embedDim");

  DenseAttention layer({8, 2, 0.0f, false, true, 1});
  const std::vector<float> x(8 * 4, 0.5f);
  std::vector<float> out(8 * 4), weights(16);
  const uint8_t allowed[4] = {1, 1, 1, 1};
  MaskView short_rows;
  short_rows.allowed = allowed, short_rows.row_stride = 3;  // seq_k is 4
  expect_refused([&] { layer.forward(1, 4, 4, x.data(), x.data(), x.data(), short_rows, out.data(), nullptr, nullptr); }, "mask");
  expect_refused([&] { layer.forward(1, 0, 4, x.data(), x.data(), x.data(), MaskView{}, out.data(), nullptr, nullptr); }, "seq_q");
  expect_refused([&] { layer.forward(1, 4, 0, x.data(), x.data(), x.data(), MaskView{}, out.data(), nullptr, nullptr); }, "seq_k");
  expect_refused([&] { layer.forward(0, 4, 4, x.data(), x.data(), x.data(), MaskView{}, out.data(), nullptr, nullptr); }, "batch");
  expect_refused([&] { layer.forward(1, 4, 4, x.data(), nullptr, x.data(), MaskView{}, out.data(), nullptr, nullptr); }, "tensors");
  const auto before = layer.save();
  std::vector<uint8_t> wrong = DenseAttention({16, 2, 0.0f, false, true, 1}).save();
  expect_refused([&] { layer.load(wrong.data(), wrong.size()); }, "weights");
  expect_refused([&] { layer.load_named({{"in_proj_weight", std::vector<float>(5)}}); }, "in_proj_weight");
  EXPECT_EQ(layer.save(), before);
  // Still works.
  layer.forward(1, 4, 4, x.data(), x.data(), x.data(), MaskView{}, out.data(), weights.data(), nullptr);
  for (float wv : weights) EXPECT_FLOAT_EQ(wv, 0.25f);  // equal inputs: uniform weights
}

}  // namespace
