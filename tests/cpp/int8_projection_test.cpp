// The int8 projection (gemm/int8_projection.h) and the fp16 / int8 forms of the layers'
// projections: the quantization codes against a scalar recomputation, the integer kernel
// exactly against int64 sums of those codes (odd shapes: 1, 3, 17, 1000+ rows, depths that
// are no multiple of 8 or 16), the float output against float64 within the rounding bound
// the scales give, zero rows and channels (scale 0, never NaN), threads, bad input; then
// the multi-head and ASAM layers quantized against their float32 selves, bytes and saving.
#include "gemm/int8_projection.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <memory>

#include "asam/asam_layer.h"
#include "gemm/projection.h"
#include "multihead/multihead_attention.h"
#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "simd/half_float.h"
#include "test_util.h"

namespace {

using attn::Int8Weight;
using attn::WeightPrecision;

std::vector<float> uniform(std::mt19937_64& rng, size_t n, float bound) {
  std::uniform_real_distribution<float> dist(-bound, bound);
  std::vector<float> x(n);
  for (auto& e : x) e = dist(rng);
  return x;
}

// Codes and scale of one vector, recomputed here: s = max|x| / 127, q = round(x * 127 / max).
struct Codes {
  std::vector<int> q;
  float scale = 0;
};
Codes codes_of(const float* x, int n) {
  float m = 0;
  for (int i = 0; i < n; ++i) m = std::max(m, std::fabs(x[i]));
  Codes c;
  c.q.assign(size_t(n), 0);
  if (m == 0) return c;
  c.scale = m / 127.0f;
  for (int i = 0; i < n; ++i) c.q[size_t(i)] = int(std::nearbyint(x[i] * (127.0f / m)));
  return c;
}

TEST(Int8Projection, WeightAndRowCodesMatchTheScalarRule) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  for (int k : {1, 3, 17, 100}) {
    for (int n : {1, 5, 33}) {
      auto w = testutil::randn(rng, size_t(n) * k);
      for (int i = 0; i < k; ++i) w[size_t(n / 2) * k + i] = 0.0f;  // a zero channel
      const Int8Weight q = attn::quantize_weight_int8(n, k, w);
      for (int c = 0; c < n; ++c) {
        const Codes ref = codes_of(w.data() + size_t(c) * k, k);
        ASSERT_EQ(q.scales[size_t(c)], ref.scale) << "channel " << c;
        for (int i = 0; i < k; ++i) {
          ASSERT_EQ(int(q.at(c, i)), ref.q[size_t(i)]) << "k " << k << " n " << n << " c " << c << " i " << i;
          ASSERT_LE(std::abs(ref.q[size_t(i)]), 127);
        }
      }
      const auto x = testutil::randn(rng, size_t(3) * k, 4.0f);
      const attn::QuantizedRows rows = attn::quantize_rows_int8(3, k, x.data());
      for (int r = 0; r < 3; ++r) {
        const Codes ref = codes_of(x.data() + size_t(r) * k, k);
        ASSERT_EQ(rows.scales[size_t(r)], ref.scale);
        for (int i = 0; i < k; ++i) ASSERT_EQ(int(rows.values[size_t(r) * k + i]), ref.q[size_t(i)]);
      }
    }
  }
}

TEST(Int8Projection, IntegerKernelIsExact) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  struct Shape { int rows, k, n; };
  for (const Shape s : {Shape{1, 1, 1}, Shape{3, 3, 5}, Shape{17, 17, 33}, Shape{1029, 515, 67}, Shape{5, 1000, 130},
                        Shape{64, 31, 16}, Shape{7, 2, 47}}) {
    const auto w = testutil::randn(rng, size_t(s.n) * s.k);
    const auto x = testutil::randn(rng, size_t(s.rows) * s.k, 3.0f);
    const Int8Weight q = attn::quantize_weight_int8(s.n, s.k, w);
    const attn::QuantizedRows qx = attn::quantize_rows_int8(s.rows, s.k, x.data());
    testutil::Guarded<int32_t> acc(size_t(s.rows) * s.n, -777);
    attn::int8_matmul_i32(q, s.rows, x.data(), acc.data());
    for (int r = 0; r < s.rows; ++r) {
      for (int c = 0; c < s.n; ++c) {
        int64_t sum = 0;
        for (int i = 0; i < s.k; ++i) sum += int64_t{qx.values[size_t(r) * s.k + i]} * q.at(c, i);
        ASSERT_EQ(acc[size_t(r) * s.n + c], sum) << s.rows << "x" << s.k << "x" << s.n << " at " << r << "," << c;
      }
    }
    EXPECT_TRUE(acc.guards_intact());
  }
}

// |y - ref| <= s_x s_w sum_k (|q_x| / 2 + |q_w| / 2 + 1/4), plus float32 rounding of the
// sums and scales.
TEST(Int8Projection, OutputWithinTheRoundingBoundOfItsScales) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  struct Shape { int rows, k, n; };
  for (const Shape s : {Shape{1, 1, 1}, Shape{3, 3, 5}, Shape{17, 17, 33}, Shape{1029, 131, 67}, Shape{33, 512, 512}}) {
    for (int threads : {0, 2}) {
      const auto w = testutil::randn(rng, size_t(s.n) * s.k, 1.0f / std::sqrt(float(s.k)));
      const auto bias = testutil::randn(rng, size_t(s.n), 0.5f);
      const auto x = testutil::randn(rng, size_t(s.rows) * s.k);
      const Int8Weight q = attn::quantize_weight_int8(s.n, s.k, w);
      const attn::QuantizedRows qx = attn::quantize_rows_int8(s.rows, s.k, x.data());
      std::unique_ptr<attn::ThreadPool> pool;
      if (threads > 0) pool = std::make_unique<attn::ThreadPool>(threads);
      testutil::Guarded<float> y(size_t(s.rows) * s.n, -5.0f);
      attn::project_rows_int8(q, bias, s.rows, x.data(), y.data(), pool.get());
      EXPECT_TRUE(y.guards_intact());
      double err2 = 0, ref2 = 0;
      for (int r = 0; r < s.rows; ++r) {
        for (int c = 0; c < s.n; ++c) {
          double ref = bias[size_t(c)], bound = 0, magnitude = std::fabs(bias[size_t(c)]);
          for (int i = 0; i < s.k; ++i) {
            const double xi = x[size_t(r) * s.k + i], wi = w[size_t(c) * s.k + i];
            ref += xi * wi;
            magnitude += std::fabs(xi * wi);
            bound += std::abs(qx.values[size_t(r) * s.k + i]) / 2.0 + std::abs(q.at(c, i)) / 2.0 + 0.25;
          }
          bound *= double(qx.scales[size_t(r)]) * q.scales[size_t(c)];
          const double got = y[size_t(r) * s.n + c];
          ASSERT_LE(std::fabs(got - ref), bound + 1e-6 * magnitude + 1e-6)
              << s.rows << "x" << s.k << "x" << s.n << " threads " << threads << " at " << r << "," << c;
          err2 += (got - ref) * (got - ref), ref2 += ref * ref;
        }
      }
      // Gaussian inputs: about 1% RMS (README); 3% leaves margin. Tiny depths have few terms.
      if (s.k >= 100) EXPECT_LT(std::sqrt(err2 / ref2), 0.03) << s.rows << "x" << s.k << "x" << s.n;
    }
  }
}

TEST(Int8Projection, ThreadsGiveTheSameBits) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  const int rows = 333, k = 77, n = 45;
  const Int8Weight q = attn::quantize_weight_int8(n, k, testutil::randn(rng, size_t(n) * k));
  const auto x = testutil::randn(rng, size_t(rows) * k);
  std::vector<float> one(size_t(rows) * n), three(one.size());
  attn::project_rows_int8(q, {}, rows, x.data(), one.data(), nullptr);
  attn::ThreadPool pool(3);
  attn::project_rows_int8(q, {}, rows, x.data(), three.data(), &pool);
  EXPECT_EQ(0, std::memcmp(one.data(), three.data(), one.size() * sizeof(float)));
}

TEST(Int8Projection, ZeroRowsAndChannelsGiveTheBiasAndNonFiniteRowsStayTheirOwn) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  const int rows = 6, k = 19, n = 9;
  auto w = testutil::randn(rng, size_t(n) * k);
  for (int i = 0; i < k; ++i) w[size_t(2) * k + i] = 0.0f;  // channel 2 all zero
  auto x = testutil::randn(rng, size_t(rows) * k);
  for (int i = 0; i < k; ++i) x[size_t(1) * k + i] = 0.0f;  // row 1 all zero
  x[size_t(4) * k + 3] = NAN;
  x[size_t(5) * k + 7] = INFINITY;
  const auto bias = testutil::randn(rng, size_t(n));
  const Int8Weight q = attn::quantize_weight_int8(n, k, w);
  std::vector<float> y(size_t(rows) * n);
  attn::project_rows_int8(q, bias, rows, x.data(), y.data(), nullptr);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < n; ++c) {
      const float v = y[size_t(r) * n + c];
      if (r >= 4) {
        EXPECT_TRUE(std::isnan(v)) << r << "," << c;
      } else if (r == 1 || c == 2) {
        EXPECT_EQ(v, bias[size_t(c)]) << r << "," << c;
      } else {
        EXPECT_TRUE(std::isfinite(v)) << r << "," << c;
      }
    }
  }
  const Int8Weight zero = attn::quantize_weight_int8(3, 4, std::vector<float>(12, 0.0f));
  EXPECT_EQ(zero.scales[0], 0.0f);
  std::vector<float> z(size_t(2) * 3);
  const std::vector<float> zx(8, 1.0f);
  attn::project_rows_int8(zero, {}, 2, zx.data(), z.data(), nullptr);
  for (float v : z) EXPECT_EQ(v, 0.0f);
}

void expect_attn_error(const std::function<void()>& f, const std::string& param) {
  try {
    f();
    ADD_FAILURE() << "no error, expected one naming " << param;
  } catch (const attn::AttnError& e) {
    EXPECT_EQ(e.param(), param) << e.what();
  }
}

TEST(Int8Projection, BadWeightsAreRefusedByName) {
  std::vector<float> w(6, 1.0f);
  w[4] = NAN;
  expect_attn_error([&] { attn::quantize_weight_int8(2, 3, w); }, "weights");
  expect_attn_error([&] { attn::quantize_weight_int8(1, attn::kMaxInt8Depth + 1, std::vector<float>(attn::kMaxInt8Depth + 1)); },
                    "weights");
  std::vector<float> big(6, 1.0f);
  big[1] = 70000.0f;  // past fp16's 65504
  expect_attn_error([&] { attn::pack_weight(2, 3, big, WeightPrecision::kFp16); }, "weights");
  expect_attn_error([] { attn::parse_precision("int4"); }, "precision");
}

TEST(ProjectionWeights, Fp16MatchesFloat64WithRoundedWeights) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  for (int rows : {1, 17, 130}) {
    const int k = 37, n = 29;
    const auto w = testutil::randn(rng, size_t(n) * k);
    const auto bias = testutil::randn(rng, size_t(n));
    const auto x = testutil::randn(rng, size_t(rows) * k);
    const attn::ProjectionWeights p = attn::pack_weight(n, k, w, WeightPrecision::kFp16);
    EXPECT_EQ(p.bytes(), int64_t(p.f16.panels.size() * 2));
    const std::vector<float> used = attn::unpack_weight(p);
    std::vector<double> ref(size_t(rows) * n);
    for (size_t i = 0; i < w.size(); ++i) ASSERT_EQ(used[i], attn::simd::fp16_to_float(attn::simd::float_to_fp16(w[i])));
    for (int r = 0; r < rows; ++r) {
      for (int c = 0; c < n; ++c) {
        double s = bias[size_t(c)];
        for (int i = 0; i < k; ++i) s += double(x[size_t(r) * k + i]) * used[size_t(c) * k + i];
        ref[size_t(r) * n + c] = s;
      }
    }
    std::vector<float> y(ref.size());
    attn::project_rows(p, bias, rows, x.data(), y.data(), nullptr);
    EXPECT_LT(testutil::rel_error(y.data(), ref).value, 1e-5) << rows;
  }
}

double rms_rel(const std::vector<float>& got, const std::vector<float>& ref) {
  double e = 0, r = 0;
  for (size_t i = 0; i < ref.size(); ++i) e += double(got[i] - ref[i]) * (got[i] - ref[i]), r += double(ref[i]) * ref[i];
  return std::sqrt(e / r);
}

TEST(QuantizedLayers, MultiHeadInt8AndFp16AgainstFloat32) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::MultiHeadConfig c;
  c.model_dim = 64, c.heads = 4, c.kdim = 48, c.vdim = 40, c.seed = 5;
  attn::MultiHeadAttention m(c);
  attn::NamedWeights w = {{"q_proj_weight", testutil::randn(rng, 64 * 64, 0.125f)},
                          {"k_proj_weight", testutil::randn(rng, 64 * 48, 0.14f)},
                          {"v_proj_weight", testutil::randn(rng, 64 * 40, 0.16f)},
                          {"out_proj.weight", testutil::randn(rng, 64 * 64, 0.125f)},
                          {"in_proj_bias", testutil::randn(rng, 3 * 64, 0.5f)},
                          {"out_proj.bias", testutil::randn(rng, 64, 0.5f)}};
  m.load_named(w);
  const int b = 2, sq = 37, sk = 53;
  const auto q = testutil::randn(rng, size_t(b) * sq * 64), k = testutil::randn(rng, size_t(b) * sk * 48),
             v = testutil::randn(rng, size_t(b) * sk * 40);
  auto run = [&](attn::MultiHeadAttention& layer) {
    std::vector<float> out(size_t(b) * sq * 64);
    layer.forward(b, sq, sk, q.data(), k.data(), v.data(), {}, attn::CausalAlign::kTopLeft, out.data(), nullptr);
    return out;
  };
  const auto ref = run(m);
  const int64_t fp32_bytes = m.weight_bytes(), params = m.param_count();
  const int64_t matrices = 64 * (64 + 48 + 40 + 64);
  EXPECT_GE(fp32_bytes, 2 * 4 * matrices);  // row-major and packed

  m.set_precision(WeightPrecision::kFp16);
  EXPECT_LT(rms_rel(run(m), ref), 2e-3);
  EXPECT_LT(m.weight_bytes(), fp32_bytes / 3);

  m.set_precision(WeightPrecision::kInt8);
  EXPECT_EQ(m.precision(), WeightPrecision::kInt8);
  EXPECT_EQ(m.param_count(), params);
  const auto int8_out = run(m);
  const double err = rms_rel(int8_out, ref);
  EXPECT_LT(err, 0.05);
  EXPECT_GT(err, 0.0);  // it really runs the int8 path
  EXPECT_LT(m.weight_bytes(), fp32_bytes / 6);

  // Saved as the float weights in use: a fresh layer quantized from them gives the same bits.
  attn::MultiHeadAttention copy(c);
  copy.load(m.save().data(), m.save().size());
  copy.set_precision(WeightPrecision::kInt8);
  const auto copy_out = run(copy);
  EXPECT_EQ(0, std::memcmp(copy_out.data(), int8_out.data(), int8_out.size() * sizeof(float)));
  // Loads keep the precision: loading w into the int8 layer quantizes w itself.
  m.load_named(w);
  EXPECT_EQ(m.precision(), WeightPrecision::kInt8);
  attn::MultiHeadAttention direct(c);
  direct.load_named(w);
  direct.set_precision(WeightPrecision::kInt8);
  const auto direct_out = run(direct);
  EXPECT_EQ(0, std::memcmp(run(m).data(), direct_out.data(), direct_out.size() * sizeof(float)));
  EXPECT_LT(rms_rel(direct_out, ref), 0.05);

  // A weight fp16 cannot hold: refused, the layer unchanged.
  attn::MultiHeadAttention huge(c);
  auto big = w;
  big[0].second[3] = 1e6f;
  huge.load_named(big);
  const int64_t before = huge.weight_bytes();
  expect_attn_error([&] { huge.set_precision(WeightPrecision::kFp16); }, "weights");
  EXPECT_EQ(huge.precision(), WeightPrecision::kFp32);
  EXPECT_EQ(huge.weight_bytes(), before);
}

TEST(QuantizedLayers, ASAMLayerInt8AgainstFloat32) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::asam::ASAMConfig c;
  c.dim = 64, c.num_heads = 4, c.pattern_type = "local", c.window_size = 64, c.block_size = 32, c.seed = 3;
  attn::asam::ASAMLayer layer(c);
  const int b = 1, n = 96;
  const auto x = testutil::randn(rng, size_t(b) * n * 64);
  auto run = [&](const attn::asam::ASAMLayer& l) {
    std::vector<float> out(x.size());
    l.forward(b, n, x.data(), {}, out.data(), nullptr, nullptr);
    return out;
  };
  const auto ref = run(layer);
  const auto saved = layer.save();
  const int64_t fp32_bytes = layer.projection_weight_bytes();
  layer.set_precision(WeightPrecision::kInt8);
  const auto got = run(layer);
  const double err = rms_rel(got, ref);
  EXPECT_LT(err, 0.05);
  EXPECT_GT(err, 0.0);
  EXPECT_LT(layer.projection_weight_bytes(), fp32_bytes / 6);
  // save() of the quantized layer: the dequantized weights, which re-quantize to the same layer.
  attn::asam::ASAMLayer copy(c);
  const auto bytes = layer.save();
  EXPECT_EQ(bytes.size(), saved.size());
  copy.load(bytes.data(), bytes.size());
  copy.set_precision(WeightPrecision::kInt8);
  const auto copy_out = run(copy);
  EXPECT_EQ(0, std::memcmp(copy_out.data(), got.data(), got.size() * sizeof(float)));
  layer.set_precision(WeightPrecision::kFp32);  // back to float storage; the values stay rounded
  EXPECT_LT(rms_rel(run(layer), ref), 0.05);
}

}  // namespace
