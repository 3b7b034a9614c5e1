// simd::exp and simd::tanh against std::exp / std::tanh in float64, evaluated kLanes
// at a time exactly as the kernels call them.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <vector>

#include "simd/vec_math.h"
#include "test_util.h"

namespace {

namespace simd = attn::simd;
using testutil::kInf;

// Applies f to xs in kLanes-wide vectors (the tail padded with zeros).
std::vector<float> eval_lanes(const std::vector<float>& xs, simd::Vec (*f)(simd::Vec)) {
  const size_t n = xs.size();
  const size_t padded = (n + simd::kLanes - 1) / simd::kLanes * simd::kLanes;
  std::vector<float> in(padded, 0.0f), out(padded, 0.0f);
  std::copy(xs.begin(), xs.end(), in.begin());
  for (size_t i = 0; i < padded; i += simd::kLanes) {
    simd::store(out.data() + i, f(simd::load(in.data() + i)));
  }
  out.resize(n);
  return out;
}

simd::Vec vexp(simd::Vec x) { return simd::exp(x); }
simd::Vec vexp_np(simd::Vec x) { return simd::exp_nonpositive(x); }
simd::Vec vtanh(simd::Vec x) { return simd::tanh(x); }

std::vector<float> sweep(float lo, float hi, float step) {
  std::vector<float> xs;
  for (int64_t i = 0;; ++i) {
    const float x = float(double(lo) + double(step) * i);
    if (x > hi) break;
    xs.push_back(x);
  }
  return xs;
}

// Every float in [x - 32 ulp, x + 32 ulp] for each x: dense coverage where the
// argument reduction switches from one power of two to the next.
std::vector<float> around(const std::vector<float>& centres) {
  std::vector<float> xs;
  for (float c : centres) {
    float x = c;
    for (int i = 0; i < 32; ++i) x = std::nextafter(x, -kInf);
    for (int i = 0; i < 65; ++i, x = std::nextafter(x, kInf)) xs.push_back(x);
  }
  return xs;
}

double max_rel_error_exp(const std::vector<float>& xs, float* worst_x,
                         simd::Vec (*f)(simd::Vec) = vexp) {
  const std::vector<float> got = eval_lanes(xs, f);
  double worst = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double want = std::exp(double(xs[i]));
    const double e = std::abs(double(got[i]) - want) / want;
    if (!(e <= worst)) worst = std::isnan(e) ? kInf : e, *worst_x = xs[i];
  }
  return worst;
}

TEST(VecMath, ExpRelativeErrorDenseSweep) {
  float at = 0;
  const double e = max_rel_error_exp(sweep(-80.0f, 80.0f, 1.0f / 8192), &at);
  EXPECT_LT(e, 1e-6) << "worst at x = " << at;
}

TEST(VecMath, ExpAtReductionBoundaries) {
  std::vector<float> centres;
  for (int n = -115; n <= 115; ++n) centres.push_back(float((n + 0.5) * std::log(2.0)));
  centres.push_back(0.0f);
  float at = 0;
  const double e = max_rel_error_exp(around(centres), &at);
  EXPECT_LT(e, 1e-6) << "worst at x = " << at;
}

TEST(VecMath, ExpRandomArguments) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  std::uniform_real_distribution<float> u(-80.0f, 80.0f);
  std::vector<float> xs(1 << 18);
  for (auto& x : xs) x = u(rng);
  float at = 0;
  EXPECT_LT(max_rel_error_exp(xs, &at), 1e-6) << "worst at x = " << at;
}

TEST(VecMath, ExpUnderflowsToExactZero) {
  // -inf must give exactly 0 (a blocked score contributes nothing), as must anything
  // below -87.4 (where float exp would be subnormal).
  std::vector<float> xs = sweep(-1000.0f, -87.41f, 0.01f);
  xs.push_back(-kInf);
  xs.push_back(-std::numeric_limits<float>::max());
  float x = -87.4f;
  for (int i = 0; i < 200; ++i) xs.push_back(x = std::nextafter(x, -kInf));
  const std::vector<float> got = eval_lanes(xs, vexp);
  for (size_t i = 0; i < xs.size(); ++i) {
    ASSERT_EQ(got[i], 0.0f) << "x = " << xs[i];
    ASSERT_FALSE(std::signbit(got[i])) << "x = " << xs[i];
  }
}

TEST(VecMath, ExpSaturatesAboveRange) {
  // Above the float range the result saturates: finite, never inf or NaN.
  std::vector<float> xs = sweep(88.38f, 200.0f, 0.01f);
  xs.push_back(kInf);
  xs.push_back(std::numeric_limits<float>::max());
  const std::vector<float> got = eval_lanes(xs, vexp);
  for (size_t i = 0; i < xs.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << "x = " << xs[i];
    ASSERT_GE(got[i], 2.0e38f) << "x = " << xs[i];
  }
}

TEST(VecMath, ExpOfZeroIsOne) {
  EXPECT_EQ(eval_lanes({0.0f, -0.0f}, vexp), (std::vector<float>{1.0f, 1.0f}));
}

// exp_nonpositive is the softmax's exp (x = score - running max <= 0).
TEST(VecMath, ExpNonpositiveRelativeErrorDenseSweep) {
  float at = 0;
  // Down to -87.3, where exp is still a normal float.
  const double e = max_rel_error_exp(sweep(-87.3f, 0.0f, 1.0f / 8192), &at, vexp_np);
  EXPECT_LT(e, 1e-6) << "worst at x = " << at;
  std::vector<float> centres;
  for (int n = -125; n <= -1; ++n) centres.push_back(float((n + 0.5) * std::log(2.0)));
  centres.push_back(-0.0f);
  EXPECT_LT(max_rel_error_exp(around(centres), &at, vexp_np), 1e-6) << "worst at x = " << at;
}

TEST(VecMath, ExpNonpositiveEndpoints) {
  // The row maximum gets weight exactly 1; blocked scores (-inf) and anything at or
  // below the -88 clamp get exactly 0.
  EXPECT_EQ(eval_lanes({0.0f, -0.0f}, vexp_np), (std::vector<float>{1.0f, 1.0f}));
  std::vector<float> xs = sweep(-1000.0f, -88.0f, 0.01f);
  xs.push_back(-88.0f);
  xs.push_back(-kInf);
  xs.push_back(-std::numeric_limits<float>::max());
  const std::vector<float> got = eval_lanes(xs, vexp_np);
  for (size_t i = 0; i < xs.size(); ++i) ASSERT_EQ(got[i], 0.0f) << "x = " << xs[i];
}

// Lanes are independent: vectors mixing underflowing, saturating and ordinary
// arguments give each lane its own answer.
TEST(VecMath, LanesAreIndependent) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  std::uniform_int_distribution<int> kind(0, 4);
  std::uniform_real_distribution<float> u(-80.0f, 80.0f);
  std::vector<float> xs(4096);
  for (auto& x : xs) {
    switch (kind(rng)) {
      case 0: x = -kInf; break;
      case 1: x = -200.0f; break;
      case 2: x = 500.0f; break;
      default: x = u(rng);
    }
  }
  const std::vector<float> e = eval_lanes(xs, vexp), t = eval_lanes(xs, vtanh);
  std::vector<float> neg(xs.size());  // exp_nonpositive on the same mix, folded to x <= 0
  for (size_t i = 0; i < xs.size(); ++i) neg[i] = -std::abs(xs[i]);
  const std::vector<float> enp = eval_lanes(neg, vexp_np);
  for (size_t i = 0; i < xs.size(); ++i) {
    const double x = xs[i];
    if (x < -87.4) {
      ASSERT_EQ(e[i], 0.0f) << i;
    } else if (x > 88.4) {
      ASSERT_GE(e[i], 2.0e38f) << i;
    } else {
      ASSERT_LT(std::abs(e[i] - std::exp(x)) / std::exp(x), 1e-6) << "x = " << x;
    }
    ASSERT_LT(std::abs(t[i] - std::tanh(x)), 1e-6) << "x = " << x;
    if (neg[i] <= -88.0f) {
      ASSERT_EQ(enp[i], 0.0f) << "x = " << neg[i];
    } else {
      ASSERT_LT(std::abs(enp[i] - std::exp(double(neg[i]))) / std::exp(double(neg[i])), 1e-6)
          << "x = " << neg[i];
    }
  }
}

TEST(VecMath, TanhAbsoluteErrorDenseSweep) {
  const std::vector<float> xs = sweep(-20.0f, 20.0f, 1.0f / 16384);
  const std::vector<float> got = eval_lanes(xs, vtanh);
  double worst = 0;
  float at = 0;
  for (size_t i = 0; i < xs.size(); ++i) {
    const double e = std::abs(double(got[i]) - std::tanh(double(xs[i])));
    if (!(e <= worst)) worst = std::isnan(e) ? kInf : e, at = xs[i];
  }
  EXPECT_LT(worst, 1e-6) << "worst at x = " << at;
}

TEST(VecMath, TanhSmallArgumentsAndLimits) {
  // Tiny arguments (where 1 - exp(-2|x|) cancels) and the saturated tails.
  std::vector<float> xs = around({0.0f, 1e-6f, -1e-6f, 1e-3f, -1e-3f, 0.5f, -0.5f});
  for (float x : {9.0f, 20.0f, 50.0f, 1e10f, 3e38f, kInf}) xs.push_back(x), xs.push_back(-x);
  const std::vector<float> got = eval_lanes(xs, vtanh);
  for (size_t i = 0; i < xs.size(); ++i) {
    ASSERT_LT(std::abs(double(got[i]) - std::tanh(double(xs[i]))), 1e-6) << "x = " << xs[i];
    ASSERT_LE(std::abs(got[i]), 1.0f) << "x = " << xs[i];
  }
  EXPECT_EQ(eval_lanes({kInf, -kInf, 0.0f}, vtanh), (std::vector<float>{1.0f, -1.0f, 0.0f}));
}

TEST(VecMath, TanhIsOdd) {
  // Softcap relies on tanh(-x) == -tanh(x) exactly: no bias between signs.
  const std::vector<float> xs = sweep(0.0f, 12.0f, 1.0f / 1024);
  std::vector<float> neg(xs.size());
  for (size_t i = 0; i < xs.size(); ++i) neg[i] = -xs[i];
  const std::vector<float> a = eval_lanes(xs, vtanh), b = eval_lanes(neg, vtanh);
  for (size_t i = 0; i < xs.size(); ++i) ASSERT_EQ(a[i], -b[i]) << "x = " << xs[i];
}

// The header promises about 2e-7 relative error for x in [-87.3, 88.7]. Today exp is 0
// for x in [-87.33, -86.99] (pow2_int(-127) has a zero exponent field, so 2^(n-1)
// flushes to 0) and clamps at 88.376 (exp(88.7) comes out 27% low).
// Disabled until src/simd/vec_math.h is fixed; see the test report.
TEST(VecMath, ExpDocumentedRange) {
  float at = 0;
  EXPECT_LT(max_rel_error_exp(sweep(-87.33f, 88.72f, 1.0f / 1024), &at), 1e-6) << "x = " << at;
}

}  // namespace
