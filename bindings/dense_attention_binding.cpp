// embind surface of DenseAttention (src/adaattn/dense_attention.h): a handle whose every
// method returns "" or an encoded error (never a C++ exception into JS). JS validates the
// configuration with validateDenseAttention() first (no weights are built for it), so the
// constructor cannot fail on bad options; makeDenseAttentionHandle (construct_guarded) turns a
// failed allocation into an error too.
#include <emscripten/bind.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "adaattn/dense_attention.h"
#include "bindings/runtime_binding.h"
#include "error_translation.h"
#include "heap_address.h"
#include "layer_call.h"
#include "multihead_weights.h"
#include "named_staging.h"

namespace attn::bindings {

namespace {

struct DenseInit {
  int embedDim = 0, numHeads = 1;
  double dropout = 0;
  bool causal = false, bias = true;
  double seed = 0;
};

DenseConfig to_config(const DenseInit& i) {
  return {i.embedDim, i.numHeads, static_cast<float>(i.dropout), i.causal, i.bias, static_cast<uint64_t>(i.seed)};
}

struct DenseCall {
  int batch = 1, seqQ = 0, seqK = 0;
  int maskKind = 0;  // 0 none, 1 additive float, 2 boolean uint8
  double maskBatchStride = 0, maskHeadStride = 0, maskRowStride = 0;
  double query = 0, key = 0, value = 0, out = 0, weights = 0, mask = 0;  // heap addresses; weights 0 = not asked
};

std::string validate_dense(const DenseInit& init) {
  return guarded([&] { DenseAttention::validated(to_config(init)); });
}

class DenseHandle {
 public:
  explicit DenseHandle(const DenseInit& init) : m_(to_config(init)) {}

  std::string forward(const DenseCall& c) {
    return guarded([&] {
      const MaskView mask = call_mask(c);
      m_.forward(c.batch, c.seqQ, c.seqK, address<const float>(c.query), address<const float>(c.key),
                 address<const float>(c.value), mask, address<float>(c.out), address<float>(c.weights),
                 shared_pool());
    });
  }

  void setTraining(bool training) { m_.set_training(training); }
  bool training() const { return m_.training(); }
  double nextDropoutSeed() const { return static_cast<double>(m_.next_dropout_seed()); }

  const DenseAttention& model() const { return m_; }
  DenseAttention& model() { return m_; }
  NamedStaging& staging() { return staged_; }

 private:
  DenseAttention m_;
  NamedStaging staged_;
};

}  // namespace

}  // namespace attn::bindings

EMSCRIPTEN_BINDINGS(attn_dense_attention) {
  using attn::bindings::DenseCall;
  using attn::bindings::DenseHandle;
  using attn::bindings::DenseInit;
  emscripten::value_object<DenseInit>("DenseInit")
      .field("embedDim", &DenseInit::embedDim)
      .field("numHeads", &DenseInit::numHeads)
      .field("dropout", &DenseInit::dropout)
      .field("causal", &DenseInit::causal)
      .field("bias", &DenseInit::bias)
      .field("seed", &DenseInit::seed);
  emscripten::value_object<DenseCall>("DenseCall")
      .field("batch", &DenseCall::batch)
      .field("seqQ", &DenseCall::seqQ)
      .field("seqK", &DenseCall::seqK)
      .field("maskKind", &DenseCall::maskKind)
      .field("maskBatchStride", &DenseCall::maskBatchStride)
      .field("maskHeadStride", &DenseCall::maskHeadStride)
      .field("maskRowStride", &DenseCall::maskRowStride)
      .field("query", &DenseCall::query)
      .field("key", &DenseCall::key)
      .field("value", &DenseCall::value)
      .field("out", &DenseCall::out)
      .field("weights", &DenseCall::weights)
      .field("mask", &DenseCall::mask);
  emscripten::function("validateDenseAttention", &attn::bindings::validate_dense);
  // The weights methods (savedBytes, saveInto, load, stageNamed, commitNamed, paramCount).
  attn::bindings::bind_multihead_weights(
      emscripten::class_<DenseHandle>("DenseAttentionHandle")
          .function("forward", &DenseHandle::forward)
          .function("setTraining", &DenseHandle::setTraining)
          .function("training", &DenseHandle::training)
          .function("nextDropoutSeed", &DenseHandle::nextDropoutSeed));
  emscripten::function("makeDenseAttentionHandle", &attn::bindings::construct_guarded<attn::bindings::DenseHandle, attn::bindings::DenseInit>,
                       emscripten::allow_raw_pointers());
}
