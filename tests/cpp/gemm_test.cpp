// gemm() against a float64 triple loop: odd sizes, transposed operands, accumulation,
// a leading dimension wider than the row, and a C whose neighbours must stay untouched.
#include "gemm/gemm.h"

#include <gtest/gtest.h>

#include "test_util.h"

namespace {

using attn::GemmScratch;
using attn::MatrixView;

struct GemmCase {
  int m, n, k;
  bool a_t, b_t, accumulate;
};

void run_case(const GemmCase& g, std::mt19937_64& rng, GemmScratch& scratch) {
  const int64_t lda = (g.a_t ? g.m : g.k) + 3, ldb = (g.b_t ? g.k : g.n) + 1, ldc = g.n + 5;
  const auto a = testutil::randn(rng, size_t((g.a_t ? g.k : g.m) * lda));
  const auto b = testutil::randn(rng, size_t((g.b_t ? g.n : g.k) * ldb));
  const auto c0 = testutil::randn(rng, size_t(g.m * ldc));
  testutil::Guarded<float> c(c0, -7.0f);
  const MatrixView av{a.data(), lda, g.a_t}, bv{b.data(), ldb, g.b_t};
  std::vector<double> ref(size_t(g.m) * g.n);
  double magnitude = 0;  // the largest sum of |terms|: float32 rounding scales with it, not with |C|
  for (int i = 0; i < g.m; ++i) {
    for (int j = 0; j < g.n; ++j) {
      double s = g.accumulate ? c0[size_t(i * ldc + j)] : 0.0;
      double abs_sum = std::abs(s);
      for (int p = 0; p < g.k; ++p) {
        s += double(av.at(i, p)) * bv.at(p, j);
        abs_sum += std::abs(double(av.at(i, p)) * bv.at(p, j));
      }
      ref[size_t(i) * g.n + j] = s;
      magnitude = std::max(magnitude, abs_sum);
    }
  }
  attn::gemm(g.m, g.n, g.k, av, bv, c.data(), ldc, g.accumulate, scratch);
  std::vector<float> got(ref.size());
  for (int i = 0; i < g.m; ++i) {
    for (int j = 0; j < g.n; ++j) got[size_t(i) * g.n + j] = c[size_t(i * ldc + j)];
    for (int j = g.n; j < ldc; ++j) {  // the padding columns of each row are not C's
      ASSERT_EQ(c[size_t(i * ldc + j)], c0[size_t(i * ldc + j)]) << "row " << i << " col " << j;
    }
  }
  // Error against the terms' magnitude: a cancelling sum (|C| << the terms) would make
  // max|C|-relative errors flaky, while any wrong term shows up at ~1/k of the magnitude.
  const auto e = testutil::rel_error(got.data(), ref);
  EXPECT_LT(e.max_abs, 1e-6 * magnitude) << g.m << "x" << g.n << "x" << g.k << " a_t " << g.a_t << " b_t " << g.b_t;
  EXPECT_TRUE(c.guards_intact());
}

TEST(Gemm, MatchesFloat64Reference) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  GemmScratch scratch;
  for (int m : {1, 3, 4, 17, 64}) {
    for (int n : {1, 7, 8, 33, 65}) {
      for (int k : {1, 5, 64, 130}) {
        for (int flags = 0; flags < 8; ++flags) {
          run_case({m, n, k, (flags & 1) != 0, (flags & 2) != 0, (flags & 4) != 0}, rng, scratch);
        }
      }
    }
  }
}

TEST(Gemm, EmptyDepthGivesZerosOrLeavesC) {
  GemmScratch scratch;
  std::vector<float> c(6, 5.0f);
  attn::gemm(2, 3, 0, {nullptr, 0, false}, {nullptr, 0, false}, c.data(), 3, true, scratch);
  for (float x : c) EXPECT_EQ(x, 5.0f);
  attn::gemm(2, 3, 0, {nullptr, 0, false}, {nullptr, 0, false}, c.data(), 3, false, scratch);
  for (float x : c) EXPECT_EQ(x, 0.0f);
}

}  // namespace
