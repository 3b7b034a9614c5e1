// Row-major matrix products on cuBLAS for the projections of multi-head attention and the
// state products of linear attention. float16 / bfloat16 / float32 data, float32
// accumulation (float32 data: plain FP32, no TF32).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "attn_cuda/tensor.h"

namespace attn::cuda::detail {

// A row-major operand: element (r, c) of matrix b of the batch sits at
// data + b * batch_stride + r * ld + c.
struct RowMajor {
  const void* data = nullptr;
  int64_t ld = 0;
  int64_t batch_stride = 0;
};

// For each of `batch` matrices: C[m][n] = alpha * op(A) . op(B) + beta * C, where op(A) is
// A[m][k], or A given as [k][m] and transposed when a_transposed; op(B) is B[k][n], or B
// given as [n][k] and transposed when b_transposed (x . W^T with PyTorch's
// [out_features][in_features] weights). A, B and C share `dtype`. Runs on `stream`; throws
// naming `what` on failure.
void gemm_row_major(cudaStream_t stream, DType dtype, int64_t m, int64_t n, int64_t k, RowMajor a,
                    bool a_transposed, RowMajor b, bool b_transposed, void* c, int64_t ldc,
                    int64_t c_batch_stride, int64_t batch, float alpha, float beta, const char* what);

}  // namespace attn::cuda::detail
