// Vectorized exp and tanh built from the backend's primitive operations, so every
// backend shares one implementation (and one accuracy).
#pragma once
#include "simd/vec.h"

namespace attn::simd {

// exp(x) with relative error about 2e-7 for x in [-87.3, 88.7]. Below that range it
// returns exactly 0, so a -inf score contributes nothing; above, it saturates.
inline Vec exp(Vec x) {
  const Vec hi = set1(88.3762626647949f);
  const Vec lo = set1(-87.3365478515625f);
  Mask underflow = less(x, lo);
  x = max(min(x, hi), lo);
  // x = n*ln2 + r with |r| <= ln2/2; ln2 split in two for an exact product.
  Vec n = round_nearest(mul(x, set1(1.44269504088896341f)));
  Vec r = sub(x, mul(n, set1(0.693359375f)));
  r = sub(r, mul(n, set1(-2.12194440e-4f)));
  // exp(r) by its Taylor polynomial of degree 6 in Horner form.
  Vec p = set1(1.0f / 720.0f);
  p = mul_add(p, r, set1(1.0f / 120.0f));
  p = mul_add(p, r, set1(1.0f / 24.0f));
  p = mul_add(p, r, set1(1.0f / 6.0f));
  p = mul_add(p, r, set1(0.5f));
  p = mul_add(p, r, set1(1.0f));
  p = mul_add(p, r, set1(1.0f));
  // 2^n for n up to 128 is split as 2^(n-1) * 2 so that pow2_int stays in range.
  Vec result = mul(mul(p, pow2_int(sub(n, set1(1.0f)))), set1(2.0f));
  return select(underflow, zero(), result);
}

// exp(x) for x <= 0, the softmax case (x = score - running max): no overflow side to
// guard, and clamping at -88 makes 2^n vanish exactly (n = -127 has no exponent bits),
// so -inf still gives exactly 0. About 25% fewer operations than exp().
inline Vec exp_nonpositive(Vec x) {
  x = max(x, set1(-88.0f));
  Vec n = round_nearest(mul(x, set1(1.44269504088896341f)));
  Vec r = sub(x, mul(n, set1(0.693359375f)));
  r = sub(r, mul(n, set1(-2.12194440e-4f)));
  Vec p = set1(1.0f / 720.0f);
  p = mul_add(p, r, set1(1.0f / 120.0f));
  p = mul_add(p, r, set1(1.0f / 24.0f));
  p = mul_add(p, r, set1(1.0f / 6.0f));
  p = mul_add(p, r, set1(0.5f));
  p = mul_add(p, r, set1(1.0f));
  p = mul_add(p, r, set1(1.0f));
  return mul(p, pow2_int(n));
}

// tanh(x) = sign(x) * (1 - e) / (1 + e), e = exp(-2|x|): no cancellation for large |x|.
inline Vec tanh(Vec x) {
  Vec ax = max(x, sub(zero(), x));
  Vec e = exp(mul(ax, set1(-2.0f)));
  Vec t = div(sub(set1(1.0f), e), add(set1(1.0f), e));
  return select(less(x, zero()), sub(zero(), t), t);
}

}  // namespace attn::simd
