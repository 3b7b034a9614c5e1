// Flash attention on NVIDIA GPUs (sm_80 and newer: mma.sync tensor-core kernels).
//
// Layouts follow the core (src/flash/flash_params.h) and seed 004:
//   q    [batch, seq_q, heads_q,  head_dim]    float16 / bfloat16 / float32
//   k    [batch, seq_k, heads_kv, head_dim]    same dtype as q
//   v    [batch, seq_k, heads_kv, head_dim]    same dtype as q
//   out  [batch, seq_q, heads_q,  head_dim]    q's dtype
//   bias [batch, heads_kv, seq_q, seq_k]       optional additive bias (seed 004's `zoh`);
//                                               q's dtype or float32; stride 0 broadcasts
//   active_mask                                 optional, like bias; nonzero = attend;
//                                               q's dtype, float32 or uint8
//   lse  [batch, heads_q, seq_q]  float32      optional; natural log of the softmax
//                                               denominator, -inf for rows that see no key
//   softmax [batch, heads_q, seq_q, seq_k]     optional (seed 004's return_softmax): the
//                                               attention probabilities before dropout, q's dtype
// Every tensor's last dimension is contiguous; other strides are free (multiples of 8
// elements for q/k/v/out so that rows stay 16-byte aligned).
//
// The score of query i and key j is
//   s = scale * q_i . k_j, then softcap * tanh(s / softcap) when softcap > 0, then + bias,
// and the pair is skipped when the causal rule hides it, active_mask is 0 there, or
// keep_window_size selected other keys (see below). Tiles of 128 queries x 64 keys that
// hold no attended pair are not computed. A row with no attended key gives zeros.
//
// window_left / window_right (a sliding window, ASAM's local pattern): when >= 0, query i
// attends only keys j with i + d - window_left <= j <= i + d + window_right, where d is 0
// (seq_k - seq_q under the bottom-right causal rule); tiles outside every row's window are
// not computed. -1 = unlimited on that side. Forward only.
//
// keep_window_size (seed 004): when > 0 and seq_k > keep_window_size, each query keeps only
// the keep_window_size keys with the largest bias among those the causal rule and
// active_mask leave it (keys tied with the last kept value are all kept).
//
// float32 inputs are converted to bfloat16 for the tensor cores (relative error of the
// output about 3e-3 against float64, the rounding of bf16 operands) and out is float32.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "attn_cuda/tensor.h"

namespace attn::cuda {

enum class Causal : int {
  kNone = 0,
  kTopLeft = 1,      // query i sees keys j <= i
  kBottomRight = 2,  // query i sees keys j <= i + seq_k - seq_q
};

struct FlashForwardArgs {
  TensorView q, k, v, out;
  TensorView bias;         // optional
  TensorView active_mask;  // optional
  TensorView lse;          // optional
  TensorView softmax;      // optional
  float scale = 0.0f;      // 0 = 1 / sqrt(head_dim)
  float softcap = 0.0f;    // 0 = off
  float dropout = 0.0f;    // probability of dropping a weight, in [0, 1)
  uint64_t seed = 0;       // dropout seed; the same mask as the CPU core for the same seed
  Causal causal = Causal::kNone;
  int64_t keep_window_size = 0;  // 0 = off
  int64_t window_left = -1;       // -1 = unlimited
  int64_t window_right = -1;      // -1 = unlimited
  cudaStream_t stream = nullptr;
};

// What reproduces the dropout mask (seed 004's rng_state).
struct RngState {
  uint64_t seed = 0;
  uint64_t offset = 0;
};

// Checks every argument (throws attn::AttnError naming the parameter) and launches the
// kernels on args.stream. Returns the dropout RNG state.
RngState flash_forward(const FlashForwardArgs& args);

// Only the checks of flash_forward (for callers that want to fail before allocating).
void validate_flash_forward(const FlashForwardArgs& args);

// Floating-point operations of the attended pairs (4 * pairs * head_dim), for TFLOP/s.
double flash_forward_flops(int64_t batch, int64_t heads_q, int64_t seq_q, int64_t seq_k,
                           int64_t head_dim, Causal causal);

}  // namespace attn::cuda
