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
// How: the keys of one residue class mod s are, in a contiguous [batch, n, heads, d]
// tensor, the same memory seen as [batch, n / s, s * heads, d] (rows s apart, the classes as
// extra heads), so each dilated part is one flash call over every class at once, on a band
// of the class (keys an earlier part covers cut out: a band with a hole is two windows).
// `random` and `clustered` are not on the GPU yet (AttnError naming `pattern`).
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
  float scale = 0.0f;                      // 0 = 1 / sqrt(head_dim)
  cudaStream_t stream = nullptr;
};

// Checks every argument (throws attn::AttnError naming the parameter) and runs the parts on
// args.stream.
void asam_forward(const AsamForwardArgs& args);

}  // namespace attn::cuda
