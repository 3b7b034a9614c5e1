// ASAMLayer and ASAMEncoder: the seed's ASAM attention layer (000_e96939c6f04529a9.txt) with
// the routing of SPEC.md ("ASAM, made real"). Inference only.
//
// forward(x [batch][seq][dim]) -> out [batch][seq][dim]:
//   Q, K, V = x W^T + b (dim -> num_heads * dim_head, asam/attention_projections.h)
//   pattern  = config.pattern_type, or with "adaptive" the AdaptiveGate's largest pattern
//              logit (local / strided / clustered / hierarchical) per batch element
//   sparse   = block-sparse attention under that pattern (asam/sparse_attention.h), with
//              window_size, stride, block_size, seed, num_clusters and the layer's
//              centroids [heads][num_clusters][dim_head]; scale 1/sqrt(dim_head)
//   routing  per (batch element, head), when use_adaptive_gate:
//              confidence >= confidence_threshold -> sparse only
//              otherwise also dense attention (flash), mixed per token:
//                g_t * sparse_t + (1 - g_t) * dense_t   (g = the gate's value)
//            without the gate: sparse only, for every head.
//   out      = heads W_out^T + b_out
//
// info (return_info): the gate's outputs (gate_values [b][h][n], confidence [b][h],
// pattern_logits [b][4]; empty when the gate did not run: use_adaptive_gate off and a fixed
// pattern), the pattern of each batch element, which heads mixed in the dense path, what the
// kernels computed, and
//   sparse_ratio = 1 - (scores the sparse kernel computed + scores the dense path computed)
//                      / (batch * heads * seq * seq),
// the measured fraction of the dense layer's score computations this call skipped. Heads
// that mix count both paths, so a call that mixes many heads can report a negative ratio:
// it did more work than dense attention would have.
//
// Not supported: masks. The pattern is the attention mask, and the block-sparse kernel's
// parts (gathered residue classes, cluster orders) take no per-key mask; forward refuses a
// mask with an AttnError naming `mask`. Dropout: config.dropout is accepted and not applied
// (inference only, as PyTorch's eval()).
//
// Weights: named_parameters() lists q_proj.weight / bias, k_proj.*, v_proj.*, out_proj.*,
// centroids, and the gate's as gate.token_proj.weight, ...; load_named() takes them all;
// save() / load() use the versioned, checksummed format of runtime/weights_format.h (magic
// "ATKA"). A load that fails leaves the weights as they were.
#pragma once
#include <cstdint>
#include <vector>

#include "asam/adaptive_gate.h"
#include "asam/asam_config.h"
#include "asam/attention_projections.h"
#include "asam/sparse_attention.h"
#include "flash/flash_params.h"
#include "runtime/named_weights.h"

namespace attn {
class ThreadPool;
}

namespace attn::asam {

struct ASAMInfo {
  std::vector<float> gate_values;     // [batch][heads][seq]
  std::vector<float> confidence;      // [batch][heads]
  std::vector<float> pattern_logits;  // [batch][kGatePatternCount]
  std::vector<PatternType> patterns;  // [batch]: the pattern each batch element ran
  std::vector<uint8_t> mixed;         // [batch][heads]: 1 where the dense path ran and was mixed in
  SparseStats sparse_stats;           // the sparse kernel's counts, summed over the call
  int64_t dense_path_scores = 0;      // scores the dense path computed (seq * seq per mixed head)
  double sparse_ratio = 0.0;
};

class ASAMLayer {
 public:
  // Throws AttnError as validate_asam_config().
  explicit ASAMLayer(const ASAMConfig& config);

  const ASAMConfig& config() const { return config_; }  // validated (dim_head resolved)
  const AdaptiveGate& gate() const { return gate_; }
  // The sparse kernel's parameters for `type` under this layer's config and centroids.
  PatternParams pattern_params(PatternType type) const;

  // x [batch][seq][dim], out [batch][seq][dim]; info filled when given. Throws AttnError
  // naming batch, seqLen, x, out or mask.
  void forward(int batch, int seq, const float* x, const MaskView& mask, float* out, ASAMInfo* info,
               ThreadPool* pool) const;

  std::vector<ParameterView> named_parameters() const;
  int64_t param_count() const;
  // The projections' weights as float32, fp16 or int8 (AttentionProjections::set_precision;
  // the gate and centroids stay float32). save() writes the weights in use as float32.
  void set_precision(WeightPrecision precision) { proj_.set_precision(precision); }
  WeightPrecision precision() const { return proj_.precision(); }
  int64_t projection_weight_bytes() const { return proj_.weight_bytes(); }
  // Every name of named_parameters(), each of its size and finite; otherwise throws
  // AttnError naming the weight and keeps the old weights.
  void load_named(const NamedWeights& weights);
  std::vector<uint8_t> save() const;
  // Throws AttnError("weights") on a buffer of another format, version, shape, size or
  // checksum, keeping the old weights.
  void load(const uint8_t* data, size_t size);

 private:
  ASAMConfig config_;
  AttentionProjections proj_;
  std::vector<float> centroids_;  // [heads][num_clusters][dim_head]
  AdaptiveGate gate_;
};

// num_layers ASAMLayers applied in sequence (out of layer i is the input of layer i + 1),
// as the seed's encoder stacks them; no residual or normalisation is added around them.
// Layer i is made with config.seed replaced by derive_seed(config.seed, i)
// (runtime/uniform_rng.h), so the layers differ and the same config gives the same encoder.
class ASAMEncoder {
 public:
  // Throws AttnError as ASAMLayer, or naming numLayers.
  ASAMEncoder(const ASAMConfig& config, int num_layers = 6);

  int num_layers() const { return static_cast<int>(layers_.size()); }
  const ASAMLayer& layer(int i) const { return layers_[size_t(i)]; }
  ASAMLayer& layer(int i) { return layers_[size_t(i)]; }

  // Every layer's projections (ASAMLayer::set_precision), all or none: a layer whose
  // weights the form cannot hold throws AttnError("weights") and no layer changes.
  void set_precision(WeightPrecision precision);

  // As ASAMLayer::forward; infos, when given, gets one ASAMInfo per layer.
  void forward(int batch, int seq, const float* x, const MaskView& mask, float* out, std::vector<ASAMInfo>* infos,
               ThreadPool* pool) const;

 private:
  std::vector<ASAMLayer> layers_;
};

}  // namespace attn::asam
