#include "flash/flash_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "flash/dropout_rng.h"
#include "flash/gemm_tile.h"
#include "flash/online_softmax.h"
#include "flash/score_rules.h"
#include "runtime/errors.h"
#include "runtime/thread_pool.h"

namespace attn {

namespace {

constexpr int kDefaultBlockQ = 48;
// 128 keys x 48 queries of Sᵀ (24 KiB) stay in L1 between the softmax passes and P·V; 256
// keys (48 KiB) did not, and measured 1-5% slower in V8 (d = 64 and 128, causal and not).
constexpr int kDefaultBlockK = 128;
constexpr int kMaxBlock = 4096;
// Query blocks are whole panels of Qᵀ and whole tiles of rows for the weights.
constexpr int kQueryAlign = kPanel > kTileRows ? kPanel : kTileRows;
// Query vectors the softmax handles per pass over a tile's keys (must divide
// kQueryAlign / kLanes): two f32x4 = half a cache line per key.
constexpr int kSoftmaxGroups = kQueryAlign / simd::kLanes >= 2 ? 2 : 1;

int64_t round_up(int64_t x, int64_t m) { return (x + m - 1) / m * m; }

// Scratch and packed copies. On 32-bit targets (WASM) a count past size_t would wrap
// into a small allocation, so it is refused here rather than overrun later.
std::unique_ptr<float[]> alloc_floats(int64_t count) {
  if (count < 0 || static_cast<double>(count) * sizeof(float) >
                       static_cast<double>(std::numeric_limits<size_t>::max()) / 2) {
    throw_range("shape", "needs " + std::to_string(count) + " floats of working memory, more than "
                         "this platform can address");
  }
  return std::unique_ptr<float[]>(new float[static_cast<size_t>(count)]);
}

// Tiling of one call, derived once from shape and options.
struct Tiling {
  int block_q;       // multiple of kQueryAlign
  int block_k;       // multiple of kTileRows
  int key_blocks;
  int value_padded;  // value_dim rounded up to kPanel
  int64_t keys_per_head;    // floats of packed K per (batch, kv head)
  int64_t values_per_head;  // floats of packed V per (batch, kv head)

  Tiling(const FlashShape& s, const FlashOptions& o) {
    block_q = static_cast<int>(round_up(o.block_q > 0 ? o.block_q : kDefaultBlockQ, kQueryAlign));
    block_k = static_cast<int>(round_up(o.block_k > 0 ? o.block_k : kDefaultBlockK, kTileRows));
    key_blocks = static_cast<int>((s.seq_k + block_k - 1) / block_k);
    value_padded = static_cast<int>(round_up(s.value_dim, kPanel));
    keys_per_head = int64_t{key_blocks} * block_k * s.head_dim;
    values_per_head = int64_t{key_blocks} * block_k * value_padded;
  }
  int keys_in_block(const FlashShape& s, int kb) const {
    return std::min(block_k, s.seq_k - kb * block_k);
  }
};

// K of one (batch, kv head, key block) in groups of kTileRows keys, each group k-major:
// group g holds k[j0 + g*kTileRows + r][c] at [c][r], zero past the block's keys.
void pack_keys(const FlashShape& s, const Tiling& t, const float* k, int b, int hkv, int kb,
               float* dst) {
  const int j0 = kb * t.block_k;
  const int count = t.keys_in_block(s, kb);
  const int d = s.head_dim;
  for (int g = 0; g < count; g += kTileRows) {
    float* group = dst + int64_t{g} * d;
    for (int r = 0; r < kTileRows; ++r) {
      if (g + r < count) {
        const float* row = k + ((int64_t{b} * s.seq_k + j0 + g + r) * s.heads_kv + hkv) * d;
        for (int c = 0; c < d; ++c) group[c * kTileRows + r] = row[c];
      } else {
        for (int c = 0; c < d; ++c) group[c * kTileRows + r] = 0.0f;
      }
    }
  }
}

// V of one (batch, kv head, key block) in kPanel-column panels of `count` rows each.
// Returns whether every value is finite (x * 0 is 0 exactly for finite x, NaN otherwise).
bool pack_values(const FlashShape& s, const Tiling& t, const float* v, int b, int hkv, int kb,
                 float* dst) {
  const int j0 = kb * t.block_k;
  const int count = t.keys_in_block(s, kb);
  const int dv = s.value_dim;
  float poison = 0.0f;
  for (int p = 0; p < t.value_padded; p += kPanel) {
    float* panel = dst + int64_t{p} * count;
    for (int j = 0; j < count; ++j) {
      const float* row = v + ((int64_t{b} * s.seq_k + j0 + j) * s.heads_kv + hkv) * dv;
      for (int col = 0; col < kPanel; ++col) {
        const float x = p + col < dv ? row[p + col] : 0.0f;
        panel[j * kPanel + col] = x;
        poison += x * 0.0f;
      }
    }
  }
  return poison == 0.0f;
}

// One task at a time per worker; without a pool the caller runs them all.
void run_parallel(ThreadPool* pool, int64_t tasks, const ThreadPool::Body& body) {
  if (pool != nullptr) {
    pool->parallel_for(tasks, 1, body);
  } else {
    body(0, tasks, 0);
  }
}

// Packs K (and V when v != nullptr) for every (batch, kv head, key block) in parallel;
// v_special[(b * heads_kv + hkv) * key_blocks + kb] says whether that block of V holds an
// inf or NaN.
void pack_all(const FlashShape& s, const Tiling& t, const float* k, const float* v,
              float* packed_k, float* packed_v, uint8_t* v_special, ThreadPool* pool) {
  const int64_t tasks = int64_t{s.batch} * s.heads_kv * t.key_blocks;
  run_parallel(pool, tasks, [&](int64_t begin, int64_t end, int) {
    for (int64_t task = begin; task < end; ++task) {
      const int kb = static_cast<int>(task % t.key_blocks);
      const int64_t bh = task / t.key_blocks;
      const int hkv = static_cast<int>(bh % s.heads_kv);
      const int b = static_cast<int>(bh / s.heads_kv);
      pack_keys(s, t, k, b, hkv, kb,
                packed_k + bh * t.keys_per_head + int64_t{kb} * t.block_k * s.head_dim);
      if (v != nullptr) {
        v_special[task] = !pack_values(s, t, v, b, hkv, kb,
                                       packed_v + bh * t.values_per_head + int64_t{kb} * t.block_k * t.value_padded);
      }
    }
  });
}

// Qᵀ of rows [i0, i0+rows) of query head h, in kPanel-query panels of head_dim rows
// (the B operand of Sᵀ = K·Qᵀ), multiplied by the prescale; zero past `rows`.
void pack_query_block(const FlashShape& s, const float* q, int b, int h, int i0, int rows,
                      int padded_rows, float prescale, float* dst) {
  const int d = s.head_dim;
  for (int p = 0; p < padded_rows; p += kPanel) {
    float* panel = dst + int64_t{p} * d;
    for (int col = 0; col < kPanel; ++col) {
      if (p + col < rows) {
        const float* src = q + ((int64_t{b} * s.seq_q + i0 + p + col) * s.heads_q + h) * d;
        for (int c = 0; c < d; ++c) panel[c * kPanel + col] = src[c] * prescale;
      } else {
        for (int c = 0; c < d; ++c) panel[c * kPanel + col] = 0.0f;
      }
    }
  }
}

// Sᵀ[key][query] of the first `count` keys of key block kb against the packed query
// block: keys rounded up to whole groups, ld = padded_rows.
void key_block_scores(const FlashShape& s, const Tiling& t, const float* keys, int kb, int count,
                      const float* q_packed, int padded_rows, float* st) {
  gemm_panels(static_cast<int>(round_up(count, kTileRows)), padded_rows, s.head_dim,
              keys + int64_t{kb} * t.block_k * s.head_dim, int64_t{kTileRows} * s.head_dim,
              kTileRows, q_packed, s.head_dim, st, padded_rows, false);
}

// One query block of one (batch, query head): the unit of parallel work.
struct QueryBlock {
  int b, h;
  int i0, rows;      // queries [i0, i0 + rows)
  int padded_rows;   // rows rounded up to kQueryAlign (the packed width)
};

// Runs fn(block, scratch) over every query block, each worker with `scratch_floats`
// floats of its own. The last query blocks go first: under a causal mask they are the
// longest, and handing them out first balances the threads.
template <typename Fn>
void for_each_query_block(const FlashShape& s, const Tiling& t, ThreadPool* pool,
                          int64_t scratch_floats, Fn&& fn) {
  const int workers = pool != nullptr ? pool->size() : 1;
  auto scratch = alloc_floats(scratch_floats * workers);
  const int query_blocks = (s.seq_q + t.block_q - 1) / t.block_q;
  const int64_t heads = int64_t{s.batch} * s.heads_q;
  run_parallel(pool, query_blocks * heads, [&](int64_t begin, int64_t end, int worker) {
    float* mine = scratch.get() + worker * scratch_floats;
    for (int64_t task = begin; task < end; ++task) {
      QueryBlock blk;
      const int64_t bh = task % heads;
      blk.b = static_cast<int>(bh / s.heads_q);
      blk.h = static_cast<int>(bh % s.heads_q);
      blk.i0 = (query_blocks - 1 - static_cast<int>(task / heads)) * t.block_q;
      blk.rows = std::min(t.block_q, s.seq_q - blk.i0);
      blk.padded_rows = static_cast<int>(round_up(blk.rows, kQueryAlign));
      fn(blk, mine);
    }
  });
}

// Calls visit(kb) for the key blocks below `blocks` that hold a key some row of the
// query block selects: a list's blocks, the blocks the rows' ranges touch, or the blocks
// a band spans less those wholly inside every row's hole (kBand with min_distance).
template <typename Visit>
void for_each_selected_block(const KeySelector& sel, const FlashShape& s, const Tiling& t,
                             const QueryBlock& blk, int blocks, Visit&& visit) {
  const int64_t bh = int64_t{blk.b} * s.heads_q + blk.h;
  if (sel.kind == KeySelector::Kind::kBlockLists) {
    const int64_t n = bh * ((s.seq_q + t.block_q - 1) / t.block_q) + blk.i0 / t.block_q;
    for (int64_t at = sel.block_offsets[n]; at < sel.block_offsets[n + 1]; ++at) {
      if (sel.blocks[at] < blocks) visit(sel.blocks[at]);
    }
    return;
  }
  if (sel.kind == KeySelector::Kind::kRowRanges) {  // the blocks some row's range touches
    std::vector<char> touched(blocks, 0);
    for (int r = 0; r < blk.rows; ++r) {
      int64_t begin, end;
      sel.row_span(blk.i0 + r, s.seq_k, bh * s.seq_q + blk.i0 + r, begin, end);
      if (begin >= end) continue;
      for (int64_t kb = begin / t.block_k; kb < blocks && kb * t.block_k < end; ++kb) touched[kb] = 1;
    }
    for (int kb = 0; kb < blocks; ++kb) {
      if (touched[kb]) visit(kb);
    }
    return;
  }
  int64_t lo = s.seq_k, hi = 0;
  for (int r = 0; r < blk.rows; ++r) {
    int64_t begin, end;
    sel.row_span(blk.i0 + r, s.seq_k, bh * s.seq_q + blk.i0 + r, begin, end);
    if (begin < end) lo = std::min(lo, begin), hi = std::max(hi, end);
  }
  if (lo >= hi) return;
  const int64_t i1 = blk.i0 + blk.rows - 1;
  for (int kb = static_cast<int>(lo / t.block_k); kb < blocks && int64_t{kb} * t.block_k < hi; ++kb) {
    const int64_t j0 = int64_t{kb} * t.block_k, j1 = j0 + t.keys_in_block(s, kb) - 1;
    const bool in_every_hole = sel.kind == KeySelector::Kind::kBand && sel.min_distance > 0 &&
                               j0 >= i1 - sel.min_distance + 1 && j1 <= blk.i0 + sel.min_distance - 1;
    if (!in_every_hole) visit(kb);
  }
}

// acc[r] += p[r][j] v[j] over the keys j each row attends (logit not -inf, not dropped):
// the P·V product of a key block whose V holds an inf or NaN. The GEMM would also multiply
// the zero weights of blocked keys, and 0 * NaN = NaN would reach rows that cannot see the
// key. attended[j * width + r] marks the pairs; V is packed as pack_values lays it out,
// panels of `packed` rows (the whole block, of which the first `count` keys are used).
void add_attended_values(const Tiling& t, int width, int rows, int count, int packed, const float* st,
                         const uint8_t* attended, const float* values, float* acc) {
  for (int r = 0; r < rows; ++r) {
    float* out = acc + int64_t{r} * t.value_padded;
    for (int j = 0; j < count; ++j) {
      if (!attended[int64_t{j} * width + r]) continue;
      const float p = st[int64_t{j} * width + r];
      for (int c = 0; c < t.value_padded; ++c) {
        out[c] += p * values[int64_t{c / kPanel} * kPanel * packed + int64_t{j} * kPanel + c % kPanel];
      }
    }
  }
}

// The additive mask must hold 0, finite biases or -inf only. +inf would make a row's
// softmax inf - inf (NaN) and NaN has no meaning as a bias: both are refused rather than
// guessed at. Reads each element once, whatever the broadcast strides.
void check_mask_values(const FlashShape& s, const MaskView& m) {
  if (m.additive == nullptr) return;
  const int batches = m.batch_stride == 0 ? 1 : s.batch;
  const int heads = m.head_stride == 0 ? 1 : s.heads_q;
  const int rows = m.row_stride == 0 ? 1 : s.seq_q;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (int b = 0; b < batches; ++b) {
    for (int h = 0; h < heads; ++h) {
      for (int i = 0; i < rows; ++i) {
        const float* row = m.additive + b * m.batch_stride + h * m.head_stride + i * m.row_stride;
        bool ok = true;
        for (int j = 0; j < s.seq_k; ++j) ok &= row[j] < kInf;  // false for +inf and NaN
        if (!ok) {
          const int j = static_cast<int>(std::find_if(row, row + s.seq_k, [](float x) { return !(x < kInf); }) - row);
          throw_range("mask", std::string("must hold 0, finite biases or -Infinity; element [") +
                                  std::to_string(b) + "][" + std::to_string(h) + "][" + std::to_string(i) +
                                  "][" + std::to_string(j) + "] is " + (std::isnan(row[j]) ? "NaN" : "+Infinity"));
        }
      }
    }
  }
}

}  // namespace

void validate_flash(const FlashShape& s, const FlashOptions& o) {
  require_positive("batch", s.batch);
  require_positive("seq_q", s.seq_q);
  require_positive("seq_k", s.seq_k);
  require_positive("heads_q", s.heads_q);
  require_positive("heads_kv", s.heads_kv);
  require_positive("head_dim", s.head_dim);
  require_positive("value_dim", s.value_dim);
  if (s.heads_q % s.heads_kv != 0) {
    throw_range("heads_kv", "must divide heads_q (" + std::to_string(s.heads_q) + "), got " +
                                std::to_string(s.heads_kv));
  }
  if (o.scale && !std::isfinite(*o.scale)) throw_range("scale", "must be a finite number");
  if (!(std::isfinite(o.softcap) && o.softcap >= 0.0f)) {
    throw_range("softcap", "must be a finite number >= 0 (0 turns it off)");
  }
  if (!(o.dropout >= 0.0f && o.dropout < 1.0f)) {
    throw_range("dropout", "must be in [0, 1)");
  }
  // q is multiplied by scale·log2(e) (with softcap, scale / softcap) before q·kᵀ: where that
  // product overflows, zeros in q became NaN and every output NaN for finite inputs (found by
  // tests/fuzz/flash_forward_fuzz with scale near FLT_MAX), so such options are refused.
  if (!std::isfinite(query_prescale(s, o))) {
    if (o.softcap > 0.0f) throw_range("softcap", "is too small for this scale (scale / softcap overflows float32)");
    throw_range("scale", "is too large (scale * log2(e) overflows float32)");
  }
  // The capped scores are multiplied by softcap·log2(e): the same overflow (softcap = FLT_MAX
  // gave -inf lse and NaN outputs, found by flash_forward_fuzz).
  if (!std::isfinite(o.softcap * kLog2e)) throw_range("softcap", "is too large (softcap * log2(e) overflows float32)");
  if (o.block_q < 0 || o.block_q > kMaxBlock) {
    throw_range("block_q", "must be in [0, " + std::to_string(kMaxBlock) + "] (0 = automatic)");
  }
  if (o.block_k < 0 || o.block_k > kMaxBlock) {
    throw_range("block_k", "must be in [0, " + std::to_string(kMaxBlock) + "] (0 = automatic)");
  }
  if (o.mask.additive != nullptr && o.mask.allowed != nullptr) {
    throw_type("mask", "give either an additive or a boolean mask, not both");
  }
  // Row stride 0 gives every query row the same mask row (a key-padding mask).
  if (o.mask.present() && (o.mask.batch_stride < 0 || o.mask.head_stride < 0 ||
                           (o.mask.row_stride != 0 && o.mask.row_stride < s.seq_k))) {
    throw_range("mask", "strides must be >= 0 and the row stride 0 or >= seq_k");
  }
  if (o.keys != nullptr) {
    const KeySelector& k = *o.keys;
    if (k.kind == KeySelector::Kind::kBand && !(k.min_distance >= 0 && k.max_distance >= 0)) {
      throw_range("keys", "band distances must be >= 0");
    }
    if (k.kind == KeySelector::Kind::kRowRanges && (k.row_begin == nullptr || k.row_end == nullptr)) {
      throw_type("keys", "row ranges need row_begin and row_end");
    }
    if (k.kind == KeySelector::Kind::kBlockLists && (k.block_offsets == nullptr || k.blocks == nullptr)) {
      throw_type("keys", "block lists need block_offsets and blocks");
    }
  }
  // Sizes must fit comfortably in 64-bit arithmetic and in this platform's size_t.
  const double largest = std::max({double(s.batch) * s.seq_q * s.heads_q * s.value_dim,
                                   double(s.batch) * s.seq_k * s.heads_kv * s.head_dim,
                                   double(s.batch) * s.seq_k * s.heads_kv * (s.value_dim + 64)});
  if (largest * sizeof(float) > double(std::numeric_limits<size_t>::max()) / 2) {
    throw_range("shape", "tensors are too large for this platform's memory");
  }
}

void flash_forward(const FlashShape& s, const FlashOptions& o, const FlashTensors& tensors,
                   ThreadPool* pool) {
  validate_flash(s, o);
  if (tensors.q == nullptr || tensors.k == nullptr || tensors.v == nullptr ||
      tensors.out == nullptr) {
    throw_type("tensors", "q, k, v and out must all be given");
  }
  check_mask_values(s, o.mask);
  const Tiling t(s, o);
  const ScoreRules rules = make_score_rules(s, o);
  const float prescale = query_prescale(s, o);
  const bool dropout = o.dropout > 0.0f;
  const DropoutRng rng(o.seed, o.dropout);
  const int group = s.heads_q / s.heads_kv;
  const int d = s.head_dim, dv = s.value_dim, dvp = t.value_padded, bq = t.block_q;

  auto packed_k = alloc_floats(int64_t{s.batch} * s.heads_kv * t.keys_per_head);
  auto packed_v = alloc_floats(int64_t{s.batch} * s.heads_kv * t.values_per_head);
  std::vector<uint8_t> v_special(size_t(s.batch) * s.heads_kv * t.key_blocks);
  pack_all(s, t, tensors.k, tensors.v, packed_k.get(), packed_v.get(), v_special.data(), pool);

  // Per worker: packed Qᵀ, Sᵀ of one key block, the output accumulator, row max/sum/alpha.
  const int64_t scratch_floats =
      int64_t{bq} * d + int64_t{t.block_k} * bq + int64_t{bq} * dvp + 3 * bq;
  for_each_query_block(s, t, pool, scratch_floats, [&](const QueryBlock& blk, float* scratch) {
    float* q_packed = scratch;
    float* st = q_packed + int64_t{bq} * d;
    float* acc = st + int64_t{t.block_k} * bq;
    float* row_max = acc + int64_t{bq} * dvp;
    float* row_sum = row_max + bq;
    float* alpha = row_sum + bq;
    const int i0 = blk.i0, rows = blk.rows, width = blk.padded_rows;
    const int64_t bhkv = int64_t{blk.b} * s.heads_kv + blk.h / group;
    const float* keys = packed_k.get() + bhkv * t.keys_per_head;
    const float* values = packed_v.get() + bhkv * t.values_per_head;
    std::vector<uint8_t> attended;  // only for key blocks whose V holds an inf or NaN

    pack_query_block(s, tensors.q, blk.b, blk.h, i0, rows, width, prescale, q_packed);
    std::fill(acc, acc + int64_t{width} * dvp, 0.0f);
    std::fill(row_max, row_max + width, -std::numeric_limits<float>::infinity());
    std::fill(row_sum, row_sum + width, 0.0f);
    // Key blocks wholly past the causal frontier of the block's last row are skipped, and
    // with a key selector those that hold no selected key of any row of the block.
    const int visible = rules.visible_keys(i0 + rows - 1);
    const int blocks = (visible + t.block_k - 1) / t.block_k;
    int64_t visited = 0, scores = 0;
    auto visit = [&](int kb) {
      ++visited;
      const int j0 = kb * t.block_k;
      // On the causal diagonal only the keys the block's last row sees are computed.
      const int packed = t.keys_in_block(s, kb);
      const int count = std::min(packed, visible - j0);
      scores += int64_t{rows} * count;
      key_block_scores(s, t, keys, kb, count, q_packed, width, st);
      if (rules.needs_apply(j0, count, i0, rows)) {
        for (int l0 = 0; l0 < width; l0 += simd::kLanes) {
          rules.apply(st + l0, width, count, j0, blk.b, blk.h, i0 + l0);
        }
      }
      const bool special = v_special[bhkv * t.key_blocks + kb] != 0;
      if (special) {
        attended.resize(size_t(count) * width);
        for (int64_t e = 0; e < int64_t{count} * width; ++e) {
          attended[e] = st[e] != -std::numeric_limits<float>::infinity();
        }
      }
      for (int l0 = 0; l0 < width; l0 += kSoftmaxGroups * simd::kLanes) {
        online_softmax_step<kSoftmaxGroups>(st + l0, width, count, row_max + l0, row_sum + l0,
                                            alpha + l0);
      }
      if (dropout) {
        for (int r = 0; r < rows; ++r) {
          const uint64_t base =
              ((uint64_t(blk.b) * s.heads_q + blk.h) * s.seq_q + i0 + r) * s.seq_k + j0;
          for (int j = 0; j < count; ++j) {
            if (!rng.keep(base + j)) {
              st[int64_t{j} * width + r] = 0.0f;
              if (special) attended[int64_t{j} * width + r] = 0;
            }
          }
        }
      }
      for (int r = 0; r < width; ++r) {
        if (alpha[r] == 1.0f) continue;
        float* out_row = acc + int64_t{r} * dvp;
        const simd::Vec a = simd::set1(alpha[r]);
        for (int c = 0; c < dvp; c += simd::kLanes) {
          simd::store(out_row + c, simd::mul(simd::load(out_row + c), a));
        }
      }
      // O += P·V with P read from Sᵀ: row group g of P is columns g*kTileRows.. of Sᵀ.
      if (special) {
        add_attended_values(t, width, rows, count, packed, st, attended.data(),
                            values + int64_t{kb} * t.block_k * dvp, acc);
      } else {
        gemm_panels(width, dvp, count, st, kTileRows, width,
                    values + int64_t{kb} * t.block_k * dvp, packed, acc, dvp, true);
      }
    };
    if (o.keys == nullptr) {
      for (int kb = 0; kb < blocks; ++kb) visit(kb);
    } else {
      for_each_selected_block(*o.keys, s, t, blk, blocks, visit);
      if (o.keys->visited_tiles != nullptr) o.keys->visited_tiles->fetch_add(visited);
      if (o.keys->computed_scores != nullptr) o.keys->computed_scores->fetch_add(scores);
    }
    for (int r = 0; r < rows; ++r) {
      const int i = i0 + r;
      const float sum = row_sum[r];
      // sum is 0 only for a row with no attended key (zero output, lse -inf); a NaN sum
      // (a NaN or +inf logit) keeps the row NaN.
      const float norm = sum == 0.0f ? 0.0f : (dropout ? rng.keep_scale() : 1.0f) / sum;
      float* dst = tensors.out + ((int64_t{blk.b} * s.seq_q + i) * s.heads_q + blk.h) * dv;
      const float* src = acc + int64_t{r} * dvp;
      for (int c = 0; c < dv; ++c) dst[c] = src[c] * norm;
      if (tensors.lse != nullptr) {
        tensors.lse[(int64_t{blk.b} * s.heads_q + blk.h) * s.seq_q + i] =
            sum == 0.0f ? -std::numeric_limits<float>::infinity() : row_max[r] * kLn2 + std::log(sum);
      }
    }
  });
}

void attention_scores(const FlashShape& s, const FlashOptions& o, const float* q, const float* k,
                      float* weights, ThreadPool* pool) {
  validate_flash(s, o);
  if (o.keys != nullptr && o.keys->kind == KeySelector::Kind::kBlockLists) {
    throw_type("keys", "attention_scores takes band or row-range selectors, not block lists");
  }
  if (q == nullptr || k == nullptr || weights == nullptr) {
    throw_type("tensors", "q, k and weights must all be given");
  }
  check_mask_values(s, o.mask);
  const double weight_bytes = double(s.batch) * s.heads_q * s.seq_q * s.seq_k * sizeof(float);
  if (weight_bytes > double(std::numeric_limits<size_t>::max()) / 2) {
    throw_range("shape", "the weights [batch][heads][seq_q][seq_k] are too large for this platform");
  }
  const Tiling t(s, o);
  const ScoreRules rules = make_score_rules(s, o);
  const float prescale = query_prescale(s, o);
  const int group = s.heads_q / s.heads_kv;
  const int bq = t.block_q;

  auto packed_k = alloc_floats(int64_t{s.batch} * s.heads_kv * t.keys_per_head);
  pack_all(s, t, k, nullptr, packed_k.get(), nullptr, nullptr, pool);

  // Per worker: packed Qᵀ and Sᵀ of one key block.
  const int64_t scratch_floats = int64_t{bq} * s.head_dim + int64_t{t.block_k} * bq;
  for_each_query_block(s, t, pool, scratch_floats, [&](const QueryBlock& blk, float* scratch) {
    float* q_packed = scratch;
    float* st = q_packed + int64_t{bq} * s.head_dim;
    const int i0 = blk.i0, rows = blk.rows, width = blk.padded_rows;
    const float* keys =
        packed_k.get() + (int64_t{blk.b} * s.heads_kv + blk.h / group) * t.keys_per_head;
    float* out = weights + ((int64_t{blk.b} * s.heads_q + blk.h) * s.seq_q + i0) * s.seq_k;
    pack_query_block(s, q, blk.b, blk.h, i0, rows, width, prescale, q_packed);
    for (int kb = 0; kb < t.key_blocks; ++kb) {
      const int j0 = kb * t.block_k;
      const int count = t.keys_in_block(s, kb);
      key_block_scores(s, t, keys, kb, count, q_packed, width, st);
      for (int l0 = 0; l0 < width; l0 += simd::kLanes) {
        rules.apply(st + l0, width, count, j0, blk.b, blk.h, i0 + l0);
      }
      for (int r = 0; r < rows; ++r) {
        float* dst = out + int64_t{r} * s.seq_k + j0;
        for (int j = 0; j < count; ++j) dst[j] = st[int64_t{j} * width + r];
      }
    }
    for (int r = 0; r < rows; ++r) {
      float* row = out + int64_t{r} * s.seq_k;
      // A NaN logit becomes the max (and stays), so the whole row comes out NaN, as in the
      // forward; std::max would skip it and a row of only NaN would look fully masked.
      float row_max = -std::numeric_limits<float>::infinity();
      for (int j = 0; j < s.seq_k; ++j) row_max = row[j] > row_max || row[j] != row[j] ? row[j] : row_max;
      if (row_max == -std::numeric_limits<float>::infinity()) {
        std::fill(row, row + s.seq_k, 0.0f);
        continue;
      }
      float sum = 0.0f;
      for (int j = 0; j < s.seq_k; ++j) sum += (row[j] = std::exp2(row[j] - row_max));  // log2 units
      const float inv = 1.0f / sum;
      for (int j = 0; j < s.seq_k; ++j) row[j] *= inv;
    }
  });
}

double flash_flops(const FlashShape& s, CausalAlign causal) {
  FlashOptions o;
  o.causal = causal;
  const ScoreRules rules = make_score_rules(s, o);
  double pairs = 0;
  for (int i = 0; i < s.seq_q; ++i) pairs += rules.visible_keys(i);
  return pairs * 2.0 * (s.head_dim + s.value_dim) * s.heads_q * s.batch;
}

}  // namespace attn
