#include "adaattn/rank_estimation.h"

#include <algorithm>
#include <cmath>

#include "runtime/errors.h"
#include "runtime/uniform_rng.h"

namespace attn {

namespace {

constexpr int kMinSample = 128;

// `count` rows of x (rows ld apart) evenly spread over seq, offset by u in [0, 1).
void sample_rows(const float* x, int64_t ld, int seq, int d, int count, double u, float* out) {
  for (int l = 0; l < count; ++l) {
    const int64_t i = std::min<int64_t>(seq - 1, int64_t((l + u) * seq / count));
    std::copy(x + i * ld, x + i * ld + d, out + int64_t{l} * d);
  }
}

// Orthonormal rows of yt [r][n] (modified Gram–Schmidt, double sums); a row that is
// (numerically) in the span of those before it becomes zero.
void orthonormalize_rows(float* yt, int r, int n) {
  for (int j = 0; j < r; ++j) {
    float* y = yt + int64_t{j} * n;
    double before = 0.0;
    for (int i = 0; i < n; ++i) before += double(y[i]) * y[i];
    for (int k = 0; k < j; ++k) {
      const float* e = yt + int64_t{k} * n;
      double dot = 0.0;
      for (int i = 0; i < n; ++i) dot += double(y[i]) * e[i];
      for (int i = 0; i < n; ++i) y[i] -= float(dot) * e[i];
    }
    double after = 0.0;
    for (int i = 0; i < n; ++i) after += double(y[i]) * y[i];
    const float inv = after > 1e-10 * before && after > 0.0 ? float(1.0 / std::sqrt(after)) : 0.0f;
    for (int i = 0; i < n; ++i) y[i] *= inv;
  }
}

double sum_squares(const float* x, int64_t n) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += double(x[i]) * x[i];
  return s;
}

}  // namespace

const char* rank_method_name(RankMethod m) {
  switch (m) {
    case RankMethod::kEntropy: return "entropy";
    case RankMethod::kPower: return "power";
    case RankMethod::kRandom: return "random";
  }
  return "entropy";
}

RankMethod parse_rank_method(const std::string& name, const std::string& param) {
  for (RankMethod m : {RankMethod::kEntropy, RankMethod::kPower, RankMethod::kRandom}) {
    if (name == rank_method_name(m)) return m;
  }
  throw_range(param, "expected \"entropy\", \"power\" or \"random\", got \"" + name + "\"");
}

int rank_sample_size(int seq, int rank) { return std::min(seq, std::max(4 * rank, kMinSample)); }

double estimate_rank_fitness(RankMethod method, int seq_q, int seq_k, int d, float scale, int rank,
                             const HeadView& head, uint64_t seed, RankSampleScratch& s) {
  const int sq = rank_sample_size(seq_q, rank), sk = rank_sample_size(seq_k, rank);
  UniformRng rng{seed};
  const double u = 0.5 * (double(rng.next(1.0f)) + 1.0);  // [0, 1)
  s.q.resize(size_t(int64_t{sq} * d));
  s.k.resize(size_t(int64_t{sk} * d));
  s.p.resize(size_t(int64_t{sq} * sk));
  sample_rows(head.q, head.ld_q, seq_q, d, sq, u, s.q.data());
  sample_rows(head.k, head.ld_k, seq_k, d, sk, u, s.k.data());
  gemm(sq, sk, d, {s.q.data(), d, false}, {s.k.data(), d, true}, s.p.data(), sk, false, s.gemm);
  softmax_rows(s.p.data(), sq, sk, sk, scale);

  if (method == RankMethod::kEntropy) {
    if (sk == 1) return 1.0;  // one key: every row is the same (uniform) distribution
    double total = 0.0;
    for (int64_t i = 0; i < int64_t{sq} * sk; ++i) {
      const double p = s.p[size_t(i)];
      if (p > 0.0) total -= p * std::log(p);
    }
    return std::clamp(total / (double(sq) * std::log(double(sk))), 0.0, 1.0);
  }

  const int r = std::min({rank, sq, sk});
  if (r == std::min(sq, sk)) return 1.0;
  for (float& p : s.p) p -= 1.0f / float(sk);
  const double energy = sum_squares(s.p.data(), int64_t{sq} * sk);
  if (energy <= 0.0) return 1.0;  // uniform attention: rank one, kept exactly
  const MatrixView pc{s.p.data(), sk, false}, pc_t{s.p.data(), sk, true};

  // Yᵀ = (Pc·Ω)ᵀ = Ωᵀ·Pcᵀ with Ωᵀ [r][S_k] uniform in [-1, 1).
  s.zt = rng.fill(size_t(int64_t{r} * sk), 1.0f);
  s.yt.resize(size_t(int64_t{r} * sq));
  s.ct.resize(size_t(int64_t{r} * sk));
  gemm(r, sq, sk, {s.zt.data(), sk, false}, pc_t, s.yt.data(), sq, false, s.gemm);
  orthonormalize_rows(s.yt.data(), r, sq);
  if (method == RankMethod::kPower) {
    for (int step = 0; step < kPowerSteps; ++step) {
      gemm(r, sk, sq, {s.yt.data(), sq, false}, pc, s.zt.data(), sk, false, s.gemm);  // (Pcᵀ Y)ᵀ
      orthonormalize_rows(s.zt.data(), r, sk);
      gemm(r, sq, sk, {s.zt.data(), sk, false}, pc_t, s.yt.data(), sq, false, s.gemm);  // (Pc Z)ᵀ
      orthonormalize_rows(s.yt.data(), r, sq);
    }
  }
  // ‖Yᵀ Pc‖² / ‖Pc‖²: the energy in the span of Y's orthonormal columns.
  gemm(r, sk, sq, {s.yt.data(), sq, false}, pc, s.ct.data(), sk, false, s.gemm);
  return std::clamp(sum_squares(s.ct.data(), int64_t{r} * sk) / energy, 0.0, 1.0);
}

}  // namespace attn
