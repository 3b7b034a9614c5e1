// AdaAttn's DenseAttention(embed_dim, num_heads, dropout, causal): multi-head attention over
// (batch, seq, embed) inputs that can also return its softmax weights averaged over heads.
//
//   Q = query . Wq^T + bq,  K = key . Wk^T + bk,  V = value . Wv^T + bv   (embed -> embed)
//   head h: softmax(Q_h K_h^T / sqrt(head_dim) + mask, causal) V_h on the flash kernel
//   out = heads . Wo^T + bo
// query [batch][seq_q][embed], key and value [batch][seq_k][embed] (seq_k may differ:
// cross-attention), out [batch][seq_q][embed], weights [batch][seq_q][seq_k].
//
// The projections and their weights are a MultiHeadAttention's (src/multihead): the same
// PyTorch initialisation from the seed, PyTorch names (in_proj_weight, out_proj.weight, ...)
// and the same binary format, so weights move between the two classes unchanged.
//
// Causal is top-left (query i sees keys j <= i, also when seq_q != seq_k). A query row whose
// keys are all masked attends to nothing: its heads are zero, so its output is the output
// projection of zero (out_proj.bias, or zero without bias) and its weight row is zero.
//
// Dropout (on the attention weights, as PyTorch's) applies only in training mode, which is
// off until set_training(true): this library runs inference, so by default every call is
// deterministic. Training call n (counting from 0, only calls that drop) draws its mask from
// the counter-based DropoutRng with seed `seed + n`.
#pragma once
#include <cstdint>
#include <vector>

#include "flash/flash_params.h"
#include "multihead/multihead_attention.h"
#include "runtime/named_weights.h"

namespace attn {

class ThreadPool;

struct DenseConfig {
  int embed_dim = 0;
  int num_heads = 1;
  float dropout = 0.0f;  // probability of dropping an attention weight in training, [0, 1)
  bool causal = false;   // top-left
  bool bias = true;      // biases on the four projections
  uint64_t seed = 0;     // initial weights; dropout masks use seed + training call number
};

class DenseAttention {
 public:
  // Throws AttnError naming the bad option (embedDim, numHeads, dropout). Allocates nothing.
  static DenseConfig validated(const DenseConfig& config);

  explicit DenseAttention(const DenseConfig& config);

  const DenseConfig& config() const { return config_; }
  int head_dim() const { return config_.embed_dim / config_.num_heads; }

  void set_training(bool training) { training_ = training; }
  bool training() const { return training_; }
  // The dropout seed the next training call will use (seed + training calls so far).
  uint64_t next_dropout_seed() const { return config_.seed + dropout_calls_; }

  // mask: additive or boolean per (batch, head), [seq_q][seq_k] rows with broadcast strides
  // as the flash call's; row_stride 0 gives every query the same row (a key-padding mask
  // [batch][seq_k] has batch_stride seq_k, head_stride 0, row_stride 0).
  // weights: nullptr, or [batch][seq_q][seq_k] to receive the weights averaged over heads,
  // the ones that multiplied V: after dropout in training (kept weights scaled by
  // 1 / (1 - dropout), so a row sums to 1 only in expectation), the softmax otherwise.
  // Without it nothing of size seq_q x seq_k is computed or held.
  void forward(int batch, int seq_q, int seq_k, const float* query, const float* key, const float* value,
               const MaskView& mask, float* out, float* weights, ThreadPool* pool);

  int64_t param_count() const { return projections_.param_count(); }
  std::vector<uint8_t> save() const { return projections_.save(); }
  // As MultiHeadAttention's; a load that fails leaves the weights as they were.
  void load(const uint8_t* data, size_t size) { projections_.load(data, size); }
  void load_named(const NamedWeights& weights) { projections_.load_named(weights); }

 private:

  DenseConfig config_;
  MultiHeadAttention projections_;  // the four projections and their weights
  bool training_ = false;
  uint64_t dropout_calls_ = 0;
};

}  // namespace attn
