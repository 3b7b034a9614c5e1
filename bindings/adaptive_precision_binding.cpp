// embind surface of AdaptivePrecisionAttention (src/adaattn/adaptive_precision_attention.h):
// a handle whose every method returns "" or an encoded error (never a C++ exception into
// JS). The decision of the last call and the statistics come back as JSON text, which the
// JS class parses: they are small, nested and read rarely.
#include <emscripten/bind.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>

#include "adaattn/adaptive_precision_attention.h"
#include "bindings/runtime_binding.h"
#include "error_translation.h"
#include "heap_address.h"
#include "layer_call.h"
#include "multihead_weights.h"
#include "named_staging.h"

namespace attn::bindings {

namespace {

struct AdaptivePrecisionInit {
  int embedDim = 0, numHeads = 1;
  bool bias = true;
  int policy = 3;  // 0 fp32, 1 fp16, 2 bf16, 3 adaptive
  double tolerance = 1e-2;
  int sampleRows = 16;
  double seed = 0;
};

AdaptivePrecisionConfig to_config(const AdaptivePrecisionInit& i) {
  AdaptivePrecisionConfig c;
  c.embed_dim = i.embedDim;
  c.num_heads = i.numHeads;
  c.bias = i.bias;
  c.policy = static_cast<PrecisionPolicy>(i.policy);
  c.tolerance = i.tolerance;
  c.sample_rows = i.sampleRows;
  c.seed = static_cast<uint64_t>(i.seed);
  return c;
}

struct AdaptivePrecisionCall {
  int batch = 1, seqQ = 0, seqK = 0;
  int causal = 0;  // 0 none, 1 top-left, 2 bottom-right
  bool keepCache = false;
  int maskKind = 0;  // 0 none, 1 additive float, 2 boolean uint8
  double maskBatchStride = 0, maskHeadStride = 0, maskRowStride = 0;
  double query = 0, key = 0, value = 0, out = 0, mask = 0;  // heap addresses
};

std::string validate_adaptive_precision(const AdaptivePrecisionInit& init) {
  return guarded([&] { AdaptivePrecisionAttention::validated(to_config(init)); });
}

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

std::string json_number(double x) {
  if (!std::isfinite(x)) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", x);
  return buf;
}

std::string json_decision(const PrecisionDecision& d) {
  auto optional = [](const std::optional<double>& x) { return x ? json_number(*x) : std::string("null"); };
  return std::string("{\"precision\":") + json_string(storage_precision_name(d.precision)) +
         ",\"reason\":" + json_string(d.reason) + ",\"incremental\":" + (d.incremental ? "true" : "false") +
         ",\"maxAbsKey\":" + json_number(d.max_abs_k) + ",\"maxAbsValue\":" + json_number(d.max_abs_v) +
         ",\"sampledErrorBf16\":" + optional(d.sampled_error_bf16) +
         ",\"sampledErrorFp16\":" + optional(d.sampled_error_fp16) +
         ",\"sampledRows\":" + std::to_string(d.sampled_rows) + ",\"overflowed\":" + std::to_string(d.overflowed) +
         ",\"convertedCache\":" + (d.converted_cache ? "true" : "false") + "}";
}

class AdaptivePrecisionHandle {
 public:
  explicit AdaptivePrecisionHandle(const AdaptivePrecisionInit& init) : m_(to_config(init)) {}

  std::string forward(const AdaptivePrecisionCall& c) {
    return guarded([&] {
      const MaskView mask = call_mask(c);
      const CausalAlign causal = causal_align(c.causal);
      m_.forward(c.batch, c.seqQ, c.seqK, address<const float>(c.query), address<const float>(c.key),
                 address<const float>(c.value), mask, causal, c.keepCache, address<float>(c.out), shared_pool());
    });
  }
  std::string step(int rows, double query, double key, double value, double out) {
    return guarded([&] {
      m_.step(rows, address<const float>(query), address<const float>(key), address<const float>(value),
              address<float>(out), shared_pool());
    });
  }
  // The last call's decision as JSON ("null" before any).
  std::string lastDecision() const {
    const auto& recent = m_.statistics().recent;
    return recent.empty() ? "null" : json_decision(recent.back());
  }
  std::string statistics() const {
    const PrecisionStatistics& s = m_.statistics();
    std::string recent = "[";
    for (const auto& d : s.recent) recent += (recent.size() > 1 ? "," : "") + json_decision(d);
    return "{\"calls\":" + std::to_string(s.calls) + ",\"fp32\":" + std::to_string(s.fp32) +
           ",\"fp16\":" + std::to_string(s.fp16) + ",\"bf16\":" + std::to_string(s.bf16) +
           ",\"cacheConversions\":" + std::to_string(s.cache_conversions) + ",\"recent\":" + recent + "]}";
  }
  void resetStatistics() { m_.reset_statistics(); }
  void resetCache() { m_.reset_cache(); }
  double cacheRows() const { return static_cast<double>(m_.cache_rows()); }
  double cacheBytes() const { return static_cast<double>(m_.cache_bytes()); }
  std::string cachePrecision() const {
    const auto p = m_.cache_precision();
    return p ? storage_precision_name(*p) : "";
  }

  const MultiHeadAttention& model() const { return m_.projections(); }
  MultiHeadAttention& model() { return m_.projections(); }
  NamedStaging& staging() { return staged_; }

 private:
  AdaptivePrecisionAttention m_;
  NamedStaging staged_;
};

}  // namespace

}  // namespace attn::bindings

EMSCRIPTEN_BINDINGS(attn_adaptive_precision) {
  using attn::bindings::AdaptivePrecisionCall;
  using attn::bindings::AdaptivePrecisionHandle;
  using attn::bindings::AdaptivePrecisionInit;
  emscripten::value_object<AdaptivePrecisionInit>("AdaptivePrecisionInit")
      .field("embedDim", &AdaptivePrecisionInit::embedDim)
      .field("numHeads", &AdaptivePrecisionInit::numHeads)
      .field("bias", &AdaptivePrecisionInit::bias)
      .field("policy", &AdaptivePrecisionInit::policy)
      .field("tolerance", &AdaptivePrecisionInit::tolerance)
      .field("sampleRows", &AdaptivePrecisionInit::sampleRows)
      .field("seed", &AdaptivePrecisionInit::seed);
  emscripten::value_object<AdaptivePrecisionCall>("AdaptivePrecisionCall")
      .field("batch", &AdaptivePrecisionCall::batch)
      .field("seqQ", &AdaptivePrecisionCall::seqQ)
      .field("seqK", &AdaptivePrecisionCall::seqK)
      .field("causal", &AdaptivePrecisionCall::causal)
      .field("keepCache", &AdaptivePrecisionCall::keepCache)
      .field("maskKind", &AdaptivePrecisionCall::maskKind)
      .field("maskBatchStride", &AdaptivePrecisionCall::maskBatchStride)
      .field("maskHeadStride", &AdaptivePrecisionCall::maskHeadStride)
      .field("maskRowStride", &AdaptivePrecisionCall::maskRowStride)
      .field("query", &AdaptivePrecisionCall::query)
      .field("key", &AdaptivePrecisionCall::key)
      .field("value", &AdaptivePrecisionCall::value)
      .field("out", &AdaptivePrecisionCall::out)
      .field("mask", &AdaptivePrecisionCall::mask);
  emscripten::function("validateAdaptivePrecision", &attn::bindings::validate_adaptive_precision);
  // The weights methods (savedBytes, saveInto, load, stageNamed, commitNamed, paramCount).
  attn::bindings::bind_multihead_weights(
      emscripten::class_<AdaptivePrecisionHandle>("AdaptivePrecisionHandle")
          .function("forward", &AdaptivePrecisionHandle::forward)
          .function("step", &AdaptivePrecisionHandle::step)
          .function("lastDecision", &AdaptivePrecisionHandle::lastDecision)
          .function("statistics", &AdaptivePrecisionHandle::statistics)
          .function("resetStatistics", &AdaptivePrecisionHandle::resetStatistics)
          .function("resetCache", &AdaptivePrecisionHandle::resetCache)
          .function("cacheRows", &AdaptivePrecisionHandle::cacheRows)
          .function("cacheBytes", &AdaptivePrecisionHandle::cacheBytes)
          .function("cachePrecision", &AdaptivePrecisionHandle::cachePrecision));
  emscripten::function("makeAdaptivePrecisionHandle", &attn::bindings::construct_guarded<attn::bindings::AdaptivePrecisionHandle, attn::bindings::AdaptivePrecisionInit>,
                       emscripten::allow_raw_pointers());
}
