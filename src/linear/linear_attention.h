// Linear attention (SPEC.md): out_i = phi(q_i)^T S / (phi(q_i)^T z + eps) with
// S = sum_j phi(k_j) v_j^T and z = sum_j phi(k_j), over j <= i when causal.
//
// Layouts (row-major, contiguous), as the flash call's:
//   q   [batch][seq_q][heads][head_dim]     k [batch][seq_k][heads][head_dim]
//   v   [batch][seq_k][heads][value_dim]    out [batch][seq_q][heads][value_dim]
// Feature maps (F features from head_dim inputs):
//   elu   elu(x) + 1                                          F = head_dim
//   relu  max(x, 0)                                           F = head_dim
//   dpfp  Schlag et al. 2021, nu = 1: x' = [relu(x), relu(-x)],
//         phi_i = x'_i * x'_{(i - 1) mod 2 head_dim}           F = 2 head_dim
// Time O(n * F * value_dim), memory O(heads * F * value_dim) per worker: keys and queries go
// in chunks of 64 rows, each chunk as matrix products (gemm/gemm.h). Causal: (batch, head)
// pairs run in parallel, a chunk's queries seeing the state of the chunks before it plus a
// masked 64 x 64 product inside it. Not causal: chunks of rows run in parallel with every
// head at once, the workers' partial states summed between the keys and the queries.
#pragma once
#include <cstdint>

namespace attn {

class ThreadPool;

enum class FeatureMap { kElu = 0, kRelu = 1, kDpfp = 2 };

struct LinearShape {
  int batch = 1;
  int seq_q = 0;
  int seq_k = 0;
  int heads = 1;
  int head_dim = 0;
  int value_dim = 0;
};

struct LinearOptions {
  FeatureMap feature_map = FeatureMap::kElu;
  bool causal = false;   // needs seq_q == seq_k
  float eps = 1e-6f;     // >= 0, added to the denominator
};

// Features per head for a map (F above).
int linear_feature_count(FeatureMap map, int head_dim);

// Throws AttnError naming the parameter for a bad shape or option.
void validate_linear(const LinearShape& shape, const LinearOptions& options);

void linear_attention(const LinearShape& shape, const LinearOptions& options, const float* q,
                      const float* k, const float* v, float* out, ThreadPool* pool);

}  // namespace attn
