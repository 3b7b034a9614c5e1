// The C ABI over attn::cuda::flash_backward (include/attn_cuda/c_api_backward.h):
// exceptions become status codes and messages, nothing is thrown across the boundary.
#include "attn_cuda/c_api_backward.h"

#include "attn_cuda/flash_backward.h"
#include "c_api_common.h"

using attn::cuda::detail::guarded_call;
using attn::cuda::detail::report;
using attn::cuda::detail::view_of;

extern "C" int attn_cuda_flash_backward(const attn_bwd_args* a, char* error, int error_len) {
  if (a == nullptr) return report(4, "args: is NULL", error, error_len);
  return guarded_call([&] {
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
  }, error, error_len);
}
