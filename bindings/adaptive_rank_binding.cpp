// embind surface of AdaptiveRankAttention (src/adaattn/adaptive_rank_attention.h) and of the
// bare Nyström kernel (low_rank_attention.h). Every entry point that can fail returns "" or
// an encoded error; statistics come back as a plain JS object built here.
#include <emscripten/bind.h>
#include <emscripten/val.h>

#include <cmath>
#include <string>

#include "adaattn/adaptive_rank_attention.h"
#include "adaattn/low_rank_attention.h"
#include "bindings/runtime_binding.h"
#include "error_translation.h"
#include "heap_address.h"
#include "named_staging.h"

namespace attn::bindings {

namespace {

using emscripten::val;

struct AdaptiveRankInit {
  int embedDim = 0, numHeads = 1;
  double rankRatio = 0.5, adaptiveThreshold = 0.95, maxSampledError = 0.05, seed = 0;
  std::string rankEstimationMethod = "entropy";
};

AdaptiveRankConfig to_config(const AdaptiveRankInit& i) {
  AdaptiveRankConfig c;
  c.embed_dim = i.embedDim;
  c.num_heads = i.numHeads;
  c.rank_ratio = static_cast<float>(i.rankRatio);
  c.method = parse_rank_method(i.rankEstimationMethod, "rankEstimationMethod");
  c.adaptive_threshold = static_cast<float>(i.adaptiveThreshold);
  c.max_sampled_error = static_cast<float>(i.maxSampledError);
  c.seed = static_cast<uint64_t>(i.seed);
  return c;
}

// forward(): q/k/v are query/key/value [batch][seq][embedDim]; attend(): projected Q, K, V
// [batch][seq][heads][headDim]. maskKind 0 none, 1 additive, 2 boolean, [seqQ][seqK]
// broadcast over batch (maskBatchStride = 0) or one per batch element; causal 0 / 1 top-left.
struct AdaptiveRankCall {
  int batch = 1, seqQ = 0, seqK = 0, maskKind = 0, causal = 0;
  double maskBatchStride = 0;
  double q = 0, k = 0, v = 0, out = 0, mask = 0;  // heap addresses
};

MaskView mask_of(const AdaptiveRankCall& c) {
  MaskView m;
  if (c.maskKind == 1) m.additive = address<const float>(c.mask);
  if (c.maskKind == 2) m.allowed = address<const uint8_t>(c.mask);
  m.batch_stride = static_cast<int64_t>(c.maskBatchStride);
  m.row_stride = c.seqK;
  return m;
}

std::string validate_adaptive_rank(const AdaptiveRankInit& init) {
  return guarded([&] { AdaptiveRankAttention::validated(to_config(init)); });
}

// NaN / ±inf (no sample, no estimate yet) become null.
val number_or_null(double x) { return std::isfinite(x) ? val(x) : val::null(); }

class AdaptiveRankHandle {
 public:
  explicit AdaptiveRankHandle(const AdaptiveRankInit& init) : layer_(to_config(init)) {}

  std::string forward(const AdaptiveRankCall& c) {
    return guarded([&] {
      layer_.forward(c.batch, c.seqQ, c.seqK, address<const float>(c.q), address<const float>(c.k),
                     address<const float>(c.v), mask_of(c), c.causal ? CausalAlign::kTopLeft : CausalAlign::kNone,
                     address<float>(c.out), shared_pool());
    });
  }
  std::string attend(const AdaptiveRankCall& c) {
    return guarded([&] {
      layer_.attend(c.batch, c.seqQ, c.seqK, address<const float>(c.q), address<const float>(c.k),
                    address<const float>(c.v), mask_of(c), c.causal ? CausalAlign::kTopLeft : CausalAlign::kNone,
                    address<float>(c.out), shared_pool());
    });
  }

  // { calls, seqQ, seqK, lastCall: [{ batch, head, lowRank, rank, estimate, sampledError, reason }],
  //   perHead: [{ head, lowRank, dense, rejected, estimated, meanEstimate, minEstimate, maxEstimate }] }
  val statistics() const {
    const RankStatistics& s = layer_.statistics();
    val o = val::object();
    o.set("calls", double(s.calls));
    o.set("seqQ", s.last_seq_q);
    o.set("seqK", s.last_seq_k);
    val last = val::array();
    for (const HeadDecision& d : s.last_call) {
      val e = val::object();
      e.set("batch", d.batch);
      e.set("head", d.head);
      e.set("lowRank", d.low_rank);
      e.set("rank", d.rank);
      e.set("estimate", number_or_null(d.estimate));
      e.set("sampledError", number_or_null(d.sampled_error));
      e.set("reason", std::string(rank_reason_name(d.reason)));
      last.call<void>("push", e);
    }
    o.set("lastCall", last);
    val heads = val::array();
    for (size_t h = 0; h < s.per_head.size(); ++h) {
      const HeadTotals& t = s.per_head[h];
      val e = val::object();
      e.set("head", int(h));
      e.set("lowRank", double(t.low_rank));
      e.set("dense", double(t.dense));
      e.set("rejected", double(t.rejected));
      e.set("estimated", double(t.estimated));
      e.set("meanEstimate", number_or_null(t.estimated ? t.estimate_sum / double(t.estimated) : NAN));
      e.set("minEstimate", number_or_null(t.estimate_min));
      e.set("maxEstimate", number_or_null(t.estimate_max));
      heads.call<void>("push", e);
    }
    o.set("perHead", heads);
    return o;
  }
  void resetStatistics() { layer_.reset_statistics(); }
  int rank() const { return layer_.rank(); }
  double paramCount() const { return static_cast<double>(layer_.param_count()); }

  // "name:count,..." of each weight.
  std::string parameterSizes() const {
    std::string all;
    for (const auto& p : layer_.named_parameters()) {
      if (!all.empty()) all += ',';
      all += p.name + ':' + std::to_string(p.count());
    }
    return all;
  }
  std::string stageNamed(const std::string& name, double src, double count) { return staged_.stage(name, src, count); }
  std::string commitNamed() {
    const NamedWeights staged = staged_.take();
    return guarded([&] { layer_.load_named(staged); });
  }
  // Copies weight `name` into dst (its parameterSizes() count of floats).
  std::string readWeight(const std::string& name, double dst) const {
    return guarded([&] {
      for (const auto& p : layer_.named_parameters()) {
        if (p.name == name) {
          std::copy(p.data, p.data + p.count(), address<float>(dst));
          return;
        }
      }
      throw_range("name", "is not a weight of this layer: " + name);
    });
  }

 private:
  AdaptiveRankAttention layer_;
  NamedStaging staged_;
};

// The bare Nyström kernel in the flash layout; scale <= 0: 1/sqrt(headDim).
struct LowRankCall {
  int batch = 1, seqQ = 0, seqK = 0, headsQ = 1, headsKv = 1, headDim = 0, valueDim = 0, landmarks = 0;
  double scale = 0;
  double q = 0, k = 0, v = 0, out = 0;
};

std::string low_rank_attention(const LowRankCall& c) {
  return guarded([&] {
    low_rank_forward({c.batch, c.seqQ, c.seqK, c.headsQ, c.headsKv, c.headDim, c.valueDim},
                     static_cast<float>(c.scale), c.landmarks,
                     {address<const float>(c.q), address<const float>(c.k), address<const float>(c.v),
                      address<float>(c.out), nullptr},
                     shared_pool());
  });
}

}  // namespace

}  // namespace attn::bindings

EMSCRIPTEN_BINDINGS(attn_adaptive_rank) {
  using namespace attn::bindings;
  emscripten::value_object<AdaptiveRankInit>("AdaptiveRankInit")
      .field("embedDim", &AdaptiveRankInit::embedDim)
      .field("numHeads", &AdaptiveRankInit::numHeads)
      .field("rankRatio", &AdaptiveRankInit::rankRatio)
      .field("rankEstimationMethod", &AdaptiveRankInit::rankEstimationMethod)
      .field("adaptiveThreshold", &AdaptiveRankInit::adaptiveThreshold)
      .field("maxSampledError", &AdaptiveRankInit::maxSampledError)
      .field("seed", &AdaptiveRankInit::seed);
  emscripten::value_object<AdaptiveRankCall>("AdaptiveRankCall")
      .field("batch", &AdaptiveRankCall::batch)
      .field("seqQ", &AdaptiveRankCall::seqQ)
      .field("seqK", &AdaptiveRankCall::seqK)
      .field("maskKind", &AdaptiveRankCall::maskKind)
      .field("maskBatchStride", &AdaptiveRankCall::maskBatchStride)
      .field("causal", &AdaptiveRankCall::causal)
      .field("q", &AdaptiveRankCall::q)
      .field("k", &AdaptiveRankCall::k)
      .field("v", &AdaptiveRankCall::v)
      .field("out", &AdaptiveRankCall::out)
      .field("mask", &AdaptiveRankCall::mask);
  emscripten::value_object<LowRankCall>("LowRankCall")
      .field("batch", &LowRankCall::batch)
      .field("seqQ", &LowRankCall::seqQ)
      .field("seqK", &LowRankCall::seqK)
      .field("headsQ", &LowRankCall::headsQ)
      .field("headsKv", &LowRankCall::headsKv)
      .field("headDim", &LowRankCall::headDim)
      .field("valueDim", &LowRankCall::valueDim)
      .field("landmarks", &LowRankCall::landmarks)
      .field("scale", &LowRankCall::scale)
      .field("q", &LowRankCall::q)
      .field("k", &LowRankCall::k)
      .field("v", &LowRankCall::v)
      .field("out", &LowRankCall::out);
  emscripten::function("validateAdaptiveRank", &validate_adaptive_rank);
  emscripten::function("lowRankAttention", &low_rank_attention);
  emscripten::class_<AdaptiveRankHandle>("AdaptiveRankHandle")
      .function("forward", &AdaptiveRankHandle::forward)
      .function("attend", &AdaptiveRankHandle::attend)
      .function("statistics", &AdaptiveRankHandle::statistics)
      .function("resetStatistics", &AdaptiveRankHandle::resetStatistics)
      .function("rank", &AdaptiveRankHandle::rank)
      .function("paramCount", &AdaptiveRankHandle::paramCount)
      .function("parameterSizes", &AdaptiveRankHandle::parameterSizes)
      .function("stageNamed", &AdaptiveRankHandle::stageNamed)
      .function("commitNamed", &AdaptiveRankHandle::commitNamed)
      .function("readWeight", &AdaptiveRankHandle::readWeight);
  emscripten::function("makeAdaptiveRankHandle", &attn::bindings::construct_guarded<attn::bindings::AdaptiveRankHandle, attn::bindings::AdaptiveRankInit>,
                       emscripten::allow_raw_pointers());
}
