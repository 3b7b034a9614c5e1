// Argument checks shared by the forward and backward entry points (tensor_checks.h).
#include "tensor_checks.h"

#include <cuda_runtime.h>

#include <algorithm>

#include "runtime/errors.h"

namespace attn::cuda::detail {

std::string shape_string(const TensorView& t) {
  std::string s = "[";
  for (int i = 0; i < std::min(t.rank, kMaxRank); ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
  return s + "]";
}

void check_device_memory(const char* name, const void* data) {
  cudaPointerAttributes attr{};
  if (cudaPointerGetAttributes(&attr, data) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error of the query
    throw_type(name, "is not a pointer the CUDA runtime knows (must be GPU memory)");
  }
  if (attr.type != cudaMemoryTypeDevice && attr.type != cudaMemoryTypeManaged) {
    throw_type(name, "must be in GPU memory (got host memory)");
  }
}

void check_rank(const char* name, const TensorView& t, int rank) {
  if (t.rank != rank) {
    throw_range(name, "must have " + std::to_string(rank) + " dimensions, got " +
                          std::to_string(t.rank) + " " + shape_string(t));
  }
}

void check_dtype_in(const char* name, const TensorView& t, std::initializer_list<DType> dtypes) {
  std::string allowed;
  for (DType d : dtypes) {
    if (t.dtype == d) return;
    allowed += (allowed.empty() ? "" : ", ") + std::string(dtype_name(d));
  }
  throw_type(name, "dtype must be one of " + allowed + ", got " + dtype_name(t.dtype));
}

void check_shape(const char* name, const TensorView& t, const int64_t (&shape)[4], const char* layout) {
  for (int d = 0; d < 4; ++d) {
    if (t.shape[d] != shape[d]) {
      throw_range(name, std::string("shape must be ") + layout + " = [" + std::to_string(shape[0]) +
                            ", " + std::to_string(shape[1]) + ", " + std::to_string(shape[2]) + ", " +
                            std::to_string(shape[3]) + "], got " + shape_string(t));
    }
  }
}

void check_row_alignment(const char* name, const TensorView& t) {
  for (int d = 0; d < 3; ++d) {
    if (t.stride[d] % 8 != 0) {
      throw_range(name, "strides must be multiples of 8 elements (16-byte rows), got stride " +
                            std::to_string(t.stride[d]) + " in dimension " + std::to_string(d));
    }
  }
  if (reinterpret_cast<uintptr_t>(t.data) % 16 != 0) throw_range(name, "must be 16-byte aligned");
}

std::array<int64_t, 4> check_pair_tensor(const char* name, const TensorView& t,
                                         std::initializer_list<DType> dtypes,
                                         const int64_t (&shape)[4]) {
  check_rank(name, t, 4);
  check_dtype_in(name, t, dtypes);
  std::array<int64_t, 4> stride{};
  for (int d = 0; d < 4; ++d) {
    if (t.shape[d] != shape[d] && t.shape[d] != 1) {
      throw_range(name, "shape must be [batch, heads_kv, seq_q, seq_k] = [" + std::to_string(shape[0]) +
                            ", " + std::to_string(shape[1]) + ", " + std::to_string(shape[2]) + ", " +
                            std::to_string(shape[3]) + "] (or 1 to broadcast), got " + shape_string(t));
    }
    stride[d] = t.shape[d] == 1 ? 0 : t.stride[d];
  }
  check_device_memory(name, t.data);
  return stride;
}

}  // namespace attn::cuda::detail
