// Multi-head and cross attention with PyTorch nn.MultiheadAttention semantics (batch first):
//   Q = query . Wq^T + bq,  K = key . Wk^T + bk,  V = value . Wv^T + bv
//   each head h (columns h * head_dim ..) attends with the flash kernel,
//   out = heads . Wo^T + bo
// query [batch][seq_q][model_dim], key [batch][seq_k][kdim], value [batch][seq_k][vdim],
// out [batch][seq_q][model_dim]; Wq [model_dim][model_dim], Wk [model_dim][kdim],
// Wv [model_dim][vdim], Wo [model_dim][model_dim] (PyTorch's [out_features][in_features]).
// The projections run on gemm/projection.h, row blocks in parallel on the pool.
//
// Weights start as PyTorch initialises them (xavier-uniform projections, kaiming-uniform
// output, zero biases), drawn from a seeded generator, so the same seed gives the same
// weights. They load from PyTorch's names or from the versioned binary format of save();
// a load that fails leaves the weights as they were.
//
// Dropout (on the attention weights, as PyTorch's) applies only in training mode, off until
// set_training(true), as in DenseAttention: by default every call is deterministic. Training
// call n (counting from 0, only calls that drop) draws its mask with seed `seed + n`.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "flash/flash_params.h"
#include "gemm/projection.h"
#include "gemm/projection_set.h"
#include "runtime/named_weights.h"

namespace attn {

class ThreadPool;

struct MultiHeadConfig {
  int model_dim = 0;
  int heads = 1;
  int kdim = 0;  // 0 = model_dim
  int vdim = 0;  // 0 = model_dim
  bool bias = true;
  float dropout = 0.0f;  // on the attention weights in training mode, in [0, 1)
  uint64_t seed = 0;     // initial weights (and dropout masks, seed + training call number)

  // The projections of a self-attention layer that runs its own attention between them
  // (adaattn): kdim = vdim = model_dim, and no dropout (the layer's, not the projections').
  static MultiHeadConfig self_attention(int model_dim, int heads, bool bias, uint64_t seed);
};

class MultiHeadAttention {
 public:
  // The configuration with kdim / vdim defaults filled in; throws AttnError naming the bad
  // option (modelDim, heads, kdim, vdim, dropout). Allocates nothing.
  static MultiHeadConfig validated(MultiHeadConfig config);

  // Throws as validated().
  explicit MultiHeadAttention(const MultiHeadConfig& config);

  const MultiHeadConfig& config() const { return config_; }
  int head_dim() const { return config_.model_dim / config_.heads; }
  int64_t param_count() const;

  void set_training(bool training) { training_ = training; }
  bool training() const { return training_; }
  // The dropout seed the next training call will use (seed + training calls so far).
  uint64_t next_dropout_seed() const { return config_.seed + calls_; }

  // mask: additive or boolean [seq_q][seq_k] per (batch, head) with broadcast strides, as
  // the flash call's. Keeps the projected Q and K (and a copy of the mask) so that
  // attention_weights() can recompute the last call's weights.
  void forward(int batch, int seq_q, int seq_k, const float* query, const float* key, const float* value,
               const MaskView& mask, CausalAlign causal, float* out, ThreadPool* pool);

  // The softmax weights of the last forward (before dropout), [batch][heads][seq_q][seq_k].
  // Throws AttnError("weights") before any forward.
  void attention_weights(float* out, ThreadPool* pool) const;
  int64_t last_weights_size() const;

  // One of forward()'s projections on its own, x [rows][in] -> y [rows][model_dim], for
  // layers that run their own attention between them (adaattn/DenseAttention).
  using Projection = ProjectionSet::Projection;  // kQuery, kKey, kValue, kOutput
  void project(Projection which, int64_t rows, const float* x, float* y, ThreadPool* pool) const {
    projections_.project(which, rows, x, y, pool);
  }

  std::vector<uint8_t> save() const;
  void load(const uint8_t* data, size_t size);
  // The four projections' weights stored as float32, fp16 or int8 (gemm/projection.h): the
  // float matrices are dropped, so the memory is really saved. Re-stores from the weights
  // in use (a quantized layer's values stay rounded); loads keep the precision. save() writes
  // the weights in use as float32, which quantize back to the same int8 codes / fp16 values.
  void set_precision(WeightPrecision precision) { projections_.set_precision(precision); }
  WeightPrecision precision() const { return projections_.precision(); }
  // Bytes of the projections' weights and biases as held now (float32 also keeps the
  // row-major matrices beside the packed panels).
  int64_t weight_bytes() const { return projections_.weight_bytes(); }

  // PyTorch's state-dict names: in_proj_weight (when kdim = vdim = model_dim) or
  // q_proj_weight / k_proj_weight / v_proj_weight, in_proj_bias, out_proj.weight,
  // out_proj.bias.
  void load_named(const NamedWeights& weights);

 private:
  // Matrices row-major [model_dim][in]; biases empty without bias.
  using Weights = ProjectionSet::Weights;

  MultiHeadConfig config_;
  ProjectionSet projections_;
  bool training_ = false;
  uint64_t calls_ = 0;  // training calls that dropped
  // The last forward, for attention_weights().
  int last_batch_ = 0, last_seq_q_ = 0, last_seq_k_ = 0;
  CausalAlign last_causal_ = CausalAlign::kNone;
  std::vector<float> last_q_, last_k_;
  std::vector<float> last_mask_additive_;
  std::vector<uint8_t> last_mask_allowed_;
  MaskView last_mask_;
};

}  // namespace attn
