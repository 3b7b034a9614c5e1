// One step of the online softmax (Milakov & Gimelshein 2018; FlashAttention) for
// Groups * simd::kLanes query rows at once: fold a tile of logits in log2 units (see
// score_rules.h), Sᵀ[key][query],
// into the rows' running max and sum, turn the tile into unnormalised weights in
// place, and give the factor by which each row's output accumulator must be rescaled.
// Groups adjacent vectors per key make each key's read one cache line.
#pragma once
#include <cfloat>
#include <cstdint>

#include "simd/vec_math.h"

namespace attn {

// st: `count` keys, Groups vectors of queries each, `ld` floats apart (-inf where
// blocked). row_max / row_sum / alpha: Groups * kLanes floats for these queries.
template <int Groups>
inline void online_softmax_step(float* st, int64_t ld, int count, float* row_max, float* row_sum,
                                float* alpha) {
  using namespace simd;
  Vec old_max[Groups], shift[Groups], sum[Groups];
  for (int g = 0; g < Groups; ++g) shift[g] = old_max[g] = load(row_max + g * kLanes);
  for (int j = 0; j < count; ++j) {
    for (int g = 0; g < Groups; ++g) shift[g] = max(shift[g], load(st + j * ld + g * kLanes));
  }
  for (int g = 0; g < Groups; ++g) {
    store(row_max + g * kLanes, shift[g]);
    // Rows that have seen only blocked keys keep max -inf; shifting them by 0 instead
    // keeps exp(-inf - shift) = 0 rather than NaN.
    shift[g] = select(less(shift[g], set1(-FLT_MAX)), zero(), shift[g]);
    sum[g] = zero();
  }
  for (int j = 0; j < count; ++j) {
    for (int g = 0; g < Groups; ++g) {
      float* p = st + j * ld + g * kLanes;
      const Vec e = exp2_nonpositive(sub(load(p), shift[g]));
      store(p, e);
      sum[g] = add(sum[g], e);
    }
  }
  for (int g = 0; g < Groups; ++g) {
    const Vec rescale = exp2_nonpositive(sub(old_max[g], shift[g]));  // 0 when old max was -inf
    store(row_sum + g * kLanes, mul_add(load(row_sum + g * kLanes), rescale, sum[g]));
    store(alpha + g * kLanes, rescale);
  }
}

}  // namespace attn
