// Vectorized exp and tanh built from the backend's primitive operations, so every
// backend shares one implementation (and one accuracy).
#pragma once
#include "simd/vec.h"

namespace attn::simd {

// Splits x = n*ln2 + r with |r| <= ln2/2 (ln2 in two parts, so n*ln2 is exact) and
// returns e^r from its Taylor polynomial of degree 6; e^x = result * 2^n.
inline Vec exp_reduced(Vec x, Vec& n) {
  n = round_nearest(mul(x, set1(1.44269504088896341f)));
  Vec r = sub(x, mul(n, set1(0.693359375f)));
  r = sub(r, mul(n, set1(-2.12194440e-4f)));
  Vec p = set1(1.0f / 720.0f);
  p = mul_add(p, r, set1(1.0f / 120.0f));
  p = mul_add(p, r, set1(1.0f / 24.0f));
  p = mul_add(p, r, set1(1.0f / 6.0f));
  p = mul_add(p, r, set1(0.5f));
  p = mul_add(p, r, set1(1.0f));
  return mul_add(p, r, set1(1.0f));
}

// exp(x) with relative error about 2e-7 for x in [-87.33, 88.72] (the whole normal
// float range). Below it returns exactly 0, so a -inf score contributes nothing;
// above it saturates at about FLT_MAX; NaN gives NaN.
inline Vec exp(Vec x) {
  const Vec hi = set1(88.72f);  // just under ln(FLT_MAX), so the result stays finite
  const Vec lo = set1(-87.3365479f);  // ln(FLT_MIN)
  Mask underflow = less(x, lo);
  x = max(lo, min(hi, x));  // x second: a NaN survives the clamp (vec_scalar.h)
  Vec n;
  const Vec p = exp_reduced(x, n);
  // n spans [-126, 128]; 2^n as 2^h * 2^(n-h) with h = round(n/2) keeps both
  // factors inside pow2_int's normal range.
  const Vec half = round_nearest(mul(n, set1(0.5f)));
  Vec result = mul(mul(p, pow2_int(half)), pow2_int(sub(n, half)));
  return select(underflow, zero(), result);
}

// exp(x) for x <= 0, the softmax case (x = score - running max): no overflow side to
// guard, and clamping at -88 makes 2^n vanish exactly (n = -127 has no exponent bits),
// so -inf still gives exactly 0 and NaN gives NaN. About 25% fewer operations than exp().
inline Vec exp_nonpositive(Vec x) {
  x = max(set1(-88.0f), x);
  Vec n;
  const Vec p = exp_reduced(x, n);
  return mul(p, pow2_int(n));
}

// 2^x for x <= 0, the softmax case once scores are in log2 units (x = score - running max):
// x = n + f with |f| <= 1/2, and 2^f = e^(f ln 2) from the same degree-6 Taylor polynomial
// as exp_reduced (|f ln 2| <= 0.35, relative error ~2e-7), coefficients (ln 2)^k / k! so no
// multiplication by ln 2 is needed. Clamping at -127 makes 2^n vanish exactly (n = -127 has no
// exponent bits), so -inf gives 0; a NaN x passes the clamp and gives NaN, which is how a NaN
// score poisons its softmax row. Four operations fewer than exp_nonpositive.
inline Vec exp2_nonpositive(Vec x) {
  x = max(set1(-127.0f), x);
  const Vec n = round_nearest(x);
  const Vec f = sub(x, n);
  Vec p = set1(1.5403530393381606e-4f);       // ln2^6 / 720
  p = mul_add(p, f, set1(1.3333558146428443e-3f));  // ln2^5 / 120
  p = mul_add(p, f, set1(9.6181291076284772e-3f));  // ln2^4 / 24
  p = mul_add(p, f, set1(5.5504108664821580e-2f));  // ln2^3 / 6
  p = mul_add(p, f, set1(2.4022650695910071e-1f));  // ln2^2 / 2
  p = mul_add(p, f, set1(6.9314718055994531e-1f));  // ln2
  p = mul_add(p, f, set1(1.0f));
  return mul(p, pow2_int(n));
}

// tanh(x) = sign(x) * (1 - e) / (1 + e), e = exp(-2|x|): no cancellation for large |x|;
// tanh(±inf) = ±1 and tanh(NaN) = NaN.
inline Vec tanh(Vec x) {
  Vec ax = max(x, sub(zero(), x));
  Vec e = exp(mul(ax, set1(-2.0f)));
  Vec t = div(sub(set1(1.0f), e), add(set1(1.0f), e));
  return select(less(x, zero()), sub(zero(), t), t);
}

}  // namespace attn::simd
