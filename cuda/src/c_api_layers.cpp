// The C ABI of multi-head / cross, linear and ASAM sparse attention
// (include/attn_cuda/c_api_layers.h).
#include "attn_cuda/c_api_layers.h"

#include "attn_cuda/asam.h"
#include "attn_cuda/linear.h"
#include "attn_cuda/multihead.h"
#include "c_api_common.h"

using attn::cuda::detail::guarded_call;
using attn::cuda::detail::report;
using attn::cuda::detail::view_of;

extern "C" int attn_cuda_multihead_forward(const attn_mha_args* a, char* error, int error_len) {
  if (a == nullptr) return report(4, "args: is NULL", error, error_len);
  return guarded_call([&] {
    attn::cuda::MultiHeadWeights w;
    w.q_weight = view_of(a->q_weight);
    w.k_weight = view_of(a->k_weight);
    w.v_weight = view_of(a->v_weight);
    w.out_weight = view_of(a->out_weight);
    w.q_bias = view_of(a->q_bias);
    w.k_bias = view_of(a->k_bias);
    w.v_bias = view_of(a->v_bias);
    w.out_bias = view_of(a->out_bias);
    attn::cuda::MultiHeadArgs args;
    args.query = view_of(a->query);
    args.key = view_of(a->key);
    args.value = view_of(a->value);
    args.out = view_of(a->out);
    args.bias = view_of(a->bias);
    args.active_mask = view_of(a->active_mask);
    args.heads = a->heads;
    args.causal = static_cast<attn::cuda::Causal>(a->causal);
    args.stream = static_cast<cudaStream_t>(a->stream);
    attn::cuda::multihead_forward(w, args);
  }, error, error_len);
}

extern "C" int attn_cuda_linear_attention(const attn_linear_args* a, char* error, int error_len) {
  if (a == nullptr) return report(4, "args: is NULL", error, error_len);
  return guarded_call([&] {
    attn::cuda::LinearAttentionArgs args;
    args.q = view_of(a->q);
    args.k = view_of(a->k);
    args.v = view_of(a->v);
    args.out = view_of(a->out);
    args.feature_map = static_cast<attn::cuda::FeatureMap>(a->feature_map);
    args.causal = a->causal != 0;
    args.eps = a->eps;
    args.stream = static_cast<cudaStream_t>(a->stream);
    attn::cuda::linear_attention_forward(args);
  }, error, error_len);
}

extern "C" int attn_cuda_asam_forward(const attn_asam_args* a, char* error, int error_len) {
  if (a == nullptr) return report(4, "args: is NULL", error, error_len);
  return guarded_call([&] {
    if (a->scale_count < 0 || a->scale_count > 8) attn::throw_range("scales", "at most 8 scales");
    attn::cuda::AsamForwardArgs args;
    args.q = view_of(a->q);
    args.k = view_of(a->k);
    args.v = view_of(a->v);
    args.out = view_of(a->out);
    args.lse = view_of(a->lse);
    args.pattern = static_cast<attn::cuda::AsamPattern>(a->pattern);
    args.window_size = a->window_size;
    args.stride = a->stride;
    args.scales.assign(a->scales, a->scales + a->scale_count);
    args.scale = a->scale;
    args.stream = static_cast<cudaStream_t>(a->stream);
    args.block_size = a->block_size;
    args.seed = a->seed;
    args.centroids = view_of(a->centroids);
    attn::cuda::asam_forward(args);
  }, error, error_len);
}
