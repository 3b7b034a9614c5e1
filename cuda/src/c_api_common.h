// What every C ABI entry point shares: attn_tensor -> TensorView, and running a call with
// every exception turned into a status code and a message (nothing crosses the boundary).
#pragma once
#include <cstring>
#include <exception>

#include "attn_cuda/c_api.h"
#include "attn_cuda/tensor.h"
#include "cuda_check.h"
#include "runtime/errors.h"

namespace attn::cuda::detail {

inline TensorView view_of(const attn_tensor& t) {
  TensorView v;
  v.data = t.data;
  v.dtype = static_cast<DType>(t.dtype);
  v.rank = t.rank < 0 ? 0 : (t.rank > kMaxRank ? kMaxRank + 1 : t.rank);  // > 4: refused by the checks
  for (int i = 0; i < kMaxRank; ++i) {
    v.shape[i] = t.shape[i];
    v.stride[i] = t.stride[i];
  }
  return v;
}

inline int report(int code, const char* message, char* error, int error_len) {
  if (error != nullptr && error_len > 0) {
    std::strncpy(error, message, size_t(error_len) - 1);
    error[error_len - 1] = '\0';
  }
  return code;
}

// Runs fn(); status 0, or 1 type error, 2 range error, 3 CUDA error, 4 other.
template <typename Fn>
int guarded_call(Fn&& fn, char* error, int error_len) {
  try {
    fn();
    return 0;
  } catch (const AttnError& e) {
    return report(e.kind() == ErrorKind::kType ? 1 : 2, e.what(), error, error_len);
  } catch (const CudaError& e) {
    return report(3, e.what(), error, error_len);
  } catch (const std::exception& e) {
    return report(4, e.what(), error, error_len);
  }
}

}  // namespace attn::cuda::detail
