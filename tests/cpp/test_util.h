// Helpers shared by the C++ tests: per-test seeds, random inputs, guarded buffers
// and the error metric the suite uses everywhere.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace testutil {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// One base seed per process: ATTN_TEST_SEED=<n> reproduces a failing run, otherwise
// std::random_device gives fresh inputs every run.
inline uint64_t base_seed() {
  static const uint64_t seed = []() -> uint64_t {
    if (const char* s = std::getenv("ATTN_TEST_SEED")) return std::strtoull(s, nullptr, 0);
    std::random_device rd;
    return (uint64_t{rd()} << 32) ^ rd();
  }();
  return seed;
}

inline uint64_t fnv1a(const std::string& s) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ULL;
  return h;
}

// The current test's seed: the base seed mixed with the test's full name, so tests do
// not share inputs but one ATTN_TEST_SEED reproduces all of them.
inline uint64_t test_seed() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name = info ? std::string(info->test_suite_name()) + "." + info->name() : "";
  return base_seed() ^ fnv1a(name);
}

inline std::string seed_note() {
  std::ostringstream os;
  os << "inputs from ATTN_TEST_SEED=" << base_seed() << " (set it to rerun with the same data)";
  return os.str();
}

// Every test that draws random data starts with this, so failures print the seed.
#define ATTN_TRACE_SEED() SCOPED_TRACE(::testutil::seed_note())

inline std::vector<float> randn(std::mt19937_64& rng, size_t n, float sigma = 1.0f) {
  std::normal_distribution<float> dist(0.0f, sigma);
  std::vector<float> x(n);
  for (auto& e : x) e = dist(rng);
  return x;
}

// A buffer with guard zones on both sides. Inputs get NaN guards (a read past either
// end poisons the result), outputs get a sentinel that must survive the call.
template <class T>
class Guarded {
 public:
  static constexpr size_t kGuard = 64;
  Guarded(size_t n, T guard) : n_(n), guard_(guard), buf_(n + 2 * kGuard, guard) {}
  Guarded(const std::vector<T>& body, T guard) : Guarded(body.size(), guard) {
    std::copy(body.begin(), body.end(), data());
  }
  T* data() { return buf_.data() + kGuard; }
  const T* data() const { return buf_.data() + kGuard; }
  size_t size() const { return n_; }
  T& operator[](size_t i) { return data()[i]; }
  const T& operator[](size_t i) const { return data()[i]; }
  void fill(T value) { std::fill(data(), data() + n_, value); }
  std::vector<T> body() const { return std::vector<T>(data(), data() + n_); }
  // True when both guard zones still hold the guard value (bitwise, so NaN works).
  bool guards_intact() const {
    for (size_t i = 0; i < kGuard; ++i) {
      if (!same(buf_[i]) || !same(buf_[kGuard + n_ + i])) return false;
    }
    return true;
  }

 private:
  bool same(const T& x) const { return std::memcmp(&x, &guard_, sizeof(T)) == 0; }
  size_t n_;
  T guard_;
  std::vector<T> buf_;
};

// max|got - ref| / max(1e-6, max|ref|), the suite's accuracy metric.
struct RelError {
  double value = 0;
  double max_ref = 0;
  double max_abs = 0;
  size_t worst = 0;
};

inline RelError rel_error(const float* got, const std::vector<double>& ref) {
  RelError e;
  for (size_t i = 0; i < ref.size(); ++i) {
    e.max_ref = std::max(e.max_ref, std::abs(ref[i]));
    const double d = std::abs(double(got[i]) - ref[i]);
    if (!(d <= e.max_abs)) {  // also catches NaN
      e.max_abs = std::isnan(d) ? std::numeric_limits<double>::infinity() : d;
      e.worst = i;
    }
  }
  e.value = e.max_abs / std::max(1e-6, e.max_ref);
  return e;
}

inline size_t count_nan(const float* x, size_t n) {
  size_t c = 0;
  for (size_t i = 0; i < n; ++i) c += std::isnan(x[i]) ? 1 : 0;
  return c;
}

}  // namespace testutil
