// flash_forward against the float64 reference: shapes, options, masks, tiling, threads,
// fully masked rows and dropout.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "attention_case.h"
#include "flash/dropout_rng.h"
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

constexpr double kTol = 1e-4;
constexpr float kOutGuard = 7777.0f;

struct FlashRun {
  Guarded<float> out, lse;
};

size_t out_size(const Case& c) { return size_t(c.batch) * c.seq_q * c.heads_q * c.value_dim; }
size_t lse_size(const Case& c) { return size_t(c.batch) * c.heads_q * c.seq_q; }

// Calls the kernel into guarded outputs pre-filled with NaN, so an element the kernel
// forgets to write shows up as NaN and a write past either end breaks a guard.
FlashRun run_flash(const Case& c, const Inputs& in, int threads, const attn::FlashOptions& o) {
  FlashRun r{Guarded<float>(out_size(c), kOutGuard), Guarded<float>(lse_size(c), kOutGuard)};
  r.out.fill(kNaN);
  r.lse.fill(kNaN);
  attn::flash_forward(testutil::shape_of(c), o,
                      {in.q.data(), in.k.data(), in.v.data(), r.out.data(), r.lse.data()},
                      testutil::pool_for(threads));
  return r;
}
FlashRun run_flash(const Case& c, const Inputs& in) {
  return run_flash(c, in, c.threads, testutil::options_of(c, in));
}

// Everything the suite demands of one forward call, against the float64 reference.
// Returns the number of fully masked rows so callers can insist some were exercised.
int check_against_reference(const Case& c, const Inputs& in, const FlashRun& r) {
  EXPECT_TRUE(r.out.guards_intact()) << "out written out of bounds";
  EXPECT_TRUE(r.lse.guards_intact()) << "lse written out of bounds";
  EXPECT_EQ(testutil::count_nan(r.out.data(), r.out.size()), 0u) << "NaN (or unwritten) output";
  EXPECT_EQ(testutil::count_nan(r.lse.data(), r.lse.size()), 0u) << "NaN (or unwritten) lse";

  const ref::Result want =
      ref::attention(testutil::ref_config_of(c, in), in.q.data(), in.k.data(), in.v.data(), false);
  const testutil::RelError e = testutil::rel_error(r.out.data(), want.out);
  EXPECT_LT(e.value, kTol) << "out: max abs err " << e.max_abs << " at " << e.worst
                           << " (got " << r.out[e.worst] << ", want " << want.out[e.worst]
                           << "), max|ref| " << e.max_ref;

  int masked = 0;
  double lse_err = 0;
  size_t lse_worst = 0;
  for (int b = 0; b < c.batch; ++b) {
    for (int h = 0; h < c.heads_q; ++h) {
      for (int i = 0; i < c.seq_q; ++i) {
        const size_t at = (size_t(b) * c.heads_q + h) * c.seq_q + i;
        if (!want.row_masked[at]) {
          const double d = std::abs(double(r.lse[at]) - want.lse[at]);
          if (!(d <= lse_err)) lse_err = d, lse_worst = at;
          continue;
        }
        ++masked;
        EXPECT_EQ(r.lse[at], -kInf) << "fully masked row b" << b << " h" << h << " i" << i;
        const float* o = &r.out[((size_t(b) * c.seq_q + i) * c.heads_q + h) * c.value_dim];
        int nonzero = 0;
        for (int d = 0; d < c.value_dim; ++d) nonzero += o[d] != 0.0f;
        EXPECT_EQ(nonzero, 0) << "fully masked row b" << b << " h" << h << " i" << i;
      }
    }
  }
  EXPECT_LT(lse_err, kTol) << "lse at " << lse_worst << ": got " << r.lse[lse_worst] << ", want "
                           << want.lse[lse_worst];
  return masked;
}

int check_case(const Case& c) {
  std::mt19937_64 rng(testutil::test_seed());
  const Inputs in(c, rng);
  const FlashRun r = run_flash(c, in);
  return check_against_reference(c, in, r);
}

// ---------------------------------------------------------------------------------
// The broad sweep: every shape with every option set, block sizes and thread counts
// rotating through the cases so that each combination family is hit.

std::vector<Case> shapes() {
  std::vector<Case> s(10);
  s[0].shape(1, 1, 1, 1, 1, 1, 1);
  s[1].shape(1, 1, 17, 2, 1, 3, 5);       // one query (decoding), MQA
  s[2].shape(2, 3, 3, 4, 2, 8, 8);        // GQA
  s[3].shape(1, 17, 3, 3, 3, 64, 16);     // more queries than keys
  s[4].shape(2, 17, 33, 3, 1, 65, 7);     // odd head dim, MQA
  s[5].shape(1, 64, 64, 2, 2, 64, 64);
  s[6].shape(1, 33, 47, 4, 2, 128, 128);
  s[7].shape(1, 40, 29, 2, 1, 3, 65);     // value dim just past a panel
  s[8].shape(3, 9, 130, 2, 2, 16, 1);     // value dim 1
  s[9].shape(1, 100, 100, 1, 1, 8, 24);
  return s;
}

std::vector<Case> option_sets() {
  std::vector<Case> v(11);
  // v[0]: no options at all
  v[1].causal = CausalAlign::kTopLeft;
  v[2].causal = CausalAlign::kBottomRight;
  v[3].softcap = 5.0f, v[3].scale = 0.37f, v[3].sigma = 2.5f;  // the cap actually bites
  v[4].mask = MaskKind::kAdditive, v[4].mask_row_pad = 3;
  v[5].mask = MaskKind::kAdditive, v[5].mask_per_batch = v[5].mask_per_head = true;
  v[5].blocked_rows = true, v[5].causal = CausalAlign::kBottomRight;
  v[6].mask = MaskKind::kBoolean, v[6].mask_per_head = true, v[6].blocked_rows = true;
  v[7].mask = MaskKind::kBoolean, v[7].mask_per_batch = true, v[7].mask_row_pad = 5;
  v[7].causal = CausalAlign::kTopLeft, v[7].softcap = 2.0f, v[7].sigma = 2.0f;
  v[8].dropout = 0.2f, v[8].dropout_seed = 42;
  v[9].softcap = 3.0f, v[9].scale = 0.5f, v[9].mask = MaskKind::kAdditive;
  v[9].mask_per_head = true, v[9].blocked_rows = true, v[9].causal = CausalAlign::kBottomRight;
  v[9].dropout = 0.1f, v[9].dropout_seed = 7;
  v[10].mask = MaskKind::kAdditive, v[10].mask_per_batch = true, v[10].causal = CausalAlign::kTopLeft;
  return v;
}

std::vector<Case> sweep_cases() {
  static const int kBq[] = {0, 1, 5, 6, 7, 13, 48, 64};
  static const int kBk[] = {0, 1, 3, 16, 17, 31, 33, 100, 256};
  std::vector<Case> out;
  int n = 0;
  for (const Case& s : shapes()) {
    for (Case c : option_sets()) {
      c.shape(s.batch, s.seq_q, s.seq_k, s.heads_q, s.heads_kv, s.head_dim, s.value_dim);
      c.blocks(kBq[n % 8], kBk[(n * 5 + n / 8) % 9]).pool(n / 2 % 4);
      out.push_back(c);
      ++n;
    }
  }
  return out;
}

// Long sequences: few heads so the float64 reference stays cheap.
std::vector<Case> long_cases() {
  std::vector<Case> v(6);
  v[0].shape(1, 1031, 1031, 1, 1, 64, 48).pool(2).causal = CausalAlign::kTopLeft;
  v[1].shape(1, 1000, 1200, 2, 1, 32, 40).blocks(13, 100).pool(3);
  v[1].causal = CausalAlign::kBottomRight, v[1].mask = MaskKind::kAdditive, v[1].blocked_rows = true;
  v[2].shape(1, 1, 2049, 2, 1, 128, 128);
  v[3].shape(1, 1500, 7, 1, 1, 8, 8).pool(2).causal = CausalAlign::kBottomRight;  // 1493 empty rows
  v[3].dropout = 0.25f, v[3].dropout_seed = 99;
  v[4].shape(2, 1024, 1024, 1, 1, 1, 3).blocks(64, 64).pool(1);
  v[4].softcap = 4.0f, v[4].mask = MaskKind::kBoolean, v[4].sigma = 3.0f;
  v[5].shape(1, 7, 1100, 1, 1, 3, 65).blocks(7, 4096).pool(3).causal = CausalAlign::kTopLeft;
  return v;
}

// Tiling sweep on one shape with a causal frontier and a mask, block sizes that are and
// are not multiples of the SIMD panel, larger than the sequence, and 1.
std::vector<Case> block_cases() {
  static const int kBq[] = {1, 2, 5, 6, 7, 12, 37, 38, 100, 4096};
  static const int kBk[] = {1, 2, 3, 15, 16, 17, 31, 32, 33, 64, 100, 150, 151, 4096};
  std::vector<Case> out;
  int n = 0;
  for (int bq : kBq) {
    for (int bk : kBk) {
      Case c;
      c.shape(2, 37, 150, 2, 1, 24, 19).blocks(bq, bk).pool(n++ % 4);
      c.causal = CausalAlign::kBottomRight;
      c.mask = MaskKind::kAdditive, c.mask_per_head = true, c.blocked_rows = true;
      c.softcap = 4.0f;
      out.push_back(c);
    }
  }
  return out;
}

class FlashForward : public ::testing::TestWithParam<Case> {};

TEST_P(FlashForward, MatchesReference) {
  ATTN_TRACE_SEED();
  const Case& c = GetParam();
  const int masked = check_case(c);
  // Cases built with blocked mask rows must really have exercised them.
  if (c.blocked_rows && c.seq_q > 1) {
    EXPECT_GT(masked, 0);
  }
}

std::string case_name(const ::testing::TestParamInfo<Case>& info) {
  return info.param.name() + "_" + std::to_string(info.index);
}

INSTANTIATE_TEST_SUITE_P(Sweep, FlashForward, ::testing::ValuesIn(sweep_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(Long, FlashForward, ::testing::ValuesIn(long_cases()), case_name);
INSTANTIATE_TEST_SUITE_P(Blocks, FlashForward, ::testing::ValuesIn(block_cases()), case_name);

// Random shapes and options, fresh every run: combinations nobody listed above.
TEST(FlashForwardFuzz, RandomCases) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  for (int n = 0; n < 200; ++n) {
    const Case c = testutil::random_case(rng);
    SCOPED_TRACE(::testing::Message() << "case " << n << ": " << c.name());
    const Inputs in(c, rng);
    check_against_reference(c, in, run_flash(c, in));
    if (::testing::Test::HasFailure()) break;  // one reported case is enough
  }
}

// ---------------------------------------------------------------------------------
// Threads: the result of a task does not depend on which worker ran it.

TEST(FlashForwardThreads, IdenticalForEveryPoolSize) {
  ATTN_TRACE_SEED();
  Case c;
  c.shape(2, 77, 91, 4, 2, 20, 12).blocks(6, 32);
  c.causal = CausalAlign::kTopLeft, c.mask = MaskKind::kBoolean, c.mask_per_head = true;
  std::mt19937_64 rng(testutil::test_seed());
  const Inputs in(c, rng);
  const auto o = testutil::options_of(c, in);
  const FlashRun base = run_flash(c, in, 0, o);
  check_against_reference(c, in, base);
  for (int t = 1; t <= 3; ++t) {
    const FlashRun r = run_flash(c, in, t, o);
    EXPECT_EQ(std::memcmp(r.out.data(), base.out.data(), r.out.size() * sizeof(float)), 0)
        << t << " threads";
    EXPECT_EQ(std::memcmp(r.lse.data(), base.lse.data(), r.lse.size() * sizeof(float)), 0)
        << t << " threads";
  }
}

TEST(FlashForwardThreads, PoolCanBeReusedAcrossShapes) {
  ATTN_TRACE_SEED();
  // One pool through many calls of different shapes and tilings: scratch is sized per call.
  // (At least a few outputs per call: a single output can cancel to ~0 and make the
  // relative metric meaningless.)
  for (int n = 0; n < 12; ++n) {
    Case c;
    c.shape(1 + n % 2, 2 + 13 * n, 1 + 11 * (12 - n), 1 + n % 3, 1, 1 + 9 * n, 4 + 7 * n)
        .blocks(n % 5 * 3, n % 4 * 40)
        .pool(3);
    c.causal = n % 3 == 0 ? CausalAlign::kNone
                          : (n % 3 == 1 ? CausalAlign::kTopLeft : CausalAlign::kBottomRight);
    SCOPED_TRACE(c.name());
    check_case(c);
  }
}

TEST(FlashForward, LseIsOptional) {
  ATTN_TRACE_SEED();
  Case c;
  c.shape(2, 19, 23, 2, 1, 9, 10).blocks(5, 7).pool(2);
  c.causal = CausalAlign::kBottomRight;
  std::mt19937_64 rng(testutil::test_seed());
  const Inputs in(c, rng);
  const auto o = testutil::options_of(c, in);
  const FlashRun with = run_flash(c, in, 2, o);
  Guarded<float> out(out_size(c), kOutGuard);
  attn::flash_forward(testutil::shape_of(c), o,
                      {in.q.data(), in.k.data(), in.v.data(), out.data(), nullptr},
                      testutil::pool_for(2));
  EXPECT_TRUE(out.guards_intact());
  EXPECT_EQ(std::memcmp(out.data(), with.out.data(), out.size() * sizeof(float)), 0);
}

TEST(FlashForward, DefaultScaleIsInverseSqrtHeadDim) {
  ATTN_TRACE_SEED();
  Case c;
  c.shape(1, 21, 34, 2, 2, 50, 6);
  std::mt19937_64 rng(testutil::test_seed());
  const Inputs in(c, rng);
  auto o = testutil::options_of(c, in);
  const FlashRun implicit = run_flash(c, in, 0, o);
  o.scale = 1.0f / std::sqrt(50.0f);
  const FlashRun explicit_scale = run_flash(c, in, 0, o);
  const testutil::RelError e = testutil::rel_error(
      implicit.out.data(), std::vector<double>(explicit_scale.out.data(),
                                               explicit_scale.out.data() + out_size(c)));
  EXPECT_LT(e.value, 1e-6);
  // And a different scale really changes the result (the option is not ignored).
  o.scale = 2.0f / std::sqrt(50.0f);
  const FlashRun doubled = run_flash(c, in, 0, o);
  EXPECT_GT(testutil::rel_error(doubled.out.data(),
                                std::vector<double>(implicit.out.data(),
                                                    implicit.out.data() + out_size(c)))
                .value,
            1e-3);
}

// ---------------------------------------------------------------------------------
// Numerics of the online softmax.

// Logits that rise (or fall) steadily along the keys: with small key blocks every tile
// raises the running max, so the rescaling of the accumulator is exercised on every step.
TEST(FlashForwardNumerics, MonotoneLogitsAcrossManyTiles) {
  ATTN_TRACE_SEED();
  for (bool rising : {true, false}) {
    for (int bk : {1, 16, 17, 1000}) {
      Case c;
      c.shape(1, 3, 1000, 1, 1, 1, 5).blocks(2, bk).pool(bk % 3);
      c.scale = 1.0f;
      std::mt19937_64 rng(testutil::test_seed());
      Inputs in(c, rng);
      for (int i = 0; i < c.seq_q; ++i) in.q[i] = 1.0f + 0.5f * i;
      for (int j = 0; j < c.seq_k; ++j) {
        const float t = -40.0f + 80.0f * j / (c.seq_k - 1);
        in.k[j] = rising ? t : -t;
      }
      SCOPED_TRACE(::testing::Message() << (rising ? "rising" : "falling") << " bk=" << bk);
      check_against_reference(c, in, run_flash(c, in));
    }
  }
}

// Logits of several hundred: exp would overflow without subtracting the running max.
// Inputs are multiples of 1/2 and the scale a power of two, so the float logits are exact.
TEST(FlashForwardNumerics, HugeLogitsDoNotOverflow) {
  ATTN_TRACE_SEED();
  Case c;
  c.shape(2, 40, 70, 2, 1, 4, 9).blocks(7, 16).pool(2);
  c.scale = 64.0f;
  std::mt19937_64 rng(testutil::test_seed());
  Inputs in(c, rng);
  std::uniform_int_distribution<int> pick(-2, 2);
  for (size_t e = 0; e < in.q.size(); ++e) in.q[e] = 0.5f * pick(rng);
  for (size_t e = 0; e < in.k.size(); ++e) in.k[e] = 0.5f * pick(rng);
  const FlashRun r = run_flash(c, in);
  check_against_reference(c, in, r);
  for (size_t e = 0; e < r.lse.size(); ++e) ASSERT_TRUE(std::isfinite(r.lse[e])) << e;
}

// ---------------------------------------------------------------------------------
// Fully masked rows: exactly zero output, lse = -inf, never NaN.

TEST(FlashForwardMasked, AdditiveRowsOfMinusInfinity) {
  ATTN_TRACE_SEED();
  for (int bq : {1, 4, 48}) {
    Case c;
    c.shape(2, 30, 45, 2, 1, 16, 8).blocks(bq, 16).pool(bq % 4);
    c.mask = MaskKind::kAdditive, c.mask_per_batch = true, c.blocked_rows = true;
    SCOPED_TRACE(c.name());
    EXPECT_GT(check_case(c), 0);
  }
}

TEST(FlashForwardMasked, BooleanRowsOfZeros) {
  ATTN_TRACE_SEED();
  for (int bq : {1, 3, 48}) {
    Case c;
    c.shape(2, 30, 45, 4, 2, 16, 8).blocks(bq, 17).pool(3 - bq % 3);
    c.mask = MaskKind::kBoolean, c.mask_per_head = true, c.blocked_rows = true;
    SCOPED_TRACE(c.name());
    EXPECT_GT(check_case(c), 0);
  }
}

// Bottom-right with fewer keys than queries: query i < seq_q - seq_k sees nothing, and
// whole query blocks see nothing (their key loop is skipped entirely).
TEST(FlashForwardMasked, BottomRightWithFewerKeys) {
  ATTN_TRACE_SEED();
  for (int bq : {1, 7, 16, 64}) {
    Case c;
    c.shape(1, 50, 20, 2, 1, 8, 5).blocks(bq, 3).pool(bq % 4);
    c.causal = CausalAlign::kBottomRight;
    SCOPED_TRACE(c.name());
    EXPECT_EQ(check_case(c), 2 * 30);  // rows 0..29 of each head
  }
}

// Top-left with more queries than keys: every query sees key 0 at least, nothing is empty.
TEST(FlashForwardMasked, TopLeftWithFewerKeysHasNoEmptyRow) {
  ATTN_TRACE_SEED();
  Case c;
  c.shape(1, 50, 20, 2, 1, 8, 5).blocks(7, 3).pool(2);
  c.causal = CausalAlign::kTopLeft;
  EXPECT_EQ(check_case(c), 0);
}

// A mask that only allows keys past the causal frontier: each part alone leaves keys,
// together they leave none, so every row must come out empty.
TEST(FlashForwardMasked, MaskAndCausalTogetherBlockEverything) {
  ATTN_TRACE_SEED();
  for (MaskKind kind : {MaskKind::kAdditive, MaskKind::kBoolean}) {
    for (float dropout : {0.0f, 0.3f}) {
      Case c;
      c.shape(1, 24, 24, 2, 1, 8, 8).blocks(5, 16).pool(2);
      c.causal = CausalAlign::kTopLeft, c.mask = kind, c.dropout = dropout;
      std::mt19937_64 rng(testutil::test_seed());
      Inputs in(c, rng);
      for (int i = 0; i < c.seq_q; ++i) {
        for (int j = 0; j < c.seq_k; ++j) {
          const bool allow = j > i;
          if (kind == MaskKind::kAdditive) in.mask_add[i * in.row_stride + j] = allow ? 0.0f : -kInf;
          else in.mask_bool[i * in.row_stride + j] = allow ? 1 : 0;
        }
      }
      SCOPED_TRACE(c.name());
      EXPECT_EQ(check_against_reference(c, in, run_flash(c, in)), 2 * 24);
    }
  }
}

TEST(FlashForwardMasked, EveryRowBlockedGivesAllZeros) {
  ATTN_TRACE_SEED();
  Case c;
  c.shape(2, 9, 70, 3, 1, 5, 6).blocks(4, 32).pool(3);
  c.mask = MaskKind::kAdditive;
  c.softcap = 2.0f;
  std::mt19937_64 rng(testutil::test_seed());
  Inputs in(c, rng);
  in.mask_add.fill(-kInf);
  EXPECT_EQ(check_against_reference(c, in, run_flash(c, in)), 2 * 3 * 9);
}

// ---------------------------------------------------------------------------------
// Dropout.

// With V the identity (value_dim = seq_k, v_j = e_j) the output row is the dropped,
// rescaled weight row itself, so the kept/dropped pattern can be read off exactly.
struct DropoutProbe {
  Case c;
  std::mt19937_64 rng;
  Inputs in;
  explicit DropoutProbe(Case base)
      : c(base), rng(testutil::test_seed()), in((c.value_dim = c.seq_k, c), rng) {
    in.v.fill(0.0f);
    for (int b = 0; b < c.batch; ++b)
      for (int j = 0; j < c.seq_k; ++j)
        for (int h = 0; h < c.heads_kv; ++h)
          in.v[((size_t(b) * c.seq_k + j) * c.heads_kv + h) * c.value_dim + j] = 1.0f;
  }
  FlashRun run(float p, uint64_t seed, int bq, int bk, int threads) {
    auto o = testutil::options_of(c, in);
    o.dropout = p, o.seed = seed, o.block_q = bq, o.block_k = bk;
    return run_flash(c, in, threads, o);
  }
  // out[b][i][h][j] == 0 exactly where weight (b, h, i, j) was dropped.
  std::vector<bool> zeros(const FlashRun& r) const {
    std::vector<bool> z(r.out.size());
    for (size_t e = 0; e < z.size(); ++e) z[e] = r.out[e] == 0.0f;
    return z;
  }
};

Case dropout_base() {
  Case c;
  c.shape(2, 23, 37, 4, 2, 6, 37);
  return c;
}

TEST(FlashForwardDropout, DroppedPatternIsTheKeepRule) {
  ATTN_TRACE_SEED();
  DropoutProbe probe(dropout_base());
  const Case& c = probe.c;
  const float p = 0.3f;
  const uint64_t seed = testutil::test_seed();
  const FlashRun r = probe.run(p, seed, 5, 16, 2);
  const attn::DropoutRng rng(seed, p);
  size_t dropped = 0, total = 0;
  for (int b = 0; b < c.batch; ++b)
    for (int h = 0; h < c.heads_q; ++h)
      for (int i = 0; i < c.seq_q; ++i)
        for (int j = 0; j < c.seq_k; ++j) {
          const uint64_t element = ((uint64_t(b) * c.heads_q + h) * c.seq_q + i) * c.seq_k + j;
          const float got = r.out[((size_t(b) * c.seq_q + i) * c.heads_q + h) * c.value_dim + j];
          ASSERT_EQ(got == 0.0f, !rng.keep(element)) << "b" << b << " h" << h << " i" << i
                                                     << " j" << j << " got " << got;
          dropped += got == 0.0f, ++total;
        }
  // About p of the weights are dropped (6 sigma band).
  const double sigma = std::sqrt(p * (1 - p) / total);
  EXPECT_NEAR(double(dropped) / total, p, 6 * sigma);
  Case checked = c;
  checked.dropout = p, checked.dropout_seed = seed, checked.blocks(5, 16);
  check_against_reference(checked, probe.in, r);
}

TEST(FlashForwardDropout, SameSeedSameMaskWhateverTheTilingAndThreads) {
  ATTN_TRACE_SEED();
  DropoutProbe probe(dropout_base());
  const uint64_t seed = testutil::test_seed();
  const FlashRun base = probe.run(0.4f, seed, 0, 0, 0);
  const auto base_zeros = probe.zeros(base);
  for (int t = 1; t <= 3; ++t) {  // same tiling: bit for bit
    const FlashRun r = probe.run(0.4f, seed, 0, 0, t);
    EXPECT_EQ(std::memcmp(r.out.data(), base.out.data(), r.out.size() * sizeof(float)), 0) << t;
  }
  const int tilings[][3] = {{1, 1, 3}, {5, 16, 2}, {7, 17, 1}, {64, 3, 0}, {23, 37, 3}};
  for (const auto& tl : tilings) {  // other tilings: the same mask, values up to rounding
    const FlashRun r = probe.run(0.4f, seed, tl[0], tl[1], tl[2]);
    SCOPED_TRACE(::testing::Message() << "bq " << tl[0] << " bk " << tl[1] << " t " << tl[2]);
    EXPECT_EQ(probe.zeros(r), base_zeros);
    EXPECT_LT(testutil::rel_error(r.out.data(), std::vector<double>(base.out.data(),
                                                                     base.out.data() + base.out.size()))
                  .value,
              1e-5);
  }
}

TEST(FlashForwardDropout, DifferentSeedDifferentMask) {
  ATTN_TRACE_SEED();
  DropoutProbe probe(dropout_base());
  const uint64_t seed = testutil::test_seed();
  const auto a = probe.zeros(probe.run(0.3f, seed, 0, 0, 2));
  const auto b = probe.zeros(probe.run(0.3f, seed + 1, 0, 0, 2));
  const auto c = probe.zeros(probe.run(0.3f, seed ^ (uint64_t{1} << 63), 0, 0, 2));
  EXPECT_NE(a, b);
  EXPECT_NE(a, c);
}

TEST(FlashForwardDropout, ZeroProbabilityIsNoDropout) {
  ATTN_TRACE_SEED();
  Case c;
  c.shape(2, 31, 40, 2, 1, 12, 10).blocks(6, 16).pool(2);
  c.causal = CausalAlign::kBottomRight, c.mask = MaskKind::kAdditive;
  std::mt19937_64 rng(testutil::test_seed());
  const Inputs in(c, rng);
  auto o = testutil::options_of(c, in);
  const FlashRun plain = run_flash(c, in, 2, o);
  o.dropout = 0.0f, o.seed = 12345;
  const FlashRun zero = run_flash(c, in, 2, o);
  EXPECT_EQ(std::memcmp(plain.out.data(), zero.out.data(), plain.out.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(plain.lse.data(), zero.lse.data(), plain.lse.size() * sizeof(float)), 0);
}

// The normaliser is that of the undropped weights, so lse does not move with dropout.
TEST(FlashForwardDropout, LseIgnoresDropout) {
  ATTN_TRACE_SEED();
  Case c;
  c.shape(1, 29, 50, 2, 2, 12, 10).blocks(6, 16).pool(3);
  c.causal = CausalAlign::kTopLeft;
  std::mt19937_64 rng(testutil::test_seed());
  const Inputs in(c, rng);
  auto o = testutil::options_of(c, in);
  const FlashRun plain = run_flash(c, in, 3, o);
  o.dropout = 0.5f, o.seed = 3;
  const FlashRun dropped = run_flash(c, in, 3, o);
  EXPECT_EQ(std::memcmp(plain.lse.data(), dropped.lse.data(), plain.lse.size() * sizeof(float)), 0);
  EXPECT_NE(std::memcmp(plain.out.data(), dropped.out.data(), plain.out.size() * sizeof(float)), 0);
}

TEST(FlashForwardDropout, MatchesReferenceAtSeveralRates) {
  ATTN_TRACE_SEED();
  for (float p : {0.05f, 0.5f, 0.9f}) {
    Case c;
    c.shape(2, 33, 65, 3, 1, 16, 20).blocks(6, 32).pool(2);
    c.dropout = p, c.dropout_seed = testutil::test_seed();
    c.causal = CausalAlign::kTopLeft;
    SCOPED_TRACE(::testing::Message() << "p=" << p);
    check_case(c);
  }
}

}  // namespace
