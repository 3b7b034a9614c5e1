// AdaptivePrecisionAttention (AdaAttn): a multi-head layer whose keys and values are held
// in fp32, fp16 or bf16, with float32 arithmetic. With the `adaptive` policy each call
// decides from measured statistics of its projected K and V:
//   - range: a key or value beyond fp16's largest finite half (65504) rules fp16 out;
//   - accuracy: a sample of query rows is attended with K and V stored in each candidate
//     precision (the KV cache's own kernel) and compared with float32 storage; the relative
//     error measured must be within the caller's tolerance.
// bf16 is tried first (its decode is the fastest), then fp16, else fp32. Every decision
// carries its reason and its measurements (statistics()).
//
// Two ways to call it:
//   forward(): a whole call (any batch). K and V are rounded to the chosen precision, so the
//     result is exactly attention over half-precision storage; the flash kernel computes it.
//     With `keep_cache` (batch 1) the rounded K and V stay in the layer's KV cache, stored
//     at the precision's size: the prefill of a decoder.
//   step(): incremental decoding. New tokens' keys and values are appended to the cache and
//     their queries attend over it (bottom-right causal), reading the stored halves and
//     widening them in SIMD registers. The cache keeps its precision; if a new key or value
//     would overflow an fp16 cache, the adaptive policy converts the cache to fp32 first.
// The projections are a MultiHeadAttention's (same initialisation, PyTorch names, weights
// format), so weights move between the two layers.
#pragma once
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "adaattn/kv_cache.h"
#include "flash/flash_params.h"
#include "multihead/multihead_attention.h"

namespace attn {

class ThreadPool;

enum class PrecisionPolicy { kFp32, kFp16, kBf16, kAdaptive };

// "fp32", "fp16", "bf16", "adaptive".
const char* precision_policy_name(PrecisionPolicy policy);

struct AdaptivePrecisionConfig {
  int embed_dim = 0;
  int num_heads = 1;
  bool bias = true;
  PrecisionPolicy policy = PrecisionPolicy::kAdaptive;
  // Relative output error the adaptive policy may spend on half-precision storage.
  double tolerance = 1e-2;
  // Query rows (over the whole batch) whose outputs are measured per adaptive decision.
  int sample_rows = 16;
  uint64_t seed = 0;  // initial weights
};

// One call's choice, with what it was based on.
struct PrecisionDecision {
  StoragePrecision precision = StoragePrecision::kFp32;
  std::string reason;
  bool incremental = false;  // a step() (else forward())
  float max_abs_k = 0.0f;    // of this call's projected keys / values
  float max_abs_v = 0.0f;
  // Relative error of the sampled rows' outputs against float32 storage, per candidate
  // that was measured (unset: not measured, e.g. a fixed policy or fp16 out of range).
  std::optional<double> sampled_error_bf16;
  std::optional<double> sampled_error_fp16;
  int64_t sampled_rows = 0;
  int64_t overflowed = 0;  // keys/values that became ±inf in fp16 storage (fixed fp16 only)
  bool converted_cache = false;  // step(): the cache was converted to fp32 for this call
};

struct PrecisionStatistics {
  int64_t calls = 0;
  int64_t fp32 = 0, fp16 = 0, bf16 = 0;  // calls that used each precision
  int64_t cache_conversions = 0;
  std::deque<PrecisionDecision> recent;  // the last kRecent decisions, oldest first
  static constexpr size_t kRecent = 32;
};

class AdaptivePrecisionAttention {
 public:
  // Throws AttnError naming the bad option (embedDim, numHeads, tolerance, sampleRows,
  // defaultPrecision). Allocates nothing.
  static AdaptivePrecisionConfig validated(AdaptivePrecisionConfig config);
  explicit AdaptivePrecisionAttention(const AdaptivePrecisionConfig& config);

  const AdaptivePrecisionConfig& config() const { return config_; }

  // query [batch][seq_q][embed], key/value [batch][seq_k][embed] -> out [batch][seq_q][embed].
  // mask and causal as MultiHeadAttention::forward. keep_cache (batch 1 only): the cache is
  // replaced by this call's rounded K and V.
  const PrecisionDecision& forward(int batch, int seq_q, int seq_k, const float* query, const float* key,
                                   const float* value, const MaskView& mask, CausalAlign causal,
                                   bool keep_cache, float* out, ThreadPool* pool);

  // rows new tokens: their key/value inputs are appended to the cache, then their queries
  // attend over it, token t seeing the cache up to and including itself.
  const PrecisionDecision& step(int rows, const float* query, const float* key, const float* value,
                                float* out, ThreadPool* pool);

  void reset_cache();
  int64_t cache_rows() const { return cache_ ? cache_->size() : 0; }
  int64_t cache_bytes() const { return cache_ ? cache_->memory_bytes() : 0; }
  std::optional<StoragePrecision> cache_precision() const;

  const PrecisionStatistics& statistics() const { return stats_; }
  void reset_statistics() { stats_ = {}; }

  // The projection weights: save / load / load_named as a MultiHeadAttention's.
  MultiHeadAttention& projections() { return mha_; }
  const MultiHeadAttention& projections() const { return mha_; }

 private:
  // Picks the precision for projected q [batch][seq_q][embed], k/v [batch][seq_k][embed]
  // and rounds k and v to it in place (what the storage would hold); fills everything in
  // the decision but `incremental` and `converted_cache`.
  PrecisionDecision decide(int batch, int seq_q, int seq_k, const std::vector<float>& q, std::vector<float>& k,
                           std::vector<float>& v, ThreadPool* pool) const;
  const PrecisionDecision& record(PrecisionDecision decision);

  AdaptivePrecisionConfig config_;
  MultiHeadAttention mha_;
  std::optional<KVCache> cache_;
  PrecisionStatistics stats_;
};

}  // namespace attn
