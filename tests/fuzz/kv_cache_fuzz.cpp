// libFuzzer target: attn::KVCache driven by fuzzed sequences of append / attend (causal or
// not, with a scale, with threads) / convert / clear, in fp32, fp16 and bf16 storage, with
// fuzzed shapes and data (NaN, ±Inf, huge, denormal).
//
// A shadow copy holds every appended row rounded as the cache stores it (the scalar
// conversions of simd/half_float.h, which kv_cache_test checks bit for bit). Invariants:
// only AttnError escapes; size, capacity and memory_bytes stay consistent; an empty cache
// attends to zeros; where the stored rows and the queries are finite and every score
// representable, attend() is finite and matches the float64 reference
// (tests/cpp/reference_attention.h) over the shadow rows within a bound derived from them.
#include <cmath>
#include <cstdint>
#include <vector>

#include "adaattn/kv_cache.h"
#include "fuzz_common.h"
#include "reference_attention.h"
#include "simd/half_float.h"

namespace {

using attn::KVCache;
using attn::StoragePrecision;

constexpr double kUnit = 1.0 / 16777216.0;

StoragePrecision pick_precision(FuzzedDataProvider& in) {
  // 3 is no precision at all: refused by name.
  return static_cast<StoragePrecision>(in.ConsumeIntegralInRange(0, 31) == 31 ? 3 : in.ConsumeIntegralInRange(0, 2));
}

float stored(StoragePrecision p, float x) {
  switch (p) {
    case StoragePrecision::kFp16: return attn::simd::fp16_to_float(attn::simd::float_to_fp16(x));
    case StoragePrecision::kBf16: return attn::simd::bf16_to_float(attn::simd::float_to_bf16(x));
    default: return x;
  }
}

struct Shadow {
  int heads, d, dv;
  std::vector<float> k, v;  // [rows][heads][d], [rows][heads][dv], as stored
  int64_t rows() const { return int64_t(k.size()) / (int64_t{heads} * d); }
};

void check_attend(const Shadow& sh, int64_t queries, const fuzz::Tensor& q,
                  const std::optional<float>& scale, bool causal, const std::vector<float>& out) {
  const int64_t n = sh.rows();
  if (n == 0) {
    for (float x : out) fuzz::require(x == 0.0f, "an empty cache did not attend to zeros");
    return;
  }
  if (q.nonfinite || !fuzz::all_finite(sh.k.data(), sh.k.size()) || !fuzz::all_finite(sh.v.data(), sh.v.size())) return;
  ref::Config c;
  c.seq_q = int(queries), c.seq_k = int(n), c.heads_q = c.heads_kv = sh.heads, c.head_dim = sh.d, c.value_dim = sh.dv;
  c.has_scale = scale.has_value();
  c.scale = scale.value_or(0.0f);
  c.causal = causal ? ref::Causal::kBottomRight : ref::Causal::kNone;
  const ref::Result r = ref::attention(c, q.data(), sh.k.data(), sh.v.data(), false);
  const double sc = std::fabs(scale ? double(*scale) : 1.0 / std::sqrt(double(sh.d)));
  for (int64_t t = 0; t < queries; ++t) {
    for (int h = 0; h < sh.heads; ++h) {
      double dot_abs = 0, v_abs = 0;
      const float* qt = q.data() + (t * sh.heads + h) * sh.d;
      for (int64_t j = 0; j < n; ++j) {
        const float* kj = sh.k.data() + (j * sh.heads + h) * sh.d;
        double sum = 0;
        for (int c2 = 0; c2 < sh.d; ++c2) sum += std::fabs(double(qt[c2]) * double(kj[c2]));
        dot_abs = std::max(dot_abs, sum);
        const float* vj = sh.v.data() + (j * sh.heads + h) * sh.dv;
        for (int c2 = 0; c2 < sh.dv; ++c2) v_abs = std::max(v_abs, double(std::fabs(vj[c2])));
      }
      double q_abs = 0;  // q times scale·log2(e) is an intermediate too
      for (int c2 = 0; c2 < sh.d; ++c2) q_abs = std::max(q_abs, double(std::fabs(qt[c2])));
      if (!(sc * std::max(dot_abs, q_abs) * 1.4427 < 1e30 && double(n) * v_abs < 1e30)) continue;
      const double logit_err = (sh.d + 4) * 2 * kUnit * sc * dot_abs + 1e-30;
      const double bound = (2 * logit_err + 1e-6 + (n + 8) * 2 * kUnit) * v_abs + 1e-35;
      for (int c2 = 0; c2 < sh.dv; ++c2) {
        const size_t at = size_t((t * sh.heads + h) * sh.dv + c2);
        if (!std::isfinite(out[at])) fuzz::fail("attend() not finite for finite stored rows", out[at], r.out[at]);
        if (!(std::fabs(out[at] - r.out[at]) <= bound)) {
          std::fprintf(stderr, "query %lld head %d column %d of %lld x %d x %d\n", (long long)t, h, c2, (long long)queries, sh.heads, sh.dv);
          fuzz::fail("attend() differs from the float64 reference", out[at], r.out[at], bound);
        }
      }
    }
  }
}

void run(FuzzedDataProvider& in) {
  const int heads = fuzz::in_range_or(in, 1, 4, 0);
  const int d = fuzz::in_range_or(in, 1, 80, 0);
  const int dv = in.ConsumeBool() ? fuzz::in_range_or(in, 1, 80, -1) : d;
  StoragePrecision precision = pick_precision(in);
  const int64_t hint = fuzz::in_range_or(in, 0, 100, -1);
  std::unique_ptr<KVCache> made;
  if (!fuzz::returns([&] { made = std::make_unique<KVCache>(heads, d, dv, precision, hint); })) return;
  KVCache& cache = *made;
  Shadow sh{heads, d, dv, {}, {}};
  constexpr int64_t kMaxRows = 400;

  const bool verbose = std::getenv("FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "KVCache(heads %d, d %d, dv %d, %s, hint %lld)\n", heads, d, dv,
                            attn::storage_precision_name(precision), (long long)hint);
  for (int op = 0; op < 16 && in.remaining_bytes() > 0; ++op) {
    const int what = in.ConsumeIntegralInRange(0, 5);
    if (verbose) std::fprintf(stderr, "op %d: %s (size %lld)\n", op, what < 2 ? "append" : what < 4 ? "attend" : what == 4 ? "convert" : "clear", (long long)cache.size());
    switch (what) {
      case 0:
      case 1: {  // append
        int64_t rows = fuzz::in_range_or(in, 0, 48, -1);
        if (sh.rows() + rows > kMaxRows) rows = kMaxRows - sh.rows();
        const size_t nk = size_t(std::max<int64_t>(0, rows) * heads * d), nv = size_t(std::max<int64_t>(0, rows) * heads * dv);
        const fuzz::Tensor k = fuzz::make_tensor(in, nk), v = fuzz::make_tensor(in, nv);
        const bool null_k = in.ConsumeIntegralInRange(0, 31) == 31;
        if (verbose) {
          std::fprintf(stderr, "  rows %lld:", (long long)rows);
          for (size_t i = 0; i < k.size() && i < 16; ++i) std::fprintf(stderr, " k %g v %g", k.x[i], v.x[i]);
          std::fprintf(stderr, "\n");
        }
        if (fuzz::returns([&] { cache.append(rows, null_k ? nullptr : k.data(), v.data()); })) {
          for (float x : k.x) sh.k.push_back(stored(cache.precision(), x));
          for (float x : v.x) sh.v.push_back(stored(cache.precision(), x));
        }
        break;
      }
      case 2:
      case 3: {  // attend
        const int64_t queries = fuzz::in_range_or(in, 0, 8, -1);
        std::optional<float> scale;
        if (in.ConsumeBool()) scale = fuzz::make_option(in, -3.0f, 3.0f);
        const bool causal = in.ConsumeBool();
        attn::ThreadPool* pool = in.ConsumeBool() ? fuzz::shared_pool() : nullptr;
        const fuzz::Tensor q = fuzz::make_tensor(in, size_t(std::max<int64_t>(0, queries) * heads * d));
        std::vector<float> out(size_t(std::max<int64_t>(0, queries) * heads * dv), -7.0f);
        if (verbose) {
          std::fprintf(stderr, "  queries %lld scale %g causal %d pool %d:", (long long)queries, scale ? *scale : -1.0, causal, pool != nullptr);
          for (size_t i = 0; i < q.size() && i < 16; ++i) std::fprintf(stderr, " %g", q.x[i]);
          std::fprintf(stderr, "\n");
        }
        if (fuzz::returns([&] { cache.attend(queries, q.data(), out.data(), scale, pool, causal); })) {
          check_attend(sh, queries, q, scale, causal, out);
        }
        break;
      }
      case 4: {  // convert: the shadow rounds as the cache re-stores
        precision = pick_precision(in);
        if (verbose) std::fprintf(stderr, "  to %d\n", int(precision));
        if (fuzz::returns([&] { cache.convert(precision); })) {
          for (float& x : sh.k) x = stored(precision, x);
          for (float& x : sh.v) x = stored(precision, x);
        }
        break;
      }
      default:
        cache.clear();
        sh.k.clear(), sh.v.clear();
        break;
    }
    fuzz::require(cache.size() == sh.rows(), "size() is not the rows appended");
    fuzz::require(cache.capacity() >= cache.size(), "capacity below size");
    fuzz::require(cache.memory_bytes() ==
                      cache.capacity() * heads * (d + dv) * attn::storage_bytes(cache.precision()),
                  "memory_bytes is not capacity x row bytes");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  run(in);
  return 0;
}
