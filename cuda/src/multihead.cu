// Multi-head / cross attention: cuBLAS projections around flash_forward (multihead.h).
#include "attn_cuda/multihead.h"

#include <string>

#include "cublas_gemm.h"
#include "cuda_check.h"
#include "mma_sm80.cuh"
#include "runtime/errors.h"
#include "stream_buffer.h"
#include "strided.cuh"
#include "tensor_checks.h"

namespace attn::cuda {

namespace {

using detail::RowMajor;
using detail::StreamBuffer;

// x[r][c] += bias[c] for a contiguous [rows][cols] matrix.
template <typename T>
__global__ void add_bias_kernel(T* x, const T* bias, int64_t rows, int64_t cols) {
  const int64_t count = rows * cols;
  for (int64_t i = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; i < count;
       i += int64_t{gridDim.x} * blockDim.x) {
    x[i] = detail::from_float<T>(detail::to_float(x[i]) + detail::to_float(bias[i % cols]));
  }
}

void add_bias(void* x, const TensorView& bias, int64_t rows, int64_t cols, cudaStream_t stream) {
  if (!bias.defined() || rows == 0) return;
  const int blocks = detail::stride_blocks(rows * cols);
  switch (bias.dtype) {
    case DType::kFloat16:
      add_bias_kernel<<<blocks, detail::kStrideThreads, 0, stream>>>(static_cast<__half*>(x), static_cast<const __half*>(bias.data), rows, cols);
      break;
    case DType::kBFloat16:
      add_bias_kernel<<<blocks, detail::kStrideThreads, 0, stream>>>(static_cast<__nv_bfloat16*>(x),
                                                  static_cast<const __nv_bfloat16*>(bias.data), rows, cols);
      break;
    default:
      add_bias_kernel<<<blocks, detail::kStrideThreads, 0, stream>>>(static_cast<float*>(x), static_cast<const float*>(bias.data), rows, cols);
      break;
  }
  check_cuda(cudaGetLastError(), "bias add");
}

void check_contiguous(const char* name, const TensorView& t) {
  int64_t expect = 1;
  for (int d = t.rank - 1; d >= 0; --d) {
    if (t.shape[d] > 1 && t.stride[d] != expect) {
      throw_range(name, "must be contiguous (row-major), got shape " + detail::shape_string(t) +
                            " with stride " + std::to_string(t.stride[d]) + " in dimension " + std::to_string(d));
    }
    expect *= t.shape[d];
  }
}

void check_same_dtype(const char* name, const TensorView& t, DType dtype) {
  if (t.dtype != dtype) {
    throw_type(name, std::string("must have the query's dtype (") + dtype_name(dtype) + "), got " + dtype_name(t.dtype));
  }
}

// A [rows, cols] weight with contiguous rows.
void check_weight(const char* name, const TensorView& w, int64_t rows, int64_t cols, DType dtype) {
  if (!w.defined()) throw_type(name, "is required");
  detail::check_rank(name, w, 2);
  check_same_dtype(name, w, dtype);
  if (w.shape[0] != rows || w.shape[1] != cols) {
    throw_range(name, "shape must be [" + std::to_string(rows) + ", " + std::to_string(cols) + "], got " +
                          detail::shape_string(w));
  }
  if (w.stride[1] != 1 || w.stride[0] < cols) throw_range(name, "rows must be contiguous (stride [>= cols, 1])");
  detail::check_device_memory(name, w.data);
}

void check_bias(const char* name, const TensorView& b, int64_t size, DType dtype) {
  if (!b.defined()) return;
  detail::check_rank(name, b, 1);
  check_same_dtype(name, b, dtype);
  if (b.shape[0] != size) {
    throw_range(name, "shape must be [" + std::to_string(size) + "], got " + detail::shape_string(b));
  }
  if (b.stride[0] != 1) throw_range(name, "must be contiguous");
  detail::check_device_memory(name, b.data);
}

void check_sequence(const char* name, const TensorView& t, DType dtype) {
  if (!t.defined()) throw_type(name, "is required");
  detail::check_rank(name, t, 3);
  check_same_dtype(name, t, dtype);
  check_contiguous(name, t);
  detail::check_device_memory(name, t.data);
}

}  // namespace

void multihead_forward(const MultiHeadWeights& w, const MultiHeadArgs& a) {
  if (!a.query.defined()) throw_type("query", "is required");
  const DType dtype = a.query.dtype;
  if (dtype != DType::kFloat16 && dtype != DType::kBFloat16 && dtype != DType::kFloat32) {
    throw_type("query", std::string("dtype must be float16, bfloat16 or float32, got ") + dtype_name(dtype));
  }
  check_sequence("query", a.query, dtype);
  check_sequence("key", a.key, dtype);
  check_sequence("value", a.value, dtype);
  check_sequence("out", a.out, dtype);
  const int64_t batch = a.query.shape[0], seq_q = a.query.shape[1], embed = a.query.shape[2];
  const int64_t seq_k = a.key.shape[1], kdim = a.key.shape[2], vdim = a.value.shape[2];
  if (a.key.shape[0] != batch) throw_range("key", "batch must match query's (" + std::to_string(batch) + ")");
  if (a.value.shape[0] != batch || a.value.shape[1] != seq_k) {
    throw_range("value", "shape must be [batch, seq_k, vdim] with query's batch and key's seq_k, got " +
                             detail::shape_string(a.value));
  }
  if (a.out.shape[0] != batch || a.out.shape[1] != seq_q || a.out.shape[2] != embed) {
    throw_range("out", "shape must be [batch, seq_q, embed] = " + detail::shape_string(a.query) + ", got " +
                           detail::shape_string(a.out));
  }
  if (a.heads < 1) throw_range("heads", "must be positive, got " + std::to_string(a.heads));
  if (embed % a.heads != 0) {
    throw_range("heads", "must divide embed (" + std::to_string(embed) + "), got " + std::to_string(a.heads));
  }
  const int64_t head_dim = embed / a.heads;
  if (head_dim != 64 && head_dim != 128) {
    throw_range("heads", "embed / heads must be 64 or 128 (the GPU kernels' head dims), got " + std::to_string(head_dim));
  }
  check_weight("q_weight", w.q_weight, embed, embed, dtype);
  check_weight("k_weight", w.k_weight, embed, kdim, dtype);
  check_weight("v_weight", w.v_weight, embed, vdim, dtype);
  check_weight("out_weight", w.out_weight, embed, embed, dtype);
  check_bias("q_bias", w.q_bias, embed, dtype);
  check_bias("k_bias", w.k_bias, embed, dtype);
  check_bias("v_bias", w.v_bias, embed, dtype);
  check_bias("out_bias", w.out_bias, embed, dtype);

  // Q, K, V and the heads' outputs as [rows][embed], i.e. [batch, seq, heads, head_dim].
  cudaStream_t stream = a.stream;
  const size_t elem = dtype_bytes(dtype);
  StreamBuffer q(elem * batch * seq_q * embed, stream), k(elem * batch * seq_k * embed, stream);
  StreamBuffer v(elem * batch * seq_k * embed, stream), heads_out(elem * batch * seq_q * embed, stream);
  FlashForwardArgs f;
  f.q = contiguous_view(q.get(), dtype, {batch, seq_q, a.heads, head_dim});
  f.k = contiguous_view(k.get(), dtype, {batch, seq_k, a.heads, head_dim});
  f.v = contiguous_view(v.get(), dtype, {batch, seq_k, a.heads, head_dim});
  f.out = contiguous_view(heads_out.get(), dtype, {batch, seq_q, a.heads, head_dim});
  f.bias = a.bias;
  f.active_mask = a.active_mask;
  f.causal = a.causal;
  f.stream = stream;
  validate_flash_forward(f);  // bias / mask shapes, before any work is queued

  auto project = [&](const TensorView& x, const TensorView& weight, const TensorView& bias, void* dst,
                     const char* what) {
    const int64_t rows = x.shape[0] * x.shape[1], in = x.shape[2];
    detail::gemm_row_major(stream, dtype, rows, embed, in, RowMajor{x.data, in, 0}, false,
                           RowMajor{weight.data, weight.stride[0], 0}, true, dst, embed, 0, 1, 1.0f, 0.0f, what);
    add_bias(dst, bias, rows, embed, stream);
  };
  project(a.query, w.q_weight, w.q_bias, q.get(), "query projection");
  project(a.key, w.k_weight, w.k_bias, k.get(), "key projection");
  project(a.value, w.v_weight, w.v_bias, v.get(), "value projection");
  flash_forward(f);
  const TensorView heads_view = contiguous_view(heads_out.get(), dtype, {batch, seq_q, embed});
  project(heads_view, w.out_weight, w.out_bias, a.out.data, "output projection");
}

}  // namespace attn::cuda
