#include "asam/hybrid_asam.h"

#include <algorithm>
#include <atomic>
#include <utility>

#include "flash/flash_attention.h"
#include "runtime/errors.h"

namespace attn::asam {

namespace {

// Rows [i0, i0 + rows) of one batch element attend keys [0, keys) under `selector`; their
// output and log-sum-exp merge into the local part's (attended [n][h][d], lse [h][n]).
void merge_part(int n, int heads, int d, int block, int i0, int rows, int keys, const float* q, const float* k,
                const float* v, KeySelector& selector, std::atomic<int64_t>& scores, float* attended, float* lse,
                ThreadPool* pool) {
  if (rows == 0 || keys == 0) return;
  std::atomic<int64_t> tiles{0};
  selector.visited_tiles = &tiles;
  selector.computed_scores = &scores;
  FlashOptions o;
  o.block_q = block;
  o.block_k = block;
  o.keys = &selector;
  const FlashShape shape{1, rows, keys, heads, heads, d, d};
  std::vector<float> part(size_t(rows) * heads * d), part_lse(size_t(heads) * rows);
  const int64_t row_floats = int64_t{heads} * d;
  flash_forward(shape, o, {q + i0 * row_floats, k, v, part.data(), part_lse.data()}, pool);
  for (int r = 0; r < rows; ++r)
    for (int h = 0; h < heads; ++h) {
      const int64_t i = i0 + r;
      merge_attention_row(attended + i * row_floats + int64_t{h} * d, lse[int64_t{h} * n + i],
                          part.data() + int64_t{r} * row_floats + int64_t{h} * d, part_lse[size_t(h) * rows + r], d);
    }
}

}  // namespace

ASAMConfig HybridASAM::validated(const ASAMConfig& config, int local_window_size, int num_global_tokens) {
  ASAMConfig c = validate_asam_config(config);
  require_positive("localWindowSize", local_window_size);
  if (num_global_tokens < 0) {
    throw_range("numGlobalTokens", "must be a non-negative integer, got " + std::to_string(num_global_tokens));
  }
  return c;
}

HybridASAM::HybridASAM(const ASAMConfig& config, int local_window_size, int num_global_tokens)
    : config_(validated(config, local_window_size, num_global_tokens)),
      window_(local_window_size),
      global_(num_global_tokens),
      proj_(config_.dim, config_.inner_dim(), config_.seed) {}

void HybridASAM::forward(int batch, int seq, const float* x, const MaskView& mask, float* out, HybridInfo* info,
                         ThreadPool* pool) const {
  require_positive("batch", batch);
  require_positive("seqLen", seq);
  if (x == nullptr) throw_type("x", "must be given");
  if (out == nullptr) throw_type("out", "must be given");
  if (mask.present()) {
    throw_range("mask", "HybridASAM takes no mask: its window and global tokens are the attention mask");
  }
  const int heads = config_.num_heads, d = config_.dim_head, inner = config_.inner_dim(), n = seq;
  const int64_t rows = int64_t{batch} * n;
  std::vector<float> q(size_t(rows) * inner), k(q.size()), v(q.size()), attended(q.size());
  std::vector<float> lse(size_t(batch) * heads * n);
  proj_.qkv(rows, x, q.data(), k.data(), v.data(), pool);

  PatternParams local;
  local.type = PatternType::kLocal;
  local.window_size = window_;
  local.block_size = config_.block_size;
  const FlashShape shape{batch, n, n, heads, heads, d, d};
  const SparseStats stats =
      sparse_attention(shape, local, std::nullopt, q.data(), k.data(), v.data(), attended.data(), pool, lse.data());

  const int g = std::min(global_, n);
  const int64_t half = window_ / 2;
  std::atomic<int64_t> global_scores{0};
  std::vector<int32_t> begin(size_t(heads) * (n - g), 0), end(begin.size());
  for (int h = 0; h < heads; ++h)
    for (int r = 0; r < n - g; ++r) {
      end[size_t(h) * (n - g) + r] = static_cast<int32_t>(std::clamp<int64_t>(g + r - half, 0, g));
    }
  for (int b = 0; b < batch; ++b) {
    const int64_t at = int64_t{b} * n * inner;
    float* out_b = attended.data() + at;
    float* lse_b = lse.data() + int64_t{b} * heads * n;
    KeySelector outside_window;  // global rows: every key beyond their window
    outside_window.kind = KeySelector::Kind::kBand;
    outside_window.min_distance = half + 1;
    outside_window.max_distance = n;
    merge_part(n, heads, d, config_.block_size, 0, g, n, q.data() + at, k.data() + at, v.data() + at,
               outside_window, global_scores, out_b, lse_b, pool);
    KeySelector global_keys;  // other rows: the global keys left of their window
    global_keys.kind = KeySelector::Kind::kRowRanges;
    global_keys.row_begin = begin.data();
    global_keys.row_end = end.data();
    merge_part(n, heads, d, config_.block_size, g, n - g, g, q.data() + at, k.data() + at, v.data() + at,
               global_keys, global_scores, out_b, lse_b, pool);
  }
  proj_.out(rows, attended.data(), out, pool);

  if (info != nullptr) {
    info->local_stats = stats;
    info->global_scores = global_scores.load();
    info->sparse_ratio = stats.sparse_ratio(info->global_scores);
  }
}

void HybridASAM::load_named(const NamedWeights& named) {
  AttentionProjections::Weights fresh = proj_.weights();
  assign_named(named, named_parameters(), AttentionProjections::slots(fresh),
               "is not a weight of HybridASAM (expected q_proj, k_proj, v_proj, out_proj .weight / .bias)");
  proj_.set_weights(std::move(fresh));
}

}  // namespace attn::asam
