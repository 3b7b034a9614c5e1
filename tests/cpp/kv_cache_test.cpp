// The KV cache: its fp16/bf16 converters against a float64 rounding reference, the
// vector loads against the scalar converters, and attend() against float64 attention
// over the stored (rounded) rows and over the original fp32 rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "adaattn/kv_cache.h"
#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "simd/half_float.h"
#include "simd/vec.h"
#include "test_util.h"

namespace {

using attn::KVCache;
using attn::StoragePrecision;
using attn::simd::bf16_to_float;
using attn::simd::bits_float;
using attn::simd::float_bits;
using attn::simd::float_to_bf16;
using attn::simd::float_to_fp16;
using attn::simd::fp16_to_float;

// A 16-bit float format decoded from its fields in double arithmetic, independent of the
// code under test.
struct Format {
  int mant_bits;
  int bias;
  uint16_t inf_code;  // all-ones exponent, zero mantissa
  double decode(uint32_t code) const {  // code without sign; inf_code gives 2^(emax+1)
    const int e = static_cast<int>(code >> mant_bits);
    const double m = code & ((1u << mant_bits) - 1u);
    if (e == 0) return std::ldexp(m, 1 - bias - mant_bits);
    return std::ldexp(1.0 + std::ldexp(m, -mant_bits), e - bias);
  }
};
constexpr Format kFp16{10, 15, 0x7c00};
constexpr Format kBf16{7, 127, 0x7f80};

// Round-to-nearest-even of a finite or infinite x into the format, by search over the
// table of its non-negative finite values plus the first value past them (taken as inf,
// as IEEE rounds with an unbounded exponent and then overflows).
class RoundingReference {
 public:
  explicit RoundingReference(const Format& f) : f_(f) {
    for (uint32_t c = 0; c <= f.inf_code; ++c) values_.push_back(f.decode(c));
  }
  uint16_t round(float x) const {
    const uint16_t sign = std::signbit(x) ? 0x8000 : 0;
    const double a = std::abs(double(x));
    if (a >= values_.back()) return sign | f_.inf_code;
    const size_t i = std::upper_bound(values_.begin(), values_.end(), a) - values_.begin() - 1;
    const double below = a - values_[i], above = values_[i + 1] - a;
    size_t code = i;
    if (above < below || (above == below && (i & 1))) code = i + 1;
    return static_cast<uint16_t>(sign | code);
  }

 private:
  Format f_;
  std::vector<double> values_;
};

bool is_nan_code(uint16_t h, const Format& f) { return (h & 0x7fff) > f.inf_code; }

// Floats that probe a format's rounding: every value, every midpoint between neighbours
// (ties) and the floats either side of each, with both signs, plus random bit patterns
// and the special values.
std::vector<float> rounding_probes(const Format& f, std::mt19937_64& rng) {
  std::vector<float> xs;
  for (uint32_t c = 0; c < f.inf_code; ++c) {
    const float lo = static_cast<float>(f.decode(c));
    const float mid = static_cast<float>((f.decode(c) + f.decode(c + 1)) / 2);
    EXPECT_EQ(double(mid), (f.decode(c) + f.decode(c + 1)) / 2) << "midpoint not a float";
    for (float x : {lo, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, FLT_MAX)}) {
      xs.push_back(x);
      xs.push_back(-x);
    }
  }
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 1000000; ++i) xs.push_back(bits_float(bits(rng)));
  for (float x : {0.0f, -0.0f, FLT_MIN, FLT_MAX, -FLT_MAX, FLT_TRUE_MIN, -FLT_TRUE_MIN,
                  testutil::kInf, -testutil::kInf, 65504.0f, 65519.99f, 65520.0f, 1e30f,
                  std::ldexp(1.0f, -25), std::ldexp(1.0f, -24), std::ldexp(3.0f, -26)}) {
    xs.push_back(x);
  }
  return xs;
}

void check_rounding(const Format& f, const std::function<uint16_t(float)>& convert) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  const RoundingReference ref(f);
  int64_t mismatches = 0, nans = 0;
  for (float x : rounding_probes(f, rng)) {
    const uint16_t got = convert(x);
    if (std::isnan(x)) {
      ++nans;
      EXPECT_TRUE(is_nan_code(got, f)) << std::hex << float_bits(x) << " -> " << got;
      EXPECT_EQ(got >> 15, float_bits(x) >> 31) << "NaN sign";
      continue;
    }
    const uint16_t want = ref.round(x);
    if (got != want && ++mismatches <= 10) {
      ADD_FAILURE() << std::hexfloat << x << " (bits " << std::hex << float_bits(x) << "): got "
                    << got << ", want " << want;
    }
  }
  EXPECT_EQ(mismatches, 0);
  EXPECT_GT(nans, 0);  // random bit patterns include NaNs
}

TEST(HalfFloat, Fp16RoundsToNearestEven) { check_rounding(kFp16, float_to_fp16); }
TEST(HalfFloat, Bf16RoundsToNearestEven) { check_rounding(kBf16, float_to_bf16); }

TEST(HalfFloat, RoundingEdgeCases) {
  EXPECT_EQ(float_to_fp16(65504.0f), 0x7bff);
  EXPECT_EQ(float_to_fp16(65519.99f), 0x7bff);
  EXPECT_EQ(float_to_fp16(65520.0f), 0x7c00);  // tie with 2^16 goes to even: inf
  EXPECT_EQ(float_to_fp16(-1e30f), 0xfc00);
  EXPECT_EQ(float_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // tie between 0 and 2^-24
  EXPECT_EQ(float_to_fp16(std::nextafter(std::ldexp(1.0f, -25), 1.0f)), 0x0001);
  EXPECT_EQ(float_to_fp16(std::ldexp(3.0f, -25)), 0x0002);  // tie between 1 and 2 ulps: even
  EXPECT_EQ(float_to_fp16(std::ldexp(1023.5f, -24)), 0x0400);  // rounds up into the normals
  EXPECT_EQ(float_to_fp16(-0.0f), 0x8000);
  EXPECT_EQ(float_to_bf16(bits_float(0x3f808000u)), 0x3f80);  // tie, even stays
  EXPECT_EQ(float_to_bf16(bits_float(0x3f818000u)), 0x3f82);  // tie, odd rounds up
  EXPECT_EQ(float_to_bf16(FLT_MAX), 0x7f80);                  // past the largest bf16: inf
  EXPECT_EQ(float_to_bf16(bits_float(0x7f7f7fffu)), 0x7f7f);
  EXPECT_EQ(float_to_bf16(FLT_TRUE_MIN), 0x0000);
  // NaNs whose payload sits only in the dropped bits must not become inf.
  EXPECT_TRUE(is_nan_code(float_to_fp16(bits_float(0x7f800001u)), kFp16));
  EXPECT_TRUE(is_nan_code(float_to_bf16(bits_float(0xff800001u)), kBf16));
  EXPECT_EQ(float_to_bf16(bits_float(0xff800001u)) >> 15, 1);
}

void check_decode(const Format& f, const std::function<float(uint16_t)>& decode) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float got = decode(static_cast<uint16_t>(h));
    const uint32_t mag = h & 0x7fff;
    ASSERT_EQ(std::signbit(got), (h >> 15) != 0) << std::hex << h;
    if (mag > f.inf_code) {
      ASSERT_TRUE(std::isnan(got)) << std::hex << h;
      // The payload is kept; fp16 NaNs come back quiet (as F16C's conversion makes them).
      const uint32_t quiet = 0x400000u;
      const uint32_t payload = (mag & ((1u << f.mant_bits) - 1u)) << (23 - f.mant_bits);
      ASSERT_EQ(float_bits(got) & 0x7fffffu & ~quiet, payload & ~quiet) << std::hex << h;
      if (f.mant_bits == 10) ASSERT_TRUE(float_bits(got) & quiet) << std::hex << h;
    } else if (mag == f.inf_code) {
      ASSERT_TRUE(std::isinf(got)) << std::hex << h;
    } else {
      ASSERT_EQ(std::abs(double(got)), f.decode(mag)) << std::hex << h;
    }
  }
}

TEST(HalfFloat, Fp16DecodesExactly) { check_decode(kFp16, fp16_to_float); }
TEST(HalfFloat, Bf16DecodesExactly) { check_decode(kBf16, bf16_to_float); }

// The backend's vector loads widen exactly as the scalar converters do, every code.
TEST(HalfFloat, VectorLoadsMatchScalar) {
  using namespace attn::simd;
  std::vector<uint16_t> codes(0x10000);
  for (uint32_t h = 0; h < 0x10000; ++h) codes[h] = static_cast<uint16_t>(h);
  std::vector<float> lanes(kLanes);
  for (uint32_t h = 0; h < 0x10000; h += kLanes) {
    store(lanes.data(), load_fp16(codes.data() + h));
    for (int i = 0; i < kLanes; ++i) {
      ASSERT_EQ(float_bits(lanes[i]), float_bits(fp16_to_float(codes[h + i]))) << std::hex << h + i;
    }
    store(lanes.data(), load_bf16(codes.data() + h));
    for (int i = 0; i < kLanes; ++i) {
      ASSERT_EQ(float_bits(lanes[i]), float_bits(bf16_to_float(codes[h + i]))) << std::hex << h + i;
    }
    // The short widening, for the codes it promises: every finite half.
    store(lanes.data(), load_fp16_ordinary(codes.data() + h));
    for (int i = 0; i < kLanes; ++i) {
      if (((h + i) & 0x7c00u) == 0x7c00u) continue;
      ASSERT_EQ(float_bits(lanes[i]), float_bits(fp16_to_float(codes[h + i]))) << std::hex << h + i;
    }
  }
}

// The pair loads give the same values in the order and scale the backend declares:
// bf16 every code, fp16 every finite code (what load2_fp16_finite promises).
TEST(HalfFloat, PairLoadsMatchScalar) {
  using namespace attn::simd;
  const int group = 2 * kLanes;
  std::vector<uint16_t> codes(0x10000);
  for (uint32_t h = 0; h < 0x10000; ++h) codes[h] = static_cast<uint16_t>(h);
  std::vector<float> lanes(group);
  // Stored element i of a group is at position lane_of(i) of [lo | hi].
  auto lane_of = [&](int i) { return kHalfPairsInterleaved ? (i % 2) * kLanes + i / 2 : i; };
  for (uint32_t h = 0; h < 0x10000; h += group) {
    Vec lo, hi;
    load2_bf16(codes.data() + h, lo, hi);
    store(lanes.data(), lo);
    store(lanes.data() + kLanes, hi);
    for (int i = 0; i < group; ++i) {
      ASSERT_EQ(float_bits(lanes[lane_of(i)]), float_bits(bf16_to_float(codes[h + i]))) << std::hex << h + i;
    }
    load2_fp16_finite(codes.data() + h, lo, hi);
    store(lanes.data(), lo);
    store(lanes.data() + kLanes, hi);
    for (int i = 0; i < group; ++i) {
      if (((h + i) & 0x7c00u) == 0x7c00u) continue;
      const double want = double(fp16_to_float(codes[h + i])) * double(kFp16PairUnit);
      ASSERT_EQ(double(lanes[lane_of(i)]), want) << std::hex << h + i;
      ASSERT_EQ(std::signbit(lanes[lane_of(i)]), (h + i) >> 15 != 0) << std::hex << h + i;
    }
  }
}

// ---- attend() ----

float stored(StoragePrecision p, float x) {
  switch (p) {
    case StoragePrecision::kFp32: return x;
    case StoragePrecision::kFp16: return fp16_to_float(float_to_fp16(x));
    case StoragePrecision::kBf16: return bf16_to_float(float_to_bf16(x));
  }
  return x;
}

// Float64 softmax(scale q kᵀ) v per head; k [n][heads][d], v [n][heads][dv].
std::vector<double> reference_attend(int heads, int d, int dv, int64_t n, int64_t queries,
                                     const std::vector<float>& q, const std::vector<float>& k,
                                     const std::vector<float>& v, double scale) {
  std::vector<double> out(static_cast<size_t>(queries * heads * dv), 0.0);
  std::vector<double> s(static_cast<size_t>(n));
  for (int64_t t = 0; t < queries; ++t) {
    for (int h = 0; h < heads; ++h) {
      if (n == 0) continue;
      double top = -INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        double dot = 0;
        for (int c = 0; c < d; ++c) dot += double(q[(t * heads + h) * d + c]) * k[(j * heads + h) * d + c];
        s[j] = dot * scale;
        top = std::max(top, s[j]);
      }
      double sum = 0;
      double* o = out.data() + (t * heads + h) * dv;
      for (int64_t j = 0; j < n; ++j) {
        const double w = std::exp(s[j] - top);
        sum += w;
        for (int c = 0; c < dv; ++c) o[c] += w * v[(j * heads + h) * dv + c];
      }
      for (int c = 0; c < dv; ++c) o[c] /= sum;
    }
  }
  return out;
}

struct Case {
  int heads, d, dv;
  int64_t n;
  int64_t queries;
};

std::string describe(const Case& c, StoragePrecision p, bool pooled) {
  return std::string(attn::storage_precision_name(p)) + " heads=" + std::to_string(c.heads) +
         " d=" + std::to_string(c.d) + " dv=" + std::to_string(c.dv) + " n=" +
         std::to_string(c.n) + " queries=" + std::to_string(c.queries) +
         (pooled ? " pool" : " no pool");
}

// Error against the unrounded rows: about the format's unit roundoff (2^-11, 2^-8) times
// a small factor (measured worst over many seeds: fp16 1.0e-3, bf16 9.4e-3 for d >= 16).
// With d = 1 nothing averages the key's rounding in q·k and the output, a mean over
// ~1000 rows, is small beside its inputs: worst measured fp16 3.0e-3, bf16 2.4e-2.
double storage_tolerance(StoragePrecision p, int d) {
  const double wide = d < 4 ? 2.5 : 1.0;
  switch (p) {
    case StoragePrecision::kFp32: return 1e-5;
    case StoragePrecision::kFp16: return 2e-3 * wide;
    case StoragePrecision::kBf16: return 1.5e-2 * wide;
  }
  return 0;
}

// Appends the case's rows in a few uneven steps, attends, and checks against both references.
void check_case(const Case& c, StoragePrecision p, attn::ThreadPool* pool, std::mt19937_64& rng,
                std::optional<float> scale = {}) {
  SCOPED_TRACE(describe(c, p, pool != nullptr));
  const auto k = testutil::randn(rng, c.n * c.heads * c.d);
  const auto v = testutil::randn(rng, c.n * c.heads * c.dv);
  const auto q = testutil::randn(rng, c.queries * c.heads * c.d);
  KVCache cache(c.heads, c.d, c.dv, p);
  std::uniform_int_distribution<int64_t> step(1, std::max<int64_t>(1, c.n / 3));
  for (int64_t done = 0; done < c.n;) {
    const int64_t rows = std::min(c.n - done, step(rng));
    cache.append(rows, k.data() + done * c.heads * c.d, v.data() + done * c.heads * c.dv);
    done += rows;
  }
  ASSERT_EQ(cache.size(), c.n);
  testutil::Guarded<float> out(c.queries * c.heads * c.dv, testutil::kNaN);
  out.fill(-7.0f);
  cache.attend(c.queries, q.data(), out.data(), scale, pool);
  EXPECT_TRUE(out.guards_intact());

  std::vector<float> ks(k), vs(v);
  for (auto& x : ks) x = stored(p, x);
  for (auto& x : vs) x = stored(p, x);
  const double sc = scale ? double(*scale) : 1.0 / std::sqrt(double(c.d));
  const auto exact = testutil::rel_error(
      out.data(), reference_attend(c.heads, c.d, c.dv, c.n, c.queries, q, ks, vs, sc));
  EXPECT_LT(exact.value, 1e-5) << "vs the stored rows, worst at " << exact.worst;
  const auto original = testutil::rel_error(
      out.data(), reference_attend(c.heads, c.d, c.dv, c.n, c.queries, q, k, v, sc));
  EXPECT_LT(original.value, storage_tolerance(p, c.d)) << "vs the fp32 rows, worst at " << original.worst;
}

class KVCacheAttend : public ::testing::TestWithParam<StoragePrecision> {};

TEST_P(KVCacheAttend, MatchesFloat64ReferenceOverShapes) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::ThreadPool pool(3);
  const int dvs[] = {5, 33, 64};
  int index = 0;
  for (int heads : {1, 3, 8}) {
    for (int d : {1, 17, 64}) {
      for (int64_t n : {1, 3, 1037}) {
        const Case c{heads, d, dvs[index++ % 3], n, n == 3 ? 6 : (n == 1 ? 1 : 3)};
        check_case(c, GetParam(), nullptr, rng);
        check_case(c, GetParam(), &pool, rng);
      }
    }
  }
}

// One head and many keys: the keys are split over the workers and the partial softmax
// states merged; the result must not depend on it.
TEST_P(KVCacheAttend, SplitsKeysWhenHeadsAreFew) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::ThreadPool pool(3);
  for (int64_t queries : {1, 5}) {
    check_case({1, 64, 64, 5000, queries}, GetParam(), &pool, rng);
    check_case({2, 17, 9, 3001, queries}, GetParam(), &pool, rng);
  }
}

TEST_P(KVCacheAttend, ExplicitScale) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  check_case({3, 16, 16, 200, 2}, GetParam(), nullptr, rng, 0.4f);
  check_case({3, 16, 16, 200, 2}, GetParam(), nullptr, rng, -0.1f);
}

// Empty cache gives zeros; clear() forgets rows, keeps memory, and the cache is reusable.
TEST_P(KVCacheAttend, EmptyAndCleared) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  KVCache cache(2, 8, 4, GetParam());
  const auto q = testutil::randn(rng, 2 * 8);
  std::vector<float> out(2 * 4, 5.0f);
  cache.attend(1, q.data(), out.data());
  for (float x : out) EXPECT_EQ(x, 0.0f);

  const auto k = testutil::randn(rng, 10 * 2 * 8), v = testutil::randn(rng, 10 * 2 * 4);
  cache.append(10, k.data(), v.data());
  const int64_t bytes = cache.memory_bytes();
  cache.clear();
  EXPECT_EQ(cache.size(), 0);
  EXPECT_EQ(cache.memory_bytes(), bytes);
  cache.attend(1, q.data(), out.data());
  for (float x : out) EXPECT_EQ(x, 0.0f);

  cache.append(1, k.data() + 16, v.data() + 8);  // one row: output is that row's values
  cache.attend(1, q.data(), out.data());
  for (int h = 0; h < 2; ++h) {
    for (int c = 0; c < 4; ++c) EXPECT_EQ(out[h * 4 + c], stored(GetParam(), v[8 + h * 4 + c]));
  }
}

// Causal: the queries are the last rows appended; query t sees keys j <= n - queries + t.
// Checked per query against the float64 reference over its visible prefix, with key splits
// (one head, a pool) and query blocks larger than one (up to 9 queries).
TEST_P(KVCacheAttend, CausalQueriesSeeTheirPrefix) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::ThreadPool pool(3);
  for (const Case c : {Case{2, 17, 9, 40, 9}, Case{1, 64, 64, 3000, 5}, Case{3, 8, 8, 3, 3}, Case{1, 16, 8, 1, 1}}) {
    SCOPED_TRACE(describe(c, GetParam(), true));
    const auto k = testutil::randn(rng, c.n * c.heads * c.d);
    const auto v = testutil::randn(rng, c.n * c.heads * c.dv);
    const auto q = testutil::randn(rng, c.queries * c.heads * c.d);
    KVCache cache(c.heads, c.d, c.dv, GetParam());
    cache.append(c.n, k.data(), v.data());
    std::vector<float> ks(k), vs(v);
    for (auto& x : ks) x = stored(GetParam(), x);
    for (auto& x : vs) x = stored(GetParam(), x);
    for (attn::ThreadPool* p : {static_cast<attn::ThreadPool*>(nullptr), &pool}) {
      std::vector<float> out(c.queries * c.heads * c.dv, -7.0f);
      cache.attend(c.queries, q.data(), out.data(), {}, p, /*causal=*/true);
      for (int64_t t = 0; t < c.queries; ++t) {
        const std::vector<float> qt(q.begin() + t * c.heads * c.d, q.begin() + (t + 1) * c.heads * c.d);
        const auto want = reference_attend(c.heads, c.d, c.dv, c.n - c.queries + t + 1, 1, qt, ks, vs,
                                           1.0 / std::sqrt(double(c.d)));
        const auto err = testutil::rel_error(out.data() + t * c.heads * c.dv, want);
        EXPECT_LT(err.value, 1e-5) << "query " << t << ", worst at " << err.worst;
      }
    }
  }
  std::vector<float> q(2 * 17), out(2 * 9);
  EXPECT_THROW(KVCache(2, 17, 9, GetParam()).attend(1, q.data(), out.data(), {}, nullptr, true), attn::AttnError);
}

// convert() re-stores the rows: widening keeps the stored values exactly, narrowing rounds,
// and later appends and attends use the new precision.
TEST_P(KVCacheAttend, ConvertKeepsRowsAndSwitchesPrecision) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  const int heads = 2, d = 16, dv = 8;
  const auto k = testutil::randn(rng, 30 * heads * d), v = testutil::randn(rng, 30 * heads * dv);
  const auto q = testutil::randn(rng, heads * d);
  for (StoragePrecision to : {StoragePrecision::kFp32, StoragePrecision::kFp16, StoragePrecision::kBf16}) {
    SCOPED_TRACE(std::string(attn::storage_precision_name(GetParam())) + " -> " + attn::storage_precision_name(to));
    KVCache cache(heads, d, dv, GetParam());
    cache.append(20, k.data(), v.data());
    cache.convert(to);
    EXPECT_EQ(cache.precision(), to);
    EXPECT_EQ(cache.size(), 20);
    EXPECT_EQ(cache.memory_bytes(), cache.capacity() * heads * (d + dv) * attn::storage_bytes(to));
    cache.append(10, k.data() + 20 * heads * d, v.data() + 20 * heads * dv);
    std::vector<float> ks(k), vs(v);
    for (size_t i = 0; i < ks.size(); ++i) {
      ks[i] = i < size_t(20 * heads * d) ? stored(to, stored(GetParam(), k[i])) : stored(to, k[i]);
    }
    for (size_t i = 0; i < vs.size(); ++i) {
      vs[i] = i < size_t(20 * heads * dv) ? stored(to, stored(GetParam(), v[i])) : stored(to, v[i]);
    }
    std::vector<float> out(heads * dv);
    cache.attend(1, q.data(), out.data());
    const auto err = testutil::rel_error(out.data(), reference_attend(heads, d, dv, 30, 1, q, ks, vs, 0.25));
    EXPECT_LT(err.value, 1e-5) << "worst at " << err.worst;
  }
}

INSTANTIATE_TEST_SUITE_P(Precisions, KVCacheAttend,
                         ::testing::Values(StoragePrecision::kFp32, StoragePrecision::kFp16,
                                           StoragePrecision::kBf16),
                         [](const auto& info) {
                           return std::string(attn::storage_precision_name(info.param));
                         });

TEST(KVCache, MemoryBytesHalvesForHalfPrecision) {
  const int heads = 3, d = 17, dv = 9;
  std::vector<float> k(100 * heads * d, 0.5f), v(100 * heads * dv, 0.25f);
  int64_t bytes[3];
  int i = 0;
  for (auto p : {StoragePrecision::kFp32, StoragePrecision::kFp16, StoragePrecision::kBf16}) {
    KVCache cache(heads, d, dv, p, 64);
    EXPECT_EQ(cache.capacity(), 64);
    EXPECT_EQ(cache.memory_bytes(), int64_t{64} * heads * (d + dv) * attn::storage_bytes(p));
    for (int step = 0; step < 10; ++step) cache.append(37, k.data(), v.data());
    EXPECT_EQ(cache.size(), 370);
    EXPECT_EQ(cache.memory_bytes(), cache.capacity() * heads * (d + dv) * attn::storage_bytes(p));
    bytes[i++] = cache.memory_bytes();
  }
  EXPECT_EQ(bytes[1] * 2, bytes[0]);
  EXPECT_EQ(bytes[2] * 2, bytes[0]);
}

const char* kind_name(attn::ErrorKind k) {
  switch (k) {
    case attn::ErrorKind::kType: return "kType";
    case attn::ErrorKind::kRange: return "kRange";
    case attn::ErrorKind::kState: return "kState";
  }
  return "?";
}

void expect_error(const std::function<void()>& f, attn::ErrorKind kind, const std::string& param) {
  try {
    f();
  } catch (const attn::AttnError& e) {
    EXPECT_EQ(e.param(), param) << e.what();
    EXPECT_STREQ(kind_name(e.kind()), kind_name(kind)) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind(param + ": ", 0), 0u) << e.what();
    return;
  }
  ADD_FAILURE() << "expected AttnError(" << param << "), nothing was thrown";
}

TEST(KVCache, ValidationNamesTheParameter) {
  using attn::ErrorKind;
  const auto fp16 = StoragePrecision::kFp16;
  expect_error([&] { KVCache(0, 4, 4, fp16); }, ErrorKind::kRange, "heads");
  expect_error([&] { KVCache(2, 0, 4, fp16); }, ErrorKind::kRange, "head_dim");
  expect_error([&] { KVCache(2, 4, -1, fp16); }, ErrorKind::kRange, "value_dim");
  expect_error([&] { KVCache(2, 4, 4, static_cast<StoragePrecision>(7)); }, ErrorKind::kRange,
               "precision");
  expect_error([&] { KVCache(2, 4, 4, fp16, -1); }, ErrorKind::kRange, "capacity_hint");
  expect_error([&] { KVCache(1 << 30, 1 << 30, 4, fp16, 1 << 20); }, ErrorKind::kRange, "rows");

  KVCache cache(2, 4, 4, fp16);
  std::vector<float> x(64, 1.0f), out(64);
  expect_error([&] { cache.append(-1, x.data(), x.data()); }, ErrorKind::kRange, "rows");
  expect_error([&] { cache.append(1, nullptr, x.data()); }, ErrorKind::kType, "k");
  expect_error([&] { cache.append(1, x.data(), nullptr); }, ErrorKind::kType, "v");
  cache.append(0, nullptr, nullptr);  // nothing to read
  cache.append(2, x.data(), x.data());
  expect_error([&] { cache.attend(-1, x.data(), out.data()); }, ErrorKind::kRange, "queries");
  expect_error([&] { cache.attend(1, nullptr, out.data()); }, ErrorKind::kType, "q");
  expect_error([&] { cache.attend(1, x.data(), nullptr); }, ErrorKind::kType, "out");
  expect_error([&] { cache.attend(1, x.data(), out.data(), testutil::kNaN); }, ErrorKind::kRange,
               "scale");
  // scale * log2(e) overflows: zeros in q would become NaN (found by tests/fuzz/kv_cache_fuzz).
  expect_error([&] { cache.attend(1, x.data(), out.data(), FLT_MAX); }, ErrorKind::kRange, "scale");
  // Scales that do not overflow still work (with queries small enough for the scores to fit).
  std::vector<float> tiny(8, 1e-38f);
  cache.attend(1, tiny.data(), out.data(), 2e38f);
  for (int c = 0; c < 8; ++c) EXPECT_FLOAT_EQ(out[size_t(c)], 1.0f);
  EXPECT_EQ(cache.size(), 2);
}

}  // namespace

// fp16 rows with an infinite half take the general widening, finite rows (subnormal halves
// included) the fast one; both give the stored values' attention exactly.
TEST(KVCache, Fp16WideningPathsAgree) {
  const int heads = 2, d = 8, dv = 8;
  std::vector<float> k(3 * heads * d), v(3 * heads * dv), q(heads * d, 0.25f);
  for (size_t i = 0; i < k.size(); ++i) k[i] = 0.1f * float(i % 7) - 0.3f;
  for (size_t i = 0; i < v.size(); ++i) v[i] = float(i % 5) - 2.0f;
  v[3] = 1e-6f;  // a subnormal half (below 2^-14): still the fast path
  attn::KVCache cache(heads, d, dv, StoragePrecision::kFp16);
  std::vector<float> ks(k.size()), vs(v.size());
  for (size_t i = 0; i < k.size(); ++i) ks[i] = stored(StoragePrecision::kFp16, k[i]);
  for (size_t i = 0; i < v.size(); ++i) vs[i] = stored(StoragePrecision::kFp16, v[i]);
  for (bool with_inf : {false, true}) {
    cache.clear();
    cache.append(3, k.data(), v.data());
    std::vector<float> out(heads * dv);
    cache.attend(1, q.data(), out.data());
    const auto want = reference_attend(heads, d, dv, 3, 1, q, ks, vs, 1.0 / std::sqrt(double(d)));
    for (size_t i = 0; i < out.size(); ++i) EXPECT_NEAR(out[i], want[i], 1e-5 * (1 + std::fabs(want[i]))) << i;
    if (with_inf) {  // a key of +inf in head 1, row 2: head 1's scores become inf/NaN, head 0 stays exact
      std::vector<float> k2(heads * d, 0.0f), v2(heads * dv, 1.0f);
      k2[d] = INFINITY;
      cache.append(1, k2.data(), v2.data());
      cache.attend(1, q.data(), out.data());
      std::vector<float> k4 = ks, v4 = vs;
      k4.insert(k4.end(), k2.begin(), k2.end());
      v4.insert(v4.end(), v2.begin(), v2.end());
      const auto want4 = reference_attend(heads, d, dv, 4, 1, q, k4, v4, 1.0 / std::sqrt(double(d)));
      for (int c = 0; c < dv; ++c) EXPECT_NEAR(out[c], want4[c], 1e-5 * (1 + std::fabs(want4[c]))) << c;
    }
  }
}
