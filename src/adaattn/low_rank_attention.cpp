#include "adaattn/low_rank_attention.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "flash/flash_attention.h"
#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "simd/vec_math.h"

namespace attn {

namespace {

// Query rows of F per step: F stays [kBlockRows][m] (32 KiB at m = 32) instead of
// [seq_q][m], and the GEMM is called per block, which V8 optimises sooner than one long call.
constexpr int kBlockRows = 256;

// Means of `marks` contiguous segments of the rows of x [seq][d] (rows ld apart).
void segment_means(const float* x, int64_t ld, int seq, int d, int marks, float* means) {
  for (int l = 0; l < marks; ++l) {
    const int64_t begin = int64_t{l} * seq / marks, end = int64_t{l + 1} * seq / marks;
    float* mean = means + int64_t{l} * d;
    std::fill(mean, mean + d, 0.0f);
    for (int64_t i = begin; i < end; ++i) {
      const float* row = x + i * ld;
      for (int c = 0; c < d; ++c) mean[c] += row[c];
    }
    const float inv = 1.0f / float(end - begin);
    for (int c = 0; c < d; ++c) mean[c] *= inv;
  }
}

// x [m][m] = c·I − x.
void identity_minus(float* x, int m, float c) {
  for (int64_t i = 0; i < int64_t{m} * m; ++i) x[i] = -x[i];
  for (int i = 0; i < m; ++i) x[int64_t{i} * m + i] += c;
}

// z = pinv(a) [m][m] by Newton–Schulz (see the header for why a fixed number of steps).
void pseudo_inverse(int m, LowRankScratch& s) {
  const float* a = s.a.data();
  float *z = s.z.data(), *az = s.az.data(), *t1 = s.t1.data(), *t2 = s.t2.data();
  double norm1 = 0.0, norm_inf = 0.0;
  for (int c = 0; c < m; ++c) {
    double col = 0.0, row = 0.0;
    for (int r = 0; r < m; ++r) col += std::fabs(a[int64_t{r} * m + c]), row += std::fabs(a[int64_t{c} * m + r]);
    norm1 = std::max(norm1, col), norm_inf = std::max(norm_inf, row);
  }
  // Softmax rows sum to 1, so neither norm is 0.
  const float init = float(1.0 / (norm1 * norm_inf));
  for (int r = 0; r < m; ++r) {
    for (int c = 0; c < m; ++c) z[int64_t{r} * m + c] = a[int64_t{c} * m + r] * init;
  }
  const MatrixView av{a, m, false}, azv{az, m, false};
  for (int step = 0; step < kNystromPinvIterations; ++step) {
    gemm(m, m, m, av, {z, m, false}, az, m, false, s.gemm);
    std::copy(az, az + int64_t{m} * m, t1);
    identity_minus(t1, m, 7.0f);
    gemm(m, m, m, azv, {t1, m, false}, t2, m, false, s.gemm);
    identity_minus(t2, m, 15.0f);
    gemm(m, m, m, azv, {t2, m, false}, t1, m, false, s.gemm);
    identity_minus(t1, m, 13.0f);
    gemm(m, m, m, {z, m, false}, {t1, m, false}, t2, m, false, s.gemm);
    for (int64_t i = 0; i < int64_t{m} * m; ++i) z[i] = 0.25f * t2[i];
  }
}

}  // namespace

void softmax_rows(float* x, int rows, int cols, int64_t ld, float scale) {
  using namespace simd;
  for (int r = 0; r < rows; ++r) {
    float* row = x + r * ld;
    float hi = row[0];
    for (int c = 1; c < cols; ++c) hi = std::max(hi, row[c]);
    // exp(scale·(x − max)) with scale > 0: every argument <= 0, the largest exactly 0.
    const Vec vs = set1(scale), vhi = set1(hi);
    Vec sum = zero();
    int c = 0;
    for (; c + kLanes <= cols; c += kLanes) {
      const Vec e = exp_nonpositive(mul(sub(load(row + c), vhi), vs));
      store(row + c, e);
      sum = add(sum, e);
    }
    float total = reduce_add(sum);
    for (; c < cols; ++c) total += row[c] = std::exp((row[c] - hi) * scale);
    const Vec inv = set1(1.0f / total);
    c = 0;
    for (; c + kLanes <= cols; c += kLanes) store(row + c, mul(load(row + c), inv));
    for (; c < cols; ++c) row[c] *= 1.0f / total;
  }
}

HeadView head_view(const FlashShape& s, const FlashTensors& t, int b, int h) {
  const int hk = h / (s.heads_q / s.heads_kv);
  const int64_t lq = int64_t{s.heads_q} * s.head_dim, lk = int64_t{s.heads_kv} * s.head_dim;
  const int64_t lv = int64_t{s.heads_kv} * s.value_dim, lo = int64_t{s.heads_q} * s.value_dim;
  return {t.q + int64_t{b} * s.seq_q * lq + int64_t{h} * s.head_dim,
          t.k + int64_t{b} * s.seq_k * lk + int64_t{hk} * s.head_dim,
          t.v + int64_t{b} * s.seq_k * lv + int64_t{hk} * s.value_dim,
          t.out + int64_t{b} * s.seq_q * lo + int64_t{h} * s.value_dim,
          lq, lk, lv, lo};
}

double sampled_row_error(int seq_q, int seq_k, int d, int dv, float scale, int rows, const HeadView& h) {
  using namespace simd;
  rows = std::min(rows, seq_q);
  const int dvec = d - d % kLanes;
  std::vector<float> s(static_cast<size_t>(seq_k));
  std::vector<float> exact(static_cast<size_t>(dv));
  double err = 0.0, norm = 0.0;
  for (int r = 0; r < rows; ++r) {
    const int64_t i = int64_t((r + 0.5) * seq_q / rows);
    const float* q = h.q + i * h.ld_q;
    float top = -INFINITY;
    for (int j = 0; j < seq_k; ++j) {
      const float* k = h.k + int64_t{j} * h.ld_k;
      Vec acc = zero();
      for (int c = 0; c < dvec; c += kLanes) acc = mul_add(load(q + c), load(k + c), acc);
      float dot = reduce_add(acc);
      for (int c = dvec; c < d; ++c) dot += q[c] * k[c];
      s[size_t(j)] = dot * scale;
      top = std::max(top, s[size_t(j)]);
    }
    // Float32 arithmetic (a float64 sum of the weights): its rounding, ~1e-6 relative, is
    // far below the errors this is compared with (5e-2 by default).
    double sum = 0.0;
    for (float& x : s) sum += (x = std::exp(x - top));
    std::fill(exact.begin(), exact.end(), 0.0f);
    const float inv = float(1.0 / sum);
    for (int j = 0; j < seq_k; ++j) {
      const float* v = h.v + int64_t{j} * h.ld_v;
      const float p = s[size_t(j)] * inv;
      for (int c = 0; c < dv; ++c) exact[size_t(c)] += p * v[c];
    }
    const float* got = h.out + i * h.ld_out;
    for (int c = 0; c < dv; ++c) {
      const double diff = double(got[c]) - exact[size_t(c)];
      err += diff * diff;
      norm += exact[size_t(c)] * exact[size_t(c)];
    }
  }
  if (norm == 0.0) return err == 0.0 ? 0.0 : INFINITY;
  return std::sqrt(err / norm);
}

int usable_landmarks(int landmarks, int seq_q, int seq_k) { return std::min({landmarks, seq_q, seq_k}); }

double low_rank_head_flops(int seq_q, int seq_k, int landmarks, int d, int dv) {
  const double m = usable_landmarks(landmarks, seq_q, seq_k);
  return 2.0 * m * (double(seq_q) * d + double(seq_k) * d + double(seq_k) * dv + double(seq_q) * dv + m * d + m * dv) +
         kNystromPinvIterations * 8.0 * m * m * m;
}

void low_rank_head(int seq_q, int seq_k, int d, int dv, float scale, int landmarks, const HeadView& h,
                   LowRankScratch& s) {
  const int m = usable_landmarks(landmarks, seq_q, seq_k);
  const int64_t mm = int64_t{m} * m;
  s.q_marks.resize(size_t(int64_t{m} * d));
  s.k_marks.resize(size_t(int64_t{m} * d));
  s.b.resize(size_t(int64_t{m} * seq_k));
  s.bv.resize(size_t(int64_t{m} * dv));
  s.w.resize(size_t(int64_t{m} * dv));
  for (auto* x : {&s.a, &s.z, &s.az, &s.t1, &s.t2}) x->resize(size_t(mm));
  s.f.resize(size_t(int64_t{kBlockRows} * m));

  segment_means(h.q, h.ld_q, seq_q, d, m, s.q_marks.data());
  segment_means(h.k, h.ld_k, seq_k, d, m, s.k_marks.data());
  const MatrixView q_marks{s.q_marks.data(), d, false}, k_marks_t{s.k_marks.data(), d, true};

  // B · V: the landmark queries attend to every key.
  gemm(m, seq_k, d, q_marks, {h.k, h.ld_k, true}, s.b.data(), seq_k, false, s.gemm);
  softmax_rows(s.b.data(), m, seq_k, seq_k, scale);
  gemm(m, dv, seq_k, {s.b.data(), seq_k, false}, {h.v, h.ld_v, false}, s.bv.data(), dv, false, s.gemm);

  // W = pinv(A) · (B · V).
  gemm(m, m, d, q_marks, k_marks_t, s.a.data(), m, false, s.gemm);
  softmax_rows(s.a.data(), m, m, m, scale);
  pseudo_inverse(m, s);
  gemm(m, dv, m, {s.z.data(), m, false}, {s.bv.data(), dv, false}, s.w.data(), dv, false, s.gemm);

  // out = F · W, a block of query rows at a time.
  const PackedB w = pack_b(m, dv, {s.w.data(), dv, false});
  for (int i0 = 0; i0 < seq_q; i0 += kBlockRows) {
    const int rows = std::min(kBlockRows, seq_q - i0);
    gemm(rows, m, d, {h.q + i0 * h.ld_q, h.ld_q, false}, k_marks_t, s.f.data(), m, false, s.gemm);
    softmax_rows(s.f.data(), rows, m, m, scale);
    gemm(rows, {s.f.data(), m, false}, w, h.out + i0 * h.ld_out, h.ld_out, false, s.gemm);
  }
}

void low_rank_forward(const FlashShape& shape, float scale, int landmarks, const FlashTensors& t, ThreadPool* pool) {
  validate_flash(shape, FlashOptions{});
  require_positive("landmarks", landmarks);
  if (!std::isfinite(scale)) throw_range("scale", "must be a finite number");
  if (t.q == nullptr || t.k == nullptr || t.v == nullptr || t.out == nullptr) {
    throw_type("tensors", "q, k, v and out must all be given");
  }
  const float s = scale > 0.0f ? scale : 1.0f / std::sqrt(float(shape.head_dim));
  const int workers = pool != nullptr ? pool->size() : 1;
  std::vector<LowRankScratch> scratch(static_cast<size_t>(workers));
  auto body = [&](int64_t begin, int64_t end, int worker) {
    for (int64_t task = begin; task < end; ++task) {
      const int b = int(task / shape.heads_q), h = int(task % shape.heads_q);
      low_rank_head(shape.seq_q, shape.seq_k, shape.head_dim, shape.value_dim, s, landmarks, head_view(shape, t, b, h),
                    scratch[size_t(worker)]);
    }
  };
  const int64_t tasks = int64_t{shape.batch} * shape.heads_q;
  if (pool != nullptr) {
    pool->parallel_for(tasks, 1, body);
  } else {
    body(0, tasks, 0);
  }
}

}  // namespace attn
