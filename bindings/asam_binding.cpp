// embind surface of ASAM's block-sparse attention: JS copies q, k, v (and the scales, and
// the centroids of the clustered pattern) into the heap and passes their addresses in a
// SparseCall; each call returns "" or an encoded error. sparseAttention writes the output
// and four doubles of statistics (visited blocks, dense blocks, computed scores, dense
// scores); sparsePatternMask writes the [batch][heads][n][n] uint8 mask.
#include <emscripten/bind.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "asam/sparse_attention.h"
#include "bindings/runtime_binding.h"
#include "error_translation.h"
#include "heap_address.h"

namespace attn::bindings {

namespace {

struct SparseCall {
  int batch = 1, seq = 0, heads = 1, headDim = 0, valueDim = 0;
  int pattern = 4;  // asam::PatternType: 0 local, 1 strided, 2 random, 3 clustered, 4 hierarchical
  int windowSize = 128, stride = 32, blockSize = 64, numClusters = 32;
  int scaleCount = 0;
  double seed = 0;   // a non-negative safe integer
  double scale = NAN;  // NaN = 1/sqrt(headDim)
  double scales = 0, centroids = 0, q = 0, k = 0, v = 0, out = 0, stats = 0, mask = 0;  // heap addresses
};

FlashShape shape_of(const SparseCall& c) {
  FlashShape s;
  s.batch = c.batch;
  s.seq_q = s.seq_k = c.seq;
  s.heads_q = s.heads_kv = c.heads;
  s.head_dim = c.headDim;
  s.value_dim = c.valueDim;
  return s;
}

asam::PatternParams params_of(const SparseCall& c) {
  asam::PatternParams p;
  p.type = static_cast<asam::PatternType>(c.pattern);
  p.window_size = c.windowSize;
  p.stride = c.stride;
  p.block_size = c.blockSize;
  const int32_t* scales = address<const int32_t>(c.scales);
  p.scales.assign(scales, scales + c.scaleCount);
  p.seed = static_cast<uint64_t>(c.seed);
  p.num_clusters = c.numClusters;
  p.centroids = address<const float>(c.centroids);
  return p;
}

std::string sparse_attention_js(const SparseCall& c) {
  return guarded([&] {
    std::optional<float> scale;
    if (!std::isnan(c.scale)) scale = static_cast<float>(c.scale);
    const asam::SparseStats st =
        asam::sparse_attention(shape_of(c), params_of(c), scale, address<const float>(c.q),
                               address<const float>(c.k), address<const float>(c.v),
                               address<float>(c.out), shared_pool());
    double* stats = address<double>(c.stats);
    stats[0] = static_cast<double>(st.visited_blocks);
    stats[1] = static_cast<double>(st.dense_blocks);
    stats[2] = static_cast<double>(st.computed_scores);
    stats[3] = static_cast<double>(st.dense_scores);
  });
}

std::string sparse_pattern_mask_js(const SparseCall& c) {
  return guarded([&] {
    const std::vector<uint8_t> mask =
        asam::pattern_mask(shape_of(c), params_of(c), address<const float>(c.q), address<const float>(c.k));
    std::copy(mask.begin(), mask.end(), address<uint8_t>(c.mask));
  });
}

}  // namespace

}  // namespace attn::bindings

EMSCRIPTEN_BINDINGS(attn_asam) {
  using attn::bindings::SparseCall;
  emscripten::value_object<SparseCall>("SparseCall")
      .field("batch", &SparseCall::batch)
      .field("seq", &SparseCall::seq)
      .field("heads", &SparseCall::heads)
      .field("headDim", &SparseCall::headDim)
      .field("valueDim", &SparseCall::valueDim)
      .field("pattern", &SparseCall::pattern)
      .field("windowSize", &SparseCall::windowSize)
      .field("stride", &SparseCall::stride)
      .field("blockSize", &SparseCall::blockSize)
      .field("numClusters", &SparseCall::numClusters)
      .field("scaleCount", &SparseCall::scaleCount)
      .field("seed", &SparseCall::seed)
      .field("scale", &SparseCall::scale)
      .field("scales", &SparseCall::scales)
      .field("centroids", &SparseCall::centroids)
      .field("q", &SparseCall::q)
      .field("k", &SparseCall::k)
      .field("v", &SparseCall::v)
      .field("out", &SparseCall::out)
      .field("stats", &SparseCall::stats)
      .field("mask", &SparseCall::mask);
  emscripten::function("sparseAttention", &attn::bindings::sparse_attention_js);
  emscripten::function("sparsePatternMask", &attn::bindings::sparse_pattern_mask_js);
}
