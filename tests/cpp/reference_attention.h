// Naive float64 attention: plain loops over (batch, head, query, key), no tiling and
// nothing shared with src/ except the dropout keep() decision, which the tests must
// reproduce bit for bit. Layouts are those of src/flash/flash_params.h:
//   q [b][seq_q][heads_q][head_dim], k [b][seq_k][heads_kv][head_dim],
//   v [b][seq_k][heads_kv][value_dim], out [b][seq_q][heads_q][value_dim],
//   lse [b][heads_q][seq_q], weights [b][heads_q][seq_q][seq_k].
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "flash/dropout_rng.h"  // keep() only

namespace ref {

enum class Causal { kNone, kTopLeft, kBottomRight };

struct Config {
  int batch = 1, seq_q = 1, seq_k = 1, heads_q = 1, heads_kv = 1, head_dim = 1, value_dim = 1;
  bool has_scale = false;
  double scale = 0;    // used when has_scale, else 1/sqrt(head_dim)
  double softcap = 0;  // 0 = off
  Causal causal = Causal::kNone;
  float dropout = 0;   // float, as the kernel's option, so keep() sees the same threshold
  uint64_t seed = 0;
  const float* mask_add = nullptr;     // additive, -inf blocks
  const uint8_t* mask_bool = nullptr;  // 1 attends, 0 blocks
  int64_t mask_batch_stride = 0, mask_head_stride = 0, mask_row_stride = 0;
};

struct Result {
  std::vector<double> out;      // empty when v was not given
  std::vector<double> lse;      // -inf for fully masked rows
  std::vector<double> weights;  // softmax before dropout; filled when asked for
  std::vector<bool> row_masked; // [b][h][i]: true when the row sees no key at all
};

// Whether query i may see key j under the causal rule alone.
inline bool causal_visible(const Config& c, int i, int j) {
  switch (c.causal) {
    case Causal::kNone: return true;
    case Causal::kTopLeft: return j <= i;
    case Causal::kBottomRight: return int64_t{j} <= int64_t{i} + c.seq_k - c.seq_q;
  }
  return true;
}

inline Result attention(const Config& c, const float* q, const float* k, const float* v,
                        bool want_weights) {
  const double neg_inf = -std::numeric_limits<double>::infinity();
  const double scale = c.has_scale ? c.scale : 1.0 / std::sqrt(double(c.head_dim));
  const int group = c.heads_q / c.heads_kv;
  Result r;
  if (v) r.out.assign(size_t(c.batch) * c.seq_q * c.heads_q * c.value_dim, 0.0);
  r.lse.assign(size_t(c.batch) * c.heads_q * c.seq_q, neg_inf);
  r.row_masked.assign(r.lse.size(), false);
  if (want_weights) r.weights.assign(size_t(c.batch) * c.heads_q * c.seq_q * c.seq_k, 0.0);
  const bool dropout = c.dropout > 0.0f;
  const attn::DropoutRng rng(c.seed, c.dropout);
  const double keep_scale = dropout ? 1.0 / (1.0 - double(c.dropout)) : 1.0;

  std::vector<double> logit(c.seq_k);
  for (int b = 0; b < c.batch; ++b) {
    for (int h = 0; h < c.heads_q; ++h) {
      const int hk = h / group;
      for (int i = 0; i < c.seq_q; ++i) {
        const int64_t mrow = b * c.mask_batch_stride + h * c.mask_head_stride +
                             int64_t{i} * c.mask_row_stride;
        double mx = neg_inf;
        for (int j = 0; j < c.seq_k; ++j) {
          double s = 0;
          for (int d = 0; d < c.head_dim; ++d) {
            s += double(q[((int64_t{b} * c.seq_q + i) * c.heads_q + h) * c.head_dim + d]) *
                 double(k[((int64_t{b} * c.seq_k + j) * c.heads_kv + hk) * c.head_dim + d]);
          }
          s *= scale;
          if (c.softcap > 0) s = c.softcap * std::tanh(s / c.softcap);
          if (c.mask_add) s += double(c.mask_add[mrow + j]);
          if (c.mask_bool && c.mask_bool[mrow + j] == 0) s = neg_inf;
          if (!causal_visible(c, i, j)) s = neg_inf;
          logit[j] = s;
          if (s > mx) mx = s;
        }
        const size_t lse_at = (size_t(b) * c.heads_q + h) * c.seq_q + i;
        if (mx == neg_inf) {  // fully masked: zero output, zero weights, lse = -inf
          r.row_masked[lse_at] = true;
          continue;
        }
        double sum = 0;
        for (int j = 0; j < c.seq_k; ++j) sum += (logit[j] = std::exp(logit[j] - mx));
        r.lse[lse_at] = mx + std::log(sum);
        for (int j = 0; j < c.seq_k; ++j) {
          const double p = logit[j] / sum;
          if (want_weights) r.weights[lse_at * c.seq_k + j] = p;
          if (!v) continue;
          double w = p;
          if (dropout) {
            const uint64_t element =
                ((uint64_t(b) * c.heads_q + h) * c.seq_q + i) * c.seq_k + j;
            w = rng.keep(element) ? p * keep_scale : 0.0;
          }
          if (w == 0.0) continue;
          double* o = &r.out[((size_t(b) * c.seq_q + i) * c.heads_q + h) * c.value_dim];
          const float* vr = v + ((int64_t{b} * c.seq_k + j) * c.heads_kv + hk) * c.value_dim;
          for (int d = 0; d < c.value_dim; ++d) o[d] += w * double(vr[d]);
        }
      }
    }
  }
  return r;
}

// Number of (query, key) pairs the causal rule keeps, per (batch, head).
inline int64_t visible_pairs(int seq_q, int seq_k, Causal causal) {
  Config c;
  c.seq_q = seq_q;
  c.seq_k = seq_k;
  c.causal = causal;
  int64_t n = 0;
  for (int i = 0; i < seq_q; ++i)
    for (int j = 0; j < seq_k; ++j) n += causal_visible(c, i, j) ? 1 : 0;
  return n;
}

}  // namespace ref
