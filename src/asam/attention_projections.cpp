#include "asam/attention_projections.h"

#include <cmath>
#include <utility>

#include "gemm/projection.h"
#include "runtime/uniform_rng.h"

namespace attn::asam {

AttentionProjections::AttentionProjections(int dim, int inner, uint64_t seed) : dim_(dim), inner_(inner) {
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

void AttentionProjections::set_weights(Weights w) {
  Packed p{pack_weight(inner_, dim_, w.q), pack_weight(inner_, dim_, w.k), pack_weight(inner_, dim_, w.v),
           pack_weight(dim_, inner_, w.out)};
  w_ = std::move(w);
  packed_ = std::move(p);
}

void AttentionProjections::qkv(int64_t rows, const float* x, float* q, float* k, float* v, ThreadPool* pool) const {
  this->q(rows, x, q, pool);
  this->k(rows, x, k, pool);
  this->v(rows, x, v, pool);
}

void AttentionProjections::q(int64_t rows, const float* x, float* y, ThreadPool* pool) const {
  project_rows(packed_.q, w_.q_bias, rows, x, y, pool);
}

void AttentionProjections::k(int64_t rows, const float* x, float* y, ThreadPool* pool) const {
  project_rows(packed_.k, w_.k_bias, rows, x, y, pool);
}

void AttentionProjections::v(int64_t rows, const float* x, float* y, ThreadPool* pool) const {
  project_rows(packed_.v, w_.v_bias, rows, x, y, pool);
}

void AttentionProjections::out(int64_t rows, const float* heads, float* y, ThreadPool* pool) const {
  project_rows(packed_.out, w_.out_bias, rows, heads, y, pool);
}

std::vector<ParameterView> AttentionProjections::named_parameters() const {
  return {{"q_proj.weight", {inner_, dim_}, w_.q.data()},     {"q_proj.bias", {inner_}, w_.q_bias.data()},
          {"k_proj.weight", {inner_, dim_}, w_.k.data()},     {"k_proj.bias", {inner_}, w_.k_bias.data()},
          {"v_proj.weight", {inner_, dim_}, w_.v.data()},     {"v_proj.bias", {inner_}, w_.v_bias.data()},
          {"out_proj.weight", {dim_, inner_}, w_.out.data()}, {"out_proj.bias", {dim_}, w_.out_bias.data()}};
}

std::vector<std::vector<float>*> AttentionProjections::slots(Weights& w) {
  return {&w.q, &w.q_bias, &w.k, &w.k_bias, &w.v, &w.v_bias, &w.out, &w.out_bias};
}

}  // namespace attn::asam
