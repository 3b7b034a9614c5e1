// The C ABI over attn::cuda::flash_backward (include/attn_cuda/c_api_backward.h):
// exceptions become status codes and messages, nothing is thrown across the boundary.
#include "attn_cuda/c_api_backward.h"

#include <cstring>
#include <exception>

#include "attn_cuda/flash_backward.h"
#include "cuda_check.h"
#include "runtime/errors.h"

namespace {

attn::cuda::TensorView view_of(const attn_tensor& t) {
  attn::cuda::TensorView v;
  v.data = t.data;
  v.dtype = static_cast<attn::cuda::DType>(t.dtype);
  v.rank = t.rank < 0 ? 0 : (t.rank > attn::cuda::kMaxRank ? attn::cuda::kMaxRank + 1 : t.rank);  // > 4: refused
  for (int i = 0; i < attn::cuda::kMaxRank; ++i) {
    v.shape[i] = t.shape[i];
    v.stride[i] = t.stride[i];
  }
  return v;
}

int report(int code, const char* message, char* error, int error_len) {
  if (error != nullptr && error_len > 0) {
    std::strncpy(error, message, size_t(error_len) - 1);
    error[error_len - 1] = '\0';
  }
  return code;
}

}  // namespace

extern "C" int attn_cuda_flash_backward(const attn_bwd_args* a, char* error, int error_len) {
  if (a == nullptr) return report(4, "args: is NULL", error, error_len);
  try {
    attn::cuda::FlashBackwardArgs args;
    args.q = view_of(a->q);
    args.k = view_of(a->k);
    args.v = view_of(a->v);
    args.out = view_of(a->out);
    args.dout = view_of(a->dout);
    args.lse = view_of(a->lse);
    args.dq = view_of(a->dq);
    args.dk = view_of(a->dk);
    args.dv = view_of(a->dv);
    args.bias = view_of(a->bias);
    args.active_mask = view_of(a->active_mask);
    args.dbias = view_of(a->dbias);
    args.scale = a->scale;
    args.softcap = a->softcap;
    args.dropout = a->dropout;
    args.causal = static_cast<attn::cuda::Causal>(a->causal);
    args.seed = a->seed;
    args.stream = static_cast<cudaStream_t>(a->stream);
    attn::cuda::flash_backward(args);
    return 0;
  } catch (const attn::AttnError& e) {
    return report(e.kind() == attn::ErrorKind::kType ? 1 : 2, e.what(), error, error_len);
  } catch (const attn::cuda::CudaError& e) {
    return report(3, e.what(), error, error_len);
  } catch (const std::exception& e) {
    return report(4, e.what(), error, error_len);
  }
}
