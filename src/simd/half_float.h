// Scalar conversions between float32 and the two 16-bit storage formats, with exact
// IEEE round-to-nearest-even on the way down. bf16 is the top half of a float32 (8
// exponent bits, 7 mantissa bits); fp16 is IEEE binary16 (5 and 10, max 65504).
// NaN stays NaN (made quiet, sign and payload kept); values past the largest finite become inf.
#pragma once
#include <cstdint>
#include <cstring>

namespace attn::simd {

inline uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline uint16_t float_to_bf16(float f) {
  const uint32_t u = float_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x0040u);
  // Adding 0x7fff plus the kept part's lowest bit rounds ties to even; a carry into the
  // exponent is the correct rounding up, and past the largest finite it gives inf.
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

inline float bf16_to_float(uint16_t h) { return bits_float(uint32_t{h} << 16); }

inline uint16_t float_to_fp16(float f) {
  const uint32_t u = float_bits(f);
  const uint32_t sign = (u >> 16) & 0x8000u;
  const uint32_t a = u & 0x7fffffffu;
  if (a > 0x7f800000u) return static_cast<uint16_t>(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
  // 65520 is halfway between 65504 and 2^16; the tie goes to the even side, 2^16 = inf.
  if (a >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (a < 0x38800000u) {  // below 2^-14: a subnormal half (or zero)
    const uint32_t e = a >> 23;
    if (e < 102) return static_cast<uint16_t>(sign);  // below 2^-25: rounds to zero
    const uint32_t mant = (a & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - e;  // value / 2^-24 = mant / 2^shift, shift in [14, 24]
    uint32_t r = mant >> shift;
    const uint32_t rest = mant & ((1u << shift) - 1u), half = 1u << (shift - 1);
    if (rest > half || (rest == half && (r & 1u))) ++r;  // 0x400 is 2^-14, encoded right
    return static_cast<uint16_t>(sign | r);
  }
  // Normal: rebias the exponent (127 -> 15) and round the 13 dropped mantissa bits.
  const uint32_t rounded = a + 0xfffu + ((a >> 13) & 1u);
  return static_cast<uint16_t>(sign | ((rounded - (112u << 23)) >> 13));
}

inline float fp16_to_float(uint16_t h) {
  const uint32_t sign = uint32_t{h & 0x8000u} << 16;
  const uint32_t mag = h & 0x7fffu;
  if (mag > 0x7c00u) return bits_float(sign | 0x7fc00000u | ((mag & 0x3ffu) << 13));  // quiet NaN
  if (mag == 0x7c00u) return bits_float(sign | 0x7f800000u);
  if (mag >= 0x0400u) return bits_float(sign | ((mag << 13) + (112u << 23)));
  const float sub = static_cast<float>(mag) * 5.9604644775390625e-8f;  // mag * 2^-24, exact
  return sign ? -sub : sub;
}

}  // namespace attn::simd
