// embind surface of ASAMLayer and ASAMEncoder (src/asam/asam_layer.h): one handle class that
// holds a layer (numLayers = 0) or an encoder; every method that can fail returns "" or an
// encoded error (never a C++ exception into JS). The info of the last forward stays in the
// handle and is read back per layer as a JS object of views that JS copies at once.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "asam/asam_layer.h"
#include "asam/hybrid_asam.h"
#include "bindings/runtime_binding.h"
#include "error_translation.h"
#include "heap_address.h"
#include "named_staging.h"

namespace attn::bindings {

namespace {

using asam::ASAMConfig;
using asam::ASAMEncoder;
using asam::ASAMInfo;
using asam::ASAMLayer;
using emscripten::val;

struct ASAMInit {
  int dim = 512, numHeads = 8, dimHead = 0, windowSize = 128, stride = 32, numClusters = 32;
  int gateHiddenDim = 128, blockSize = 64;
  int numLayers = 0;  // 0: a single ASAMLayer; else an ASAMEncoder of that many layers
  bool useAdaptiveGate = true;
  double dropout = 0.1, confidenceThreshold = 0.5, seed = 0;
  std::string patternType = "hierarchical";
};

ASAMConfig to_config(const ASAMInit& i) {
  ASAMConfig c;
  c.dim = i.dim;
  c.num_heads = i.numHeads;
  c.dim_head = i.dimHead;
  c.dropout = static_cast<float>(i.dropout);
  c.pattern_type = i.patternType;
  c.window_size = i.windowSize;
  c.stride = i.stride;
  c.num_clusters = i.numClusters;
  c.use_adaptive_gate = i.useAdaptiveGate;
  c.gate_hidden_dim = i.gateHiddenDim;
  c.confidence_threshold = static_cast<float>(i.confidenceThreshold);
  c.block_size = i.blockSize;
  c.seed = static_cast<uint64_t>(i.seed);
  return c;
}

struct ASAMCall {
  int batch = 1, seq = 0;
  bool wantInfo = false;
  double x = 0, out = 0;  // heap addresses
};

std::string validate_asam(const ASAMInit& init) {
  return guarded([&] {
    const ASAMConfig c = asam::validate_asam_config(to_config(init));
    if (init.numLayers < 0) throw_range("numLayers", "must be a positive integer");
    // Each layer fits (validate_asam_config); an encoder of millions of them would not.
    const double layer_bytes =
        sizeof(float) * (4.0 * c.dim * c.inner_dim() + double(c.dim) * c.gate_hidden_dim + double(c.inner_dim()) * c.num_clusters);
    if (layer_bytes * init.numLayers > 4294967296.0) {
      throw_range("numLayers", "the layers' weights (" + std::to_string(static_cast<long long>(layer_bytes)) +
                                   " bytes each) do not fit in the 4 GiB WebAssembly heap");
    }
  });
}

// "name:count,..." of named weights.
std::string sizes_string(const std::vector<ParameterView>& params) {
  std::string all;
  for (const auto& p : params) {
    if (!all.empty()) all += ',';
    all += p.name + ':' + std::to_string(p.count());
  }
  return all;
}

template <typename T>
val view_of(const std::vector<T>& v) {
  return val(emscripten::typed_memory_view(v.size(), v.data()));
}

class ASAMHandle {
 public:
  explicit ASAMHandle(const ASAMInit& init) {
    const ASAMConfig config = to_config(init);
    if (init.numLayers == 0) {
      layer_ = std::make_unique<ASAMLayer>(config);
    } else {
      encoder_ = std::make_unique<ASAMEncoder>(config, init.numLayers);
    }
  }

  std::string forward(const ASAMCall& c) {
    return guarded([&] {
      infos_.clear();
      const MaskView no_mask;
      if (layer_) {
        ASAMInfo info;
        layer_->forward(c.batch, c.seq, address<const float>(c.x), no_mask, address<float>(c.out),
                        c.wantInfo ? &info : nullptr, shared_pool());
        if (c.wantInfo) infos_.push_back(std::move(info));
      } else {
        encoder_->forward(c.batch, c.seq, address<const float>(c.x), no_mask, address<float>(c.out),
                          c.wantInfo ? &infos_ : nullptr, shared_pool());
      }
    });
  }

  int infoCount() const { return static_cast<int>(infos_.size()); }
  // { gateValues, confidence, patternLogits (views: copy them at once), patterns, mixed,
  //   sparseRatio, visitedBlocks, denseBlocks, computedScores, denseScores, densePathScores }
  val info(int layer) const {
    const ASAMInfo& i = infos_.at(size_t(layer));
    val o = val::object();
    o.set("gateValues", view_of(i.gate_values));
    o.set("confidence", view_of(i.confidence));
    o.set("patternLogits", view_of(i.pattern_logits));
    o.set("mixed", view_of(i.mixed));
    val patterns = val::array();
    for (asam::PatternType p : i.patterns) patterns.call<void>("push", std::string(asam::pattern_name(p)));
    o.set("patterns", patterns);
    o.set("sparseRatio", i.sparse_ratio);
    o.set("visitedBlocks", double(i.sparse_stats.visited_blocks));
    o.set("denseBlocks", double(i.sparse_stats.dense_blocks));
    o.set("computedScores", double(i.sparse_stats.computed_scores));
    o.set("denseScores", double(i.sparse_stats.dense_scores));
    o.set("densePathScores", double(i.dense_path_scores));
    return o;
  }

  // Weights: a layer's own; an encoder's layer by index.
  double savedBytes(int layer) const { return static_cast<double>(target(layer).save().size()); }
  std::string saveInto(int layer, double dst, double capacity) const {
    return guarded([&] {
      const auto bytes = target(layer).save();
      if (double(bytes.size()) > capacity) throw_range("weights", "destination too small");
      std::memcpy(address<uint8_t>(dst), bytes.data(), bytes.size());
    });
  }
  std::string load(int layer, double src, double size) {
    return guarded([&] { target(layer).load(address<const uint8_t>(src), static_cast<size_t>(size)); });
  }
  std::string stageNamed(const std::string& name, double src, double count) { return staged_.stage(name, src, count); }
  std::string commitNamed(int layer) {
    const NamedWeights staged = staged_.take();
    return guarded([&] { target(layer).load_named(staged); });
  }
  // "name:count,..." of each weight of a layer, for JS to check names and sizes.
  std::string parameterSizes() const { return sizes_string(target(0).named_parameters()); }

  // Every layer's projections as 'fp32', 'fp16' or 'int8' (all layers or none).
  std::string setPrecision(const std::string& precision) {
    return guarded([&] {
      const WeightPrecision p = parse_precision(precision);
      if (layer_) {
        layer_->set_precision(p);
      } else {
        encoder_->set_precision(p);
      }
    });
  }
  std::string precision() const { return precision_name(target(0).precision()); }
  double weightBytes() const {
    if (layer_) return static_cast<double>(layer_->projection_weight_bytes());
    double total = 0;
    for (int i = 0; i < encoder_->num_layers(); ++i) total += static_cast<double>(encoder_->layer(i).projection_weight_bytes());
    return total;
  }

  double paramCount() const {
    if (layer_) return static_cast<double>(layer_->param_count());
    double total = 0;
    for (int i = 0; i < encoder_->num_layers(); ++i) total += static_cast<double>(encoder_->layer(i).param_count());
    return total;
  }

 private:
  ASAMLayer& target(int layer) { return layer_ ? *layer_ : encoder_->layer(layer); }
  const ASAMLayer& target(int layer) const { return layer_ ? *layer_ : encoder_->layer(layer); }

  std::unique_ptr<ASAMLayer> layer_;
  std::unique_ptr<ASAMEncoder> encoder_;
  std::vector<ASAMInfo> infos_;
  NamedStaging staged_;
};

// HybridASAM: a sliding window plus global tokens with the layer's projections.
struct HybridInit {
  ASAMInit layer;
  int localWindowSize = 512, numGlobalTokens = 1;
};

std::string validate_hybrid(const HybridInit& init) {
  return guarded([&] { asam::HybridASAM::validated(to_config(init.layer), init.localWindowSize, init.numGlobalTokens); });
}

class HybridHandle {
 public:
  explicit HybridHandle(const HybridInit& init)
      : h_(to_config(init.layer), init.localWindowSize, init.numGlobalTokens) {}

  std::string forward(const ASAMCall& c) {
    return guarded([&] {
      asam::HybridInfo info;
      h_.forward(c.batch, c.seq, address<const float>(c.x), MaskView{}, address<float>(c.out), &info, shared_pool());
      last_ = info;
    });
  }
  // { sparseRatio, visitedBlocks, denseBlocks, computedScores, denseScores, globalScores }
  val info() const {
    val o = val::object();
    o.set("sparseRatio", last_.sparse_ratio);
    o.set("visitedBlocks", double(last_.local_stats.visited_blocks));
    o.set("denseBlocks", double(last_.local_stats.dense_blocks));
    o.set("computedScores", double(last_.local_stats.computed_scores));
    o.set("denseScores", double(last_.local_stats.dense_scores));
    o.set("globalScores", double(last_.global_scores));
    return o;
  }
  std::string stageNamed(const std::string& name, double src, double count) { return staged_.stage(name, src, count); }
  std::string commitNamed() {
    const NamedWeights staged = staged_.take();
    return guarded([&] { h_.load_named(staged); });
  }
  std::string parameterSizes() const { return sizes_string(h_.named_parameters()); }
  std::string setPrecision(const std::string& precision) {
    return guarded([&] { h_.set_precision(parse_precision(precision)); });
  }
  std::string precision() const { return precision_name(h_.precision()); }
  double weightBytes() const { return static_cast<double>(h_.projection_weight_bytes()); }

 private:
  asam::HybridASAM h_;
  asam::HybridInfo last_;
  NamedStaging staged_;
};

}  // namespace

}  // namespace attn::bindings

EMSCRIPTEN_BINDINGS(attn_asam_layer) {
  using attn::bindings::ASAMCall;
  using attn::bindings::ASAMHandle;
  using attn::bindings::ASAMInit;
  emscripten::value_object<ASAMInit>("ASAMInit")
      .field("dim", &ASAMInit::dim)
      .field("numHeads", &ASAMInit::numHeads)
      .field("dimHead", &ASAMInit::dimHead)
      .field("windowSize", &ASAMInit::windowSize)
      .field("stride", &ASAMInit::stride)
      .field("numClusters", &ASAMInit::numClusters)
      .field("gateHiddenDim", &ASAMInit::gateHiddenDim)
      .field("blockSize", &ASAMInit::blockSize)
      .field("numLayers", &ASAMInit::numLayers)
      .field("useAdaptiveGate", &ASAMInit::useAdaptiveGate)
      .field("dropout", &ASAMInit::dropout)
      .field("confidenceThreshold", &ASAMInit::confidenceThreshold)
      .field("seed", &ASAMInit::seed)
      .field("patternType", &ASAMInit::patternType);
  emscripten::value_object<ASAMCall>("ASAMCall")
      .field("batch", &ASAMCall::batch)
      .field("seq", &ASAMCall::seq)
      .field("wantInfo", &ASAMCall::wantInfo)
      .field("x", &ASAMCall::x)
      .field("out", &ASAMCall::out);
  emscripten::function("validateASAM", &attn::bindings::validate_asam);
  using attn::bindings::HybridHandle;
  using attn::bindings::HybridInit;
  emscripten::value_object<HybridInit>("HybridInit")
      .field("layer", &HybridInit::layer)
      .field("localWindowSize", &HybridInit::localWindowSize)
      .field("numGlobalTokens", &HybridInit::numGlobalTokens);
  emscripten::function("validateHybridASAM", &attn::bindings::validate_hybrid);
  emscripten::class_<HybridHandle>("HybridASAMHandle")
      .function("forward", &HybridHandle::forward)
      .function("info", &HybridHandle::info)
      .function("stageNamed", &HybridHandle::stageNamed)
      .function("commitNamed", &HybridHandle::commitNamed)
      .function("parameterSizes", &HybridHandle::parameterSizes)
      .function("setPrecision", &HybridHandle::setPrecision)
      .function("precision", &HybridHandle::precision)
      .function("weightBytes", &HybridHandle::weightBytes);
  emscripten::class_<ASAMHandle>("ASAMHandle")
      .function("forward", &ASAMHandle::forward)
      .function("infoCount", &ASAMHandle::infoCount)
      .function("info", &ASAMHandle::info)
      .function("savedBytes", &ASAMHandle::savedBytes)
      .function("saveInto", &ASAMHandle::saveInto)
      .function("load", &ASAMHandle::load)
      .function("stageNamed", &ASAMHandle::stageNamed)
      .function("commitNamed", &ASAMHandle::commitNamed)
      .function("parameterSizes", &ASAMHandle::parameterSizes)
      .function("paramCount", &ASAMHandle::paramCount)
      .function("setPrecision", &ASAMHandle::setPrecision)
      .function("precision", &ASAMHandle::precision)
      .function("weightBytes", &ASAMHandle::weightBytes);
  emscripten::function("makeHybridASAMHandle", &attn::bindings::construct_guarded<attn::bindings::HybridHandle, attn::bindings::HybridInit>,
                       emscripten::allow_raw_pointers());
  emscripten::function("makeASAMHandle", &attn::bindings::construct_guarded<attn::bindings::ASAMHandle, attn::bindings::ASAMInit>,
                       emscripten::allow_raw_pointers());
}
