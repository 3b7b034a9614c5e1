// WebAssembly SIMD128 backend (f32x4). Base SIMD128 has no FMA, so mul_add is mul + add.
#pragma once
#include <wasm_simd128.h>

#include <cstdint>

namespace attn::simd {

constexpr int kLanes = 4;
constexpr const char* kBackendName = "wasm-simd128";
using Vec = v128_t;
using Mask = v128_t;

inline Vec zero() { return wasm_f32x4_splat(0.0f); }
inline Vec set1(float x) { return wasm_f32x4_splat(x); }
inline Vec load(const float* p) { return wasm_v128_load(p); }
inline void store(float* p, Vec v) { wasm_v128_store(p, v); }
inline Vec add(Vec a, Vec b) { return wasm_f32x4_add(a, b); }
inline Vec sub(Vec a, Vec b) { return wasm_f32x4_sub(a, b); }
inline Vec mul(Vec a, Vec b) { return wasm_f32x4_mul(a, b); }
inline Vec div(Vec a, Vec b) { return wasm_f32x4_div(a, b); }
inline Vec mul_add(Vec a, Vec b, Vec c) { return wasm_f32x4_add(wasm_f32x4_mul(a, b), c); }
// pmax(a, b) = a < b ? b : a gives a when either is NaN; swapped, pmax(b, a) is x86's
// maxps(a, b), the NaN rule of every backend (see vec_scalar.h), and still one instruction.
inline Vec max(Vec a, Vec b) { return wasm_f32x4_pmax(b, a); }
inline Vec min(Vec a, Vec b) { return wasm_f32x4_pmin(b, a); }
inline Vec round_nearest(Vec a) { return wasm_f32x4_nearest(a); }
inline Vec pow2_int(Vec n) {
  v128_t i = wasm_i32x4_trunc_sat_f32x4(n);
  return wasm_i32x4_shl(wasm_i32x4_add(i, wasm_i32x4_splat(127)), 23);
}
inline Mask less(Vec a, Vec b) { return wasm_f32x4_lt(a, b); }
inline Vec select(Mask m, Vec if_true, Vec if_false) { return wasm_v128_bitselect(if_true, if_false, m); }
inline float reduce_add(Vec v) {
  v128_t s = wasm_f32x4_add(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  s = wasm_f32x4_add(s, wasm_i32x4_shuffle(s, s, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(s, 0);
}
inline float reduce_max(Vec v) {
  v128_t s = wasm_f32x4_pmax(v, wasm_i32x4_shuffle(v, v, 2, 3, 0, 1));
  s = wasm_f32x4_pmax(s, wasm_i32x4_shuffle(s, s, 1, 0, 3, 2));
  return wasm_f32x4_extract_lane(s, 0);
}

inline Vec load_bf16(const uint16_t* p) {
  return wasm_i32x4_shl(wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(p)), 16);
}
// SIMD128 has no half conversion: the half's exponent and mantissa shifted into float
// position read as a float 2^-112 times the value (subnormal halves too), so one multiply
// rebiases; inf and NaN get the all-ones exponent instead.
inline Vec load_fp16(const uint16_t* p) {
  const v128_t w = wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(p));
  const v128_t mag = wasm_v128_and(w, wasm_i32x4_splat(0x7fff));
  const v128_t shifted = wasm_i32x4_shl(mag, 13);
  const v128_t finite = wasm_f32x4_mul(shifted, wasm_f32x4_splat(0x1p112f));
  const v128_t quiet = wasm_v128_and(wasm_i32x4_gt(mag, wasm_i32x4_splat(0x7c00)),
                                     wasm_i32x4_splat(0x400000));  // NaNs come back quiet
  const v128_t special = wasm_v128_or(wasm_v128_or(shifted, quiet), wasm_i32x4_splat(0x7f800000));
  const v128_t is_special = wasm_i32x4_gt(mag, wasm_i32x4_splat(0x7bff));
  const v128_t sign = wasm_i32x4_shl(wasm_v128_and(w, wasm_i32x4_splat(0x8000)), 16);
  return wasm_v128_or(wasm_v128_bitselect(special, finite, is_special), sign);
}
// Finite halves (no inf or NaN), in order and at their value, in 4 operations after the
// load instead of 11: the half moved to the top 16 bits, shifted arithmetically so that its
// exponent and mantissa land in float position (the sign's copies cleared), then rebiased
// by one multiply (exact for subnormal halves too). Callers check their halves are finite.
inline Vec load_fp16_ordinary(const uint16_t* p) {
  const v128_t top = wasm_i32x4_shl(wasm_u32x4_extend_low_u16x8(wasm_v128_load64_zero(p)), 16);
  const v128_t bits = wasm_v128_and(wasm_i32x4_shr(top, 3), wasm_i32x4_splat(static_cast<int32_t>(0x8fffe000u)));
  return wasm_f32x4_mul(bits, wasm_f32x4_splat(0x1p112f));
}

// Pair loads: 2·kLanes stored halves in one 128-bit load, split into two vectors without
// widening instructions. Each 32-bit lane holds an even element in its low half and an odd
// one in its high half, so `lo` gets the even elements and `hi` the odd ones
// (kHalfPairsInterleaved); callers lay out the other operand the same way.
#define ATTN_SIMD_HALF_PAIRS 1
constexpr bool kHalfPairsInterleaved = true;
inline void load2_bf16(const uint16_t* p, Vec& lo, Vec& hi) {
  const v128_t w = wasm_v128_load(p);
  lo = wasm_i32x4_shl(w, 16);
  hi = wasm_v128_and(w, wasm_i32x4_splat(static_cast<int32_t>(0xffff0000u)));
}
// Finite halves (no inf or NaN) with the half in a lane's top 16 bits: an arithmetic shift
// puts its exponent and mantissa in float position, the mask clears the sign's copies and
// the other half's bits. The result reads as the value times 2^-112 (kFp16PairUnit),
// subnormal halves included; callers fold the 2^112 into their other operand rather than
// spend a multiply per vector. 5 operations for 8 halves.
constexpr float kFp16PairUnit = 0x1p-112f;
inline void load2_fp16_finite(const uint16_t* p, Vec& lo, Vec& hi) {
  const v128_t w = wasm_v128_load(p);
  const v128_t keep = wasm_i32x4_splat(static_cast<int32_t>(0x8fffe000u));
  lo = wasm_v128_and(wasm_i32x4_shr(wasm_i32x4_shl(w, 16), 3), keep);
  hi = wasm_v128_and(wasm_i32x4_shr(w, 3), keep);
}

}  // namespace attn::simd
