// The C ABI over attn::cuda (include/attn_cuda/c_api.h): exceptions become status codes
// and messages, nothing is thrown across the boundary.
#include "attn_cuda/c_api.h"

#include "attn_cuda/flash.h"
#include "c_api_common.h"

using attn::cuda::detail::guarded_call;
using attn::cuda::detail::report;
using attn::cuda::detail::view_of;

extern "C" int attn_cuda_flash_forward(const attn_fwd_args* a, uint64_t* rng_state_out,
                                       char* error, int error_len) {
  if (a == nullptr) return report(4, "args: is NULL", error, error_len);
  return guarded_call([&] {
    attn::cuda::FlashForwardArgs args;
    args.q = view_of(a->q);
    args.k = view_of(a->k);
    args.v = view_of(a->v);
    args.out = view_of(a->out);
    args.bias = view_of(a->bias);
    args.active_mask = view_of(a->active_mask);
    args.lse = view_of(a->lse);
    args.softmax = view_of(a->softmax);
    args.scale = a->scale;
    args.softcap = a->softcap;
    args.dropout = a->dropout;
    args.causal = static_cast<attn::cuda::Causal>(a->causal);
    args.seed = a->seed;
    args.keep_window_size = a->keep_window_size;
    args.window_left = a->window_left;
    args.window_right = a->window_right;
    args.stream = static_cast<cudaStream_t>(a->stream);
    const attn::cuda::RngState rng = attn::cuda::flash_forward(args);
    if (rng_state_out != nullptr) {
      rng_state_out[0] = rng.seed;
      rng_state_out[1] = rng.offset;
    }
  }, error, error_len);
}

extern "C" double attn_cuda_flash_forward_flops(int64_t batch, int64_t heads_q, int64_t seq_q,
                                                int64_t seq_k, int64_t head_dim, int32_t causal) {
  return attn::cuda::flash_forward_flops(batch, heads_q, seq_q, seq_k, head_dim,
                                         static_cast<attn::cuda::Causal>(causal));
}
