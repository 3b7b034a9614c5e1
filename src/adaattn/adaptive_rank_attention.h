// The seed's AdaptiveRankAttention(embed_dim, num_heads, rank_ratio, rank_estimation_method,
// adaptive_threshold): multi-head attention whose heads each run either dense (the flash
// kernel) or low rank (Nyström landmarks, low_rank_attention.h), decided per call and per
// (batch element, head) from a sample of that head's scores (rank_estimation.h).
//
//   rank r         = max(1, round(rank_ratio · head_dim)) landmarks: attention logits
//                    q·kᵀ have rank at most head_dim, so rank_ratio is the share of it kept.
//   low rank when  the method's measure on the sample >= adaptive_threshold, and the
//                    low-rank kernel costs at most half the dense operations (else
//                    "not cheaper": short sequences, or r close to them).
//   always dense   with a causal rule or a mask (the Nyström factors mix every key into
//                    every landmark, so they cannot leave keys out), without sampling.
// Every decision is recorded with the measured estimate (none when no sample was taken)
// and its reason: statistics() holds the last call's and per-head totals since
// construction or reset_statistics().
//
// The layer: Q = query·Wqᵀ + bq, K = key·Wkᵀ + bk, V = value·Wvᵀ + bv (embed_dim → embed_dim,
// nn.Linear's initialisation from `seed`, asam::AttentionProjections), attend() per head,
// out = heads·Woᵀ + bo. attend() alone takes projected Q, K, V in the flash layout.
#pragma once
#include <cstdint>
#include <limits>
#include <vector>

#include "adaattn/rank_estimation.h"
#include "asam/attention_projections.h"
#include "flash/flash_params.h"
#include "runtime/named_weights.h"

namespace attn {

class ThreadPool;

struct AdaptiveRankConfig {
  int embed_dim = 0;
  int num_heads = 1;
  float rank_ratio = 0.5f;
  RankMethod method = RankMethod::kEntropy;
  float adaptive_threshold = 0.95f;
  // A head the estimate sends to low rank is checked on kVerifyRows query rows against exact
  // attention; a relative error above this sends it back to dense (reason kSampleError).
  float max_sampled_error = 0.05f;
  uint64_t seed = 0;  // initial weights, and the samples (seed, call number, head)
};

// Query rows of a low-rank head compared with exact attention after the kernel ran.
constexpr int kVerifyRows = 8;

enum class RankReason {
  kAtOrAboveThreshold,  // low rank
  kBelowThreshold,      // dense: the measure was below the threshold
  kCausal,              // dense: causal rule
  kMask,                // dense: a mask
  kNotCheaper,          // dense: low rank would not halve the operations
  kSampleError,         // dense: low rank ran, but its rows sampled against exact
                        // attention were further off than max_sampled_error
};

// "estimate>=threshold", "estimate<threshold", "causal", "mask", "not-cheaper",
// "sampled-error>max".
const char* rank_reason_name(RankReason reason);

struct HeadDecision {
  int batch = 0, head = 0;
  bool low_rank = false;
  int rank = 0;  // landmarks used; 0 when dense
  double estimate = std::numeric_limits<double>::quiet_NaN();  // NaN: no sample was taken
  // Relative error of the low-rank output on kVerifyRows rows vs exact (NaN: not run).
  double sampled_error = std::numeric_limits<double>::quiet_NaN();
  RankReason reason = RankReason::kBelowThreshold;
};

// One head over every call counted.
struct HeadTotals {
  int64_t low_rank = 0, dense = 0;
  int64_t rejected = 0;  // sent back to dense by the sampled error
  int64_t estimated = 0;  // decisions that took a sample
  double estimate_sum = 0.0;
  double estimate_min = std::numeric_limits<double>::infinity();
  double estimate_max = -std::numeric_limits<double>::infinity();
};

struct RankStatistics {
  int64_t calls = 0;
  int last_seq_q = 0, last_seq_k = 0;
  std::vector<HeadDecision> last_call;  // [batch][heads] of the last call
  std::vector<HeadTotals> per_head;     // [heads]
};

class AdaptiveRankAttention {
 public:
  // Throws AttnError naming embedDim, numHeads, rankRatio, adaptiveThreshold or
  // maxSampledError.
  static AdaptiveRankConfig validated(const AdaptiveRankConfig& config);

  explicit AdaptiveRankAttention(const AdaptiveRankConfig& config);

  const AdaptiveRankConfig& config() const { return config_; }
  int head_dim() const { return config_.embed_dim / config_.num_heads; }
  int rank() const { return rank_; }

  // q [batch][seq_q][heads][head_dim], k and v [batch][seq_k][heads][head_dim] -> out in
  // q's layout; scale 1/sqrt(head_dim). mask as flash's (broadcast strides).
  void attend(int batch, int seq_q, int seq_k, const float* q, const float* k, const float* v, const MaskView& mask,
              CausalAlign causal, float* out, ThreadPool* pool);

  // query [batch][seq_q][embed_dim], key and value [batch][seq_k][embed_dim] -> out
  // [batch][seq_q][embed_dim].
  void forward(int batch, int seq_q, int seq_k, const float* query, const float* key, const float* value,
               const MaskView& mask, CausalAlign causal, float* out, ThreadPool* pool);

  const RankStatistics& statistics() const { return stats_; }
  void reset_statistics();

  std::vector<ParameterView> named_parameters() const { return proj_.named_parameters(); }
  int64_t param_count() const;
  // q_proj.weight, q_proj.bias, k_proj.*, v_proj.*, out_proj.*: all of them; a bad set
  // leaves the weights as they were.
  void load_named(const NamedWeights& weights);

 private:
  AdaptiveRankConfig config_;
  int rank_;
  asam::AttentionProjections proj_;
  RankStatistics stats_;
};

}  // namespace attn
