// Argument checks shared by the forward and backward entry points: each throws an
// attn::AttnError that names the parameter.
#pragma once
#include <string>

#include "attn_cuda/tensor.h"

namespace attn::cuda::detail {

// "[2, 8, 4, 64]"
std::string shape_string(const TensorView& t);
// The pointer must be device (or managed) memory the CUDA runtime knows.
void check_device_memory(const char* name, const void* data);
void check_rank(const char* name, const TensorView& t, int rank);

}  // namespace attn::cuda::detail
