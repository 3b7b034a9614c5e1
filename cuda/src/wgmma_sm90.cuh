// Hopper warpgroup matrix products (wgmma, sm_90a only) over shared-memory operands in the
// 128-byte swizzled layout, and the fences around them. A warpgroup is 4 consecutive warps
// (128 threads) starting at a warp index divisible by 4; its m64 accumulator rows are
// 16 per warp, each warp's in mma.sync's m16n8 layout: register 4j + e of n8 block j is
// row g + 8 (e >> 1), column 8j + 2t + (e & 1) (g = lane / 4, t = lane % 4).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cstdint>
#include <type_traits>

namespace attn::cuda::detail {

// A shared-memory matrix descriptor for the 128-byte swizzle: `address` (shared window),
// the leading and stride byte offsets (multiples of 16), swizzle mode 1 in bits 62-63.
// K-major operands (rows of 64 16-bit elements, 128 bytes, 8-row groups of 1024 bytes):
// stride = 1024, leading unused. MN-major operands (transposed): 64-element blocks along
// M / N at `leading` bytes, 8-row groups along K at `stride` bytes.
__device__ __forceinline__ uint64_t sw128_descriptor(uint32_t address, uint32_t leading, uint32_t stride) {
  return uint64_t((address & 0x3FFFF) >> 4) | uint64_t((leading >> 4) & 0x3FFF) << 16 |
         uint64_t((stride >> 4) & 0x3FFF) << 32 | uint64_t(1) << 62;
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
template <int kPending>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;\n" ::"n"(kPending) : "memory");
}
// Ties registers to this point of the program: the compiler may not move their reads or
// writes across it (accumulators and register operands of wgmma stay put until the wait).
template <int kN>
__device__ __forceinline__ void pin_registers(float (&r)[kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) asm volatile("" : "+f"(r[i])::"memory");
}
template <int kN>
__device__ __forceinline__ void pin_registers(uint32_t (&r)[kN]) {
#pragma unroll
  for (int i = 0; i < kN; ++i) asm volatile("" : "+r"(r[i])::"memory");
}

// Moves registers between warpgroups (all of a warpgroup's threads execute it): the
// warpgroup's per-thread allocation drops to, or rises to, kRegs (a multiple of 8).
template <int kRegs>
__device__ __forceinline__ void set_max_registers_dec() {
  asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}
template <int kRegs>
__device__ __forceinline__ void set_max_registers_inc() {
  asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;\n" ::"n"(kRegs));
}

// Operand lists of 32 and 64 float accumulators, spelled out once (inline PTX takes no
// register arrays); each product's two element types differ only in the type's name.
#define ATTN_WGMMA_D32 "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31])
#define ATTN_WGMMA_D64 "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
#define ATTN_WGMMA_REGS32 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31}"
#define ATTN_WGMMA_REGS64 "{%0,%1,%2,%3,%4,%5,%6,%7,%8,%9,%10,%11,%12,%13,%14,%15,%16,%17,%18,%19,%20,%21,%22,%23,%24,%25,%26,%27,%28,%29,%30,%31,%32,%33,%34,%35,%36,%37,%38,%39,%40,%41,%42,%43,%44,%45,%46,%47,%48,%49,%50,%51,%52,%53,%54,%55,%56,%57,%58,%59,%60,%61,%62,%63}"

// D (+)= A B: A [64][16] and B [16][128] both from shared memory, K-major (no transposes);
// `accumulate` = 0 overwrites D.
#define ATTN_WGMMA_SS_M64N128(TYPE)                                                                 \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"                                         \
               "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE " " ATTN_WGMMA_REGS64   \
               ", %64, %65, p, 1, 1, 0, 0;\n}\n"                                                    \
               : ATTN_WGMMA_D64                                                                     \
               : "l"(desc_a), "l"(desc_b), "r"(accumulate))
template <typename T>
__device__ __forceinline__ void wgmma_m64n128k16_ss(float (&d)[64], uint64_t desc_a, uint64_t desc_b, int accumulate) {
  if constexpr (std::is_same_v<T, __half>) ATTN_WGMMA_SS_M64N128("f16");
  else ATTN_WGMMA_SS_M64N128("bf16");
}

// D (+)= A B at N = 64: A [64][16] and B [16][64] from shared memory. TNSP_A / TNSP_B 0:
// K-major; 1: MN-major (transposed: the M / N elements of each K row contiguous, as B of
// the RS products below).
#define ATTN_WGMMA_SS_M64N64(TYPE, TNSP_A, TNSP_B)                                                  \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %34, 0;\n"                                         \
               "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE " " ATTN_WGMMA_REGS32    \
               ", %32, %33, p, 1, 1, " TNSP_A ", " TNSP_B ";\n}\n"                                  \
               : ATTN_WGMMA_D32                                                                     \
               : "l"(desc_a), "l"(desc_b), "r"(accumulate))
template <typename T>
__device__ __forceinline__ void wgmma_m64n64k16_ss(float (&d)[32], uint64_t desc_a, uint64_t desc_b, int accumulate) {
  if constexpr (std::is_same_v<T, __half>) ATTN_WGMMA_SS_M64N64("f16", "0", "0");
  else ATTN_WGMMA_SS_M64N64("bf16", "0", "0");
}
template <typename T>
__device__ __forceinline__ void wgmma_m64n64k16_ss_ta_tb(float (&d)[32], uint64_t desc_a, uint64_t desc_b,
                                                         int accumulate) {
  if constexpr (std::is_same_v<T, __half>) ATTN_WGMMA_SS_M64N64("f16", "1", "1");
  else ATTN_WGMMA_SS_M64N64("bf16", "1", "1");
}

// D += A B: A [64][16] from registers (mma.sync's A fragment per warp), B [16][N] from shared
// memory MN-major (transposed: B's rows of N elements are contiguous, e.g. V's [key][d]; at
// N = 128 the two 64-column blocks are the descriptor's `leading` bytes apart).
#define ATTN_WGMMA_RS_M64N64(TYPE)                                                                  \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %37, 0;\n"                                         \
               "wgmma.mma_async.sync.aligned.m64n64k16.f32." TYPE "." TYPE " " ATTN_WGMMA_REGS32    \
               ", {%32,%33,%34,%35}, %36, p, 1, 1, 1;\n}\n"                                         \
               : ATTN_WGMMA_D32                                                                     \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1))
#define ATTN_WGMMA_RS_M64N128(TYPE)                                                                 \
  asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"                                         \
               "wgmma.mma_async.sync.aligned.m64n128k16.f32." TYPE "." TYPE " " ATTN_WGMMA_REGS64   \
               ", {%64,%65,%66,%67}, %68, p, 1, 1, 1;\n}\n"                                         \
               : ATTN_WGMMA_D64                                                                     \
               : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(desc_b), "r"(1))
template <typename T>
__device__ __forceinline__ void wgmma_m64n64k16_rs_tb(float (&d)[32], const uint32_t (&a)[4], uint64_t desc_b) {
  if constexpr (std::is_same_v<T, __half>) ATTN_WGMMA_RS_M64N64("f16");
  else ATTN_WGMMA_RS_M64N64("bf16");
}
template <typename T>
__device__ __forceinline__ void wgmma_m64n128k16_rs_tb(float (&d)[64], const uint32_t (&a)[4], uint64_t desc_b) {
  if constexpr (std::is_same_v<T, __half>) ATTN_WGMMA_RS_M64N128("f16");
  else ATTN_WGMMA_RS_M64N128("bf16");
}

// D (+)= A B with N = kN (64 or 128), both operands from shared memory, K-major.
template <typename T, int kN>
__device__ __forceinline__ void wgmma_ss(float (&d)[kN / 2], uint64_t desc_a, uint64_t desc_b, int accumulate) {
  if constexpr (kN == 64) wgmma_m64n64k16_ss<T>(d, desc_a, desc_b, accumulate);
  else wgmma_m64n128k16_ss<T>(d, desc_a, desc_b, accumulate);
}
// D += A B with N = kN (64 or 128), A from registers, B MN-major.
template <typename T, int kN>
__device__ __forceinline__ void wgmma_rs_tb(float (&d)[kN / 2], const uint32_t (&a)[4], uint64_t desc_b) {
  if constexpr (kN == 64) wgmma_m64n64k16_rs_tb<T>(d, a, desc_b);
  else wgmma_m64n128k16_rs_tb<T>(d, a, desc_b);
}

}  // namespace attn::cuda::detail
