// What the backward kernels read: the validated arguments of flash_backward flattened into
// one trivially copyable struct passed by value (strides in elements). Kept apart from
// fwd_params.h so the forward and backward can change independently.
#pragma once
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

#include "flash/dropout_rng.h"

namespace attn::cuda::detail {

constexpr int kBwdBlockN = 64;  // keys per thread block (4 warps x one m16 key tile)
constexpr int kBwdWarps = 4;
constexpr int kBwdThreads = kBwdWarps * 32;

// Queries per inner-loop step: 64 for head dim 64; 32 for head dim 128, whose dK and dV
// accumulators already hold 128 registers per thread (keeps the hot loop free of spills).
template <int kHeadDim>
constexpr int bwd_block_m() { return kHeadDim <= 64 ? 64 : 32; }

struct BwdStrides3 {  // [batch][row][head] of a [batch, seq, heads, dim] tensor
  int64_t batch = 0, row = 0, head = 0;
};
struct BwdStrides4 {  // bias / mask [batch][heads_kv][seq_q][seq_k]; 0 broadcasts
  int64_t batch = 0, head = 0, row = 0, col = 1;
};

struct BwdParams {
  const void* q = nullptr;
  const void* k = nullptr;
  const void* v = nullptr;
  const void* dout = nullptr;
  const void* out = nullptr;  // the forward's output (D = rowsum(dout * out))
  BwdStrides3 q_stride, k_stride, v_stride, do_stride, o_stride;
  void* dk = nullptr;
  void* dv = nullptr;
  BwdStrides3 dk_stride, dv_stride;
  bool dk_float = false, dv_float = false;  // float32 outputs, else q's dtype

  const float* lse = nullptr;  // forward's lse, natural log
  BwdStrides3 lse_stride;      // batch, row (query), head
  float* delta = nullptr;     // [batch][heads_q][seq_q]: D (bwd_delta.cuh, bwd90_delta_workers.cuh)
  float* dq_accum = nullptr;  // [batch][seq_q][heads_q][head_dim], zeroed within launch_flash_bwd, added into
  float* dbias_accum = nullptr;  // [batch][heads_kv][seq_q][seq_k], zeroed, or null
  // The Hopper kernel's counters, zeroed before it (by its launch): [0] the items taken, then
  // per (batch, query block) the pieces of the dQ scratch's rows zeroed so far
  // (flash_bwd_sm90.cuh); bwd_counter_ints() of them.
  int* counters = nullptr;

  const void* bias = nullptr;
  int bias_dtype = 0;
  BwdStrides4 bias_stride;
  const void* active = nullptr;
  int active_dtype = 0;
  BwdStrides4 active_stride;

  int batch = 0, seq_q = 0, seq_k = 0, heads_q = 0, heads_kv = 0, group = 1, head_dim = 0;
  bool causal = false;
  int64_t causal_offset = 0;  // query i sees keys j <= i + causal_offset
  float scale = 1.0f;
  float scale_log2 = 1.0f;  // scale * log2(e)
  float softcap = 0.0f;
  bool dropout = false;
  attn::DropoutRng rng{0, 0.0f};
};

// BwdParams::counters' length: one, and one per query block of 64 rows or more.
inline size_t bwd_counter_ints(int64_t batch, int64_t seq_q) { return 1 + size_t(batch) * size_t((seq_q + 63) / 64); }

// The backward kernels compiled into the library, one translation unit per (dtype, head
// dim): flash_bwd_{fp16,bf16}_d{64,128}.cu.
template <typename T, int kHeadDim>
cudaError_t launch_flash_bwd(const BwdParams& p, cudaStream_t stream);

// The Hopper (sm_90a, wgmma) kernel of the dense case: flash_bwd_sm90.cuh,
// compiled only when the build targets sm_90 (ATTN_CUDA_SM90A). cudaErrorNotSupported: the
// tensors cannot be described to the copy engine.
template <typename T, int kHeadDim>
cudaError_t launch_flash_bwd_sm90(const BwdParams& p, cudaStream_t stream);

}  // namespace attn::cuda::detail
