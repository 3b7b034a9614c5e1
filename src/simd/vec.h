// One portable vector type for the kernels. Exactly one backend is compiled
// into a build, chosen here from what the compiler targets:
//   WebAssembly SIMD128 (f32x4), AVX-512 (16 lanes), AVX2+FMA (8 lanes), scalar (1 lane).
// Every backend provides the same small set of operations in namespace attn::simd
// (see vec_scalar.h for the list); vec_math.h builds exp/tanh on top of them.
#pragma once

#if defined(ATTN_FORCE_SCALAR)
#include "simd/vec_scalar.h"
#elif defined(__wasm_simd128__)
#include "simd/vec_wasm128.h"
#elif defined(__AVX512F__)
#include "simd/vec_avx512.h"
#elif defined(__AVX2__) && defined(__FMA__)
#include "simd/vec_avx2.h"
#else
#include "simd/vec_scalar.h"
#endif

namespace attn::simd {
#if !defined(ATTN_SIMD_HALF_PAIRS)
// Pair loads and the finite-half load for backends that widen halves natively (or one at a
// time): plain loads, elements in order, values unscaled. vec_wasm128.h has its own.
// Finite halves only: the general load is as fast here.
inline Vec load_fp16_ordinary(const uint16_t* p) { return load_fp16(p); }
constexpr bool kHalfPairsInterleaved = false;
constexpr float kFp16PairUnit = 1.0f;
inline void load2_bf16(const uint16_t* p, Vec& lo, Vec& hi) {
  lo = load_bf16(p);
  hi = load_bf16(p + kLanes);
}
inline void load2_fp16_finite(const uint16_t* p, Vec& lo, Vec& hi) {
  lo = load_fp16(p);
  hi = load_fp16(p + kLanes);
}
#endif
}  // namespace attn::simd
