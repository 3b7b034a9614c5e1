// The pre-pass of the dynamic-mask forward: it decides which key tiles of 64 of each
// (batch, kv head, query block of 128) hold at least one attended pair, and with
// keep_window_size it finds, per query, the bias value of its keep_window_size-th best
// candidate key (exact), so that the forward kernel skips everything else.
//
// One thread block per query row (thousands of rows in flight; a block walking the 128
// rows of a query block one by one was bound by each row's latency). The row sits in registers (8 keys per thread and chunk, read
// once). The threshold is found by counting: from the bits that every candidate shares,
// each step counts the candidates at or above three trial thresholds (two bits at once)
// and sums them over the block, so a 16-bit bias needs at most 8 steps and no histogram (a
// histogram in shared memory serialises its atomics when a smooth zoh puts most keys in a
// few bins). A 16-bit bias is compared two keys per instruction in its own type (bf16x2
// compares are native from sm_90); a float32 bias as 32-bit order-preserving keys.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math_constants.h>

#include <type_traits>

#include "mask_access.cuh"
#include "mask_prepass.h"

namespace attn::cuda::detail {
namespace {


// Float bits -> unsigned key with the same order (negative floats reversed), and back.
__device__ __forceinline__ uint32_t ordered_key32(uint32_t u) {
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}
__device__ __forceinline__ uint32_t key32_bits(uint32_t k) {
  return (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
}
// The same for the bit pattern of a 16-bit float (half or bfloat16: both put the sign on
// top and order their magnitudes like integers).
__device__ __forceinline__ uint32_t ordered_key16(uint32_t b) {
  return (b & 0x8000u) ? (~b & 0xffffu) : (b | 0x8000u);
}
__device__ __forceinline__ uint32_t key16_bits(uint32_t k) {
  return (k & 0x8000u) ? (k & 0x7fffu) : (~k & 0xffffu);
}

// One row of the bias / active mask, read 8 keys at a time: vector loads when the keys are
// contiguous and aligned (the usual seed-004 layout), element by element else.
struct RowView {
  const FwdParams& p;
  int b, hk, i;
  int64_t visible_end;  // keys [0, visible_end) pass the causal rule

  __device__ int64_t row_index(const Strides3Rows& st) const {
    return int64_t{b} * st.batch + int64_t{hk} * st.head + int64_t{i} * st.row;
  }
  // Raw bits of elements j0 .. j0 + 7 (j0 a multiple of 8), 8 x eb bytes into `out`, or
  // false when they need element-wise reads.
  __device__ bool load_vector(const void* base, int dtype, const Strides3Rows& st, int j0,
                              uint4 (&out)[2]) const {
    const int eb = element_bytes(dtype);
    const char* at = static_cast<const char*>(base) + (row_index(st) + j0) * eb;
    const int align = eb == 1 ? 8 : 16;
    if (st.col != 1 || j0 + 8 > p.seq_k || (reinterpret_cast<uintptr_t>(at) & (align - 1)) != 0)
      return false;
    if (eb == 1) {
      const uint2 w = *reinterpret_cast<const uint2*>(at);
      out[0] = make_uint4(w.x, w.y, 0, 0);
    } else {
      out[0] = reinterpret_cast<const uint4*>(at)[0];
      if (eb == 4) out[1] = reinterpret_cast<const uint4*>(at)[1];
    }
    return true;
  }
  // 32-bit word w of two 16-byte vectors (w a compile-time constant after unrolling).
  __device__ static uint32_t word(const uint4 (&r)[2], int w) {
    const uint4& q = r[w / 4];
    return w % 4 == 0 ? q.x : w % 4 == 1 ? q.y : w % 4 == 2 ? q.z : q.w;
  }
  // Bit e set when key j0 + e passes the causal rule and the active mask.
  __device__ uint32_t candidates8(int j0) const {
    uint32_t bits = 0xffu;
    if (p.active != nullptr) {
      bits = 0;
      uint4 raw[2];
      if (load_vector(p.active, p.active_dtype, p.active_stride, j0, raw)) {
        const int eb = element_bytes(p.active_dtype);
#pragma unroll
        for (int e = 0; e < 8; ++e) {  // nonzero, where a floating-point -0 counts as zero
          const uint32_t v = eb == 1 ? (word(raw, e / 4) >> (8 * (e % 4))) & 0xffu
                             : eb == 2 ? (word(raw, e / 2) >> (16 * (e % 2))) & 0x7fffu
                                       : word(raw, e) & 0x7fffffffu;
          bits |= (v != 0 ? 1u : 0u) << e;
        }
      } else {
        const int64_t first = row_index(p.active_stride);
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          const int j = j0 + e;
          if (j < p.seq_k && load_as_float(p.active, p.active_dtype, first + int64_t{j} * p.active_stride.col) != 0.0f)
            bits |= 1u << e;
        }
      }
    }
    const int64_t visible = visible_end - j0;  // keys j0 .. j0 + visible - 1 are visible
    if (visible < 8) bits &= visible <= 0 ? 0u : (1u << visible) - 1u;
    return bits;
  }
  // Bias bits of keys j0 .. j0 + 7: 16-bit patterns (half / bfloat16 bias) or float bits.
  __device__ void bias_bits8(int j0, uint32_t (&bits)[8]) const {
    uint4 raw[2];
    const int eb = element_bytes(p.bias_dtype);
    if (load_vector(p.bias, p.bias_dtype, p.bias_stride, j0, raw)) {
#pragma unroll
      for (int e = 0; e < 8; ++e) bits[e] = eb == 2 ? (word(raw, e / 2) >> (16 * (e & 1))) & 0xffffu : word(raw, e);
      return;
    }
    const int64_t first = row_index(p.bias_stride);
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const int64_t at = first + int64_t{j0 + e} * p.bias_stride.col;
      bits[e] = j0 + e >= p.seq_k ? 0u
                : eb == 2         ? uint32_t(static_cast<const uint16_t*>(p.bias)[at])
                                  : static_cast<const uint32_t*>(p.bias)[at];
    }
  }
};

// A pair of 16-bit floats and its 32 bits.
template <typename T2>
__device__ __forceinline__ T2 as2(uint32_t u) { return *reinterpret_cast<const T2*>(&u); }
template <typename T2>
__device__ __forceinline__ uint32_t bits2(T2 x) { return *reinterpret_cast<const uint32_t*>(&x); }

// The keys of one chunk of 8, in the form the counting compares. Non-candidates (masked,
// past the causal frontier or past seq_k) never count.
//
// Packed16<T2>: bias values two per register (half2 / bfloat162), non-candidates as NaN
// (0x7fff in both types), which compares false with everything. NaN biases therefore
// never count either.
template <typename T2>
struct Packed16 {
  // A pair of -inf: every value but NaN is >= it.
  static constexpr uint32_t kEveryCandidate = std::is_same_v<T2, __half2> ? 0xfc00fc00u : 0xff80ff80u;
  uint32_t v[4];

  __device__ void load(const RowView& row, bool select, int g) {
    const int j0 = 8 * g;
    const uint32_t cand = j0 < row.p.seq_k ? row.candidates8(j0) : 0u;
    uint32_t bits[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // +0: every candidate kept without a window
    if (select && cand != 0) row.bias_bits8(j0, bits);
#pragma unroll
    for (int e = 0; e < 8; ++e)
      if (!((cand >> e) & 1u)) bits[e] = 0x7fffu;
#pragma unroll
    for (int x = 0; x < 4; ++x) v[x] = bits[2 * x] | (bits[2 * x + 1] << 16);
  }
  // Candidates, and the and / or of their order-preserving keys.
  __device__ void stats(uint32_t (&s)[3]) const {
#pragma unroll
    for (int x = 0; x < 8; ++x) {
      const uint32_t h = (v[x / 2] >> (16 * (x & 1))) & 0xffffu;
      if (!nan16(h)) ++s[0], s[1] &= ordered_key16(h), s[2] |= ordered_key16(h);
    }
  }
  __device__ static bool nan16(uint32_t h) {  // exponent all ones, mantissa not zero
    constexpr uint32_t kInf = std::is_same_v<T2, __half2> ? 0x7c00u : 0x7f80u;
    return (h & 0x7fffu) > kInf;
  }
  // acc[x] += (number of keys >= trial[x]) in each half, for the first kTrials trials.
  __device__ void count(const uint32_t (&trial)[3], uint32_t (&acc)[3]) const {
#pragma unroll
    for (int x = 0; x < 3; ++x)
#pragma unroll
      for (int w = 0; w < 4; ++w) acc[x] = add2(acc[x], ge2(v[w], trial[x]));
  }
  __device__ bool any_at_least(uint32_t pair) const {
    uint32_t any = 0;
#pragma unroll
    for (int w = 0; w < 4; ++w) any |= ge2(v[w], pair);
    return any != 0;
  }
  // The trial threshold of an ordered key, as a pair of values to compare with.
  __device__ static uint32_t trial(uint32_t key) {
    const uint32_t b = key16_bits(key);
    return b | (b << 16);
  }
  __device__ static uint32_t total(uint32_t acc) { return uint32_t(low_float(acc) + high_float(acc)); }
  __device__ static uint32_t ge2(uint32_t a, uint32_t b) { return bits2(__hge2(as2<T2>(a), as2<T2>(b))); }
  __device__ static uint32_t add2(uint32_t a, uint32_t b) { return bits2(__hadd2(as2<T2>(a), as2<T2>(b))); }
  __device__ static float low_float(uint32_t a) { return __low2float(as2<T2>(a)); }
  __device__ static float high_float(uint32_t a) { return __high2float(as2<T2>(a)); }
  __device__ static float value(uint32_t key, int) {
    const uint32_t b = key16_bits(key);
    return low_float(b);
  }
};

// Float32 bias: order-preserving 32-bit keys, 0 for non-candidates (a candidate's key is
// at least 1, NaN biases excluded like above).
struct Keys32 {
  static constexpr uint32_t kEveryCandidate = 1;
  uint32_t k[8];

  __device__ void load(const RowView& row, bool select, int g) {
    const int j0 = 8 * g;
    const uint32_t cand = j0 < row.p.seq_k ? row.candidates8(j0) : 0u;
    uint32_t bits[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (select && cand != 0) row.bias_bits8(j0, bits);
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const bool nan = (bits[e] & 0x7fffffffu) > 0x7f800000u;
      k[e] = ((cand >> e) & 1u) && !nan ? max(ordered_key32(bits[e]), 1u) : 0u;
    }
  }
  __device__ void stats(uint32_t (&s)[3]) const {
#pragma unroll
    for (int e = 0; e < 8; ++e)
      if (k[e] != 0) ++s[0], s[1] &= k[e], s[2] |= k[e];
  }
  __device__ void count(const uint32_t (&trial)[3], uint32_t (&acc)[3]) const {
#pragma unroll
    for (int x = 0; x < 3; ++x)
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[x] += k[e] >= trial[x] ? 1u : 0u;
  }
  __device__ bool any_at_least(uint32_t key) const {
    bool any = false;
#pragma unroll
    for (int e = 0; e < 8; ++e) any |= k[e] >= key;
    return any;
  }
  __device__ static uint32_t trial(uint32_t key) { return key; }
  __device__ static uint32_t total(uint32_t acc) { return acc; }
  __device__ static float value(uint32_t key, int) { return __uint_as_float(key32_bits(key)); }
};

enum class Op { kSum, kAnd, kOr };
__device__ __forceinline__ uint32_t combine(uint32_t a, uint32_t b, Op op) {
  return op == Op::kSum ? a + b : op == Op::kAnd ? (a & b) : (a | b);
}

// Combines three values per thread over the block: shuffles, then per-warp slots in
// shared memory. Two rounds of slots alternate, so consecutive reductions need one
// barrier each.
template <int kThreads>
struct BlockReduce3 {
  static constexpr int kWarps = kThreads / 32;
  uint32_t (*slots)[kWarps][3];  // [2][warps][3]
  int round = 0;

  __device__ void run(uint32_t (&v)[3], const Op (&ops)[3]) {
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
#pragma unroll
    for (int off = 16; off > 0; off >>= 1)
#pragma unroll
      for (int x = 0; x < 3; ++x) v[x] = combine(v[x], __shfl_xor_sync(0xffffffffu, v[x], off), ops[x]);
    if (lane == 0)
#pragma unroll
      for (int x = 0; x < 3; ++x) slots[round][warp][x] = v[x];
    __syncthreads();
#pragma unroll
    for (int x = 0; x < 3; ++x) {
      uint32_t acc = slots[round][0][x];
#pragma unroll
      for (int w = 1; w < kWarps; ++w) acc = combine(acc, slots[round][w][x], ops[x]);
      v[x] = acc;
    }
    round ^= 1;
  }
};

// A row's chunks, chunk g = c * kThreads + thread: held in registers (kChunks > 0,
// read from memory once) or, for rows too long for that, read again at each visit
// (kChunks = 0). each() visits as many chunks in every thread, so callers may vote across
// the warp inside.
template <typename Chunk, int kThreads, int kChunks>
struct RowChunks {
  Chunk c[kChunks];
  __device__ void load(const RowView& row, bool select) {
#pragma unroll
    for (int x = 0; x < kChunks; ++x) c[x].load(row, select, x * kThreads + threadIdx.x);
  }
  template <typename F>
  __device__ void each(const RowView&, bool, F&& f) const {
#pragma unroll
    for (int x = 0; x < kChunks; ++x) f(x * kThreads + threadIdx.x, c[x]);
  }
};
template <typename Chunk, int kThreads>
struct RowChunks<Chunk, kThreads, 0> {
  __device__ void load(const RowView&, bool) {}
  template <typename F>
  __device__ void each(const RowView& row, bool select, F&& f) const {
    const int groups = (row.p.seq_k + 7) / 8;
    for (int base = 0; base < groups; base += kThreads) {
      Chunk c;
      c.load(row, select, base + threadIdx.x);
      f(base + threadIdx.x, c);
    }
  }
};

// The key of the keep_window-th best candidate: the largest key T with at least
// keep_window candidates >= T, two bits at a time below the bits every candidate shares.
template <typename Chunk, int kThreads, int kChunks>
__device__ uint32_t find_cut(const RowChunks<Chunk, kThreads, kChunks>& keys, const RowView& row,
                             uint32_t all_and, uint32_t any_or, int64_t keep_window,
                             BlockReduce3<kThreads>& reduce) {
  const uint32_t differ = all_and ^ any_or;
  if (differ == 0) return all_and;  // every candidate equal: that key
  int pos = 31 - __clz(differ);     // bits above pos are shared by every candidate
  uint32_t cut = all_and & ~((2u << pos) - 1u);
  for (; pos >= 0; pos -= 2) {
    const int shift = pos > 0 ? pos - 1 : 0;
    const uint32_t top_digit = pos > 0 ? 3u : 1u;
    uint32_t trial[3], n[3] = {0, 0, 0};  // candidates >= cut | digit << shift, digit 1..3
#pragma unroll
    for (int x = 0; x < 3; ++x) trial[x] = Chunk::trial(cut | (uint32_t(x + 1) << shift));
    // Per-thread sums stay in the chunk's own form while they are exact (registers: at
    // most 64 per 16-bit half); chunks read again are totalled one by one.
    keys.each(row, true, [&](int, const Chunk& c) {
      if constexpr (kChunks == 0) {
        uint32_t one[3] = {0, 0, 0};
        c.count(trial, one);
#pragma unroll
        for (int x = 0; x < 3; ++x) n[x] += Chunk::total(one[x]);
      } else {
        c.count(trial, n);
      }
    });
    if constexpr (kChunks != 0)
#pragma unroll
      for (int x = 0; x < 3; ++x) n[x] = Chunk::total(n[x]);
    reduce.run(n, {Op::kSum, Op::kSum, Op::kSum});
    uint32_t digit = 0;
    for (uint32_t x = 1; x <= top_digit; ++x)
      if (n[x - 1] >= uint64_t(keep_window)) digit = x;
    cut |= digit << shift;
  }
  return cut;
}

template <typename Chunk, int kThreads, int kChunks>
__global__ void __launch_bounds__(kThreads) mask_prepass_kernel(FwdParams p, int64_t keep_window,
                                                                float* threshold,
                                                                uint8_t* tile_active) {
  __shared__ uint32_t slots[2][BlockReduce3<kThreads>::kWarps][3];
  BlockReduce3<kThreads> reduce{slots};
  const int lane = threadIdx.x & 31;
  const int i = blockIdx.x, hk = blockIdx.y, b = blockIdx.z;
  RowView row{p, b, hk, i, p.seq_k};
  if (p.causal) {
    const int64_t end = i + p.causal_offset + 1;
    row.visible_end = end < 0 ? 0 : (end > p.seq_k ? p.seq_k : end);
  }
  const bool select = keep_window > 0 && p.seq_k > keep_window;
  RowChunks<Chunk, kThreads, kChunks> keys;
  keys.load(row, select);

  // Rows with at most keep_window candidates keep them all.
  uint32_t keep_from = Chunk::kEveryCandidate;
  if (select) {
    uint32_t s[3] = {0, 0xffffffffu, 0};  // candidates, and / or of their keys
    keys.each(row, select, [&](int, const Chunk& c) { c.stats(s); });
    reduce.run(s, {Op::kSum, Op::kAnd, Op::kOr});
    const bool cut_row = s[0] > uint64_t(keep_window);
    const uint32_t cut = cut_row ? find_cut(keys, row, s[1], s[2], keep_window, reduce) : 0u;
    if (cut_row) keep_from = Chunk::trial(cut);
    if (threadIdx.x == 0) {
      threshold[(int64_t{b} * p.heads_kv + hk) * p.seq_q + i] =
          cut_row ? Chunk::value(cut, p.bias_dtype) : -CUDART_INF_F;
    }
  }
  // A tile of 64 keys is the chunks of 8 consecutive threads.
  uint8_t* tiles = tile_active + ((int64_t{b} * p.heads_kv + hk) * p.q_tiles + i / kBlockM) * p.k_tiles;
  keys.each(row, select, [&](int g, const Chunk& c) {
    const uint32_t ballot = __ballot_sync(0xffffffffu, c.any_at_least(keep_from));
    if ((lane & 7) == 0 && ((ballot >> lane) & 0xffu) != 0) tiles[g >> 3] = 1;
  });
}

// The block size and the chunks of 8 keys per thread held in registers: 128 threads with
// up to 8 chunks (rows of 8192 keys), then 256 threads with up to 16 (32768 keys); longer
// rows are read again at each step. Fewer threads per row mean fewer warps in each step's
// reduction: at n = 4096 on an H200 the keep-window pre-pass took 2.05 ms with 256 threads,
// 1.62 ms with 128 and 1.80 ms with 64.
template <typename Chunk>
cudaError_t launch_chunk_type(const FwdParams& p, int64_t keep_window, float* threshold,
                              uint8_t* tile_active, cudaStream_t stream) {
  const dim3 grid(p.seq_q, p.heads_kv, p.batch);
  auto launch = [&](auto kernel, int threads) {
    kernel<<<grid, threads, 0, stream>>>(p, keep_window, threshold, tile_active);
  };
  const int groups = (p.seq_k + 7) / 8;
  if (groups <= 128 * 1) launch(mask_prepass_kernel<Chunk, 128, 1>, 128);
  else if (groups <= 128 * 2) launch(mask_prepass_kernel<Chunk, 128, 2>, 128);
  else if (groups <= 128 * 4) launch(mask_prepass_kernel<Chunk, 128, 4>, 128);
  else if (groups <= 128 * 8) launch(mask_prepass_kernel<Chunk, 128, 8>, 128);
  else if (groups <= 256 * 8) launch(mask_prepass_kernel<Chunk, 256, 8>, 256);
  else if (groups <= 256 * 16) launch(mask_prepass_kernel<Chunk, 256, 16>, 256);
  else launch(mask_prepass_kernel<Chunk, 256, 0>, 256);
  return cudaGetLastError();
}

}  // namespace

cudaError_t launch_mask_prepass(const FwdParams& p, int64_t keep_window, float* threshold,
                                uint8_t* tile_active, cudaStream_t stream) {
  const size_t tile_bytes = size_t(p.batch) * p.heads_kv * p.q_tiles * p.k_tiles;
  cudaError_t err = cudaMemsetAsync(tile_active, 0, tile_bytes, stream);  // rows only set flags
  if (err != cudaSuccess) return err;
  const bool select = keep_window > 0 && p.seq_k > keep_window;
  const DType bias = select ? static_cast<DType>(p.bias_dtype) : DType::kBFloat16;
  switch (bias) {
    case DType::kFloat16: return launch_chunk_type<Packed16<__half2>>(p, keep_window, threshold, tile_active, stream);
    case DType::kFloat32: return launch_chunk_type<Keys32>(p, keep_window, threshold, tile_active, stream);
    default: return launch_chunk_type<Packed16<__nv_bfloat162>>(p, keep_window, threshold, tile_active, stream);
  }
}

}  // namespace attn::cuda::detail
