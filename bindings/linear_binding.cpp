// embind surface of linear attention: JS copies q, k, v into the heap and passes their
// addresses in a LinearCall; the call returns "" or an encoded error.
#include <emscripten/bind.h>

#include <cstdint>
#include <string>

#include "bindings/runtime_binding.h"
#include "error_translation.h"
#include "heap_address.h"
#include "linear/linear_attention.h"

namespace attn::bindings {

namespace {

struct LinearCall {
  int batch = 1, seqQ = 0, seqK = 0, heads = 1, headDim = 0, valueDim = 0;
  int featureMap = 0;  // 0 elu, 1 relu, 2 dpfp
  bool causal = false;
  double eps = 1e-6;
  double q = 0, k = 0, v = 0, out = 0;  // heap addresses
};

std::string linear_attention_js(const LinearCall& c) {
  return guarded([&] {
    const LinearShape s{c.batch, c.seqQ, c.seqK, c.heads, c.headDim, c.valueDim};
    const LinearOptions o{static_cast<FeatureMap>(c.featureMap), c.causal, static_cast<float>(c.eps)};
    linear_attention(s, o, address<const float>(c.q), address<const float>(c.k), address<const float>(c.v),
                     address<float>(c.out), shared_pool());
  });
}

}  // namespace

}  // namespace attn::bindings

EMSCRIPTEN_BINDINGS(attn_linear) {
  using attn::bindings::LinearCall;
  emscripten::value_object<LinearCall>("LinearCall")
      .field("batch", &LinearCall::batch)
      .field("seqQ", &LinearCall::seqQ)
      .field("seqK", &LinearCall::seqK)
      .field("heads", &LinearCall::heads)
      .field("headDim", &LinearCall::headDim)
      .field("valueDim", &LinearCall::valueDim)
      .field("featureMap", &LinearCall::featureMap)
      .field("causal", &LinearCall::causal)
      .field("eps", &LinearCall::eps)
      .field("q", &LinearCall::q)
      .field("k", &LinearCall::k)
      .field("v", &LinearCall::v)
      .field("out", &LinearCall::out);
  emscripten::function("linearAttention", &attn::bindings::linear_attention_js);
}
