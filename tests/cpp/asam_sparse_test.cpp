// ASAM's block-sparse attention against float64 dense attention under the pattern's own
// boolean mask, and the blocks the kernel visits against the blocks the mask touches.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>

#include "asam/sparse_attention.h"
#include "reference_attention.h"
#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "test_util.h"

namespace {

using attn::FlashShape;
using attn::asam::PatternParams;
using attn::asam::PatternType;

struct Sizes {
  int batch, n, heads, dim, value_dim;
};

FlashShape shape_of(const Sizes& z) {
  FlashShape s;
  s.batch = z.batch;
  s.seq_q = s.seq_k = z.n;
  s.heads_q = s.heads_kv = z.heads;
  s.head_dim = z.dim;
  s.value_dim = z.value_dim;
  return s;
}

// (query block, key block) pairs holding an attended pair, over every (batch, head).
int64_t touched_blocks(const std::vector<uint8_t>& mask, const FlashShape& s, int block) {
  const int n = s.seq_q, nb = (n + block - 1) / block;
  int64_t count = 0;
  for (int64_t bh = 0; bh < int64_t{s.batch} * s.heads_q; ++bh)
    for (int qb = 0; qb < nb; ++qb)
      for (int kb = 0; kb < nb; ++kb) {
        bool any = false;
        for (int i = qb * block; i < std::min(n, (qb + 1) * block) && !any; ++i)
          for (int j = kb * block; j < std::min(n, (kb + 1) * block) && !any; ++j)
            any = mask[(bh * n + i) * n + j] != 0;
        count += any;
      }
  return count;
}

struct Checked {
  attn::asam::SparseStats stats;
  std::vector<uint8_t> mask;
};

Checked check_against_dense(const Sizes& z, const PatternParams& p, attn::ThreadPool* pool,
                            std::mt19937_64& rng) {
  const FlashShape s = shape_of(z);
  const auto q = testutil::randn(rng, size_t(z.batch) * z.n * z.heads * z.dim);
  const auto k = testutil::randn(rng, q.size());
  const auto v = testutil::randn(rng, size_t(z.batch) * z.n * z.heads * z.value_dim);
  std::vector<float> out(v.size(), std::nanf(""));
  Checked c;
  c.stats = attn::asam::sparse_attention(s, p, std::nullopt, q.data(), k.data(), v.data(), out.data(), pool);
  c.mask = attn::asam::pattern_mask(s, p, q.data(), k.data());

  ref::Config rc;
  rc.batch = z.batch;
  rc.seq_q = rc.seq_k = z.n;
  rc.heads_q = rc.heads_kv = z.heads;
  rc.head_dim = z.dim;
  rc.value_dim = z.value_dim;
  rc.mask_bool = c.mask.data();
  rc.mask_batch_stride = int64_t{z.heads} * z.n * z.n;
  rc.mask_head_stride = int64_t{z.n} * z.n;
  rc.mask_row_stride = z.n;
  const ref::Result want = ref::attention(rc, q.data(), k.data(), v.data(), false);
  const testutil::RelError e = testutil::rel_error(out.data(), want.out);
  EXPECT_LT(e.value, 1e-4) << attn::asam::pattern_name(p.type) << " n=" << z.n << " worst at " << e.worst;
  const int64_t nb = (z.n + p.block_size - 1) / p.block_size;
  EXPECT_EQ(c.stats.dense_blocks, int64_t{z.batch} * z.heads * nb * nb);
  EXPECT_EQ(c.stats.dense_scores, int64_t{z.batch} * z.heads * z.n * z.n);
  const bool attends = std::find(c.mask.begin(), c.mask.end(), 1) != c.mask.end();
  EXPECT_EQ(c.stats.computed_scores > 0, attends);
  return c;
}

PatternParams params(PatternType t, int block) {
  PatternParams p;
  p.type = t;
  p.block_size = block;
  p.window_size = 12;
  p.stride = 6;
  p.scales = {2, 4, 8};
  p.seed = 7;
  p.num_clusters = 3;
  return p;
}

const Sizes kSizes[] = {{1, 1, 1, 8, 8}, {1, 3, 2, 8, 5}, {2, 17, 2, 16, 16}, {1, 130, 3, 8, 12},
                        {1, 301, 2, 32, 16}};

TEST(AsamSparse, EveryPatternEqualsDenseUnderItsMask) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::ThreadPool pool(3);
  for (PatternType t : {PatternType::kLocal, PatternType::kStrided, PatternType::kHierarchical,
                        PatternType::kRandom, PatternType::kClustered})
    for (int block : {32, 64})
      for (const Sizes& z : kSizes) {
        PatternParams p = params(t, block);
        std::vector<float> centroids = testutil::randn(rng, size_t(z.heads) * p.num_clusters * z.dim);
        p.centroids = centroids.data();
        check_against_dense(z, p, block == 32 ? nullptr : &pool, rng);
      }
}

// Local and random run on the sequence itself: the kernel computes exactly the blocks that
// hold an attended pair (the pattern's block layout).
TEST(AsamSparse, VisitsExactlyTheBlocksTheMaskTouches) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::ThreadPool pool(2);
  const Sizes z{2, 300, 2, 16, 16};
  for (PatternType t : {PatternType::kLocal, PatternType::kRandom})
    for (int block : {32, 64}) {
      PatternParams p = params(t, block);
      p.window_size = 40;
      std::vector<float> centroids = testutil::randn(rng, size_t(z.heads) * p.num_clusters * z.dim);
      p.centroids = centroids.data();
      const Checked c = check_against_dense(z, p, &pool, rng);
      EXPECT_EQ(c.stats.visited_blocks, touched_blocks(c.mask, shape_of(z), block))
          << attn::asam::pattern_name(t) << " block " << block;
      EXPECT_GT(c.stats.sparse_ratio(), 0.0);
    }
}

// The seed's defaults at a size where the pattern should skip most of the work.
TEST(AsamSparse, DefaultsSkipMostBlocksAtLength2048) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  attn::ThreadPool pool(2);
  const Sizes z{1, 2048, 1, 16, 16};
  for (PatternType t : {PatternType::kLocal, PatternType::kStrided, PatternType::kHierarchical}) {
    PatternParams p;  // window 128, stride 32, block 64, scales 4/16/64
    p.type = t;
    const FlashShape s = shape_of(z);
    const auto q = testutil::randn(rng, size_t(z.n) * z.dim), k = testutil::randn(rng, q.size()),
               v = testutil::randn(rng, q.size());
    std::vector<float> out(v.size());
    const auto stats = attn::asam::sparse_attention(s, p, std::nullopt, q.data(), k.data(), v.data(),
                                                    out.data(), &pool);
    EXPECT_GT(stats.sparse_ratio(), 0.5) << attn::asam::pattern_name(t);
  }
}

TEST(AsamSparse, RefusesBadParametersNamingThem) {
  Sizes z{1, 16, 2, 8, 8};
  const FlashShape s = shape_of(z);
  auto refuses = [&](PatternParams p, const char* name) {
    try {
      attn::asam::validate_sparse(s, p);
      ADD_FAILURE() << "accepted bad " << name;
    } catch (const attn::AttnError& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
  };
  PatternParams p;
  p.block_size = 48;
  refuses(p, "block_size");
  p = PatternParams{};
  p.window_size = 0;
  refuses(p, "window_size");
  p = PatternParams{};
  p.scales = {4, 6};
  refuses(p, "scales");
  p = PatternParams{};
  p.type = PatternType::kClustered;
  refuses(p, "centroids");
  FlashShape cross = s;
  cross.seq_k = 9;
  try {
    attn::asam::validate_sparse(cross, PatternParams{});
    ADD_FAILURE() << "accepted seq_k != seq_q";
  } catch (const attn::AttnError& e) {
    EXPECT_NE(std::string(e.what()).find("seq_k"), std::string::npos);
  }
  EXPECT_THROW(attn::asam::parse_pattern_type("diagonal"), attn::AttnError);
}

}  // namespace
