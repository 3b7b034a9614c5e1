// embind surface of MultiHeadAttention: a handle class whose every method returns "" or an
// encoded error (never a C++ exception into JS). JS validates the configuration with
// validateMultiHead() first (no weights are built for it), so the constructor cannot fail on
// bad options; makeMultiHeadHandle (construct_guarded) turns a failed allocation into an error too.
#include <emscripten/bind.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "bindings/runtime_binding.h"
#include "error_translation.h"
#include "heap_address.h"
#include "layer_call.h"
#include "multihead_weights.h"
#include "named_staging.h"
#include "multihead/multihead_attention.h"

namespace attn::bindings {

namespace {

struct MultiHeadInit {
  int modelDim = 0, heads = 1, kdim = 0, vdim = 0;
  bool bias = true;
  double dropout = 0, seed = 0;
};

MultiHeadConfig to_config(const MultiHeadInit& i) {
  return {i.modelDim, i.heads, i.kdim, i.vdim, i.bias, static_cast<float>(i.dropout), static_cast<uint64_t>(i.seed)};
}

struct MultiHeadCall {
  int batch = 1, seqQ = 0, seqK = 0;
  int causal = 0;    // 0 none, 1 top-left, 2 bottom-right
  int maskKind = 0;  // 0 none, 1 additive float, 2 boolean uint8
  double maskBatchStride = 0, maskHeadStride = 0, maskRowStride = 0;
  double query = 0, key = 0, value = 0, out = 0, mask = 0;  // heap addresses
};

std::string validate_multihead(const MultiHeadInit& init) {
  return guarded([&] { MultiHeadAttention::validated(to_config(init)); });
}

class MultiHeadHandle {
 public:
  explicit MultiHeadHandle(const MultiHeadInit& init) : m_(to_config(init)) {}

  std::string forward(const MultiHeadCall& c) {
    return guarded([&] {
      const MaskView mask = call_mask(c);
      const CausalAlign causal = causal_align(c.causal);
      m_.forward(c.batch, c.seqQ, c.seqK, address<const float>(c.query), address<const float>(c.key),
                 address<const float>(c.value), mask, causal, address<float>(c.out), shared_pool());
    });
  }

  void setTraining(bool training) { m_.set_training(training); }
  bool training() const { return m_.training(); }
  double nextDropoutSeed() const { return static_cast<double>(m_.next_dropout_seed()); }

  double weightsLength() const { return static_cast<double>(m_.last_weights_size()); }
  std::string attentionWeights(double out) const {
    return guarded([&] { m_.attention_weights(address<float>(out), shared_pool()); });
  }

  const MultiHeadAttention& model() const { return m_; }
  MultiHeadAttention& model() { return m_; }
  NamedStaging& staging() { return staged_; }

  // The projections' weights as 'fp32', 'fp16' or 'int8' (MultiHeadAttention::set_precision).
  std::string setPrecision(const std::string& precision) {
    return guarded([&] { m_.set_precision(parse_precision(precision)); });
  }
  std::string precision() const { return precision_name(m_.precision()); }
  double weightBytes() const { return static_cast<double>(m_.weight_bytes()); }

 private:
  MultiHeadAttention m_;
  NamedStaging staged_;
};

}  // namespace

}  // namespace attn::bindings

EMSCRIPTEN_BINDINGS(attn_multihead) {
  using attn::bindings::MultiHeadCall;
  using attn::bindings::MultiHeadHandle;
  using attn::bindings::MultiHeadInit;
  emscripten::value_object<MultiHeadInit>("MultiHeadInit")
      .field("modelDim", &MultiHeadInit::modelDim)
      .field("heads", &MultiHeadInit::heads)
      .field("kdim", &MultiHeadInit::kdim)
      .field("vdim", &MultiHeadInit::vdim)
      .field("bias", &MultiHeadInit::bias)
      .field("dropout", &MultiHeadInit::dropout)
      .field("seed", &MultiHeadInit::seed);
  emscripten::value_object<MultiHeadCall>("MultiHeadCall")
      .field("batch", &MultiHeadCall::batch)
      .field("seqQ", &MultiHeadCall::seqQ)
      .field("seqK", &MultiHeadCall::seqK)
      .field("causal", &MultiHeadCall::causal)
      .field("maskKind", &MultiHeadCall::maskKind)
      .field("maskBatchStride", &MultiHeadCall::maskBatchStride)
      .field("maskHeadStride", &MultiHeadCall::maskHeadStride)
      .field("maskRowStride", &MultiHeadCall::maskRowStride)
      .field("query", &MultiHeadCall::query)
      .field("key", &MultiHeadCall::key)
      .field("value", &MultiHeadCall::value)
      .field("out", &MultiHeadCall::out)
      .field("mask", &MultiHeadCall::mask);
  emscripten::function("validateMultiHead", &attn::bindings::validate_multihead);
  // The weights methods (savedBytes, saveInto, load, stageNamed, commitNamed, paramCount).
  attn::bindings::bind_multihead_weights(
      emscripten::class_<MultiHeadHandle>("MultiHeadHandle")
          .function("forward", &MultiHeadHandle::forward)
          .function("setTraining", &MultiHeadHandle::setTraining)
          .function("training", &MultiHeadHandle::training)
          .function("nextDropoutSeed", &MultiHeadHandle::nextDropoutSeed)
          .function("weightsLength", &MultiHeadHandle::weightsLength)
          .function("attentionWeights", &MultiHeadHandle::attentionWeights)
          .function("setPrecision", &MultiHeadHandle::setPrecision)
          .function("precision", &MultiHeadHandle::precision)
          .function("weightBytes", &MultiHeadHandle::weightBytes));
  emscripten::function("makeMultiHeadHandle", &attn::bindings::construct_guarded<attn::bindings::MultiHeadHandle, attn::bindings::MultiHeadInit>,
                       emscripten::allow_raw_pointers());
}
