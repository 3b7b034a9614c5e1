// What turns a row of raw scores q·k (already multiplied by scale, or by
// scale/softcap when softcap is on) into the logits the softmax sees:
// softcap, the additive or boolean mask, the causal frontier, and the padding
// columns of the last tile. Shared by the flash forward and attention_scores.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

#include "flash/flash_params.h"
#include "simd/vec_math.h"

namespace attn {

struct ScoreRules {
  int seq_q = 0;
  int seq_k = 0;
  float softcap = 0.0f;
  bool causal = false;
  int64_t causal_offset = 0;  // query i sees keys j <= i + causal_offset
  MaskView mask;

  // Mask row for (batch, query head, query i); the caller adds the column.
  int64_t mask_row(int batch, int head, int i) const {
    return batch * mask.batch_stride + head * mask.head_stride + i * mask.row_stride;
  }

  // Number of leading keys query i may see at all (the causal frontier).
  int visible_keys(int i) const {
    if (!causal) return seq_k;
    const int64_t last = i + causal_offset;
    return last < 0 ? 0 : static_cast<int>(last + 1 < seq_k ? last + 1 : seq_k);
  }

  // Rewrites s[0, padded) for query i and keys j0 .. j0+padded-1 (count of them real)
  // into logits; columns past the frontier or past the real keys become -inf.
  void apply(float* s, int padded, int count, int j0, int64_t mask_row_offset, int i) const {
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    int valid = visible_keys(i) - j0;
    valid = valid < 0 ? 0 : (valid > count ? count : valid);
    if (softcap > 0.0f) {
      const simd::Vec cap = simd::set1(softcap);
      for (int j = 0; j < padded; j += simd::kLanes) {
        simd::store(s + j, simd::mul(cap, simd::tanh(simd::load(s + j))));
      }
    }
    if (mask.additive != nullptr) {
      const float* bias = mask.additive + mask_row_offset + j0;
      int j = 0;
      for (; j + simd::kLanes <= valid; j += simd::kLanes) {
        simd::store(s + j, simd::add(simd::load(s + j), simd::load(bias + j)));
      }
      for (; j < valid; ++j) s[j] += bias[j];
    } else if (mask.allowed != nullptr) {
      const uint8_t* allowed = mask.allowed + mask_row_offset + j0;
      for (int j = 0; j < valid; ++j) {
        if (!allowed[j]) s[j] = kNegInf;
      }
    }
    for (int j = valid; j < padded; ++j) s[j] = kNegInf;
  }
};

inline ScoreRules make_score_rules(const FlashShape& shape, const FlashOptions& options) {
  ScoreRules rules;
  rules.seq_q = shape.seq_q;
  rules.seq_k = shape.seq_k;
  rules.softcap = options.softcap;
  rules.causal = options.causal != CausalAlign::kNone;
  rules.causal_offset =
      options.causal == CausalAlign::kBottomRight ? int64_t{shape.seq_k} - shape.seq_q : 0;
  rules.mask = options.mask;
  return rules;
}

// The factor q is multiplied by before q·kᵀ: with softcap the division by softcap
// is folded in, so apply() only needs tanh and one multiplication.
inline float query_prescale(const FlashShape& shape, const FlashOptions& options) {
  const float scale = options.scale ? *options.scale : 1.0f / std::sqrt(float(shape.head_dim));
  return options.softcap > 0.0f ? scale / options.softcap : scale;
}

}  // namespace attn
