#include "asam/attention_projections.h"

#include <cmath>
#include <utility>

#include "runtime/uniform_rng.h"

namespace attn::asam {

AttentionProjections::AttentionProjections(int dim, int inner, uint64_t seed)
    : dim_(dim), inner_(inner), projections_({inner, dim}, {inner, dim}, {inner, dim}, {dim, inner}) {
  UniformRng rng{seed};
  const size_t d = size_t(dim), i = size_t(inner);
  const float in_bound = 1.0f / std::sqrt(float(dim)), out_bound = 1.0f / std::sqrt(float(inner));
  Weights w;
  w.q = rng.fill(i * d, in_bound);
  w.q_bias = rng.fill(i, in_bound);
  w.k = rng.fill(i * d, in_bound);
  w.k_bias = rng.fill(i, in_bound);
  w.v = rng.fill(i * d, in_bound);
  w.v_bias = rng.fill(i, in_bound);
  w.out = rng.fill(d * i, out_bound);
  w.out_bias = rng.fill(d, out_bound);
  set_weights(std::move(w));
}

void AttentionProjections::qkv(int64_t rows, const float* x, float* q, float* k, float* v, ThreadPool* pool) const {
  this->q(rows, x, q, pool);
  this->k(rows, x, k, pool);
  this->v(rows, x, v, pool);
}

void AttentionProjections::q(int64_t rows, const float* x, float* y, ThreadPool* pool) const {
  projections_.project(ProjectionSet::Projection::kQuery, rows, x, y, pool);
}

void AttentionProjections::k(int64_t rows, const float* x, float* y, ThreadPool* pool) const {
  projections_.project(ProjectionSet::Projection::kKey, rows, x, y, pool);
}

void AttentionProjections::v(int64_t rows, const float* x, float* y, ThreadPool* pool) const {
  projections_.project(ProjectionSet::Projection::kValue, rows, x, y, pool);
}

void AttentionProjections::out(int64_t rows, const float* heads, float* y, ThreadPool* pool) const {
  projections_.project(ProjectionSet::Projection::kOutput, rows, heads, y, pool);
}

std::vector<ParameterView> AttentionProjections::named_parameters(const Weights& w) const {
  auto data = [](const std::vector<float>& v) { return v.empty() ? nullptr : v.data(); };
  return {{"q_proj.weight", {inner_, dim_}, data(w.q)},     {"q_proj.bias", {inner_}, data(w.q_bias)},
          {"k_proj.weight", {inner_, dim_}, data(w.k)},     {"k_proj.bias", {inner_}, data(w.k_bias)},
          {"v_proj.weight", {inner_, dim_}, data(w.v)},     {"v_proj.bias", {inner_}, data(w.v_bias)},
          {"out_proj.weight", {dim_, inner_}, data(w.out)}, {"out_proj.bias", {dim_}, data(w.out_bias)}};
}

std::vector<std::vector<float>*> AttentionProjections::slots(Weights& w) {
  return {&w.q, &w.q_bias, &w.k, &w.k_bias, &w.v, &w.v_bias, &w.out, &w.out_bias};
}

}  // namespace attn::asam
