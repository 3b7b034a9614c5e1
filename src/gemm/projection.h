// A linear layer over rows, y = x . W^T + b (PyTorch's nn.Linear), on the packed GEMM:
// blocks of rows in parallel on the pool. Shared by the layers that project their inputs.
#pragma once
#include <cstdint>
#include <vector>

#include "gemm/gemm.h"

namespace attn {

class ThreadPool;

// W [out][in] packed as B = W^T: what project_rows() reads.
PackedB pack_weight(int out_features, int in_features, const std::vector<float>& weight);

// y [rows][w.n] = x [rows][w.k] . W^T (+ bias [w.n] unless empty).
void project_rows(const PackedB& w, const std::vector<float>& bias, int64_t rows, const float* x, float* y,
                  ThreadPool* pool);

}  // namespace attn
