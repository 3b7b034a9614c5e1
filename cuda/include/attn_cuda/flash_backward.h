// Backward pass of attn::cuda::flash_forward (FlashAttention-2 algorithm, mma.sync).
//
// Inputs are those of the forward (layouts in attn_cuda/flash.h) plus:
//   out   [batch, seq_q, heads_q, head_dim]   the forward's output, q's dtype
//   dout  [batch, seq_q, heads_q, head_dim]   gradient of the loss w.r.t. out, q's dtype
//   lse   [batch, heads_q, seq_q] float32     the forward's lse (natural log, -inf = no key)
// Outputs (written, not accumulated):
//   dq [batch, seq_q, heads_q, head_dim], dk / dv [batch, seq_k, heads_kv, head_dim]:
//     q's dtype or float32 each. For GQA, dk / dv of a kv head sum its group's query heads.
//   dbias (optional) [batch, heads_kv, seq_q, seq_k], q's dtype or float32, full shape (no
//     broadcast): gradient w.r.t. the additive bias, summed over the kv group's query heads.
// Supported: float16 / bfloat16 inputs, head_dim 64 and 128, causal, GQA/MQA, scale,
// softcap, dropout (same seed as the forward reproduces its mask), bias, active_mask.
// keep_window_size is not supported: pass as active_mask the mask the window produced
// (the window's selection is piecewise constant, so it has no gradient of its own).
// Rows that see no key (lse = -inf) get exactly zero gradients.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "attn_cuda/flash.h"
#include "attn_cuda/tensor.h"

namespace attn::cuda {

struct FlashBackwardArgs {
  TensorView q, k, v, out, dout, lse;
  TensorView dq, dk, dv;   // outputs
  TensorView bias;         // optional, as the forward's
  TensorView active_mask;  // optional, as the forward's
  TensorView dbias;        // optional output
  float scale = 0.0f;      // 0 = 1 / sqrt(head_dim)
  float softcap = 0.0f;    // 0 = off
  float dropout = 0.0f;    // as the forward's
  uint64_t seed = 0;       // as the forward's
  Causal causal = Causal::kNone;
  cudaStream_t stream = nullptr;
};

// Checks every argument (throws attn::AttnError naming the parameter) and launches the
// kernels on args.stream (scratch memory is stream-ordered: cudaMallocAsync from the device's
// default pool, whose release threshold the library raises to 1 GiB so that the scratch is
// not handed back to the driver and mapped again at every call).
void flash_backward(const FlashBackwardArgs& args);

// Only the checks of flash_backward.
void validate_flash_backward(const FlashBackwardArgs& args);

}  // namespace attn::cuda
