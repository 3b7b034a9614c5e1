// Scalar backend: one lane. Also documents the interface every backend provides.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "simd/half_float.h"

namespace attn::simd {

constexpr int kLanes = 1;
constexpr const char* kBackendName = "scalar";
using Vec = float;
using Mask = bool;

inline Vec zero() { return 0.0f; }
inline Vec set1(float x) { return x; }
inline Vec load(const float* p) { return *p; }
inline void store(float* p, Vec v) { *p = v; }
inline Vec add(Vec a, Vec b) { return a + b; }
inline Vec sub(Vec a, Vec b) { return a - b; }
inline Vec mul(Vec a, Vec b) { return a * b; }
inline Vec div(Vec a, Vec b) { return a / b; }
// a * b + c (fused where the target has it).
inline Vec mul_add(Vec a, Vec b, Vec c) { return a * b + c; }
// max(a, b) = a > b ? a : b and min(a, b) = a < b ? a : b in every backend (x86's maxps /
// minps rule): when either operand is NaN the result is b. Callers put the operand whose NaN
// must come through second, e.g. max(set1(lo), x) clamps x and keeps a NaN x.
inline Vec max(Vec a, Vec b) { return a > b ? a : b; }
inline Vec min(Vec a, Vec b) { return a < b ? a : b; }
inline Vec round_nearest(Vec a) { return std::nearbyint(a); }
// 2^n for integral n in [-126, 127], given as a float. A NaN n (whose caller's result is
// NaN anyway) gives 2^0 rather than an undefined float-to-int conversion.
inline Vec pow2_int(Vec n) {
  int32_t bits = ((n == n ? static_cast<int32_t>(n) : 0) + 127) << 23;
  float r;
  std::memcpy(&r, &bits, sizeof r);
  return r;
}
inline Mask less(Vec a, Vec b) { return a < b; }
inline Vec select(Mask m, Vec if_true, Vec if_false) { return m ? if_true : if_false; }
inline float reduce_add(Vec v) { return v; }
inline float reduce_max(Vec v) { return v; }

// kLanes 16-bit values (bf16 / IEEE fp16 bits) widened to float32 lanes.
inline Vec load_bf16(const uint16_t* p) { return bf16_to_float(*p); }
inline Vec load_fp16(const uint16_t* p) { return fp16_to_float(*p); }


}  // namespace attn::simd
