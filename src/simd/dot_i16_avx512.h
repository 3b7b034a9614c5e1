// AVX-512BW integer dot products: vpmaddwd + vpaddd, fused into vpdpwssd where the CPU has
// AVX512-VNNI; int8 weights are widened as they load (vpmovsxbw).
#pragma once
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#if !defined(__AVX512BW__)
#error "the AVX-512 int8 GEMM needs AVX512BW (vpmovsxbw, vpmaddwd on 512 bits)"
#endif

namespace attn::simd {

using IVec = __m512i;
using PairVec = __m512i;

inline IVec izero() { return _mm512_setzero_si512(); }
inline PairVec load_i8_pairs(const int8_t* p) {
  return _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline PairVec load_i16_pairs(const int16_t* p) { return _mm512_loadu_si512(p); }
inline PairVec splat_pair(const int16_t* p) {
  int32_t pair;
  std::memcpy(&pair, p, sizeof pair);
  return _mm512_set1_epi32(pair);
}
inline IVec dot_pairs_add(IVec acc, PairVec a, PairVec b) {
#if defined(__AVX512VNNI__)
  return _mm512_dpwssd_epi32(acc, a, b);
#else
  return _mm512_add_epi32(acc, _mm512_madd_epi16(a, b));
#endif
}
inline Vec to_float(IVec v) { return _mm512_cvtepi32_ps(v); }
inline void store_i32(int32_t* p, IVec v) { _mm512_storeu_si512(p, v); }

constexpr int kQuantBlock = 32;
inline void quantize_i16(const float* x, float inv, int16_t* out) {
  const __m512 s = _mm512_set1_ps(inv);
  // cvtps rounds to nearest even (the default MXCSR mode); vpmovdw keeps the low halves.
  const __m512i lo = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x), s));
  const __m512i hi = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + 16), s));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm512_cvtepi32_epi16(lo));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + 16), _mm512_cvtepi32_epi16(hi));
}

}  // namespace attn::simd
