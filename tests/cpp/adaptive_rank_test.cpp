// Adaptive rank attention: the Nyström kernel against float64 dense attention (error small
// on smooth diffuse inputs and shrinking with the landmarks; near exact with one landmark per
// token), the rank estimators on peaked and diffuse heads, and the layer's per-head
// decisions, statistics, dense fall-backs and errors.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "adaattn/adaptive_rank_attention.h"
#include "adaattn/low_rank_attention.h"
#include "adaattn/rank_estimation.h"
#include "reference_attention.h"
#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "test_util.h"

namespace {

using attn::AdaptiveRankAttention;
using attn::AdaptiveRankConfig;
using attn::CausalAlign;
using attn::FlashShape;
using attn::MaskView;
using attn::RankMethod;
using attn::RankReason;

// sqrt(Σ(got − ref)²) / sqrt(Σ ref²): the error the README and the bench report.
double rel_l2(const std::vector<float>& got, const std::vector<double>& ref) {
  double num = 0, den = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = double(got[i]) - ref[i];
    num += d * d, den += ref[i] * ref[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

// [seq][heads][dim] rows that vary smoothly along the sequence: per head, `latent` random
// sinusoids of the position mixed by a random matrix, plus noise. Attention over them is
// diffuse (scores of order 1) and its weights change slowly from row to row.
std::vector<float> smooth_rows(std::mt19937_64& rng, int seq, int heads, int dim, float amp = 1.0f,
                               float noise = 0.05f, int latent = 6) {
  std::normal_distribution<float> g(0.0f, 1.0f);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  std::vector<float> x(size_t(seq) * heads * dim);
  for (int h = 0; h < heads; ++h) {
    std::vector<float> freq(latent), phase(latent), mix(size_t(latent) * dim);
    for (int l = 0; l < latent; ++l) freq[l] = (0.5f + std::fabs(g(rng))) * 8.0f * float(M_PI) / float(seq);
    for (int l = 0; l < latent; ++l) phase[l] = u(rng) * float(M_PI);
    for (auto& m : mix) m = g(rng) * amp / std::sqrt(float(latent));
    for (int t = 0; t < seq; ++t) {
      for (int c = 0; c < dim; ++c) {
        float v = noise * g(rng);
        for (int l = 0; l < latent; ++l) v += std::sin(freq[l] * t + phase[l]) * mix[size_t(l) * dim + c];
        x[(size_t(t) * heads + h) * dim + c] = v;
      }
    }
  }
  return x;
}

ref::Result reference(int batch, int seq_q, int seq_k, int heads_q, int heads_kv, int d, const std::vector<float>& q,
                      const std::vector<float>& k, const std::vector<float>& v, ref::Causal causal = ref::Causal::kNone,
                      const float* mask = nullptr) {
  ref::Config c;
  c.batch = batch, c.seq_q = seq_q, c.seq_k = seq_k, c.heads_q = heads_q, c.heads_kv = heads_kv;
  c.head_dim = d, c.value_dim = d, c.causal = causal;
  c.mask_add = mask, c.mask_row_stride = seq_k;
  return ref::attention(c, q.data(), k.data(), v.data(), false);
}

std::vector<float> low_rank(const FlashShape& s, int landmarks, const std::vector<float>& q, const std::vector<float>& k,
                            const std::vector<float>& v, attn::ThreadPool* pool) {
  std::vector<float> out(size_t(s.batch) * s.seq_q * s.heads_q * s.value_dim, testutil::kNaN);
  attn::low_rank_forward(s, 0.0f, landmarks, {q.data(), k.data(), v.data(), out.data(), nullptr}, pool);
  return out;
}

TEST(LowRankAttention, ErrorOnSmoothInputsIsSmallAndShrinksWithLandmarks) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::ThreadPool pool(2);
  const int n = 1037, heads = 2, d = 32;
  const auto q = smooth_rows(rng, n, heads, d), k = smooth_rows(rng, n, heads, d), v = smooth_rows(rng, n, heads, d);
  const auto ref = reference(1, n, n, heads, heads, d, q, k, v);
  const FlashShape s{1, n, n, heads, heads, d, d};
  const double e8 = rel_l2(low_rank(s, 8, q, k, v, &pool), ref.out);
  const double e32 = rel_l2(low_rank(s, 32, q, k, v, &pool), ref.out);
  const double e128 = rel_l2(low_rank(s, 128, q, k, v, &pool), ref.out);
  std::printf("landmarks 8 / 32 / 128: rel. L2 error %.2e / %.2e / %.2e\n", e8, e32, e128);
  EXPECT_LT(e32, 0.5 * e8);
  EXPECT_LT(e128, e32);
  EXPECT_LT(e32, 3e-2);
  EXPECT_LT(e128, 1e-2);
}

TEST(LowRankAttention, OneLandmarkPerTokenIsNearExact) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  // Keys equal to the queries at a norm that makes each row favour its own key: the m×m
  // softmax is then well conditioned and 12 Newton–Schulz steps invert it to float32
  // precision (diffuse rows are what the truncated inverse is for; see the header).
  for (int n : {1, 3, 17, 40}) {
    for (int heads_kv : {1, 2}) {
      SCOPED_TRACE("n = " + std::to_string(n) + ", heads_kv = " + std::to_string(heads_kv));
      const int batch = 2, heads = 2, d = 16;
      const auto k = testutil::randn(rng, size_t(batch) * n * heads_kv * d, 1.5f);
      std::vector<float> q(size_t(batch) * n * heads * d);
      for (int b = 0; b < batch; ++b)
        for (int i = 0; i < n; ++i)
          for (int h = 0; h < heads; ++h)
            for (int c = 0; c < d; ++c)
              q[((size_t(b) * n + i) * heads + h) * d + c] = k[((size_t(b) * n + i) * heads_kv + h / (heads / heads_kv)) * d + c];
      const auto v = testutil::randn(rng, size_t(batch) * n * heads_kv * d);
      attn::ThreadPool pool(2);
      const auto got = low_rank({batch, n, n, heads, heads_kv, d, d}, n, q, k, v, &pool);
      const auto ref = reference(batch, n, n, heads, heads_kv, d, q, k, v);
      EXPECT_LT(rel_l2(got, ref.out), 1e-4);
      EXPECT_EQ(testutil::count_nan(got.data(), got.size()), 0u);
    }
  }
}

TEST(LowRankAttention, CrossLengthsAndOddSizesAreFinite) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  for (auto [sq, sk, m] : {std::tuple{1, 1, 1}, {3, 17, 2}, {17, 3, 8}, {1000, 1, 4}, {5, 1003, 64}}) {
    SCOPED_TRACE(std::to_string(sq) + " x " + std::to_string(sk) + ", landmarks " + std::to_string(m));
    const int d = 8;
    const auto q = testutil::randn(rng, size_t(sq) * d), k = testutil::randn(rng, size_t(sk) * d);
    const auto v = testutil::randn(rng, size_t(sk) * d);
    const auto got = low_rank({1, sq, sk, 1, 1, d, d}, m, q, k, v, nullptr);
    EXPECT_EQ(testutil::count_nan(got.data(), got.size()), 0u);
    // Each output row is an affine combination of value rows: bounded by the values' range
    // times the combination's weights, which the truncated inverse keeps of order one.
    double vmax = 0;
    for (float x : v) vmax = std::max(vmax, double(std::fabs(x)));
    for (float x : got) EXPECT_LT(std::fabs(x), 10 * vmax);
    if (sk == 1) {  // one key: the output is that value row, whatever the weights
      const auto ref = reference(1, sq, sk, 1, 1, d, q, k, v);
      EXPECT_LT(rel_l2(got, ref.out), 1e-5);
    }
  }
}

TEST(LowRankAttention, RefusesBadSizes) {
  std::vector<float> x(64, 1.0f);
  const attn::FlashTensors t{x.data(), x.data(), x.data(), x.data(), nullptr};
  try {
    attn::low_rank_forward({1, 4, 4, 1, 1, 4, 4}, 0.0f, 0, t, nullptr);
    FAIL() << "landmarks = 0 accepted";
  } catch (const attn::AttnError& e) {
    EXPECT_EQ(e.param(), "landmarks");
  }
  EXPECT_THROW(attn::low_rank_forward({1, 0, 4, 1, 1, 4, 4}, 0.0f, 2, t, nullptr), attn::AttnError);
  EXPECT_THROW(attn::low_rank_forward({1, 4, 4, 3, 2, 4, 4}, 0.0f, 2, t, nullptr), attn::AttnError);
}

// Peaked heads: large-norm keys, each query equal to one key, so every row has one
// dominant key (a different one per row).
struct Inputs {
  std::vector<float> q, k, v;
};
Inputs peaked(std::mt19937_64& rng, int seq, int heads, int d) {
  Inputs in;
  in.k = testutil::randn(rng, size_t(seq) * heads * d, 3.0f);
  in.q = in.k;
  in.v = testutil::randn(rng, size_t(seq) * heads * d);
  return in;
}
Inputs diffuse(std::mt19937_64& rng, int seq, int heads, int d) {
  return {smooth_rows(rng, seq, heads, d, 0.7f), smooth_rows(rng, seq, heads, d, 0.7f), smooth_rows(rng, seq, heads, d)};
}

double estimate(RankMethod method, const Inputs& in, int seq, int d, int rank) {
  attn::RankSampleScratch scratch;
  const attn::HeadView h{in.q.data(), in.k.data(), in.v.data(), nullptr, d, d, d, d};
  return attn::estimate_rank_fitness(method, seq, seq, d, 1.0f / std::sqrt(float(d)), rank, h, 7, scratch);
}

TEST(RankEstimation, PeakedHeadsScoreLowDiffuseHeadsHigh) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  const int n = 1500, d = 64;
  const Inputs p = peaked(rng, n, 1, d), s = diffuse(rng, n, 1, d);
  for (RankMethod m : {RankMethod::kEntropy, RankMethod::kPower, RankMethod::kRandom}) {
    SCOPED_TRACE(attn::rank_method_name(m));
    const double ep = estimate(m, p, n, d, 32), es = estimate(m, s, n, d, 32);
    std::printf("%s: peaked %.3f, diffuse %.3f\n", attn::rank_method_name(m), ep, es);
    EXPECT_LT(ep, 0.5);
    EXPECT_GT(es, 0.95);
  }
  // Power iteration finds at least the energy one random sketch captures (same start).
  const Inputs iid{testutil::randn(rng, size_t(n) * d), testutil::randn(rng, size_t(n) * d), {}};
  EXPECT_GE(estimate(RankMethod::kPower, iid, n, d, 32) + 1e-6, estimate(RankMethod::kRandom, iid, n, d, 32));
}

TEST(RankEstimation, NamesAndSampleSizes) {
  EXPECT_EQ(attn::parse_rank_method("power", "m"), RankMethod::kPower);
  try {
    attn::parse_rank_method("svd", "rankEstimationMethod");
    FAIL() << "unknown method accepted";
  } catch (const attn::AttnError& e) {
    EXPECT_EQ(e.param(), "rankEstimationMethod");
  }
  EXPECT_EQ(attn::rank_sample_size(8192, 64), 256);
  EXPECT_EQ(attn::rank_sample_size(8192, 8), 128);
  EXPECT_EQ(attn::rank_sample_size(17, 64), 17);
}

AdaptiveRankConfig config(int heads, int d, RankMethod method, float ratio = 0.5f, float threshold = 0.95f) {
  AdaptiveRankConfig c;
  c.embed_dim = heads * d, c.num_heads = heads, c.rank_ratio = ratio, c.method = method;
  c.adaptive_threshold = threshold, c.seed = 3;
  return c;
}

TEST(AdaptiveRankAttention, PeakedHeadsRunDenseAndMatchDenseAttention) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::ThreadPool pool(2);
  const int n = 1037, heads = 2, d = 32;
  const Inputs in = peaked(rng, n, heads, d);
  const auto ref = reference(1, n, n, heads, heads, d, in.q, in.k, in.v);
  for (RankMethod m : {RankMethod::kEntropy, RankMethod::kPower, RankMethod::kRandom}) {
    SCOPED_TRACE(attn::rank_method_name(m));
    AdaptiveRankAttention layer(config(heads, d, m));
    std::vector<float> out(in.q.size(), testutil::kNaN);
    layer.attend(1, n, n, in.q.data(), in.k.data(), in.v.data(), MaskView{}, CausalAlign::kNone, out.data(), &pool);
    EXPECT_LT(testutil::rel_error(out.data(), ref.out).value, 1e-4);
    const auto& st = layer.statistics();
    ASSERT_EQ(st.last_call.size(), size_t(heads));
    for (const auto& dec : st.last_call) {
      EXPECT_FALSE(dec.low_rank);
      EXPECT_EQ(dec.reason, RankReason::kBelowThreshold);
      EXPECT_EQ(dec.rank, 0);
      EXPECT_LT(dec.estimate, 0.95);
    }
  }
}

TEST(AdaptiveRankAttention, DiffuseHeadsRunLowRankAndStatisticsAddUp) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::ThreadPool pool(2);
  const int n = 1037, heads = 2, d = 32, batch = 2;
  const Inputs a = diffuse(rng, n, heads, d), b = diffuse(rng, n, heads, d);
  Inputs in{a.q, a.k, a.v};
  in.q.insert(in.q.end(), b.q.begin(), b.q.end());
  in.k.insert(in.k.end(), b.k.begin(), b.k.end());
  in.v.insert(in.v.end(), b.v.begin(), b.v.end());
  const auto ref = reference(batch, n, n, heads, heads, d, in.q, in.k, in.v);
  for (RankMethod m : {RankMethod::kEntropy, RankMethod::kPower, RankMethod::kRandom}) {
    SCOPED_TRACE(attn::rank_method_name(m));
    AdaptiveRankAttention layer(config(heads, d, m, 1.0f));
    EXPECT_EQ(layer.rank(), 32);
    std::vector<float> out(in.q.size(), testutil::kNaN);
    for (int call = 0; call < 2; ++call) {
      layer.attend(batch, n, n, in.q.data(), in.k.data(), in.v.data(), MaskView{}, CausalAlign::kNone, out.data(), &pool);
    }
    EXPECT_LT(rel_l2(out, ref.out), 5e-2);
    const auto& st = layer.statistics();
    EXPECT_EQ(st.calls, 2);
    ASSERT_EQ(st.last_call.size(), size_t(batch * heads));
    for (const auto& dec : st.last_call) {
      EXPECT_TRUE(dec.low_rank);
      EXPECT_EQ(dec.rank, 32);
      EXPECT_EQ(dec.reason, RankReason::kAtOrAboveThreshold);
      EXPECT_GE(dec.estimate, 0.95);
    }
    for (const auto& t : st.per_head) {
      EXPECT_EQ(t.low_rank, 2 * batch);
      EXPECT_EQ(t.dense, 0);
      EXPECT_EQ(t.estimated, 2 * batch);
      EXPECT_GE(t.estimate_min, 0.95);
      EXPECT_LE(t.estimate_max, 1.0);
    }
    layer.reset_statistics();
    EXPECT_EQ(layer.statistics().calls, 0);
    EXPECT_EQ(layer.statistics().per_head[0].low_rank, 0);
  }
}

// i.i.d. tokens look diffuse to the entropy estimate (near-uniform rows) but segment means
// wash them out: the sampled rows measure the low-rank output's real error, and heads
// beyond max_sampled_error run dense after all (the output is then dense attention's).
// On smooth inputs the sampled error is recorded, within the limit, and of the order of
// the whole head's error.
TEST(AdaptiveRankAttention, SampledErrorSendsWashedOutHeadsBackToDense) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::ThreadPool pool(2);
  const int n = 1037, heads = 2, d = 32;
  const Inputs iid{testutil::randn(rng, size_t(n) * heads * d, 0.3f), testutil::randn(rng, size_t(n) * heads * d, 0.3f),
                   testutil::randn(rng, size_t(n) * heads * d)};
  AdaptiveRankAttention layer(config(heads, d, RankMethod::kEntropy, 1.0f));
  std::vector<float> out(iid.q.size(), testutil::kNaN);
  layer.attend(1, n, n, iid.q.data(), iid.k.data(), iid.v.data(), MaskView{}, CausalAlign::kNone, out.data(), &pool);
  EXPECT_LT(testutil::rel_error(out.data(), reference(1, n, n, heads, heads, d, iid.q, iid.k, iid.v).out).value, 1e-4);
  for (const auto& dec : layer.statistics().last_call) {
    EXPECT_GE(dec.estimate, 0.95);  // the estimate alone would have chosen low rank
    EXPECT_FALSE(dec.low_rank);
    EXPECT_EQ(dec.reason, RankReason::kSampleError);
    EXPECT_GT(dec.sampled_error, 0.05);
  }
  EXPECT_EQ(layer.statistics().per_head[0].rejected, 1);
  EXPECT_EQ(layer.statistics().per_head[0].dense, 1);

  const Inputs smooth = diffuse(rng, n, heads, d);
  layer.attend(1, n, n, smooth.q.data(), smooth.k.data(), smooth.v.data(), MaskView{}, CausalAlign::kNone, out.data(), &pool);
  const double whole = rel_l2(out, reference(1, n, n, heads, heads, d, smooth.q, smooth.k, smooth.v).out);
  for (const auto& dec : layer.statistics().last_call) {
    EXPECT_TRUE(dec.low_rank);
    EXPECT_LE(dec.sampled_error, 0.05);
    EXPECT_GT(dec.sampled_error, whole / 20);
    EXPECT_LT(dec.sampled_error, whole * 20);
  }
  // A limit of 0 rejects every low-rank head (any error is too much).
  AdaptiveRankConfig strict = config(heads, d, RankMethod::kEntropy, 1.0f);
  strict.max_sampled_error = 0.0f;
  AdaptiveRankAttention exact(strict);
  exact.attend(1, n, n, smooth.q.data(), smooth.k.data(), smooth.v.data(), MaskView{}, CausalAlign::kNone, out.data(), &pool);
  EXPECT_LT(testutil::rel_error(out.data(), reference(1, n, n, heads, heads, d, smooth.q, smooth.k, smooth.v).out).value, 1e-4);
  for (const auto& dec : exact.statistics().last_call) EXPECT_EQ(dec.reason, RankReason::kSampleError);
}

TEST(AdaptiveRankAttention, MixedHeadsEachTakeTheirOwnPath) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::ThreadPool pool(2);
  const int n = 1200, d = 32, heads = 3;
  // Head 1 peaked, heads 0 and 2 diffuse.
  const Inputs s = diffuse(rng, n, heads, d), p = peaked(rng, n, heads, d);
  Inputs in = s;
  for (int i = 0; i < n; ++i) {
    for (int c = 0; c < d; ++c) {
      const size_t at = (size_t(i) * heads + 1) * d + c;
      in.q[at] = p.q[at], in.k[at] = p.k[at], in.v[at] = p.v[at];
    }
  }
  const auto ref = reference(1, n, n, heads, heads, d, in.q, in.k, in.v);
  AdaptiveRankAttention layer(config(heads, d, RankMethod::kPower, 1.0f));
  std::vector<float> out(in.q.size(), testutil::kNaN);
  layer.attend(1, n, n, in.q.data(), in.k.data(), in.v.data(), MaskView{}, CausalAlign::kNone, out.data(), &pool);
  const auto& st = layer.statistics();
  ASSERT_EQ(st.last_call.size(), size_t(heads));
  EXPECT_TRUE(st.last_call[0].low_rank);
  EXPECT_FALSE(st.last_call[1].low_rank);
  EXPECT_TRUE(st.last_call[2].low_rank);
  for (int h = 0; h < heads; ++h) {
    std::vector<float> got;
    std::vector<double> want;
    for (int i = 0; i < n; ++i) {
      for (int c = 0; c < d; ++c) {
        got.push_back(out[(size_t(i) * heads + h) * d + c]);
        want.push_back(ref.out[(size_t(i) * heads + h) * d + c]);
      }
    }
    EXPECT_LT(h == 1 ? testutil::rel_error(got.data(), want).value : rel_l2(got, want), h == 1 ? 1e-4 : 5e-2) << "head " << h;
  }
}

TEST(AdaptiveRankAttention, CausalMasksAndShortSequencesFallBackToDense) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::ThreadPool pool(2);
  const int heads = 2, d = 16;
  AdaptiveRankAttention layer(config(heads, d, RankMethod::kRandom, 0.5f, 0.0f));  // threshold 0: low rank if allowed
  for (int n : {1, 3, 17, 1000}) {
    SCOPED_TRACE("n = " + std::to_string(n));
    const Inputs in = diffuse(rng, n, heads, d);
    std::vector<float> mask(size_t(n) * n, 0.0f);
    for (int i = 0; i < n; ++i) mask[size_t(i) * n + (i * 7) % n] = -testutil::kInf;
    if (n > 1) std::fill(mask.begin(), mask.begin() + n, -testutil::kInf);  // row 0 fully masked
    MaskView mv;
    mv.additive = mask.data(), mv.row_stride = n;
    struct Case {
      CausalAlign causal;
      bool masked;
      RankReason reason;
    };
    for (const Case c : {Case{CausalAlign::kTopLeft, false, RankReason::kCausal}, Case{CausalAlign::kNone, true, RankReason::kMask}}) {
      std::vector<float> out(in.q.size(), testutil::kNaN);
      layer.attend(1, n, n, in.q.data(), in.k.data(), in.v.data(), c.masked ? mv : MaskView{}, c.causal, out.data(), &pool);
      const auto ref = reference(1, n, n, heads, heads, d, in.q, in.k, in.v,
                                 c.causal == CausalAlign::kTopLeft ? ref::Causal::kTopLeft : ref::Causal::kNone,
                                 c.masked ? mask.data() : nullptr);
      EXPECT_LT(testutil::rel_error(out.data(), ref.out).value, 1e-4);
      EXPECT_EQ(testutil::count_nan(out.data(), out.size()), 0u);
      for (const auto& dec : layer.statistics().last_call) {
        EXPECT_FALSE(dec.low_rank);
        EXPECT_EQ(dec.reason, c.reason);
        EXPECT_TRUE(std::isnan(dec.estimate));  // nothing was sampled
      }
    }
    std::vector<float> out(in.q.size(), testutil::kNaN);
    layer.attend(1, n, n, in.q.data(), in.k.data(), in.v.data(), MaskView{}, CausalAlign::kNone, out.data(), &pool);
    // Rank 8: short sequences are not cheaper (the kernel's m³ and 4 products of n·m·d); at
    // n = 1000 low rank runs, and its sampled error (usually far above 5e-2 with 8
    // landmarks) decides whether a head keeps it.
    const bool short_seq = n < 1000;
    bool all_dense = true;
    for (const auto& dec : layer.statistics().last_call) {
      if (dec.low_rank) {
        EXPECT_FALSE(short_seq);
        EXPECT_EQ(dec.reason, RankReason::kAtOrAboveThreshold);
        EXPECT_LE(dec.sampled_error, 0.05);
        all_dense = false;
      } else {
        EXPECT_EQ(dec.reason, short_seq ? RankReason::kNotCheaper : RankReason::kSampleError);
      }
    }
    if (all_dense) {
      const auto ref = reference(1, n, n, heads, heads, d, in.q, in.k, in.v);
      EXPECT_LT(testutil::rel_error(out.data(), ref.out).value, 1e-4);
    }
  }
}

TEST(AdaptiveRankAttention, LayerForwardIsProjectionsAroundAttend) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  const int heads = 2, d = 8, e = heads * d, batch = 2, sq = 17, sk = 5;
  AdaptiveRankAttention layer(config(heads, d, RankMethod::kEntropy));
  attn::NamedWeights named;
  for (const auto& p : layer.named_parameters()) named.push_back({p.name, testutil::randn(rng, size_t(p.count()), 0.3f)});
  layer.load_named(named);
  auto weight = [&](const std::string& name) -> const std::vector<float>& {
    for (const auto& [n, w] : named)
      if (n == name) return w;
    throw std::runtime_error(name);
  };
  const auto query = testutil::randn(rng, size_t(batch) * sq * e), key = testutil::randn(rng, size_t(batch) * sk * e);
  const auto value = testutil::randn(rng, size_t(batch) * sk * e);
  // float64 projections, attention (dense: sequences this short are "not cheaper"), output.
  auto project = [&](const std::vector<float>& x, const std::string& p) {
    const auto& w = weight(p + ".weight");
    const auto& b = weight(p + ".bias");
    const size_t rows = x.size() / e;
    std::vector<float> y(rows * e);
    for (size_t r = 0; r < rows; ++r)
      for (int o = 0; o < e; ++o) {
        double s = b[size_t(o)];
        for (int i = 0; i < e; ++i) s += double(w[size_t(o) * e + i]) * x[r * e + i];
        y[r * e + o] = float(s);
      }
    return y;
  };
  const auto att = reference(batch, sq, sk, heads, heads, d, project(query, "q_proj"), project(key, "k_proj"),
                             project(value, "v_proj"));
  std::vector<double> want(size_t(batch) * sq * e);
  const auto& wo = weight("out_proj.weight");
  const auto& bo = weight("out_proj.bias");
  for (size_t r = 0; r < size_t(batch) * sq; ++r)
    for (int o = 0; o < e; ++o) {
      double s = bo[size_t(o)];
      for (int i = 0; i < e; ++i) s += double(wo[size_t(o) * e + i]) * att.out[r * e + i];
      want[r * e + o] = s;
    }
  std::vector<float> out(want.size(), testutil::kNaN);
  layer.forward(batch, sq, sk, query.data(), key.data(), value.data(), MaskView{}, CausalAlign::kNone, out.data(), nullptr);
  EXPECT_LT(testutil::rel_error(out.data(), want).value, 1e-4);
  EXPECT_EQ(layer.statistics().last_call.size(), size_t(batch * heads));
  EXPECT_EQ(layer.param_count(), 4 * e * e + 4 * e);
}

TEST(AdaptiveRankAttention, BadConfigurationsNameTheParameter) {
  auto param_of = [](AdaptiveRankConfig c) -> std::string {
    try {
      AdaptiveRankAttention layer(c);
    } catch (const attn::AttnError& e) {
      return e.param();
    }
    return "";
  };
  AdaptiveRankConfig ok = config(2, 8, RankMethod::kPower);
  auto with = [&](auto f) {
    AdaptiveRankConfig c = ok;
    f(c);
    return c;
  };
  EXPECT_EQ(param_of(with([](auto& c) { c.embed_dim = 0; })), "embedDim");
  EXPECT_EQ(param_of(with([](auto& c) { c.num_heads = 3; })), "numHeads");
  EXPECT_EQ(param_of(with([](auto& c) { c.rank_ratio = 0.0f; })), "rankRatio");
  EXPECT_EQ(param_of(with([](auto& c) { c.rank_ratio = std::nanf(""); })), "rankRatio");
  EXPECT_EQ(param_of(with([](auto& c) { c.adaptive_threshold = 1.5f; })), "adaptiveThreshold");
  EXPECT_EQ(param_of(with([](auto& c) { c.max_sampled_error = -0.1f; })), "maxSampledError");
  EXPECT_EQ(param_of(with([](auto& c) { c.max_sampled_error = INFINITY; })), "maxSampledError");
  EXPECT_EQ(param_of(ok), "");
  AdaptiveRankAttention layer(ok);
  attn::NamedWeights bad{{"q_proj.weight", std::vector<float>(3, 0.0f)}};
  try {
    layer.load_named(bad);
    FAIL() << "short weight accepted";
  } catch (const attn::AttnError& e) {
    EXPECT_EQ(e.param(), "q_proj.weight");
  }
  std::vector<float> x(16 * 16, 0.0f);
  EXPECT_THROW(layer.attend(1, 0, 4, x.data(), x.data(), x.data(), MaskView{}, CausalAlign::kNone, x.data(), nullptr),
               attn::AttnError);
  EXPECT_THROW(layer.attend(1, 4, 4, nullptr, x.data(), x.data(), MaskView{}, CausalAlign::kNone, x.data(), nullptr),
               attn::AttnError);
}

}  // namespace
