// The flash forward with segment ids (FwdParams::q_segment / k_segment): key j is visible to
// query i only when their segments match. Internal: ASAM's random and clustered patterns
// (asam_segments.cu) lay their keys out so that each query's keys form its own segment.
#pragma once
#include <cstdint>

#include "attn_cuda/flash.h"

namespace attn::cuda::detail {

struct SegmentIds {
  // [batch][heads_q][seq_q] and [batch][heads_kv][seq_k] int32, non-decreasing along the
  // sequence (the kernel finds each query block's keys by binary search); batch strides
  // may be 0 (the same segments for every batch).
  const int32_t* q = nullptr;
  const int32_t* k = nullptr;
  int64_t q_batch_stride = 0, k_batch_stride = 0;
};

// flash_forward (its checks included) restricted to equal segments; float16 / bfloat16.
void flash_forward_segmented(const FlashForwardArgs& args, const SegmentIds& segments);

}  // namespace attn::cuda::detail
