// One step of the online softmax for one query row (Milakov & Gimelshein 2018;
// FlashAttention): fold a tile of logits into the running max m and sum l, turn the
// tile into unnormalised weights in place, and return the factor by which the
// row's output accumulator must be rescaled.
#pragma once
#include <cmath>
#include <limits>

#include "simd/vec_math.h"

namespace attn {

struct RowState {
  float max = -std::numeric_limits<float>::infinity();
  float sum = 0.0f;
};

// logits has `padded` entries (a multiple of simd::kLanes), -inf where blocked.
// Returns alpha = exp(old max - new max); the weights are exp(logit - new max).
inline float online_softmax_step(float* logits, int padded, RowState& row) {
  using namespace simd;
  Vec vmax = set1(-std::numeric_limits<float>::infinity());
  for (int j = 0; j < padded; j += kLanes) vmax = max(vmax, load(logits + j));
  const float tile_max = reduce_max(vmax);
  const float new_max = tile_max > row.max ? tile_max : row.max;
  if (new_max == -std::numeric_limits<float>::infinity()) {
    // Everything so far is blocked: weights are zero and there is nothing to rescale.
    for (int j = 0; j < padded; j += kLanes) store(logits + j, zero());
    return 1.0f;
  }
  const Vec shift = set1(new_max);
  Vec vsum = zero();
  for (int j = 0; j < padded; j += kLanes) {
    const Vec p = exp_nonpositive(sub(load(logits + j), shift));
    store(logits + j, p);
    vsum = add(vsum, p);
  }
  const float alpha = std::exp(row.max - new_max);  // 0 when row.max was -inf
  row.sum = row.sum * alpha + reduce_add(vsum);
  row.max = new_max;
  return alpha;
}

}  // namespace attn
