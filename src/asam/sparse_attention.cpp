#include "asam/sparse_attention.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <functional>
#include <limits>

#include "asam/random_blocks.h"
#include "flash/flash_attention.h"
#include "gemm/gemm.h"
#include "runtime/thread_pool.h"
#include "runtime/errors.h"

namespace attn::asam {

namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Output and log-sum-exp of the whole pattern, built part by part: each part's softmax
// over its own keys merges exactly into the running one (the parts' keys are disjoint).
struct Merged {
  const FlashShape& s;
  float* out;               // [b][n][h][dv], the caller's
  std::vector<float> lse;   // [b][h][n]

  Merged(const FlashShape& shape, float* o)
      : s(shape), out(o), lse(size_t(shape.batch) * shape.heads_q * shape.seq_q, kNegInf) {
    std::fill(out, out + int64_t{s.batch} * s.seq_q * s.heads_q * s.value_dim, 0.0f);
  }
  // Row (b, i, h) of a part: its normalised output and log-sum-exp.
  void add(int b, int i, int h, const float* part_out, float part_lse) {
    merge_attention_row(out + ((int64_t{b} * s.seq_q + i) * s.heads_q + h) * s.value_dim,
                        lse[(int64_t{b} * s.heads_q + h) * s.seq_q + i], part_out, part_lse, s.value_dim);
  }
};

// Blocks and scores the parts computed.
struct Counters {
  std::atomic<int64_t> tiles{0};
  std::atomic<int64_t> scores{0};
};

// One part: flash attention over gathered rows with a key selector. The part holds
// `groups` gathered sequences per batch element (flash runs them as batch * groups);
// q_rows / k_rows give, per (batch, group, head), the sequence positions of the part's
// queries and keys in order ([b][g][h][m_q] and [b][g][h][m_k]); null means the sequence
// itself (groups = 1).
struct Part {
  int m_q, m_k;
  const std::vector<int32_t>* q_rows = nullptr;
  const std::vector<int32_t>* k_rows = nullptr;
  KeySelector keys;
  int groups = 1;
};

// body(begin, end) over [0, count) on the pool (in chunks of `grain`), or here without one.
void parallel_rows(ThreadPool* pool, int64_t count, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
  if (pool != nullptr && count > grain) {
    pool->parallel_for(count, grain, [&](int64_t begin, int64_t end, int) { body(begin, end); });
  } else {
    body(0, count);
  }
}

// Rows of x [b][n][h][dim] into dst [b * groups][m][h][dim] at the part's positions.
void gather(const FlashShape& s, const float* x, int dim, int groups, int m,
            const std::vector<int32_t>& rows, float* dst, ThreadPool* pool) {
  parallel_rows(pool, int64_t{s.batch} * groups * m, 256, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) {
      const int64_t bg = r / m, p = r % m;
      for (int h = 0; h < s.heads_q; ++h) {
        const int32_t i = rows[(bg * s.heads_q + h) * m + p];
        const float* src = x + ((bg / groups * s.seq_q + i) * s.heads_q + h) * dim;
        std::copy(src, src + dim, dst + ((bg * m + p) * s.heads_q + h) * dim);
      }
    }
  });
}

void run_part(const FlashShape& s, const PatternParams& params, std::optional<float> scale,
              const float* q, const float* k, const float* v, Part& part,
              Counters& counters, Merged& merged, ThreadPool* pool) {
  if (part.m_q == 0 || part.m_k == 0) return;
  FlashShape ps = s;
  ps.batch = s.batch * part.groups;
  ps.seq_q = part.m_q;
  ps.seq_k = part.m_k;
  std::vector<float> gq, gk, gv;
  if (part.q_rows != nullptr) {
    gq.resize(size_t(ps.batch) * part.m_q * s.heads_q * s.head_dim);
    gather(s, q, s.head_dim, part.groups, part.m_q, *part.q_rows, gq.data(), pool);
    q = gq.data();
  }
  if (part.k_rows != nullptr) {
    gk.resize(size_t(ps.batch) * part.m_k * s.heads_q * s.head_dim);
    gv.resize(size_t(ps.batch) * part.m_k * s.heads_q * s.value_dim);
    gather(s, k, s.head_dim, part.groups, part.m_k, *part.k_rows, gk.data(), pool);
    gather(s, v, s.value_dim, part.groups, part.m_k, *part.k_rows, gv.data(), pool);
    k = gk.data();
    v = gv.data();
  }
  FlashOptions o;
  o.scale = scale;
  o.block_q = params.block_size;
  o.block_k = params.block_size;
  part.keys.visited_tiles = &counters.tiles;
  part.keys.computed_scores = &counters.scores;
  o.keys = &part.keys;
  std::vector<float> out(size_t(ps.batch) * part.m_q * s.heads_q * s.value_dim);
  std::vector<float> lse(size_t(ps.batch) * s.heads_q * part.m_q);
  flash_forward(ps, o, FlashTensors{q, k, v, out.data(), lse.data()}, pool);
  // Each row of the part is a distinct (batch, position, head) of the result: in parallel.
  parallel_rows(pool, ps.batch * s.heads_q * int64_t{part.m_q}, 1024, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      const int64_t bgh = row / part.m_q, p = row % part.m_q;
      const int64_t bg = bgh / s.heads_q, h = bgh % s.heads_q;
      const int i = part.q_rows != nullptr ? (*part.q_rows)[row] : static_cast<int>(p);
      merged.add(static_cast<int>(bg / part.groups), i, static_cast<int>(h),
                 out.data() + ((bg * part.m_q + p) * s.heads_q + h) * s.value_dim, lse[row]);
    }
  });
}

// Keys j ≡ i (mod step) with min_distance <= |i - j| / step <= max_distance. Residue class
// r is the sequence r, r + step, ...; the classes of equal length run as one batch (at
// most two flash calls per step: ceil(n / step) and floor(n / step) long).
void run_dilated(const FlashShape& s, const PatternParams& params, std::optional<float> scale,
                 const float* q, const float* k, const float* v, int step, int64_t min_distance,
                 int64_t max_distance, Counters& counters, Merged& merged, ThreadPool* pool) {
  const int n = s.seq_q, longer = n % step, classes = std::min(step, n);
  const int long_len = static_cast<int>(ceil_div(n, step));
  // [first, last) residues of each length.
  const int split = longer == 0 ? classes : longer;
  for (const auto [first, last, m] : {std::array<int, 3>{0, split, long_len},
                                      std::array<int, 3>{split, classes, long_len - 1}}) {
    if (first >= last || m == 0) continue;
    const int groups = last - first;
    std::vector<int32_t> rows(size_t(s.batch) * groups * s.heads_q * m);
    for (int b = 0; b < s.batch; ++b)
      for (int g = 0; g < groups; ++g)
        for (int h = 0; h < s.heads_q; ++h)
          for (int p = 0; p < m; ++p)
            rows[((int64_t{b} * groups + g) * s.heads_q + h) * m + p] = first + g + p * step;
    Part part{m, m, &rows, &rows, {}, groups};
    part.keys.kind = KeySelector::Kind::kBand;
    part.keys.min_distance = min_distance;
    part.keys.max_distance = max_distance;
    run_part(s, params, scale, q, k, v, part, counters, merged, pool);
  }
}

void run_band(const FlashShape& s, const PatternParams& params, std::optional<float> scale,
              const float* q, const float* k, const float* v, int64_t max_distance,
              Counters& counters, Merged& merged, ThreadPool* pool) {
  Part part{s.seq_q, s.seq_k, nullptr, nullptr, {}};
  part.keys.kind = KeySelector::Kind::kBand;
  part.keys.max_distance = max_distance;
  run_part(s, params, scale, q, k, v, part, counters, merged, pool);
}

// Random: per (batch, head, query block) its key blocks, ascending (random_blocks.h).
struct BlockLists {
  std::vector<int64_t> offsets;
  std::vector<int32_t> blocks;
};
BlockLists random_blocks(const FlashShape& s, const PatternParams& p) {
  const int nb = static_cast<int>(ceil_div(s.seq_q, p.block_size));
  const int count = random_blocks_per_query_block(nb, p.window_size, p.block_size);
  BlockLists lists;
  lists.offsets.push_back(0);
  std::vector<int32_t> pool;
  for (int b = 0; b < s.batch; ++b)
    for (int h = 0; h < s.heads_q; ++h)
      for (int qb = 0; qb < nb; ++qb) {
        const size_t at = lists.blocks.size();
        lists.blocks.resize(at + count);
        random_key_blocks(p.seed, h, qb, nb, count, pool, lists.blocks.data() + at);
        lists.offsets.push_back(static_cast<int64_t>(lists.blocks.size()));
      }
  return lists;
}

// Clustered: each row's cluster, [b][h][n] (the centroid with the largest dot product;
// the lowest index on ties). The dot products of one (batch, head) are one GEMM, rows of x
// (stride heads * head_dim) times the head's centroids transposed; (b, h) pairs in parallel.
std::vector<int32_t> assign_clusters(const FlashShape& s, const PatternParams& p, const float* x,
                                     ThreadPool* pool) {
  const int n = s.seq_q, d = s.head_dim, C = p.num_clusters;
  std::vector<int32_t> cluster(size_t(s.batch) * s.heads_q * n);
  const int64_t pairs = int64_t{s.batch} * s.heads_q;
  auto body = [&](int64_t begin, int64_t end, int) {
    GemmScratch scratch;
    std::vector<float> dots(size_t(n) * C);
    for (int64_t bh = begin; bh < end; ++bh) {
      const int64_t b = bh / s.heads_q, h = bh % s.heads_q;
      const MatrixView rows{x + (b * n * s.heads_q + h) * d, int64_t{s.heads_q} * d, false};
      const MatrixView centroids_t{p.centroids + h * C * d, d, true};  // [d][C] as Cᵀ
      gemm(n, C, d, rows, centroids_t, dots.data(), C, false, scratch);
      for (int i = 0; i < n; ++i) {
        const float* row = dots.data() + int64_t{i} * C;
        cluster[bh * n + i] = static_cast<int32_t>(std::max_element(row, row + C) - row);
      }
    }
  };
  if (pool != nullptr) {
    pool->parallel_for(pairs, 1, body);
  } else {
    body(0, pairs, 0);
  }
  return cluster;
}

// Positions sorted by cluster (stable) per (b, h), and where each cluster starts.
void sort_by_cluster(const FlashShape& s, int clusters, const std::vector<int32_t>& cluster,
                     std::vector<int32_t>& order, std::vector<int32_t>& starts) {
  const int n = s.seq_q;
  order.resize(cluster.size());
  starts.assign(size_t(s.batch) * s.heads_q * (clusters + 1), 0);
  for (size_t bh = 0; bh < size_t(s.batch) * s.heads_q; ++bh) {
    int32_t* start = starts.data() + bh * (clusters + 1);
    for (int i = 0; i < n; ++i) ++start[cluster[bh * n + i] + 1];
    for (int c = 0; c < clusters; ++c) start[c + 1] += start[c];
    std::vector<int32_t> fill(start, start + clusters);
    for (int i = 0; i < n; ++i) order[bh * n + fill[cluster[bh * n + i]]++] = i;
  }
}

void run_clustered(const FlashShape& s, const PatternParams& p, std::optional<float> scale,
                   const float* q, const float* k, const float* v, Counters& counters,
                   Merged& merged, ThreadPool* pool) {
  const int n = s.seq_q, C = p.num_clusters;
  const std::vector<int32_t> cq = assign_clusters(s, p, q, pool), ck = assign_clusters(s, p, k, pool);
  std::vector<int32_t> q_order, q_starts, k_order, k_starts;
  sort_by_cluster(s, C, cq, q_order, q_starts);
  sort_by_cluster(s, C, ck, k_order, k_starts);
  // Query p (in cluster order) attends the keys of its cluster: one range in key order.
  std::vector<int32_t> begin(cq.size()), end(cq.size());
  for (size_t bh = 0; bh < size_t(s.batch) * s.heads_q; ++bh)
    for (int x = 0; x < n; ++x) {
      const int c = cq[bh * n + q_order[bh * n + x]];
      begin[bh * n + x] = k_starts[bh * (C + 1) + c];
      end[bh * n + x] = k_starts[bh * (C + 1) + c + 1];
    }
  Part part{n, n, &q_order, &k_order, {}};
  part.keys.kind = KeySelector::Kind::kRowRanges;
  part.keys.row_begin = begin.data();
  part.keys.row_end = end.data();
  run_part(s, p, scale, q, k, v, part, counters, merged, pool);
}

}  // namespace

void merge_attention_row(float* dst, float& dst_lse, const float* part, float part_lse, int value_dim) {
  if (part_lse == kNegInf) return;
  if (dst_lse == kNegInf) {
    std::copy(part, part + value_dim, dst);
    dst_lse = part_lse;
    return;
  }
  const float merged = std::max(dst_lse, part_lse) + std::log1p(std::exp(-std::fabs(dst_lse - part_lse)));
  const float keep = std::exp(dst_lse - merged), take = std::exp(part_lse - merged);
  for (int c = 0; c < value_dim; ++c) dst[c] = dst[c] * keep + part[c] * take;
  dst_lse = merged;
}

// Indexed by PatternType.
constexpr const char* kPatternNames[] = {"local", "strided", "random", "clustered", "hierarchical"};

bool is_pattern_name(const std::string& name) {
  return std::find(std::begin(kPatternNames), std::end(kPatternNames), name) != std::end(kPatternNames);
}

PatternType parse_pattern_type(const std::string& name) {
  const auto at = std::find(std::begin(kPatternNames), std::end(kPatternNames), name);
  if (at == std::end(kPatternNames)) {
    throw_range("pattern_type", "must be local, strided, random, clustered or hierarchical, got '" + name + "'");
  }
  return static_cast<PatternType>(at - std::begin(kPatternNames));
}

const char* pattern_name(PatternType type) { return kPatternNames[static_cast<int>(type)]; }

void validate_sparse(const FlashShape& s, const PatternParams& p) {
  FlashOptions o;
  validate_flash(s, o);
  if (s.seq_q != s.seq_k) throw_range("seq_k", "sparse patterns are self-attention: seq_k must equal seq_q");
  if (s.heads_q != s.heads_kv) throw_range("heads_kv", "sparse patterns need heads_kv == heads_q");
  require_positive("window_size", p.window_size);
  require_positive("stride", p.stride);
  if (p.block_size < kBlockSizeQuantum || p.block_size % kBlockSizeQuantum != 0 || p.block_size > kMaxBlockSize) {
    throw_range("block_size", "must be a multiple of " + std::to_string(kBlockSizeQuantum) + " in [" +
                                  std::to_string(kBlockSizeQuantum) + ", " + std::to_string(kMaxBlockSize) +
                                  "], got " + std::to_string(p.block_size));
  }
  if (p.type == PatternType::kHierarchical) {
    int previous = 1;
    for (int scale : p.scales) {
      if (scale <= previous || scale % previous != 0) {
        throw_range("scales", "must increase, each a multiple of the one before (and > 1)");
      }
      previous = scale;
    }
  }
  if (p.type == PatternType::kClustered) {
    require_positive("num_clusters", p.num_clusters);
    if (p.centroids == nullptr) throw_type("centroids", "the clustered pattern needs centroids");
  }
}

SparseStats sparse_attention(const FlashShape& s, const PatternParams& p, std::optional<float> scale,
                             const float* q, const float* k, const float* v, float* out,
                             ThreadPool* pool, float* lse) {
  validate_sparse(s, p);
  if (q == nullptr || k == nullptr || v == nullptr || out == nullptr) {
    throw_type("tensors", "q, k, v and out must all be given");
  }
  Counters counters;
  Merged merged(s, out);
  const int64_t half = p.window_size / 2;
  switch (p.type) {
    case PatternType::kLocal:
      run_band(s, p, scale, q, k, v, half, counters, merged, pool);
      break;
    case PatternType::kStrided: {
      const int64_t local = p.stride / 2;
      run_band(s, p, scale, q, k, v, local, counters, merged, pool);
      run_dilated(s, p, scale, q, k, v, p.stride, local / p.stride + 1, s.seq_q, counters, merged, pool);
      break;
    }
    case PatternType::kHierarchical: {
      run_band(s, p, scale, q, k, v, half, counters, merged, pool);
      int64_t previous = 1;
      for (int step : p.scales) {
        run_dilated(s, p, scale, q, k, v, step, previous * half / step + 1, half, counters, merged, pool);
        previous = step;
      }
      break;
    }
    case PatternType::kRandom: {
      const BlockLists lists = random_blocks(s, p);
      Part part{s.seq_q, s.seq_k, nullptr, nullptr, {}};
      part.keys.kind = KeySelector::Kind::kBlockLists;
      part.keys.block_offsets = lists.offsets.data();
      part.keys.blocks = lists.blocks.data();
      run_part(s, p, scale, q, k, v, part, counters, merged, pool);
      break;
    }
    case PatternType::kClustered:
      run_clustered(s, p, scale, q, k, v, counters, merged, pool);
      break;
  }
  if (lse != nullptr) std::copy(merged.lse.begin(), merged.lse.end(), lse);
  SparseStats stats;
  stats.visited_blocks = counters.tiles.load();
  stats.computed_scores = counters.scores.load();
  const int64_t blocks = ceil_div(s.seq_q, p.block_size);
  stats.dense_blocks = int64_t{s.batch} * s.heads_q * blocks * blocks;
  stats.dense_scores = int64_t{s.batch} * s.heads_q * s.seq_q * s.seq_q;
  return stats;
}

std::vector<uint8_t> pattern_mask(const FlashShape& s, const PatternParams& p, const float* q,
                                  const float* k) {
  validate_sparse(s, p);
  const int n = s.seq_q, H = s.heads_q;
  std::vector<uint8_t> mask(size_t(s.batch) * H * n * n, 0);
  const int64_t half = p.window_size / 2;
  std::vector<int32_t> cq, ck;
  BlockLists lists;
  if (p.type == PatternType::kClustered) {
    if (q == nullptr || k == nullptr) throw_type("tensors", "the clustered pattern's mask needs q and k");
    cq = assign_clusters(s, p, q, nullptr);
    ck = assign_clusters(s, p, k, nullptr);
  }
  if (p.type == PatternType::kRandom) lists = random_blocks(s, p);
  const int nb = static_cast<int>(ceil_div(n, p.block_size));
  for (int b = 0; b < s.batch; ++b)
    for (int h = 0; h < H; ++h) {
      const int64_t bh = int64_t{b} * H + h;
      uint8_t* m = mask.data() + bh * n * n;
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j) {
          const int64_t d = std::abs(int64_t{i} - j);
          bool on = false;
          switch (p.type) {
            case PatternType::kLocal: on = d <= half; break;
            case PatternType::kStrided: on = d <= p.stride / 2 || d % p.stride == 0; break;
            case PatternType::kHierarchical:
              on = d <= half;
              for (int step : p.scales) on = on || (d % step == 0 && d <= int64_t{step} * half);
              break;
            case PatternType::kRandom: {
              const int64_t at = bh * nb + i / p.block_size;
              on = std::binary_search(lists.blocks.begin() + lists.offsets[at],
                                      lists.blocks.begin() + lists.offsets[at + 1], j / p.block_size);
              break;
            }
            case PatternType::kClustered: on = cq[bh * n + i] == ck[bh * n + j]; break;
          }
          m[int64_t{i} * n + j] = on ? 1 : 0;
        }
    }
  return mask;
}

}  // namespace attn::asam
