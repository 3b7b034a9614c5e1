// GoogleTest suite of the CUDA backward: fresh random inputs, the forward (tested on its own)
// gives out and lse, the backward writes into poisoned buffers, and dq / dk / dv / dbias are
// compared with the float64 loops of reference_backward.h fed the same 16-bit inputs.
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
#include "attn_cuda/flash_backward.h"
#include "device_array.h"
#include "reference_backward.h"
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
  bool bias = false, active = false, empty_rows = false, dbias = false;
  bool float_grads = false;  // dq / dk / dv / dbias in float32

  std::string name() const {
    return std::string(attn::cuda::dtype_name(dtype)) + " b" + std::to_string(batch) + " q" +
           std::to_string(seq_q) + " k" + std::to_string(seq_k) + " h" + std::to_string(heads_q) + "/" +
           std::to_string(heads_kv) + " d" + std::to_string(dim) + " causal" + std::to_string(int(causal)) +
           (bias ? " bias" : "") + (active ? " active" : "") + (empty_rows ? " empty_rows" : "") +
           (dbias ? " dbias" : "") + (softcap > 0 ? " softcap" : "") + (dropout > 0 ? " dropout" : "") +
           (float_grads ? " float_grads" : "");
  }
};

double tolerance(DType t) { return t == DType::kFloat16 ? 5e-3 : 3e-2; }

double l2(const std::vector<double>& x) {
  double sum = 0;
  for (double v : x) sum += v * v;
  return std::sqrt(sum);
}

// ||got - want|| / max(||want||, floor). The floor is a small fraction (kCancelFloor) of the
// rounding scale of the reference (Grads::*_mag): it only matters where the exact gradient
// cancels to (near) zero, e.g. seq_k = 1 (softmax = 1, dS = 0 exactly), where dividing by
// ||want|| ~ 0 would turn rounding-level values into huge relative errors. A real error (say
// a lost D term) is of the order of the scale itself, 1 / kCancelFloor = 100x the floor,
// and still fails.
constexpr double kCancelFloor = 1e-2;

void expect_finite(const std::vector<float>& x, const char* name) {
  for (size_t i = 0; i < x.size(); ++i) ASSERT_TRUE(std::isfinite(x[i])) << name << "[" << i << "] not written or not finite";
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
  std::vector<float> q = random_floats(nq), k = random_floats(nk), v = random_floats(nk), g = random_floats(nq);
  DeviceArray dq_in(q, c.dtype), dk_in(k, c.dtype), dv_in(v, c.dtype), ddout(g, c.dtype);
  DeviceArray dout(nq, c.dtype), dlse(size_t(c.batch) * c.heads_q * c.seq_q, DType::kFloat32);
  const DType grad_t = c.float_grads ? DType::kFloat32 : c.dtype;
  DeviceArray gq(nq, grad_t), gk(nk, grad_t), gv(nk, grad_t);
  std::unique_ptr<DeviceArray> gbias;

  std::vector<float> bias, active;
  std::unique_ptr<DeviceArray> dbias_in, dactive;
  if (c.bias) {
    bias = random_floats(npair, -2.0f, 2.0f);
    dbias_in = std::make_unique<DeviceArray>(bias, c.dtype);
  }
  if (c.active) {
    active.resize(npair);
    std::bernoulli_distribution on(0.7);
    for (float& a : active) a = on(rng()) ? 1.0f : 0.0f;
    if (c.empty_rows) {  // every 5th query row of every kv head sees nothing
      for (size_t row = 0; row < npair / c.seq_k; ++row)
        if ((row % c.seq_q) % 5 == 2) std::fill_n(active.begin() + row * c.seq_k, c.seq_k, 0.0f);
    }
    dactive = std::make_unique<DeviceArray>(active, DType::kUInt8);
  }
  if (c.dbias) gbias = std::make_unique<DeviceArray>(npair, grad_t);

  const TensorView qv = dq_in.view({c.batch, c.seq_q, c.heads_q, c.dim});
  const TensorView kv = dk_in.view({c.batch, c.seq_k, c.heads_kv, c.dim});
  const TensorView vv = dv_in.view({c.batch, c.seq_k, c.heads_kv, c.dim});
  const TensorView pair_shape_bias = dbias_in ? dbias_in->view({c.batch, c.heads_kv, c.seq_q, c.seq_k}) : TensorView{};
  const TensorView pair_shape_active = dactive ? dactive->view({c.batch, c.heads_kv, c.seq_q, c.seq_k}) : TensorView{};
  const uint64_t seed = rng()();

  attn::cuda::FlashForwardArgs fa;
  fa.q = qv;
  fa.k = kv;
  fa.v = vv;
  fa.out = dout.view({c.batch, c.seq_q, c.heads_q, c.dim});
  fa.lse = dlse.view({c.batch, c.heads_q, c.seq_q});
  fa.bias = pair_shape_bias;
  fa.active_mask = pair_shape_active;
  fa.scale = c.scale;
  fa.softcap = c.softcap;
  fa.dropout = c.dropout;
  fa.seed = seed;
  fa.causal = c.causal;
  ASSERT_NO_THROW(attn::cuda::flash_forward(fa));

  attn::cuda::FlashBackwardArgs ba;
  ba.q = qv;
  ba.k = kv;
  ba.v = vv;
  ba.out = fa.out;
  ba.dout = ddout.view({c.batch, c.seq_q, c.heads_q, c.dim});
  ba.lse = fa.lse;
  ba.dq = gq.view({c.batch, c.seq_q, c.heads_q, c.dim});
  ba.dk = gk.view({c.batch, c.seq_k, c.heads_kv, c.dim});
  ba.dv = gv.view({c.batch, c.seq_k, c.heads_kv, c.dim});
  ba.bias = fa.bias;
  ba.active_mask = fa.active_mask;
  if (gbias) ba.dbias = gbias->view({c.batch, c.heads_kv, c.seq_q, c.seq_k});
  ba.scale = c.scale;
  ba.softcap = c.softcap;
  ba.dropout = c.dropout;
  ba.seed = seed;
  ba.causal = c.causal;
  ASSERT_NO_THROW(attn::cuda::flash_backward(ba));
  CUDA_OK(cudaDeviceSynchronize());

  refbwd::Config rc;
  rc.batch = c.batch;
  rc.seq_q = c.seq_q;
  rc.seq_k = c.seq_k;
  rc.heads_q = c.heads_q;
  rc.heads_kv = c.heads_kv;
  rc.dim = c.dim;
  rc.scale = c.scale > 0 ? double(c.scale) : 1.0 / std::sqrt(double(c.dim));
  rc.softcap = c.softcap;
  rc.causal = static_cast<int>(c.causal);
  rc.dropout = c.dropout;
  rc.seed = seed;
  rc.bias = c.bias ? bias.data() : nullptr;
  rc.allowed = c.active ? active.data() : nullptr;
  const refbwd::Grads want = refbwd::backward(rc, q.data(), k.data(), v.data(), g.data());

  const std::vector<float> got_q = gq.download(), got_k = gk.download(), got_v = gv.download();
  expect_finite(got_q, "dq");
  expect_finite(got_k, "dk");
  expect_finite(got_v, "dv");
  // A 16-bit output adds its own rounding (2^-9 / 2^-12 relative): still within tolerance.
  EXPECT_LT(rel_l2(got_q, want.dq, kCancelFloor * l2(want.dq_mag)), tolerance(c.dtype)) << "dq";
  EXPECT_LT(rel_l2(got_k, want.dk, kCancelFloor * l2(want.dk_mag)), tolerance(c.dtype)) << "dk";
  EXPECT_LT(rel_l2(got_v, want.dv), tolerance(c.dtype)) << "dv";
  // Rows that see no key: exactly zero dq.
  for (int b = 0; b < c.batch; ++b)
    for (int h = 0; h < c.heads_q; ++h)
      for (int i = 0; i < c.seq_q; ++i) {
        if (!want.row_masked[(size_t(b) * c.heads_q + h) * c.seq_q + i]) continue;
        for (int d = 0; d < c.dim; ++d)
          ASSERT_EQ(got_q[((size_t(b) * c.seq_q + i) * c.heads_q + h) * c.dim + d], 0.0f) << "masked row " << i;
      }
  if (gbias) {
    const std::vector<float> got_b = gbias->download();
    expect_finite(got_b, "dbias");
    EXPECT_LT(rel_l2(got_b, want.dbias, kCancelFloor * l2(want.dbias_mag)), tolerance(c.dtype)) << "dbias";
    // Exactly zero where the pair is masked for the kv head (active mask off or causally
    // hidden). Not "where want.dbias == 0": a row with a single visible key has P = 1 and
    // dS = P (dP - D) = 0 exactly in float64, while the kernel's dP (mma) and D (rowsum of
    // dout * out) round differently; those pairs are covered by the rel_l2 check above.
    for (size_t n = 0; n < got_b.size(); ++n)
      if (want.pair_masked[n]) ASSERT_EQ(got_b[n], 0.0f) << "dbias[" << n << "] of a masked pair";
  }
}

TEST(CudaFlashBackward, DtypesHeadDimsCausalOddSizes) {
  const int sizes[][2] = {{1, 1}, {17, 3}, {3, 130}, {200, 333}};
  for (DType t : {DType::kFloat16, DType::kBFloat16})
    for (int d : {64, 128})
      for (Causal cz : {Causal::kNone, Causal::kTopLeft, Causal::kBottomRight})
        for (auto& s : sizes) {
          Case c = sized(t, 2, s[0], s[1], 4, 2);  // GQA
          c.dim = d;
          c.causal = cz;
          run_case(c);
        }
}

TEST(CudaFlashBackward, MultiQueryFloatGradsScaleSoftcap) {
  for (DType t : {DType::kFloat16, DType::kBFloat16})
    for (int d : {64, 128}) {
      Case c = sized(t, 1, 150, 300, 3, 1);  // MQA
      c.dim = d;
      c.scale = 0.3f;
      c.softcap = 2.5f;
      c.float_grads = true;
      run_case(c);
      c.float_grads = false;
      c.causal = Causal::kBottomRight;
      run_case(c);
      c.softcap = 0.0f;  // the dense kernel (Hopper's on an H100) with float32 gradients
      c.float_grads = true;
      run_case(c);
    }
}

TEST(CudaFlashBackward, Dropout) {
  for (DType t : {DType::kFloat16, DType::kBFloat16})
    for (int d : {64, 128})
      for (Causal cz : {Causal::kNone, Causal::kTopLeft}) {
        Case c = sized(t, 1, 130, 257, 4, 2);
        c.dim = d;
        c.dropout = 0.2f;
        c.causal = cz;
        run_case(c);
      }
}

TEST(CudaFlashBackward, BiasActiveMaskEmptyRowsDbias) {
  for (DType t : {DType::kFloat16, DType::kBFloat16})
    for (int d : {64, 128})
      for (Causal cz : {Causal::kNone, Causal::kTopLeft}) {
        Case c = sized(t, 2, 190, 333, 4, 2);
        c.dim = d;
        c.bias = true;
        c.active = true;
        c.empty_rows = true;
        c.dbias = true;
        c.float_grads = d == 128;
        c.causal = cz;
        run_case(c);
      }
  Case c = sized(DType::kBFloat16, 1, 77, 200, 3, 1);  // everything at once, MQA
  c.bias = c.active = c.empty_rows = c.dbias = true;
  c.softcap = 5.0f;
  c.dropout = 0.1f;
  c.causal = Causal::kBottomRight;
  run_case(c);
}

// --- argument checks: each names the parameter, nothing is launched ---------------------

struct ValidArgs {
  std::vector<float> qh = random_floats(2 * 8 * 4 * 64);
  std::vector<float> lh = std::vector<float>(2 * 4 * 8, 0.0f);
  DeviceArray q{qh, DType::kBFloat16}, k{qh, DType::kBFloat16}, v{qh, DType::kBFloat16};
  DeviceArray out{qh, DType::kBFloat16}, dout{qh, DType::kBFloat16}, lse{lh, DType::kFloat32};
  DeviceArray dq{qh.size(), DType::kBFloat16}, dk{qh.size(), DType::kFloat32}, dv{qh.size(), DType::kBFloat16};
  attn::cuda::FlashBackwardArgs args() const {
    attn::cuda::FlashBackwardArgs a;
    a.q = q.view({2, 8, 4, 64});
    a.k = k.view({2, 8, 4, 64});
    a.v = v.view({2, 8, 4, 64});
    a.out = out.view({2, 8, 4, 64});
    a.dout = dout.view({2, 8, 4, 64});
    a.lse = lse.view({2, 4, 8});
    a.dq = dq.view({2, 8, 4, 64});
    a.dk = dk.view({2, 8, 4, 64});
    a.dv = dv.view({2, 8, 4, 64});
    return a;
  }
};

TEST(CudaFlashBackward, RefusesBadArgumentsNamingTheParameter) {
  ValidArgs va;
  std::vector<float> host(2 * 8 * 4 * 64);
  cudatest::expect_refusals(
      [&va] { return va.args(); }, attn::cuda::validate_flash_backward,
      {
          {"k", [](attn::cuda::FlashBackwardArgs& a) { a.k.dtype = DType::kFloat16; }},
          {"q", [](attn::cuda::FlashBackwardArgs& a) { a.q.dtype = a.k.dtype = a.v.dtype = a.out.dtype = a.dout.dtype = DType::kFloat32; }},
          {"v", [](attn::cuda::FlashBackwardArgs& a) { a.v.shape[1] = 7; }},
          {"dout", [](attn::cuda::FlashBackwardArgs& a) { a.dout.stride[3] = 2; }},
          {"out", [](attn::cuda::FlashBackwardArgs& a) { a.out.stride[1] = 4 * 64 + 4; }},
          {"q", [](attn::cuda::FlashBackwardArgs& a) { a.q.shape[3] = a.k.shape[3] = a.v.shape[3] = a.out.shape[3] = a.dout.shape[3] = 96; }},
          {"k", [](attn::cuda::FlashBackwardArgs& a) { a.k.shape[2] = a.v.shape[2] = 3; }},
          {"dq", [](attn::cuda::FlashBackwardArgs& a) { a.dq.dtype = DType::kFloat16; }},
          {"dv", [](attn::cuda::FlashBackwardArgs& a) { a.dv = TensorView{}; }},
          {"dk", [&](attn::cuda::FlashBackwardArgs& a) { a.dk.data = host.data(); }},
          {"lse", [](attn::cuda::FlashBackwardArgs& a) { a.lse = TensorView{}; }},
          {"lse", [](attn::cuda::FlashBackwardArgs& a) { a.lse.dtype = DType::kBFloat16; }},
          {"lse", [](attn::cuda::FlashBackwardArgs& a) { a.lse.shape[2] = 9; }},
          {"dropout", [](attn::cuda::FlashBackwardArgs& a) { a.dropout = 1.0f; }},
          {"softcap", [](attn::cuda::FlashBackwardArgs& a) { a.softcap = NAN; }},
          {"scale", [](attn::cuda::FlashBackwardArgs& a) { a.scale = -1.0f; }},
          {"causal", [](attn::cuda::FlashBackwardArgs& a) { a.causal = static_cast<Causal>(7); }},
          {"bias", [&](attn::cuda::FlashBackwardArgs& a) { a.bias = va.out.view({2, 4, 8, 9}); }},
          {"active_mask", [&](attn::cuda::FlashBackwardArgs& a) { a.active_mask = va.lse.view({2, 4, 8, 8}); a.active_mask.dtype = DType::kFloat16; }},
          {"dbias", [&](attn::cuda::FlashBackwardArgs& a) { a.dbias = va.dq.view({2, 4, 8, 7}); }},
      });
}

}  // namespace
