// Argument checks shared by the forward and backward entry points: each throws an
// attn::AttnError that names the parameter.
#pragma once
#include <array>
#include <cstdint>
#include <initializer_list>
#include <string>

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
// bias / active_mask: rank 4, one of `dtypes`, [batch, heads_kv, seq_q, seq_k] with dims of
// size 1 broadcast, device memory. Returns the strides with 0 for broadcast dims.
std::array<int64_t, 4> check_pair_tensor(const char* name, const TensorView& t,
                                         std::initializer_list<DType> dtypes,
                                         const int64_t (&shape)[4]);

}  // namespace attn::cuda::detail
