#include "adaattn/adaptive_precision_attention.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>

#include "flash/flash_attention.h"
#include "runtime/errors.h"
#include "simd/half_float.h"

namespace attn {

namespace {

using Projection = MultiHeadAttention::Projection;

// x rounded to the storage precision and back (what a KVCache of it holds).
float stored_value(StoragePrecision p, float x) {
  switch (p) {
    case StoragePrecision::kFp16: return simd::fp16_to_float(simd::float_to_fp16(x));
    case StoragePrecision::kBf16: return simd::bf16_to_float(simd::float_to_bf16(x));
    default: return x;
  }
}

std::vector<float> rounded(StoragePrecision p, const std::vector<float>& x) {
  std::vector<float> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = stored_value(p, x[i]);
  return out;
}

float max_abs(const std::vector<float>& x) {
  float m = 0.0f;
  for (float v : x) m = std::max(m, std::fabs(v));  // NaN leaves m as is
  return m;
}

// Values whose fp16 storage is ±inf although they were finite.
int64_t fp16_overflows(const std::vector<float>& x) {
  int64_t n = 0;
  for (float v : x) n += std::isfinite(v) && std::isinf(stored_value(StoragePrecision::kFp16, v));
  return n;
}

// ‖a − b‖ / ‖b‖ (0 when both are zero).
double relative_error(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0.0, den = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = double(a[i]) - double(b[i]);
    num += d * d;
    den += double(b[i]) * double(b[i]);
  }
  if (den == 0.0) return num == 0.0 ? 0.0 : INFINITY;
  return std::sqrt(num / den);
}

std::string sci(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2e", x);
  return buf;
}

}  // namespace

const char* precision_policy_name(PrecisionPolicy policy) {
  switch (policy) {
    case PrecisionPolicy::kFp32: return "fp32";
    case PrecisionPolicy::kFp16: return "fp16";
    case PrecisionPolicy::kBf16: return "bf16";
    case PrecisionPolicy::kAdaptive: return "adaptive";
  }
  return "?";
}

AdaptivePrecisionConfig AdaptivePrecisionAttention::validated(AdaptivePrecisionConfig c) {
  require_positive("embedDim", c.embed_dim);
  require_positive("numHeads", c.num_heads);
  if (c.embed_dim % c.num_heads != 0) {
    throw_range("numHeads", "must divide embedDim (" + std::to_string(c.embed_dim) + "), got " +
                                std::to_string(c.num_heads));
  }
  if (!(c.tolerance >= 0.0) || !std::isfinite(c.tolerance)) {
    throw_range("tolerance", "must be a finite number >= 0");
  }
  require_positive("sampleRows", c.sample_rows);
  if (c.policy != PrecisionPolicy::kFp32 && c.policy != PrecisionPolicy::kFp16 &&
      c.policy != PrecisionPolicy::kBf16 && c.policy != PrecisionPolicy::kAdaptive) {
    throw_range("defaultPrecision", "must be 'fp32', 'fp16', 'bf16' or 'adaptive'");
  }
  // What is left: the weights' size, checked by the projections under their own name.
  try {
    MultiHeadAttention::validated(MultiHeadConfig::self_attention(c.embed_dim, c.num_heads, c.bias, c.seed));
  } catch (const AttnError& e) {
    throw AttnError(e.kind(), "embedDim", std::string(e.what()).substr(e.param().size() + 2));
  }
  return c;
}

AdaptivePrecisionAttention::AdaptivePrecisionAttention(const AdaptivePrecisionConfig& config)
    : config_(validated(config)),
      mha_(MultiHeadConfig::self_attention(config_.embed_dim, config_.num_heads, config_.bias, config_.seed)) {}

std::optional<StoragePrecision> AdaptivePrecisionAttention::cache_precision() const {
  if (!cache_) return std::nullopt;
  return cache_->precision();
}

void AdaptivePrecisionAttention::reset_cache() { cache_.reset(); }

PrecisionDecision AdaptivePrecisionAttention::decide(int batch, int seq_q, int seq_k, const std::vector<float>& q,
                                                     std::vector<float>& k, std::vector<float>& v,
                                                     ThreadPool* pool) const {
  PrecisionDecision d;
  d.max_abs_k = max_abs(k);
  d.max_abs_v = max_abs(v);
  const bool fp16_fits = fp16_overflows(k) == 0 && fp16_overflows(v) == 0;
  if (config_.policy != PrecisionPolicy::kAdaptive) {
    d.precision = config_.policy == PrecisionPolicy::kFp16   ? StoragePrecision::kFp16
                  : config_.policy == PrecisionPolicy::kBf16 ? StoragePrecision::kBf16
                                                              : StoragePrecision::kFp32;
    d.reason = std::string("fixed: defaultPrecision is ") + precision_policy_name(config_.policy);
    if (d.precision == StoragePrecision::kFp16 && !fp16_fits) {
      d.overflowed = fp16_overflows(k) + fp16_overflows(v);
      d.reason += "; " + std::to_string(d.overflowed) + " keys/values beyond fp16's largest half (65504) became infinite";
    }
    if (d.precision != StoragePrecision::kFp32) {
      k = rounded(d.precision, k);
      v = rounded(d.precision, v);
    }
    return d;
  }

  // The sample: per batch element, rows spread evenly over the queries, attending every key
  // (no mask, not causal: it measures how rounding these K and V moves attention outputs).
  const int e = config_.embed_dim, heads = config_.num_heads, hd = e / heads;
  const int per_batch = std::min(seq_q, std::max(1, (config_.sample_rows + batch - 1) / batch));
  std::vector<float> qs(size_t(batch) * per_batch * e);
  for (int b = 0; b < batch; ++b) {
    for (int i = 0; i < per_batch; ++i) {
      const int64_t row = int64_t{b} * seq_q + int64_t(((i + 0.5) * seq_q) / per_batch);
      std::copy_n(q.data() + row * e, e, qs.data() + (int64_t{b} * per_batch + i) * e);
    }
  }
  d.sampled_rows = int64_t{batch} * per_batch;
  const FlashShape shape{batch, per_batch, seq_k, heads, heads, hd, hd};
  auto sample = [&](const std::vector<float>& ks, const std::vector<float>& vs) {
    std::vector<float> out(qs.size());
    flash_forward(shape, FlashOptions{}, {qs.data(), ks.data(), vs.data(), out.data(), nullptr}, pool);
    return out;
  };
  const std::vector<float> exact = sample(k, v);
  const std::string tol = sci(config_.tolerance);

  std::vector<float> kb = rounded(StoragePrecision::kBf16, k), vb = rounded(StoragePrecision::kBf16, v);
  d.sampled_error_bf16 = relative_error(sample(kb, vb), exact);
  if (*d.sampled_error_bf16 <= config_.tolerance) {
    d.precision = StoragePrecision::kBf16;
    d.reason = "bf16: sampled error " + sci(*d.sampled_error_bf16) + " <= tolerance " + tol;
    k.swap(kb);
    v.swap(vb);
    return d;
  }
  const std::string bf16_miss = "bf16's sampled error " + sci(*d.sampled_error_bf16) + " > tolerance " + tol;
  if (!fp16_fits) {
    d.precision = StoragePrecision::kFp32;
    d.reason = "fp32: " + bf16_miss + "; fp16 out of range (max |K| " + sci(d.max_abs_k) + ", max |V| " +
               sci(d.max_abs_v) + ", fp16 ends at 65504)";
    return d;
  }
  std::vector<float> kh = rounded(StoragePrecision::kFp16, k), vh = rounded(StoragePrecision::kFp16, v);
  d.sampled_error_fp16 = relative_error(sample(kh, vh), exact);
  if (*d.sampled_error_fp16 <= config_.tolerance) {
    d.precision = StoragePrecision::kFp16;
    d.reason = "fp16: " + bf16_miss + "; fp16's " + sci(*d.sampled_error_fp16) + " is within it";
    k.swap(kh);
    v.swap(vh);
    return d;
  }
  d.precision = StoragePrecision::kFp32;
  d.reason = "fp32: " + bf16_miss + "; fp16's " + sci(*d.sampled_error_fp16) + " too";
  return d;
}

const PrecisionDecision& AdaptivePrecisionAttention::record(PrecisionDecision decision) {
  ++stats_.calls;
  switch (decision.precision) {
    case StoragePrecision::kFp32: ++stats_.fp32; break;
    case StoragePrecision::kFp16: ++stats_.fp16; break;
    case StoragePrecision::kBf16: ++stats_.bf16; break;
  }
  if (decision.converted_cache) ++stats_.cache_conversions;
  stats_.recent.push_back(std::move(decision));
  if (stats_.recent.size() > PrecisionStatistics::kRecent) stats_.recent.pop_front();
  return stats_.recent.back();
}

const PrecisionDecision& AdaptivePrecisionAttention::forward(int batch, int seq_q, int seq_k, const float* query,
                                                             const float* key, const float* value,
                                                             const MaskView& mask, CausalAlign causal,
                                                             bool keep_cache, float* out, ThreadPool* pool) {
  const int e = config_.embed_dim, heads = config_.num_heads, hd = e / heads;
  const FlashShape shape{batch, seq_q, seq_k, heads, heads, hd, hd};
  FlashOptions options;
  options.mask = mask;
  options.causal = causal;
  validate_flash(shape, options);  // sizes and mask strides, before any work
  if (query == nullptr || key == nullptr || value == nullptr || out == nullptr) {
    throw_type("tensors", "query, key, value and out must all be given");
  }
  if (keep_cache && batch != 1) {
    throw_range("batch", "keepCache holds one sequence: needs batch 1, got " + std::to_string(batch));
  }
  std::vector<float> q(size_t(batch) * seq_q * e), k(size_t(batch) * seq_k * e), v(size_t(batch) * seq_k * e);
  mha_.project(Projection::kQuery, int64_t{batch} * seq_q, query, q.data(), pool);
  mha_.project(Projection::kKey, int64_t{batch} * seq_k, key, k.data(), pool);
  mha_.project(Projection::kValue, int64_t{batch} * seq_k, value, v.data(), pool);
  PrecisionDecision decision = decide(batch, seq_q, seq_k, q, k, v, pool);  // k, v now as stored

  std::vector<float> attended(q.size());
  flash_forward(shape, options, {q.data(), k.data(), v.data(), attended.data(), nullptr}, pool);
  mha_.project(Projection::kOutput, int64_t{batch} * seq_q, attended.data(), out, pool);
  if (keep_cache) {
    cache_.emplace(heads, hd, hd, decision.precision, seq_k);
    cache_->append(seq_k, k.data(), v.data());
  }
  return record(std::move(decision));
}

const PrecisionDecision& AdaptivePrecisionAttention::step(int rows, const float* query, const float* key,
                                                          const float* value, float* out, ThreadPool* pool) {
  require_positive("rows", rows);
  if (query == nullptr || key == nullptr || value == nullptr || out == nullptr) {
    throw_type("tensors", "query, key, value and out must all be given");
  }
  const int e = config_.embed_dim, heads = config_.num_heads, hd = e / heads;
  std::vector<float> q(size_t(rows) * e), k(size_t(rows) * e), v(size_t(rows) * e);
  mha_.project(Projection::kQuery, rows, query, q.data(), pool);
  mha_.project(Projection::kKey, rows, key, k.data(), pool);
  mha_.project(Projection::kValue, rows, value, v.data(), pool);

  PrecisionDecision decision;
  if (!cache_) {
    // A cache started by step() decides from its first rows.
    decision = decide(1, rows, rows, q, k, v, pool);
    cache_.emplace(heads, hd, hd, decision.precision, 0);
  } else {
    decision.precision = cache_->precision();
    decision.max_abs_k = max_abs(k);
    decision.max_abs_v = max_abs(v);
    decision.reason = std::string("the cache's precision (") + storage_precision_name(decision.precision) + ")";
    if (decision.precision == StoragePrecision::kFp16) {
      const int64_t overflows = fp16_overflows(k) + fp16_overflows(v);
      if (overflows > 0 && config_.policy == PrecisionPolicy::kAdaptive) {
        cache_->convert(StoragePrecision::kFp32);
        decision.precision = StoragePrecision::kFp32;
        decision.converted_cache = true;
        decision.reason = "fp32: converted the fp16 cache, " + std::to_string(overflows) +
                          " new keys/values beyond fp16's largest half (65504)";
      } else if (overflows > 0) {
        decision.overflowed = overflows;
        decision.reason += "; " + std::to_string(overflows) + " keys/values beyond 65504 became infinite";
      }
    }
  }
  decision.incremental = true;
  cache_->append(rows, k.data(), v.data());
  std::vector<float> attended(q.size());
  cache_->attend(rows, q.data(), attended.data(), {}, pool, /*causal=*/true);
  mha_.project(Projection::kOutput, rows, attended.data(), out, pool);
  return record(std::move(decision));
}

}  // namespace attn
