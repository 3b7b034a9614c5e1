#include "asam/asam_layer.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "flash/flash_attention.h"
#include "runtime/errors.h"
#include "runtime/uniform_rng.h"
#include "runtime/weights_format.h"

namespace attn::asam {

using namespace weights_format;

namespace {

constexpr char kMagic[4] = {'A', 'T', 'K', 'A'};  // attnkit ASAM layer
constexpr uint32_t kVersion = 1;
constexpr int kGatePools = 4;  // the seed's AdaptiveGate default
constexpr const char* kGatePrefix = "gate.";

// Sub-module seeds of a layer (its projections take the layer's seed itself).
enum SeedStream : uint64_t { kCentroidStream = 1, kGateStream = 2 };

// Dense attention for the (batch, head) pairs listed, mixed into heads [b][n][h][d] per token
// with the gate: g * sparse + (1 - g) * dense. The pairs run as the heads of one flash call
// over their gathered Q, K, V. Returns the scores it computed.
int64_t mix_dense(int n, int heads, int d, const std::vector<int64_t>& pairs, const float* q, const float* k,
                  const float* v, const float* gate_values, float* out, ThreadPool* pool) {
  const int p_count = static_cast<int>(pairs.size());
  if (p_count == 0) return 0;
  const size_t size = size_t(n) * p_count * d;
  std::vector<float> gq(size), gk(size), gv(size), dense(size);
  for (int p = 0; p < p_count; ++p) {
    const int64_t b = pairs[size_t(p)] / heads, h = pairs[size_t(p)] % heads;
    for (int t = 0; t < n; ++t) {
      const int64_t src = ((b * n + t) * heads + h) * d, dst = (int64_t{t} * p_count + p) * d;
      std::copy(q + src, q + src + d, gq.data() + dst);
      std::copy(k + src, k + src + d, gk.data() + dst);
      std::copy(v + src, v + src + d, gv.data() + dst);
    }
  }
  const FlashShape shape{1, n, n, p_count, p_count, d, d};
  flash_forward(shape, FlashOptions{}, {gq.data(), gk.data(), gv.data(), dense.data(), nullptr}, pool);
  for (int p = 0; p < p_count; ++p) {
    const int64_t b = pairs[size_t(p)] / heads, h = pairs[size_t(p)] % heads;
    const float* g = gate_values + (b * heads + h) * n;
    for (int t = 0; t < n; ++t) {
      float* dst = out + ((b * n + t) * heads + h) * d;
      const float* src = dense.data() + (int64_t{t} * p_count + p) * d;
      for (int c = 0; c < d; ++c) dst[c] = g[t] * dst[c] + (1.0f - g[t]) * src[c];
    }
  }
  return int64_t{p_count} * n * n;
}

}  // namespace

ASAMLayer::ASAMLayer(const ASAMConfig& config)
    : config_(validate_asam_config(config)),
      proj_(config_.dim, config_.inner_dim(), config_.seed),
      gate_(config_.dim, config_.num_heads, config_.gate_hidden_dim, kGatePools,
            derive_seed(config_.seed, kGateStream)) {
  // Unit variance, as torch.randn centroids would have.
  UniformRng rng{derive_seed(config_.seed, kCentroidStream)};
  centroids_ = rng.fill(size_t(config_.num_heads) * config_.num_clusters * config_.dim_head, std::sqrt(3.0f));
}

PatternParams ASAMLayer::pattern_params(PatternType type) const {
  PatternParams p;
  p.type = type;
  p.window_size = config_.window_size;
  p.stride = config_.stride;
  p.block_size = config_.block_size;
  p.seed = config_.seed;
  p.num_clusters = config_.num_clusters;
  p.centroids = centroids_.data();
  return p;
}

void ASAMLayer::forward(int batch, int seq, const float* x, const MaskView& mask, float* out, ASAMInfo* info,
                        ThreadPool* pool) const {
  require_positive("batch", batch);
  require_positive("seqLen", seq);
  if (x == nullptr) throw_type("x", "must be given");
  if (out == nullptr) throw_type("out", "must be given");
  if (mask.present()) {
    throw_range("mask", "ASAMLayer takes no mask: its sparse pattern is the attention mask (the block-sparse "
                        "kernel has no per-key mask); use MultiHeadAttention for masked attention");
  }
  const int heads = config_.num_heads, d = config_.dim_head, inner = config_.inner_dim();
  const int64_t rows = int64_t{batch} * seq;
  std::vector<float> q(size_t(rows) * inner), k(q.size()), v(q.size()), attended(q.size());
  proj_.qkv(rows, x, q.data(), k.data(), v.data(), pool);

  const bool adaptive = config_.pattern_type == "adaptive";
  GateOutput g;
  if (config_.use_adaptive_gate || adaptive) g = gate_.forward(batch, seq, x, pool);
  std::vector<PatternType> patterns(static_cast<size_t>(batch));
  for (int b = 0; b < batch; ++b) {
    patterns[size_t(b)] = parse_pattern_type(
        adaptive ? gate_pattern(g.pattern_logits.data() + int64_t{b} * kGatePatternCount) : config_.pattern_type);
  }

  // Consecutive batch elements with the same pattern run as one sparse call.
  SparseStats stats;
  for (int b0 = 0; b0 < batch;) {
    int b1 = b0 + 1;
    while (b1 < batch && patterns[size_t(b1)] == patterns[size_t(b0)]) ++b1;
    const FlashShape shape{b1 - b0, seq, seq, heads, heads, d, d};
    const int64_t at = int64_t{b0} * seq * inner;
    stats += sparse_attention(shape, pattern_params(patterns[size_t(b0)]), std::nullopt, q.data() + at,
                              k.data() + at, v.data() + at, attended.data() + at, pool);
    b0 = b1;
  }

  std::vector<uint8_t> mixed(size_t(batch) * heads, 0);
  std::vector<int64_t> pairs;
  if (config_.use_adaptive_gate) {
    for (int64_t bh = 0; bh < int64_t{batch} * heads; ++bh) {
      if (!(g.confidence[size_t(bh)] >= config_.confidence_threshold)) mixed[size_t(bh)] = 1, pairs.push_back(bh);
    }
  }
  const int64_t dense_path =
      mix_dense(seq, heads, d, pairs, q.data(), k.data(), v.data(), g.gate_values.data(), attended.data(), pool);
  proj_.out(rows, attended.data(), out, pool);

  if (info != nullptr) {
    info->gate_values = std::move(g.gate_values);
    info->confidence = std::move(g.confidence);
    info->pattern_logits = std::move(g.pattern_logits);
    info->patterns = std::move(patterns);
    info->mixed = std::move(mixed);
    info->sparse_stats = stats;
    info->dense_path_scores = dense_path;
    info->sparse_ratio = stats.sparse_ratio(dense_path);
  }
}

std::vector<ParameterView> ASAMLayer::named_parameters() const {
  std::vector<ParameterView> params = proj_.named_parameters();
  params.push_back({"centroids", {config_.num_heads, config_.num_clusters, config_.dim_head}, centroids_.data()});
  for (ParameterView p : gate_.named_parameters()) {
    p.name = kGatePrefix + p.name;
    params.push_back(std::move(p));
  }
  return params;
}

int64_t ASAMLayer::param_count() const {
  int64_t n = 0;
  for (const auto& p : named_parameters()) n += p.count();
  return n;
}

void ASAMLayer::load_named(const NamedWeights& named) {
  AttentionProjections::Weights fresh = proj_.weights();
  std::vector<float> centroids = centroids_;
  std::vector<std::vector<float>*> slots = AttentionProjections::slots(fresh);
  slots.push_back(&centroids);
  NamedWeights own, gate_weights;
  for (const auto& [name, x] : named) {
    if (name.rfind(kGatePrefix, 0) == 0) {
      gate_weights.emplace_back(name.substr(std::char_traits<char>::length(kGatePrefix)), x);
    } else {
      own.emplace_back(name, x);
    }
  }
  assign_named(own, named_parameters(), slots,
               "is not a weight of ASAMLayer (expected q_proj, k_proj, v_proj, out_proj .weight / .bias, centroids, "
               "gate.*)");
  AdaptiveGate gate = gate_;
  try {
    gate.load_named(gate_weights);
  } catch (const AttnError& e) {
    throw AttnError(e.kind(), kGatePrefix + e.param(), e.message());
  }
  proj_.set_weights(std::move(fresh));
  centroids_ = std::move(centroids);
  gate_ = std::move(gate);
}

std::vector<uint8_t> ASAMLayer::save() const {
  std::vector<uint8_t> out(kMagic, kMagic + 4);
  put_u32(out, kVersion);
  for (int field : {config_.dim, config_.num_heads, config_.dim_head, config_.num_clusters, config_.gate_hidden_dim,
                    gate_.num_pools()}) {
    put_u32(out, uint32_t(field));
  }
  // The projections' views hold no data when they are stored as fp16 or int8.
  const AttentionProjections::Weights proj = proj_.weights();
  std::vector<ParameterView> params = named_parameters();
  const std::vector<ParameterView> own = proj_.named_parameters(proj);
  std::copy(own.begin(), own.end(), params.begin());
  for (const auto& p : params) put_floats(out, p.data, size_t(p.count()));
  seal(out);
  return out;
}

void ASAMLayer::load(const uint8_t* data, size_t size) {
  constexpr size_t kHeader = 4 + 4 + 4 * 6;
  check_prefix(data, size, kMagic, kVersion, kHeader, "attnkit ASAM layer weights");
  const int expect[] = {config_.dim, config_.num_heads, config_.dim_head, config_.num_clusters,
                        config_.gate_hidden_dim, gate_.num_pools()};
  const char* names[] = {"dim", "numHeads", "dimHead", "numClusters", "gateHiddenDim", "numPools"};
  for (int i = 0; i < 6; ++i) {
    const uint32_t saved = get_u32(data + 8 + 4 * i);
    if (saved != uint32_t(expect[i])) {
      throw_range("weights", std::string("were saved with ") + names[i] + " = " + std::to_string(saved) +
                                 ", this layer has " + std::to_string(expect[i]));
    }
  }
  check_size_and_checksum(data, size, kHeader + size_t(param_count()) * sizeof(float) + 4);
  NamedWeights named;
  size_t at = kHeader;
  for (const auto& p : named_parameters()) {
    named.emplace_back(p.name, std::vector<float>(size_t(p.count())));
    at = get_floats(data, at, named.back().second);
  }
  load_named(named);
}

ASAMEncoder::ASAMEncoder(const ASAMConfig& config, int num_layers) {
  require_positive("numLayers", num_layers);
  layers_.reserve(size_t(num_layers));
  for (int i = 0; i < num_layers; ++i) {
    ASAMConfig c = config;
    c.seed = derive_seed(config.seed, uint64_t(i));
    layers_.emplace_back(c);
  }
}

void ASAMEncoder::set_precision(WeightPrecision precision) {
  std::vector<ASAMLayer> layers = layers_;
  for (ASAMLayer& layer : layers) layer.set_precision(precision);
  layers_ = std::move(layers);
}

void ASAMEncoder::forward(int batch, int seq, const float* x, const MaskView& mask, float* out,
                          std::vector<ASAMInfo>* infos, ThreadPool* pool) const {
  require_positive("batch", batch);
  require_positive("seqLen", seq);
  if (x == nullptr) throw_type("x", "must be given");
  if (out == nullptr) throw_type("out", "must be given");
  if (infos != nullptr) infos->assign(layers_.size(), ASAMInfo{});
  const size_t size = size_t(batch) * seq * layers_.front().config().dim;
  std::vector<float> buffers[2];
  const float* in = x;
  for (size_t i = 0; i < layers_.size(); ++i) {
    float* dst = out;
    if (i + 1 < layers_.size()) {
      buffers[i % 2].resize(size);
      dst = buffers[i % 2].data();
    }
    layers_[i].forward(batch, seq, in, mask, dst, infos != nullptr ? &(*infos)[i] : nullptr, pool);
    in = dst;
  }
}

}  // namespace attn::asam
