/* C ABI of the CUDA backend, for ctypes / FFI callers (tests/cuda/*.py drive it from
 * PyTorch tensors' data pointers). Mirrors attn::cuda::FlashForwardArgs field by field. */
#pragma once
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct attn_tensor {
  void* data; /* NULL = absent */
  int32_t dtype; /* 0 float16, 1 bfloat16, 2 float32, 3 uint8 */
  int32_t rank;
  int64_t shape[4];
  int64_t stride[4]; /* in elements */
} attn_tensor;

typedef struct attn_fwd_args {
  attn_tensor q, k, v, out, bias, active_mask, lse, softmax;
  float scale, softcap, dropout;
  int32_t causal; /* 0 none, 1 top-left, 2 bottom-right */
  uint64_t seed;
  int64_t keep_window_size;
  int64_t window_left, window_right; /* sliding window; -1 = unlimited */
  void* stream; /* cudaStream_t; NULL = default stream */
} attn_fwd_args;

/* Status codes: 0 ok, 1 type error, 2 range error, 3 CUDA error, 4 other. On error,
 * `error` receives "param: message" (NUL-terminated, truncated to error_len). */
int attn_cuda_flash_forward(const attn_fwd_args* args, uint64_t* rng_state_out,
                            char* error, int error_len);
double attn_cuda_flash_forward_flops(int64_t batch, int64_t heads_q, int64_t seq_q,
                                     int64_t seq_k, int64_t head_dim, int32_t causal);

#ifdef __cplusplus
}
#endif
