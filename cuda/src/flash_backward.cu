// flash_backward: checks the arguments, runs the backward kernels for the (dtype, head dim)
// pair (launch_flash_bwd: D = rowsum(dout * out) and the kernel), then writes dq (and dbias)
// from their float32 scratch into the caller's tensors.
#include <algorithm>
#include <cmath>
#include <string>

#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "attn_cuda/flash_backward.h"
#include "bwd_params.h"
#include "convert.h"
#include "cuda_check.h"
#include "stream_buffer.h"
#include "runtime/errors.h"
#include "sm90_dispatch.h"
#include "tensor_checks.h"

namespace attn::cuda {

using detail::launch_store;
using detail::StreamBuffer;
namespace {

using detail::BwdParams;

// --- argument checks (same messages as the forward's) --------------------------------------

using detail::check_device_memory;
using detail::check_rank;
using detail::check_dtype_in;
using detail::check_pair_tensor;
using detail::check_row_alignment;
using detail::check_shape;
using detail::shape_string;

// q / k / v / out / dout / dq / dk / dv: rows read and written with vector access.
void check_dense(const char* name, const TensorView& t, std::initializer_list<DType> dtypes,
                 const int64_t (&shape)[4], const char* layout) {
  detail::check_row_tensor(name, t, dtypes, shape, layout, true);
}

detail::BwdStrides4 pair_strides(const std::array<int64_t, 4>& s) { return {s[0], s[1], s[2], s[3]}; }

struct Checked {
  BwdParams p;
  DType dtype;
  int head_dim;
};

detail::BwdStrides3 strides3(const TensorView& t) { return {t.stride[0], t.stride[1], t.stride[2]}; }

Checked check(const FlashBackwardArgs& a) {
  const detail::AttentionDims dims = detail::check_attention_dims(
      a.q, a.k, {DType::kFloat16, DType::kBFloat16}, "float16 or bfloat16 (backward)", "backward kernel");
  const DType dtype = a.q.dtype;
  const int64_t batch = dims.batch, seq_q = dims.seq_q, heads_q = dims.heads_q, dim = dims.head_dim;
  const int64_t seq_k = dims.seq_k, heads_kv = dims.heads_kv;
  const int64_t q_shape[4] = {batch, seq_q, heads_q, dim};
  const int64_t kv_shape[4] = {batch, seq_k, heads_kv, dim};
  const char* q_layout = "[batch, seq_q, heads_q, head_dim]";
  const char* kv_layout = "[batch, seq_k, heads_kv, head_dim]";
  check_dense("q", a.q, {dtype}, q_shape, q_layout);
  check_dense("k", a.k, {dtype}, kv_shape, kv_layout);
  check_dense("v", a.v, {dtype}, kv_shape, kv_layout);
  check_dense("out", a.out, {dtype}, q_shape, q_layout);
  check_dense("dout", a.dout, {dtype}, q_shape, q_layout);
  check_dense("dq", a.dq, {dtype, DType::kFloat32}, q_shape, q_layout);
  check_dense("dk", a.dk, {dtype, DType::kFloat32}, kv_shape, kv_layout);
  check_dense("dv", a.dv, {dtype, DType::kFloat32}, kv_shape, kv_layout);

  if (!a.lse.defined()) throw_type("lse", "is required (the forward's lse output)");
  check_rank("lse", a.lse, 3);
  if (a.lse.dtype != DType::kFloat32) throw_type("lse", std::string("dtype must be float32, got ") + dtype_name(a.lse.dtype));
  if (a.lse.shape[0] != batch || a.lse.shape[1] != heads_q || a.lse.shape[2] != seq_q) {
    throw_range("lse", "shape must be [batch, heads_q, seq_q] = [" + std::to_string(batch) + ", " +
                           std::to_string(heads_q) + ", " + std::to_string(seq_q) + "], got " + shape_string(a.lse));
  }
  check_device_memory("lse", a.lse.data);

  detail::check_attention_options(a.scale, a.softcap, a.dropout, a.causal);

  Checked c;
  c.dtype = dtype;
  c.head_dim = static_cast<int>(dim);
  BwdParams& p = c.p;
  p.batch = static_cast<int>(batch);
  p.seq_q = static_cast<int>(seq_q);
  p.seq_k = static_cast<int>(seq_k);
  p.heads_q = static_cast<int>(heads_q);
  p.heads_kv = static_cast<int>(heads_kv);
  p.group = static_cast<int>(heads_q / heads_kv);
  p.head_dim = c.head_dim;
  p.causal = a.causal != Causal::kNone;
  p.causal_offset = a.causal == Causal::kBottomRight ? seq_k - seq_q : 0;
  p.scale = a.scale > 0 ? a.scale : static_cast<float>(1.0 / std::sqrt(double(dim)));
  p.scale_log2 = p.scale * 1.4426950408889634f;
  p.softcap = a.softcap;
  p.dropout = a.dropout > 0.0f;
  p.rng = attn::DropoutRng(a.seed, a.dropout);
  p.q = a.q.data;
  p.k = a.k.data;
  p.v = a.v.data;
  p.dout = a.dout.data;
  p.out = a.out.data;
  p.o_stride = strides3(a.out);
  p.q_stride = strides3(a.q);
  p.k_stride = strides3(a.k);
  p.v_stride = strides3(a.v);
  p.do_stride = strides3(a.dout);
  p.dk = a.dk.data;
  p.dv = a.dv.data;
  p.dk_stride = strides3(a.dk);
  p.dv_stride = strides3(a.dv);
  p.dk_float = a.dk.dtype == DType::kFloat32;
  p.dv_float = a.dv.dtype == DType::kFloat32;
  p.lse = static_cast<const float*>(a.lse.data);
  p.lse_stride = {a.lse.stride[0], a.lse.stride[2], a.lse.stride[1]};

  const int64_t pair_shape[4] = {batch, heads_kv, seq_q, seq_k};
  if (a.bias.defined()) {
    p.bias_stride = pair_strides(check_pair_tensor("bias", a.bias, {dtype, DType::kFloat32}, pair_shape));
    p.bias = a.bias.data;
    p.bias_dtype = static_cast<int>(a.bias.dtype);
  }
  if (a.active_mask.defined()) {
    p.active_stride = pair_strides(check_pair_tensor("active_mask", a.active_mask, {dtype, DType::kFloat32, DType::kUInt8}, pair_shape));
    p.active = a.active_mask.data;
    p.active_dtype = static_cast<int>(a.active_mask.dtype);
  }
  if (a.dbias.defined()) {
    check_rank("dbias", a.dbias, 4);
    if (a.dbias.dtype != dtype && a.dbias.dtype != DType::kFloat32) {
      throw_type("dbias", std::string("dtype must be ") + dtype_name(dtype) + " or float32, got " + dtype_name(a.dbias.dtype));
    }
    check_shape("dbias", a.dbias, pair_shape, "[batch, heads_kv, seq_q, seq_k]");
    check_device_memory("dbias", a.dbias.data);
  }
  return c;
}


template <typename T>
cudaError_t launch_kernels(const BwdParams& p, int head_dim, cudaStream_t stream) {
  return head_dim == 64 ? detail::launch_flash_bwd<T, 64>(p, stream) : detail::launch_flash_bwd<T, 128>(p, stream);
}

}  // namespace

void validate_flash_backward(const FlashBackwardArgs& args) { (void)check(args); }

void flash_backward(const FlashBackwardArgs& args) {
  Checked c = check(args);
  BwdParams& p = c.p;
  cudaStream_t stream = args.stream;
  const size_t rows = size_t(p.batch) * p.heads_q * p.seq_q;
  StreamBuffer delta(sizeof(float) * rows, stream);
  StreamBuffer dq(sizeof(float) * rows * c.head_dim, stream);
  StreamBuffer counters(sizeof(int) * detail::bwd_counter_ints(p.batch, p.seq_q), stream);
  const size_t pairs = args.dbias.defined() ? size_t(p.batch) * p.heads_kv * p.seq_q * p.seq_k : 0;
  StreamBuffer dbias(sizeof(float) * pairs, stream);
  // (the dQ scratch is zeroed within launch_flash_bwd)
  if (pairs > 0) check_cuda(cudaMemsetAsync(dbias.get(), 0, sizeof(float) * pairs, stream), "dbias scratch");
  p.delta = delta.as<float>();
  p.dq_accum = dq.as<float>();
  p.dbias_accum = pairs > 0 ? dbias.as<float>() : nullptr;
  p.counters = counters.as<int>();

  if (c.dtype == DType::kBFloat16) {
    check_cuda(launch_kernels<__nv_bfloat16>(p, c.head_dim, stream), "flash backward");
  } else {
    check_cuda(launch_kernels<__half>(p, c.head_dim, stream), "flash backward");
  }
  // On Hopper, placed while the backward kernel ends (dependent_launch.cuh).
  check_cuda(launch_store(dq.as<float>(), p.scale, args.dq, stream, detail::use_sm90_kernels()), "dq store");
  if (pairs > 0) check_cuda(launch_store(dbias.as<float>(), 1.0f, args.dbias, stream), "dbias store");
}

}  // namespace attn::cuda
