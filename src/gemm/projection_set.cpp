#include "gemm/projection_set.h"

#include <utility>

namespace attn {

namespace {

using Weights = ProjectionSet::Weights;
using Part = std::vector<float> Weights::*;
// Each projection's matrix and bias, in Projection's order.
constexpr Part kMatrix[4] = {&Weights::q, &Weights::k, &Weights::v, &Weights::out};
constexpr Part kBias[4] = {&Weights::q_bias, &Weights::k_bias, &Weights::v_bias, &Weights::out_bias};

}  // namespace

void ProjectionSet::set_weights(Weights w) {
  std::array<ProjectionWeights, 4> packed;
  for (size_t i = 0; i < 4; ++i) {
    packed[i] = pack_weight(shapes_[i].out_features, shapes_[i].in_features, w.*kMatrix[i], precision_);
  }
  if (precision_ != WeightPrecision::kFp32) {
    for (Part m : kMatrix) std::vector<float>().swap(w.*m);
  }
  w_ = std::move(w);
  packed_ = std::move(packed);
}

Weights ProjectionSet::weights() const {
  Weights w = w_;
  if (precision_ != WeightPrecision::kFp32) {
    for (size_t i = 0; i < 4; ++i) w.*kMatrix[i] = unpack_weight(packed_[i]);
  }
  return w;
}

void ProjectionSet::set_precision(WeightPrecision precision) {
  Weights w = weights();
  const WeightPrecision old = precision_;
  precision_ = precision;
  try {
    set_weights(std::move(w));
  } catch (...) {
    precision_ = old;  // weights the form cannot hold: nothing changed
    throw;
  }
}

int64_t ProjectionSet::weight_bytes() const {
  int64_t bytes = 0;
  for (size_t i = 0; i < 4; ++i) {
    bytes += packed_[i].bytes();
    bytes += int64_t((w_.*kMatrix[i]).size() * sizeof(float)) + int64_t((w_.*kBias[i]).size() * sizeof(float));
  }
  return bytes;
}

void ProjectionSet::project(Projection which, int64_t rows, const float* x, float* y, ThreadPool* pool) const {
  const size_t i = size_t(which);
  project_rows(packed_[i], w_.*kBias[i], rows, x, y, pool);
}

}  // namespace attn
