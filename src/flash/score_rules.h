// What turns raw scores q·k (already multiplied by scale·log2(e), or by scale/softcap when
// softcap is on) into the logits the softmax sees, in log2 units (the softmax then needs
// 2^x, cheaper than e^x): softcap, the additive or boolean mask, and the causal frontier.
// Shared by the flash forward and attention_scores.
//
// Scores arrive transposed, Sᵀ[key][query]: a vector holds one key's scores for
// simd::kLanes consecutive queries, so every rule (and the softmax after it) works
// on kLanes query rows at once.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

#include "flash/flash_params.h"
#include "simd/vec_math.h"

namespace attn {

constexpr float kLog2e = 1.44269504088896341f;
constexpr float kLn2 = 0.693147180559945309f;

struct ScoreRules {
  int seq_q = 0;
  int seq_k = 0;
  float softcap = 0.0f;
  bool causal = false;
  int64_t causal_offset = 0;  // query i sees keys j <= i + causal_offset
  MaskView mask;
  const KeySelector* keys = nullptr;
  int heads_q = 1;

  // Number of leading keys query i may see at all (the causal frontier).
  int visible_keys(int i) const {
    if (!causal) return seq_k;
    const int64_t last = i + causal_offset;
    return last < 0 ? 0 : static_cast<int>(last + 1 < seq_k ? last + 1 : seq_k);
  }

  // True when a tile of keys [j0, j0+count) for queries [i0, i0+rows) needs any rule;
  // tiles wholly inside the causal frontier and the selected keys of every row, with no
  // mask or softcap, skip apply().
  bool needs_apply(int j0, int count, int i0, int rows) const {
    return softcap > 0.0f || mask.present() || visible_keys(i0) < j0 + count ||
           (keys != nullptr && selection_cuts(j0, count, i0, rows));
  }
  // Whether the selector drops some key of the tile for some row of the block.
  bool selection_cuts(int64_t j0, int64_t count, int64_t i0, int64_t rows) const {
    switch (keys->kind) {
      case KeySelector::Kind::kBlockLists: return false;  // whole blocks
      case KeySelector::Kind::kRowRanges: return true;
      case KeySelector::Kind::kBand: {
        const int64_t j1 = j0 + count - 1, i1 = i0 + rows - 1;
        const bool inside = j0 >= i1 - keys->max_distance && j1 <= i0 + keys->max_distance;
        const bool clear_of_hole = keys->min_distance == 0 || j0 >= i1 + keys->min_distance ||
                                   j1 <= i0 - keys->min_distance;
        return !(inside && clear_of_hole);
      }
    }
    return true;
  }

  // Rewrites st[j * ld + l] for keys j0+j (j < count) and queries i0+l (l < kLanes)
  // into logits. Lanes past seq_q are padding and left alone.
  void apply(float* st, int64_t ld, int count, int j0, int batch, int head, int i0) const {
    constexpr float kNegInf = -std::numeric_limits<float>::infinity();
    if (softcap > 0.0f) {  // softcap * tanh(s / softcap), then into log2 units
      const simd::Vec cap = simd::set1(softcap * kLog2e);
      for (int j = 0; j < count; ++j) {
        simd::store(st + j * ld, simd::mul(cap, simd::tanh(simd::load(st + j * ld))));
      }
    }
    for (int l = 0; l < simd::kLanes && i0 + l < seq_q; ++l) {
      const int i = i0 + l;
      int valid = visible_keys(i) - j0;
      valid = valid < 0 ? 0 : (valid > count ? count : valid);
      const int64_t row = batch * mask.batch_stride + head * mask.head_stride + i * mask.row_stride + j0;
      if (mask.additive != nullptr) {
        // -inf is set, not added: a NaN score (NaN query or key) stays blocked.
        for (int j = 0; j < valid; ++j) {
          const float m = mask.additive[row + j];
          st[j * ld + l] = m == kNegInf ? kNegInf : st[j * ld + l] + m * kLog2e;
        }
      } else if (mask.allowed != nullptr) {
        for (int j = 0; j < valid; ++j) {
          if (!mask.allowed[row + j]) st[j * ld + l] = kNegInf;
        }
      }
      for (int j = valid; j < count; ++j) st[j * ld + l] = kNegInf;
      if (keys != nullptr && keys->kind != KeySelector::Kind::kBlockLists) {
        int64_t begin, end, hole_begin, hole_end;
        keys->row_span(i, seq_k, (int64_t{batch} * heads_q + head) * seq_q + i, begin, end);
        keys->row_hole(i, hole_begin, hole_end);
        for (int j = 0; j < valid; ++j) {
          const int64_t key = j0 + j;
          if (key < begin || key >= end || (key >= hole_begin && key < hole_end)) st[j * ld + l] = kNegInf;
        }
      }
    }
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
  rules.keys = options.keys;
  rules.heads_q = shape.heads_q;
  return rules;
}

// The factor q is multiplied by before q·kᵀ: scale·log2(e), so scores come out in log2
// units; with softcap the division by softcap is folded in instead (tanh needs the natural
// ratio), and apply() multiplies by softcap·log2(e) after the tanh.
inline float query_prescale(const FlashShape& shape, const FlashOptions& options) {
  const float scale = options.scale ? *options.scale : 1.0f / std::sqrt(float(shape.head_dim));
  return options.softcap > 0.0f ? scale / options.softcap : scale * kLog2e;
}

}  // namespace attn
