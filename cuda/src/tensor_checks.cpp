// Argument checks shared by the forward and backward entry points (tensor_checks.h).
#include "tensor_checks.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <climits>
#include <cmath>

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
  throw_type(name, std::string("dtype must be ") + (dtypes.size() > 1 ? "one of " : "") + allowed + ", got " +
                      dtype_name(t.dtype));
}

void check_row_tensor(const char* name, const TensorView& t, std::initializer_list<DType> dtypes,
                      const int64_t (&shape)[4], const char* layout, bool aligned_rows) {
  if (!t.defined()) throw_type(name, "is required");
  check_rank(name, t, 4);
  check_dtype_in(name, t, dtypes);
  check_shape(name, t, shape, layout);
  if (t.stride[3] != 1) throw_range(name, "must be contiguous in the last dimension (stride 1)");
  if (aligned_rows) check_row_alignment(name, t);
  check_device_memory(name, t.data);
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

AttentionDims check_attention_dims(const TensorView& q, const TensorView& k, std::initializer_list<DType> dtypes,
                                   const char* dtypes_text, const char* kernel) {
  if (!q.defined()) throw_type("q", "is required");
  if (!k.defined()) throw_type("k", "is required");
  check_rank("q", q, 4);
  check_rank("k", k, 4);
  if (std::find(dtypes.begin(), dtypes.end(), q.dtype) == dtypes.end()) {
    throw_type("q", std::string("dtype must be ") + dtypes_text + ", got " + dtype_name(q.dtype));
  }
  AttentionDims d{q.shape[0], q.shape[1], k.shape[1], q.shape[2], k.shape[2], q.shape[3]};
  if (d.batch < 1 || d.seq_q < 1 || d.heads_q < 1) {
    throw_range("q", "every dimension must be at least 1, got " + shape_string(q));
  }
  if (d.seq_k < 1 || d.heads_kv < 1) throw_range("k", "every dimension must be at least 1, got " + shape_string(k));
  if (d.seq_q > INT32_MAX || d.seq_k > INT32_MAX) throw_range("q", "sequence lengths must be below 2^31");
  if (d.head_dim != 64 && d.head_dim != 128) {
    throw_range("q", "head_dim " + std::to_string(d.head_dim) + " has no compiled " + kernel + " (supported: 64, 128)");
  }
  if (d.heads_q % d.heads_kv != 0) {
    throw_range("k", "heads_kv (" + std::to_string(d.heads_kv) + ") must divide heads_q (" +
                         std::to_string(d.heads_q) + ")");
  }
  return d;
}

void check_attention_options(float scale, float softcap, float dropout, Causal causal) {
  if (!std::isfinite(scale) || scale < 0) throw_range("scale", "must be finite and >= 0 (0 = 1/sqrt(head_dim))");
  if (!std::isfinite(softcap) || softcap < 0) throw_range("softcap", "must be finite and >= 0 (0 = off)");
  if (!(dropout >= 0.0f && dropout < 1.0f)) throw_range("dropout", "must be in [0, 1)");
  if (causal != Causal::kNone && causal != Causal::kTopLeft && causal != Causal::kBottomRight) {
    throw_range("causal", "must be none, top-left or bottom-right");
  }
}

}  // namespace attn::cuda::detail
