// Flash-attention forward on the CPU: tiled, online softmax, O(seq) extra memory
// per worker plus one packed copy of K and V. See flash_params.h for layouts.
#pragma once
#include "flash/flash_params.h"

namespace attn {

class ThreadPool;

// Throws AttnError naming the offending field when the call is malformed (shapes, options,
// mask strides; the mask's values are checked by the calls that read them).
void validate_flash(const FlashShape& shape, const FlashOptions& options);

// out (and lse when given) = softmax(mask(softcap(scale * q kᵀ))) v, with dropout on
// the weights. Rows whose keys are all masked give zeros (lse = -inf). NaN and inf follow
// README's "NaN and infinity" table: a NaN reaches exactly the rows (and, from V, the
// columns) that attend it; an additive mask holding +inf or NaN throws AttnError("mask").
void flash_forward(const FlashShape& shape, const FlashOptions& options,
                   const FlashTensors& tensors, ThreadPool* pool);

// The softmax weights themselves, [batch][heads_q][seq_q][seq_k] (no dropout):
// O(seq_q * seq_k) memory, for inspection and visualisation.
void attention_scores(const FlashShape& shape, const FlashOptions& options, const float* q,
                      const float* k, float* weights, ThreadPool* pool);

// Floating-point operations of a forward call, counting 2 per multiply-add of
// q kᵀ and of p v over the (batch, head, query, key) pairs the causal rule keeps.
double flash_flops(const FlashShape& shape, CausalAlign causal);

}  // namespace attn
