// One step of the online softmax (Milakov & Gimelshein 2018; FlashAttention) for
// simd::kLanes query rows at once: fold a tile of logits, Sᵀ[key][query], into the
// rows' running max and sum, turn the tile into unnormalised weights in place, and
// give the factor by which each row's output accumulator must be rescaled.
#pragma once
#include <cfloat>
#include <cstdint>

#include "simd/vec_math.h"

namespace attn {

// st: `count` keys, one vector of kLanes queries each, `ld` floats apart (-inf where
// blocked). row_max / row_sum / alpha: kLanes floats for these queries.
inline void online_softmax_step(float* st, int64_t ld, int count, float* row_max, float* row_sum,
                                float* alpha) {
  using namespace simd;
  const Vec old_max = load(row_max);
  Vec new_max = old_max;
  for (int j = 0; j < count; ++j) new_max = max(new_max, load(st + j * ld));
  // Rows that have seen only blocked keys keep max -inf; shifting them by 0 instead
  // keeps exp(-inf - shift) = 0 rather than NaN.
  const Vec shift = select(less(new_max, set1(-FLT_MAX)), zero(), new_max);
  Vec sum = zero();
  for (int j = 0; j < count; ++j) {
    const Vec p = exp_nonpositive(sub(load(st + j * ld), shift));
    store(st + j * ld, p);
    sum = add(sum, p);
  }
  const Vec rescale = exp_nonpositive(sub(old_max, shift));  // 0 when old max was -inf
  store(row_sum, mul_add(load(row_sum), rescale, sum));
  store(row_max, new_max);
  store(alpha, rescale);
}

}  // namespace attn
