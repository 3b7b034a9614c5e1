// Argument checks shared by the forward and backward entry points: each throws an
// attn::AttnError that names the parameter.
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "attn_cuda/flash.h"
#include "attn_cuda/tensor.h"

namespace attn::cuda::detail {

// "[2, 8, 4, 64]"
std::string shape_string(const TensorView& t);
// The pointer must be device (or managed) memory the CUDA runtime knows.
void check_device_memory(const char* name, const void* data);
void check_rank(const char* name, const TensorView& t, int rank);
void check_dtype_in(const char* name, const TensorView& t, std::initializer_list<DType> dtypes);
// Exactly `shape`; `layout` names the dimensions in the message.
void check_shape(const char* name, const TensorView& t, const int64_t (&shape)[4], const char* layout);
// 16-bit rows for vector access: strides multiples of 8 elements, 16-byte aligned base.
void check_row_alignment(const char* name, const TensorView& t);
// A tensor the kernels read or write by rows (q, k, v, out and their gradients): rank 4, a
// dtype of `dtypes`, exactly `shape`, contiguous last dimension, rows aligned for vector
// access when `aligned_rows`, GPU memory.
void check_row_tensor(const char* name, const TensorView& t, std::initializer_list<DType> dtypes,
                      const int64_t (&shape)[4], const char* layout, bool aligned_rows);
// bias / active_mask: rank 4, one of `dtypes`, [batch, heads_kv, seq_q, seq_k] with dims of
// size 1 broadcast, device memory. Returns the strides with 0 for broadcast dims.
std::array<int64_t, 4> check_pair_tensor(const char* name, const TensorView& t,
                                         std::initializer_list<DType> dtypes,
                                         const int64_t (&shape)[4]);

// The sizes of an attention call, from q [batch, seq_q, heads_q, head_dim] and
// k [batch, seq_k, heads_kv, head_dim], after the checks the forward and backward share:
// ranks, q's dtype (one of `dtypes`, described as `dtypes_text` in the message), positive
// sizes below 2^31 rows, a head dim with a compiled `kernel` (64 or 128), heads_kv dividing
// heads_q.
struct AttentionDims {
  int64_t batch, seq_q, seq_k, heads_q, heads_kv, head_dim;
};
AttentionDims check_attention_dims(const TensorView& q, const TensorView& k, std::initializer_list<DType> dtypes,
                                   const char* dtypes_text, const char* kernel);

// scale, softcap, dropout and the causal mode, as the forward and backward take them.
void check_attention_options(float scale, float softcap, float dropout, Causal causal);

}  // namespace attn::cuda::detail
