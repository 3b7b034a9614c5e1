// MultiHeadAttention against a naive float64 multi-head attention with the same weights
// (read back through save(), so the reference sees exactly what the object holds): self
// and cross attention, biases or not, causal, masks, odd sizes, pool sizes; the weights of
// the last call; the binary format (bit-exact round trip, every kind of bad buffer refused
// with the old weights kept) and PyTorch-named loading.
#include "multihead/multihead_attention.h"

#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "runtime/weights_format.h"
#include "test_util.h"

namespace {

using attn::CausalAlign;
using attn::MaskView;
using attn::MultiHeadAttention;
using attn::MultiHeadConfig;

struct Parts {
  std::vector<float> q, k, v, qb, kb, vb, out, ob;
};

// The weights as save() lays them out: q, k, v, (q, k, v biases), out, (out bias).
Parts parts_of(const MultiHeadAttention& m) {
  const auto& c = m.config();
  const auto bytes = m.save();
  const float* f = reinterpret_cast<const float*>(bytes.data() + 28);
  Parts p;
  auto take = [&](std::vector<float>& dst, size_t n) { dst.assign(f, f + n), f += n; };
  const size_t e = size_t(c.model_dim);
  take(p.q, e * e), take(p.k, e * c.kdim), take(p.v, e * c.vdim);
  if (c.bias) take(p.qb, e), take(p.kb, e), take(p.vb, e);
  take(p.out, e * e);
  if (c.bias) take(p.ob, e);
  return p;
}

std::vector<double> linear(const std::vector<double>& x, int rows, int in, const std::vector<float>& w,
                           const std::vector<float>& b, int out) {
  std::vector<double> y(size_t(rows) * out);
  for (int r = 0; r < rows; ++r) {
    for (int o = 0; o < out; ++o) {
      double s = b.empty() ? 0.0 : b[size_t(o)];
      for (int i = 0; i < in; ++i) s += x[size_t(r) * in + i] * w[size_t(o) * in + i];
      y[size_t(r) * out + o] = s;
    }
  }
  return y;
}

struct Reference {
  std::vector<double> out, weights;  // weights [batch][heads][seq_q][seq_k]
};

Reference reference(const MultiHeadAttention& m, int batch, int sq, int sk, const std::vector<float>& query,
                    const std::vector<float>& key, const std::vector<float>& value, const std::vector<float>* mask,
                    bool causal) {
  const auto& c = m.config();
  const int e = c.model_dim, h = c.heads, d = e / h;
  const Parts p = parts_of(m);
  auto to_d = [](const std::vector<float>& x) { return std::vector<double>(x.begin(), x.end()); };
  const auto q = linear(to_d(query), batch * sq, e, p.q, p.qb, e);
  const auto k = linear(to_d(key), batch * sk, c.kdim, p.k, p.kb, e);
  const auto v = linear(to_d(value), batch * sk, c.vdim, p.v, p.vb, e);
  std::vector<double> heads(size_t(batch) * sq * e, 0.0);
  Reference ref;
  ref.weights.assign(size_t(batch) * h * sq * sk, 0.0);
  for (int b = 0; b < batch; ++b) {
    for (int hh = 0; hh < h; ++hh) {
      for (int i = 0; i < sq; ++i) {
        std::vector<double> s(sk, -INFINITY);
        double mx = -INFINITY;
        for (int j = 0; j < sk; ++j) {
          if (causal && j > i) continue;
          double dot = 0;
          for (int t = 0; t < d; ++t) dot += q[(size_t(b) * sq + i) * e + hh * d + t] * k[(size_t(b) * sk + j) * e + hh * d + t];
          s[j] = dot / std::sqrt(double(d)) + (mask ? (*mask)[size_t(i) * sk + j] : 0.0);
          mx = std::max(mx, s[j]);
        }
        if (mx == -INFINITY) continue;
        double sum = 0;
        for (int j = 0; j < sk; ++j) sum += (s[j] = s[j] == -INFINITY ? 0.0 : std::exp(s[j] - mx));
        for (int j = 0; j < sk; ++j) {
          const double pw = s[j] / sum;
          ref.weights[((size_t(b) * h + hh) * sq + i) * sk + j] = pw;
          for (int t = 0; t < d; ++t) heads[(size_t(b) * sq + i) * e + hh * d + t] += pw * v[(size_t(b) * sk + j) * e + hh * d + t];
        }
      }
    }
  }
  ref.out = linear(heads, batch * sq, e, p.out, p.ob, e);
  return ref;
}

void check_case(const MultiHeadConfig& c, int batch, int sq, int sk, bool causal, bool masked, int threads,
                std::mt19937_64& rng) {
  MultiHeadAttention m(c);
  const auto& cc = m.config();
  // Random weights and biases (the initial biases are zeros, which would hide their use).
  const size_t dim = size_t(cc.model_dim);
  const float scale = 1.0f / std::sqrt(float(dim));
  attn::NamedWeights w = {{"q_proj_weight", testutil::randn(rng, dim * dim, scale)},
                          {"k_proj_weight", testutil::randn(rng, dim * cc.kdim, scale)},
                          {"v_proj_weight", testutil::randn(rng, dim * cc.vdim, scale)},
                          {"out_proj.weight", testutil::randn(rng, dim * dim, scale)}};
  if (cc.bias) {
    w.push_back({"in_proj_bias", testutil::randn(rng, 3 * dim, 0.5f)});
    w.push_back({"out_proj.bias", testutil::randn(rng, dim, 0.5f)});
  }
  m.load_named(w);
  const auto query = testutil::randn(rng, size_t(batch) * sq * cc.model_dim);
  const auto key = testutil::randn(rng, size_t(batch) * sk * cc.kdim);
  const auto value = testutil::randn(rng, size_t(batch) * sk * cc.vdim);
  std::vector<float> mask;
  MaskView view;
  if (masked) {  // every other key of the second half blocked, a few biases
    mask.assign(size_t(sq) * sk, 0.0f);
    for (int i = 0; i < sq; ++i) {
      for (int j = sk / 2; j < sk; j += 2) mask[size_t(i) * sk + j] = -INFINITY;
      mask[size_t(i) * sk] = 0.5f;
    }
    view.additive = mask.data(), view.row_stride = sk;
  }
  std::unique_ptr<attn::ThreadPool> pool;
  if (threads > 0) pool = std::make_unique<attn::ThreadPool>(threads);
  testutil::Guarded<float> out(size_t(batch) * sq * cc.model_dim, -5.0f);
  m.forward(batch, sq, sk, query.data(), key.data(), value.data(), view,
            causal ? CausalAlign::kTopLeft : CausalAlign::kNone, out.data(), pool.get());
  const auto ref = reference(m, batch, sq, sk, query, key, value, masked ? &mask : nullptr, causal);
  const auto e = testutil::rel_error(out.data(), ref.out);
  const std::string what = "E" + std::to_string(cc.model_dim) + " h" + std::to_string(cc.heads) + " kdim" +
                           std::to_string(cc.kdim) + " vdim" + std::to_string(cc.vdim) + " bias " +
                           std::to_string(cc.bias) + " b" + std::to_string(batch) + " q" + std::to_string(sq) +
                           " k" + std::to_string(sk) + " causal " + std::to_string(causal) + " masked " +
                           std::to_string(masked) + " threads " + std::to_string(threads);
  EXPECT_LT(e.value, 1e-4) << what;
  EXPECT_TRUE(out.guards_intact()) << what;
  std::vector<float> weights(size_t(m.last_weights_size()));
  m.attention_weights(weights.data(), pool.get());
  EXPECT_LT(testutil::rel_error(weights.data(), ref.weights).value, 1e-5) << what;
}

TEST(MultiHead, MatchesNaiveFloat64) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  for (bool bias : {true, false}) {
    for (bool causal : {false, true}) {
      for (bool masked : {false, true}) {
        MultiHeadConfig self{16, 4, 0, 0, bias, 0.0f, rng()};
        check_case(self, 2, 17, 17, causal, masked, 0, rng);
        check_case(self, 1, 1, 1, causal, masked, 2, rng);
        if (!causal) check_case({12, 3, 7, 20, bias, 0.0f, rng()}, 2, 5, 130, false, masked, 3, rng);  // cross
      }
    }
  }
  check_case({64, 8, 0, 0, true, 0.0f, rng()}, 1, 200, 200, true, false, 2, rng);
}

TEST(MultiHead, SameSeedSameWeightsAndPyTorchInitBounds) {
  MultiHeadAttention a({32, 4, 0, 0, true, 0.0f, 7}), b({32, 4, 0, 0, true, 0.0f, 7}), c({32, 4, 0, 0, true, 0.0f, 8});
  EXPECT_EQ(a.save(), b.save());
  EXPECT_NE(a.save(), c.save());
  const Parts p = parts_of(a);
  const float in_bound = std::sqrt(6.0f / (32 + 96)), out_bound = 1.0f / std::sqrt(32.0f);
  for (float x : p.q) EXPECT_LE(std::abs(x), in_bound);
  for (float x : p.out) EXPECT_LE(std::abs(x), out_bound);
  for (float x : p.qb) EXPECT_EQ(x, 0.0f);
  EXPECT_EQ(a.param_count(), 4 * 32 * 32 + 4 * 32);
}

TEST(MultiHead, SaveLoadRoundTripIsBitExact) {
  MultiHeadAttention a({12, 3, 7, 20, true, 0.0f, 1}), b({12, 3, 7, 20, true, 0.0f, 2});
  const auto bytes = a.save();
  b.load(bytes.data(), bytes.size());
  EXPECT_EQ(b.save(), bytes);
}

TEST(MultiHead, BadBuffersAreRefusedAndTheOldWeightsStay) {
  MultiHeadAttention m({16, 4, 0, 0, true, 0.0f, 3});
  const auto original = m.save();
  const auto good = MultiHeadAttention({16, 4, 0, 0, true, 0.0f, 4}).save();
  auto refused = [&](std::vector<uint8_t> buf, const std::string& why) {
    try {
      m.load(buf.data(), buf.size());
      ADD_FAILURE() << "accepted: " << why;
    } catch (const attn::AttnError& e) {
      EXPECT_EQ(e.param(), "weights") << why << ": " << e.what();
    }
    EXPECT_EQ(m.save(), original) << why;
  };
  auto flipped = good;
  flipped[100] ^= 1;
  refused(flipped, "a flipped bit");
  refused(std::vector<uint8_t>(good.begin(), good.end() - 9), "truncated");
  auto magic = good;
  magic[0] = 'X';
  refused(magic, "bad magic");
  auto version = good;
  version[4] = 9;
  refused(version, "unknown version");
  refused(MultiHeadAttention({16, 2, 0, 0, true, 0.0f, 4}).save(), "other heads");
  refused(MultiHeadAttention({16, 4, 0, 0, false, 0.0f, 4}).save(), "no biases");
  refused({}, "empty");
  // A NaN weight under a valid checksum (found by tests/fuzz/weights_load_fuzz).
  auto nan_weight = good;
  const float nan = NAN;
  std::memcpy(nan_weight.data() + 40, &nan, sizeof nan);
  nan_weight.resize(nan_weight.size() - 4);
  attn::weights_format::seal(nan_weight);
  refused(nan_weight, "a NaN weight, checksum resealed");
  auto bias_flag = good;  // a flag save() never writes
  bias_flag[24] = 2;
  bias_flag.resize(bias_flag.size() - 4);
  attn::weights_format::seal(bias_flag);
  refused(bias_flag, "bias flag 2, checksum resealed");
}

TEST(MultiHead, LoadsPyTorchNames) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  MultiHeadAttention m({8, 2, 0, 0, true, 0.0f, 5});
  const auto in_w = testutil::randn(rng, 3 * 64), in_b = testutil::randn(rng, 24);
  const auto out_w = testutil::randn(rng, 64), out_b = testutil::randn(rng, 8);
  m.load_named({{"in_proj_weight", in_w}, {"in_proj_bias", in_b}, {"out_proj.weight", out_w}, {"out_proj.bias", out_b}});
  const Parts p = parts_of(m);
  EXPECT_EQ(p.q, std::vector<float>(in_w.begin(), in_w.begin() + 64));
  EXPECT_EQ(p.v, std::vector<float>(in_w.begin() + 128, in_w.end()));
  EXPECT_EQ(p.kb, std::vector<float>(in_b.begin() + 8, in_b.begin() + 16));
  EXPECT_EQ(p.out, out_w);
  EXPECT_EQ(p.ob, out_b);

  const auto before = m.save();
  auto refused = [&](const attn::NamedWeights& w, const std::string& param) {
    try {
      m.load_named(w);
      ADD_FAILURE() << "accepted, expected an error naming " << param;
    } catch (const attn::AttnError& e) {
      EXPECT_EQ(e.param(), param) << e.what();
    }
    EXPECT_EQ(m.save(), before);
  };
  refused({{"in_proj_weight", in_w}, {"in_proj_bias", in_b}, {"out_proj.bias", out_b}}, "out_proj.weight");
  refused({{"in_proj_weight", std::vector<float>(10)}, {"out_proj.weight", out_w}}, "in_proj_weight");
  refused({{"bias_k", out_b}}, "bias_k");
  refused({{"", out_b}}, "(empty name)");  // found by tests/fuzz/weights_load_fuzz: the error named nothing
  refused({{"in_proj_weight", in_w}, {"out_proj.weight", out_w}, {"out_proj.bias", out_b}}, "in_proj_bias");
  auto nan_w = out_w;
  nan_w[3] = NAN;
  refused({{"in_proj_weight", in_w}, {"in_proj_bias", in_b}, {"out_proj.weight", nan_w}, {"out_proj.bias", out_b}},
          "out_proj.weight");

  MultiHeadAttention cross({8, 2, 5, 6, false, 0.0f, 5});
  EXPECT_NO_THROW(cross.load_named({{"q_proj_weight", testutil::randn(rng, 64)}, {"k_proj_weight", testutil::randn(rng, 40)},
                                    {"v_proj_weight", testutil::randn(rng, 48)}, {"out_proj.weight", out_w}}));
}

TEST(MultiHead, RefusesBadConfigAndCalls) {
  auto refused = [](const MultiHeadConfig& c, const std::string& param) {
    try {
      MultiHeadAttention m(c);
      ADD_FAILURE() << "accepted a bad " << param;
    } catch (const attn::AttnError& e) {
      EXPECT_EQ(e.param(), param) << e.what();
    }
  };
  refused({0, 1}, "modelDim");
  refused({16, 0}, "heads");
  refused({16, 3}, "heads");
  refused({16, 4, -1}, "kdim");
  refused({16, 4, 0, -2}, "vdim");
  refused({16, 4, 0, 0, true, 1.0f}, "dropout");
  MultiHeadAttention m({8, 2});
  std::vector<float> w(4);
  EXPECT_THROW(m.attention_weights(w.data(), nullptr), attn::AttnError);
  std::vector<float> x(8), out(8);
  EXPECT_THROW(m.forward(1, 0, 1, x.data(), x.data(), x.data(), {}, CausalAlign::kNone, out.data(), nullptr),
               attn::AttnError);
}

// Dropout only in training mode (eval by default): eval calls equal a dropout-0 layer's and
// draw no seed; training calls differ from it and from each other, seed + 0, + 1, ...
TEST(MultiHead, DropoutOnlyInTrainingMode) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  const int e = 16, n = 12;
  const std::vector<float> x = testutil::randn(rng, size_t(n) * e);
  MultiHeadAttention drop(MultiHeadConfig{e, 2, 0, 0, true, 0.5f, 3});
  MultiHeadAttention plain(MultiHeadConfig{e, 2, 0, 0, true, 0.0f, 3});
  auto run = [&](MultiHeadAttention& m) {
    std::vector<float> out(size_t(n) * e);
    m.forward(1, n, n, x.data(), x.data(), x.data(), MaskView{}, CausalAlign::kNone, out.data(), nullptr);
    return out;
  };
  const std::vector<float> reference = run(plain);
  EXPECT_FALSE(drop.training());
  EXPECT_EQ(run(drop), reference);
  EXPECT_EQ(run(drop), reference);
  EXPECT_EQ(drop.next_dropout_seed(), 3u);
  drop.set_training(true);
  const std::vector<float> a = run(drop), b = run(drop);
  EXPECT_NE(a, reference);
  EXPECT_NE(a, b);
  EXPECT_EQ(drop.next_dropout_seed(), 5u);
  drop.set_training(false);
  EXPECT_EQ(run(drop), reference);
  MultiHeadAttention again(MultiHeadConfig{e, 2, 0, 0, true, 0.5f, 3});
  again.set_training(true);
  EXPECT_EQ(run(again), a);  // the first training call uses seed + 0
}

}  // namespace
