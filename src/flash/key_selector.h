// Block-sparse attention: which keys each query row attends, beyond the causal rule and
// the mask. The flash driver visits only the key blocks (of block_k keys) that hold an
// attended key of some row of the query block (of block_q rows), masks the keys a row does
// not attend inside those blocks, and counts the blocks it computed. ASAM's patterns are
// built from these rules (src/asam).
#pragma once
#include <atomic>
#include <cstdint>

namespace attn {

struct KeySelector {
  enum class Kind {
    kBand,        // row i attends keys j with min_distance <= |i - j| <= max_distance
    kRowRanges,   // row i attends keys [row_begin, row_end) of its (batch, head)
    kBlockLists,  // query block qb attends whole key blocks from a list per (batch, head)
  };
  Kind kind = Kind::kBand;

  // kBand. min_distance 0: no hole around the diagonal.
  int64_t min_distance = 0;
  int64_t max_distance = 0;

  // kRowRanges: [batch][heads_q][seq_q] each.
  const int32_t* row_begin = nullptr;
  const int32_t* row_end = nullptr;

  // kBlockLists: query block qb of (b, h) attends key blocks
  // blocks[offsets[n] .. offsets[n + 1]) in ascending order, n = (b * heads_q + h) *
  // query_blocks + qb, query_blocks = ceil(seq_q / block_q).
  const int64_t* block_offsets = nullptr;
  const int32_t* blocks = nullptr;

  // When set, the call adds the number of (query block, key block) tiles it computed, and
  // the query-key scores in them (rows x keys, padding excluded).
  std::atomic<int64_t>* visited_tiles = nullptr;
  std::atomic<int64_t>* computed_scores = nullptr;

  // Keys [begin, end) row i may attend before the hole (kBand, kRowRanges).
  void row_span(int64_t i, int64_t seq_k, int64_t bh_row, int64_t& begin, int64_t& end) const {
    if (kind == Kind::kRowRanges) {
      begin = row_begin[bh_row];
      end = row_end[bh_row];
    } else {
      begin = i - max_distance;
      end = i + max_distance + 1;
    }
    begin = begin < 0 ? 0 : begin;
    end = end > seq_k ? seq_k : end;
  }
  // Keys [begin, end) row i must skip inside its span (kBand with a hole; else empty).
  void row_hole(int64_t i, int64_t& begin, int64_t& end) const {
    if (kind == Kind::kBand && min_distance > 0) {
      begin = i - min_distance + 1;
      end = i + min_distance;
    } else {
      begin = end = 0;
    }
  }
};

}  // namespace attn
