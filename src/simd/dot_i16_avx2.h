// AVX2 integer dot products: vpmaddwd on int8 weights widened as they load (vpmovsxbw).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace attn::simd {

using IVec = __m256i;
using PairVec = __m256i;

inline IVec izero() { return _mm256_setzero_si256(); }
inline PairVec load_i8_pairs(const int8_t* p) {
  return _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline PairVec load_i16_pairs(const int16_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }
inline PairVec splat_pair(const int16_t* p) {
  int32_t pair;
  std::memcpy(&pair, p, sizeof pair);
  return _mm256_set1_epi32(pair);
}
inline IVec dot_pairs_add(IVec acc, PairVec a, PairVec b) { return _mm256_add_epi32(acc, _mm256_madd_epi16(a, b)); }
inline Vec to_float(IVec v) { return _mm256_cvtepi32_ps(v); }
inline void store_i32(int32_t* p, IVec v) { _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), v); }

constexpr int kQuantBlock = 16;
inline void quantize_i16(const float* x, float inv, int16_t* out) {
  const __m256 s = _mm256_set1_ps(inv);
  // cvtps rounds to nearest even (the default MXCSR mode).
  const __m256i lo = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), s));
  const __m256i hi = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), s));
  // packs works per 128-bit half: lo0 hi0 lo1 hi1 -> lo0 lo1 hi0 hi1.
  const __m256i packed = _mm256_permute4x64_epi64(_mm256_packs_epi32(lo, hi), 0xd8);
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), packed);
}

}  // namespace attn::simd
