// The four linear maps of an ASAM layer, as the seed's layer has them (nn.Linear with bias):
//   q_proj, k_proj, v_proj  dim -> inner (weight [inner][dim], bias [inner])
//   out_proj                inner -> dim (weight [dim][inner], bias [dim])
// with inner = num_heads * dim_head, so Q, K, V come out as [rows][heads][dim_head], the
// layout of the flash and sparse kernels. Weights start as nn.Linear's (weight and bias
// uniform in ±1/sqrt(fan_in)), drawn in the order above; they are stored and packed for
// the GEMM by gemm/projection_set.h. The same seed gives the same weights.
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "gemm/projection.h"
#include "gemm/projection_set.h"
#include "runtime/named_weights.h"

namespace attn {
class ThreadPool;
}

namespace attn::asam {

class AttentionProjections {
 public:
  using Weights = ProjectionSet::Weights;

  AttentionProjections(int dim, int inner, uint64_t seed);

  int dim() const { return dim_; }
  int inner() const { return inner_; }
  // The weights in use (dequantized / widened when stored as int8 or fp16).
  Weights weights() const { return projections_.weights(); }
  void set_weights(Weights w) { projections_.set_weights(std::move(w)); }

  // The four weight matrices stored as float32, fp16 or int8 (gemm/projection.h); the float
  // matrices are dropped. Re-stores from the weights in use; set_weights() keeps it.
  void set_precision(WeightPrecision precision) { projections_.set_precision(precision); }
  WeightPrecision precision() const { return projections_.precision(); }
  // Bytes of weights and biases held now (float32 keeps row-major matrices and panels).
  int64_t weight_bytes() const { return projections_.weight_bytes(); }

  // x [rows][dim] -> q, k, v [rows][inner].
  void qkv(int64_t rows, const float* x, float* q, float* k, float* v, ThreadPool* pool) const;
  // One input projection, x [rows][dim] -> y [rows][inner]: for cross-attention, where
  // queries and keys/values come from different inputs.
  void q(int64_t rows, const float* x, float* y, ThreadPool* pool) const;
  void k(int64_t rows, const float* x, float* y, ThreadPool* pool) const;
  void v(int64_t rows, const float* x, float* y, ThreadPool* pool) const;
  // heads [rows][inner] -> y [rows][dim].
  void out(int64_t rows, const float* heads, float* y, ThreadPool* pool) const;

  // q_proj.weight, q_proj.bias, k_proj.*, v_proj.*, out_proj.* (the order of Weights);
  // the views of the weight matrices hold no data (nullptr) unless float32: read them from
  // weights() through the overload.
  std::vector<ParameterView> named_parameters() const { return named_parameters(projections_.stored()); }
  std::vector<ParameterView> named_parameters(const Weights& w) const;
  // The same arrays of `w` by name, for load_named (same order).
  static std::vector<std::vector<float>*> slots(Weights& w);

 private:
  int dim_, inner_;
  ProjectionSet projections_;
};

}  // namespace attn::asam
