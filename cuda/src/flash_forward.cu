// flash_forward: checks the arguments, flattens them into FwdParams, runs the mask
// pre-pass when a mask or keep window asks for it, and launches the kernel for the
// (dtype, head dim) pair.
#include <algorithm>
#include <cmath>
#include <string>

#include "attn_cuda/flash.h"
#include "convert.h"
#include "cuda_check.h"
#include "stream_buffer.h"
#include "fwd_launch.h"
#include "fwd_segments.h"
#include "mask_prepass.h"
#include "sm90_dispatch.h"
#include "runtime/errors.h"
#include "tensor_checks.h"

namespace attn::cuda {

using detail::StreamBuffer;
namespace {

using detail::FwdParams;

using detail::check_device_memory;
using detail::check_rank;
using detail::check_pair_tensor;
using detail::check_row_alignment;
using detail::check_shape;
using detail::shape_string;

// q / k / v / out: float32 ones are converted to bf16 first, so only 16-bit rows are read
// directly and need aligned rows.
void check_qkv(const char* name, const TensorView& t, DType dtype, const int64_t (&shape)[4],
               const char* layout) {
  detail::check_row_tensor(name, t, {dtype}, shape, layout, dtype != DType::kFloat32);
}

detail::Strides3Rows pair_strides(const std::array<int64_t, 4>& s) { return {s[0], s[1], s[2], s[3]}; }

struct Checked {
  FwdParams p;
  DType dtype;
  int head_dim;
  int64_t keep_window;
};

Checked check(const FlashForwardArgs& a) {
  const detail::AttentionDims dims = detail::check_attention_dims(
      a.q, a.k, {DType::kFloat16, DType::kBFloat16, DType::kFloat32}, "float16, bfloat16 or float32", "kernel");
  const DType dtype = a.q.dtype;
  const int64_t batch = dims.batch, seq_q = dims.seq_q, heads_q = dims.heads_q, dim = dims.head_dim;
  const int64_t seq_k = dims.seq_k, heads_kv = dims.heads_kv;
  const int64_t q_shape[4] = {batch, seq_q, heads_q, dim};
  const int64_t kv_shape[4] = {batch, seq_k, heads_kv, dim};
  check_qkv("q", a.q, dtype, q_shape, "[batch, seq_q, heads_q, head_dim]");
  check_qkv("k", a.k, dtype, kv_shape, "[batch, seq_k, heads_kv, head_dim]");
  check_qkv("v", a.v, dtype, kv_shape, "[batch, seq_k, heads_kv, head_dim]");
  check_qkv("out", a.out, dtype, q_shape, "[batch, seq_q, heads_q, head_dim]");
  if (dtype == DType::kFloat32) {
    for (int d = 0; d < 3; ++d) {
      if (a.out.stride[d] % 2 != 0) throw_range("out", "float32 strides must be even (8-byte pairs)");
    }
  }

  detail::check_attention_options(a.scale, a.softcap, a.dropout, a.causal);
  if (a.keep_window_size < 0) throw_range("keep_window_size", "must be >= 0 (0 = off)");
  if (a.window_left < -1) throw_range("window_left", "must be >= 0, or -1 for no limit");
  if (a.window_right < -1) throw_range("window_right", "must be >= 0, or -1 for no limit");
  if (a.keep_window_size > 0 && !a.bias.defined()) {
    throw_range("keep_window_size", "ranks keys by the bias (zoh): pass a bias");
  }

  Checked c;
  c.dtype = dtype;
  c.head_dim = static_cast<int>(dim);
  c.keep_window = a.keep_window_size;
  FwdParams& p = c.p;
  p.batch = static_cast<int>(batch);
  p.seq_q = static_cast<int>(seq_q);
  p.seq_k = static_cast<int>(seq_k);
  p.heads_q = static_cast<int>(heads_q);
  p.heads_kv = static_cast<int>(heads_kv);
  p.group = static_cast<int>(heads_q / heads_kv);
  p.q_tiles = static_cast<int>((seq_q + detail::kBlockM - 1) / detail::kBlockM);
  p.k_tiles = static_cast<int>((seq_k + detail::kBlockN - 1) / detail::kBlockN);
  p.causal = a.causal != Causal::kNone;
  p.causal_offset = a.causal == Causal::kBottomRight ? seq_k - seq_q : 0;
  p.window_left = a.window_left;
  p.window_right = a.window_right;
  p.scale = a.scale > 0 ? a.scale : static_cast<float>(1.0 / std::sqrt(double(dim)));
  p.scale_log2 = p.scale * 1.4426950408889634f;
  p.softcap = a.softcap;
  p.dropout = a.dropout > 0.0f;
  p.rng = attn::DropoutRng(a.seed, a.dropout);
  auto strides3 = [](const TensorView& t) { return detail::Strides3{t.stride[0], t.stride[1], t.stride[2]}; };
  p.q = a.q.data;
  p.k = a.k.data;
  p.v = a.v.data;
  p.out = a.out.data;
  p.q_stride = strides3(a.q);
  p.k_stride = strides3(a.k);
  p.v_stride = strides3(a.v);
  p.o_stride = strides3(a.out);

  const int64_t pair_shape[4] = {batch, heads_kv, seq_q, seq_k};
  const DType compute = dtype == DType::kFloat32 ? DType::kBFloat16 : dtype;
  if (a.bias.defined()) {
    p.bias_stride = pair_strides(check_pair_tensor("bias", a.bias, {dtype, DType::kFloat32}, pair_shape));
    p.bias = a.bias.data;
    p.bias_dtype = static_cast<int>(a.bias.dtype);
  }
  if (a.active_mask.defined()) {
    p.active_stride = pair_strides(check_pair_tensor("active_mask", a.active_mask,
                                                     {dtype, DType::kFloat32, DType::kUInt8}, pair_shape));
    p.active = a.active_mask.data;
    p.active_dtype = static_cast<int>(a.active_mask.dtype);
  }
  if (a.lse.defined()) {
    check_rank("lse", a.lse, 3);
    if (a.lse.dtype != DType::kFloat32) throw_type("lse", "dtype must be float32");
    if (a.lse.shape[0] != batch || a.lse.shape[1] != heads_q || a.lse.shape[2] != seq_q) {
      throw_range("lse", "shape must be [batch, heads_q, seq_q], got " + shape_string(a.lse));
    }
    check_device_memory("lse", a.lse.data);
    p.lse = static_cast<float*>(a.lse.data);
    p.lse_stride = {a.lse.stride[0], a.lse.stride[2], a.lse.stride[1]};
  }
  if (a.softmax.defined()) {
    check_rank("softmax", a.softmax, 4);
    if (a.softmax.dtype != compute) {
      throw_type("softmax", std::string("dtype must be ") + dtype_name(compute) + ", got " +
                                dtype_name(a.softmax.dtype));
    }
    const int64_t want[4] = {batch, heads_q, seq_q, seq_k};
    for (int d = 0; d < 4; ++d) {
      if (a.softmax.shape[d] != want[d]) {
        throw_range("softmax", "shape must be [batch, heads_q, seq_q, seq_k], got " + shape_string(a.softmax));
      }
    }
    if (a.softmax.stride[3] != 1) throw_range("softmax", "must be contiguous in the last dimension");
    check_device_memory("softmax", a.softmax.data);
    p.softmax = a.softmax.data;
    for (int d = 0; d < 4; ++d) p.softmax_stride[d] = a.softmax.stride[d];
  }
  return c;
}

template <typename T, typename OutT>
cudaError_t launch_for_dim(const FwdParams& p, int head_dim, cudaStream_t stream) {
  return head_dim == 64 ? detail::launch_flash_fwd<T, 64, OutT>(p, stream)
                        : detail::launch_flash_fwd<T, 128, OutT>(p, stream);
}


}  // namespace

namespace {

RngState run_forward(const FlashForwardArgs& args, Checked c) {
  FwdParams& p = c.p;
  cudaStream_t stream = args.stream;

  p.stage_rules = (p.bias != nullptr || p.active != nullptr) &&
                  detail::stageable(p.bias, dtype_bytes(static_cast<DType>(p.bias_dtype)), p.bias_stride, p.seq_k) &&
                  detail::stageable(p.active, dtype_bytes(static_cast<DType>(p.active_dtype)), p.active_stride, p.seq_k);
  const bool selects = c.keep_window > 0 && p.seq_k > c.keep_window;
  const bool prepass = selects || p.active != nullptr;
  StreamBuffer threshold(selects ? sizeof(float) * p.batch * p.heads_kv * size_t(p.seq_q) : 0, stream);
  StreamBuffer tiles(prepass ? size_t(p.batch) * p.heads_kv * p.q_tiles * p.k_tiles : 0, stream);
  // The Hopper forward reads the kept keys as bits (1/16 of a 16-bit mask's bytes).
  const bool kept_bits = prepass && c.dtype != DType::kFloat32 && detail::sm90_forward_applies(p, static_cast<int>(c.dtype));
  StreamBuffer bits(kept_bits ? size_t(p.batch) * p.heads_kv * p.seq_q * detail::kept_bits_row_bytes(p.seq_k) : 0, stream);
  if (prepass) {
    check_cuda(detail::launch_mask_prepass(p, c.keep_window, static_cast<float*>(threshold.get()),
                                           static_cast<uint8_t*>(tiles.get()), static_cast<uint8_t*>(bits.get()), stream),
               "mask pre-pass");
    p.row_threshold = static_cast<const float*>(threshold.get());
    p.tile_active = static_cast<const uint8_t*>(tiles.get());
    p.kept_bits = static_cast<const uint8_t*>(bits.get());
  }

  if (c.dtype == DType::kFloat32) {
    // bf16 copies of q, k, v (contiguous), float32 out.
    const size_t q_bytes = 2 * size_t(args.q.numel()), kv_bytes = 2 * size_t(args.k.numel());
    StreamBuffer q16(q_bytes, stream), k16(kv_bytes, stream), v16(kv_bytes, stream);
    check_cuda(detail::launch_to_bf16(args.q, q16.get(), stream), "q to bfloat16");
    check_cuda(detail::launch_to_bf16(args.k, k16.get(), stream), "k to bfloat16");
    check_cuda(detail::launch_to_bf16(args.v, v16.get(), stream), "v to bfloat16");
    const int64_t d = c.head_dim;
    p.q = q16.get();
    p.k = k16.get();
    p.v = v16.get();
    p.q_stride = {int64_t{p.seq_q} * p.heads_q * d, int64_t{p.heads_q} * d, d};
    p.k_stride = {int64_t{p.seq_k} * p.heads_kv * d, int64_t{p.heads_kv} * d, d};
    p.v_stride = p.k_stride;
    check_cuda(launch_for_dim<__nv_bfloat16, float>(p, c.head_dim, stream), "flash forward");
  } else if (c.dtype == DType::kBFloat16) {
    check_cuda(launch_for_dim<__nv_bfloat16, __nv_bfloat16>(p, c.head_dim, stream), "flash forward");
  } else {
    check_cuda(launch_for_dim<__half, __half>(p, c.head_dim, stream), "flash forward");
  }
  return RngState{args.seed, 0};
}

}  // namespace

void validate_flash_forward(const FlashForwardArgs& args) { (void)check(args); }

RngState flash_forward(const FlashForwardArgs& args) { return run_forward(args, check(args)); }

namespace detail {

void flash_forward_segmented(const FlashForwardArgs& args, const SegmentIds& segments) {
  Checked c = check(args);
  if (c.dtype == DType::kFloat32) throw_type("q", "segment ids need float16 or bfloat16 tensors");
  c.p.q_segment = segments.q;
  c.p.k_segment = segments.k;
  c.p.q_segment_batch_stride = segments.q_batch_stride;
  c.p.k_segment_batch_stride = segments.k_batch_stride;
  run_forward(args, c);
}

}  // namespace detail

double flash_forward_flops(int64_t batch, int64_t heads_q, int64_t seq_q, int64_t seq_k,
                           int64_t head_dim, Causal causal) {
  double pairs = double(seq_q) * double(seq_k);
  if (causal != Causal::kNone) {
    const int64_t offset = causal == Causal::kBottomRight ? seq_k - seq_q : 0;
    pairs = 0;
    for (int64_t i = 0; i < seq_q; ++i) {
      pairs += double(std::max<int64_t>(0, std::min<int64_t>(seq_k, i + offset + 1)));
    }
  }
  return 4.0 * double(batch) * double(heads_q) * pairs * double(head_dim);
}

}  // namespace attn::cuda
