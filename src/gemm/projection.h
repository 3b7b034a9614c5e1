// A linear layer over rows, y = x . W^T + b (PyTorch's nn.Linear), on the packed GEMM:
// blocks of rows in parallel on the pool. Shared by the layers that project their inputs.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "gemm/gemm.h"
#include "gemm/int8_projection.h"

namespace attn {

class ThreadPool;

// W [out][in] packed as B = W^T: what project_rows() reads.
PackedB pack_weight(int out_features, int in_features, const std::vector<float>& weight);

// y [rows][w.n] = x [rows][w.k] . W^T (+ bias [w.n] unless empty).
void project_rows(const PackedB& w, const std::vector<float>& bias, int64_t rows, const float* x, float* y,
                  ThreadPool* pool);

// How a layer stores a projection's weights: float32 panels, the same in fp16 (half the
// bytes, widened per panel for the float GEMM: same arithmetic, weights rounded to fp16) or
// int8 per output channel (a quarter of the bytes, integer products; gemm/int8_projection.h).
enum class WeightPrecision { kFp32, kFp16, kInt8 };
const char* precision_name(WeightPrecision p);
// "fp32", "fp16", "int8"; throws AttnError("precision") otherwise.
WeightPrecision parse_precision(const std::string& name);

// One projection's weights in one of those forms (only the one in use is filled).
struct ProjectionWeights {
  WeightPrecision precision = WeightPrecision::kFp32;
  PackedB f32;
  PackedBHalf f16;
  Int8Weight i8;

  ProjectionWeights() = default;
  ProjectionWeights(PackedB packed) : f32(std::move(packed)) {}  // NOLINT: what pack_weight() gives

  // Bytes of weights it holds (panels, and the int8 scales).
  int64_t bytes() const;
};

// W [out][in] in the given form. Throws AttnError("weights") on values the form cannot hold.
ProjectionWeights pack_weight(int out_features, int in_features, const std::vector<float>& weight,
                              WeightPrecision precision);
// The weights the projection multiplies by, [out][in] (rounded or dequantized unless fp32).
std::vector<float> unpack_weight(const ProjectionWeights& w);
void project_rows(const ProjectionWeights& w, const std::vector<float>& bias, int64_t rows, const float* x, float* y,
                  ThreadPool* pool);

}  // namespace attn
