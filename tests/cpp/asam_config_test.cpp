// ASAMConfig: the seed's defaults, dim_head's automatic value, and every bad option refused
// with an error that names it.
#include "asam/asam_config.h"

#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>

#include "runtime/errors.h"

namespace {

using attn::asam::ASAMConfig;
using attn::asam::validate_asam_config;

TEST(ASAMConfig, DefaultsAreTheSeeds) {
  const ASAMConfig c;
  EXPECT_EQ(c.dim, 512);
  EXPECT_EQ(c.num_heads, 8);
  EXPECT_EQ(c.dim_head, 64);
  EXPECT_FLOAT_EQ(c.dropout, 0.1f);
  EXPECT_EQ(c.pattern_type, "hierarchical");
  EXPECT_EQ(c.window_size, 128);
  EXPECT_EQ(c.stride, 32);
  EXPECT_EQ(c.num_clusters, 32);
  EXPECT_TRUE(c.use_adaptive_gate);
  EXPECT_EQ(c.gate_hidden_dim, 128);
  EXPECT_FALSE(c.use_gradient_checkpointing);
  EXPECT_EQ(c.block_size, 64);
  EXPECT_EQ(c.seed, 0u);

  const ASAMConfig v = validate_asam_config(c);
  EXPECT_EQ(v.dim_head, 64);
  EXPECT_EQ(v.inner_dim(), 512);
}

TEST(ASAMConfig, DimHeadZeroMeansDimOverHeads) {
  ASAMConfig c;
  c.dim = 96, c.num_heads = 6, c.dim_head = 0;
  const ASAMConfig v = validate_asam_config(c);
  EXPECT_EQ(v.dim_head, 16);
  EXPECT_EQ(v.inner_dim(), 96);
}

TEST(ASAMConfig, AGivenDimHeadIsKeptAsTheSeedsLayerDoes) {
  ASAMConfig c;
  c.dim = 100, c.num_heads = 3, c.dim_head = 20;  // 3 does not divide 100: fine, inner width 60
  const ASAMConfig v = validate_asam_config(c);
  EXPECT_EQ(v.dim_head, 20);
  EXPECT_EQ(v.inner_dim(), 60);
}

TEST(ASAMConfig, AcceptsEveryPatternTypeAndBoundaryValue) {
  for (const char* p : {"local", "strided", "random", "clustered", "hierarchical", "adaptive"}) {
    ASAMConfig c;
    c.pattern_type = p;
    EXPECT_NO_THROW(validate_asam_config(c)) << p;
    EXPECT_TRUE(attn::asam::is_asam_pattern_type(p)) << p;
  }
  const std::function<void(ASAMConfig&)> fine[] = {
      [](ASAMConfig& c) { c.dropout = 0.0f; },        [](ASAMConfig& c) { c.dropout = 0.999f; },
      [](ASAMConfig& c) { c.block_size = 32; },       [](ASAMConfig& c) { c.block_size = 1024; },
      [](ASAMConfig& c) { c.block_size = 96; },       [](ASAMConfig& c) { c.window_size = 1; },
      [](ASAMConfig& c) { c.stride = 1; },            [](ASAMConfig& c) { c.num_clusters = 1; },
      [](ASAMConfig& c) { c.gate_hidden_dim = 1; },   [](ASAMConfig& c) { c.use_adaptive_gate = false; },
      [](ASAMConfig& c) { c.use_gradient_checkpointing = true; },
      [](ASAMConfig& c) { c.seed = ~uint64_t{0}; },
  };
  for (const auto& edit : fine) {
    ASAMConfig c;
    edit(c);
    EXPECT_NO_THROW(validate_asam_config(c));
  }
}

TEST(ASAMConfig, EachBadOptionIsRefusedByName) {
  struct Case {
    std::function<void(ASAMConfig&)> edit;
    std::string param;
  };
  const Case cases[] = {
      {[](ASAMConfig& c) { c.dim = 0; }, "dim"},
      {[](ASAMConfig& c) { c.dim = -512; }, "dim"},
      {[](ASAMConfig& c) { c.num_heads = 0; }, "numHeads"},
      {[](ASAMConfig& c) { c.num_heads = -1; }, "numHeads"},
      {[](ASAMConfig& c) { c.dim_head = 0, c.num_heads = 7; }, "numHeads"},  // 7 does not divide 512
      {[](ASAMConfig& c) { c.dim_head = -64; }, "dimHead"},
      {[](ASAMConfig& c) { c.num_heads = 1 << 16, c.dim_head = 1 << 16; }, "dimHead"},
      {[](ASAMConfig& c) { c.dropout = -0.1f; }, "dropout"},
      {[](ASAMConfig& c) { c.dropout = 1.0f; }, "dropout"},
      {[](ASAMConfig& c) { c.dropout = std::nanf(""); }, "dropout"},
      {[](ASAMConfig& c) { c.pattern_type = "dense"; }, "patternType"},
      {[](ASAMConfig& c) { c.pattern_type = "Local"; }, "patternType"},
      {[](ASAMConfig& c) { c.pattern_type = ""; }, "patternType"},
      {[](ASAMConfig& c) { c.window_size = 0; }, "windowSize"},
      {[](ASAMConfig& c) { c.stride = 0; }, "stride"},
      {[](ASAMConfig& c) { c.stride = -32; }, "stride"},
      {[](ASAMConfig& c) { c.num_clusters = 0; }, "numClusters"},
      {[](ASAMConfig& c) { c.gate_hidden_dim = 0; }, "gateHiddenDim"},
      {[](ASAMConfig& c) { c.block_size = 0; }, "blockSize"},
      {[](ASAMConfig& c) { c.block_size = 8; }, "blockSize"},
      {[](ASAMConfig& c) { c.block_size = 40; }, "blockSize"},
      {[](ASAMConfig& c) { c.block_size = 272; }, "blockSize"},
      {[](ASAMConfig& c) { c.block_size = 1056; }, "blockSize"},
      {[](ASAMConfig& c) { c.block_size = -64; }, "blockSize"},
      {[](ASAMConfig& c) { c.dim = 1 << 30, c.dim_head = 0, c.num_heads = 1; }, "dim"},
  };
  for (const Case& k : cases) {
    ASAMConfig c;
    k.edit(c);
    try {
      validate_asam_config(c);
      ADD_FAILURE() << "accepted a bad " << k.param;
    } catch (const attn::AttnError& e) {
      EXPECT_EQ(e.param(), k.param) << e.what();
      EXPECT_EQ(e.kind(), attn::ErrorKind::kRange) << e.what();
      EXPECT_NE(std::string(e.what()).find(k.param), std::string::npos) << e.what();
    }
  }
}

TEST(ASAMConfig, PatternTypeErrorListsTheChoices) {
  ASAMConfig c;
  c.pattern_type = "dense";
  try {
    validate_asam_config(c);
    ADD_FAILURE() << "accepted pattern_type dense";
  } catch (const attn::AttnError& e) {
    const std::string what = e.what();
    for (const char* p : {"local", "strided", "random", "clustered", "hierarchical", "adaptive", "'dense'"}) {
      EXPECT_NE(what.find(p), std::string::npos) << what;
    }
  }
}

}  // namespace
