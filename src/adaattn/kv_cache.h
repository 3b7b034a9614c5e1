// A key/value cache for incremental decoding: keys and values appended a few rows at a
// time, attended by one or a few new queries that see every cached key. Rows are stored in
// fp32, fp16 or bf16 and widened to float32 in SIMD registers as attend() reads them, so
// half-precision storage halves the bytes a memory-bound decode step reads; all arithmetic
// is float32.
//
// Layouts (row-major): appended k [rows][heads][head_dim], v [rows][heads][value_dim];
// queries q [queries][heads][head_dim], out [queries][heads][value_dim]. Stored per head,
// [heads][capacity][dim], so one head's keys are contiguous.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

namespace attn {

class ThreadPool;

enum class StoragePrecision { kFp32, kFp16, kBf16 };

// "fp32", "fp16", "bf16".
const char* storage_precision_name(StoragePrecision precision);
// Bytes one stored element takes: 4 or 2.
int storage_bytes(StoragePrecision precision);

class KVCache {
 public:
  // capacity_hint: rows to allocate up front (0 = grow on the first append).
  KVCache(int heads, int head_dim, int value_dim, StoragePrecision precision,
          int64_t capacity_hint = 0);

  // Appends `rows` keys and values, rounding each to the storage precision (round to
  // nearest even; beyond fp16's range becomes inf).
  void append(int64_t rows, const float* k, const float* v);

  // out = softmax(scale · q kᵀ) v over all cached keys, per head; scale defaults to
  // 1/sqrt(head_dim). Flash-style online softmax over key chunks: O(chunk) scratch per task.
  // With a pool the work is split over heads, and over key ranges when heads are fewer
  // than the workers (partial softmax states merged exactly). An empty cache gives zeros.
  // causal: the queries are the last `queries` rows appended, and query t sees keys
  // j <= size() - queries + t (bottom-right); needs queries <= size().
  void attend(int64_t queries, const float* q, float* out, std::optional<float> scale = {},
              ThreadPool* pool = nullptr, bool causal = false) const;

  // Re-stores every row in another precision (exact when widening, rounded when
  // narrowing); later appends use it too.
  void convert(StoragePrecision precision);

  int64_t size() const { return size_; }
  int64_t capacity() const { return capacity_; }
  // Bytes of key and value storage allocated (capacity, not just size).
  int64_t memory_bytes() const;
  // Forgets every row; keeps the allocation for the next sequence.
  void clear() {
    size_ = 0;
    fp16_unusual_ = false;
    values_special_ = false;
  }

  int heads() const { return heads_; }
  int head_dim() const { return head_dim_; }
  int value_dim() const { return value_dim_; }
  StoragePrecision precision() const { return precision_; }

 private:
  void reserve(int64_t rows);
  // Whether fp16 rows [first, first + rows) hold an inf or NaN half.
  bool has_unusual_fp16(int64_t first, int64_t rows) const;
  // Whether stored values of rows [first, first + rows) hold an inf or NaN.
  bool has_special_values(int64_t first, int64_t rows) const;

  int heads_;
  int head_dim_;
  int value_dim_;
  StoragePrecision precision_;
  int elem_bytes_;
  int64_t size_ = 0;
  int64_t capacity_ = 0;
  std::vector<unsigned char> keys_;    // [heads][capacity_][head_dim] stored elements
  std::vector<unsigned char> values_;  // [heads][capacity_][value_dim]
  // fp16: some stored half is inf or NaN, so attend() widens with the general (slower on
  // WASM) conversion rather than the one for finite halves.
  bool fp16_unusual_ = false;
  // Some stored value is inf or NaN: causal attend() then multiplies each query only by the
  // values it sees (0 · NaN would reach queries before that key).
  bool values_special_ = false;
};

}  // namespace attn
