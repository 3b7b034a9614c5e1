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
