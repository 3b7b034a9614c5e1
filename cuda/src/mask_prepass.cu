// The pre-pass of the dynamic-mask forward: it decides which key tiles of 64 of each
// (batch, kv head, query block of 128) hold at least one attended pair, and with
// keep_window_size it finds, per query, the bias value of its keep_window_size-th best
// candidate key (exact), so that the forward kernel skips everything else.
//
// One thread block walks up to 16 consecutive query rows of one (batch, kv head): enough
// blocks stay in flight (an earlier kernel that walked all 128 rows of a query block in one
// block was bound by each row's latency), and the rows' tile votes are or-ed and stored
// once. Each row sits in registers (8 keys per thread and chunk, read once, vector loads
// when the keys are contiguous, the mask turned into per-key masks two keys per
// instruction). The threshold is found by counting: a bracket [lo, hi) of order-preserving
// keys with at least keep_window candidates >= lo and fewer >= hi shrinks by four trial
// thresholds per step, each step one block reduction (warp redux, no shuffles). The first
// step of a row tries the previous row's answer and its neighbours (rows of a zoh are
// alike, so most rows need few steps), then gallops outwards from it, then splits the
// bracket in fifths; the first row of a block starts from quarters of the whole key range.
// A 16-bit bias is compared two keys per instruction in its own type (bf16x2 compares are
// native from sm_90) into 16-bit masks that are summed as integers; a float32 bias as
// 32-bit order-preserving keys. At n = 4096 (b = 2, 12 heads, bf16 zoh and mask, H100) the
// keep-window pass reads its 1.6 GB at 2.8 TB/s (0.57 ms; the previous kernel, one row per
// block and 8 reduction steps of 3 trials: 1.60 ms), longer rows at 3.1 TB/s.
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <math_constants.h>

#include <type_traits>

#include "grid_size.h"
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
// The bits of a 16-bit float (half or bfloat16: both put the sign on top and order their
// magnitudes like integers) from its key (key = bits | 0x8000 for positive, ~bits else).
__device__ __forceinline__ uint32_t key16_bits(uint32_t k) {
  return (k & 0x8000u) ? (k & 0x7fffu) : (~k & 0xffffu);
}

// Byte permute; a selector nibble with its top bit set replicates the sign of that byte.
__device__ __forceinline__ uint32_t prmt(uint32_t a, uint32_t b, uint32_t sel) {
  uint32_t d;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(sel));
  return d;
}
// Mask element tests, two keys per 32-bit result (0xffff in a half = active key). Nonzero
// means nonzero bits, where a floating-point -0 counts as zero (sign bit ignored).
// Two 16-bit elements: bit 15 of (x & 0x7fff) + 0x7fff is set iff x & 0x7fff != 0.
__device__ __forceinline__ uint32_t active16(uint32_t w) {
  return prmt((w & 0x7fff7fffu) + 0x7fff7fffu, 0u, 0xbb99u);
}
// Four 1-byte elements: the top bit of each byte of the result says nonzero.
__device__ __forceinline__ uint32_t active8_tops(uint32_t w) {
  return ((w & 0x7f7f7f7fu) + 0x7f7f7f7fu) | w;
}
// Two 32-bit elements.
__device__ __forceinline__ uint32_t active32(uint32_t lo, uint32_t hi) {
  return prmt((lo & 0x7fffffffu) + 0x7fffffffu, (hi & 0x7fffffffu) + 0x7fffffffu, 0xffbbu);
}
// One row of the bias / active mask. Vector loads when the keys are contiguous and the row
// starts aligned (the usual seed-004 layout), element by element else.
struct RowView {
  const FwdParams& p;
  int b, hk, i;
  int64_t visible_end;              // keys [0, visible_end) pass the causal rule
  const char* bias_row = nullptr;   // the row's first key when it loads as vectors
  const char* active_row = nullptr;
  int kind = -1;  // vector loads with a mask of `kind` bytes per key (0: no mask); -1: element-wise

  __device__ RowView(const FwdParams& params, int b_, int hk_, int i_, bool select)
      : p(params), b(b_), hk(hk_), i(i_), visible_end(params.seq_k) {
    if (p.causal) {
      const int64_t end = i + p.causal_offset + 1;
      visible_end = end < 0 ? 0 : (end > p.seq_k ? p.seq_k : end);
    }
    bias_row = vector_row(p.bias, p.bias_dtype, p.bias_stride);
    active_row = vector_row(p.active, p.active_dtype, p.active_stride);
    if (!select || bias_row != nullptr)
      kind = p.active == nullptr ? 0 : active_row != nullptr ? element_bytes(p.active_dtype) : -1;
  }
  __device__ int64_t row_index(const Strides3Rows& st) const {
    return int64_t{b} * st.batch + int64_t{hk} * st.head + int64_t{i} * st.row;
  }
  // Chunks of 8 keys are 8, 16 or 32 bytes: whole vectors when the row start is aligned.
  __device__ const char* vector_row(const void* base, int dtype, const Strides3Rows& st) const {
    if (base == nullptr || st.col != 1) return nullptr;
    const int eb = element_bytes(dtype);
    const char* at = static_cast<const char*>(base) + row_index(st) * eb;
    return (reinterpret_cast<uintptr_t>(at) & (eb == 1 ? 7u : 15u)) == 0 ? at : nullptr;
  }
  // Chunk j0 .. j0 + 7 loads as whole vectors (in the row, some key visible).
  __device__ bool whole(int j0) const { return kind >= 0 && j0 + 8 <= p.seq_k && j0 < visible_end; }

  // Element-wise reads (strided rows, the last partial chunk).
  // Bit e set when key j0 + e passes the causal rule and the active mask.
  __device__ uint32_t candidates8(int j0) const {
    uint32_t bits = 0xffu;
    if (p.active != nullptr) {
      bits = 0;
      const int64_t first = row_index(p.active_stride);
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const int j = j0 + e;
        if (j < p.seq_k && load_as_float(p.active, p.active_dtype, first + int64_t{j} * p.active_stride.col) != 0.0f)
          bits |= 1u << e;
      }
    }
    const int64_t visible = visible_end - j0;  // keys j0 .. j0 + visible - 1 are visible
    if (visible < 8) bits &= visible <= 0 ? 0u : (1u << visible) - 1u;
    return bits;
  }
  // Bias bits of keys j0 .. j0 + 7: 16-bit patterns (half / bfloat16 bias) or float bits.
  __device__ void bias_bits8(int j0, uint32_t (&bits)[8]) const {
    const int eb = element_bytes(p.bias_dtype);
    const int64_t first = row_index(p.bias_stride);
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const int64_t at = first + int64_t{j0 + e} * p.bias_stride.col;
      bits[e] = j0 + e >= p.seq_k ? 0u
                : eb == 2         ? uint32_t(static_cast<const uint16_t*>(p.bias)[at])
                                  : static_cast<const uint32_t*>(p.bias)[at];
    }
  }
  // Vector reads of chunk j0 (whole(j0)): bias words (16 or 32 bytes), and the mask: raw
  // bytes of a 1- or 2-byte mask, or the candidate masks of a 4-byte one (converted at
  // once, so one 16-byte slot per chunk suffices).
  template <int kBiasVecs>
  __device__ void load_bias(int j0, uint4 (&raw)[2]) const {
    const uint4* at = reinterpret_cast<const uint4*>(bias_row + j0 * (2 * kBiasVecs));  // 2 or 4 bytes a key
    raw[0] = at[0];
    if (kBiasVecs == 2) raw[1] = at[1];
  }
  __device__ uint4 load_mask(int j0) const {
    if (kind == 1) {
      const uint2 w = *reinterpret_cast<const uint2*>(active_row + j0);
      return make_uint4(w.x, w.y, 0, 0);
    }
    if (kind == 2) return *reinterpret_cast<const uint4*>(active_row + 2 * j0);
    if (kind == 4) {
      const uint4 a = reinterpret_cast<const uint4*>(active_row + 4 * j0)[0];
      const uint4 c = reinterpret_cast<const uint4*>(active_row + 4 * j0)[1];
      return make_uint4(active32(a.x, a.y), active32(a.z, a.w), active32(c.x, c.y), active32(c.z, c.w));
    }
    return make_uint4(0xffffffffu, 0xffffffffu, 0xffffffffu, 0xffffffffu);
  }
  // Candidate masks of a whole chunk from load_mask's result (two keys per word).
  __device__ void candidates(int j0, const uint4& raw, uint32_t (&m)[4]) const {
    if (kind == 1) {
      const uint32_t a = active8_tops(raw.x), c = active8_tops(raw.y);
      m[0] = prmt(a, 0u, 0x9988u);
      m[1] = prmt(a, 0u, 0xbbaau);
      m[2] = prmt(c, 0u, 0x9988u);
      m[3] = prmt(c, 0u, 0xbbaau);
    } else if (kind == 2) {
      m[0] = active16(raw.x);
      m[1] = active16(raw.y);
      m[2] = active16(raw.z);
      m[3] = active16(raw.w);
    } else {
      m[0] = raw.x, m[1] = raw.y, m[2] = raw.z, m[3] = raw.w;
    }
    const int64_t visible = visible_end - j0;
    if (visible < 8) {  // the chunk of the causal frontier
      const uint32_t bits = (1u << visible) - 1u;
#pragma unroll
      for (int w = 0; w < 4; ++w)
        m[w] &= (((bits >> (2 * w)) & 1u) ? 0x0000ffffu : 0u) | (((bits >> (2 * w + 1)) & 1u) ? 0xffff0000u : 0u);
    }
  }
};

// A 16-bit-float pair compare: 0xffff in each half where a >= b (false with NaN).
template <typename T2>
__device__ __forceinline__ uint32_t ge_mask(uint32_t a, uint32_t b) {
  uint32_t d;
  if constexpr (std::is_same_v<T2, __half2>) {
    asm("set.ge.u32.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
  } else {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    asm("set.ge.u32.bf16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
#else
    const __nv_bfloat162 r = __hge2(*reinterpret_cast<const __nv_bfloat162*>(&a),
                                    *reinterpret_cast<const __nv_bfloat162*>(&b));
    d = active16(*reinterpret_cast<const uint32_t*>(&r));  // 1.0 -> 0xffff
#endif
  }
  return d;
}

// The keys of one chunk of 8, in the form the counting compares. Non-candidates (masked,
// past the causal frontier or past seq_k) never count.
//
// Packed16<T2>: bias values two per register (half2 / bfloat162), non-candidates as NaN
// (0x7fff in both types), which compares false with everything. NaN biases therefore
// never count either. Counting subtracts the compare masks from a 32-bit sum: a key in the
// low half adds 1 - 65536, one in the high half 65536, so the sum holds L + (H - L) * 65536
// and decodes to L + H while L < 65536 and |H - L| < 32768 (rows of up to 32768 keys).
template <typename T2>
struct Packed16 {
  static constexpr bool kHalf = std::is_same_v<T2, __half2>;
  static constexpr int kBiasVecs = 1;  // 16 bytes of bias per chunk
  // Order-preserving keys of -inf and +inf: every candidate's key lies between them.
  static constexpr uint32_t kKeyNegInf = kHalf ? 0x03ffu : 0x007fu;
  static constexpr uint32_t kKeyPosInf = kHalf ? 0xfc00u : 0xff80u;
  static constexpr uint32_t kNaN2 = 0x7fff7fffu;
  uint32_t v[4];

  __device__ void make(const RowView& row, bool select, int j0, const uint4 (&braw)[2], const uint4& mraw) {
    uint32_t m[4];
    row.candidates(j0, mraw, m);
    const uint32_t bias[4] = {braw[0].x, braw[0].y, braw[0].z, braw[0].w};
#pragma unroll
    for (int w = 0; w < 4; ++w) v[w] = select ? (bias[w] & m[w]) | (kNaN2 & ~m[w]) : kNaN2 & ~m[w];
  }
  // Element-wise (or nothing visible: all NaN).
  __device__ void load_slow(const RowView& row, bool select, int j0) {
    const uint32_t cand = j0 < row.visible_end ? row.candidates8(j0) : 0u;
    uint32_t bits[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // +0: every candidate kept without a window
    if (select && cand != 0) row.bias_bits8(j0, bits);
#pragma unroll
    for (int e = 0; e < 8; ++e)
      if (!((cand >> e) & 1u)) bits[e] = 0x7fffu;
#pragma unroll
    for (int x = 0; x < 4; ++x) v[x] = bits[2 * x] | (bits[2 * x + 1] << 16);
  }
  // acc[x] accumulates the keys >= trial[x] (encoded as above).
  __device__ void count(const uint32_t (&trial)[4], uint32_t (&acc)[4]) const {
#pragma unroll
    for (int x = 0; x < 4; ++x)
#pragma unroll
      for (int w = 0; w < 4; w += 2) acc[x] = acc[x] - ge_mask<T2>(v[w], trial[x]) - ge_mask<T2>(v[w + 1], trial[x]);
  }
  __device__ static uint32_t total(uint32_t acc) {
    return 2u * (acc & 0xffffu) + uint32_t(int32_t(acc) >> 16);
  }
  // Bit e set where key e of the chunk is a candidate >= pair.
  __device__ uint32_t kept8(uint32_t pair) const {
    uint32_t bits = 0;
#pragma unroll
    for (int w = 0; w < 4; ++w) {
      const uint32_t m = ge_mask<T2>(v[w], pair);
      bits |= ((m & 1u) | ((m >> 15) & 2u)) << (2 * w);
    }
    return bits;
  }
  // The trial threshold of an ordered key, as a pair of values to compare with.
  __device__ static uint32_t trial(uint32_t key) {
    const uint32_t b = key16_bits(key);
    return b | (b << 16);
  }
  __device__ static float value(uint32_t key) {
    const uint32_t b = key16_bits(key);
    if constexpr (kHalf) return __half2float(__ushort_as_half(static_cast<unsigned short>(b)));
    else return __bfloat162float(__ushort_as_bfloat16(static_cast<unsigned short>(b)));
  }
};

// Float32 bias: order-preserving 32-bit keys, 0 for non-candidates (a candidate's key is
// at least key(-inf) > 0; NaN biases excluded like above).
struct Keys32 {
  static constexpr int kBiasVecs = 2;  // 32 bytes of bias per chunk
  static constexpr uint32_t kKeyNegInf = 0x007fffffu;
  static constexpr uint32_t kKeyPosInf = 0xff800000u;
  uint32_t k[8];

  __device__ void set(uint32_t cand, const uint32_t (&bits)[8]) {
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const bool nan = (bits[e] & 0x7fffffffu) > 0x7f800000u;
      k[e] = ((cand >> e) & 1u) && !nan ? ordered_key32(bits[e]) : 0u;
    }
  }
  __device__ void make(const RowView& row, bool select, int j0, const uint4 (&braw)[2], const uint4& mraw) {
    uint32_t m[4];
    row.candidates(j0, mraw, m);
    uint32_t cand = 0;
#pragma unroll
    for (int e = 0; e < 8; ++e) cand |= ((m[e / 2] >> (16 * (e & 1))) & 1u) << e;
    const uint32_t bits[8] = {braw[0].x, braw[0].y, braw[0].z, braw[0].w, braw[1].x, braw[1].y, braw[1].z, braw[1].w};
#pragma unroll
    for (int e = 0; e < 8; ++e) {
      const bool nan = (bits[e] & 0x7fffffffu) > 0x7f800000u;
      k[e] = ((cand >> e) & 1u) && !(select && nan) ? (select ? ordered_key32(bits[e]) : 0x80000000u) : 0u;
    }
  }
  __device__ void load_slow(const RowView& row, bool select, int j0) {
    const uint32_t cand = j0 < row.visible_end ? row.candidates8(j0) : 0u;
    uint32_t bits[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    if (select && cand != 0) row.bias_bits8(j0, bits);
    set(cand, bits);
  }
  __device__ void count(const uint32_t (&trial)[4], uint32_t (&acc)[4]) const {
#pragma unroll
    for (int x = 0; x < 4; ++x)
#pragma unroll
      for (int e = 0; e < 8; ++e) acc[x] += k[e] >= trial[x] ? 1u : 0u;
  }
  __device__ static uint32_t total(uint32_t acc) { return acc; }
  __device__ uint32_t kept8(uint32_t key) const {
    uint32_t bits = 0;
#pragma unroll
    for (int e = 0; e < 8; ++e) bits |= (k[e] >= key ? 1u : 0u) << e;
    return bits;
  }
  __device__ static uint32_t trial(uint32_t key) { return key; }
  __device__ static float value(uint32_t key) { return __uint_as_float(key32_bits(key)); }
};

// Sums four values per thread over the block: warp redux, then per-warp slots in shared
// memory. Two rounds of slots alternate, so consecutive reductions need one barrier each.
template <int kThreads>
struct BlockSum4 {
  static constexpr int kWarps = kThreads / 32;
  uint4 (*slots)[kWarps];  // [2][warps]
  int round = 0;

  __device__ static uint32_t warp_sum(uint32_t v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    return __reduce_add_sync(0xffffffffu, v);
#else
#pragma unroll
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    return v;
#endif
  }
  __device__ void run(uint32_t (&v)[4]) {
    const uint4 mine = make_uint4(warp_sum(v[0]), warp_sum(v[1]), warp_sum(v[2]), warp_sum(v[3]));
    if ((threadIdx.x & 31) == 0) slots[round][threadIdx.x >> 5] = mine;
    __syncthreads();
    uint4 s = slots[round][0];
#pragma unroll
    for (int w = 1; w < kWarps; ++w) {
      const uint4 o = slots[round][w];
      s.x += o.x, s.y += o.y, s.z += o.z, s.w += o.w;
    }
    v[0] = s.x, v[1] = s.y, v[2] = s.z, v[3] = s.w;
    round ^= 1;
  }
};

// One chunk of a row, read with the row's kind of loads.
template <typename Chunk>
__device__ void load_chunk(Chunk& c, const RowView& row, bool select, int g) {
  const int j0 = 8 * g;
  if (!row.whole(j0)) {
    c.load_slow(row, select, j0);
    return;
  }
  uint4 braw[2] = {};
  if (select) row.load_bias<Chunk::kBiasVecs>(j0, braw);
  c.make(row, select, j0, braw, row.load_mask(j0));
}

// A row's chunks, chunk g = c * kThreads + thread: held in registers (kChunks > 0,
// read from memory once) or, for rows too long for that, read again at each visit
// (kChunks = 0). each() visits as many chunks in every thread, so callers may vote across
// the warp inside.
template <typename Chunk, int kThreads, int kChunks>
struct RowChunks {
  Chunk c[kChunks];
  // Vector loads go out in groups of four chunks before any is used, so their latencies
  // overlap; the rest (strided rows, the partial last chunk) element by element.
  __device__ void load(const RowView& row, bool select) {
    constexpr int kGroup = kChunks < 4 ? kChunks : 4;
#pragma unroll
    for (int c0 = 0; c0 < kChunks; c0 += kGroup) {
      uint4 braw[kGroup][2], mraw[kGroup];
#pragma unroll
      for (int x = 0; x < kGroup; ++x) {
        const int j0 = 8 * ((c0 + x) * kThreads + int(threadIdx.x));
        braw[x][0] = braw[x][1] = mraw[x] = make_uint4(0, 0, 0, 0);
        if (row.whole(j0)) {
          if (select) row.load_bias<Chunk::kBiasVecs>(j0, braw[x]);
          mraw[x] = row.load_mask(j0);
        }
      }
#pragma unroll
      for (int x = 0; x < kGroup; ++x) {
        const int j0 = 8 * ((c0 + x) * kThreads + int(threadIdx.x));
        if (row.whole(j0)) c[c0 + x].make(row, select, j0, braw[x], mraw[x]);
        else c[c0 + x].load_slow(row, select, j0);
      }
    }
  }
  template <typename F>
  __device__ void each(const RowView&, bool, F&& f) const {
#pragma unroll
    for (int x = 0; x < kChunks; ++x) f(x * kThreads + int(threadIdx.x), x, c[x]);
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
      load_chunk(c, row, select, base + int(threadIdx.x));
      f(base + int(threadIdx.x), 0, c);
    }
  }
};

// Candidates >= each of four trial keys, summed over the block.
template <typename Chunk, int kThreads, int kChunks>
__device__ void count_at_least(const RowChunks<Chunk, kThreads, kChunks>& keys, const RowView& row,
                               const uint32_t (&t)[4], BlockSum4<kThreads>& sum, uint32_t (&n)[4]) {
  uint32_t trial[4];
#pragma unroll
  for (int x = 0; x < 4; ++x) trial[x] = Chunk::trial(t[x]);
  uint32_t acc[4] = {0, 0, 0, 0};
  keys.each(row, true, [&](int, int, const Chunk& c) {
    if constexpr (kChunks == 0) {  // long rows: decode per chunk (block sums may pass 65535)
      uint32_t one[4] = {0, 0, 0, 0};
      c.count(trial, one);
#pragma unroll
      for (int x = 0; x < 4; ++x) acc[x] += Chunk::total(one[x]);
    } else {
      c.count(trial, acc);
    }
  });
  sum.run(acc);
#pragma unroll
  for (int x = 0; x < 4; ++x) n[x] = kChunks == 0 ? acc[x] : Chunk::total(acc[x]);
}

// The key of the keep_window-th best candidate, i.e. the largest key T with at least
// keep_window candidates >= T; false when the row has at most keep_window candidates.
// Bracket [lo, hi): at least keep_window candidates >= lo, fewer >= hi (keys fit 32 bits:
// hi <= key(+inf) + 1).
template <typename Chunk, int kThreads, int kChunks>
__device__ bool find_cut(const RowChunks<Chunk, kThreads, kChunks>& keys, const RowView& row,
                         int64_t keep_window, bool have_guess, uint32_t guess,
                         BlockSum4<kThreads>& sum, uint32_t& cut) {
  const uint64_t need = uint64_t(keep_window);
  uint32_t lo = Chunk::kKeyNegInf, hi = Chunk::kKeyPosInf + 1, scale = 1;
  // gallop: 2 on the first step; then +1 / -1 while searching up / down from the guess
  // (offsets 1, 4, 16, 64, then x256 per step) until a trial overshoots; 0: fifths.
  int gallop = 2;
  for (;;) {
    const uint32_t w = hi - lo;
    uint32_t t[4], n[4];
#pragma unroll
    for (int x = 0; x < 4; ++x) {
      const uint64_t step = uint64_t(scale) << (2 * x);
      const uint32_t off = step < w ? uint32_t(step) : w - 1;
      uint32_t at = gallop == 1 ? lo + off : gallop == -1 ? hi - off : lo + uint32_t(uint64_t(w) * (x + 1) / 5);
      if (gallop == 2)  // every candidate (>= -inf), then the previous row's answer and its
                        // neighbours, or the quarters of the key range
        at = x == 0 ? lo : have_guess ? guess + x - 2 : lo + (w / 4) * x;
      t[x] = at <= lo ? (x == 0 && gallop == 2 ? lo : lo + 1) : at >= hi ? hi - 1 : at;
    }
    count_at_least(keys, row, t, sum, n);
    if (gallop == 2 && n[0] <= need) return false;  // at most keep_window candidates: all kept
    const uint32_t old_lo = lo, old_hi = hi;
#pragma unroll
    for (int x = 0; x < 4; ++x) {
      if (n[x] >= need) lo = t[x] > lo ? t[x] : lo;
      else hi = t[x] < hi ? t[x] : hi;
    }
    if (hi - lo <= 1) break;
    if (gallop == 2) {
      gallop = !have_guess ? 0 : lo > guess ? 1 : hi < guess ? -1 : 0;
    } else {
      if ((gallop == 1 && hi != old_hi) || (gallop == -1 && lo != old_lo)) gallop = 0;
      scale = scale >= (1u << 24) ? scale : scale << 8;
    }
  }
  cut = lo;
  return true;
}

// Registers per thread the kernel is held to (the row's chunks take 4 or 8 each): blocks
// of 128 threads with rows of up to 4096 16-bit keys fit 7 times per SM.
constexpr int register_budget(int chunks, int regs_per_chunk) {
  return chunks == 0 ? 64 : chunks * regs_per_chunk <= 8 ? 64 : chunks * regs_per_chunk <= 16 ? 72
         : chunks * regs_per_chunk <= 32 ? 80 : chunks * regs_per_chunk <= 64 ? 128 : 255;
}

template <typename Chunk, int kThreads, int kChunks>
__global__ void __launch_bounds__(kThreads, 65536 / (kThreads * register_budget(kChunks, 4 * Chunk::kBiasVecs)))
    mask_prepass_kernel(FwdParams p, int64_t keep_window, int rows_per_block, float* threshold,
                        uint8_t* tile_active, uint8_t* kept_bits) {
  __shared__ uint4 slots[2][BlockSum4<kThreads>::kWarps];
  BlockSum4<kThreads> sum{slots};
  const int lane = threadIdx.x & 31;
  const int hk = blockIdx.y, b = blockIdx.z;
  const int first = blockIdx.x * rows_per_block;
  const int last = min(first + rows_per_block, p.seq_q);
  const bool select = keep_window > 0 && p.seq_k > keep_window;
  // A tile of 64 keys is the chunks of 8 consecutive threads; the block's rows share one
  // query block (rows_per_block divides kBlockM), so their votes are or-ed and stored once.
  uint8_t* tiles = tile_active + ((int64_t{b} * p.heads_kv + hk) * p.q_tiles + first / kBlockM) * p.k_tiles;
  constexpr int kVotes = kChunks > 0 ? kChunks : 1;
  uint32_t votes[kVotes];
#pragma unroll
  for (int x = 0; x < kVotes; ++x) votes[x] = 0;
  bool have_guess = false;
  uint32_t guess = 0;
  for (int i = first; i < last; ++i) {
    const RowView row(p, b, hk, i, select);
    RowChunks<Chunk, kThreads, kChunks> keys;
    keys.load(row, select);

    uint32_t keep_from = Chunk::trial(Chunk::kKeyNegInf);  // every candidate
    if (select) {
      uint32_t cut = 0;
      const bool cut_row = find_cut(keys, row, keep_window, have_guess, guess, sum, cut);
      if (cut_row) keep_from = Chunk::trial(cut), guess = cut, have_guess = true;
      if (threadIdx.x == 0)
        threshold[(int64_t{b} * p.heads_kv + hk) * p.seq_q + i] = cut_row ? Chunk::value(cut) : -CUDART_INF_F;
    }
    uint8_t* row_bits =
        kept_bits != nullptr ? kept_bits + ((int64_t{b} * p.heads_kv + hk) * p.seq_q + i) * kept_bits_row_bytes(p.seq_k) : nullptr;
    const int chunks = (p.seq_k + 7) / 8;
    keys.each(row, select, [&](int g, int x, const Chunk& c) {
      const uint32_t kept = c.kept8(keep_from);  // the tile map's vote and the Hopper forward's bits
      if (row_bits != nullptr && g < chunks) row_bits[g] = static_cast<uint8_t>(kept);
      const uint32_t ballot = __ballot_sync(0xffffffffu, kept != 0);
      if constexpr (kChunks > 0) votes[x] |= ballot;
      else if ((lane & 7) == 0 && ((ballot >> lane) & 0xffu) != 0) tiles[g >> 3] = 1;
    });
  }
  if constexpr (kChunks > 0) {
#pragma unroll
    for (int x = 0; x < kChunks; ++x)
      if ((lane & 7) == 0 && ((votes[x] >> lane) & 0xffu) != 0) tiles[(x * kThreads + int(threadIdx.x)) >> 3] = 1;
  }
}

// The block size and the chunks of 8 keys per thread held in registers: 128 threads with
// up to 8 chunks (rows of 8192 keys), then 256 threads with up to 16 (32768 keys); longer
// rows are read again at each step.
template <typename Chunk>
cudaError_t launch_chunk_type(const FwdParams& p, int64_t keep_window, float* threshold,
                              uint8_t* tile_active, uint8_t* kept_bits, cudaStream_t stream) {
  // Rows per block: up to 16 (each later row starts from its predecessor's answer) while
  // the grid keeps >= 16 blocks per SM; a power of two, so a block stays in one query block.
  // (At n = 4096, b = 2, 12 heads on an H100: 16 rows 0.58 ms, 8 rows 0.64, 32 rows 0.61.)
  const int sms = multiprocessor_count();
  const int64_t rows = int64_t{p.batch} * p.heads_kv * p.seq_q;
  int per_block = 16;
  while (per_block > 1 && rows / per_block < int64_t{sms} * 16) per_block /= 2;
  const dim3 grid((p.seq_q + per_block - 1) / per_block, p.heads_kv, p.batch);
  auto launch = [&](auto kernel, int threads) {
    kernel<<<grid, threads, 0, stream>>>(p, keep_window, per_block, threshold, tile_active, kept_bits);
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
                                uint8_t* tile_active, uint8_t* kept_bits, cudaStream_t stream) {
  const size_t tile_bytes = size_t(p.batch) * p.heads_kv * p.q_tiles * p.k_tiles;
  cudaError_t err = cudaMemsetAsync(tile_active, 0, tile_bytes, stream);  // rows only set flags
  if (err != cudaSuccess) return err;
  const bool select = keep_window > 0 && p.seq_k > keep_window;
  const DType bias = select ? static_cast<DType>(p.bias_dtype) : DType::kBFloat16;
  switch (bias) {
    case DType::kFloat16: return launch_chunk_type<Packed16<__half2>>(p, keep_window, threshold, tile_active, kept_bits, stream);
    case DType::kFloat32: return launch_chunk_type<Keys32>(p, keep_window, threshold, tile_active, kept_bits, stream);
    default: return launch_chunk_type<Packed16<__nv_bfloat162>>(p, keep_window, threshold, tile_active, kept_bits, stream);
  }
}

}  // namespace attn::cuda::detail
