// asam_forward: ASAM's local, strided and hierarchical patterns as a sequence of windowed
// flash_forward calls ("parts" with disjoint keys), each over every residue class of its
// step at once into its own buffers, then merged in one pass through their log-sum-exp (as
// the CPU core's merge_attention_row) straight into out. Random and clustered go to
// asam_segments.cu.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "asam_segments.h"
#include "attn_cuda/asam.h"
#include "attn_cuda/flash.h"
#include "cuda_check.h"
#include "grid_size.h"
#include "mma_sm80.cuh"
#include "runtime/errors.h"
#include "stream_buffer.h"
#include "tensor_checks.h"

namespace attn::cuda {
namespace {

using detail::blocks_for;
using detail::check_device_memory;
using detail::check_rank;
using detail::check_shape;
using detail::StreamBuffer;

// One part: its output [batch][m][groups * heads][dv] (q's dtype) and lse [batch][groups *
// heads][m], whose class index p of residue first + g (g < groups) mod step is row
// first + g + p * step of the sequence; rows p < row_begin were not computed.
struct PartDesc {
  const void* out;
  const float* lse;
  int64_t step, first, groups, m, row_begin;
};

// out (and lse) of every row (b, i, head): the softmax over all the parts' (disjoint) keys,
// from each part's row through its lse; zeros (lse -inf) where no part has a key. One warp
// per row: lane k finds part k's row (32-bit index arithmetic, all parts at once; a loop
// over the parts with 64-bit divisions had made the merge as slow as the parts' flash
// calls), then the warp adds them up, each lane kMaxLaneCols of the dv columns. Parts come
// in chunks of 32, merged online.
constexpr int kMaxLaneCols = 4;  // dv <= 128
template <typename T>
__global__ void merge_parts_kernel(const PartDesc* parts, int count, int batch, int n, int heads, int dv,
                                   TensorView out, float* lse_out, int64_t lse_batch, int64_t lse_head, int64_t lse_row) {
  const int64_t row = (int64_t{blockIdx.x} * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  if (row >= int64_t{batch} * n * heads) return;
  const int hh = static_cast<int>(row % heads), i = static_cast<int>((row / heads) % n);
  const int64_t b = row / (int64_t{heads} * n);
  float top = -INFINITY, total = 0.0f, acc[kMaxLaneCols] = {};
  for (int base = 0; base < count; base += 32) {
    // This lane's part: the offset of the row's output in it (-1: none) and its lse.
    int64_t at = -1;
    float l = -INFINITY;
    if (base + lane < count) {
      const PartDesc& d = parts[base + lane];
      const int r = i - static_cast<int>(d.first), step = static_cast<int>(d.step);
      const int g = r >= 0 ? r % step : 0, p = r >= 0 ? r / step : -1;
      if (r >= 0 && g < d.groups && p >= d.row_begin && p < d.m) {
        const int64_t gh = d.groups * heads, hh_all = int64_t{g} * heads + hh;
        l = d.lse[(b * gh + hh_all) * d.m + p];
        if (l != -INFINITY) at = ((b * d.m + p) * gh + hh_all) * dv;
      }
    }
    float chunk_top = l;
    for (int o = 16; o > 0; o >>= 1) chunk_top = fmaxf(chunk_top, __shfl_xor_sync(0xffffffffu, chunk_top, o));
    if (chunk_top == -INFINITY) continue;
    const float new_top = fmaxf(top, chunk_top), keep = top == -INFINITY ? 0.0f : expf(top - new_top);
    total *= keep;
#pragma unroll
    for (int c = 0; c < kMaxLaneCols; ++c) acc[c] *= keep;
    top = new_top;
    const float w = at >= 0 ? expf(l - top) : 0.0f;
    float w_sum = w;
    for (int o = 16; o > 0; o >>= 1) w_sum += __shfl_xor_sync(0xffffffffu, w_sum, o);
    total += w_sum;
    const int chunk = count - base < 32 ? count - base : 32;
    for (int k = 0; k < chunk; ++k) {
      const int64_t at_k = __shfl_sync(0xffffffffu, at, k);
      const float w_k = __shfl_sync(0xffffffffu, w, k);
      if (at_k < 0) continue;
      const T* src = static_cast<const T*>(parts[base + k].out) + at_k;
#pragma unroll
      for (int c = 0; c < kMaxLaneCols; ++c)
        if (lane + 32 * c < dv) acc[c] = fmaf(w_k, detail::to_float(src[lane + 32 * c]), acc[c]);
    }
  }
  const float inv = total > 0.0f ? 1.0f / total : 0.0f;
  T* dst = static_cast<T*>(out.data) + b * out.stride[0] + int64_t{i} * out.stride[1] + int64_t{hh} * out.stride[2];
#pragma unroll
  for (int c = 0; c < kMaxLaneCols; ++c)
    if (lane + 32 * c < dv) dst[(lane + 32 * c) * out.stride[3]] = detail::from_float<T>(acc[c] * inv);
  if (lse_out != nullptr && lane == 0) {
    lse_out[b * lse_batch + hh * lse_head + int64_t{i} * lse_row] = total > 0.0f ? top + logf(total) : -INFINITY;
  }
}

// rows [first + shift * step ...) of residue classes first.. first + groups - 1 mod step, m
// rows each: the same memory as [b][m][groups * heads][d] (rows of heads contiguous).
TensorView class_view(const TensorView& t, int64_t step, int64_t first, int64_t groups, int64_t m, int64_t shift) {
  TensorView v = t;
  v.data = static_cast<char*>(t.data) + (first + shift * step) * t.stride[1] * dtype_bytes(t.dtype);
  v.shape[1] = m;
  v.stride[1] = step * t.stride[1];
  v.shape[2] = groups * t.shape[2];
  return v;
}

class Parts {
 public:
  explicit Parts(const AsamForwardArgs& a)
      : a_(a), batch_(a.q.shape[0]), n_(a.q.shape[1]), heads_(a.q.shape[2]), dv_(a.v.shape[3]), stream_(a.stream) {}

  // Keys j of query i's residue class mod step with min <= |i - j| / step <= max (max < 0:
  // no limit), as the CPU core's run_band (step 1) and run_dilated.
  void add(int64_t step, int64_t min_distance, int64_t max_distance) {
    const int64_t classes = std::min(step, n_), longer = n_ % step, long_len = (n_ + step - 1) / step;
    const int64_t split = longer == 0 ? classes : longer;
    const int64_t groups[2][3] = {{0, split, long_len}, {split, classes, long_len - 1}};
    for (const auto& [first, last, m] : groups) {
      if (first >= last || m == 0) continue;
      const int64_t count = last - first;
      if (min_distance == 0) {  // one window around the diagonal
        run(step, first, count, m, 0, max_distance, max_distance, 0);
        continue;
      }
      const int64_t width = max_distance < 0 ? -1 : max_distance - min_distance;
      // Keys min..max class rows after the query: the keys' view starts min rows later.
      run(step, first, count, m, 0, 0, width, min_distance);
      // ... and before it: the queries' view starts min rows later (rows below get nothing).
      run(step, first, count, m, min_distance, width, 0, 0);
    }
  }

  // out and lse (if given) from every part, in one pass.
  void store() {
    StreamBuffer descs(sizeof(PartDesc) * descs_.size(), stream_);
    // From pageable memory: returns once descs_ has been staged.
    check_cuda(cudaMemcpyAsync(descs.get(), descs_.data(), sizeof(PartDesc) * descs_.size(), cudaMemcpyHostToDevice,
                               stream_),
               "asam parts");
    const int64_t warps = batch_ * n_ * heads_;
    float* lse = a_.lse.defined() ? static_cast<float*>(a_.lse.data) : nullptr;
    const auto launch = [&](auto* element) {
      using T = std::remove_pointer_t<decltype(element)>;
      merge_parts_kernel<T><<<blocks_for(warps * 32), 256, 0, stream_>>>(
          descs.as<PartDesc>(), int(descs_.size()), int(batch_), int(n_), int(heads_), int(dv_), a_.out, lse,
          a_.lse.stride[0], a_.lse.stride[1], a_.lse.stride[2]);
    };
    if (a_.q.dtype == DType::kFloat16) launch(static_cast<__half*>(nullptr));
    else launch(static_cast<__nv_bfloat16*>(nullptr));
    check_cuda(cudaGetLastError(), "asam merge");
  }

 private:
  // One flash call: the classes' queries from class row q_shift, keys from class row k_shift
  // (one of them 0), window (left, right) around j = i in the views; then its merge. Every
  // query row from q_shift on is written, so the merge reads no other part's leftovers.
  void run(int64_t step, int64_t first, int64_t groups, int64_t m, int64_t q_shift, int64_t left, int64_t right,
           int64_t k_shift) {
    const int64_t rows = m - q_shift, key_rows = m - q_shift - k_shift;
    if (key_rows <= 0) return;  // no query has keys in this part
    const int64_t gh = groups * heads_;
    buffers_.push_back(std::make_unique<StreamBuffer>(dtype_bytes(a_.q.dtype) * batch_ * m * gh * dv_, stream_));
    buffers_.push_back(std::make_unique<StreamBuffer>(sizeof(float) * batch_ * gh * m, stream_));
    void* part_out = buffers_[buffers_.size() - 2]->get();
    float* part_lse = buffers_.back()->as<float>();
    FlashForwardArgs f = detail::asam_flash_args(a_);  // scale, stream; views and windows below
    f.q = class_view(a_.q, step, first, groups, rows, q_shift);
    f.k = class_view(a_.k, step, first, groups, key_rows, k_shift);
    f.v = class_view(a_.v, step, first, groups, key_rows, k_shift);
    // The part's own contiguous buffers, its rows from q_shift on.
    f.out.data = static_cast<char*>(part_out) + q_shift * gh * dv_ * dtype_bytes(a_.q.dtype);
    f.out.shape[1] = rows, f.out.shape[2] = gh, f.out.shape[3] = dv_;
    f.out.stride[0] = m * gh * dv_, f.out.stride[1] = gh * dv_, f.out.stride[2] = dv_, f.out.stride[3] = 1;
    f.lse.data = part_lse + q_shift;
    f.lse.dtype = DType::kFloat32;
    f.lse.rank = 3;
    f.lse.shape[0] = batch_, f.lse.shape[1] = gh, f.lse.shape[2] = rows;
    f.lse.stride[0] = gh * m, f.lse.stride[1] = m, f.lse.stride[2] = 1;
    f.window_left = left;
    f.window_right = right;
    flash_forward(f);
    descs_.push_back(PartDesc{part_out, part_lse, step, first, groups, m, q_shift});
  }

  const AsamForwardArgs& a_;
  int64_t batch_, n_, heads_, dv_;
  std::vector<std::unique_ptr<StreamBuffer>> buffers_;  // each part's out and lse
  std::vector<PartDesc> descs_;
  cudaStream_t stream_;
};

void check(const AsamForwardArgs& a) {
  const char* names[4] = {"q", "k", "v", "out"};
  const TensorView* ts[4] = {&a.q, &a.k, &a.v, &a.out};
  for (int t = 0; t < 4; ++t) {
    check_rank(names[t], *ts[t], 4);
    if (ts[t]->dtype != DType::kFloat16 && ts[t]->dtype != DType::kBFloat16) throw_type(names[t], "dtype must be float16 or bfloat16");
    if (ts[t]->dtype != a.q.dtype) throw_type(names[t], "dtype must be q's");
  }
  const int64_t b = a.q.shape[0], n = a.q.shape[1], h = a.q.shape[2];
  check_shape("k", a.k, {b, n, h, a.q.shape[3]}, "[batch, n, heads, head_dim] (self-attention: q's shape)");
  check_shape("v", a.v, {b, n, h, a.v.shape[3]}, "[batch, n, heads, value_dim]");
  check_shape("out", a.out, {b, n, h, a.v.shape[3]}, "[batch, n, heads, value_dim]");
  for (int t = 0; t < 3; ++t) {
    if (ts[t]->stride[1] != ts[t]->shape[2] * ts[t]->stride[2]) {
      throw_range(names[t], "each row's heads must be contiguous (stride[1] = heads * stride[2]), e.g. .contiguous()");
    }
  }
  if (a.out.stride[3] != 1) throw_range("out", "must be contiguous in the last dimension");
  if (a.q.shape[3] != 64 && a.q.shape[3] != 128) throw_range("q", "head_dim must be 64 or 128");
  if (a.lse.defined()) {
    check_rank("lse", a.lse, 3);
    if (a.lse.dtype != DType::kFloat32) throw_type("lse", "dtype must be float32");
    if (a.lse.shape[0] != b || a.lse.shape[1] != h || a.lse.shape[2] != n) throw_range("lse", "shape must be [batch, heads, n]");
    check_device_memory("lse", a.lse.data);
  }
  if (a.window_size <= 0) throw_range("window_size", "must be > 0");
  if (a.stride <= 0) throw_range("stride", "must be > 0");
  switch (a.pattern) {
    case AsamPattern::kLocal:
    case AsamPattern::kStrided:
      break;
    case AsamPattern::kHierarchical: {
      int64_t previous = 1;
      for (int64_t s : a.scales) {
        if (s <= previous || s % previous != 0) throw_range("scales", "must increase, each a multiple of the one before (and > 1)");
        previous = s;
      }
      break;
    }
    case AsamPattern::kRandom:
      if (a.block_size < 32 || a.block_size > 1024 || a.block_size % 32 != 0) {
        throw_range("block_size", "must be a multiple of 32 in [32, 1024]");
      }
      break;
    case AsamPattern::kClustered: {
      const TensorView& c = a.centroids;
      if (!c.defined()) throw_type("centroids", "the clustered pattern needs centroids [heads, num_clusters, head_dim]");
      check_rank("centroids", c, 3);
      if (c.dtype != DType::kFloat32) throw_type("centroids", "dtype must be float32");
      if (c.shape[0] != h || c.shape[1] < 1 || c.shape[2] != a.q.shape[3]) {
        throw_range("centroids", "shape must be [heads, num_clusters >= 1, head_dim]");
      }
      if (c.stride[2] != 1 || c.stride[1] != c.shape[2] || c.stride[0] != c.shape[1] * c.shape[2]) {
        throw_range("centroids", "must be contiguous");
      }
      if (b * h * c.shape[1] > (int64_t{1} << 31)) throw_range("centroids", "batch * heads * num_clusters must be < 2^31");
      check_device_memory("centroids", c.data);
      break;
    }
    default:
      throw_range("pattern", "must be local (0), strided (1), hierarchical (2), random (3) or clustered (4)");
  }
}

}  // namespace

void asam_forward(const AsamForwardArgs& a) {
  check(a);  // q / k / v / out themselves are checked again by each flash call
  const int64_t half = a.window_size / 2;
  if (a.pattern == AsamPattern::kLocal) {  // one part: the flash call writes out and lse itself
    FlashForwardArgs f = detail::asam_flash_args(a);
    f.window_left = f.window_right = half;
    flash_forward(f);
    return;
  }
  if (a.pattern == AsamPattern::kRandom) return detail::asam_random_forward(a);
  if (a.pattern == AsamPattern::kClustered) return detail::asam_clustered_forward(a);
  Parts parts(a);
  switch (a.pattern) {
    case AsamPattern::kStrided:
      parts.add(1, 0, a.stride / 2);
      parts.add(a.stride, a.stride / 2 / a.stride + 1, -1);
      break;
    default: {  // hierarchical
      parts.add(1, 0, half);
      int64_t previous = 1;
      for (int64_t step : a.scales) {
        parts.add(step, previous * half / step + 1, half);
        previous = step;
      }
      break;
    }
  }
  parts.store();
}

}  // namespace attn::cuda
