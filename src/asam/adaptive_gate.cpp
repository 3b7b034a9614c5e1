#include "asam/adaptive_gate.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "runtime/uniform_rng.h"
#include "simd/vec_math.h"

namespace attn::asam {

namespace {

constexpr int64_t kRowsPerTask = 64;  // tokens per parallel task

// nn.AdaptiveAvgPool1d's bounds of segment p of `pools` over n tokens: never empty.
int64_t segment_begin(int64_t p, int64_t n, int64_t pools) { return p * n / pools; }
int64_t segment_end(int64_t p, int64_t n, int64_t pools) { return ((p + 1) * n + pools - 1) / pools; }

// Elements rounded up to whole vectors: buffers are padded so the activations run on
// whole vectors (the padding holds finite leftovers and is never read back).
size_t padded(size_t n) { return (n + simd::kLanes - 1) / simd::kLanes * simd::kLanes; }

void add_bias(float* y, int rows, const std::vector<float>& bias) {
  const int cols = static_cast<int>(bias.size());
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) y[int64_t{r} * cols + c] += bias[size_t(c)];
  }
}

// 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) on n (a multiple of kLanes) floats.
void gelu_tanh(float* y, size_t n) {
  using namespace simd;
  const Vec half = set1(0.5f), one = set1(1.0f), k0 = set1(0.7978845608028654f), k1 = set1(0.044715f);
  for (size_t i = 0; i < n; i += kLanes) {
    const Vec x = load(y + i);
    const Vec u = mul(k0, mul_add(mul(k1, x), mul(x, x), x));
    store(y + i, mul(mul(half, x), add(one, simd::tanh(u))));
  }
}

// 1 / (1 + e^-x) on n (a multiple of kLanes) floats.
void sigmoid(float* y, size_t n) {
  using namespace simd;
  const Vec one = set1(1.0f);
  for (size_t i = 0; i < n; i += kLanes) {
    const Vec x = load(y + i);
    store(y + i, div(one, add(one, simd::exp(sub(zero(), x)))));
  }
}

// The segments a block of tokens [begin, end) falls in: [first, last].
struct SegmentRange {
  int first = 0, last = -1;
  int count() const { return last - first + 1; }
};
SegmentRange segments_of(int64_t begin, int64_t end, int64_t n, int pools) {
  SegmentRange s;
  s.first = pools;
  for (int p = 0; p < pools; ++p) {
    if (segment_end(p, n, pools) > begin && segment_begin(p, n, pools) < end) {
      s.first = std::min(s.first, p);
      s.last = p;
    }
  }
  return s;
}

}  // namespace

const char* gate_pattern(const float* logits) {
  int best = 0;
  for (int i = 1; i < kGatePatternCount; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return kGatePatterns[best];
}

AdaptiveGate::AdaptiveGate(int dim, int num_heads, int hidden_dim, int num_pools, uint64_t seed)
    : dim_(dim), heads_(num_heads), hidden_(hidden_dim), pools_(num_pools) {
  require_positive("dim", dim);
  require_positive("numHeads", num_heads);
  require_positive("hiddenDim", hidden_dim);
  require_positive("numPools", num_pools);
  if (int64_t{num_pools} * hidden_dim > std::numeric_limits<int>::max()) {
    throw_range("numPools", "numPools * hiddenDim is too large");
  }
  const double floats = double(hidden_dim) * (double(dim) + num_heads + double(num_pools) * kGatePatternCount + 2);
  if (floats * sizeof(float) > double(std::numeric_limits<size_t>::max()) / 4) {
    throw_range("hiddenDim", "the weights are too large for this platform's memory");
  }
  UniformRng rng{seed};
  auto bound = [](int fan_in) { return 1.0f / std::sqrt(float(fan_in)); };
  const size_t d = size_t(dim), h = size_t(hidden_dim), pooled = size_t(num_pools) * h;
  Weights w;
  w.token = rng.fill(h * d, bound(dim));
  w.token_bias = rng.fill(h, bound(dim));
  w.gate = rng.fill(size_t(num_heads) * h, bound(hidden_dim));
  w.gate_bias = rng.fill(size_t(num_heads), bound(hidden_dim));
  w.pattern = rng.fill(kGatePatternCount * pooled, bound(int(pooled)));
  w.pattern_bias = rng.fill(kGatePatternCount, bound(int(pooled)));
  set_weights(std::move(w));
}

void AdaptiveGate::set_weights(Weights w) {
  const int pooled = pools_ * hidden_;
  // y = x . W^T reads B[in][out] = W[out][in]: W seen transposed.
  Packed p{pack_b(dim_, hidden_, {w.token.data(), dim_, true}), pack_b(hidden_, heads_, {w.gate.data(), hidden_, true}),
           pack_b(pooled, kGatePatternCount, {w.pattern.data(), pooled, true})};
  w_ = std::move(w);
  packed_ = std::move(p);
}

std::vector<GateParameter> AdaptiveGate::named_parameters() const {
  return {{"token_proj.weight", {hidden_, dim_}, w_.token.data()},
          {"token_proj.bias", {hidden_}, w_.token_bias.data()},
          {"gate_proj.weight", {heads_, hidden_}, w_.gate.data()},
          {"gate_proj.bias", {heads_}, w_.gate_bias.data()},
          {"pattern_proj.weight", {kGatePatternCount, pools_ * hidden_}, w_.pattern.data()},
          {"pattern_proj.bias", {kGatePatternCount}, w_.pattern_bias.data()}};
}

int64_t AdaptiveGate::param_count() const {
  return int64_t(w_.token.size() + w_.token_bias.size() + w_.gate.size() + w_.gate_bias.size() + w_.pattern.size() +
                 w_.pattern_bias.size());
}

void AdaptiveGate::load_named(const NamedWeights& named) {
  Weights fresh = w_;
  std::vector<float>* slots[] = {&fresh.token, &fresh.token_bias, &fresh.gate,
                                 &fresh.gate_bias, &fresh.pattern, &fresh.pattern_bias};
  const auto params = named_parameters();
  std::vector<bool> given(params.size(), false);
  for (const auto& [name, x] : named) {
    size_t i = 0;
    while (i < params.size() && params[i].name != name) ++i;
    if (i == params.size()) {
      throw_range(weight_param(name), "is not a weight of AdaptiveGate (expected token_proj.weight, token_proj.bias, "
                        "gate_proj.weight, gate_proj.bias, pattern_proj.weight, pattern_proj.bias)");
    }
    check_named_weight(name, x, slots[i]->size());
    *slots[i] = x;
    given[i] = true;
  }
  for (size_t i = 0; i < params.size(); ++i) {
    if (!given[i]) throw_range(params[i].name, "missing");
  }
  set_weights(std::move(fresh));
}

GateOutput AdaptiveGate::forward(int batch, int seq, const float* x, ThreadPool* pool) const {
  require_positive("batch", batch);
  require_positive("seqLen", seq);
  GateOutput out;
  out.gate_values.resize(size_t(batch) * heads_ * seq);
  out.confidence.resize(size_t(batch) * heads_);
  out.pattern_logits.resize(size_t(batch) * kGatePatternCount);
  forward(batch, seq, x, out.gate_values.data(), out.confidence.data(), out.pattern_logits.data(), pool);
  return out;
}

void AdaptiveGate::forward(int batch, int seq, const float* x, float* gate_values, float* confidence,
                           float* pattern_logits, ThreadPool* pool) const {
  require_positive("batch", batch);
  require_positive("seqLen", seq);
  if (x == nullptr) throw_type("x", "must be given");
  if (gate_values == nullptr || confidence == nullptr || pattern_logits == nullptr) {
    throw_type("outputs", "gateValues, confidence and patternLogits must all be given");
  }
  const int hidden = hidden_, heads = heads_, pools = pools_;
  const int64_t n = seq;

  // Tasks are blocks of kRowsPerTask tokens of one sequence. Each keeps its own sums of h over
  // the segments it touches (from block_offset on), added up afterwards in block order.
  const int64_t blocks = (n + kRowsPerTask - 1) / kRowsPerTask;
  std::vector<SegmentRange> block_segments(static_cast<size_t>(blocks));
  std::vector<size_t> block_offset(static_cast<size_t>(blocks) + 1, 0);
  for (int64_t k = 0; k < blocks; ++k) {
    block_segments[size_t(k)] = segments_of(k * kRowsPerTask, std::min(n, (k + 1) * kRowsPerTask), n, pools);
    block_offset[size_t(k) + 1] = block_offset[size_t(k)] + size_t(block_segments[size_t(k)].count()) * hidden;
  }
  const size_t per_sequence = block_offset.back();
  std::vector<float> partial_sums(size_t(batch) * per_sequence, 0.0f);

  struct Scratch {
    GemmScratch gemm;
    std::vector<float> h, z;
  };
  const int workers = pool != nullptr ? pool->size() : 1;
  std::vector<Scratch> scratch(static_cast<size_t>(workers));
  auto body = [&](int64_t begin, int64_t end, int worker) {
    Scratch& s = scratch[static_cast<size_t>(worker)];
    if (s.h.empty()) {
      s.h.assign(padded(size_t(kRowsPerTask) * hidden), 0.0f);
      s.z.assign(padded(size_t(kRowsPerTask) * heads), 0.0f);
    }
    for (int64_t t = begin; t < end; ++t) {
      const int64_t b = t / blocks, k = t % blocks, r0 = k * kRowsPerTask;
      const int rows = static_cast<int>(std::min(kRowsPerTask, n - r0));
      gemm(rows, {x + (b * n + r0) * dim_, dim_, false}, packed_.token, s.h.data(), hidden, false, s.gemm);
      add_bias(s.h.data(), rows, w_.token_bias);
      gelu_tanh(s.h.data(), padded(size_t(rows) * hidden));

      const SegmentRange segs = block_segments[size_t(k)];
      float* sums = partial_sums.data() + size_t(b) * per_sequence + block_offset[size_t(k)];
      for (int p = segs.first; p <= segs.last; ++p) {
        const int64_t lo = std::max(r0, segment_begin(p, n, pools)) - r0;
        const int64_t hi = std::min(r0 + rows, segment_end(p, n, pools)) - r0;
        float* dst = sums + size_t(p - segs.first) * hidden;
        for (int64_t r = lo; r < hi; ++r) {
          const float* hr = s.h.data() + r * hidden;
          for (int c = 0; c < hidden; ++c) dst[c] += hr[c];
        }
      }

      gemm(rows, {s.h.data(), hidden, false}, packed_.gate, s.z.data(), heads, false, s.gemm);
      add_bias(s.z.data(), rows, w_.gate_bias);
      sigmoid(s.z.data(), padded(size_t(rows) * heads));
      for (int hh = 0; hh < heads; ++hh) {
        float* g = gate_values + (b * heads + hh) * n + r0;
        for (int r = 0; r < rows; ++r) g[r] = s.z[size_t(r) * heads + hh];
      }
    }
  };
  const int64_t tasks = int64_t{batch} * blocks;
  if (pool != nullptr) {
    pool->parallel_for(tasks, 1, body);
  } else {
    body(0, tasks, 0);
  }

  for (int64_t row = 0; row < int64_t{batch} * heads; ++row) {
    const float* g = gate_values + row * n;
    double sum = 0.0;
    for (int64_t t = 0; t < n; ++t) sum += std::abs(2.0 * g[t] - 1.0);
    confidence[row] = static_cast<float>(sum / double(n));
  }

  // Segment means [batch][pools * hidden], then the pattern logits as one product.
  const size_t pooled_width = size_t(pools) * hidden;
  std::vector<float> pooled(size_t(batch) * pooled_width);
  std::vector<double> acc(pooled_width);
  for (int b = 0; b < batch; ++b) {
    std::fill(acc.begin(), acc.end(), 0.0);
    for (int64_t k = 0; k < blocks; ++k) {
      const SegmentRange segs = block_segments[size_t(k)];
      const float* sums = partial_sums.data() + size_t(b) * per_sequence + block_offset[size_t(k)];
      for (int p = segs.first; p <= segs.last; ++p) {
        double* dst = acc.data() + size_t(p) * hidden;
        const float* src = sums + size_t(p - segs.first) * hidden;
        for (int c = 0; c < hidden; ++c) dst[c] += src[c];
      }
    }
    for (int p = 0; p < pools; ++p) {
      const double count = double(segment_end(p, n, pools) - segment_begin(p, n, pools));
      for (int c = 0; c < hidden; ++c) {
        const size_t i = size_t(p) * hidden + c;
        pooled[size_t(b) * pooled_width + i] = static_cast<float>(acc[i] / count);
      }
    }
  }
  GemmScratch gemm_scratch;
  gemm(batch, {pooled.data(), int64_t(pooled_width), false}, packed_.pattern, pattern_logits, kGatePatternCount,
       false, gemm_scratch);
  add_bias(pattern_logits, batch, w_.pattern_bias);
}

}  // namespace attn::asam
