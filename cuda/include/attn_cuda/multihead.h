// Multi-head and cross attention on the GPU, with PyTorch nn.MultiheadAttention semantics
// (batch_first = True; cross attention is the same call with keys and values of another
// sequence and width):
//   query [batch, seq_q, embed]   key [batch, seq_k, kdim]   value [batch, seq_k, vdim]
//   Q = query . q_weight^T + q_bias    (q_weight [embed, embed])
//   K = key   . k_weight^T + k_bias    (k_weight [embed, kdim])
//   V = value . v_weight^T + v_bias    (v_weight [embed, vdim])
//   per head h (columns h*head_dim ..): attention of Q_h over K_h, V_h (flash_forward: scale
//   1/sqrt(head_dim), causal, additive bias and active mask [batch, heads, seq_q, seq_k] with
//   broadcasting), then out = heads . out_weight^T + out_bias   (out [batch, seq_q, embed]).
// PyTorch's packed in_proj_weight [3*embed, embed] is passed as three row slices (views).
// Every tensor has one dtype (float16, bfloat16 or float32) and lives in GPU memory; query,
// key, value and out are contiguous, weights have contiguous rows. Biases are optional
// ([embed], contiguous). head_dim = embed / heads must be 64 or 128 (the flash kernels).
// The projections run on cuBLAS with float32 accumulation (float32 data: full FP32, no
// TF32); float32 attention goes through bf16 operands as flash_forward documents.
#pragma once
#include <cuda_runtime.h>

#include "attn_cuda/flash.h"
#include "attn_cuda/tensor.h"

namespace attn::cuda {

struct MultiHeadWeights {
  TensorView q_weight, k_weight, v_weight, out_weight;
  TensorView q_bias, k_bias, v_bias, out_bias;  // optional
};

struct MultiHeadArgs {
  TensorView query, key, value, out;
  int heads = 0;
  Causal causal = Causal::kNone;
  TensorView bias;         // optional, as flash_forward's (heads_kv = heads)
  TensorView active_mask;  // optional, as flash_forward's
  cudaStream_t stream = nullptr;
};

// Checks every argument (throws attn::AttnError naming the parameter) and runs the four
// projections and the attention on args.stream, with scratch memory for Q, K, V and the
// heads' outputs (stream-ordered, freed on return).
void multihead_forward(const MultiHeadWeights& weights, const MultiHeadArgs& args);

}  // namespace attn::cuda
