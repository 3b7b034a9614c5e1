// The four stored projections (gemm/projection_set.h): each projection against the
// single-projection call with its own shape, with and without biases; the precisions'
// weights and bytes; and a precision the weights do not fit leaving the set as it was.
#include "gemm/projection_set.h"

#include <gtest/gtest.h>

#include <cstring>

#include "runtime/errors.h"
#include "test_util.h"

namespace {

using attn::ProjectionSet;
using attn::WeightPrecision;
using Projection = ProjectionSet::Projection;

// q: 5 -> 4, k: 3 -> 4, v: 7 -> 4, out: 4 -> 6, so a mixed-up shape cannot pass.
const ProjectionSet::Shape kShapes[4] = {{4, 5}, {4, 3}, {4, 7}, {6, 4}};
constexpr Projection kOrder[4] = {Projection::kQuery, Projection::kKey, Projection::kValue, Projection::kOutput};

ProjectionSet::Weights random_weights(std::mt19937_64& rng, bool bias) {
  ProjectionSet::Weights w;
  std::vector<float>* matrices[4] = {&w.q, &w.k, &w.v, &w.out};
  std::vector<float>* biases[4] = {&w.q_bias, &w.k_bias, &w.v_bias, &w.out_bias};
  for (int i = 0; i < 4; ++i) {
    *matrices[i] = testutil::randn(rng, size_t(kShapes[i].out_features) * kShapes[i].in_features);
    if (bias) *biases[i] = testutil::randn(rng, size_t(kShapes[i].out_features));
  }
  return w;
}

ProjectionSet make_set() { return {kShapes[0], kShapes[1], kShapes[2], kShapes[3]}; }

// Each projection of the set gives, bit for bit, what project_rows gives for its weights.
void expect_projections(const ProjectionSet& set, const ProjectionSet::Weights& used, std::mt19937_64& rng) {
  const std::vector<float>* matrices[4] = {&used.q, &used.k, &used.v, &used.out};
  const std::vector<float>* biases[4] = {&used.q_bias, &used.k_bias, &used.v_bias, &used.out_bias};
  constexpr int64_t kRows = 9;
  for (int i = 0; i < 4; ++i) {
    const auto [out, in] = kShapes[i];
    const std::vector<float> x = testutil::randn(rng, size_t(kRows) * in);
    std::vector<float> got(size_t(kRows) * out), want(size_t(kRows) * out);
    set.project(kOrder[i], kRows, x.data(), got.data(), nullptr);
    attn::project_rows(attn::pack_weight(out, in, *matrices[i], set.precision()), *biases[i], kRows, x.data(),
                       want.data(), nullptr);
    EXPECT_EQ(0, std::memcmp(got.data(), want.data(), got.size() * sizeof(float))) << "projection " << i;
  }
}

TEST(ProjectionSet, EachProjectionWithItsShapeAndBias) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  for (bool bias : {true, false}) {
    ProjectionSet set = make_set();
    const ProjectionSet::Weights w = random_weights(rng, bias);
    set.set_weights(w);
    EXPECT_EQ(set.weights().k, w.k);
    EXPECT_EQ(set.weights().out_bias, w.out_bias);
    expect_projections(set, w, rng);
  }
}

TEST(ProjectionSet, PrecisionsStoreTheWeightsTheyUse) {
  ATTN_TRACE_SEED();
  std::mt19937_64 rng(testutil::test_seed());
  ProjectionSet set = make_set();
  const ProjectionSet::Weights w = random_weights(rng, true);
  set.set_weights(w);
  const int64_t fp32_bytes = set.weight_bytes();
  int64_t floats = 0;
  for (const auto* v : {&w.q, &w.q_bias, &w.k, &w.k_bias, &w.v, &w.v_bias, &w.out, &w.out_bias}) floats += int64_t(v->size());
  EXPECT_GT(fp32_bytes, floats * int64_t(sizeof(float)));  // the row-major matrices and the panels

  for (WeightPrecision p : {WeightPrecision::kFp16, WeightPrecision::kInt8}) {
    set.set_precision(WeightPrecision::kFp32);
    set.set_weights(w);
    set.set_precision(p);
    EXPECT_EQ(set.precision(), p);
    EXPECT_TRUE(set.stored().q.empty() && set.stored().out.empty());  // the float matrices are dropped
    EXPECT_EQ(set.stored().v_bias, w.v_bias);
    EXPECT_LT(set.weight_bytes(), fp32_bytes / 2);
    const ProjectionSet::Weights used = set.weights();
    EXPECT_EQ(used.v, attn::unpack_weight(attn::pack_weight(4, 7, w.v, p)));
    expect_projections(set, used, rng);
    // set_weights() keeps the precision.
    set.set_weights(w);
    EXPECT_EQ(set.precision(), p);
    EXPECT_TRUE(set.stored().k.empty());
  }
}

TEST(ProjectionSet, APrecisionTheWeightsDoNotFitChangesNothing) {
  std::mt19937_64 rng(testutil::test_seed());
  ProjectionSet set = make_set();
  ProjectionSet::Weights w = random_weights(rng, true);
  w.out[2] = 1e6f;  // past fp16's 65504
  set.set_weights(w);
  const int64_t before = set.weight_bytes();
  try {
    set.set_precision(WeightPrecision::kFp16);
    ADD_FAILURE() << "no error, expected one naming weights";
  } catch (const attn::AttnError& e) {
    EXPECT_EQ(e.param(), "weights") << e.what();
  }
  EXPECT_EQ(set.precision(), WeightPrecision::kFp32);
  EXPECT_EQ(set.weight_bytes(), before);
  EXPECT_EQ(set.weights().out, w.out);
}

}  // namespace
