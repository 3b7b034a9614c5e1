// ASAM's random and clustered patterns on the GPU (asam_segments.cu), called by
// asam_forward after it has checked the common arguments, and the flash arguments every
// pattern starts from.
#pragma once
#include "attn_cuda/asam.h"
#include "attn_cuda/flash.h"

namespace attn::cuda::detail {

// The flash call of the whole pattern's q, k, v, out, lse, scale and stream (the parts set
// their own views and windows).
FlashForwardArgs asam_flash_args(const AsamForwardArgs& args);

// Each query block's key blocks gathered after one another, one flash call whose segment
// ids keep every query to its own block's gathered keys.
void asam_random_forward(const AsamForwardArgs& args);

// Queries and keys sorted by nearest centroid (a stable radix sort), one flash call whose
// segment ids are the clusters, the output scattered back to the queries' rows.
void asam_clustered_forward(const AsamForwardArgs& args);

}  // namespace attn::cuda::detail
