// embind surface of the flash forward: JS copies tensors into the heap and passes
// their addresses in a FlashCall; the call returns "" or an encoded error.
#include <emscripten/bind.h>

#include <cmath>
#include <cstdint>
#include <string>

#include "bindings/runtime_binding.h"
#include "error_translation.h"
#include "heap_address.h"
#include "layer_call.h"
#include "flash/flash_attention.h"

namespace attn::bindings {

namespace {

struct FlashCall {
  int batch = 1, seqQ = 0, seqK = 0, headsQ = 1, headsKv = 1, headDim = 0, valueDim = 0;
  double scale = NAN;  // NaN = 1/sqrt(headDim)
  double softcap = 0, dropout = 0, seed = 0;
  int causal = 0;  // 0 none, 1 top-left, 2 bottom-right
  int blockQ = 0, blockK = 0;
  int maskKind = 0;  // 0 none, 1 additive float, 2 boolean uint8
  double maskBatchStride = 0, maskHeadStride = 0, maskRowStride = 0;
  double q = 0, k = 0, v = 0, out = 0, lse = 0, mask = 0;  // heap addresses, 0 = absent
};

void to_core(const FlashCall& c, FlashShape& s, FlashOptions& o) {
  s = FlashShape{c.batch, c.seqQ, c.seqK, c.headsQ, c.headsKv, c.headDim, c.valueDim};
  if (!std::isnan(c.scale)) o.scale = static_cast<float>(c.scale);
  o.softcap = static_cast<float>(c.softcap);
  o.dropout = static_cast<float>(c.dropout);
  o.seed = static_cast<uint64_t>(c.seed);
  o.causal = causal_align(c.causal);
  o.block_q = c.blockQ;
  o.block_k = c.blockK;
  o.mask = call_mask(c);
}

std::string flash_forward_js(const FlashCall& c) {
  return guarded([&] {
    FlashShape s;
    FlashOptions o;
    to_core(c, s, o);
    flash_forward(s, o,
                  {address<const float>(c.q), address<const float>(c.k),
                   address<const float>(c.v), address<float>(c.out), address<float>(c.lse)},
                  shared_pool());
  });
}

std::string attention_scores_js(const FlashCall& c) {
  return guarded([&] {
    FlashShape s;
    FlashOptions o;
    to_core(c, s, o);
    attention_scores(s, o, address<const float>(c.q), address<const float>(c.k),
                     address<float>(c.out), shared_pool());
  });
}

std::string validate_flash_js(const FlashCall& c) {
  return guarded([&] {
    FlashShape s;
    FlashOptions o;
    to_core(c, s, o);
    validate_flash(s, o);
  });
}

double flash_flops_js(const FlashCall& c) {
  FlashShape s;
  FlashOptions o;
  to_core(c, s, o);
  return flash_flops(s, o.causal);
}

}  // namespace

}  // namespace attn::bindings

EMSCRIPTEN_BINDINGS(attn_flash) {
  using attn::bindings::FlashCall;
  emscripten::value_object<FlashCall>("FlashCall")
      .field("batch", &FlashCall::batch)
      .field("seqQ", &FlashCall::seqQ)
      .field("seqK", &FlashCall::seqK)
      .field("headsQ", &FlashCall::headsQ)
      .field("headsKv", &FlashCall::headsKv)
      .field("headDim", &FlashCall::headDim)
      .field("valueDim", &FlashCall::valueDim)
      .field("scale", &FlashCall::scale)
      .field("softcap", &FlashCall::softcap)
      .field("dropout", &FlashCall::dropout)
      .field("seed", &FlashCall::seed)
      .field("causal", &FlashCall::causal)
      .field("blockQ", &FlashCall::blockQ)
      .field("blockK", &FlashCall::blockK)
      .field("maskKind", &FlashCall::maskKind)
      .field("maskBatchStride", &FlashCall::maskBatchStride)
      .field("maskHeadStride", &FlashCall::maskHeadStride)
      .field("maskRowStride", &FlashCall::maskRowStride)
      .field("q", &FlashCall::q)
      .field("k", &FlashCall::k)
      .field("v", &FlashCall::v)
      .field("out", &FlashCall::out)
      .field("lse", &FlashCall::lse)
      .field("mask", &FlashCall::mask);
  emscripten::function("flashForward", &attn::bindings::flash_forward_js);
  emscripten::function("attentionScores", &attn::bindings::attention_scores_js);
  emscripten::function("validateFlash", &attn::bindings::validate_flash_js);
  emscripten::function("flashFlops", &attn::bindings::flash_flops_js);
}
