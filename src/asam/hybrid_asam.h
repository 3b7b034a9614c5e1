// HybridASAM (seed 000, "Hybrid local (Flash) + global"): a sliding window plus global
// tokens, the Longformer arrangement, with the projections of an ASAM layer.
//
// With w = local_window_size and G = min(num_global_tokens, seq), query i attends key j when
//     |i - j| <= w / 2     (the local pattern of asam/sparse_attention.h with window w)
//  or i < G                (global tokens attend everything)
//  or j < G                (everything attends the global tokens),
// one softmax over exactly those keys. It runs as three disjoint parts merged through their
// log-sum-exp: the local block-sparse pattern over all rows; rows i < G against the keys
// outside their window (a band with a hole); rows i >= G against the global keys left of
// their window, j < min(G, i - w/2). No score is computed twice.
//
// forward(x [batch][seq][dim]) -> out [batch][seq][dim] with Q, K, V and the output
// projection as ASAMLayer's (same names, same seeded init); scale 1/sqrt(dim_head);
// block_size from the config. The AdaptiveGate, pattern_type and the pattern options other
// than block_size play no part. Inference only; masks are refused as ASAMLayer refuses them.
// info: the local part's SparseStats, the scores the global parts computed, and
// sparse_ratio = 1 - (all scores computed) / (batch * heads * seq * seq).
#pragma once
#include <cstdint>
#include <vector>

#include "asam/asam_config.h"
#include "asam/attention_projections.h"
#include "asam/sparse_attention.h"
#include "flash/flash_params.h"
#include "runtime/named_weights.h"

namespace attn {
class ThreadPool;
}

namespace attn::asam {

struct HybridInfo {
  SparseStats local_stats;
  int64_t global_scores = 0;
  double sparse_ratio = 0.0;
};

class HybridASAM {
 public:
  // Throws AttnError as validate_asam_config(), or naming localWindowSize or numGlobalTokens
  // (>= 0).
  HybridASAM(const ASAMConfig& config, int local_window_size = 512, int num_global_tokens = 1);
  // The same checks without building the weights; returns the validated config.
  static ASAMConfig validated(const ASAMConfig& config, int local_window_size, int num_global_tokens);

  const ASAMConfig& config() const { return config_; }
  int local_window_size() const { return window_; }
  int num_global_tokens() const { return global_; }

  // As ASAMLayer::forward.
  void forward(int batch, int seq, const float* x, const MaskView& mask, float* out, HybridInfo* info,
               ThreadPool* pool) const;

  // q_proj.weight / bias, k_proj.*, v_proj.*, out_proj.*.
  std::vector<ParameterView> named_parameters() const { return proj_.named_parameters(); }
  // The projections as float32, fp16 or int8 (AttentionProjections::set_precision).
  void set_precision(WeightPrecision precision) { proj_.set_precision(precision); }
  WeightPrecision precision() const { return proj_.precision(); }
  int64_t projection_weight_bytes() const { return proj_.weight_bytes(); }
  // All of them, each of its size and finite; otherwise throws naming the weight and keeps
  // the old weights.
  void load_named(const NamedWeights& weights);

 private:
  ASAMConfig config_;
  int window_, global_;
  AttentionProjections proj_;
};

}  // namespace attn::asam
