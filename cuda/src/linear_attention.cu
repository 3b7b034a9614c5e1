// Linear attention (attn_cuda/linear.h): feature maps and chunk bookkeeping in small
// kernels, every product on cuBLAS (cublas_gemm.h), all in float32.
#include "attn_cuda/linear.h"

#include <cmath>
#include <string>

#include "cublas_gemm.h"
#include "cuda_check.h"
#include "mask_access.cuh"
#include "mma_sm80.cuh"
#include "runtime/errors.h"
#include "stream_buffer.h"
#include "strided.cuh"
#include "tensor_checks.h"

namespace attn::cuda {

namespace {

using detail::Rank4;
using detail::RowMajor;
using detail::StreamBuffer;
using detail::rank4_of;
using detail::stride_blocks;

constexpr int kChunk = 64;  // rows per chunk of the causal algorithm

// phi of x [batch, seq, heads, dim] into dst [batch * heads][rows][features] (rows >= seq;
// rows past seq are zero).
__global__ void features_kernel(const void* x, int dtype, Rank4 xl, int map, int64_t rows, int features,
                                float* dst) {
  const int64_t seq = xl.shape[1], heads = xl.shape[2], dim = xl.shape[3];
  const int64_t count = xl.shape[0] * heads * rows * features;
  for (int64_t n = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; n < count; n += int64_t{gridDim.x} * blockDim.x) {
    const int f = static_cast<int>(n % features);
    const int64_t i = (n / features) % rows, bh = n / (features * rows);
    float out = 0.0f;
    if (i < seq) {
      const int64_t row = (bh / heads) * xl.stride[0] + i * xl.stride[1] + (bh % heads) * xl.stride[2];
      auto at = [&](int64_t c) { return detail::load_as_float(x, dtype, row + c * xl.stride[3]); };
      if (map == static_cast<int>(FeatureMap::kElu)) {
        const float v = at(f);
        out = v > 0.0f ? v + 1.0f : expf(v);
      } else if (map == static_cast<int>(FeatureMap::kRelu)) {
        out = fmaxf(at(f), 0.0f);
      } else {  // dpfp, nu = 1: x'_f * x'_{(f - 1) mod 2 dim}
        auto xp = [&](int64_t e) { return e < dim ? fmaxf(at(e), 0.0f) : fmaxf(-at(e - dim), 0.0f); };
        out = xp(f) * xp((f + 2 * dim - 1) % (2 * dim));
      }
    }
    dst[n] = out;
  }
}

// v [batch, seq, heads, dv] into dst [batch * heads][rows][dv + 1] with a last column of ones
// (so one product gives both phi(q)^T S and the denominator phi(q)^T z); zero past seq.
__global__ void values_kernel(const void* v, int dtype, Rank4 vl, int64_t rows, float* dst) {
  const int64_t seq = vl.shape[1], heads = vl.shape[2], dv = vl.shape[3], width = dv + 1;
  const int64_t count = vl.shape[0] * heads * rows * width;
  for (int64_t n = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; n < count; n += int64_t{gridDim.x} * blockDim.x) {
    const int64_t c = n % width, i = (n / width) % rows, bh = n / (width * rows);
    float out = 0.0f;
    if (i < seq) {
      out = c == dv ? 1.0f
                    : detail::load_as_float(v, dtype, (bh / heads) * vl.stride[0] + i * vl.stride[1] +
                                                          (bh % heads) * vl.stride[2] + c * vl.stride[3]);
    }
    dst[n] = out;
  }
}

// states [groups][chunks][size] -> exclusive prefix sums over the chunks, in place.
__global__ void exclusive_prefix_kernel(float* states, int64_t groups, int64_t chunks, int64_t size) {
  for (int64_t n = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; n < groups * size; n += int64_t{gridDim.x} * blockDim.x) {
    float* s = states + (n / size) * chunks * size + n % size;
    float running = 0.0f;
    for (int64_t c = 0; c < chunks; ++c) {
      const float here = s[c * size];
      s[c * size] = running;
      running += here;
    }
  }
}

// scores [blocks][kChunk][kChunk]: zero where key > query (the causal rule inside a chunk).
__global__ void causal_chunk_mask_kernel(float* scores, int64_t blocks) {
  const int64_t count = blocks * kChunk * kChunk;
  for (int64_t n = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; n < count; n += int64_t{gridDim.x} * blockDim.x) {
    const int j = static_cast<int>(n % kChunk), i = static_cast<int>((n / kChunk) % kChunk);
    if (j > i) scores[n] = 0.0f;
  }
}

// num [batch * heads][rows][dv + 1] -> out[b, i, h, c] = num[.., c] / (num[.., dv] + eps).
template <typename T>
__global__ void finalize_kernel(const float* num, int64_t rows, Rank4 ol, float eps, T* out) {
  const int64_t seq = ol.shape[1], heads = ol.shape[2], dv = ol.shape[3];
  const int64_t count = ol.shape[0] * heads * seq * dv;
  for (int64_t n = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; n < count; n += int64_t{gridDim.x} * blockDim.x) {
    const int64_t c = n % dv, i = (n / dv) % seq, bh = n / (dv * seq);
    const float* row = num + (bh * rows + i) * (dv + 1);
    const float den = row[dv] + eps;
    const float value = den > 0.0f ? row[c] / den : 0.0f;
    out[(bh / heads) * ol.stride[0] + i * ol.stride[1] + (bh % heads) * ol.stride[2] + c * ol.stride[3]] =
        detail::from_float<T>(value);
  }
}

void check_4d(const char* name, const TensorView& t, DType dtype, const int64_t (&shape)[4], const char* layout) {
  if (!t.defined()) throw_type(name, "is required");
  detail::check_rank(name, t, 4);
  if (t.dtype != dtype) {
    throw_type(name, std::string("must have q's dtype (") + dtype_name(dtype) + "), got " + dtype_name(t.dtype));
  }
  detail::check_shape(name, t, shape, layout);
  detail::check_device_memory(name, t.data);
}

}  // namespace

void linear_attention_forward(const LinearAttentionArgs& a) {
  if (!a.q.defined()) throw_type("q", "is required");
  const DType dtype = a.q.dtype;
  if (dtype != DType::kFloat16 && dtype != DType::kBFloat16 && dtype != DType::kFloat32) {
    throw_type("q", std::string("dtype must be float16, bfloat16 or float32, got ") + dtype_name(dtype));
  }
  detail::check_rank("q", a.q, 4);
  if (!a.k.defined()) throw_type("k", "is required");
  if (!a.v.defined()) throw_type("v", "is required");
  detail::check_rank("k", a.k, 4);
  detail::check_rank("v", a.v, 4);
  const int64_t batch = a.q.shape[0], seq_q = a.q.shape[1], heads = a.q.shape[2], dim = a.q.shape[3];
  const int64_t seq_k = a.k.shape[1], dv = a.v.shape[3];
  for (int64_t s : {batch, seq_q, heads, dim}) {
    if (s < 1) throw_range("q", "every dimension must be positive, got " + detail::shape_string(a.q));
  }
  check_4d("q", a.q, dtype, {batch, seq_q, heads, dim}, "[batch, seq_q, heads, head_dim]");
  check_4d("k", a.k, dtype, {batch, seq_k, heads, dim}, "[batch, seq_k, heads, head_dim]");
  check_4d("v", a.v, dtype, {batch, seq_k, heads, dv}, "[batch, seq_k, heads, value_dim]");
  check_4d("out", a.out, dtype, {batch, seq_q, heads, dv}, "[batch, seq_q, heads, value_dim]");
  if (seq_k < 1 || dv < 1) throw_range("v", "every dimension must be positive, got " + detail::shape_string(a.v));
  const int map = static_cast<int>(a.feature_map);
  if (map < 0 || map > 2) throw_range("feature_map", "must be elu (0), relu (1) or dpfp (2), got " + std::to_string(map));
  if (!(std::isfinite(a.eps) && a.eps >= 0.0f)) throw_range("eps", "must be a finite number >= 0");
  if (a.causal && seq_q != seq_k) {
    throw_range("causal", "needs seq_q = seq_k, got " + std::to_string(seq_q) + " and " + std::to_string(seq_k));
  }

  cudaStream_t stream = a.stream;
  const int64_t features = a.feature_map == FeatureMap::kDpfp ? 2 * dim : dim;
  const int64_t width = dv + 1, groups = batch * heads;
  const int64_t rows_q = a.causal ? (seq_q + kChunk - 1) / kChunk * kChunk : seq_q;
  const int64_t rows_k = a.causal ? rows_q : seq_k;
  StreamBuffer phi_q(sizeof(float) * groups * rows_q * features, stream);
  StreamBuffer phi_k(sizeof(float) * groups * rows_k * features, stream);
  StreamBuffer values(sizeof(float) * groups * rows_k * width, stream);
  StreamBuffer num(sizeof(float) * groups * rows_q * width, stream);
  features_kernel<<<stride_blocks(groups * rows_q * features), detail::kStrideThreads, 0, stream>>>(
      a.q.data, static_cast<int>(dtype), rank4_of(a.q), map, rows_q, static_cast<int>(features), phi_q.as<float>());
  features_kernel<<<stride_blocks(groups * rows_k * features), detail::kStrideThreads, 0, stream>>>(
      a.k.data, static_cast<int>(dtype), rank4_of(a.k), map, rows_k, static_cast<int>(features), phi_k.as<float>());
  values_kernel<<<stride_blocks(groups * rows_k * width), detail::kStrideThreads, 0, stream>>>(a.v.data, static_cast<int>(dtype), rank4_of(a.v),
                                                                        rows_k, values.as<float>());
  check_cuda(cudaGetLastError(), "linear attention features");

  if (!a.causal) {
    // [S | z] = phi(K)^T [V | 1] per (batch, head), then phi(Q) [S | z].
    StreamBuffer state(sizeof(float) * groups * features * width, stream);
    detail::gemm_row_major(stream, DType::kFloat32, features, width, seq_k,
                           RowMajor{phi_k.get(), features, seq_k * features}, true,
                           RowMajor{values.get(), width, seq_k * width}, false, state.get(), width,
                           features * width, groups, 1.0f, 0.0f, "linear attention state");
    detail::gemm_row_major(stream, DType::kFloat32, seq_q, width, features,
                           RowMajor{phi_q.get(), features, seq_q * features}, false,
                           RowMajor{state.get(), width, features * width}, false, num.get(), width,
                           seq_q * width, groups, 1.0f, 0.0f, "linear attention output");
  } else {
    // Chunk c of every (batch, head) is batch entry (group * chunks + c) of each product.
    const int64_t chunks = rows_q / kChunk, blocks = groups * chunks;
    StreamBuffer states(sizeof(float) * blocks * features * width, stream);
    StreamBuffer scores(sizeof(float) * blocks * kChunk * kChunk, stream);
    const RowMajor phi_q_chunk{phi_q.get(), features, kChunk * features};
    const RowMajor phi_k_chunk{phi_k.get(), features, kChunk * features};
    const RowMajor value_chunk{values.get(), width, kChunk * width};
    // Each chunk's own state, then the sum of the chunks before it.
    detail::gemm_row_major(stream, DType::kFloat32, features, width, kChunk, phi_k_chunk, true, value_chunk, false,
                           states.get(), width, features * width, blocks, 1.0f, 0.0f, "linear attention chunk states");
    exclusive_prefix_kernel<<<stride_blocks(groups * features * width), detail::kStrideThreads, 0, stream>>>(states.as<float>(), groups, chunks,
                                                                                      features * width);
    check_cuda(cudaGetLastError(), "linear attention prefix sums");
    // Earlier chunks: phi(Q_c) P_c. This chunk: (phi(Q_c) phi(K_c)^T, lower triangle) [V_c | 1].
    detail::gemm_row_major(stream, DType::kFloat32, kChunk, width, features, phi_q_chunk, false,
                           RowMajor{states.get(), width, features * width}, false, num.get(), width, kChunk * width,
                           blocks, 1.0f, 0.0f, "linear attention earlier chunks");
    detail::gemm_row_major(stream, DType::kFloat32, kChunk, kChunk, features, phi_q_chunk, false, phi_k_chunk, true,
                           scores.get(), kChunk, kChunk * kChunk, blocks, 1.0f, 0.0f, "linear attention chunk scores");
    causal_chunk_mask_kernel<<<stride_blocks(blocks * kChunk * kChunk), detail::kStrideThreads, 0, stream>>>(scores.as<float>(), blocks);
    check_cuda(cudaGetLastError(), "linear attention causal mask");
    detail::gemm_row_major(stream, DType::kFloat32, kChunk, width, kChunk, RowMajor{scores.get(), kChunk, kChunk * kChunk},
                           false, value_chunk, false, num.get(), width, kChunk * width, blocks, 1.0f, 1.0f,
                           "linear attention this chunk");
  }
  const int blocks_out = stride_blocks(groups * seq_q * dv);
  switch (dtype) {
    case DType::kFloat16:
      finalize_kernel<<<blocks_out, detail::kStrideThreads, 0, stream>>>(num.as<float>(), rows_q, rank4_of(a.out), a.eps, static_cast<__half*>(a.out.data));
      break;
    case DType::kBFloat16:
      finalize_kernel<<<blocks_out, detail::kStrideThreads, 0, stream>>>(num.as<float>(), rows_q, rank4_of(a.out), a.eps,
                                                      static_cast<__nv_bfloat16*>(a.out.data));
      break;
    default:
      finalize_kernel<<<blocks_out, detail::kStrideThreads, 0, stream>>>(num.as<float>(), rows_q, rank4_of(a.out), a.eps, static_cast<float*>(a.out.data));
      break;
  }
  check_cuda(cudaGetLastError(), "linear attention output");
}

}  // namespace attn::cuda
