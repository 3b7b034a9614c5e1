// How well one head's attention would survive a rank-r approximation, measured on a sample:
// S_q query rows and S_k keys spread evenly over the sequence (a seeded random offset),
// S = min(seq, max(4r, 128)), and P = the row softmax of their scaled scores [S_q][S_k].
// Each method gives a number in [0, 1], higher = better suited to low rank:
//   entropy  the mean normalised entropy of P's rows, H(p) / ln(S_k): 1 when every query
//            spreads its weight evenly (diffuse), 0 when each sees one key (peaked).
//   power    the share of the energy of Pc = P − 1/S_k (P less the uniform part, which any
//            approximation keeps) that its best rank-r subspace holds, found by subspace
//            (power) iteration: 2 steps from a random start. Near 1 when the spectrum decays
//            by rank r; r / S for a peaked head (each row its own direction).
//   random   the same share captured by the range of Pc·Ω for one random test matrix Ω
//            [S_k][r] (a randomised range finder without power steps): at most the power
//            method's figure, lower when the spectrum decays slowly.
// With r >= min(S_q, S_k) the sample cannot tell, and power / random give exactly 1.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "adaattn/low_rank_attention.h"
#include "gemm/gemm.h"

namespace attn {

enum class RankMethod { kEntropy, kPower, kRandom };

// "entropy", "power", "random".
const char* rank_method_name(RankMethod method);
// Throws AttnError naming `param` for any other name.
RankMethod parse_rank_method(const std::string& name, const std::string& param);

// Rows (or keys) the sample takes from a sequence of `seq`.
int rank_sample_size(int seq, int rank);

// Subspace-iteration steps of the power method.
constexpr int kPowerSteps = 2;

struct RankSampleScratch {
  std::vector<float> q, k;        // [S][d] sampled rows
  std::vector<float> p;           // [S_q][S_k]
  std::vector<float> yt, zt, ct;  // [r][S]: test vectors and their images, transposed
  GemmScratch gemm;
};

// The method's measure for one head (q and k of head.q / head.k), rank r, seed for the
// sample's offset and the random test matrix.
double estimate_rank_fitness(RankMethod method, int seq_q, int seq_k, int head_dim, float scale, int rank,
                             const HeadView& head, uint64_t seed, RankSampleScratch& scratch);

}  // namespace attn
