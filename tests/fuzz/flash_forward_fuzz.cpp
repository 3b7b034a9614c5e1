// libFuzzer target: attn::flash_forward (and attention_scores) with fuzzed shapes (batch,
// GQA, seq_q != seq_k, value_dim != head_dim, tile sizes), options (causal modes, softcap,
// dropout, scale, additive / boolean masks in every broadcast layout, band and row-range
// key selectors, lse, threads) and data (NaN, ±Inf, huge, denormal).
//
// Invariants, beyond "no crash, no sanitizer report, only AttnError escapes":
//   - where float32 can hold every intermediate (finite data, scores and V sums below
//     1e30), the output and lse are finite, and rows that see no key are exactly zero
//     with lse = -inf;
//   - there, the output, lse and weights match the float64 reference of
//     tests/cpp/reference_attention.h within a bound derived from the inputs (rounding of
//     the dot products, the mask and softcap, exp2's polynomial, the sums);
//   - validate_flash on arbitrary int shapes, with null tensors, always throws AttnError.
// NaN and ±Inf inputs are only required not to crash: their semantics are issue 9's NaN
// policy, not this target's.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "flash/flash_attention.h"
#include "fuzz_common.h"
#include "reference_attention.h"

namespace {

using attn::CausalAlign;
using attn::FlashOptions;
using attn::FlashShape;
using attn::KeySelector;

constexpr double kUnit = 1.0 / 16777216.0;  // 2^-24, float32 rounding
constexpr double kRepresentable = 1e30;     // intermediates below this cannot overflow

// Shapes anywhere in int's range, tensors absent: validation must refuse without UB.
void fuzz_validation(FuzzedDataProvider& in) {
  FlashShape s;
  s.batch = in.ConsumeIntegral<int>();
  s.seq_q = in.ConsumeIntegral<int>();
  s.seq_k = in.ConsumeIntegral<int>();
  s.heads_q = in.ConsumeIntegral<int>();
  s.heads_kv = in.ConsumeIntegral<int>();
  s.head_dim = in.ConsumeIntegral<int>();
  s.value_dim = in.ConsumeIntegral<int>();
  FlashOptions o;
  o.block_q = in.ConsumeIntegral<int>();
  o.block_k = in.ConsumeIntegral<int>();
  attn::FlashTensors none;
  fuzz::require(!fuzz::returns([&] { attn::flash_forward(s, o, none, nullptr); }),
                "flash_forward accepted null tensors");
}

int pick_block(FuzzedDataProvider& in) {
  switch (in.ConsumeIntegralInRange(0, 5)) {
    case 5: return -1;
    case 4: return 5000;
    case 3:
    case 2: return in.ConsumeIntegralInRange(1, 200);
    default: return 0;
  }
}

struct Mask {
  std::vector<float> additive;
  std::vector<uint8_t> allowed;
  bool nonfinite = false;  // NaN or +inf in the additive mask (-inf blocks, as it should)
  double max_abs = 0;      // of its finite values
};

// Mask values: blocked with a fuzzed probability, else 0 or a bias; some rows blocked whole.
Mask make_mask(FuzzedDataProvider& in, bool additive, size_t n, int64_t row_len) {
  Mask m;
  const uint64_t seed = in.ConsumeIntegral<uint64_t>();
  const float blocked = in.ConsumeProbability<float>();
  const float bias = in.PickValueInArray({0.0f, 0.5f, 4.0f, 100.0f});
  attn::UniformRng rng{seed};
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  if (additive) {
    m.additive.resize(n);
    for (auto& e : m.additive) e = rng.next(1.0f) * 0.5f + 0.5f < blocked ? kNegInf : rng.next(bias);
  } else {
    m.allowed.resize(n);
    for (auto& e : m.allowed) e = rng.next(1.0f) * 0.5f + 0.5f < blocked ? 0 : 1;
  }
  const int whole_rows = in.ConsumeIntegralInRange(0, 4);
  for (int r = 0; r < whole_rows && n > 0; ++r) {
    const size_t row = in.ConsumeIntegralInRange<size_t>(0, (n - 1) / size_t(row_len));
    for (int64_t j = 0; j < row_len && row * row_len + j < n; ++j) {
      if (additive) m.additive[row * row_len + j] = kNegInf;
      else m.allowed[row * row_len + j] = 0;
    }
  }
  const int overrides = in.ConsumeIntegralInRange(0, 4);
  for (int i = 0; i < overrides && n > 0; ++i) {
    const size_t at = in.ConsumeIntegralInRange<size_t>(0, n - 1);
    const uint8_t code = in.ConsumeIntegral<uint8_t>();
    if (additive) m.additive[at] = fuzz::special_value(code);
    else m.allowed[at] = code;  // any nonzero byte attends
  }
  for (float e : m.additive) {
    if (std::isnan(e) || e == std::numeric_limits<float>::infinity()) m.nonfinite = true;
    else if (std::isfinite(e)) m.max_abs = std::max(m.max_abs, double(std::fabs(e)));
  }
  return m;
}

void run(FuzzedDataProvider& in) {
  FlashShape s;
  s.batch = fuzz::in_range_or(in, 1, 2, 0);
  s.heads_kv = in.ConsumeIntegralInRange(1, 3);
  s.heads_q = s.heads_kv * in.ConsumeIntegralInRange(1, 3) + (in.ConsumeIntegralInRange(0, 31) == 31 ? 1 : 0);
  s.seq_q = fuzz::in_range_or(in, 1, 80, 0);
  s.seq_k = fuzz::in_range_or(in, 1, 80, -1);
  s.head_dim = fuzz::in_range_or(in, 1, 72, 0);
  s.value_dim = in.ConsumeBool() ? fuzz::in_range_or(in, 1, 72, 0) : s.head_dim;
  // Bounded work per input (the float64 reference does as much as the kernel).
  const double work = double(std::max(1, s.batch)) * s.heads_q * std::max(1, s.seq_q) * (s.head_dim + s.value_dim + 1);
  if (work * s.seq_k > 1.5e6) s.seq_k = std::max(1, int(1.5e6 / work));

  FlashOptions o;
  const int causal = in.ConsumeIntegralInRange(0, 2);
  o.causal = causal == 0 ? CausalAlign::kNone : causal == 1 ? CausalAlign::kTopLeft : CausalAlign::kBottomRight;
  if (in.ConsumeBool()) o.scale = fuzz::make_option(in, -4.0f, 4.0f);
  if (in.ConsumeBool()) o.softcap = fuzz::make_option(in, 0.0f, 50.0f);
  if (in.ConsumeIntegralInRange(0, 2) == 0) o.dropout = fuzz::make_option(in, 0.0f, 0.95f);
  o.seed = in.ConsumeIntegral<uint64_t>();
  o.block_q = pick_block(in);
  o.block_k = pick_block(in);

  const int64_t hq = std::max(0, s.heads_q), b = std::max(0, s.batch), sq = std::max(0, s.seq_q), sk = std::max(0, s.seq_k);
  const int mask_kind = in.ConsumeIntegralInRange(0, 4);  // none, additive, boolean, both, none
  Mask mask;
  if (mask_kind == 1 || mask_kind == 2 || mask_kind == 3) {
    // [q,k], [b,q,k], [h,q,k], [b,h,q,k], a key-padding [b,k] (row stride 0), or a bad stride.
    const int layout = in.ConsumeIntegralInRange(0, 5);
    int64_t rows = sq, count = 1;
    switch (layout) {
      case 1: o.mask.batch_stride = sq * sk, count = b; break;
      case 2: o.mask.head_stride = sq * sk, count = hq; break;
      case 3: o.mask.head_stride = sq * sk, o.mask.batch_stride = hq * sq * sk, count = b * hq; break;
      case 4: o.mask.batch_stride = sk, rows = 1, count = b; break;
      default: break;
    }
    o.mask.row_stride = layout == 4 ? 0 : layout == 5 ? sk - 1 : sk;
    const size_t n = size_t(std::max<int64_t>(0, rows * count * sk));
    mask = make_mask(in, mask_kind != 2, n, std::max<int64_t>(1, sk));
    if (mask_kind == 3) {  // both kinds at once: refused
      mask.allowed.assign(n, 1);
      o.mask.allowed = mask.allowed.data();
      o.mask.additive = mask.additive.data();
    } else if (mask_kind == 1) {
      o.mask.additive = mask.additive.data();
    } else {
      o.mask.allowed = mask.allowed.data();
    }
    if (n == 0) o.mask.additive = nullptr, o.mask.allowed = nullptr;
  }

  // Key selectors: a band with a hole, or fuzzed row ranges (clamped by the kernel).
  KeySelector keys;
  std::vector<int32_t> row_begin, row_end;
  const int selector = in.ConsumeIntegralInRange(0, 3);
  if (selector == 1) {
    keys.kind = KeySelector::Kind::kBand;
    keys.max_distance = in.ConsumeIntegralInRange<int64_t>(-1, 90);
    keys.min_distance = in.ConsumeIntegralInRange<int64_t>(in.ConsumeIntegralInRange(0, 15) == 15 ? -1 : 0, 8);
    o.keys = &keys;
  } else if (selector == 2) {
    keys.kind = KeySelector::Kind::kRowRanges;
    const size_t n = size_t(b * hq * sq);
    attn::UniformRng rng{in.ConsumeIntegral<uint64_t>()};
    row_begin.resize(n), row_end.resize(n);
    for (size_t r = 0; r < n; ++r) {
      row_begin[r] = int32_t(std::lround((rng.next(1.0f) * 0.5f + 0.5f) * float(sk + 4))) - 2;
      row_end[r] = row_begin[r] + int32_t(std::lround((rng.next(1.0f) * 0.5f + 0.5f) * float(sk + 2))) - 1;
    }
    keys.row_begin = row_begin.data();
    keys.row_end = row_end.data();
    o.keys = &keys;
  }
  std::atomic<int64_t> tiles{0}, scores{0};
  if (o.keys != nullptr) keys.visited_tiles = &tiles, keys.computed_scores = &scores;

  const bool want_lse = in.ConsumeBool();
  attn::ThreadPool* pool = in.ConsumeBool() ? fuzz::shared_pool() : nullptr;
  const bool want_weights = in.ConsumeBool() && selector != 2;  // row ranges: checked on out

  const size_t nq = size_t(b * sq * hq * std::max(0, s.head_dim));
  const size_t nk = size_t(b * sk * std::max(0, s.heads_kv) * std::max(0, s.head_dim));
  const size_t nv = size_t(b * sk * std::max(0, s.heads_kv) * std::max(0, s.value_dim));
  const size_t no = size_t(b * sq * hq * std::max(0, s.value_dim));
  const fuzz::Tensor q = fuzz::make_tensor(in, nq), k = fuzz::make_tensor(in, nk), v = fuzz::make_tensor(in, nv);
  std::vector<float> out(no, -7.0f), lse(size_t(b * hq * sq), -7.0f);
  attn::FlashTensors t{q.data(), k.data(), v.data(), out.data(), want_lse ? lse.data() : nullptr};

  if (std::getenv("FUZZ_VERBOSE") != nullptr) {
    std::fprintf(stderr,
                 "shape b %d sq %d sk %d hq %d hkv %d d %d dv %d; causal %d scale %g softcap %g dropout %g "
                 "blocks %d/%d mask %d selector %d lse %d pool %d weights %d; |q| %g |k| %g |v| %g |mask| %g\n",
                 s.batch, s.seq_q, s.seq_k, s.heads_q, s.heads_kv, s.head_dim, s.value_dim, causal,
                 o.scale ? double(*o.scale) : -1.0, o.softcap, o.dropout, o.block_q, o.block_k, mask_kind, selector,
                 want_lse, pool != nullptr, want_weights, q.max_abs, k.max_abs, v.max_abs, mask.max_abs);
  }
  if (!fuzz::returns([&] { attn::flash_forward(s, o, t, pool); })) return;
  std::vector<float> weights;
  if (want_weights) {
    weights.assign(size_t(b * hq * sq * sk), -7.0f);
    fuzz::require(fuzz::returns([&] { attn::attention_scores(s, o, q.data(), k.data(), weights.data(), pool); }),
                  "attention_scores refused a call flash_forward accepted");
  }

  // From here the call was valid: the reference and the bounds.
  ref::Config c;
  c.batch = s.batch, c.seq_q = s.seq_q, c.seq_k = s.seq_k, c.heads_q = s.heads_q, c.heads_kv = s.heads_kv;
  c.head_dim = s.head_dim, c.value_dim = s.value_dim;
  c.has_scale = o.scale.has_value();
  c.scale = o.scale.value_or(0.0f);
  c.softcap = o.softcap;
  c.causal = causal == 0 ? ref::Causal::kNone : causal == 1 ? ref::Causal::kTopLeft : ref::Causal::kBottomRight;
  c.dropout = o.dropout;
  c.seed = o.seed;
  // The masks broadcast to [b][h][q][k] (the reference takes one set of strides), the
  // boolean mask and the selector as one.
  std::vector<uint8_t> allowed(size_t(b * hq * sq * sk), 1);
  std::vector<float> additive(o.mask.additive != nullptr ? allowed.size() : 0);
  for (int64_t bi = 0; bi < b; ++bi) {
    for (int64_t h = 0; h < hq; ++h) {
      for (int64_t i = 0; i < sq; ++i) {
        const int64_t mrow = bi * o.mask.batch_stride + h * o.mask.head_stride + i * o.mask.row_stride;
        const int64_t bh_row = (bi * hq + h) * sq + i;
        for (int64_t j = 0; j < sk; ++j) {
          bool ok = o.mask.allowed == nullptr || o.mask.allowed[mrow + j] != 0;
          if (selector == 1) {
            const int64_t dist = std::abs(i - j);
            ok = ok && dist <= keys.max_distance && dist >= keys.min_distance;
          } else if (selector == 2) {
            ok = ok && j >= row_begin[size_t(bh_row)] && j < row_end[size_t(bh_row)];
          }
          allowed[size_t(bh_row * sk + j)] = ok;
          if (o.mask.additive != nullptr) additive[size_t(bh_row * sk + j)] = o.mask.additive[mrow + j];
        }
      }
    }
  }
  c.mask_bool = allowed.data();
  c.mask_add = o.mask.additive != nullptr ? additive.data() : nullptr;
  c.mask_head_stride = sq * sk, c.mask_batch_stride = hq * sq * sk, c.mask_row_stride = sk;
  const ref::Result r = ref::attention(c, q.data(), k.data(), v.data(), want_weights);

  const double scale = o.scale ? double(*o.scale) : 1.0 / std::sqrt(double(s.head_dim));
  const bool finite_inputs = !q.nonfinite && !k.nonfinite && !v.nonfinite && !mask.nonfinite;
  const double keep_scale = o.dropout > 0.0f ? 1.0 / (1.0 - double(o.dropout)) : 1.0;
  const int group = s.heads_q / s.heads_kv;
  for (int64_t bi = 0; bi < b; ++bi) {
    for (int64_t h = 0; h < hq; ++h) {
      for (int64_t i = 0; i < sq; ++i) {
        // Largest |q·k| term sum over the row's keys, and the largest |v| it sees.
        double dot_abs = 0, v_abs = 0;
        const float* qi = q.data() + ((bi * sq + i) * hq + h) * s.head_dim;
        for (int64_t j = 0; j < sk; ++j) {
          const float* kj = k.data() + ((bi * sk + j) * s.heads_kv + h / group) * s.head_dim;
          double sum = 0;
          for (int c2 = 0; c2 < s.head_dim; ++c2) sum += std::fabs(double(qi[c2]) * double(kj[c2]));
          dot_abs = std::max(dot_abs, sum);
          const float* vj = v.data() + ((bi * sk + j) * s.heads_kv + h / group) * s.value_dim;
          for (int c2 = 0; c2 < s.value_dim; ++c2) v_abs = std::max(v_abs, double(std::fabs(vj[c2])));
        }
        // The kernel multiplies q by the prescale first: that product is an intermediate too.
        double q_abs = 0;
        for (int c2 = 0; c2 < s.head_dim; ++c2) q_abs = std::max(q_abs, double(std::fabs(qi[c2])));
        const double prescaled = std::fabs(scale) * std::max(dot_abs, q_abs) * (o.softcap > 0 ? 1.0 / o.softcap : 1.4427);
        const bool representable = finite_inputs && prescaled < kRepresentable && mask.max_abs < kRepresentable &&
                                   double(sk) * v_abs * keep_scale < kRepresentable;
        if (!representable) continue;
        const size_t row = size_t((bi * hq + h) * sq + i);
        const float* got = out.data() + ((bi * sq + i) * hq + h) * s.value_dim;
        const double* want = r.out.data() + ((bi * sq + i) * hq + h) * s.value_dim;
        // Logit error (natural units): the dot product's rounding, softcap's tanh, the mask.
        const double logit_err = (s.head_dim + 4) * 2 * kUnit * std::fabs(scale) * dot_abs +
                                 o.softcap * 4e-7 + mask.max_abs * 4 * kUnit + 1e-30;
        const double weight_err = 2 * logit_err + 1e-6 + (sk + 8) * 2 * kUnit;
        const double out_bound = weight_err * v_abs * keep_scale + 1e-35;
        for (int c2 = 0; c2 < s.value_dim; ++c2) {
          if (!std::isfinite(got[c2])) fuzz::fail("output not finite for representable finite inputs", got[c2], want[c2]);
          if (r.row_masked[row] && got[c2] != 0.0f) fuzz::fail("a row that sees no key is not zero", got[c2], 0);
          if (std::fabs(got[c2] - want[c2]) > out_bound) fuzz::fail("output differs from the float64 reference", got[c2], want[c2], out_bound);
        }
        if (want_lse) {
          if (r.row_masked[row]) {
            if (lse[row] != -std::numeric_limits<float>::infinity()) fuzz::fail("lse of an empty row is not -inf", lse[row], r.lse[row]);
          } else {
            const double lse_bound = logit_err + 1e-6 * (1 + std::fabs(r.lse[row])) + (sk + 8) * 2 * kUnit;
            if (!(std::fabs(lse[row] - r.lse[row]) <= lse_bound)) fuzz::fail("lse differs from the float64 reference", lse[row], r.lse[row], lse_bound);
          }
        }
        if (want_weights) {
          for (int64_t j = 0; j < sk; ++j) {
            const double w = weights[row * size_t(sk) + size_t(j)], p = r.weights[row * size_t(sk) + size_t(j)];
            if (!(std::fabs(w - p) <= weight_err)) fuzz::fail("attention_scores differs from the float64 reference", w, p, weight_err);
          }
        }
      }
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  if (in.ConsumeIntegralInRange(0, 15) == 15) {
    fuzz_validation(in);
  } else {
    run(in);
  }
  return 0;
}
