// ASAM's sparse patterns on NVIDIA GPUs: the same attention as the CPU core's
// asam::sparse_attention (src/asam/sparse_attention.h, which defines each pattern), built
// from the flash forward's windowed calls and merged exactly through their log-sum-exp.
//   q, k, v, out  [batch, n, heads, head_dim]  float16 or bfloat16, head dim 64 or 128;
//                 q, k, v with each row's heads contiguous (stride[1] = heads * stride[2])
//   lse           [batch, heads, n] float32, optional
// Patterns (query i, key j):
//   local         |i - j| <= window_size / 2
//   strided       |i - j| <= stride / 2, or j ≡ i (mod stride)
//   hierarchical  |i - j| <= window_size / 2, or for a scale s of `scales`,
//                 j ≡ i (mod s) and |i - j| <= s * (window_size / 2)
//   random        query block i / block_size attends its own key block and
//                 ceil(window_size / block_size) others drawn per (head, query block) from
//                 `seed` (src/asam/random_blocks.h: the CPU core's lists)
//   clustered     i attends j when both are nearest (largest dot product, lowest index on
//                 ties, float32) to the same of the head's centroids; a query whose cluster
//                 holds no key gets zeros (lse -inf)
// How: the keys of one residue class mod s are, in a contiguous [batch, n, heads, d]
// tensor, the same memory seen as [batch, n / s, s * heads, d] (rows s apart, the classes as
// extra heads), so each dilated part is one flash call over every class at once, on a band
// of the class (keys an earlier part covers cut out: a band with a hole is two windows).
// Random and clustered are one flash call with segment ids (asam_segments.cu): random
// gathers each query block's key blocks after one another, clustered sorts queries and
// keys by cluster; either way a query's keys become its own segment.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "attn_cuda/tensor.h"

namespace attn::cuda {

enum class AsamPattern : int { kLocal = 0, kStrided = 1, kHierarchical = 2, kRandom = 3, kClustered = 4 };

struct AsamForwardArgs {
  TensorView q, k, v, out;
  TensorView lse;  // optional
  AsamPattern pattern = AsamPattern::kHierarchical;
  int64_t window_size = 128;
  int64_t stride = 32;
  std::vector<int64_t> scales{4, 16, 64};  // hierarchical: increasing, each a multiple of the last
  int64_t block_size = 64;                 // random: queries / keys per block, a multiple of 32, <= 1024
  uint64_t seed = 0;                       // random
  TensorView centroids;                    // clustered: [heads, num_clusters, head_dim] float32, contiguous
  float scale = 0.0f;                      // 0 = 1 / sqrt(head_dim)
  cudaStream_t stream = nullptr;
};

// Checks every argument (throws attn::AttnError naming the parameter) and runs the parts on
// args.stream.
void asam_forward(const AsamForwardArgs& args);

}  // namespace attn::cuda
