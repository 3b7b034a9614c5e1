// Integer dot products for the int8 GEMM (gemm/int8_projection.h), one backend per build,
// chosen as vec.h chooses (so kLanes int32 accumulators convert to exactly one Vec):
//   WebAssembly SIMD128 (i32x4.dot_i16x8_s), AVX-512BW (vpmaddwd, or vpdpwssd with VNNI),
//   AVX2 (vpmaddwd), scalar.
// The operations, in namespace attn::simd:
//   IVec                      kLanes int32 accumulators
//   PairVec                   kLanes pairs of int16 (2 * kLanes lanes)
//   izero()
//   load_i8_pairs(p)          2 * kLanes int8 at p, sign-extended: kLanes (column) pairs
//   load_i16_pairs(p)         the same from int16 (weights widened beforehand)
//   splat_pair(p)             the int16 pair p[0], p[1] in every pair slot
//   dot_pairs_add(acc, a, b)  acc[i] + a[2i] * b[2i] + a[2i+1] * b[2i+1]
//   to_float(v)               int32 lanes to float lanes (a Vec)
//   store_i32(p, v)
//   kQuantBlock, quantize_i16(x, inv, out)
//                             out[i] = round-to-nearest-even(x[i] * inv) for kQuantBlock
//                             values whose results fit in int16
#pragma once

#include "simd/vec.h"

#if defined(ATTN_FORCE_SCALAR)
#include "simd/dot_i16_scalar.h"
#elif defined(__wasm_simd128__)
#include "simd/dot_i16_wasm128.h"
#elif defined(__AVX512F__)
#include "simd/dot_i16_avx512.h"
#elif defined(__AVX2__) && defined(__FMA__)
#include "simd/dot_i16_avx2.h"
#else
#include "simd/dot_i16_scalar.h"
#endif
