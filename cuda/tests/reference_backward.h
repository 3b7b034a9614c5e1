// Naive float64 attention backward for the CUDA tests: plain loops, no tiling, nothing
// shared with the kernels except the dropout keep() decision (which must match bit for
// bit). Layouts: q / dq / dout [b][seq_q][heads_q][d], k / v / dk / dv [b][seq_k][heads_kv][d],
// bias / allowed / dbias [b][heads_kv][seq_q][seq_k].
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "flash/dropout_rng.h"  // keep() only

namespace refbwd {

struct Config {
  int batch = 1, seq_q = 1, seq_k = 1, heads_q = 1, heads_kv = 1, dim = 64;
  double scale = 0.125;
  double softcap = 0;       // 0 = off
  int causal = 0;           // 0 none, 1 top-left, 2 bottom-right
  float dropout = 0;        // float, as the kernel's option, so keep() sees the same threshold
  uint64_t seed = 0;
  const float* bias = nullptr;       // additive, per kv head
  const float* allowed = nullptr;    // nonzero attends, per kv head
};

struct Grads {
  std::vector<double> dq, dk, dv, dbias;
  std::vector<bool> row_masked;   // [b][heads_q][seq_q]
  std::vector<bool> pair_masked;  // [b][heads_kv][seq_q][seq_k]: active mask off or causally hidden
  // Rounding scale of dq / dk / dbias: the same sums with every term taken by magnitude and
  // dS = P (dP - D) replaced by P (|dP| + |D|), i.e. without the cancellation of dP - D. A
  // correct kernel's error is a small multiple of the 16-bit rounding unit times this, even
  // where the exact gradient cancels to (near) zero (e.g. a row with a single visible key:
  // P = 1, dS = 0 exactly).
  std::vector<double> dq_mag, dk_mag, dbias_mag;
};

inline bool visible(const Config& c, int i, int j) {
  if (c.causal == 1) return j <= i;
  if (c.causal == 2) return int64_t{j} <= int64_t{i} + c.seq_k - c.seq_q;
  return true;
}

inline Grads backward(const Config& c, const float* q, const float* k, const float* v, const float* dout) {
  const int d = c.dim, group = c.heads_q / c.heads_kv;
  const double neg_inf = -std::numeric_limits<double>::infinity();
  const attn::DropoutRng rng(c.seed, c.dropout);
  const double keep_scale = c.dropout > 0 ? 1.0 / (1.0 - double(c.dropout)) : 1.0;
  Grads g;
  g.dq.assign(size_t(c.batch) * c.seq_q * c.heads_q * d, 0.0);
  g.dk.assign(size_t(c.batch) * c.seq_k * c.heads_kv * d, 0.0);
  g.dv.assign(g.dk.size(), 0.0);
  g.dbias.assign(size_t(c.batch) * c.heads_kv * c.seq_q * c.seq_k, 0.0);
  g.row_masked.assign(size_t(c.batch) * c.heads_q * c.seq_q, false);
  g.pair_masked.assign(g.dbias.size(), false);
  g.dq_mag.assign(g.dq.size(), 0.0);
  g.dk_mag.assign(g.dk.size(), 0.0);
  g.dbias_mag.assign(g.dbias.size(), 0.0);
  auto qa = [&](int b, int i, int h) { return q + ((int64_t{b} * c.seq_q + i) * c.heads_q + h) * d; };
  auto ka = [&](int b, int j, int hk) { return ((int64_t{b} * c.seq_k + j) * c.heads_kv + hk) * d; };
  std::vector<double> x(c.seq_k), dcap(c.seq_k), p(c.seq_k), dp(c.seq_k);
  for (int b = 0; b < c.batch; ++b)
    for (int h = 0; h < c.heads_q; ++h) {
      const int hk = h / group;
      for (int i = 0; i < c.seq_q; ++i) {
        const int64_t pair_row = ((int64_t{b} * c.heads_kv + hk) * c.seq_q + i) * c.seq_k;
        const float* qi = qa(b, i, h);
        const float* gi = dout + ((int64_t{b} * c.seq_q + i) * c.heads_q + h) * d;
        double mx = neg_inf;
        for (int j = 0; j < c.seq_k; ++j) {  // logits, as the forward computes them
          double s = 0;
          for (int e = 0; e < d; ++e) s += double(qi[e]) * double(k[ka(b, j, hk) + e]);
          s *= c.scale;
          dcap[j] = 1.0;
          if (c.softcap > 0) {
            const double th = std::tanh(s / c.softcap);
            s = c.softcap * th;
            dcap[j] = 1.0 - th * th;
          }
          if (c.bias) s += double(c.bias[pair_row + j]);
          if ((c.allowed && c.allowed[pair_row + j] == 0.0f) || !visible(c, i, j)) {
            s = neg_inf;
            g.pair_masked[pair_row + j] = true;
          }
          x[j] = s;
          mx = std::max(mx, s);
        }
        if (mx == neg_inf) {
          g.row_masked[(size_t(b) * c.heads_q + h) * c.seq_q + i] = true;
          continue;
        }
        double sum = 0;
        for (int j = 0; j < c.seq_k; ++j) sum += (p[j] = std::exp(x[j] - mx));
        double delta = 0;
        for (int j = 0; j < c.seq_k; ++j) {
          p[j] /= sum;
          const bool kept = c.dropout <= 0 || rng.keep(((uint64_t(b) * c.heads_q + h) * c.seq_q + i) * c.seq_k + j);
          const double w = kept ? keep_scale : 0.0;  // dropout factor of this weight
          double gv = 0;
          for (int e = 0; e < d; ++e) {
            g.dv[ka(b, j, hk) + e] += p[j] * w * double(gi[e]);
            gv += double(gi[e]) * double(v[ka(b, j, hk) + e]);
          }
          dp[j] = gv * w;
          delta += p[j] * dp[j];
        }
        for (int j = 0; j < c.seq_k; ++j) {
          const double ds = p[j] * (dp[j] - delta);
          const double ds_mag = p[j] * (std::abs(dp[j]) + std::abs(delta));
          g.dbias[pair_row + j] += ds;
          g.dbias_mag[pair_row + j] += ds_mag;
          const double dsc = ds * dcap[j] * c.scale, dsc_mag = ds_mag * dcap[j] * c.scale;
          const size_t qrow = ((size_t(b) * c.seq_q + i) * c.heads_q + h) * d;
          for (int e = 0; e < d; ++e) {
            g.dq[qrow + e] += dsc * double(k[ka(b, j, hk) + e]);
            g.dk[ka(b, j, hk) + e] += dsc * double(qi[e]);
            g.dq_mag[qrow + e] += dsc_mag * std::abs(double(k[ka(b, j, hk) + e]));
            g.dk_mag[ka(b, j, hk) + e] += dsc_mag * std::abs(double(qi[e]));
          }
        }
      }
    }
  return g;
}

}  // namespace refbwd
