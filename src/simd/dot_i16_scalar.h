// Scalar integer dot products: one column pair per "vector".
#pragma once
#include <cmath>
#include <cstdint>

namespace attn::simd {

using IVec = int32_t;
struct PairVec {
  int32_t lo, hi;
};

inline IVec izero() { return 0; }
inline PairVec load_i8_pairs(const int8_t* p) { return {p[0], p[1]}; }
inline PairVec load_i16_pairs(const int16_t* p) { return {p[0], p[1]}; }
inline PairVec splat_pair(const int16_t* p) { return {p[0], p[1]}; }
inline IVec dot_pairs_add(IVec acc, PairVec a, PairVec b) { return acc + a.lo * b.lo + a.hi * b.hi; }
inline Vec to_float(IVec v) { return static_cast<float>(v); }
inline void store_i32(int32_t* p, IVec v) { *p = v; }

constexpr int kQuantBlock = 2;
inline void quantize_i16(const float* x, float inv, int16_t* out) {
  for (int i = 0; i < kQuantBlock; ++i) out[i] = static_cast<int16_t>(std::nearbyint(x[i] * inv));
}

}  // namespace attn::simd
