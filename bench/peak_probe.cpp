// WASM SIMD128 mul+add peak probe: CHAINS independent f32x4 chains of
// acc = acc * m + a, so the multiply and add units are kept busy without FMA
// (base SIMD128 has none). Built by bench/run.mjs with
//   em++ -O3 -msimd128 --no-entry -sSTANDALONE_WASM -o bench/build/peak_probe.wasm
// and called repeatedly from JS so V8's optimizing tier compiles it.
#include <wasm_simd128.h>
#include <emscripten/emscripten.h>

#ifndef CHAINS
#define CHAINS 12
#endif

extern "C" {

// Floating-point operations done by one call of peak_probe(iters).
EMSCRIPTEN_KEEPALIVE double peak_probe_flops(int iters) {
  return static_cast<double>(iters) * CHAINS * 4 /*lanes*/ * 2 /*mul + add*/;
}

// Returns a value depending on every chain so nothing is optimized away.
EMSCRIPTEN_KEEPALIVE float peak_probe(int iters, float m, float a) {
  const v128_t vm = wasm_f32x4_splat(m);
  const v128_t va = wasm_f32x4_splat(a);
  v128_t acc[CHAINS];
  for (int c = 0; c < CHAINS; ++c) acc[c] = wasm_f32x4_splat(1.0f + 0.001f * c);
  for (int i = 0; i < iters; ++i) {
#pragma clang loop unroll(full)
    for (int c = 0; c < CHAINS; ++c) acc[c] = wasm_f32x4_add(wasm_f32x4_mul(acc[c], vm), va);
  }
  v128_t sum = acc[0];
  for (int c = 1; c < CHAINS; ++c) sum = wasm_f32x4_add(sum, acc[c]);
  return wasm_f32x4_extract_lane(sum, 0) + wasm_f32x4_extract_lane(sum, 1) +
         wasm_f32x4_extract_lane(sum, 2) + wasm_f32x4_extract_lane(sum, 3);
}

}
