/* C ABI of the CUDA backward (attn_cuda/flash_backward.h), for ctypes / FFI callers.
 * Mirrors attn::cuda::FlashBackwardArgs field by field; absent tensors have data = NULL. */
#pragma once
#include <stdint.h>

#include "attn_cuda/c_api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct attn_bwd_args {
  attn_tensor q, k, v, out, dout, lse; /* inputs */
  attn_tensor dq, dk, dv;              /* outputs: q's dtype or float32 */
  attn_tensor bias, active_mask;       /* optional inputs, as the forward's */
  attn_tensor dbias;                   /* optional output [batch, heads_kv, seq_q, seq_k] */
  float scale, softcap, dropout;
  int32_t causal; /* 0 none, 1 top-left, 2 bottom-right */
  uint64_t seed;
  void* stream; /* cudaStream_t; NULL = default stream */
} attn_bwd_args;

/* Status codes as attn_cuda_flash_forward: 0 ok, 1 type error, 2 range error, 3 CUDA
 * error, 4 other; on error `error` receives "param: message". */
int attn_cuda_flash_backward(const attn_bwd_args* args, char* error, int error_len);

#ifdef __cplusplus
}
#endif
