// Linear attention on the GPU (SPEC.md): out_i = phi(q_i)^T S / (phi(q_i)^T z + eps) with
// S = sum_j phi(k_j) v_j^T and z = sum_j phi(k_j), over j <= i when causal. Cost
// O(n * F * dv) and memory O(n * F * dv / 64) for the causal chunk states, never O(n^2).
//   q   [batch, seq_q, heads, head_dim]     float16 / bfloat16 / float32
//   k   [batch, seq_k, heads, head_dim]     q's dtype
//   v   [batch, seq_k, heads, value_dim]    q's dtype
//   out [batch, seq_q, heads, value_dim]    q's dtype
// Feature maps phi, F features per head_dim inputs:
//   elu   elu(x) + 1                                F = head_dim
//   relu  max(x, 0)                                 F = head_dim
//   dpfp  Schlag et al. 2021, nu = 1: x' = [relu(x), relu(-x)] (2 head_dim values) and
//         phi_i = x'_i * x'_{(i - 1) mod 2 head_dim}  (torch.roll by one)   F = 2 head_dim
// Computed in float32 throughout (features, cuBLAS FP32 products without TF32, the
// division), whatever the input dtype. Causal needs seq_q = seq_k; it runs in chunks of 64
// rows: each chunk's state products, an exclusive prefix sum over chunks, and the masked
// 64 x 64 products inside a chunk.
#pragma once
#include <cuda_runtime.h>

#include "attn_cuda/tensor.h"

namespace attn::cuda {

enum class FeatureMap : int { kElu = 0, kRelu = 1, kDpfp = 2 };

struct LinearAttentionArgs {
  TensorView q, k, v, out;
  FeatureMap feature_map = FeatureMap::kElu;
  bool causal = false;
  float eps = 1e-6f;  // >= 0, added to the denominator
  cudaStream_t stream = nullptr;
};

// Checks every argument (throws attn::AttnError naming the parameter) and queues the work
// on args.stream (float32 scratch, stream-ordered).
void linear_attention_forward(const LinearAttentionArgs& args);

}  // namespace attn::cuda
