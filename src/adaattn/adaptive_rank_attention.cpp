#include "adaattn/adaptive_rank_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "adaattn/low_rank_attention.h"
#include "flash/flash_attention.h"
#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "runtime/uniform_rng.h"

namespace attn {

namespace {

// Runs body(task, worker) for every task, on the pool when there is one.
template <typename Body>
void for_each_task(int64_t tasks, ThreadPool* pool, const Body& body) {
  auto chunk = [&](int64_t begin, int64_t end, int worker) {
    for (int64_t t = begin; t < end; ++t) body(t, worker);
  };
  if (pool != nullptr) {
    pool->parallel_for(tasks, 1, chunk);
  } else {
    chunk(0, tasks, 0);
  }
}

// The dense heads of a mixed call, run by one flash call over a batch of single heads
// gathered into contiguous rows (cost O(seq · head_dim) per head, against O(seq² · head_dim)
// for its attention).
void dense_heads(const FlashShape& s, const FlashTensors& t, const std::vector<int64_t>& tasks, ThreadPool* pool) {
  const int d = s.head_dim, dv = s.value_dim, count = int(tasks.size());
  std::vector<float> q(size_t(count) * s.seq_q * d), k(size_t(count) * s.seq_k * d), v(size_t(count) * s.seq_k * dv);
  std::vector<float> out(size_t(count) * s.seq_q * dv);
  auto rows = [](const float* src, int64_t ld, int n, int width, float* dst) {
    for (int i = 0; i < n; ++i) std::copy(src + i * ld, src + i * ld + width, dst + int64_t{i} * width);
  };
  for (int i = 0; i < count; ++i) {
    const HeadView h = head_view(s, t, int(tasks[size_t(i)] / s.heads_q), int(tasks[size_t(i)] % s.heads_q));
    rows(h.q, h.ld_q, s.seq_q, d, q.data() + int64_t{i} * s.seq_q * d);
    rows(h.k, h.ld_k, s.seq_k, d, k.data() + int64_t{i} * s.seq_k * d);
    rows(h.v, h.ld_v, s.seq_k, dv, v.data() + int64_t{i} * s.seq_k * dv);
  }
  const FlashShape single{count, s.seq_q, s.seq_k, 1, 1, d, dv};
  flash_forward(single, FlashOptions{}, {q.data(), k.data(), v.data(), out.data(), nullptr}, pool);
  for (int i = 0; i < count; ++i) {
    const HeadView h = head_view(s, t, int(tasks[size_t(i)] / s.heads_q), int(tasks[size_t(i)] % s.heads_q));
    const float* src = out.data() + int64_t{i} * s.seq_q * dv;
    for (int r = 0; r < s.seq_q; ++r) std::copy(src + int64_t{r} * dv, src + int64_t{r + 1} * dv, h.out + r * h.ld_out);
  }
}

}  // namespace

const char* rank_reason_name(RankReason r) {
  switch (r) {
    case RankReason::kAtOrAboveThreshold: return "estimate>=threshold";
    case RankReason::kBelowThreshold: return "estimate<threshold";
    case RankReason::kCausal: return "causal";
    case RankReason::kMask: return "mask";
    case RankReason::kNotCheaper: return "not-cheaper";
    case RankReason::kSampleError: return "sampled-error>max";
  }
  return "estimate<threshold";
}

AdaptiveRankConfig AdaptiveRankAttention::validated(const AdaptiveRankConfig& c) {
  require_positive("embedDim", c.embed_dim);
  require_positive("numHeads", c.num_heads);
  if (c.embed_dim % c.num_heads != 0) {
    throw_range("numHeads", "must divide embedDim (" + std::to_string(c.embed_dim) + "), got " +
                                std::to_string(c.num_heads));
  }
  if (!(std::isfinite(c.rank_ratio) && c.rank_ratio > 0.0f)) {
    throw_range("rankRatio", "must be a finite number > 0 (landmarks = round(rankRatio * headDim))");
  }
  if (double(c.rank_ratio) * (c.embed_dim / c.num_heads) > 1e6) {
    throw_range("rankRatio", "gives more than a million landmarks");
  }
  if (!(c.adaptive_threshold >= 0.0f && c.adaptive_threshold <= 1.0f)) {
    throw_range("adaptiveThreshold", "must be in [0, 1] (every estimate is)");
  }
  if (!(std::isfinite(c.max_sampled_error) && c.max_sampled_error >= 0.0f)) {
    throw_range("maxSampledError", "must be a finite number >= 0 (a relative error)");
  }
  // The four embedDim x embedDim projections must be addressable: under WebAssembly size_t
  // is 32 bits, and embedDim = 65536 would wrap their size to 0.
  if (4.0 * c.embed_dim * c.embed_dim * sizeof(float) > double(std::numeric_limits<size_t>::max()) / 4) {
    throw_range("embedDim", "the weights (4 * embedDim^2 floats) are too large for this platform's memory");
  }
  return c;
}

AdaptiveRankAttention::AdaptiveRankAttention(const AdaptiveRankConfig& config)
    : config_(validated(config)),
      rank_(std::max(1, int(std::lround(double(config_.rank_ratio) * head_dim())))),
      proj_(config_.embed_dim, config_.embed_dim, config_.seed) {
  reset_statistics();
}

void AdaptiveRankAttention::reset_statistics() {
  stats_ = RankStatistics{};
  stats_.per_head.assign(size_t(config_.num_heads), HeadTotals{});
}

int64_t AdaptiveRankAttention::param_count() const {
  int64_t n = 0;
  for (const ParameterView& p : named_parameters()) n += p.count();
  return n;
}

void AdaptiveRankAttention::load_named(const NamedWeights& named) {
  asam::AttentionProjections::Weights fresh = proj_.weights();
  assign_named(named, proj_.named_parameters(), asam::AttentionProjections::slots(fresh),
               "is not a weight of AdaptiveRankAttention (q_proj, k_proj, v_proj, out_proj .weight / .bias)");
  proj_.set_weights(std::move(fresh));
}

void AdaptiveRankAttention::attend(int batch, int seq_q, int seq_k, const float* q, const float* k, const float* v,
                                   const MaskView& mask, CausalAlign causal, float* out, ThreadPool* pool) {
  const int heads = config_.num_heads, d = head_dim();
  const FlashShape shape{batch, seq_q, seq_k, heads, heads, d, d};
  FlashOptions options;
  options.causal = causal;
  options.mask = mask;
  validate_flash(shape, options);
  if (q == nullptr || k == nullptr || v == nullptr || out == nullptr) {
    throw_type("tensors", "q, k, v and out must all be given");
  }
  const FlashTensors tensors{q, k, v, out, nullptr};
  const float scale = 1.0f / std::sqrt(float(d));
  const int64_t tasks = int64_t{batch} * heads;

  std::vector<HeadDecision> decisions(static_cast<size_t>(tasks));
  bool sample = true;
  RankReason forced = RankReason::kBelowThreshold;
  if (causal != CausalAlign::kNone) {
    sample = false, forced = RankReason::kCausal;
  } else if (mask.present()) {
    sample = false, forced = RankReason::kMask;
  } else if (low_rank_head_flops(seq_q, seq_k, rank_, d, d) > 0.5 * 2.0 * double(seq_q) * seq_k * (d + d)) {
    sample = false, forced = RankReason::kNotCheaper;
  }
  const int landmarks = usable_landmarks(rank_, seq_q, seq_k);
  const uint64_t call_seed = derive_seed(config_.seed, uint64_t(stats_.calls));
  const int workers = pool != nullptr ? pool->size() : 1;
  {
    std::vector<RankSampleScratch> scratch(static_cast<size_t>(sample ? workers : 0));
    for_each_task(sample ? tasks : 0, pool, [&](int64_t t, int worker) {
      HeadDecision& dec = decisions[size_t(t)];
      dec.estimate = estimate_rank_fitness(config_.method, seq_q, seq_k, d, scale, rank_,
                                           head_view(shape, tensors, int(t / heads), int(t % heads)),
                                           derive_seed(call_seed, uint64_t(t)), scratch[size_t(worker)]);
    });
  }
  std::vector<int64_t> low, dense;
  for (int64_t t = 0; t < tasks; ++t) {
    HeadDecision& dec = decisions[size_t(t)];
    dec.batch = int(t / heads), dec.head = int(t % heads);
    if (!sample) {
      dec.reason = forced;
    } else {
      dec.low_rank = dec.estimate >= config_.adaptive_threshold;
      dec.reason = dec.low_rank ? RankReason::kAtOrAboveThreshold : RankReason::kBelowThreshold;
    }
    dec.rank = dec.low_rank ? landmarks : 0;
    (dec.low_rank ? low : dense).push_back(t);
  }

  if (!low.empty()) {
    std::vector<LowRankScratch> scratch(static_cast<size_t>(workers));
    for_each_task(int64_t(low.size()), pool, [&](int64_t i, int worker) {
      const int64_t t = low[size_t(i)];
      const HeadView head = head_view(shape, tensors, int(t / heads), int(t % heads));
      low_rank_head(seq_q, seq_k, d, d, scale, landmarks, head, scratch[size_t(worker)]);
      decisions[size_t(t)].sampled_error = sampled_row_error(seq_q, seq_k, d, d, scale, kVerifyRows, head);
    });
    // The estimate guessed; the sampled rows measured. Heads too far off run dense after all.
    for (int64_t t : low) {
      HeadDecision& dec = decisions[size_t(t)];
      if (!(dec.sampled_error <= config_.max_sampled_error)) {
        dec.low_rank = false, dec.rank = 0, dec.reason = RankReason::kSampleError;
        dense.push_back(t);
      }
    }
    low.erase(std::remove_if(low.begin(), low.end(), [&](int64_t t) { return !decisions[size_t(t)].low_rank; }),
              low.end());
    std::sort(dense.begin(), dense.end());
  }
  if (dense.size() == size_t(tasks)) {
    flash_forward(shape, options, tensors, pool);  // masks and the causal rule only come here
  } else if (!dense.empty()) {
    dense_heads(shape, tensors, dense, pool);
  }

  stats_.calls += 1;
  stats_.last_seq_q = seq_q, stats_.last_seq_k = seq_k;
  for (const HeadDecision& dec : decisions) {
    HeadTotals& total = stats_.per_head[size_t(dec.head)];
    (dec.low_rank ? total.low_rank : total.dense) += 1;
    total.rejected += dec.reason == RankReason::kSampleError;
    if (!std::isnan(dec.estimate)) {
      total.estimated += 1;
      total.estimate_sum += dec.estimate;
      total.estimate_min = std::min(total.estimate_min, dec.estimate);
      total.estimate_max = std::max(total.estimate_max, dec.estimate);
    }
  }
  stats_.last_call = std::move(decisions);
}

void AdaptiveRankAttention::forward(int batch, int seq_q, int seq_k, const float* query, const float* key,
                                    const float* value, const MaskView& mask, CausalAlign causal, float* out,
                                    ThreadPool* pool) {
  const int e = config_.embed_dim;
  FlashOptions options;
  options.causal = causal;
  options.mask = mask;
  validate_flash({batch, seq_q, seq_k, config_.num_heads, config_.num_heads, head_dim(), head_dim()}, options);
  if (query == nullptr || key == nullptr || value == nullptr || out == nullptr) {
    throw_type("tensors", "query, key, value and out must all be given");
  }
  std::vector<float> q(size_t(batch) * seq_q * e), k(size_t(batch) * seq_k * e), v(size_t(batch) * seq_k * e);
  std::vector<float> heads(size_t(batch) * seq_q * e);
  proj_.q(int64_t{batch} * seq_q, query, q.data(), pool);
  proj_.k(int64_t{batch} * seq_k, key, k.data(), pool);
  proj_.v(int64_t{batch} * seq_k, value, v.data(), pool);
  attend(batch, seq_q, seq_k, q.data(), k.data(), v.data(), mask, causal, heads.data(), pool);
  proj_.out(int64_t{batch} * seq_q, heads.data(), out, pool);
}

}  // namespace attn
