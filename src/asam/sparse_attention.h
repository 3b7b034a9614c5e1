// ASAM's sparse patterns as block-sparse attention whose work is proportional to the key
// blocks it visits (SPEC.md, "ASAM, made real"). Self-attention: seq_q == seq_k = n,
// heads_q == heads_kv, layouts of src/flash/flash_params.h.
//
// What each pattern attends (query i, key j; B = block_size; the boolean mask of
// pattern_mask() is exactly this, and sparse_attention() equals dense attention under it):
//   local         |i - j| <= window_size / 2.
//   strided       |i - j| <= stride / 2, or j ≡ i (mod stride)  (Sparse Transformer's
//                 strided pattern: a local window plus every stride-th key).
//   hierarchical  the local window, plus for each scale s of `scales` (default 4, 16, 64)
//                 the keys j ≡ i (mod s) with |i - j| <= s * window_size / 2: dilated
//                 windows that reach further at coarser scales.
//   random        whole blocks: query block qb attends its own key block and
//                 ceil(window_size / B) other key blocks drawn per (head, qb) from `seed`.
//   clustered     queries and keys are assigned to the nearest of num_clusters centroids
//                 per head (largest dot product); i attends j when their clusters match.
//
// How the work is skipped: local and random run the flash kernel with a key selector on
// the sequence itself. The dilated parts (strided, hierarchical) run it on each residue
// class mod s gathered into a contiguous sequence, where "j ≡ i (mod s), |i - j| <= r" is a
// band; keys an earlier part already covers form a hole in the band, so no key counts
// twice. Clustered sorts queries and keys by cluster, so each query's keys are one range.
// The parts are merged exactly through their log-sum-exp. Rows that attend nothing (a
// cluster without keys) get zeros.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "flash/flash_params.h"

namespace attn {
class ThreadPool;
}

namespace attn::asam {

enum class PatternType { kLocal, kStrided, kRandom, kClustered, kHierarchical };

// block_size: a multiple of every platform's query alignment (src/flash), so that the
// kernel's blocks are the pattern's blocks on every build.
constexpr int kBlockSizeQuantum = 32;
constexpr int kMaxBlockSize = 1024;

// "local", "strided", "random", "clustered", "hierarchical"; throws naming `pattern_type`.
PatternType parse_pattern_type(const std::string& name);
bool is_pattern_name(const std::string& name);
const char* pattern_name(PatternType type);

struct PatternParams {
  PatternType type = PatternType::kHierarchical;
  int window_size = 128;
  int stride = 32;
  int block_size = 64;                // queries and keys per block (multiple of 32)
  std::vector<int> scales{4, 16, 64};  // hierarchical; each a multiple of the one before
  uint64_t seed = 0;                  // random
  int num_clusters = 32;              // clustered
  const float* centroids = nullptr;   // clustered: [heads][num_clusters][head_dim]
};

// What the kernel computed against dense attention over the same (batch, head, n):
// blocks of scores (at most block_size x block_size each; the dilated parts' blocks are
// in their gathered sequences) and query-key scores.
struct SparseStats {
  int64_t visited_blocks = 0;
  int64_t dense_blocks = 0;
  int64_t computed_scores = 0;
  int64_t dense_scores = 0;
  // The fraction of the dense scores not computed (whole blocks skipped; the blocks it
  // visits count in full), counting `other_scores` computed beside the kernel (a dense
  // path, global tokens). Negative when more was computed than dense attention would
  // (short sequences, tiny dilated parts, many mixed heads).
  double sparse_ratio(int64_t other_scores = 0) const {
    return dense_scores > 0 ? 1.0 - double(computed_scores + other_scores) / double(dense_scores) : 0.0;
  }
  SparseStats& operator+=(const SparseStats& o) {
    visited_blocks += o.visited_blocks;
    dense_blocks += o.dense_blocks;
    computed_scores += o.computed_scores;
    dense_scores += o.dense_scores;
    return *this;
  }
};

// Throws AttnError naming the field when the call is malformed.
void validate_sparse(const FlashShape& shape, const PatternParams& params);

// out [b][n][h][value_dim] = softmax(q kᵀ · scale, restricted to the pattern) v.
// options: scale only (no mask, causal, softcap or dropout: the pattern is the mask).
// lse [b][h][n], when given: the log-sum-exp of each row's scaled scores over its pattern
// (-inf for rows that attend nothing), so that callers can merge more keys in exactly.
SparseStats sparse_attention(const FlashShape& shape, const PatternParams& params,
                             std::optional<float> scale, const float* q, const float* k,
                             const float* v, float* out, ThreadPool* pool, float* lse = nullptr);

// Merges one row of attention over more keys, disjoint from the row's, into it: dst
// (value_dim floats) and dst_lse become the softmax over both sets of keys. A part with
// lse -inf (no keys) changes nothing.
void merge_attention_row(float* dst, float& dst_lse, const float* part, float part_lse, int value_dim);

// The pattern's boolean mask [b][h][n][n] (1 = attends), for inspection and tests. O(n²).
// Clustered needs q and k (the assignment depends on them); the others ignore them.
std::vector<uint8_t> pattern_mask(const FlashShape& shape, const PatternParams& params,
                                  const float* q, const float* k);

}  // namespace attn::asam
