// ASAMConfig: the seed's configuration of an ASAM layer (000_e96939c6f04529a9.txt), with its
// names and defaults, plus two fields the real block-sparse kernel needs (block_size, seed).
//
// Heads. The seed's layer projects dim -> num_heads * dim_head (Q, K, V) and back, so the
// inner width need not equal dim, and dim_head = 64 is a default, "auto-computed if None".
// Here dim_head = 0 plays None: it becomes dim / num_heads, which num_heads must then divide
// (the PyTorch nn.MultiheadAttention rule). A dim_head > 0 is taken as given (the inner width
// is num_heads * dim_head, whatever dim is), as the seed's layer does; the defaults satisfy
// both rules (512 = 8 * 64).
//
// Errors name the option as the JS API spells it (numHeads for num_heads), as MultiHeadConfig
// does, since the bindings hand the name to the user unchanged.
#pragma once
#include <cstdint>
#include <string>

namespace attn::asam {

struct ASAMConfig {
  int dim = 512;
  int num_heads = 8;
  int dim_head = 64;    // 0 = dim / num_heads
  float dropout = 0.1f;  // in [0, 1)
  // "local", "strided", "random", "clustered", "hierarchical", or "adaptive": the
  // AdaptiveGate's pattern logits pick one of local / strided / clustered / hierarchical
  // per input.
  std::string pattern_type = "hierarchical";
  int window_size = 128;  // local window (keys per query); also the base of hierarchical
  int stride = 32;        // strided
  int num_clusters = 32;  // clustered
  bool use_adaptive_gate = true;
  int gate_hidden_dim = 128;
  // The gate's routing (SPEC.md): a head whose confidence is at least this runs the sparse
  // path only; below it the head runs dense attention too and mixes the two per token.
  // In [0, 1]: 0 never runs the dense path, 1 runs it unless every gate value is exactly
  // 0 or 1. Not in the seed, whose layer leaves the threshold implicit.
  float confidence_threshold = 0.5f;
  // Accepted for the seed's sake; has no effect: this core runs inference only, so there
  // are no activations kept for a backward pass to trade for recomputation.
  bool use_gradient_checkpointing = false;
  // Queries and keys per block of the block-sparse kernel: a multiple of 32 in [32, 1024]
  // (as src/asam/sparse_attention.h requires), the unit of its block layouts.
  int block_size = 64;
  // Initial weights and the random pattern: the same seed gives the same layer.
  uint64_t seed = 0;

  // Q/K/V width, num_heads * dim_head (after validation).
  int inner_dim() const { return num_heads * dim_head; }
};

// The config with dim_head resolved (0 -> dim / num_heads). Throws AttnError naming the first
// bad option: dim, numHeads, dimHead, dropout, patternType, windowSize, stride, numClusters,
// gateHiddenDim, confidenceThreshold, blockSize. Allocates nothing.
ASAMConfig validate_asam_config(ASAMConfig config);

// Whether `name` is a pattern_type ASAMConfig accepts.
bool is_asam_pattern_type(const std::string& name);

}  // namespace attn::asam
