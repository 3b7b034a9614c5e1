// asam_forward: ASAM's local, strided and hierarchical patterns as a sequence of windowed
// flash_forward calls ("parts" with disjoint keys), each over every residue class of its
// step at once, merged into float32 accumulators through their log-sum-exp (as the CPU core's
// merge_attention_row), then stored in out's dtype (convert.h's launch_store). Random and
// clustered go to asam_segments.cu.
#include <algorithm>
#include <cmath>
#include <string>

#include "attn_cuda/asam.h"
#include "asam_segments.h"
#include "attn_cuda/flash.h"
#include "convert.h"
#include "cuda_check.h"
#include "mma_sm80.cuh"
#include "runtime/errors.h"
#include "stream_buffer.h"
#include "tensor_checks.h"

namespace attn::cuda {
namespace {

using detail::check_device_memory;
using detail::check_rank;
using detail::check_shape;
using detail::StreamBuffer;

// Where a part's rows land: class index p of residue first + g (g < groups) mod step is row
// first + g + p * step of the sequence; the part's buffers are [batch][m][groups * heads][dv]
// and [batch][groups * heads][m], rows below row_begin untouched by the part's call.
struct PartRows {
  int64_t step, first, groups, m, row_begin;
};

// acc_out (float32 [b][n][h][dv]) and acc_lse ([b][h][n]) become the softmax over their keys
// and the part's (disjoint) ones; one warp per part row.
template <typename T>
__global__ void merge_part_kernel(const T* part_out, const float* part_lse, PartRows r, int batch, int n, int heads,
                                  int dv, float* acc_out, float* acc_lse) {
  const int64_t row = (int64_t{blockIdx.x} * blockDim.x + threadIdx.x) >> 5;
  const int lane = threadIdx.x & 31;
  const int64_t gh = r.groups * heads;
  if (row >= int64_t{batch} * r.m * gh) return;
  const int64_t hh_all = row % gh, p = (row / gh) % r.m, b = row / (gh * r.m);
  if (p < r.row_begin) return;
  const float lp = part_lse[(b * gh + hh_all) * r.m + p];
  if (lp == -INFINITY) return;  // no keys in this part
  const int64_t g = hh_all / heads, hh = hh_all % heads, i = r.first + g + p * r.step;
  float* lse = acc_lse + (b * heads + hh) * n + i;
  const float la = *lse, top = fmaxf(la, lp);
  const float wa = la == -INFINITY ? 0.0f : expf(la - top), wp = expf(lp - top), inv = 1.0f / (wa + wp);
  float* dst = acc_out + ((b * n + i) * heads + hh) * dv;
  const T* src = part_out + ((b * r.m + p) * gh + hh_all) * dv;
  for (int c = lane; c < dv; c += 32) dst[c] = (dst[c] * wa + detail::to_float(src[c]) * wp) * inv;
  __syncwarp();
  if (lane == 0) *lse = top + logf(wa + wp);
}

__global__ void fill_kernel(float* x, int64_t count, float value) {
  for (int64_t i = int64_t{blockIdx.x} * blockDim.x + threadIdx.x; i < count; i += int64_t{gridDim.x} * blockDim.x)
    x[i] = value;
}

unsigned blocks_for(int64_t threads) { return static_cast<unsigned>(std::min<int64_t>((threads + 255) / 256, 65535)); }

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
  Parts(const AsamForwardArgs& a, cudaStream_t stream)
      : a_(a), batch_(a.q.shape[0]), n_(a.q.shape[1]), heads_(a.q.shape[2]), dv_(a.v.shape[3]),
        acc_out_(sizeof(float) * batch_ * n_ * heads_ * dv_, stream), acc_lse_(sizeof(float) * batch_ * heads_ * n_, stream),
        part_out_(dtype_bytes(a.q.dtype) * batch_ * n_ * heads_ * dv_, stream),
        part_lse_(sizeof(float) * batch_ * heads_ * n_, stream), stream_(stream) {
    check_cuda(cudaMemsetAsync(acc_out_.get(), 0, sizeof(float) * batch_ * n_ * heads_ * dv_, stream), "asam scratch");
    fill_kernel<<<blocks_for(batch_ * heads_ * n_), 256, 0, stream>>>(acc_lse_.as<float>(), batch_ * heads_ * n_, -INFINITY);
    check_cuda(cudaGetLastError(), "asam scratch");
  }

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

  // out <- acc_out, lse (if given) <- acc_lse: both in their tensors' logical order.
  void store() {
    check_cuda(detail::launch_store(acc_out_.as<float>(), 1.0f, a_.out, stream_), "asam store");
    if (a_.lse.defined()) {
      TensorView lse = a_.lse;  // [batch, heads, n] as rank 4 with a last dimension of 1
      lse.rank = 4, lse.shape[3] = 1, lse.stride[3] = 1;
      check_cuda(detail::launch_store(acc_lse_.as<float>(), 1.0f, lse, stream_), "asam store");
    }
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
    FlashForwardArgs f;
    f.q = class_view(a_.q, step, first, groups, rows, q_shift);
    f.k = class_view(a_.k, step, first, groups, key_rows, k_shift);
    f.v = class_view(a_.v, step, first, groups, key_rows, k_shift);
    // The part's own contiguous buffers, its rows from q_shift on.
    f.out = a_.out;
    f.out.data = static_cast<char*>(part_out_.get()) + q_shift * gh * dv_ * dtype_bytes(a_.q.dtype);
    f.out.shape[1] = rows, f.out.shape[2] = gh, f.out.shape[3] = dv_;
    f.out.stride[0] = m * gh * dv_, f.out.stride[1] = gh * dv_, f.out.stride[2] = dv_, f.out.stride[3] = 1;
    f.lse.data = part_lse_.as<float>() + q_shift;
    f.lse.dtype = DType::kFloat32;
    f.lse.rank = 3;
    f.lse.shape[0] = batch_, f.lse.shape[1] = gh, f.lse.shape[2] = rows;
    f.lse.stride[0] = gh * m, f.lse.stride[1] = m, f.lse.stride[2] = 1;
    f.scale = a_.scale;
    f.window_left = left;
    f.window_right = right;
    f.stream = stream_;
    flash_forward(f);
    const PartRows r{step, first, groups, m, q_shift};
    const int64_t warps = batch_ * m * gh;
    const auto launch = [&](auto* part) {
      merge_part_kernel<<<blocks_for(warps * 32), 256, 0, stream_>>>(part, part_lse_.as<float>(), r, int(batch_), int(n_),
                                                                       int(heads_), int(dv_), acc_out_.as<float>(),
                                                                       acc_lse_.as<float>());
    };
    if (a_.q.dtype == DType::kFloat16) launch(static_cast<const __half*>(part_out_.get()));
    else launch(static_cast<const __nv_bfloat16*>(part_out_.get()));
    check_cuda(cudaGetLastError(), "asam merge");
  }

  const AsamForwardArgs& a_;
  int64_t batch_, n_, heads_, dv_;
  StreamBuffer acc_out_, acc_lse_, part_out_, part_lse_;
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
    FlashForwardArgs f;
    f.q = a.q, f.k = a.k, f.v = a.v, f.out = a.out, f.lse = a.lse;
    f.scale = a.scale;
    f.window_left = f.window_right = half;
    f.stream = a.stream;
    flash_forward(f);
    return;
  }
  if (a.pattern == AsamPattern::kRandom) return detail::asam_random_forward(a);
  if (a.pattern == AsamPattern::kClustered) return detail::asam_clustered_forward(a);
  Parts parts(a, a.stream);
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
