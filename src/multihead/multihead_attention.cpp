#include "multihead/multihead_attention.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "flash/flash_attention.h"
#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "runtime/uniform_rng.h"
#include "runtime/weights_format.h"

namespace attn {

using namespace weights_format;

namespace {

constexpr char kMagic[4] = {'A', 'T', 'K', 'W'};
constexpr uint32_t kVersion = 1;

// Elements a mask view spans for this call (its strides may broadcast).
int64_t mask_extent(const MaskView& m, int batch, int heads, int seq_q, int seq_k) {
  return int64_t{batch - 1} * m.batch_stride + int64_t{heads - 1} * m.head_stride +
         int64_t{seq_q - 1} * m.row_stride + seq_k;
}

}  // namespace

MultiHeadConfig MultiHeadConfig::self_attention(int model_dim, int heads, bool bias, uint64_t seed) {
  MultiHeadConfig c;
  c.model_dim = model_dim;
  c.heads = heads;
  c.bias = bias;
  c.seed = seed;
  return c;
}

MultiHeadConfig MultiHeadAttention::validated(MultiHeadConfig c) {
  if (c.model_dim < 1) throw_range("modelDim", "must be a positive integer, got " + std::to_string(c.model_dim));
  if (c.heads < 1) throw_range("heads", "must be a positive integer, got " + std::to_string(c.heads));
  if (c.model_dim % c.heads != 0) {
    throw_range("heads", "must divide modelDim (" + std::to_string(c.model_dim) + "), got " + std::to_string(c.heads));
  }
  if (c.kdim == 0) c.kdim = c.model_dim;
  if (c.vdim == 0) c.vdim = c.model_dim;
  if (c.kdim < 0) throw_range("kdim", "must be a positive integer, got " + std::to_string(c.kdim));
  if (c.vdim < 0) throw_range("vdim", "must be a positive integer, got " + std::to_string(c.vdim));
  if (!(c.dropout >= 0.0f && c.dropout < 1.0f)) throw_range("dropout", "must be in [0, 1)");
  const double params = double(c.model_dim) * (2.0 * c.model_dim + c.kdim + c.vdim + 4);
  if (params * sizeof(float) > double(std::numeric_limits<size_t>::max()) / 4) {
    // Named after the dimension that makes them so (a huge kdim, not modelDim, say).
    const char* largest = c.kdim > c.model_dim && c.kdim >= c.vdim ? "kdim" : c.vdim > c.model_dim ? "vdim" : "modelDim";
    throw_range(largest, "the weights are too large for this platform's memory");
  }
  return c;
}

MultiHeadAttention::MultiHeadAttention(const MultiHeadConfig& config)
    : config_(validated(config)),
      projections_({config_.model_dim, config_.model_dim}, {config_.model_dim, config_.kdim},
                   {config_.model_dim, config_.vdim}, {config_.model_dim, config_.model_dim}) {
  const MultiHeadConfig& c = config_;
  // PyTorch: xavier_uniform_ on the input projections (one [3E, E] matrix when kdim = vdim
  // = E, else each its own), the output Linear's kaiming_uniform_(a = sqrt(5)) bound
  // 1/sqrt(E), zero biases.
  UniformRng rng{c.seed};
  const int e = c.model_dim;
  const bool one_in_proj = c.kdim == e && c.vdim == e;  // PyTorch's in_proj_weight [3E, E]
  auto xavier = [&](int fan_in, int fan_out) { return std::sqrt(6.0f / float(fan_in + fan_out)); };
  Weights w;
  w.q = rng.fill(size_t(e) * e, one_in_proj ? xavier(e, 3 * e) : xavier(e, e));
  w.k = rng.fill(size_t(e) * c.kdim, one_in_proj ? xavier(e, 3 * e) : xavier(c.kdim, e));
  w.v = rng.fill(size_t(e) * c.vdim, one_in_proj ? xavier(e, 3 * e) : xavier(c.vdim, e));
  w.out = rng.fill(size_t(e) * e, 1.0f / std::sqrt(float(e)));
  if (c.bias) w.q_bias = w.k_bias = w.v_bias = w.out_bias = std::vector<float>(size_t(e), 0.0f);
  projections_.set_weights(std::move(w));
}

int64_t MultiHeadAttention::param_count() const {
  const int64_t e = config_.model_dim;
  return e * (2 * e + config_.kdim + config_.vdim) + (config_.bias ? 4 * e : 0);
}

void MultiHeadAttention::forward(int batch, int seq_q, int seq_k, const float* query, const float* key,
                                 const float* value, const MaskView& mask, CausalAlign causal, float* out,
                                 ThreadPool* pool) {
  const int e = config_.model_dim, d = head_dim();
  FlashShape shape{batch, seq_q, seq_k, config_.heads, config_.heads, d, d};
  FlashOptions options;
  options.causal = causal;
  options.mask = mask;
  const bool dropout = training_ && config_.dropout > 0.0f;
  options.dropout = dropout ? config_.dropout : 0.0f;
  options.seed = config_.seed + calls_;
  validate_flash(shape, options);  // sizes, mask strides: before any work
  if (query == nullptr || key == nullptr || value == nullptr || out == nullptr) {
    throw_type("tensors", "query, key, value and out must all be given");
  }
  std::vector<float> q(size_t(batch) * seq_q * e), k(size_t(batch) * seq_k * e), v(size_t(batch) * seq_k * e);
  std::vector<float> heads(size_t(batch) * seq_q * e);
  project(Projection::kQuery, int64_t{batch} * seq_q, query, q.data(), pool);
  project(Projection::kKey, int64_t{batch} * seq_k, key, k.data(), pool);
  project(Projection::kValue, int64_t{batch} * seq_k, value, v.data(), pool);
  flash_forward(shape, options, {q.data(), k.data(), v.data(), heads.data(), nullptr}, pool);
  project(Projection::kOutput, int64_t{batch} * seq_q, heads.data(), out, pool);
  if (dropout) ++calls_;

  // What attention_weights() needs to recompute this call's weights.
  last_batch_ = batch, last_seq_q_ = seq_q, last_seq_k_ = seq_k, last_causal_ = causal;
  last_q_ = std::move(q);
  last_k_ = std::move(k);
  last_mask_ = mask;
  last_mask_additive_.clear();
  last_mask_allowed_.clear();
  if (mask.present()) {
    const int64_t n = mask_extent(mask, batch, config_.heads, seq_q, seq_k);
    if (mask.additive != nullptr) {
      last_mask_additive_.assign(mask.additive, mask.additive + n);
      last_mask_.additive = last_mask_additive_.data();
    } else {
      last_mask_allowed_.assign(mask.allowed, mask.allowed + n);
      last_mask_.allowed = last_mask_allowed_.data();
    }
  }
}

int64_t MultiHeadAttention::last_weights_size() const {
  return int64_t{last_batch_} * config_.heads * last_seq_q_ * last_seq_k_;
}

void MultiHeadAttention::attention_weights(float* out, ThreadPool* pool) const {
  if (last_batch_ == 0) throw_range("weights", "no forward call yet: call forward() first");
  const int d = head_dim();
  FlashShape shape{last_batch_, last_seq_q_, last_seq_k_, config_.heads, config_.heads, d, d};
  FlashOptions options;
  options.causal = last_causal_;
  options.mask = last_mask_;
  attention_scores(shape, options, last_q_.data(), last_k_.data(), out, pool);
}

std::vector<uint8_t> MultiHeadAttention::save() const {
  std::vector<uint8_t> out(kMagic, kMagic + 4);
  put_u32(out, kVersion);
  for (int dim : {config_.model_dim, config_.heads, config_.kdim, config_.vdim}) put_u32(out, uint32_t(dim));
  put_u32(out, config_.bias ? 1u : 0u);
  const Weights w = projections_.weights();
  for (const auto* part : {&w.q, &w.k, &w.v, &w.q_bias, &w.k_bias, &w.v_bias, &w.out, &w.out_bias}) {
    put_floats(out, *part);
  }
  seal(out);
  return out;
}

void MultiHeadAttention::load(const uint8_t* data, size_t size) {
  constexpr size_t kHeader = 4 + 4 * 6;
  check_prefix(data, size, kMagic, kVersion, kHeader, "attnkit weights");
  const uint32_t dims[] = {get_u32(data + 8), get_u32(data + 12), get_u32(data + 16), get_u32(data + 20)};
  // Only 0 and 1: a buffer save() cannot write is not accepted as one (found by
  // tests/fuzz/weights_load_fuzz: a flag of 2 loaded, and saved back as 1).
  if (get_u32(data + 24) > 1) throw_range("weights", "bias flag " + std::to_string(get_u32(data + 24)) + " is not 0 or 1");
  const bool bias = get_u32(data + 24) != 0;
  const int expect[] = {config_.model_dim, config_.heads, config_.kdim, config_.vdim};
  const char* names[] = {"modelDim", "heads", "kdim", "vdim"};
  for (int i = 0; i < 4; ++i) {
    if (dims[i] != uint32_t(expect[i])) {
      throw_range("weights", std::string("were saved with ") + names[i] + " = " + std::to_string(dims[i]) +
                                 ", this object has " + std::to_string(expect[i]));
    }
  }
  if (bias != config_.bias) throw_range("weights", bias ? "have biases, this object has none" : "have no biases, this object has them");
  const size_t floats = size_t(param_count());
  check_size_and_checksum(data, size, kHeader + floats * sizeof(float) + 4);
  Weights fresh = projections_.weights();
  std::vector<float>* parts[] = {&fresh.q, &fresh.k, &fresh.v, &fresh.q_bias, &fresh.k_bias, &fresh.v_bias, &fresh.out, &fresh.out_bias};
  size_t at = kHeader;
  for (auto* part : parts) at = get_floats(data, at, *part);
  // As load_named (and ASAMLayer::load) refuse them: a buffer whose checksum was computed
  // over NaN or inf weights is still not weights (found by tests/fuzz/weights_load_fuzz).
  for (const auto* part : parts) {
    for (float x : *part) {
      if (!std::isfinite(x)) throw_range("weights", "hold a value that is not finite");
    }
  }
  projections_.set_weights(std::move(fresh));
}

void MultiHeadAttention::load_named(const NamedWeights& named) {
  const size_t e = size_t(config_.model_dim);
  const size_t kd = size_t(config_.kdim), vd = size_t(config_.vdim);
  Weights fresh = projections_.weights();
  bool have_q = false, have_k = false, have_v = false, have_out = false, have_in_bias = false, have_out_bias = false;
  for (const auto& [name, x] : named) {
    if (name == "in_proj_weight") {
      if (kd != e || vd != e) throw_range(name, "exists only when kdim = vdim = modelDim; give q_proj_weight, k_proj_weight, v_proj_weight");
      check_named_weight(name, x, 3 * e * e);
      fresh.q.assign(x.begin(), x.begin() + e * e);
      fresh.k.assign(x.begin() + e * e, x.begin() + 2 * e * e);
      fresh.v.assign(x.begin() + 2 * e * e, x.end());
      have_q = have_k = have_v = true;
    } else if (name == "q_proj_weight") {
      check_named_weight(name, x, e * e), fresh.q = x, have_q = true;
    } else if (name == "k_proj_weight") {
      check_named_weight(name, x, e * kd), fresh.k = x, have_k = true;
    } else if (name == "v_proj_weight") {
      check_named_weight(name, x, e * vd), fresh.v = x, have_v = true;
    } else if (name == "out_proj.weight") {
      check_named_weight(name, x, e * e), fresh.out = x, have_out = true;
    } else if (name == "in_proj_bias") {
      if (!config_.bias) throw_range(name, "given, but this object was made with bias = false");
      check_named_weight(name, x, 3 * e);
      fresh.q_bias.assign(x.begin(), x.begin() + e);
      fresh.k_bias.assign(x.begin() + e, x.begin() + 2 * e);
      fresh.v_bias.assign(x.begin() + 2 * e, x.end());
      have_in_bias = true;
    } else if (name == "out_proj.bias") {
      if (!config_.bias) throw_range(name, "given, but this object was made with bias = false");
      check_named_weight(name, x, e), fresh.out_bias = x, have_out_bias = true;
    } else {
      throw_range(weight_param(name), "is not a weight of nn.MultiheadAttention (expected in_proj_weight or q/k/v_proj_weight, "
                        "in_proj_bias, out_proj.weight, out_proj.bias)");
    }
  }
  if (!have_q || !have_k || !have_v) throw_range("in_proj_weight", "missing (or q_proj_weight, k_proj_weight, v_proj_weight)");
  if (!have_out) throw_range("out_proj.weight", "missing");
  if (config_.bias && !have_in_bias) throw_range("in_proj_bias", "missing (this object has biases)");
  if (config_.bias && !have_out_bias) throw_range("out_proj.bias", "missing (this object has biases)");
  projections_.set_weights(std::move(fresh));
}

}  // namespace attn
