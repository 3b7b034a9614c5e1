#include "adaattn/kv_cache.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <limits>
#include <string>

#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "simd/half_float.h"
#include "simd/vec_math.h"

namespace attn {
namespace {

constexpr float kLog2e = 1.44269504088896341f;
constexpr int kChunk = 128;           // keys per online-softmax step (scores stay in L1)
constexpr int kQueryBlock = 4;        // queries sharing one read of a key or value row
constexpr int64_t kMinSplitKeys = 512;  // fewest keys worth a task of their own

// How rows of each precision are stored and widened back to float32. The kernels read
// rows in groups of kGroup elements through load2(); a group's elements come back in the
// order kInterleaved says (see simd::load2_bf16) and, for the pair loads of finite fp16,
// scaled by kUnit. The other operand (queries, accumulators) is laid out and scaled to
// match, so the widening costs as few operations as the backend allows.
constexpr int kGroup = 2 * simd::kLanes;

struct Fp32Rows {
  using Elem = float;
  static constexpr bool kInterleaved = false;
  static constexpr float kUnit = 1.0f;
  static void load2(const Elem* p, simd::Vec& lo, simd::Vec& hi) {
    lo = simd::load(p);
    hi = simd::load(p + simd::kLanes);
  }
  static float load1(Elem x) { return x; }
  static Elem store1(float x) { return x; }
};
struct Fp16Rows {
  using Elem = uint16_t;
  static constexpr bool kInterleaved = false;
  static constexpr float kUnit = 1.0f;
  static void load2(const Elem* p, simd::Vec& lo, simd::Vec& hi) {
    lo = simd::load_fp16(p);
    hi = simd::load_fp16(p + simd::kLanes);
  }
  static float load1(Elem x) { return simd::fp16_to_float(x); }
  static Elem store1(float x) { return simd::float_to_fp16(x); }
};
// fp16 rows holding only finite halves (KVCache::fp16_unusual_ unset): the cheaper pair
// load where the backend has no half conversion (WASM SIMD128).
struct Fp16FiniteRows : Fp16Rows {
  static constexpr bool kInterleaved = simd::kHalfPairsInterleaved;
  static constexpr float kUnit = simd::kFp16PairUnit;
  static void load2(const Elem* p, simd::Vec& lo, simd::Vec& hi) { simd::load2_fp16_finite(p, lo, hi); }
};
struct Bf16Rows {
  using Elem = uint16_t;
  static constexpr bool kInterleaved = simd::kHalfPairsInterleaved;
  static constexpr float kUnit = 1.0f;
  static void load2(const Elem* p, simd::Vec& lo, simd::Vec& hi) { simd::load2_bf16(p, lo, hi); }
  static float load1(Elem x) { return simd::bf16_to_float(x); }
  static Elem store1(float x) { return simd::float_to_bf16(x); }
};

// Position, within the first d - d % kGroup elements, at which element c of a row sits
// in the order the pair loads deliver (the rest stay in place).
template <class Rows>
int64_t grouped_index(int64_t c) {
  if constexpr (!Rows::kInterleaved) {
    return c;
  } else {
    const int64_t base = c - c % kGroup, i = c % kGroup;
    return base + (i % 2) * simd::kLanes + i / 2;
  }
}

// The online-softmax state of some queries over a range of keys, in log2 units:
// running max, sum of 2^(s - max) and the unnormalised output Σ 2^(s - max) v.
struct Partial {
  float* max;  // [queries]
  float* sum;  // [queries]
  float* acc;  // [queries][value_dim]
};

// A task's queries, prescaled to log2 units: `plain` in row order for the scalar tail of
// each row, `grouped` in the pair loads' order and times `boost` for the vector part. The
// vector part's dot products come out times kUnit·boost, which `rescale` undoes (1 unless
// a query is too large to take the whole 1/kUnit without overflow).
struct TaskQueries {
  std::vector<float> plain;
  std::vector<float> grouped;
  float rescale = 1.0f;
};

template <class Rows>
void prepare_queries(const float* q, int nq, int heads, int h, int d, float prescale, TaskQueries& out) {
  const int dvec = d - d % kGroup;
  out.plain.resize(static_cast<size_t>(nq) * d);
  out.grouped.resize(static_cast<size_t>(nq) * d);
  float largest = 0.0f;
  for (int t = 0; t < nq; ++t) {
    const float* src = q + (int64_t{t} * heads + h) * d;
    for (int c = 0; c < d; ++c) {
      out.plain[t * d + c] = src[c] * prescale;
      largest = std::max(largest, std::fabs(out.plain[t * d + c]));
    }
  }
  // 1/kUnit = 2^112 fits queries below 2^15; larger ones take less and scores are rescaled.
  float boost = 1.0f / Rows::kUnit;
  out.rescale = 1.0f;
  if (Rows::kUnit != 1.0f && largest >= 0x1p15f) {
    const int excess = std::min(112, std::ilogb(largest) - 14);
    boost = std::ldexp(boost, -excess);
    out.rescale = std::ldexp(1.0f, excess);
  }
  for (int t = 0; t < nq; ++t) {
    for (int c = 0; c < d; ++c) {
      const int64_t at = c < dvec ? grouped_index<Rows>(c) : c;
      out.grouped[t * d + at] = out.plain[t * d + c] * (c < dvec ? boost : 1.0f);
    }
  }
}

// Scores of NQ queries against keys [0, count) of `k`, into s[q * ld + j]: each key row
// is widened once and used by all NQ queries; two accumulators per query halve the chain
// of dependent adds.
template <class Rows, int NQ>
void score_block(const typename Rows::Elem* k, int count, int d, const TaskQueries& qs, int q0,
                 float* s, int ld) {
  using namespace simd;
  const int dvec = d - d % kGroup;
  const float* grouped = qs.grouped.data() + int64_t{q0} * d;
  const float* plain = qs.plain.data() + int64_t{q0} * d;
  for (int j = 0; j < count; ++j) {
    const typename Rows::Elem* row = k + int64_t{j} * d;
    Vec a[NQ], b[NQ];
    for (int t = 0; t < NQ; ++t) a[t] = b[t] = zero();
    for (int c = 0; c < dvec; c += kGroup) {
      Vec lo, hi;
      Rows::load2(row + c, lo, hi);
      for (int t = 0; t < NQ; ++t) {
        a[t] = mul_add(load(grouped + t * d + c), lo, a[t]);
        b[t] = mul_add(load(grouped + t * d + c + kLanes), hi, b[t]);
      }
    }
    for (int t = 0; t < NQ; ++t) {
      float tail = 0.0f;
      for (int c = dvec; c < d; ++c) tail += plain[t * d + c] * Rows::load1(row[c]);
      const float main = reduce_add(add(a[t], b[t]));
      s[t * ld + j] = (Rows::kUnit != 1.0f ? main * qs.rescale : main) + tail;
    }
  }
}

// acc[q] += Σ_j p[q * ld + j] v_j for NQ queries over value rows [0, count); p holds the
// weights divided by kUnit, acc the vector part in the pair loads' order. Each pass keeps
// G groups of every query's accumulator in registers across the keys; the adds into one
// register form a chain as long as the chunk, so a pass needs several registers (2·G·NQ)
// to keep the adder busy rather than waiting on its latency.
template <class Rows, int NQ, int G>
void accumulate_pass(const typename Rows::Elem* v, int count, int dv, const float* p, int ld,
                     float* acc) {
  using namespace simd;
  Vec a[NQ][2 * G];
  for (int t = 0; t < NQ; ++t) {
    for (int g = 0; g < 2 * G; ++g) a[t][g] = load(acc + t * dv + g * kLanes);
  }
  for (int j = 0; j < count; ++j) {
    Vec x[2 * G];
    for (int g = 0; g < G; ++g) Rows::load2(v + int64_t{j} * dv + g * kGroup, x[2 * g], x[2 * g + 1]);
    for (int t = 0; t < NQ; ++t) {
      const Vec w = set1(p[t * ld + j]);
      for (int g = 0; g < 2 * G; ++g) a[t][g] = mul_add(w, x[g], a[t][g]);
    }
  }
  for (int t = 0; t < NQ; ++t) {
    for (int g = 0; g < 2 * G; ++g) store(acc + t * dv + g * kLanes, a[t][g]);
  }
}

template <class Rows, int NQ>
void accumulate_block(const typename Rows::Elem* v, int count, int dv, const float* p, int ld,
                      float* acc) {
  constexpr int kWide = NQ <= 2 ? 2 : 1;  // groups per pass: 4·NQ registers or 2·NQ
  const int dvec = dv - dv % kGroup;
  int c = 0;
  for (; c + kWide * kGroup <= dvec; c += kWide * kGroup) {
    accumulate_pass<Rows, NQ, kWide>(v + c, count, dv, p, ld, acc + c);
  }
  for (; c < dvec; c += kGroup) accumulate_pass<Rows, NQ, 1>(v + c, count, dv, p, ld, acc + c);
  for (c = dvec; c < dv; ++c) {
    for (int j = 0; j < count; ++j) {
      const float x = Rows::load1(v[int64_t{j} * dv + c]);
      for (int t = 0; t < NQ; ++t) acc[t * dv + c] += p[t * ld + j] * Rows::kUnit * x;
    }
  }
}

template <class Rows>
void score_queries(int nq, const typename Rows::Elem* k, int count, int d, const TaskQueries& qs,
                   int q0, float* s, int ld) {
  switch (nq) {
    case 1: return score_block<Rows, 1>(k, count, d, qs, q0, s, ld);
    case 2: return score_block<Rows, 2>(k, count, d, qs, q0, s, ld);
    case 3: return score_block<Rows, 3>(k, count, d, qs, q0, s, ld);
    default: return score_block<Rows, kQueryBlock>(k, count, d, qs, q0, s, ld);
  }
}

template <class Rows>
void accumulate_queries(int nq, const typename Rows::Elem* v, int count, int dv, const float* p,
                        int ld, float* acc) {
  switch (nq) {
    case 1: return accumulate_block<Rows, 1>(v, count, dv, p, ld, acc);
    case 2: return accumulate_block<Rows, 2>(v, count, dv, p, ld, acc);
    case 3: return accumulate_block<Rows, 3>(v, count, dv, p, ld, acc);
    default: return accumulate_block<Rows, kQueryBlock>(v, count, dv, p, ld, acc);
  }
}

// Folds one chunk of scores s[0, count) (padded with -inf to a whole number of vectors)
// into a query's state: turns s into weights 2^(s - new max) / unit in place (the sum
// counts them without the 1/unit) and rescales acc.
template <class Rows>
void softmax_step(float* s, int padded, float& row_max, float& row_sum, float* acc, int dv) {
  using namespace simd;
  Vec m = set1(row_max);
  for (int j = 0; j < padded; j += kLanes) m = max(m, load(s + j));
  const float new_max = reduce_max(m);
  // Only -inf scores so far: shift by 0 so that 2^(-inf) = 0 rather than NaN.
  const float shift = new_max < -FLT_MAX ? 0.0f : new_max;
  const Vec vshift = set1(shift);
  Vec sum = zero();
  for (int j = 0; j < padded; j += kLanes) {
    const Vec e = exp2_nonpositive(sub(load(s + j), vshift));
    store(s + j, Rows::kUnit != 1.0f ? mul(e, set1(1.0f / Rows::kUnit)) : e);
    sum = add(sum, e);
  }
  const float alpha = row_max < -FLT_MAX ? 0.0f : std::exp2(row_max - shift);
  row_sum = row_sum * alpha + reduce_add(sum);
  // max() may pass over a NaN score (and a later -inf padding then wins the lane), but the
  // sum cannot: keep the max NaN with it, as the merge of splits reads the max to tell a
  // query that saw no key (zero output) from one that saw a NaN.
  row_max = row_sum != row_sum ? row_sum : new_max;
  if (alpha != 1.0f) {
    for (int c = 0; c < dv; ++c) acc[c] *= alpha;
  }
}

// Keys each query sees: [0, first + step·t) for query t (step 1 when causal, else 0).
struct KeyLimits {
  int64_t first;
  int64_t step;
  int64_t of(int t) const { return first + step * t; }
};

// One task: queries [0, nq) of head h against keys [j0, j1) (each query only below its
// limit), into `state` (acc in row order).
// careful: V may hold an inf or NaN, so a query whose limit falls inside a chunk takes
// only the values below its limit rather than all of them with weight 0 (0 · NaN = NaN).
template <class Rows>
void attend_range(const typename Rows::Elem* k, const typename Rows::Elem* v, int d, int dv,
                  int64_t j0, int64_t j1, int nq, const TaskQueries& qs, KeyLimits limits,
                  bool careful, Partial state) {
  using namespace simd;
  constexpr int kPadded = (kChunk + kLanes - 1) / kLanes * kLanes;
  std::vector<float> scores(static_cast<size_t>(kQueryBlock) * kPadded);
  for (int t = 0; t < nq; ++t) {
    state.max[t] = -std::numeric_limits<float>::infinity();
    state.sum[t] = 0.0f;
  }
  std::fill(state.acc, state.acc + int64_t{nq} * dv, 0.0f);
  for (int64_t c0 = j0; c0 < j1; c0 += kChunk) {
    const int count = static_cast<int>(std::min<int64_t>(kChunk, j1 - c0));
    const int padded = (count + kLanes - 1) / kLanes * kLanes;
    for (int q0 = 0; q0 < nq; q0 += kQueryBlock) {
      const int nb = std::min(kQueryBlock, nq - q0);
      if (limits.of(q0 + nb - 1) <= c0) continue;  // the chunk is beyond every query's limit
      score_queries<Rows>(nb, k + c0 * d, count, d, qs, q0, scores.data(), kPadded);
      for (int t = 0; t < nb; ++t) {
        const int64_t seen = std::clamp<int64_t>(limits.of(q0 + t) - c0, 0, count);
        std::fill(scores.begin() + t * kPadded + seen, scores.begin() + t * kPadded + padded,
                  -std::numeric_limits<float>::infinity());
      }
      for (int t = 0; t < nb; ++t) {
        softmax_step<Rows>(scores.data() + t * kPadded, padded, state.max[q0 + t],
                           state.sum[q0 + t], state.acc + int64_t{q0 + t} * dv, dv);
      }
      if (careful && limits.of(q0) - c0 < count) {
        for (int t = 0; t < nb; ++t) {
          const int seen = static_cast<int>(std::clamp<int64_t>(limits.of(q0 + t) - c0, 0, count));
          accumulate_queries<Rows>(1, v + c0 * dv, seen, dv, scores.data() + t * kPadded, kPadded,
                                   state.acc + int64_t{q0 + t} * dv);
        }
      } else {
        accumulate_queries<Rows>(nb, v + c0 * dv, count, dv, scores.data(), kPadded,
                                 state.acc + int64_t{q0} * dv);
      }
    }
  }
  if constexpr (Rows::kInterleaved) {
    const int dvec = dv - dv % kGroup;
    std::vector<float> row(static_cast<size_t>(dvec));
    for (int t = 0; t < nq; ++t) {
      float* acc = state.acc + int64_t{t} * dv;
      for (int c = 0; c < dvec; ++c) row[c] = acc[grouped_index<Rows>(c)];
      std::copy(row.begin(), row.end(), acc);
    }
  }
}

// Every stored element, widened to float32 (for convert()).
template <class Rows>
std::vector<float> widen_all(const std::vector<unsigned char>& storage) {
  const auto* from = reinterpret_cast<const typename Rows::Elem*>(storage.data());
  std::vector<float> out(storage.size() / sizeof(typename Rows::Elem));
  for (size_t i = 0; i < out.size(); ++i) out[i] = Rows::load1(from[i]);
  return out;
}

template <class Rows>
void append_rows(int64_t rows, int heads, int dim, int64_t first, int64_t capacity,
                 const float* src, unsigned char* storage) {
  auto* dst = reinterpret_cast<typename Rows::Elem*>(storage);
  for (int64_t r = 0; r < rows; ++r) {
    for (int h = 0; h < heads; ++h) {
      const float* from = src + (r * heads + h) * dim;
      typename Rows::Elem* to = dst + (int64_t{h} * capacity + first + r) * dim;
      for (int c = 0; c < dim; ++c) to[c] = Rows::store1(from[c]);
    }
  }
}

template <class Rows>
void attend_all(int heads, int d, int dv, int64_t n, int64_t capacity, const unsigned char* keys,
                const unsigned char* values, int64_t queries, const float* q, float* out,
                float scale, KeyLimits limits, bool careful, ThreadPool* pool) {
  using Elem = typename Rows::Elem;
  const int nq = static_cast<int>(queries);
  const int workers = pool ? pool->size() : 1;
  // Few heads for many workers: split each head's keys so every worker has tasks.
  int64_t splits = 1;
  if (workers > 1 && heads < 2 * workers) {
    splits = std::min<int64_t>((2 * workers + heads - 1) / heads,
                               std::max<int64_t>(1, n / kMinSplitKeys));
  }
  const int64_t tasks = heads * splits;
  const int64_t state_floats = int64_t{nq} * (dv + 2);
  std::vector<float> states(static_cast<size_t>(tasks * state_floats));
  const float prescale = scale * kLog2e;

  auto run = [&](int64_t begin, int64_t end, int) {
    TaskQueries qs;
    for (int64_t task = begin; task < end; ++task) {
      const int h = static_cast<int>(task / splits);
      const int64_t split = task % splits;
      prepare_queries<Rows>(q, nq, heads, h, d, prescale, qs);
      float* st = states.data() + task * state_floats;
      const Partial state{st, st + nq, st + 2 * nq};
      const auto* k = reinterpret_cast<const Elem*>(keys) + int64_t{h} * capacity * d;
      const auto* v = reinterpret_cast<const Elem*>(values) + int64_t{h} * capacity * dv;
      attend_range<Rows>(k, v, d, dv, n * split / splits, n * (split + 1) / splits, nq,
                         qs, limits, careful, state);
    }
  };
  if (pool && tasks > 1) {
    pool->parallel_for(tasks, 1, run);
  } else {
    run(0, tasks, 0);
  }

  // Merge each head's splits: rescale every partial to the common max, then normalise.
  for (int h = 0; h < heads; ++h) {
    for (int t = 0; t < nq; ++t) {
      // A NaN max (a NaN score) wins and stays, so the row comes out NaN; std::max would
      // skip it, and a query of NaN would look as if it saw no key.
      float top = -std::numeric_limits<float>::infinity();
      for (int64_t s = 0; s < splits; ++s) {
        const float m = states[(h * splits + s) * state_floats + t];
        top = m > top || m != m ? m : top;
      }
      float* o = out + (int64_t{t} * heads + h) * dv;
      std::fill(o, o + dv, 0.0f);
      if (top < -FLT_MAX) continue;
      float sum = 0.0f;
      for (int64_t s = 0; s < splits; ++s) {
        const float* st = states.data() + (h * splits + s) * state_floats;
        const float w = std::exp2(st[t] - top);
        sum += w * st[nq + t];
        const float* acc = st + 2 * nq + int64_t{t} * dv;
        for (int c = 0; c < dv; ++c) o[c] += w * acc[c];
      }
      const float inv = sum == 0.0f ? 0.0f : 1.0f / sum;  // NaN stays NaN
      for (int c = 0; c < dv; ++c) o[c] *= inv;
    }
  }
}

}  // namespace

const char* storage_precision_name(StoragePrecision precision) {
  switch (precision) {
    case StoragePrecision::kFp32: return "fp32";
    case StoragePrecision::kFp16: return "fp16";
    case StoragePrecision::kBf16: return "bf16";
  }
  return "?";
}

int storage_bytes(StoragePrecision precision) {
  return precision == StoragePrecision::kFp32 ? 4 : 2;
}

KVCache::KVCache(int heads, int head_dim, int value_dim, StoragePrecision precision,
                 int64_t capacity_hint)
    : heads_(heads), head_dim_(head_dim), value_dim_(value_dim), precision_(precision) {
  require_positive("heads", heads);
  require_positive("head_dim", head_dim);
  require_positive("value_dim", value_dim);
  if (precision != StoragePrecision::kFp32 && precision != StoragePrecision::kFp16 &&
      precision != StoragePrecision::kBf16) {
    throw_range("precision", "must be fp32, fp16 or bf16");
  }
  if (capacity_hint < 0) {
    throw_range("capacity_hint", "must be >= 0, got " + std::to_string(capacity_hint));
  }
  elem_bytes_ = storage_bytes(precision);
  reserve(capacity_hint);
}

int64_t KVCache::memory_bytes() const {
  return static_cast<int64_t>(keys_.size() + values_.size());
}

void KVCache::reserve(int64_t rows) {
  if (rows <= capacity_) return;
  // Bytes of one row across heads, keys and values; the cache must be addressable.
  const int64_t row_bytes = int64_t{heads_} * (int64_t{head_dim_} + value_dim_) * elem_bytes_;
  const int64_t max_rows = std::numeric_limits<std::ptrdiff_t>::max() / row_bytes;
  if (rows > max_rows) {
    throw_range("rows", "the cache would hold more than " + std::to_string(max_rows) + " rows");
  }
  const int64_t capacity = std::min(max_rows, std::max(rows, capacity_ + capacity_ / 2));
  // Both buffers are allocated before either replaces the old one: if the second
  // allocation fails (std::bad_alloc), the cache is left exactly as it was.
  auto grown = [&](const std::vector<unsigned char>& buf, int dim) {
    const int64_t old_head = capacity_ * dim * elem_bytes_, new_head = capacity * dim * elem_bytes_;
    std::vector<unsigned char> out(static_cast<size_t>(heads_ * new_head));
    // An empty cache may have no buffer yet: memcpy from its null data() is undefined even
    // for 0 bytes (UBSan reports it).
    for (int h = 0; h < heads_ && size_ > 0; ++h) {
      std::memcpy(out.data() + h * new_head, buf.data() + h * old_head,
                  static_cast<size_t>(size_ * dim * elem_bytes_));
    }
    return out;
  };
  std::vector<unsigned char> keys = grown(keys_, head_dim_);
  std::vector<unsigned char> values = grown(values_, value_dim_);
  keys_.swap(keys);
  values_.swap(values);
  capacity_ = capacity;
}

void KVCache::append(int64_t rows, const float* k, const float* v) {
  if (rows < 0) throw_range("rows", "must be >= 0, got " + std::to_string(rows));
  if (rows == 0) return;
  if (k == nullptr) throw_type("k", "must be given");
  if (v == nullptr) throw_type("v", "must be given");
  reserve(size_ + rows);
  auto store = [&](auto rows_tag) {
    using Rows = decltype(rows_tag);
    append_rows<Rows>(rows, heads_, head_dim_, size_, capacity_, k, keys_.data());
    append_rows<Rows>(rows, heads_, value_dim_, size_, capacity_, v, values_.data());
  };
  switch (precision_) {
    case StoragePrecision::kFp32: store(Fp32Rows{}); break;
    case StoragePrecision::kFp16: store(Fp16Rows{}); break;
    case StoragePrecision::kBf16: store(Bf16Rows{}); break;
  }
  // Any inf or NaN half among the new rows sends attend() to the general widening.
  if (precision_ == StoragePrecision::kFp16 && !fp16_unusual_) fp16_unusual_ = has_unusual_fp16(size_, rows);
  if (!values_special_) values_special_ = has_special_values(size_, rows);
  size_ += rows;
}

void KVCache::attend(int64_t queries, const float* q, float* out, std::optional<float> scale,
                     ThreadPool* pool, bool causal) const {
  if (queries < 0) throw_range("queries", "must be >= 0, got " + std::to_string(queries));
  if (queries > std::numeric_limits<int>::max()) throw_range("queries", "too many queries");
  if (causal && queries > size_) {
    throw_range("queries", "causal attend needs queries <= cached rows (" + std::to_string(size_) + "), got " +
                               std::to_string(queries));
  }
  if (scale && !std::isfinite(*scale)) throw_range("scale", "must be a finite number");
  // Queries are multiplied by scale·log2(e) first: where that overflows, zeros in q became
  // NaN (found by tests/fuzz/kv_cache_fuzz with scale = FLT_MAX).
  if (scale && !std::isfinite(*scale * kLog2e)) throw_range("scale", "is too large (scale * log2(e) overflows float32)");
  if (queries == 0) return;
  if (q == nullptr) throw_type("q", "must be given");
  if (out == nullptr) throw_type("out", "must be given");
  const float s = scale ? *scale : 1.0f / std::sqrt(static_cast<float>(head_dim_));
  const KeyLimits limits = causal ? KeyLimits{size_ - queries + 1, 1} : KeyLimits{size_, 0};
  auto run = [&](auto rows_tag) {
    attend_all<decltype(rows_tag)>(heads_, head_dim_, value_dim_, size_, capacity_, keys_.data(),
                                   values_.data(), queries, q, out, s, limits, causal && values_special_, pool);
  };
  switch (precision_) {
    case StoragePrecision::kFp32: run(Fp32Rows{}); break;
    case StoragePrecision::kFp16:
      if (fp16_unusual_) {
        run(Fp16Rows{});
      } else {
        run(Fp16FiniteRows{});
      }
      break;
    case StoragePrecision::kBf16: run(Bf16Rows{}); break;
  }
}

bool KVCache::has_special_values(int64_t first, int64_t rows) const {
  auto special = [&](auto rows_tag) {
    using Rows = decltype(rows_tag);
    float poison = 0.0f;  // x * 0 is NaN exactly for inf and NaN
    for (int h = 0; h < heads_; ++h) {
      const auto* at = reinterpret_cast<const typename Rows::Elem*>(values_.data()) + (h * capacity_ + first) * value_dim_;
      for (int64_t e = 0; e < rows * value_dim_; ++e) poison += Rows::load1(at[e]) * 0.0f;
    }
    return poison != 0.0f;
  };
  switch (precision_) {
    case StoragePrecision::kFp16: return special(Fp16Rows{});
    case StoragePrecision::kBf16: return special(Bf16Rows{});
    default: return special(Fp32Rows{});
  }
}

bool KVCache::has_unusual_fp16(int64_t first, int64_t rows) const {
  auto unusual = [&](const std::vector<unsigned char>& buf, int dim) {
    for (int h = 0; h < heads_; ++h) {
      const uint16_t* at = reinterpret_cast<const uint16_t*>(buf.data()) + (h * capacity_ + first) * dim;
      for (int64_t e = 0; e < rows * dim; ++e) {
        if ((at[e] & 0x7c00u) == 0x7c00u) return true;
      }
    }
    return false;
  };
  return unusual(keys_, head_dim_) || unusual(values_, value_dim_);
}

void KVCache::convert(StoragePrecision precision) {
  if (precision != StoragePrecision::kFp32 && precision != StoragePrecision::kFp16 &&
      precision != StoragePrecision::kBf16) {
    throw_range("precision", "must be fp32, fp16 or bf16");
  }
  if (precision == precision_) return;
  auto widen = [&](const std::vector<unsigned char>& buf) {
    switch (precision_) {
      case StoragePrecision::kFp16: return widen_all<Fp16Rows>(buf);
      case StoragePrecision::kBf16: return widen_all<Bf16Rows>(buf);
      default: return widen_all<Fp32Rows>(buf);
    }
  };
  // Rows [heads][capacity][dim] widened, then appended again as `capacity` rows of one
  // head each: the same positions, in the new element size.
  const std::vector<float> keys = widen(keys_), values = widen(values_);
  const int64_t size = size_;
  precision_ = precision;
  elem_bytes_ = storage_bytes(precision);
  keys_.assign(static_cast<size_t>(heads_ * capacity_ * head_dim_ * elem_bytes_), 0);
  values_.assign(static_cast<size_t>(heads_ * capacity_ * value_dim_ * elem_bytes_), 0);
  fp16_unusual_ = false;
  auto store = [&](auto rows_tag) {
    using Rows = decltype(rows_tag);
    append_rows<Rows>(int64_t{heads_} * capacity_, 1, head_dim_, 0, 0, keys.data(), keys_.data());
    append_rows<Rows>(int64_t{heads_} * capacity_, 1, value_dim_, 0, 0, values.data(), values_.data());
  };
  switch (precision_) {
    case StoragePrecision::kFp32: store(Fp32Rows{}); break;
    case StoragePrecision::kFp16: store(Fp16Rows{}); break;
    case StoragePrecision::kBf16: store(Bf16Rows{}); break;
  }
  size_ = size;
  if (precision_ == StoragePrecision::kFp16) fp16_unusual_ = has_unusual_fp16(0, size_);
  values_special_ = has_special_values(0, size_);
}

}  // namespace attn
