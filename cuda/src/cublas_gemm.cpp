#include "cublas_gemm.h"

#include <cublas_v2.h>

#include <string>

#include "cuda_check.h"

namespace attn::cuda::detail {

namespace {

// One cuBLAS handle per host thread and device: creating one costs milliseconds, and a
// handle must not be used by two threads at once.
cublasHandle_t handle_for_this_thread() {
  constexpr int kMaxDevices = 64;
  thread_local cublasHandle_t handles[kMaxDevices] = {};
  int device = 0;
  check_cuda(cudaGetDevice(&device), "cudaGetDevice");
  if (device < 0 || device >= kMaxDevices) throw std::runtime_error("cuBLAS: device index out of range");
  if (handles[device] == nullptr && cublasCreate(&handles[device]) != CUBLAS_STATUS_SUCCESS) {
    handles[device] = nullptr;
    throw std::runtime_error("cuBLAS: cublasCreate failed (out of GPU memory?)");
  }
  return handles[device];
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::kFloat16: return CUDA_R_16F;
    case DType::kBFloat16: return CUDA_R_16BF;
    default: return CUDA_R_32F;
  }
}

}  // namespace

void gemm_row_major(cudaStream_t stream, DType dtype, int64_t m, int64_t n, int64_t k, RowMajor a,
                    bool a_transposed, RowMajor b, bool b_transposed, void* c, int64_t ldc,
                    int64_t c_batch_stride, int64_t batch, float alpha, float beta, const char* what) {
  if (m == 0 || n == 0 || batch == 0) return;
  cublasHandle_t handle = handle_for_this_thread();
  if (cublasSetStream(handle, stream) != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string(what) + ": cublasSetStream failed");
  }
  // Row-major C = A . op(B) is column-major C^T = op(B)^T . A^T: cuBLAS sees B first.
  const cudaDataType_t type = cuda_type(dtype);
  const cublasStatus_t status = cublasGemmStridedBatchedEx(
      handle, b_transposed ? CUBLAS_OP_T : CUBLAS_OP_N, a_transposed ? CUBLAS_OP_T : CUBLAS_OP_N, static_cast<int>(n),
      static_cast<int>(m), static_cast<int>(k), &alpha, b.data, type, static_cast<int>(b.ld),
      b.batch_stride, a.data, type, static_cast<int>(a.ld), a.batch_stride, &beta, c, type,
      static_cast<int>(ldc), c_batch_stride, static_cast<int>(batch), CUBLAS_COMPUTE_32F,
      CUBLAS_GEMM_DEFAULT);
  if (status != CUBLAS_STATUS_SUCCESS) {
    throw std::runtime_error(std::string(what) + ": cuBLAS GEMM failed (" +
                             cublasGetStatusString(status) + ")");
  }
}

}  // namespace attn::cuda::detail
