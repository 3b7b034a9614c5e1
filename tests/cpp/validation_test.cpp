// validate_flash and the entry points reject every malformed call with an AttnError that
// names the parameter, so the bindings can raise the right JS error.
#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "flash/flash_attention.h"
#include "runtime/errors.h"
#include "runtime/thread_pool.h"

namespace {

using attn::ErrorKind;
using attn::FlashOptions;
using attn::FlashShape;

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

FlashShape good_shape() {
  FlashShape s;
  s.batch = 2, s.seq_q = 5, s.seq_k = 7, s.heads_q = 4, s.heads_kv = 2, s.head_dim = 3;
  s.value_dim = 6;
  return s;
}

const char* kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::kType: return "kType";
    case ErrorKind::kRange: return "kRange";
    case ErrorKind::kState: return "kState";
  }
  return "?";
}

// Runs f, which must throw AttnError of `kind` for `param`, with a message that starts
// with the parameter's name.
void expect_error(const std::function<void()>& f, ErrorKind kind, const std::string& param) {
  try {
    f();
  } catch (const attn::AttnError& e) {
    EXPECT_EQ(e.param(), param) << e.what();
    EXPECT_STREQ(kind_name(e.kind()), kind_name(kind)) << e.what();
    EXPECT_EQ(std::string(e.what()).rfind(param + ": ", 0), 0u) << e.what();
    return;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected AttnError(" << param << "), got other exception: " << e.what();
    return;
  }
  ADD_FAILURE() << "expected AttnError(" << param << "), nothing was thrown";
}

void expect_invalid(const FlashShape& s, const FlashOptions& o, ErrorKind kind,
                    const std::string& param) {
  expect_error([&] { attn::validate_flash(s, o); }, kind, param);
}

TEST(Validation, GoodCallPasses) {
  EXPECT_NO_THROW(attn::validate_flash(good_shape(), FlashOptions{}));
}

TEST(Validation, NonPositiveSizes) {
  int FlashShape::*fields[] = {&FlashShape::batch,    &FlashShape::seq_q,    &FlashShape::seq_k,
                               &FlashShape::heads_q,  &FlashShape::heads_kv, &FlashShape::head_dim,
                               &FlashShape::value_dim};
  const char* names[] = {"batch", "seq_q", "seq_k", "heads_q", "heads_kv", "head_dim", "value_dim"};
  for (int f = 0; f < 7; ++f) {
    for (int bad : {0, -1, INT_MIN}) {
      FlashShape s = good_shape();
      s.*fields[f] = bad;
      SCOPED_TRACE(::testing::Message() << names[f] << " = " << bad);
      expect_invalid(s, {}, ErrorKind::kRange, names[f]);
    }
  }
}

TEST(Validation, DefaultShapeIsRejected) {
  // FlashShape{} leaves seq_q at 0: a forgotten field must not pass.
  expect_invalid(FlashShape{}, {}, ErrorKind::kRange, "seq_q");
}

TEST(Validation, HeadsKvMustDivideHeadsQ) {
  for (auto [hq, hkv] : {std::pair{6, 4}, std::pair{4, 3}, std::pair{2, 4}, std::pair{7, 2}}) {
    FlashShape s = good_shape();
    s.heads_q = hq, s.heads_kv = hkv;
    SCOPED_TRACE(::testing::Message() << hq << "/" << hkv);
    expect_invalid(s, {}, ErrorKind::kRange, "heads_kv");
  }
  for (auto [hq, hkv] : {std::pair{6, 3}, std::pair{8, 1}, std::pair{5, 5}}) {
    FlashShape s = good_shape();
    s.heads_q = hq, s.heads_kv = hkv;
    EXPECT_NO_THROW(attn::validate_flash(s, {})) << hq << "/" << hkv;
  }
}

TEST(Validation, Scale) {
  // ±FLT_MAX: scale * log2(e) overflows and zeros in q would become NaN (found by
  // tests/fuzz/flash_forward_fuzz).
  for (float bad : {kNaN, kInf, -kInf, std::numeric_limits<float>::max(), -std::numeric_limits<float>::max()}) {
    FlashOptions o;
    o.scale = bad;
    SCOPED_TRACE(bad);
    expect_invalid(good_shape(), o, ErrorKind::kRange, "scale");
  }
  FlashOptions o;
  o.scale = 1e-3f;
  EXPECT_NO_THROW(attn::validate_flash(good_shape(), o));
  o.scale = -2e38f;
  EXPECT_NO_THROW(attn::validate_flash(good_shape(), o));
}

TEST(Validation, Softcap) {
  for (float bad : {-1.0f, -1e-30f, kNaN, kInf, -kInf}) {
    FlashOptions o;
    o.softcap = bad;
    SCOPED_TRACE(bad);
    expect_invalid(good_shape(), o, ErrorKind::kRange, "softcap");
  }
  for (float good : {0.0f, 1e-3f, 50.0f}) {
    FlashOptions o;
    o.softcap = good;
    EXPECT_NO_THROW(attn::validate_flash(good_shape(), o)) << good;
  }
  // A denormal softcap: scale / softcap overflows, as a huge scale does; FLT_MAX: softcap *
  // log2(e) overflows (found by tests/fuzz/flash_forward_fuzz: -inf lse, NaN outputs).
  for (float bad : {std::numeric_limits<float>::denorm_min(), std::numeric_limits<float>::max()}) {
    FlashOptions o;
    o.softcap = bad;
    expect_invalid(good_shape(), o, ErrorKind::kRange, "softcap");
  }
}

TEST(Validation, Dropout) {
  for (float bad : {-0.1f, -1e-30f, 1.0f, 1.5f, kNaN, kInf, -kInf}) {
    FlashOptions o;
    o.dropout = bad;
    SCOPED_TRACE(bad);
    expect_invalid(good_shape(), o, ErrorKind::kRange, "dropout");
  }
  for (float good : {0.0f, 0.5f, 0.999f}) {
    FlashOptions o;
    o.dropout = good;
    EXPECT_NO_THROW(attn::validate_flash(good_shape(), o)) << good;
  }
}

TEST(Validation, BlockSizes) {
  for (int bad : {-1, INT_MIN, 4097, INT_MAX}) {
    FlashOptions o;
    o.block_q = bad;
    expect_invalid(good_shape(), o, ErrorKind::kRange, "block_q");
    o = FlashOptions{};
    o.block_k = bad;
    expect_invalid(good_shape(), o, ErrorKind::kRange, "block_k");
  }
  for (int good : {0, 1, 17, 4096}) {
    FlashOptions o;
    o.block_q = good, o.block_k = good;
    EXPECT_NO_THROW(attn::validate_flash(good_shape(), o)) << good;
  }
}

TEST(Validation, BothMasksGiven) {
  const float add[1] = {0};
  const uint8_t allowed[1] = {1};
  FlashOptions o;
  o.mask.additive = add, o.mask.allowed = allowed, o.mask.row_stride = 7;
  expect_invalid(good_shape(), o, ErrorKind::kType, "mask");
}

TEST(Validation, MaskStrides) {
  const float add[1] = {0};
  const uint8_t allowed[1] = {1};
  for (int which = 0; which < 2; ++which) {
    auto with_mask = [&](int64_t bs, int64_t hs, int64_t rs) {
      FlashOptions o;
      if (which == 0) o.mask.additive = add; else o.mask.allowed = allowed;
      o.mask.batch_stride = bs, o.mask.head_stride = hs, o.mask.row_stride = rs;
      return o;
    };
    SCOPED_TRACE(which == 0 ? "additive" : "boolean");
    // good_shape().seq_k == 7
    expect_invalid(good_shape(), with_mask(-1, 0, 7), ErrorKind::kRange, "mask");
    expect_invalid(good_shape(), with_mask(0, -35, 7), ErrorKind::kRange, "mask");
    expect_invalid(good_shape(), with_mask(0, 0, 6), ErrorKind::kRange, "mask");
    expect_invalid(good_shape(), with_mask(0, 0, 1), ErrorKind::kRange, "mask");
    expect_invalid(good_shape(), with_mask(0, 0, -7), ErrorKind::kRange, "mask");
    EXPECT_NO_THROW(attn::validate_flash(good_shape(), with_mask(0, 0, 7)));
    EXPECT_NO_THROW(attn::validate_flash(good_shape(), with_mask(7, 0, 0)));  // key padding
    EXPECT_NO_THROW(attn::validate_flash(good_shape(), with_mask(140, 35, 7)));
    EXPECT_NO_THROW(attn::validate_flash(good_shape(), with_mask(0, 40, 8)));
  }
}

TEST(Validation, ShapeTooLargeForMemory) {
  FlashShape s = good_shape();
  s.batch = s.seq_q = s.heads_q = s.value_dim = 1 << 20;  // 2^80 output floats
  s.heads_kv = 1;
  expect_invalid(s, {}, ErrorKind::kRange, "shape");
}

// The entry points validate before touching any tensor, and leave outputs untouched.
TEST(Validation, EntryPointsValidate) {
  FlashShape s = good_shape();
  s.heads_kv = 3;
  std::vector<float> q(1000, 1.0f), k(1000, 1.0f), v(1000, 1.0f), out(1000, 5.0f), lse(100, 5.0f);
  attn::ThreadPool pool(2);
  expect_error([&] { attn::flash_forward(s, {}, {q.data(), k.data(), v.data(), out.data(), lse.data()}, &pool); },
               ErrorKind::kRange, "heads_kv");
  expect_error([&] { attn::attention_scores(s, {}, q.data(), k.data(), out.data(), nullptr); },
               ErrorKind::kRange, "heads_kv");
  FlashOptions o;
  o.dropout = 2.0f;
  expect_error([&] { attn::flash_forward(good_shape(), o, {q.data(), k.data(), v.data(), out.data(), lse.data()}, nullptr); },
               ErrorKind::kRange, "dropout");
  for (float x : out) ASSERT_EQ(x, 5.0f);
  for (float x : lse) ASSERT_EQ(x, 5.0f);
  // The pool still works after a rejected call.
  EXPECT_NO_THROW(attn::flash_forward(good_shape(), {}, {q.data(), k.data(), v.data(), out.data(), lse.data()}, &pool));
  EXPECT_NE(out[0], 5.0f);
}

TEST(Validation, NullTensors) {
  std::vector<float> q(1000, 1.0f), k(1000, 1.0f), v(1000, 1.0f), out(1000, 5.0f);
  const FlashShape s = good_shape();
  const attn::FlashTensors cases[] = {
      {nullptr, k.data(), v.data(), out.data(), nullptr},
      {q.data(), nullptr, v.data(), out.data(), nullptr},
      {q.data(), k.data(), nullptr, out.data(), nullptr},
      {q.data(), k.data(), v.data(), nullptr, nullptr},
  };
  for (int n = 0; n < 4; ++n) {
    SCOPED_TRACE(n);
    expect_error([&] { attn::flash_forward(s, {}, cases[n], nullptr); }, ErrorKind::kType, "tensors");
  }
  expect_error([&] { attn::attention_scores(s, {}, nullptr, k.data(), out.data(), nullptr); },
               ErrorKind::kType, "tensors");
  expect_error([&] { attn::attention_scores(s, {}, q.data(), nullptr, out.data(), nullptr); },
               ErrorKind::kType, "tensors");
  expect_error([&] { attn::attention_scores(s, {}, q.data(), k.data(), nullptr, nullptr); },
               ErrorKind::kType, "tensors");
  for (float x : out) ASSERT_EQ(x, 5.0f);
}

TEST(Validation, AttnErrorIsInvalidArgument) {
  // The bindings may catch std::invalid_argument generically.
  FlashShape s = good_shape();
  s.batch = 0;
  EXPECT_THROW(attn::validate_flash(s, {}), std::invalid_argument);
}

}  // namespace
