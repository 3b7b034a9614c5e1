// What every libFuzzer target of tests/fuzz shares: turning fuzz bytes into tensors with
// the values that break numerics (NaN, ±Inf, huge, denormal), the check that only
// AttnError escapes the library, and a failure that libFuzzer records as a crash.
//
// Tensors are not read element by element from the input: that would make every input as
// long as its tensors and leave the fuzzer mutating noise. A tensor is a seeded random fill
// at a fuzzed magnitude, plus a few fuzzed (position, special value) overrides, so a short
// input reaches every size and every kind of value.
#pragma once
#include <fuzzer/FuzzedDataProvider.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <vector>

#include "runtime/errors.h"
#include "runtime/thread_pool.h"
#include "runtime/uniform_rng.h"

namespace fuzz {

// Prints why and aborts: libFuzzer saves the input as crash-<sha1>.
[[noreturn]] inline void fail(const char* what, double got = 0, double expected = 0, double bound = 0) {
  std::fprintf(stderr, "\nINVARIANT BROKEN: %s (got %.9g, expected %.9g, bound %.3g)\n", what, got, expected, bound);
  std::abort();
}
inline void require(bool ok, const char* what) {
  if (!ok) fail(what);
}

// Runs fn; true when it returned, false when it threw AttnError (bad input, refused).
// Any other exception is a bug: the bindings translate only AttnError into a JS error.
template <class Fn>
bool returns(Fn&& fn) {
  try {
    fn();
    return true;
  } catch (const attn::AttnError& e) {
    require(!e.param().empty(), "AttnError without a parameter name");
    return false;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\nnon-AttnError exception: %s\n", e.what());
    std::abort();
  } catch (...) {
    fail("an exception that is not a std::exception");
  }
}

// One pool shared by every run (threads are not started per input); a run picks it or none.
inline attn::ThreadPool* shared_pool() {
  static attn::ThreadPool pool(3);
  return &pool;
}

// A fuzzed tensor and what its values allow the target to assert.
struct Tensor {
  std::vector<float> x;
  bool nonfinite = false;  // holds NaN or ±Inf
  double max_abs = 0;      // over the finite values
  const float* data() const { return x.data(); }
  float* data() { return x.data(); }
  size_t size() const { return x.size(); }
};

// An integer in [lo, hi], or `bad` (one value in hi - lo + 2): an input that has run out
// gives lo, so short inputs still make valid calls.
inline int in_range_or(FuzzedDataProvider& in, int lo, int hi, int bad) {
  const int v = in.ConsumeIntegralInRange(lo, hi + 1);
  return v == hi + 1 ? bad : v;
}

// Values that break naive numerics; overrides pick from these.
inline float special_value(uint8_t code) {
  constexpr float kInf = std::numeric_limits<float>::infinity();
  switch (code % 12) {
    case 0: return std::numeric_limits<float>::quiet_NaN();
    case 1: return kInf;
    case 2: return -kInf;
    case 3: return std::numeric_limits<float>::max();
    case 4: return -std::numeric_limits<float>::max();
    case 5: return 1e30f;
    case 6: return std::numeric_limits<float>::denorm_min();
    case 7: return -1e-40f;  // denormal
    case 8: return 0.0f;
    case 9: return -0.0f;
    case 10: return 1e4f;
    default: return std::numeric_limits<float>::min();  // smallest normal
  }
}

// `n` floats: uniform in [-m, m] with m fuzzed from 0 to 1e6 (denormal-only fills too),
// then up to 8 fuzzed overrides with special values.
inline Tensor make_tensor(FuzzedDataProvider& in, size_t n) {
  Tensor t;
  t.x.resize(n);
  const uint64_t seed = in.ConsumeIntegral<uint64_t>();
  static constexpr float kMagnitudes[] = {1.0f, 1.0f, 1.0f, 0.1f, 4.0f, 30.0f, 1e3f, 1e6f, 1e-39f, 0.0f};
  const float magnitude = in.PickValueInArray(kMagnitudes);
  attn::UniformRng rng{seed};
  for (auto& e : t.x) e = rng.next(magnitude);
  const int overrides = in.ConsumeIntegralInRange(0, 8);
  for (int i = 0; i < overrides && n > 0; ++i) {
    const size_t at = in.ConsumeIntegralInRange<size_t>(0, n - 1);
    t.x[at] = special_value(in.ConsumeIntegral<uint8_t>());
  }
  for (float e : t.x) {
    if (std::isfinite(e)) {
      t.max_abs = std::max(t.max_abs, double(std::fabs(e)));
    } else {
      t.nonfinite = true;
    }
  }
  return t;
}

// A float option: usually a plain value in [lo, hi], sometimes 0, a special value or a
// raw bit pattern, so validation meets NaN, ±Inf and negatives.
inline float make_option(FuzzedDataProvider& in, float lo, float hi) {
  switch (in.ConsumeIntegralInRange(0, 7)) {
    case 0: return 0.0f;
    case 1: return special_value(in.ConsumeIntegral<uint8_t>());
    case 2: {
      const uint32_t bits = in.ConsumeIntegral<uint32_t>();
      float f;
      std::memcpy(&f, &bits, sizeof f);
      return f;
    }
    default: return in.ConsumeFloatingPointInRange(lo, hi);
  }
}

inline bool all_finite(const float* x, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return false;
  }
  return true;
}

}  // namespace fuzz
