// The NaN and infinity policy of README's "NaN and infinity" section, row by row, against a
// float64 reference written from that table (not from the kernels): which outputs are NaN
// or ±inf must match exactly, the finite ones to 1e-4. Runs on the SIMD and the scalar
// build, with and without a pool, with the default tiling and a small one (so a poisoned
// key or value sits inside a tile that also holds keys some rows must not see).
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "adaattn/kv_cache.h"
#include "adaattn/low_rank_attention.h"
#include "flash/flash_attention.h"
#include "linear/linear_attention.h"
#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "test_util.h"

namespace {

using namespace testutil;
using attn::CausalAlign;

constexpr double kDInf = std::numeric_limits<double>::infinity();
constexpr double kDNaN = std::numeric_limits<double>::quiet_NaN();

struct Case {
  int seq_q = 40, seq_k = 150, heads = 2, d = 8, dv = 12;
  float softcap = 0.0f;
  CausalAlign causal = CausalAlign::kNone;
  std::vector<float> q, k, v;
  std::vector<float> mask_add;    // [seq_q][seq_k] or empty
  std::vector<uint8_t> mask_bool; // [seq_q][seq_k] or empty

  explicit Case(std::mt19937_64& rng, int sq = 40, int sk = 150) : seq_q(sq), seq_k(sk) {
    q = randn(rng, size_t(seq_q) * heads * d);
    k = randn(rng, size_t(seq_k) * heads * d);
    v = randn(rng, size_t(seq_k) * heads * dv);
  }
  float& qa(int i, int h, int c) { return q[(size_t(i) * heads + h) * d + c]; }
  float& ka(int j, int h, int c) { return k[(size_t(j) * heads + h) * d + c]; }
  float& va(int j, int h, int c) { return v[(size_t(j) * heads + h) * dv + c]; }
  bool visible(int i, int j) const {
    switch (causal) {
      case CausalAlign::kNone: return true;
      case CausalAlign::kTopLeft: return j <= i;
      case CausalAlign::kBottomRight: return j <= i + seq_k - seq_q;
    }
    return true;
  }
};

// The table, in float64. A key is attended when no rule blocks it (causal, boolean 0,
// additive -inf) and its logit is not -inf. No attended key: zero row, lse -inf. A NaN or
// +inf logit among the attended: the whole row NaN (lse NaN). Otherwise softmax over the
// attended keys, and out[c] = Σ p_j v_j[c] in IEEE arithmetic (NaN and inf in v carry).
struct Expected {
  std::vector<double> out, lse;
};

Expected policy_reference(const Case& c) {
  Expected e;
  e.out.assign(size_t(c.seq_q) * c.heads * c.dv, 0.0);
  e.lse.assign(size_t(c.heads) * c.seq_q, -kDInf);
  const double scale = 1.0 / std::sqrt(double(c.d));
  std::vector<double> logit(c.seq_k);
  std::vector<char> attended(c.seq_k);
  for (int h = 0; h < c.heads; ++h) {
    for (int i = 0; i < c.seq_q; ++i) {
      bool any = false, poisoned = false;
      double top = -kDInf;
      for (int j = 0; j < c.seq_k; ++j) {
        const size_t m = size_t(i) * c.seq_k + j;
        attended[j] = c.visible(i, j) && (c.mask_bool.empty() || c.mask_bool[m]) &&
                      (c.mask_add.empty() || c.mask_add[m] != -kInf);
        if (!attended[j]) continue;
        double s = 0;
        for (int x = 0; x < c.d; ++x) {
          s += double(c.q[(size_t(i) * c.heads + h) * c.d + x]) * double(c.k[(size_t(j) * c.heads + h) * c.d + x]);
        }
        s *= scale;
        if (c.softcap > 0) s = c.softcap * std::tanh(s / c.softcap);
        if (!c.mask_add.empty()) s += c.mask_add[m];
        logit[j] = s;
        if (s == -kDInf) {
          attended[j] = 0;
          continue;
        }
        any = true;
        if (std::isnan(s) || s == kDInf) poisoned = true;
        else top = std::max(top, s);
      }
      double* o = &e.out[(size_t(i) * c.heads + h) * c.dv];
      double& lse = e.lse[size_t(h) * c.seq_q + i];
      if (!any) continue;
      if (poisoned) {
        for (int x = 0; x < c.dv; ++x) o[x] = kDNaN;
        lse = kDNaN;
        continue;
      }
      double sum = 0;
      for (int j = 0; j < c.seq_k; ++j) {
        if (attended[j]) sum += std::exp(logit[j] - top);
      }
      lse = top + std::log(sum);
      for (int j = 0; j < c.seq_k; ++j) {
        if (!attended[j]) continue;
        const double p = std::exp(logit[j] - top) / sum;
        for (int x = 0; x < c.dv; ++x) o[x] += p * double(c.v[(size_t(j) * c.heads + h) * c.dv + x]);
      }
    }
  }
  return e;
}

// NaN where the reference is NaN, the same infinity where it is infinite, else within 1e-4
// of the largest finite reference value. Returns the number of mismatches (first few shown).
int compare(const float* got, const std::vector<double>& ref, const std::string& what) {
  double max_ref = 1e-6;
  for (double r : ref) {
    if (std::isfinite(r)) max_ref = std::max(max_ref, std::abs(r));
  }
  int bad = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double r = ref[i], g = got[i];
    const bool ok = std::isnan(r)      ? std::isnan(g)
                    : std::isinf(r)    ? g == r
                                       : std::isfinite(g) && std::abs(g - r) <= 1e-4 * max_ref;
    if (!ok && ++bad <= 5) ADD_FAILURE() << what << "[" << i << "]: got " << g << ", expected " << r;
  }
  return bad;
}

// Runs the flash kernel on the case in every configuration and checks out and lse.
void check_flash(const Case& c, const std::string& what) {
  ATTN_TRACE_SEED();
  const Expected e = policy_reference(c);
  attn::ThreadPool pool(3);
  struct Config {
    attn::ThreadPool* pool;
    int block_q, block_k;
  };
  for (const Config& cfg : {Config{nullptr, 0, 0}, Config{&pool, 0, 0}, Config{&pool, 16, 32}}) {
    SCOPED_TRACE(what + (cfg.pool ? " (pool" : " (no pool") + ", blocks " + std::to_string(cfg.block_q) + "x" +
                 std::to_string(cfg.block_k) + ")");
    attn::FlashShape s{1, c.seq_q, c.seq_k, c.heads, c.heads, c.d, c.dv};
    attn::FlashOptions o;
    o.softcap = c.softcap;
    o.causal = c.causal;
    o.block_q = cfg.block_q;
    o.block_k = cfg.block_k;
    if (!c.mask_add.empty()) o.mask.additive = c.mask_add.data();
    if (!c.mask_bool.empty()) o.mask.allowed = c.mask_bool.data();
    o.mask.row_stride = c.seq_k;
    std::vector<float> out(e.out.size(), -7.0f), lse(e.lse.size(), -7.0f);
    attn::flash_forward(s, o, {c.q.data(), c.k.data(), c.v.data(), out.data(), lse.data()}, cfg.pool);
    compare(out.data(), e.out, "out");
    // lse in natural units, as the reference's.
    compare(lse.data(), e.lse, "lse");
  }
}

int count_nan_rows(const std::vector<double>& out, int dv) {
  int rows = 0;
  for (size_t r = 0; r < out.size() / dv; ++r) rows += std::isnan(out[r * dv]);
  return rows;
}

TEST(NanPolicy, NaNInAQueryPoisonsOnlyItsRowOfItsHead) {
  std::mt19937_64 rng(test_seed());
  Case c(rng);
  c.qa(7, 1, 3) = kNaN;
  const Expected e = policy_reference(c);
  ASSERT_EQ(count_nan_rows(e.out, c.dv), 1);  // the reference agrees with the table's row
  check_flash(c, "NaN query");
}

TEST(NanPolicy, NaNInAKeyPoisonsExactlyTheRowsThatAttendIt) {
  std::mt19937_64 rng(test_seed());
  for (CausalAlign causal : {CausalAlign::kNone, CausalAlign::kTopLeft, CausalAlign::kBottomRight}) {
    Case c(rng, 100, 100);
    c.causal = causal;
    c.ka(60, 0, 2) = kNaN;
    // Rows 0..9 also block key 60 through the mask: they stay finite.
    c.mask_add.assign(size_t(c.seq_q) * c.seq_k, 0.0f);
    for (int i = 0; i < 10; ++i) c.mask_add[size_t(i) * c.seq_k + 60] = -kInf;
    const Expected e = policy_reference(c);
    const int nan_rows = count_nan_rows(e.out, c.dv);
    ASSERT_GT(nan_rows, 0);
    ASSERT_LT(nan_rows, c.seq_q * c.heads / 2);
    check_flash(c, "NaN key, causal " + std::to_string(int(causal)));
  }
}

TEST(NanPolicy, NaNAndInfInAValueReachOnlyItsColumnInRowsThatAttendIt) {
  std::mt19937_64 rng(test_seed());
  for (CausalAlign causal : {CausalAlign::kNone, CausalAlign::kTopLeft}) {
    Case c(rng, 100, 100);
    c.causal = causal;
    c.va(50, 0, 4) = kNaN;
    c.va(51, 1, 5) = kInf;
    c.va(70, 1, 6) = kInf, c.va(71, 1, 6) = -kInf;  // +inf meets -inf: NaN
    // Boolean mask: rows 0..4 do not see key 50.
    c.mask_bool.assign(size_t(c.seq_q) * c.seq_k, 1);
    for (int i = 0; i < 5; ++i) c.mask_bool[size_t(i) * c.seq_k + 50] = 0;
    check_flash(c, "NaN/inf value, causal " + std::to_string(int(causal)));
  }
}

TEST(NanPolicy, InfinityInQueriesAndKeys) {
  std::mt19937_64 rng(test_seed());
  Case c(rng);
  c.qa(3, 0, 1) = kInf;    // scores ±inf: a +inf logit makes the row NaN (inf - inf)
  c.ka(20, 1, 2) = -kInf;  // scores ±inf against key 20 of head 1: -inf drops that key only
  const Expected e = policy_reference(c);
  int finite_rows = 0;
  for (int i = 0; i < c.seq_q; ++i) finite_rows += std::isfinite(e.out[(size_t(i) * c.heads + 1) * c.dv]);
  ASSERT_GT(finite_rows, 0);  // some rows lose key 20 and stay finite
  check_flash(c, "inf query / key");
}

TEST(NanPolicy, SoftcapTurnsInfiniteScoresIntoFiniteLogits) {
  std::mt19937_64 rng(test_seed());
  Case c(rng);
  c.softcap = 5.0f;
  c.qa(3, 0, 1) = kInf;   // every logit of row 3, head 0 is ±5: finite
  c.ka(20, 1, 2) = kInf;  // key 20 of head 1: ±5 for every row
  c.qa(9, 1, 0) = kNaN;   // tanh(NaN) = NaN: the row stays NaN
  // Masks apply after softcap: -inf still blocks, and a fully blocked row is zero.
  c.mask_add.assign(size_t(c.seq_q) * c.seq_k, 0.5f);
  for (int j = 0; j < c.seq_k; ++j) c.mask_add[size_t(11) * c.seq_k + j] = -kInf;
  for (int j = 0; j < c.seq_k; j += 3) c.mask_add[size_t(12) * c.seq_k + j] = -kInf;
  const Expected e = policy_reference(c);
  ASSERT_TRUE(std::isfinite(e.out[(size_t(3) * c.heads) * c.dv]));
  check_flash(c, "softcap with infinities");
}

TEST(NanPolicy, FullyBlockedRowsAreZeroWhateverTheirInputs) {
  std::mt19937_64 rng(test_seed());
  Case c(rng, 30, 20);
  c.causal = CausalAlign::kBottomRight;  // rows 0..9 see no key
  c.qa(2, 0, 0) = kNaN;                  // a NaN query in a row that attends nothing
  c.mask_add.assign(size_t(c.seq_q) * c.seq_k, 0.0f);
  for (int j = 0; j < c.seq_k; ++j) c.mask_add[size_t(25) * c.seq_k + j] = -kInf;
  c.qa(25, 1, 0) = kNaN;  // and one in a row the mask blocks entirely
  c.ka(19, 0, 0) = kNaN;  // a NaN key only rows >= 19 (bottom-right: 29) see
  c.va(19, 1, 0) = kNaN;
  const Expected e = policy_reference(c);
  EXPECT_EQ(e.out[(size_t(2) * c.heads) * c.dv], 0.0);
  check_flash(c, "fully blocked rows");
  c.causal = CausalAlign::kTopLeft;  // and through softcap
  c.softcap = 2.0f;
  check_flash(c, "fully blocked rows, softcap");
}

TEST(NanPolicy, MaskWithPlusInfinityOrNaNIsRefusedNamingTheMask) {
  std::mt19937_64 rng(test_seed());
  Case c(rng, 8, 8);
  attn::FlashShape s{1, c.seq_q, c.seq_k, c.heads, c.heads, c.d, c.dv};
  std::vector<float> out(size_t(c.seq_q) * c.heads * c.dv), weights(size_t(c.heads) * c.seq_q * c.seq_k);
  for (float bad : {kInf, kNaN}) {
    std::vector<float> mask(size_t(c.seq_q) * c.seq_k, 0.0f);
    mask[5 * c.seq_k + 3] = bad;
    mask[1] = -kInf;  // -inf and large finite biases are fine
    mask[2] = -3e38f;
    attn::FlashOptions o;
    o.mask.additive = mask.data();
    o.mask.row_stride = c.seq_k;
    for (int call = 0; call < 2; ++call) {
      try {
        if (call == 0) {
          attn::flash_forward(s, o, {c.q.data(), c.k.data(), c.v.data(), out.data(), nullptr}, nullptr);
        } else {
          attn::attention_scores(s, o, c.q.data(), c.k.data(), weights.data(), nullptr);
        }
        ADD_FAILURE() << "mask holding " << bad << " was accepted";
      } catch (const attn::AttnError& err) {
        EXPECT_EQ(err.param(), "mask");
        EXPECT_EQ(err.kind(), attn::ErrorKind::kRange);
        EXPECT_NE(std::string(err.what()).find("[0][0][5][3]"), std::string::npos) << err.what();
      }
    }
    // Broadcast strides: the bad element found through a row stride of 0 too.
    o.mask.row_stride = 0;
    std::vector<float> row(c.seq_k, 0.0f);
    row[6] = bad;
    o.mask.additive = row.data();
    EXPECT_THROW(attn::flash_forward(s, o, {c.q.data(), c.k.data(), c.v.data(), out.data(), nullptr}, nullptr),
                 attn::AttnError);
    mask[5 * c.seq_k + 3] = 0.0f;  // the same mask without it runs
    o.mask.additive = mask.data();
    o.mask.row_stride = c.seq_k;
    EXPECT_NO_THROW(attn::flash_forward(s, o, {c.q.data(), c.k.data(), c.v.data(), out.data(), nullptr}, nullptr));
    EXPECT_EQ(count_nan(out.data(), out.size()), 0u);
  }
}

// attention_scores follows the same table: a poisoned row is NaN across, a blocked one zero.
TEST(NanPolicy, AttentionScoresFollowTheSameRules) {
  std::mt19937_64 rng(test_seed());
  Case c(rng, 20, 24);
  c.causal = CausalAlign::kTopLeft;
  c.qa(4, 0, 0) = kNaN;
  c.ka(10, 1, 0) = kNaN;
  c.mask_add.assign(size_t(c.seq_q) * c.seq_k, 0.0f);
  for (int j = 0; j < c.seq_k; ++j) c.mask_add[size_t(6) * c.seq_k + j] = -kInf;
  c.qa(6, 0, 0) = kNaN;  // blocked everywhere: zeros
  attn::FlashShape s{1, c.seq_q, c.seq_k, c.heads, c.heads, c.d, c.dv};
  attn::FlashOptions o;
  o.causal = c.causal;
  o.mask.additive = c.mask_add.data();
  o.mask.row_stride = c.seq_k;
  std::vector<float> w(size_t(c.heads) * c.seq_q * c.seq_k);
  attn::attention_scores(s, o, c.q.data(), c.k.data(), w.data(), nullptr);
  auto row_nan = [&](int h, int i) { return std::isnan(w[(size_t(h) * c.seq_q + i) * c.seq_k]); };
  EXPECT_TRUE(row_nan(0, 4));
  EXPECT_FALSE(row_nan(0, 3));
  for (int j = 0; j < c.seq_k; ++j) EXPECT_EQ(w[(size_t(0) * c.seq_q + 6) * c.seq_k + j], 0.0f);
  for (int i = 0; i < c.seq_q; ++i) EXPECT_EQ(row_nan(1, i), i >= 10 && i != 6) << "head 1 row " << i;
}

// Linear attention: its "attends" is j <= i when causal, every key otherwise.
TEST(NanPolicy, LinearAttentionPropagatesToTheRowsThatSeeTheKey) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(test_seed());
  const int n = 150, heads = 2, d = 8, dv = 8;
  for (attn::FeatureMap map : {attn::FeatureMap::kElu, attn::FeatureMap::kRelu, attn::FeatureMap::kDpfp}) {
    for (bool causal : {false, true}) {
      SCOPED_TRACE("map " + std::to_string(int(map)) + (causal ? " causal" : ""));
      std::vector<float> q = randn(rng, size_t(n) * heads * d), k = randn(rng, size_t(n) * heads * d),
                         v = randn(rng, size_t(n) * heads * dv), out(size_t(n) * heads * dv);
      q[(size_t(5) * heads + 0) * d + 1] = kNaN;   // row 5, head 0
      k[(size_t(90) * heads + 1) * d + 2] = kNaN;  // key 90, head 1
      v[(size_t(100) * heads + 0) * dv + 3] = kNaN;  // key 100, head 0, column 3
      attn::LinearOptions o;
      o.feature_map = map;
      o.causal = causal;
      attn::linear_attention({1, n, n, heads, d, dv}, o, q.data(), k.data(), v.data(), out.data(), nullptr);
      for (int i = 0; i < n; ++i) {
        const float* h0 = &out[(size_t(i) * heads + 0) * dv];
        const float* h1 = &out[(size_t(i) * heads + 1) * dv];
        const bool sees90 = !causal || i >= 90, sees100 = !causal || i >= 100;
        for (int c = 0; c < dv; ++c) {
          const bool nan0 = i == 5 || (sees100 && c == 3);
          ASSERT_EQ(bool(std::isnan(h0[c])), nan0) << "head 0 row " << i << " col " << c;
          ASSERT_EQ(bool(std::isnan(h1[c])), sees90) << "head 1 row " << i << " col " << c;
        }
      }
    }
  }
}

// KV cache: causal attend over the cache, NaN in a value the earlier queries cannot see,
// a NaN query, and a head split over workers (the partial states' merge).
TEST(NanPolicy, KVCachePropagatesOnlyToQueriesThatSeeTheKey) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(test_seed());
  const int heads = 1, d = 16, dv = 16, n = 1500, queries = 40;
  attn::ThreadPool pool(4);
  for (auto precision : {attn::StoragePrecision::kFp32, attn::StoragePrecision::kFp16, attn::StoragePrecision::kBf16}) {
    SCOPED_TRACE(attn::storage_precision_name(precision));
    std::vector<float> k = randn(rng, size_t(n) * d), v = randn(rng, size_t(n) * dv);
    v[size_t(n - 20) * dv + 2] = kNaN;  // seen by queries t >= 20 only (causal)
    std::vector<float> q = randn(rng, size_t(queries) * d), out(size_t(queries) * dv);
    q[size_t(3) * d] = kNaN;
    attn::KVCache cache(heads, d, dv, precision);
    cache.append(n, k.data(), v.data());
    for (attn::ThreadPool* p : {static_cast<attn::ThreadPool*>(nullptr), &pool}) {
      cache.attend(queries, q.data(), out.data(), {}, p, true);
      for (int t = 0; t < queries; ++t) {
        for (int c = 0; c < dv; ++c) {
          const bool nan = t == 3 || (t >= 20 && c == 2);
          ASSERT_EQ(bool(std::isnan(out[size_t(t) * dv + c])), nan) << "query " << t << " col " << c;
        }
      }
    }
  }
}

// Low rank (Nyström): landmarks are means over segments of queries and keys, so one NaN
// reaches every row of its head. What matters is that it is not silently dropped.
TEST(NanPolicy, LowRankNeverHidesANaN) {
  std::mt19937_64 rng(test_seed());
  const int n = 128, d = 16;
  for (int where = 0; where < 3; ++where) {
    std::vector<float> q = randn(rng, size_t(n) * d), k = randn(rng, size_t(n) * d),
                       v = randn(rng, size_t(n) * d), out(size_t(n) * d);
    (where == 0 ? q : where == 1 ? k : v)[size_t(40) * d + 1] = kNaN;
    attn::low_rank_forward({1, n, n, 1, 1, d, d}, 0.0f, 16, {q.data(), k.data(), v.data(), out.data(), nullptr},
                           nullptr);
    EXPECT_GT(count_nan(out.data(), out.size()), 0u) << "NaN in " << "qkv"[where] << " vanished";
  }
}

}  // namespace
