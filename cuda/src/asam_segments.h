// ASAM's random and clustered patterns on the GPU (asam_segments.cu), called by
// asam_forward after it has checked the common arguments.
#pragma once
#include "attn_cuda/asam.h"

namespace attn::cuda::detail {

// Each query block's key blocks gathered after one another, one flash call whose segment
// ids keep every query to its own block's gathered keys.
void asam_random_forward(const AsamForwardArgs& args);

// Queries and keys sorted by nearest centroid (a stable radix sort), one flash call whose
// segment ids are the clusters, the output scattered back to the queries' rows.
void asam_clustered_forward(const AsamForwardArgs& args);

}  // namespace attn::cuda::detail
