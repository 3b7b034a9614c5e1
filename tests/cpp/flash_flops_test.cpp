// flash_flops counts 2 flops per multiply-add of q kᵀ and p v over the visible pairs.
#include <gtest/gtest.h>

#include "flash/flash_attention.h"
#include "reference_attention.h"

namespace {

using attn::CausalAlign;

TEST(FlashFlops, EqualsVisiblePairsTimesWork) {
  struct Dims { int b, sq, sk, hq, hkv, d, dv; };
  const Dims dims[] = {{1, 1, 1, 1, 1, 1, 1},     {2, 17, 33, 4, 2, 65, 7},
                       {1, 50, 20, 3, 1, 8, 16},  {3, 20, 50, 2, 2, 128, 64},
                       {1, 1, 4096, 8, 1, 64, 64}, {1, 1000, 1, 1, 1, 3, 5},
                       {2, 64, 64, 6, 3, 32, 48}};
  const std::pair<CausalAlign, ref::Causal> modes[] = {
      {CausalAlign::kNone, ref::Causal::kNone},
      {CausalAlign::kTopLeft, ref::Causal::kTopLeft},
      {CausalAlign::kBottomRight, ref::Causal::kBottomRight}};
  for (const Dims& x : dims) {
    attn::FlashShape s;
    s.batch = x.b, s.seq_q = x.sq, s.seq_k = x.sk, s.heads_q = x.hq, s.heads_kv = x.hkv;
    s.head_dim = x.d, s.value_dim = x.dv;
    for (const auto& [mode, ref_mode] : modes) {
      const double pairs = double(ref::visible_pairs(x.sq, x.sk, ref_mode));
      const double want = pairs * 2.0 * (x.d + x.dv) * x.hq * x.b;
      EXPECT_EQ(attn::flash_flops(s, mode), want)
          << "b" << x.b << " q" << x.sq << " k" << x.sk << " mode " << int(mode);
    }
  }
}

TEST(FlashFlops, KnownCounts) {
  // Square causal: n(n+1)/2 pairs either way; bottom-right with 3 extra keys adds 3 per row.
  attn::FlashShape s;
  s.seq_q = 4, s.seq_k = 4, s.head_dim = 2, s.value_dim = 3;
  EXPECT_EQ(attn::flash_flops(s, CausalAlign::kTopLeft), 10 * 2.0 * 5);
  EXPECT_EQ(attn::flash_flops(s, CausalAlign::kBottomRight), 10 * 2.0 * 5);
  EXPECT_EQ(attn::flash_flops(s, CausalAlign::kNone), 16 * 2.0 * 5);
  s.seq_k = 7;
  EXPECT_EQ(attn::flash_flops(s, CausalAlign::kBottomRight), 22 * 2.0 * 5);
  EXPECT_EQ(attn::flash_flops(s, CausalAlign::kTopLeft), 10 * 2.0 * 5);
  s.seq_k = 2;  // rows 0 and 1 see nothing, rows 2 and 3 see 1 and 2 keys
  EXPECT_EQ(attn::flash_flops(s, CausalAlign::kBottomRight), 3 * 2.0 * 5);
}

}  // namespace
