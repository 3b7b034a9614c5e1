// Low-rank softmax attention by Nyström landmarks (Nyströmformer, Xiong et al. 2021). Per
// (batch, head), with m landmarks Q̃, K̃ = the means of m contiguous segments of the queries
// and of the keys (each segment ⌊n/m⌋ or ⌈n/m⌉ rows):
//   F = softmax(s·Q K̃ᵀ)   [seq_q][m]     A = softmax(s·Q̃ K̃ᵀ) [m][m]
//   B = softmax(s·Q̃ Kᵀ)   [m][seq_k]
//   out ≈ F · pinv(A) · (B · V)
// Every row of a softmax is max-subtracted before exp, so no score overflows. The cost is
// O((seq_q + seq_k)·m·d + m³) instead of dense attention's O(seq_q·seq_k·d); memory
// O((seq_q + seq_k)·m) per worker (F is formed a block of rows at a time).
//
// pinv(A) is kNystromPinvIterations steps of the Newton–Schulz iteration of the paper,
//   Z ← ¼·Z·(13I − AZ(15I − AZ(7I − AZ))),  Z₀ = Aᵀ / (‖A‖₁‖A‖∞),
// in float32 on the GEMM. Each step multiplies the small singular values' share of the
// inverse by about 3.25², so a fixed count is a truncated pseudo-inverse: singular values
// below about 3.25^(−steps/2) of the largest stay out. That truncation is wanted: softmax
// matrices of diffuse attention are nearly rank one, and the exact inverse of their tiny
// singular values amplifies the landmarks' error (in a float64 prototype at n = 512 with 32
// landmarks, 30 steps instead of 12 raised the error from 3.9e-4 to 3.8e-3 on smooth inputs
// and from 0.43 to 26 on i.i.d. ones; the paper's 6 steps gave 2.2e-2 on the smooth ones).
//
// What it approximates well: attention whose weights vary slowly along the sequence (the
// segment means then stand for their segments). On unstructured inputs (i.i.d. random
// tokens) segment means wash out and the error is large; rank_estimation.h measures which
// case a head is in before adaptive_rank_attention.h uses this kernel.
#pragma once
#include <cstdint>
#include <vector>

#include "flash/flash_params.h"
#include "gemm/gemm.h"

namespace attn {

class ThreadPool;

constexpr int kNystromPinvIterations = 12;

// One (batch, head) of q/k/v/out: rows ld_* floats apart.
struct HeadView {
  const float* q;
  const float* k;
  const float* v;
  float* out;
  int64_t ld_q, ld_k, ld_v, ld_out;
};

// Head h of batch element b of a flash-layout call (GQA: kv head h / (heads_q / heads_kv)).
HeadView head_view(const FlashShape& shape, const FlashTensors& tensors, int b, int h);

// The landmarks a call can use: min(landmarks, seq_q, seq_k) (a segment needs a row).
int usable_landmarks(int landmarks, int seq_q, int seq_k);

// Floating-point operations of low_rank_head() (2 per multiply-add of its products; the
// softmaxes and landmark means are O((seq_q + seq_k)·m) and O((seq_q + seq_k)·d) beside).
double low_rank_head_flops(int seq_q, int seq_k, int landmarks, int head_dim, int value_dim);

// Per-worker buffers, reused between heads.
struct LowRankScratch {
  std::vector<float> q_marks, k_marks;  // [m][d]
  std::vector<float> b;                 // [m][seq_k]
  std::vector<float> bv, w;             // [m][dv]
  std::vector<float> a, z, az, t1, t2;  // [m][m]
  std::vector<float> f;                 // [block][m]
  GemmScratch gemm;
};

// One (batch, head): head.out rows = F · pinv(A) · (B · V) with `landmarks` landmarks
// (clamped by usable_landmarks) and scores scaled by `scale`.
void low_rank_head(int seq_q, int seq_k, int head_dim, int value_dim, float scale, int landmarks,
                   const HeadView& head, LowRankScratch& scratch);

// Every (batch, head) of a call in the flash layout (no mask, no causal rule), heads in
// parallel on the pool. scale <= 0 means 1/sqrt(head_dim). Throws AttnError naming a bad
// size (as validate_flash) or `landmarks`.
void low_rank_forward(const FlashShape& shape, float scale, int landmarks, const FlashTensors& tensors,
                      ThreadPool* pool);

// How far head.out's rows are from exact attention on `rows` query rows spread evenly over
// the sequence: ‖out − exact‖ / ‖exact‖ over those rows (0 when both are zero), the exact
// rows computed here in float32 (SIMD dots). Cost O(rows · seq_k · (head_dim + value_dim)).
double sampled_row_error(int seq_q, int seq_k, int head_dim, int value_dim, float scale, int rows,
                         const HeadView& head);

// Each row of x [rows][cols] (rows ld apart) becomes softmax(scale · row), max-subtracted.
void softmax_rows(float* x, int rows, int cols, int64_t ld, float scale);

}  // namespace attn
