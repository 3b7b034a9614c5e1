// The flash-attention call: shapes, options and tensors.
//
// Layouts (row-major, contiguous):
//   q   [batch][seq_q][heads_q][head_dim]
//   k   [batch][seq_k][heads_kv][head_dim]
//   v   [batch][seq_k][heads_kv][value_dim]
//   out [batch][seq_q][heads_q][value_dim]
//   lse [batch][heads_q][seq_q]           (optional, natural log of the softmax denominator
//                                          of the scaled scores; -inf for fully masked rows)
// heads_q must be a multiple of heads_kv (GQA/MQA): query head h reads kv head
// h / (heads_q / heads_kv).
#pragma once
#include <cstdint>
#include <optional>

#include "flash/key_selector.h"

namespace attn {

enum class CausalAlign {
  kNone,
  kTopLeft,      // query i sees keys j <= i
  kBottomRight,  // query i sees keys j <= i + (seq_k - seq_q), as with a KV cache
};

// A mask of [seq_q][seq_k] per (batch, head), broadcast by zero strides.
// Exactly one of `additive` (0 attends, -inf blocks, finite values bias the score)
// or `allowed` (1 attends, 0 blocks) is set, or neither for no mask.
struct MaskView {
  const float* additive = nullptr;
  const uint8_t* allowed = nullptr;
  int64_t batch_stride = 0;  // elements between batches (0 = broadcast)
  int64_t head_stride = 0;   // elements between query heads (0 = broadcast)
  int64_t row_stride = 0;    // elements between query rows (usually seq_k)

  bool present() const { return additive != nullptr || allowed != nullptr; }
};

struct FlashShape {
  int batch = 1;
  int seq_q = 0;
  int seq_k = 0;
  int heads_q = 1;
  int heads_kv = 1;
  int head_dim = 0;
  int value_dim = 0;
};

struct FlashOptions {
  std::optional<float> scale;  // default 1 / sqrt(head_dim)
  float softcap = 0.0f;        // 0 = off; else scores become softcap * tanh(score / softcap)
  float dropout = 0.0f;        // probability of dropping an attention weight; 0 = off
  uint64_t seed = 0;           // dropout seed: same seed, same mask, whatever the threading
  CausalAlign causal = CausalAlign::kNone;
  int block_q = 0;             // query rows per task; 0 = automatic
  int block_k = 0;             // keys per tile; 0 = automatic
  MaskView mask;
  const KeySelector* keys = nullptr;  // block-sparse: the keys each row attends (else all)
};

struct FlashTensors {
  const float* q = nullptr;
  const float* k = nullptr;
  const float* v = nullptr;
  float* out = nullptr;
  float* lse = nullptr;  // optional
};

}  // namespace attn
