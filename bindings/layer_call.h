// What the call structs of the flash and layer handles (multi-head, dense, adaptive precision) encode as
// plain numbers for embind, decoded once here: the mask (maskKind 0 none, 1 additive float,
// 2 boolean uint8, at heap address `mask`, with its strides) and the causal rule (0 none,
// 1 top-left, 2 bottom-right).
#pragma once
#include <cstdint>

#include "flash/flash_params.h"
#include "heap_address.h"

namespace attn::bindings {

template <class Call>
MaskView call_mask(const Call& c) {
  MaskView mask;
  if (c.maskKind == 1) mask.additive = address<const float>(c.mask);
  if (c.maskKind == 2) mask.allowed = address<const uint8_t>(c.mask);
  mask.batch_stride = static_cast<int64_t>(c.maskBatchStride);
  mask.head_stride = static_cast<int64_t>(c.maskHeadStride);
  mask.row_stride = static_cast<int64_t>(c.maskRowStride);
  return mask;
}

inline CausalAlign causal_align(int code) {
  return code == 1 ? CausalAlign::kTopLeft : code == 2 ? CausalAlign::kBottomRight : CausalAlign::kNone;
}

}  // namespace attn::bindings
