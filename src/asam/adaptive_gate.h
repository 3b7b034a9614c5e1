// AdaptiveGate: ASAM's gating network (seed 000: AdaptiveGate(dim, num_heads, hidden_dim,
// num_pools)). It decides, per token and head, how much the sparse path counts against the
// dense one, how sure it is, and which sparse pattern suits the input. Inference only.
//
// For x [batch][seq][dim], with one shared trunk per token and three heads on it:
//   h_t            = GELU(W1 x_t + b1)                    token_proj    W1 [hidden][dim]
//   gate_values    [b][head][t] = sigmoid(W2 h_t + b2)    gate_proj     W2 [heads][hidden]
//   confidence     [b][head]    = mean_t |2 g_t - 1|
//   pattern_logits [b]          = W3 [m_0, .., m_{P-1}] + b3           W3 [4][P * hidden]
//                  where m_p is the mean of h_t over segment p of P = num_pools contiguous
//                  segments of the sequence.
// - GELU is the tanh form (PyTorch's approximate = "tanh"), vectorised like the kernels.
// - gate_values lie in (0, 1): the weight of the sparse path for that token in that head
//   (SPEC.md: g * sparse + (1 - g) * dense). A logit W2 h + b2 above about 17 rounds to
//   exactly 1 in float32, as in PyTorch.
// - confidence is in [0, 1]: 0 when every gate sits at 0.5 (undecided), near 1 when the
//   gates are all near 0 or 1 (decisive: the layer may then run one path only).
// - Segments follow nn.AdaptiveAvgPool1d: segment p spans tokens floor(p n / P) up to
//   ceil((p + 1) n / P), so none is empty; a sequence shorter than num_pools has segments
//   that share tokens (with one token every segment is that token).
// - pattern_logits are in the order of kGatePatterns: local, strided, clustered,
//   hierarchical. "random" is never chosen by the gate.
//
// Weights start as PyTorch's nn.Linear does (weight and bias uniform in ±1/sqrt(fan_in)),
// drawn from runtime/uniform_rng.h in the order of named_parameters(): the same seed gives
// the same weights. The products run on gemm/gemm.h, blocks of 64 tokens in parallel on the
// pool; the sums behind confidence and the segment means are reduced in a fixed order, so
// the results do not depend on the pool or its size.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "gemm/gemm.h"
#include "runtime/named_weights.h"

namespace attn {
class ThreadPool;
}

namespace attn::asam {

inline constexpr int kGatePatternCount = 4;
inline constexpr const char* kGatePatterns[kGatePatternCount] = {"local", "strided", "clustered", "hierarchical"};

// The pattern four logits pick: the largest, the first of equals.
const char* gate_pattern(const float* logits);

struct GateOutput {
  std::vector<float> gate_values;     // [batch][heads][seq]
  std::vector<float> confidence;      // [batch][heads]
  std::vector<float> pattern_logits;  // [batch][kGatePatternCount]
};

using GateParameter = ParameterView;

class AdaptiveGate {
 public:
  // Throws AttnError naming dim, numHeads, hiddenDim or numPools.
  explicit AdaptiveGate(int dim, int num_heads = 8, int hidden_dim = 128, int num_pools = 4, uint64_t seed = 0);

  int dim() const { return dim_; }
  int num_heads() const { return heads_; }
  int hidden_dim() const { return hidden_; }
  int num_pools() const { return pools_; }

  // x [batch][seq][dim]; outputs as GateOutput's fields, written in full. Throws AttnError
  // naming batch, seqLen or the missing tensor.
  void forward(int batch, int seq, const float* x, float* gate_values, float* confidence, float* pattern_logits,
               ThreadPool* pool) const;
  GateOutput forward(int batch, int seq, const float* x, ThreadPool* pool) const;

  // token_proj.weight, token_proj.bias, gate_proj.weight, gate_proj.bias,
  // pattern_proj.weight, pattern_proj.bias.
  std::vector<GateParameter> named_parameters() const;
  int64_t param_count() const;
  // Every one of named_parameters()' names, each of its size and finite; otherwise throws
  // AttnError naming the weight and keeps the old weights.
  void load_named(const NamedWeights& weights);

 private:
  struct Weights {
    std::vector<float> token, token_bias, gate, gate_bias, pattern, pattern_bias;
  };
  // Each W^T packed for the GEMM once per weights change.
  struct Packed {
    PackedB token, gate, pattern;
  };
  void set_weights(Weights w);

  int dim_, heads_, hidden_, pools_;
  Weights w_;
  Packed packed_;
};

}  // namespace attn::asam
