#include <gtest/gtest.h>
#include "flash/flash_attention.h"
#include "runtime/thread_pool.h"
#include <vector>
#include <random>
#include <cmath>
TEST(Smoke, Runs) {
  attn::FlashShape s; s.seq_q = 37; s.seq_k = 300; s.head_dim = 5; s.value_dim = 7; s.heads_q = 2; s.heads_kv=1;
  std::mt19937 g(1); std::normal_distribution<float> nd;
  std::vector<float> q(37*2*5), k(300*5), v(300*7), o(37*2*7);
  for (auto& x: q) x = nd(g); for (auto& x: k) x = nd(g); for (auto& x: v) x = nd(g);
  attn::FlashOptions opt; opt.causal = attn::CausalAlign::kBottomRight;
  attn::ThreadPool pool(2);
  attn::flash_forward(s, opt, {q.data(), k.data(), v.data(), o.data(), nullptr}, &pool);
  // reference
  double maxerr = 0;
  for (int h = 0; h < 2; ++h) for (int i = 0; i < 37; ++i) {
    std::vector<double> sc(300); double mx = -1e300;
    int lim = i + 300 - 37;
    for (int j = 0; j < 300; ++j) { double d = 0; for (int c = 0; c < 5; ++c) d += double(q[(i*2+h)*5+c])*k[j*5+c]; sc[j] = j <= lim ? d / std::sqrt(5.0) : -INFINITY; mx = std::max(mx, sc[j]); }
    double sum = 0; for (auto& x : sc) { x = std::exp(x - mx); sum += x; }
    for (int c = 0; c < 7; ++c) { double acc = 0; for (int j = 0; j < 300; ++j) acc += sc[j]*v[j*7+c]; acc /= sum; maxerr = std::max(maxerr, std::abs(acc - o[(i*2+h)*7+c])); }
  }
  EXPECT_LT(maxerr, 1e-5);
}
