#include "linear/linear_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "gemm/gemm.h"
#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "simd/vec_math.h"

namespace attn {

namespace {

constexpr int kChunk = 64;  // rows of keys / queries per step

// phi of one row x[0..dim) into f[0..F). elu and relu run on the vector layer (elu's exp
// is most of the feature cost: scalar, it took a third of a causal call's time).
void features(FeatureMap map, const float* x, int dim, float* f) {
  using namespace simd;
  int c = 0;
  switch (map) {
    case FeatureMap::kElu:
      for (; c + kLanes <= dim; c += kLanes) {
        const Vec v = load(x + c);
        store(f + c, select(less(v, zero()), exp(min(v, zero())), add(v, set1(1.0f))));
      }
      for (; c < dim; ++c) f[c] = x[c] > 0.0f ? x[c] + 1.0f : std::exp(x[c]);
      break;
    case FeatureMap::kRelu:
      // x second: relu(NaN) stays NaN (vec_scalar.h's NaN rule).
      for (; c + kLanes <= dim; c += kLanes) store(f + c, max(zero(), load(x + c)));
      for (; c < dim; ++c) f[c] = std::max(x[c], 0.0f);
      break;
    case FeatureMap::kDpfp: {
      auto xp = [&](int e) { return e < dim ? std::max(x[e], 0.0f) : std::max(-x[e - dim], 0.0f); };
      for (int c = 0; c < 2 * dim; ++c) f[c] = xp(c) * xp((c + 2 * dim - 1) % (2 * dim));
      break;
    }
  }
}

// Per-worker buffers of a pass over chunks.
struct Workspace {
  std::vector<float> phi_q, phi_k;  // [kChunk][F]
  std::vector<float> values;        // [kChunk][value_dim + 1]: v and a column of ones
  std::vector<float> state;         // [F][value_dim + 1]: S and z
  std::vector<float> scores;        // [kChunk][kChunk]
  std::vector<float> num;           // [kChunk][value_dim + 1]: numerators and denominator
  GemmScratch gemm;
};

class LinearPass {
 public:
  LinearPass(const LinearShape& s, const LinearOptions& o, Workspace& w)
      : s_(s), o_(o), w_(w), features_(linear_feature_count(o.feature_map, s.head_dim)),
        width_(s.value_dim + 1) {
    // Sized once per worker and reused: every buffer is written before it is read (only the
    // causal state must start at zero, see run_causal).
    w_.phi_q.resize(size_t(kChunk) * features_);
    w_.phi_k.resize(size_t(kChunk) * features_);
    w_.values.resize(size_t(kChunk) * width_);
    w_.scores.resize(size_t(kChunk) * kChunk);
    w_.num.resize(size_t(kChunk) * width_);
  }

  // Causal: one (batch, head) from the first chunk to the last, the state carried along.
  void run_causal(int b, int h, const float* q, const float* k, const float* v, float* out) {
    w_.state.assign(size_t(features_) * width_, 0.0f);
    for (int i0 = 0; i0 < s_.seq_q; i0 += kChunk) {
      const int rows = load_queries(b, h, i0, q);
      load_keys(b, h, i0, k, v);
      // Earlier chunks through the state, then this chunk's keys j <= i directly.
      product(rows, w_.phi_q.data(), w_.state.data(), false);
      gemm(rows, rows, features_, {w_.phi_q.data(), features_, false}, {w_.phi_k.data(), features_, true},
           w_.scores.data(), kChunk, false, w_.gemm);
      for (int i = 0; i < rows; ++i) std::fill(w_.scores.begin() + i * kChunk + i + 1, w_.scores.begin() + i * kChunk + rows, 0.0f);
      if (values_finite(rows)) {
        gemm(rows, width_, rows, {w_.scores.data(), kChunk, false}, {w_.values.data(), width_, false},
             w_.num.data(), width_, true, w_.gemm);
      } else {
        add_visible_values(rows);
      }
      accumulate_state(rows, w_.state.data());
      store(b, h, i0, rows, out);
    }
  }

  // Non-causal, keys: state[h] += phi(K)^T [V | 1] over keys [j0, j0 + kChunk) of every head.
  void add_key_chunk(int b, int j0, const float* k, const float* v, float* states) {
    for (int h = 0; h < s_.heads; ++h) {
      accumulate_state(load_keys(b, h, j0, k, v), states + int64_t{h} * features_ * width_);
    }
  }

  // Non-causal, queries: out = phi(Q) state[h] / (phi(Q) z[h] + eps) for rows [i0, i0 + kChunk).
  void query_chunk(int b, int i0, const float* q, const float* states, float* out) {
    for (int h = 0; h < s_.heads; ++h) {
      const int rows = load_queries(b, h, i0, q);
      product(rows, w_.phi_q.data(), states + int64_t{h} * features_ * width_, false);
      store(b, h, i0, rows, out);
    }
  }

 private:
  int64_t row_offset(int b, int i, int h, int seq, int dim) const {
    return ((int64_t{b} * seq + i) * s_.heads + h) * dim;
  }

  int load_queries(int b, int h, int i0, const float* q) {
    const int rows = std::min(kChunk, s_.seq_q - i0);
    for (int r = 0; r < rows; ++r) {
      features(o_.feature_map, q + row_offset(b, i0 + r, h, s_.seq_q, s_.head_dim), s_.head_dim,
               w_.phi_q.data() + int64_t{r} * features_);
    }
    return rows;
  }

  int load_keys(int b, int h, int j0, const float* k, const float* v) {
    const int rows = std::min(kChunk, s_.seq_k - j0);
    for (int r = 0; r < rows; ++r) {
      features(o_.feature_map, k + row_offset(b, j0 + r, h, s_.seq_k, s_.head_dim), s_.head_dim,
               w_.phi_k.data() + int64_t{r} * features_);
      const float* src = v + row_offset(b, j0 + r, h, s_.seq_k, s_.value_dim);
      float* dst = w_.values.data() + int64_t{r} * width_;
      std::copy(src, src + s_.value_dim, dst);
      dst[s_.value_dim] = 1.0f;
    }
    return rows;
  }

  // Whether the chunk's values are all finite (x * 0 is 0 exactly for finite x).
  bool values_finite(int rows) const {
    float poison = 0.0f;
    for (int64_t e = 0; e < int64_t{rows} * width_; ++e) poison += w_.values[size_t(e)] * 0.0f;
    return poison == 0.0f;
  }

  // num[i] += sum over j <= i of scores[i][j] [v_j | 1]: the chunk's causal product without the
  // zero scores above the diagonal, which would turn a NaN or inf in a later key's value into
  // 0 * NaN = NaN in rows that cannot see that key. Only chunks holding such a value come here.
  void add_visible_values(int rows) {
    for (int i = 0; i < rows; ++i) {
      float* num = w_.num.data() + int64_t{i} * width_;
      for (int j = 0; j <= i; ++j) {
        const float w = w_.scores[size_t(i) * kChunk + j];
        const float* val = w_.values.data() + int64_t{j} * width_;
        for (int c = 0; c < width_; ++c) num[c] += w * val[c];
      }
    }
  }

  // state += phi(K_chunk)^T [V_chunk | 1]
  void accumulate_state(int rows, float* state) {
    gemm(features_, width_, rows, {w_.phi_k.data(), features_, true}, {w_.values.data(), width_, false}, state,
         width_, true, w_.gemm);
  }

  // num = phi(Q_chunk) . state (+ num)
  void product(int rows, const float* phi_q, const float* state, bool accumulate) {
    gemm(rows, width_, features_, {phi_q, features_, false}, {state, width_, false}, w_.num.data(), width_,
         accumulate, w_.gemm);
  }

  void store(int b, int h, int i0, int rows, float* out) {
    for (int r = 0; r < rows; ++r) {
      const float* num = w_.num.data() + int64_t{r} * width_;
      const float den = num[s_.value_dim] + o_.eps;
      // A zero denominator (no key, eps = 0) gives a zero row; a NaN one stays NaN.
      const float inv = den == 0.0f ? 0.0f : 1.0f / den;
      float* dst = out + row_offset(b, i0 + r, h, s_.seq_q, s_.value_dim);
      if (std::isfinite(inv)) {
        for (int c = 0; c < s_.value_dim; ++c) dst[c] = num[c] * inv;
      } else {  // a denormal den (vanishing features, a denormal eps): 1/den overflows, 0·inf was NaN
        for (int c = 0; c < s_.value_dim; ++c) dst[c] = num[c] / den;
      }
    }
  }

  const LinearShape& s_;
  const LinearOptions& o_;
  Workspace& w_;
  const int features_;
  const int width_;
};

}  // namespace

int linear_feature_count(FeatureMap map, int head_dim) {
  return map == FeatureMap::kDpfp ? 2 * head_dim : head_dim;
}

void validate_linear(const LinearShape& s, const LinearOptions& o) {
  require_positive("batch", s.batch);
  require_positive("seq_q", s.seq_q);
  require_positive("seq_k", s.seq_k);
  require_positive("heads", s.heads);
  require_positive("head_dim", s.head_dim);
  require_positive("value_dim", s.value_dim);
  const int map = static_cast<int>(o.feature_map);
  if (map < 0 || map > 2) throw_range("featureMap", "must be elu, relu or dpfp");
  if (!(std::isfinite(o.eps) && o.eps >= 0.0f)) throw_range("eps", "must be a finite number >= 0");
  if (o.causal && s.seq_q != s.seq_k) {
    throw_range("causal", "needs as many queries as keys, got " + std::to_string(s.seq_q) + " and " +
                              std::to_string(s.seq_k));
  }
  if (s.head_dim > (1 << 20) || s.value_dim > (1 << 20)) throw_range("head_dim", "is too large");
  const double largest = std::max(double(s.batch) * s.seq_q * s.heads * std::max(s.head_dim, s.value_dim),
                                  double(s.batch) * s.seq_k * s.heads * std::max(s.head_dim, s.value_dim));
  if (largest * sizeof(float) > double(std::numeric_limits<size_t>::max()) / 2) {
    throw_range("shape", "tensors are too large for this platform's memory");
  }
}

void linear_attention(const LinearShape& s, const LinearOptions& o, const float* q, const float* k,
                      const float* v, float* out, ThreadPool* pool) {
  validate_linear(s, o);
  if (q == nullptr || k == nullptr || v == nullptr || out == nullptr) {
    throw_type("tensors", "q, k, v and out must all be given");
  }
  const int workers = pool != nullptr ? pool->size() : 1;
  std::vector<Workspace> spaces(static_cast<size_t>(workers));
  auto parallel = [&](int64_t tasks, const ThreadPool::Body& body) {
    if (pool != nullptr) {
      pool->parallel_for(tasks, 1, body);
    } else {
      body(0, tasks, 0);
    }
  };
  if (o.causal) {  // (batch, head) pairs in parallel, each walking its chunks in order
    parallel(int64_t{s.batch} * s.heads, [&](int64_t begin, int64_t end, int worker) {
      for (int64_t task = begin; task < end; ++task) {
        LinearPass pass(s, o, spaces[static_cast<size_t>(worker)]);
        pass.run_causal(static_cast<int>(task / s.heads), static_cast<int>(task % s.heads), q, k, v, out);
      }
    });
    return;
  }
  // Non-causal: chunks of rows in parallel, all heads of a chunk together, so that each row
  // of q, k, v ([seq][heads][dim]) is read whole while it is in cache (per-head passes over
  // strided rows made the time per token grow by a third from n = 1024 to 65536). Workers
  // sum key chunks into states of their own, added up before the queries.
  const int64_t state = int64_t{linear_feature_count(o.feature_map, s.head_dim)} * (s.value_dim + 1);
  std::vector<std::vector<float>> partial(static_cast<size_t>(workers));
  std::vector<float> states(static_cast<size_t>(state * s.heads));
  for (int b = 0; b < s.batch; ++b) {
    for (auto& p : partial) p.assign(states.size(), 0.0f);
    parallel((s.seq_k + kChunk - 1) / kChunk, [&](int64_t begin, int64_t end, int worker) {
      LinearPass pass(s, o, spaces[static_cast<size_t>(worker)]);
      for (int64_t c = begin; c < end; ++c) {
        pass.add_key_chunk(b, static_cast<int>(c * kChunk), k, v, partial[static_cast<size_t>(worker)].data());
      }
    });
    std::fill(states.begin(), states.end(), 0.0f);
    for (const auto& p : partial) {
      for (size_t i = 0; i < states.size(); ++i) states[i] += p[i];
    }
    parallel((s.seq_q + kChunk - 1) / kChunk, [&](int64_t begin, int64_t end, int worker) {
      LinearPass pass(s, o, spaces[static_cast<size_t>(worker)]);
      for (int64_t c = begin; c < end; ++c) pass.query_chunk(b, static_cast<int>(c * kChunk), q, states.data(), out);
    });
  }
}

}  // namespace attn
