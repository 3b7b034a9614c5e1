// One attention problem as the tests describe it (shape, options, mask layout, tiling,
// threads), and the random inputs, kernel arguments and reference configuration
// built from it. Shared by the flash_forward and attention_scores tests.
#pragma once
#include <cmath>
#include <memory>
#include <optional>
#include <ostream>
#include <random>
#include <sstream>
#include <string>

#include "flash/flash_attention.h"
#include "reference_attention.h"
#include "runtime/thread_pool.h"
#include "test_util.h"

namespace testutil {

enum class MaskKind { kNone, kAdditive, kBoolean };

struct Case {
  int batch = 1, seq_q = 1, seq_k = 1, heads_q = 1, heads_kv = 1, head_dim = 1, value_dim = 1;
  std::optional<float> scale;
  float softcap = 0;
  float dropout = 0;
  uint64_t dropout_seed = 0;
  attn::CausalAlign causal = attn::CausalAlign::kNone;
  MaskKind mask = MaskKind::kNone;
  bool mask_per_batch = false;  // else batch stride 0 (broadcast)
  bool mask_per_head = false;   // else head stride 0 (broadcast)
  int mask_row_pad = 0;         // row stride = seq_k + pad; pads hold NaN / junk
  bool blocked_rows = false;    // some mask rows block every key
  int block_q = 0, block_k = 0;
  int threads = 0;              // 0 = pool nullptr
  float sigma = 1.0f;           // spread of q and k

  Case& shape(int b, int sq, int sk, int hq, int hkv, int d, int dv) {
    batch = b, seq_q = sq, seq_k = sk, heads_q = hq, heads_kv = hkv, head_dim = d, value_dim = dv;
    return *this;
  }
  Case& blocks(int bq, int bk) { block_q = bq, block_k = bk; return *this; }
  Case& pool(int t) { threads = t; return *this; }

  // A gtest-safe name (letters, digits, underscores) that says what the case does.
  std::string name() const {
    std::ostringstream os;
    os << "B" << batch << "_Q" << seq_q << "_K" << seq_k << "_H" << heads_q << "x" << heads_kv
       << "_D" << head_dim << "_V" << value_dim;
    if (scale) os << "_scale";
    if (softcap > 0) os << "_cap";
    if (dropout > 0) os << "_drop";
    if (causal == attn::CausalAlign::kTopLeft) os << "_causalTL";
    if (causal == attn::CausalAlign::kBottomRight) os << "_causalBR";
    if (mask != MaskKind::kNone) {
      os << (mask == MaskKind::kAdditive ? "_add" : "_bool") << (mask_per_batch ? "B" : "")
         << (mask_per_head ? "H" : "") << (mask_row_pad ? "pad" : "")
         << (blocked_rows ? "_blockedrows" : "");
    }
    os << "_bq" << block_q << "_bk" << block_k << "_t" << threads;
    return os.str();
  }
};

inline std::ostream& operator<<(std::ostream& os, const Case& c) { return os << c.name(); }

inline attn::FlashShape shape_of(const Case& c) {
  attn::FlashShape s;
  s.batch = c.batch, s.seq_q = c.seq_q, s.seq_k = c.seq_k, s.heads_q = c.heads_q;
  s.heads_kv = c.heads_kv, s.head_dim = c.head_dim, s.value_dim = c.value_dim;
  return s;
}

// Random q, k, v and mask for a case, each in a NaN-guarded buffer.
struct Inputs {
  Guarded<float> q, k, v;
  Guarded<float> mask_add{0, kNaN};
  Guarded<uint8_t> mask_bool{0, uint8_t{0}};
  int64_t batch_stride = 0, head_stride = 0, row_stride = 0;

  Inputs(const Case& c, std::mt19937_64& rng)
      : q(randn(rng, size_t(c.batch) * c.seq_q * c.heads_q * c.head_dim, c.sigma), kNaN),
        k(randn(rng, size_t(c.batch) * c.seq_k * c.heads_kv * c.head_dim, c.sigma), kNaN),
        v(randn(rng, size_t(c.batch) * c.seq_k * c.heads_kv * c.value_dim), kNaN) {
    if (c.mask == MaskKind::kNone) return;
    const int mb = c.mask_per_batch ? c.batch : 1, mh = c.mask_per_head ? c.heads_q : 1;
    row_stride = c.seq_k + c.mask_row_pad;
    head_stride = c.mask_per_head ? c.seq_q * row_stride : 0;
    batch_stride = c.mask_per_batch ? int64_t{mh} * c.seq_q * row_stride : 0;
    const size_t n = size_t(mb) * mh * c.seq_q * row_stride;
    std::uniform_real_distribution<float> u(0.0f, 1.0f);
    auto blocked_row = [&](int i) { return c.blocked_rows && i % 4 == 1; };
    if (c.mask == MaskKind::kAdditive) {
      mask_add = Guarded<float>(n, kNaN);
      for (size_t e = 0; e < n; ++e) {
        const int col = int(e % row_stride), i = int(e / row_stride % c.seq_q);
        if (col >= c.seq_k) mask_add[e] = kNaN;  // padding: must never be read
        else if (blocked_row(i)) mask_add[e] = -kInf;
        else mask_add[e] = u(rng) < 0.15f ? -kInf : 6.0f * u(rng) - 3.0f;  // blocks and biases
      }
    } else {
      mask_bool = Guarded<uint8_t>(n, uint8_t{0xA5});
      for (size_t e = 0; e < n; ++e) {
        const int col = int(e % row_stride), i = int(e / row_stride % c.seq_q);
        if (col >= c.seq_k) mask_bool[e] = 0xA5;
        else mask_bool[e] = (!blocked_row(i) && u(rng) >= 0.3f) ? 1 : 0;
      }
    }
  }

  attn::MaskView mask_view() const {
    attn::MaskView m;
    if (mask_add.size()) m.additive = mask_add.data();
    if (mask_bool.size()) m.allowed = mask_bool.data();
    m.batch_stride = batch_stride, m.head_stride = head_stride, m.row_stride = row_stride;
    return m;
  }
};

inline attn::FlashOptions options_of(const Case& c, const Inputs& in) {
  attn::FlashOptions o;
  o.scale = c.scale;
  o.softcap = c.softcap;
  o.dropout = c.dropout;
  o.seed = c.dropout_seed;
  o.causal = c.causal;
  o.block_q = c.block_q;
  o.block_k = c.block_k;
  o.mask = in.mask_view();
  return o;
}

inline ref::Config ref_config_of(const Case& c, const Inputs& in) {
  ref::Config r;
  r.batch = c.batch, r.seq_q = c.seq_q, r.seq_k = c.seq_k, r.heads_q = c.heads_q;
  r.heads_kv = c.heads_kv, r.head_dim = c.head_dim, r.value_dim = c.value_dim;
  r.has_scale = c.scale.has_value();
  r.scale = c.scale.value_or(0.0f);
  r.softcap = c.softcap;
  r.dropout = c.dropout;
  r.seed = c.dropout_seed;
  r.causal = c.causal == attn::CausalAlign::kTopLeft       ? ref::Causal::kTopLeft
             : c.causal == attn::CausalAlign::kBottomRight ? ref::Causal::kBottomRight
                                                           : ref::Causal::kNone;
  r.mask_add = in.mask_add.size() ? in.mask_add.data() : nullptr;
  r.mask_bool = in.mask_bool.size() ? in.mask_bool.data() : nullptr;
  r.mask_batch_stride = in.batch_stride;
  r.mask_head_stride = in.head_stride;
  r.mask_row_stride = in.row_stride;
  return r;
}

// A random case: shapes, options, mask layout, tiling and threads all drawn from rng.
inline Case random_case(std::mt19937_64& rng) {
  auto pick = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  auto coin = [&] { return pick(0, 1) == 1; };
  static const int kDims[] = {1, 2, 3, 5, 8, 16, 31, 33, 64, 65, 128};
  Case c;
  const int hkv = pick(1, 3);
  c.shape(pick(1, 3), pick(1, 70), pick(1, 90), hkv * pick(1, 3), hkv, kDims[pick(0, 10)],
          kDims[pick(0, 10)]);
  // Keep several outputs per call: a lone output can cancel to ~0 and void the
  // relative metric.
  if (int64_t{c.batch} * c.seq_q * c.heads_q * c.value_dim < 8) c.value_dim = 8;
  // Explicit scales around 1/sqrt(head_dim), as models use: logits of a few tens at most,
  // where float32 can meet the suite's absolute lse tolerance.
  if (coin()) {
    c.scale = std::uniform_real_distribution<float>(0.1f, 1.5f)(rng) / std::sqrt(float(c.head_dim));
  }
  if (coin()) c.softcap = std::uniform_real_distribution<float>(1.0f, 10.0f)(rng);
  if (pick(0, 2) == 0) {
    c.dropout = std::uniform_real_distribution<float>(0.05f, 0.9f)(rng);
    c.dropout_seed = rng();
  }
  c.causal = static_cast<attn::CausalAlign>(pick(0, 2));
  c.mask = static_cast<MaskKind>(pick(0, 2));
  c.mask_per_batch = coin(), c.mask_per_head = coin(), c.blocked_rows = coin();
  c.mask_row_pad = pick(0, 1) * pick(1, 9);
  c.blocks(pick(0, 3) ? pick(0, 100) : 0, pick(0, 3) ? pick(0, 300) : 0).pool(pick(0, 3));
  c.sigma = coin() ? 1.0f : 2.0f;
  return c;
}

// Pools of 1, 2 and 3 threads shared by all tests (0 = no pool).
inline attn::ThreadPool* pool_for(int threads) {
  static std::unique_ptr<attn::ThreadPool> pools[4];
  if (threads <= 0) return nullptr;
  if (!pools[threads]) pools[threads] = std::make_unique<attn::ThreadPool>(threads);
  return pools[threads].get();
}

}  // namespace testutil
