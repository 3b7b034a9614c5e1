// attention_scores against the float64 reference weights; rows sum to 1, or are all zero
// when every key is blocked.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "attention_case.h"
#include "flash/flash_attention.h"
#include "reference_attention.h"
#include "test_util.h"

namespace {

using attn::CausalAlign;
using testutil::Case;
using testutil::Guarded;
using testutil::Inputs;
using testutil::kInf;
using testutil::kNaN;
using testutil::MaskKind;

size_t weights_size(const Case& c) {
  return size_t(c.batch) * c.heads_q * c.seq_q * c.seq_k;
}

Guarded<float> run_scores(const Case& c, const Inputs& in, const attn::FlashOptions& o,
                          int threads) {
  Guarded<float> w(weights_size(c), 7777.0f);
  w.fill(kNaN);  // unwritten elements show up as NaN
  attn::attention_scores(testutil::shape_of(c), o, in.q.data(), in.k.data(), w.data(),
                         testutil::pool_for(threads));
  return w;
}

// Returns the number of fully masked rows.
int check_scores(const Case& c, const Inputs& in, const Guarded<float>& w) {
  EXPECT_TRUE(w.guards_intact()) << "weights written out of bounds";
  EXPECT_EQ(testutil::count_nan(w.data(), w.size()), 0u) << "NaN (or unwritten) weight";
  const ref::Result want =
      ref::attention(testutil::ref_config_of(c, in), in.q.data(), in.k.data(), nullptr, true);
  const testutil::RelError e = testutil::rel_error(w.data(), want.weights);
  EXPECT_LT(e.value, 1e-4) << "weights: max abs err " << e.max_abs << " at " << e.worst
                           << " (got " << w[e.worst] << ", want " << want.weights[e.worst] << ")";
  int masked = 0;
  for (size_t row = 0; row < want.row_masked.size(); ++row) {
    const float* p = &w[row * c.seq_k];
    double sum = 0;
    bool non_negative = true;
    for (int j = 0; j < c.seq_k; ++j) sum += p[j], non_negative &= p[j] >= 0.0f;
    EXPECT_TRUE(non_negative) << "row " << row;
    if (want.row_masked[row]) {
      ++masked;
      int nonzero = 0;
      for (int j = 0; j < c.seq_k; ++j) nonzero += p[j] != 0.0f;
      EXPECT_EQ(nonzero, 0) << "fully masked row " << row;
    } else {
      EXPECT_NEAR(sum, 1.0, 1e-5) << "row " << row;
    }
  }
  return masked;
}

int check_case(const Case& c) {
  std::mt19937_64 rng(testutil::test_seed());
  const Inputs in(c, rng);
  return check_scores(c, in, run_scores(c, in, testutil::options_of(c, in), c.threads));
}

std::vector<Case> score_cases() {
  std::vector<Case> shapes(7);
  shapes[0].shape(1, 1, 1, 1, 1, 1, 1);
  shapes[1].shape(1, 1, 33, 2, 1, 3, 1);
  shapes[2].shape(2, 5, 3, 4, 2, 8, 1);
  shapes[3].shape(1, 19, 40, 3, 1, 65, 1);
  shapes[4].shape(2, 33, 17, 2, 2, 128, 1);
  shapes[5].shape(1, 64, 300, 1, 1, 64, 1);
  shapes[6].shape(1, 200, 150, 1, 1, 8, 1);
  std::vector<Case> opts(7);
  opts[1].causal = CausalAlign::kTopLeft;
  opts[2].causal = CausalAlign::kBottomRight;
  opts[3].softcap = 3.0f, opts[3].scale = 0.8f, opts[3].sigma = 2.0f;
  opts[4].mask = MaskKind::kAdditive, opts[4].mask_per_head = true, opts[4].mask_row_pad = 2;
  opts[4].blocked_rows = true;
  opts[5].mask = MaskKind::kBoolean, opts[5].mask_per_batch = true, opts[5].blocked_rows = true;
  opts[5].causal = CausalAlign::kBottomRight;
  opts[6].mask = MaskKind::kAdditive, opts[6].causal = CausalAlign::kTopLeft, opts[6].softcap = 1.5f;
  static const int kBq[] = {0, 1, 5, 6, 7, 64};
  static const int kBk[] = {0, 1, 3, 16, 17, 33, 4096};
  std::vector<Case> out;
  int n = 0;
  for (const Case& s : shapes) {
    for (Case c : opts) {
      c.shape(s.batch, s.seq_q, s.seq_k, s.heads_q, s.heads_kv, s.head_dim, s.value_dim);
      c.blocks(kBq[n % 6], kBk[(n * 3 + n / 6) % 7]).pool(n / 2 % 4);
      out.push_back(c);
      ++n;
    }
  }
  return out;
}

class AttentionScores : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionScores, MatchesReferenceWeights) {
  ATTN_TRACE_SEED();
  const Case& c = GetParam();
  const int masked = check_case(c);
  if (c.blocked_rows && c.seq_q > 1) {
    EXPECT_GT(masked, 0);
  }
}

INSTANTIATE_TEST_SUITE_P(Sweep, AttentionScores, ::testing::ValuesIn(score_cases()),
                         [](const ::testing::TestParamInfo<Case>& info) {
                           return info.param.name() + "_" + std::to_string(info.index);
                         });

TEST(AttentionScoresFuzz, RandomCases) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  for (int n = 0; n < 100; ++n) {
    Case c = testutil::random_case(rng);
    c.dropout = 0;  // not part of attention_scores
    SCOPED_TRACE(::testing::Message() << "case " << n << ": " << c.name());
    const Inputs in(c, rng);
    check_scores(c, in, run_scores(c, in, testutil::options_of(c, in), c.threads));
    if (::testing::Test::HasFailure()) break;
  }
}

// Bottom-right with fewer keys than queries: the first seq_q - seq_k rows are all zero.
TEST(AttentionScoresMasked, BottomRightEmptyRowsAreZero) {
  ATTN_TRACE_SEED();
  Case c;
  c.shape(2, 40, 15, 2, 1, 8, 1).blocks(6, 16).pool(2);
  c.causal = CausalAlign::kBottomRight;
  EXPECT_EQ(check_case(c), 2 * 2 * 25);
}

TEST(AttentionScoresMasked, EveryKeyBlocked) {
  ATTN_TRACE_SEED();
  for (MaskKind kind : {MaskKind::kAdditive, MaskKind::kBoolean}) {
    Case c;
    c.shape(1, 10, 37, 2, 1, 4, 1).blocks(3, 16).pool(3);
    c.mask = kind;
    std::mt19937_64 rng(testutil::test_seed());
    Inputs in(c, rng);
    if (kind == MaskKind::kAdditive) in.mask_add.fill(-kInf);
    else in.mask_bool.fill(0);
    const auto w = run_scores(c, in, testutil::options_of(c, in), c.threads);
    EXPECT_EQ(check_scores(c, in, w), 2 * 10);
  }
}

// Weights are documented as undropped: the dropout option must not change them.
TEST(AttentionScores, DropoutOptionDoesNotApply) {
  ATTN_TRACE_SEED();
  Case c;
  c.shape(1, 20, 30, 2, 1, 8, 1).blocks(4, 16).pool(2);
  std::mt19937_64 rng(testutil::test_seed());
  const Inputs in(c, rng);
  auto o = testutil::options_of(c, in);
  const auto plain = run_scores(c, in, o, 2);
  o.dropout = 0.5f, o.seed = 11;
  const auto dropped = run_scores(c, in, o, 2);
  EXPECT_EQ(std::memcmp(plain.data(), dropped.data(), plain.size() * sizeof(float)), 0);
}

TEST(AttentionScores, IdenticalForEveryPoolSize) {
  ATTN_TRACE_SEED();
  Case c;
  c.shape(2, 41, 53, 3, 1, 10, 1).blocks(5, 16);
  c.causal = CausalAlign::kTopLeft, c.mask = MaskKind::kAdditive;
  std::mt19937_64 rng(testutil::test_seed());
  const Inputs in(c, rng);
  const auto o = testutil::options_of(c, in);
  const auto base = run_scores(c, in, o, 0);
  check_scores(c, in, base);
  for (int t = 1; t <= 3; ++t) {
    const auto w = run_scores(c, in, o, t);
    EXPECT_EQ(std::memcmp(w.data(), base.data(), w.size() * sizeof(float)), 0) << t;
  }
}

}  // namespace
