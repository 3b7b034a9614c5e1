// Four projections stored at one precision: the query, key, value and output linear maps
// of an attention layer, y = x . W^T + b each (gemm/projection.h), with W row-major
// [out_features][in_features] and b [out_features] (empty: no bias). The weights are packed
// for the GEMM once per change, not per call, as float32, fp16 or int8: the layers that
// project their inputs (MultiHeadAttention, asam::AttentionProjections) hold one of these.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "gemm/projection.h"

namespace attn {

class ThreadPool;

class ProjectionSet {
 public:
  enum class Projection { kQuery, kKey, kValue, kOutput };
  struct Weights {
    std::vector<float> q, q_bias, k, k_bias, v, v_bias, out, out_bias;
  };
  struct Shape {
    int out_features, in_features;
  };

  // Holds no weights until set_weights().
  ProjectionSet(Shape q, Shape k, Shape v, Shape out) : shapes_{q, k, v, out} {}

  // Stores `w` at the current precision (the float matrices are dropped unless float32).
  // Throws AttnError("weights") on values that precision cannot hold; nothing changes then.
  void set_weights(Weights w);
  // The weights in use (dequantized / widened when stored as int8 or fp16).
  Weights weights() const;
  // The weights as held: the matrices only when float32, the biases always.
  const Weights& stored() const { return w_; }

  // Re-stores the weights in use as float32, fp16 or int8 (a quantized set's values stay
  // rounded); set_weights() keeps it. Throws as set_weights(), leaving the precision as it was.
  void set_precision(WeightPrecision precision);
  WeightPrecision precision() const { return precision_; }
  // Bytes of weights and biases held now (float32 keeps row-major matrices and panels).
  int64_t weight_bytes() const;

  // x [rows][in_features] -> y [rows][out_features] of that projection.
  void project(Projection which, int64_t rows, const float* x, float* y, ThreadPool* pool) const;

 private:
  std::array<Shape, 4> shapes_;  // in Projection's order
  Weights w_;
  std::array<ProjectionWeights, 4> packed_;  // W^T of each, in Projection's order
  WeightPrecision precision_ = WeightPrecision::kFp32;
};

}  // namespace attn
