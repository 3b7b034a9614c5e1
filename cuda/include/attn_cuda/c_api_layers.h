/* C ABI of the multi-head / cross attention (attn_cuda/multihead.h), the linear attention
 * (attn_cuda/linear.h) and ASAM's sparse patterns (attn_cuda/asam.h), for ctypes / FFI
 * callers. Absent tensors have data = NULL. */
#pragma once
#include <stdint.h>

#include "attn_cuda/c_api.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct attn_mha_args {
  attn_tensor query, key, value, out;
  attn_tensor q_weight, k_weight, v_weight, out_weight;
  attn_tensor q_bias, k_bias, v_bias, out_bias; /* optional */
  attn_tensor bias, active_mask;                /* optional, as the flash forward's */
  int32_t heads;
  int32_t causal; /* 0 none, 1 top-left, 2 bottom-right */
  void* stream;   /* cudaStream_t; NULL = default stream */
} attn_mha_args;

typedef struct attn_linear_args {
  attn_tensor q, k, v, out;
  int32_t feature_map; /* 0 elu, 1 relu, 2 dpfp */
  int32_t causal;      /* 0 or 1 */
  float eps;
  void* stream;
} attn_linear_args;

typedef struct attn_asam_args {
  attn_tensor q, k, v, out;
  attn_tensor lse;     /* optional */
  int32_t pattern;     /* 0 local, 1 strided, 2 hierarchical, 3 random, 4 clustered */
  int32_t scale_count; /* hierarchical: scales[0 .. scale_count), at most 8 */
  int64_t window_size, stride;
  int64_t scales[8];
  float scale;         /* 0 = 1 / sqrt(head_dim) */
  void* stream;
  int64_t block_size;  /* random */
  uint64_t seed;       /* random */
  attn_tensor centroids; /* clustered: [heads, num_clusters, head_dim] float32 */
} attn_asam_args;

/* Status codes as attn_cuda_flash_forward: 0 ok, 1 type error, 2 range error, 3 CUDA
 * error, 4 other; on error `error` receives "param: message". */
int attn_cuda_multihead_forward(const attn_mha_args* args, char* error, int error_len);
int attn_cuda_linear_attention(const attn_linear_args* args, char* error, int error_len);
int attn_cuda_asam_forward(const attn_asam_args* args, char* error, int error_len);

#ifdef __cplusplus
}
#endif
