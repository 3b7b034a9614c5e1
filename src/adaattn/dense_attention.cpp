#include "adaattn/dense_attention.h"

#include <algorithm>
#include <string>

#include "flash/dropout_rng.h"
#include "flash/flash_attention.h"
#include "runtime/errors.h"
#include "runtime/thread_pool.h"

namespace attn {

namespace {

using Projection = MultiHeadAttention::Projection;

// Buffers for the averaged weights, reused across the (batch, head) pairs of one call.
struct HeadScratch {
  std::vector<float> q, k, p;  // one head's Q [seq_q][d], K [seq_k][d], weights [seq_q][seq_k]
};

void for_rows(int64_t rows, ThreadPool* pool, const ThreadPool::Body& body) {
  if (pool != nullptr) {
    pool->parallel_for(rows, 16, body);
  } else {
    body(0, rows, 0);
  }
}

// Adds the weights of head h of batch element b, as they multiplied V (after the call's
// dropout), divided by the head count, into avg [seq_q][seq_k]. One head at a time, so the
// call holds one seq_q x seq_k matrix beyond the result, not one per head.
void add_head_weights(const FlashShape& call, const FlashOptions& options, const std::vector<float>& q,
                      const std::vector<float>& k, int b, int h, HeadScratch& s, float* avg, ThreadPool* pool) {
  const int sq = call.seq_q, sk = call.seq_k, d = call.head_dim, heads = call.heads_q;
  const int64_t e = int64_t{heads} * d;
  for (int i = 0; i < sq; ++i) {
    std::copy_n(q.data() + (int64_t{b} * sq + i) * e + int64_t{h} * d, d, s.q.data() + int64_t{i} * d);
  }
  for (int j = 0; j < sk; ++j) {
    std::copy_n(k.data() + (int64_t{b} * sk + j) * e + int64_t{h} * d, d, s.k.data() + int64_t{j} * d);
  }
  FlashOptions one = options;
  one.dropout = 0.0f;
  if (options.mask.present()) {  // this (batch, head)'s rows, as a mask of one of each
    const int64_t at = int64_t{b} * options.mask.batch_stride + int64_t{h} * options.mask.head_stride;
    if (one.mask.additive != nullptr) one.mask.additive += at;
    if (one.mask.allowed != nullptr) one.mask.allowed += at;
    one.mask.batch_stride = one.mask.head_stride = 0;
  }
  attention_scores({1, sq, sk, 1, 1, d, d}, one, s.q.data(), s.k.data(), s.p.data(), pool);

  const bool dropout = options.dropout > 0.0f;
  const DropoutRng rng(options.seed, options.dropout);
  const float factor = (dropout ? rng.keep_scale() : 1.0f) / float(heads);
  for_rows(sq, pool, [&](int64_t begin, int64_t end, int) {
    for (int64_t i = begin; i < end; ++i) {
      const float* p = s.p.data() + i * sk;
      float* dst = avg + i * sk;
      // The flat index the flash kernel's dropout hashes: ((b * heads + h) * seq_q + i) * seq_k + j.
      const uint64_t base = ((uint64_t(b) * heads + h) * sq + uint64_t(i)) * sk;
      for (int j = 0; j < sk; ++j) {
        if (dropout && !rng.keep(base + j)) continue;
        dst[j] += p[j] * factor;
      }
    }
  });
}

}  // namespace

DenseConfig DenseAttention::validated(const DenseConfig& c) {
  if (c.embed_dim < 1) throw_range("embedDim", "must be a positive integer, got " + std::to_string(c.embed_dim));
  if (c.num_heads < 1) throw_range("numHeads", "must be a positive integer, got " + std::to_string(c.num_heads));
  if (c.embed_dim % c.num_heads != 0) {
    throw_range("numHeads", "must divide embedDim (" + std::to_string(c.embed_dim) + "), got " +
                                std::to_string(c.num_heads));
  }
  if (!(c.dropout >= 0.0f && c.dropout < 1.0f)) throw_range("dropout", "must be in [0, 1)");
  try {
    // What is left: the weights' size (dropout is this class's, not the projections').
    MultiHeadAttention::validated(MultiHeadConfig::self_attention(c.embed_dim, c.num_heads, c.bias, c.seed));
  } catch (const AttnError& e) {
    throw AttnError(e.kind(), "embedDim", e.message());
  }
  return c;
}

DenseAttention::DenseAttention(const DenseConfig& config)
    : config_(validated(config)),
      projections_(MultiHeadConfig::self_attention(config_.embed_dim, config_.num_heads, config_.bias, config_.seed)) {}

void DenseAttention::forward(int batch, int seq_q, int seq_k, const float* query, const float* key,
                             const float* value, const MaskView& mask, float* out, float* weights,
                             ThreadPool* pool) {
  const int e = config_.embed_dim, heads = config_.num_heads, d = head_dim();
  const FlashShape shape{batch, seq_q, seq_k, heads, heads, d, d};
  FlashOptions options;
  options.causal = config_.causal ? CausalAlign::kTopLeft : CausalAlign::kNone;
  options.mask = mask;
  const bool dropout = training_ && config_.dropout > 0.0f;
  options.dropout = dropout ? config_.dropout : 0.0f;
  options.seed = next_dropout_seed();
  validate_flash(shape, options);  // sizes, mask strides: before any work
  if (query == nullptr || key == nullptr || value == nullptr || out == nullptr) {
    throw_type("tensors", "query, key, value and out must all be given");
  }
  const int64_t rows_q = int64_t{batch} * seq_q, rows_k = int64_t{batch} * seq_k;
  std::vector<float> q(size_t(rows_q) * e), k(size_t(rows_k) * e), v(size_t(rows_k) * e);
  std::vector<float> attended(size_t(rows_q) * e);
  projections_.project(Projection::kQuery, rows_q, query, q.data(), pool);
  projections_.project(Projection::kKey, rows_k, key, k.data(), pool);
  projections_.project(Projection::kValue, rows_k, value, v.data(), pool);
  flash_forward(shape, options, {q.data(), k.data(), v.data(), attended.data(), nullptr}, pool);
  projections_.project(Projection::kOutput, rows_q, attended.data(), out, pool);

  if (weights != nullptr) {
    HeadScratch scratch{std::vector<float>(size_t(seq_q) * d), std::vector<float>(size_t(seq_k) * d),
                        std::vector<float>(size_t(seq_q) * seq_k)};
    for (int b = 0; b < batch; ++b) {
      float* avg = weights + int64_t{b} * seq_q * seq_k;
      std::fill(avg, avg + int64_t{seq_q} * seq_k, 0.0f);
      for (int h = 0; h < heads; ++h) add_head_weights(shape, options, q, k, b, h, scratch, avg, pool);
    }
  }
  if (dropout) ++dropout_calls_;
}

}  // namespace attn
