// WebAssembly SIMD128 integer dot products: i32x4.dot_i16x8_s, on int8 weights widened as
// they load (v128.load8x8_s) or on weights widened beforehand (a plain load).
#pragma once
#include <wasm_simd128.h>

#include <cstdint>

namespace attn::simd {

using IVec = v128_t;
using PairVec = v128_t;

inline IVec izero() { return wasm_i32x4_splat(0); }
inline PairVec load_i8_pairs(const int8_t* p) { return wasm_i16x8_load8x8(p); }
inline PairVec load_i16_pairs(const int16_t* p) { return wasm_v128_load(p); }
inline PairVec splat_pair(const int16_t* p) { return wasm_v128_load32_splat(p); }
inline IVec dot_pairs_add(IVec acc, PairVec a, PairVec b) { return wasm_i32x4_add(acc, wasm_i32x4_dot_i16x8(a, b)); }
inline Vec to_float(IVec v) { return wasm_f32x4_convert_i32x4(v); }
inline void store_i32(int32_t* p, IVec v) { wasm_v128_store(p, v); }

constexpr int kQuantBlock = 8;
inline void quantize_i16(const float* x, float inv, int16_t* out) {
  const v128_t s = wasm_f32x4_splat(inv);
  const v128_t lo = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x), s)));
  const v128_t hi = wasm_i32x4_trunc_sat_f32x4(wasm_f32x4_nearest(wasm_f32x4_mul(wasm_v128_load(x + 4), s)));
  wasm_v128_store(out, wasm_i16x8_narrow_i32x4(lo, hi));
}

}  // namespace attn::simd
