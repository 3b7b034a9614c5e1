// GoogleTest suite of the CUDA forward: every case draws fresh random inputs, runs the
// kernel on poisoned output buffers and compares with the float64 loops of
// tests/cpp/reference_attention.h (fed the same 16-bit-rounded inputs the GPU sees).
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "attn_cuda/flash.h"
#include "device_array.h"
#include "reference_attention.h"
#include "runtime/errors.h"

namespace {

using attn::cuda::Causal;
using attn::cuda::DType;
using attn::cuda::TensorView;

using cudatest::DeviceArray;
using cudatest::random_floats;
using cudatest::rel_l2;
using cudatest::rng;

struct Case {
  DType dtype = DType::kBFloat16;
  int batch = 1, seq_q = 1, seq_k = 1, heads_q = 1, heads_kv = 1, dim = 64;
  Causal causal = Causal::kNone;
  float softcap = 0, scale = 0, dropout = 0;
  bool bias = false, active = false;
  float active_density = 0.7f;  // fraction of active pairs
  bool empty_rows = false;      // some query rows with no active key at all
  int64_t keep_window = 0;
  int64_t window_left = -1, window_right = -1;  // sliding window; -1 = unlimited
  bool softmax = false;
  DType mask_dtype = DType::kUInt8;

  std::string name() const {
    return std::string(attn::cuda::dtype_name(dtype)) + " b" + std::to_string(batch) + " q" +
           std::to_string(seq_q) + " k" + std::to_string(seq_k) + " h" + std::to_string(heads_q) +
           "/" + std::to_string(heads_kv) + " d" + std::to_string(dim) + " causal" +
           std::to_string(int(causal)) + (bias ? " bias" : "") + (active ? " active" : "") +
           (keep_window ? " keep" + std::to_string(keep_window) : "") +
           (window_left >= 0 || window_right >= 0
                ? " window" + std::to_string(window_left) + "/" + std::to_string(window_right) : "") +
           (softcap > 0 ? " softcap" : "") + (dropout > 0 ? " dropout" : "");
  }
};

double tolerance(DType t) {
  // bf16 operands (and bf16 P in the P.V product): about 3 significant digits.
  return t == DType::kFloat16 ? 3e-3 : 2e-2;
}

// A case of dtype `t` and sizes batch x seq_q x seq_k with heads_q / heads_kv heads; every
// other field keeps its default (the tests below set the ones they exercise).
Case sized(DType t, int batch, int seq_q, int seq_k, int heads_q, int heads_kv) {
  Case c;
  c.dtype = t;
  c.batch = batch;
  c.seq_q = seq_q;
  c.seq_k = seq_k;
  c.heads_q = heads_q;
  c.heads_kv = heads_kv;
  return c;
}

void run_case(const Case& c) {
  SCOPED_TRACE(c.name());
  const size_t nq = size_t(c.batch) * c.seq_q * c.heads_q * c.dim;
  const size_t nk = size_t(c.batch) * c.seq_k * c.heads_kv * c.dim;
  const size_t npair = size_t(c.batch) * c.heads_kv * c.seq_q * c.seq_k;
  std::vector<float> q = random_floats(nq), k = random_floats(nk), v = random_floats(nk);
  DeviceArray dq(q, c.dtype), dk(k, c.dtype), dv(v, c.dtype);
  DeviceArray dout(nq, c.dtype);
  DeviceArray dlse(size_t(c.batch) * c.heads_q * c.seq_q, DType::kFloat32);
  DeviceArray dsoft(c.softmax ? size_t(c.batch) * c.heads_q * c.seq_q * c.seq_k : 1,
                    c.dtype == DType::kFloat32 ? DType::kBFloat16 : c.dtype);

  // Bias (zoh) and active mask per (batch, kv head, query, key).
  std::vector<float> bias, active;
  const DType bias_dtype = c.dtype;
  std::unique_ptr<DeviceArray> dbias, dactive;
  if (c.bias) {
    bias = random_floats(npair, -2.0f, 2.0f);
    dbias = std::make_unique<DeviceArray>(bias, bias_dtype);
  }
  if (c.active) {
    active.resize(npair);
    std::bernoulli_distribution on(c.active_density);
    for (float& a : active) a = on(rng()) ? 1.0f : 0.0f;
    if (c.empty_rows) {  // every 5th query row of every head sees nothing
      for (size_t row = 0; row < npair / c.seq_k; ++row)
        if ((row % c.seq_q) % 5 == 2) std::fill_n(active.begin() + row * c.seq_k, c.seq_k, 0.0f);
    }
    dactive = std::make_unique<DeviceArray>(active, c.mask_dtype);
  }

  attn::cuda::FlashForwardArgs args;
  args.q = dq.view({c.batch, c.seq_q, c.heads_q, c.dim});
  args.k = dk.view({c.batch, c.seq_k, c.heads_kv, c.dim});
  args.v = dv.view({c.batch, c.seq_k, c.heads_kv, c.dim});
  args.out = dout.view({c.batch, c.seq_q, c.heads_q, c.dim});
  args.lse = dlse.view({c.batch, c.heads_q, c.seq_q});
  if (c.softmax) args.softmax = dsoft.view({c.batch, c.heads_q, c.seq_q, c.seq_k});
  if (dbias) args.bias = dbias->view({c.batch, c.heads_kv, c.seq_q, c.seq_k});
  if (dactive) args.active_mask = dactive->view({c.batch, c.heads_kv, c.seq_q, c.seq_k});
  args.scale = c.scale;
  args.softcap = c.softcap;
  args.dropout = c.dropout;
  args.seed = rng()();
  args.causal = c.causal;
  args.keep_window_size = c.keep_window;
  args.window_left = c.window_left;
  args.window_right = c.window_right;
  ASSERT_NO_THROW(attn::cuda::flash_forward(args));
  CUDA_OK(cudaDeviceSynchronize());

  // Reference: expand bias / mask to per-query-head arrays; the keep window becomes
  // part of the boolean mask (top keep_window keys by bias among the candidates).
  const int group = c.heads_q / c.heads_kv;
  const size_t nqpair = size_t(c.batch) * c.heads_q * c.seq_q * c.seq_k;
  std::vector<float> add(c.bias ? nqpair : 0);
  const bool windowed = c.window_left >= 0 || c.window_right >= 0;
  std::vector<uint8_t> allowed((c.active || c.keep_window || windowed) ? nqpair : 0, 1);
  // The window is around the diagonal j = i + d (d = seq_k - seq_q under bottom-right causal).
  const int64_t diagonal = c.causal == Causal::kBottomRight ? int64_t{c.seq_k} - c.seq_q : 0;
  auto in_window = [&](int64_t i, int64_t j) {
    return (c.window_left < 0 || j >= i + diagonal - c.window_left) &&
           (c.window_right < 0 || j <= i + diagonal + c.window_right);
  };
  ref::Config rc;
  rc.causal = c.causal == Causal::kNone ? ref::Causal::kNone
              : c.causal == Causal::kTopLeft ? ref::Causal::kTopLeft : ref::Causal::kBottomRight;
  rc.seq_q = c.seq_q;
  rc.seq_k = c.seq_k;
  for (int b = 0; b < c.batch; ++b)
    for (int h = 0; h < c.heads_q; ++h)
      for (int i = 0; i < c.seq_q; ++i) {
        const size_t src = ((size_t(b) * c.heads_kv + h / group) * c.seq_q + i) * c.seq_k;
        const size_t dst = ((size_t(b) * c.heads_q + h) * c.seq_q + i) * c.seq_k;
        std::vector<float> cand;
        for (int j = 0; j < c.seq_k; ++j) {
          if (c.bias) add[dst + j] = bias[src + j];
          const bool on = (!c.active || active[src + j] != 0.0f) && ref::causal_visible(rc, i, j) && in_window(i, j);
          if (!allowed.empty()) allowed[dst + j] = on;
          if (on && c.bias) cand.push_back(bias[src + j]);
        }
        if (c.keep_window > 0 && int64_t(cand.size()) > c.keep_window) {
          std::nth_element(cand.begin(), cand.begin() + (c.keep_window - 1), cand.end(),
                           std::greater<float>());
          const float cut = cand[c.keep_window - 1];
          for (int j = 0; j < c.seq_k; ++j)
            if (bias[src + j] < cut) allowed[dst + j] = 0;
        }
      }
  rc.batch = c.batch;
  rc.heads_q = c.heads_q;
  rc.heads_kv = c.heads_kv;
  rc.head_dim = rc.value_dim = c.dim;
  rc.has_scale = c.scale > 0;
  rc.scale = c.scale;
  rc.softcap = c.softcap;
  rc.dropout = c.dropout;
  rc.seed = args.seed;
  rc.mask_add = c.bias ? add.data() : nullptr;
  rc.mask_bool = allowed.empty() ? nullptr : allowed.data();
  rc.mask_batch_stride = int64_t{c.heads_q} * c.seq_q * c.seq_k;
  rc.mask_head_stride = int64_t{c.seq_q} * c.seq_k;
  rc.mask_row_stride = c.seq_k;
  const ref::Result want = ref::attention(rc, q.data(), k.data(), v.data(), c.softmax);

  const std::vector<float> out = dout.download();
  for (size_t i = 0; i < out.size(); ++i) ASSERT_TRUE(std::isfinite(out[i])) << "out[" << i << "] not written or not finite";
  EXPECT_LT(rel_l2(out, want.out), tolerance(c.dtype));
  // Rows that see no key: exactly zero output, lse = -inf.
  const std::vector<float> lse = dlse.download();
  for (int b = 0; b < c.batch; ++b)
    for (int h = 0; h < c.heads_q; ++h)
      for (int i = 0; i < c.seq_q; ++i) {
        const size_t at = (size_t(b) * c.heads_q + h) * c.seq_q + i;
        if (want.row_masked[at]) {
          ASSERT_EQ(lse[at], -INFINITY) << "row " << i;
          for (int d = 0; d < c.dim; ++d)
            ASSERT_EQ(out[((size_t(b) * c.seq_q + i) * c.heads_q + h) * c.dim + d], 0.0f);
        } else {
          ASSERT_NEAR(lse[at], want.lse[at], 2e-2 + 2e-3 * std::fabs(want.lse[at])) << "row " << i;
        }
      }
  if (c.softmax) {
    const std::vector<float> p = dsoft.download();
    EXPECT_LT(rel_l2(p, want.weights), tolerance(c.dtype));
  }
}

TEST(CudaFlashForward, DtypesHeadDimsCausalOddSizes) {
  const DType dtypes[] = {DType::kFloat16, DType::kBFloat16, DType::kFloat32};
  const int dims[] = {64, 128};
  const Causal causals[] = {Causal::kNone, Causal::kTopLeft, Causal::kBottomRight};
  const int sizes[][2] = {{1, 1}, {17, 3}, {3, 130}, {200, 1000}, {257, 129}};
  for (DType t : dtypes)
    for (int d : dims)
      for (Causal cz : causals)
        for (auto& s : sizes) {
          Case c = sized(t, 2, s[0], s[1], 4, 2);
          c.dim = d;
          c.causal = cz;
          run_case(c);
        }
}

TEST(CudaFlashForward, MultiQueryScaleSoftcapDropout) {
  for (DType t : {DType::kFloat16, DType::kBFloat16}) {
    Case c = sized(t, 1, 150, 300, 6, 1);
    c.scale = 0.3f;
    c.softcap = 2.5f;
    run_case(c);
    c.softcap = 0;
    c.scale = 0;
    c.dropout = 0.2f;
    c.causal = Causal::kTopLeft;
    run_case(c);
  }
}

TEST(CudaFlashForward, BiasAndActiveMaskWithEmptyRows) {
  for (DType t : {DType::kFloat16, DType::kBFloat16})
    for (DType mask_t : {DType::kUInt8, t})
      for (Causal cz : {Causal::kNone, Causal::kTopLeft}) {
        Case c = sized(t, 2, 190, 333, 4, 2);
        c.mask_dtype = mask_t;
        c.bias = true;
        c.active = true;
        c.empty_rows = true;
        c.causal = cz;
        c.softmax = true;
        run_case(c);
      }
}

TEST(CudaFlashForward, SparseActiveMaskSkipsTiles) {
  Case c = sized(DType::kBFloat16, 1, 300, 700, 2, 2);
  c.active = true;
  c.active_density = 0.002f;  // most tiles hold no active pair
  c.dim = 128;
  run_case(c);
}

TEST(CudaFlashForward, KeepWindowSelectsTopKeysByBias) {
  for (Causal cz : {Causal::kNone, Causal::kTopLeft, Causal::kBottomRight})
    for (int64_t window : {1, 37, 256}) {
      Case c = sized(DType::kBFloat16, 1, 140, 520, 4, 2);
      c.bias = true;
      c.active = window == 37;
      c.causal = cz;
      c.keep_window = window;
      c.softmax = window == 37;
      run_case(c);
    }
}

// Rows long enough for every pre-pass shape: 256 threads x 4 chunks in registers (5000
// keys), 1024 x 4 (20000) and the row read again at each step (40000).
TEST(CudaFlashForward, KeepWindowOnLongRows) {
  struct Long {
    DType t;
    int seq_k;
    int64_t window;
    Causal causal;
    bool active;
  };
  for (const Long& l : {Long{DType::kBFloat16, 5000, 600, Causal::kNone, true},
                        Long{DType::kFloat32, 5000, 17, Causal::kBottomRight, false},
                        Long{DType::kFloat16, 20000, 2500, Causal::kNone, false},
                        Long{DType::kBFloat16, 40000, 5000, Causal::kBottomRight, true}}) {
    Case c = sized(l.t, 1, 3, l.seq_k, 2, 1);
    c.bias = true;
    c.active = l.active;
    c.causal = l.causal;
    c.keep_window = l.window;
    run_case(c);
  }
}

// Enough query rows that the pre-pass hands each thread block several consecutive rows
// (each later row's search starts from its predecessor's answer): 16384 rows give 4 per
// block on a 132-SM GPU. Every bias dtype, a 2-byte and a 1-byte mask, causal both ways.
TEST(CudaFlashForward, KeepWindowManyRowsPerBlock) {
  struct Many {
    DType t;
    Causal causal;
    bool active;
    DType mask;
  };
  for (const Many& m : {Many{DType::kBFloat16, Causal::kNone, true, DType::kBFloat16},
                        Many{DType::kFloat16, Causal::kBottomRight, false, DType::kUInt8},
                        Many{DType::kFloat32, Causal::kTopLeft, true, DType::kUInt8}}) {
    Case c = sized(m.t, 2, 2048, 300, 4, 4);
    c.bias = true;
    c.active = m.active;
    c.mask_dtype = m.mask;
    c.causal = m.causal;
    c.keep_window = 37;
    run_case(c);
  }
}

// ASAM's local pattern on the GPU: a sliding window, alone and with causal, bias, softcap;
// windows narrower and wider than a tile, one-sided, and rows whose window is empty.
TEST(CudaFlashForward, SlidingWindow) {
  struct W {
    int64_t left, right;
    Causal causal;
  };
  for (const W& w : {W{64, 64, Causal::kNone}, W{0, 0, Causal::kNone}, W{5, 200, Causal::kNone},
                     W{-1, 3, Causal::kNone}, W{100, -1, Causal::kTopLeft}, W{17, 0, Causal::kBottomRight}})
    for (int d : {64, 128}) {
      Case c = sized(DType::kBFloat16, 2, 300, 333, 4, 2);
      c.dim = d;
      c.window_left = w.left;
      c.window_right = w.right;
      c.causal = w.causal;
      run_case(c);
      c.bias = true;
      c.softcap = 20.0f;
      c.dtype = DType::kFloat16;
      run_case(c);
    }
}

// --- argument checks: each names the parameter, nothing is launched ---------------------

struct ValidArgs {
  std::vector<float> qh = random_floats(2 * 8 * 4 * 64);
  DeviceArray q{qh, DType::kBFloat16}, k{qh, DType::kBFloat16}, v{qh, DType::kBFloat16};
  DeviceArray out{qh.size(), DType::kBFloat16};
  attn::cuda::FlashForwardArgs args() const {
    attn::cuda::FlashForwardArgs a;
    a.q = q.view({2, 8, 4, 64});
    a.k = k.view({2, 8, 4, 64});
    a.v = v.view({2, 8, 4, 64});
    a.out = out.view({2, 8, 4, 64});
    return a;
  }
};

TEST(CudaFlashForward, RefusesBadArgumentsNamingTheParameter) {
  ValidArgs va;
  std::vector<float> host(2 * 8 * 4 * 64);
  cudatest::expect_refusals(
      [&va] { return va.args(); }, attn::cuda::validate_flash_forward,
      {
          {"k", [](attn::cuda::FlashForwardArgs& a) { a.k.dtype = DType::kFloat16; }},
          {"v", [](attn::cuda::FlashForwardArgs& a) { a.v.shape[1] = 7; }},
          {"q", [](attn::cuda::FlashForwardArgs& a) { a.q.stride[3] = 2; }},
          {"q", [](attn::cuda::FlashForwardArgs& a) { a.q.shape[3] = a.k.shape[3] = a.v.shape[3] = a.out.shape[3] = 96; }},
          {"k", [](attn::cuda::FlashForwardArgs& a) { a.k.shape[2] = a.v.shape[2] = 3; }},
          {"out", [&](attn::cuda::FlashForwardArgs& a) { a.out.data = host.data(); }},
          {"dropout", [](attn::cuda::FlashForwardArgs& a) { a.dropout = 1.0f; }},
          {"window_left", [](attn::cuda::FlashForwardArgs& a) { a.window_left = -2; }},
          {"softcap", [](attn::cuda::FlashForwardArgs& a) { a.softcap = NAN; }},
          {"keep_window_size", [](attn::cuda::FlashForwardArgs& a) { a.keep_window_size = 4; }},
          {"bias", [&](attn::cuda::FlashForwardArgs& a) { a.bias = va.q.view({2, 4, 8, 9}); }},
          {"lse", [&](attn::cuda::FlashForwardArgs& a) { a.lse = va.out.view({2, 4, 8}); }},  // bfloat16, not float32
      });
}

}  // namespace
