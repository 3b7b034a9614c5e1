// Host helpers shared by the CUDA GoogleTest suites (flash_forward_test.cu,
// flash_backward_test.cu): random inputs, host <-> 16-bit conversions, an RAII device buffer
// and the relative L2 error the suites compare with.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "attn_cuda/flash.h"
#include "runtime/errors.h"

// Asserts that a CUDA runtime call succeeded, naming the call on failure.
#define CUDA_OK(call) ASSERT_EQ((call), cudaSuccess) << #call

namespace cudatest {

using attn::cuda::DType;
using attn::cuda::TensorView;

// One generator for every draw, seeded at random so that runs explore new inputs.
inline std::mt19937_64& rng() {
  static std::mt19937_64 gen(std::random_device{}());
  return gen;
}

// n uniform floats in [lo, hi): the inputs every case draws afresh.
inline std::vector<float> random_floats(size_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng());
  return v;
}

// Host float -> 16-bit (float16 or bfloat16) bits, through the CUDA headers' host
// conversions (round to nearest even, as the device does).
inline uint16_t to_bits(float x, DType t) {
  uint16_t bits;
  if (t == DType::kFloat16) {
    __half h = __float2half_rn(x);
    std::memcpy(&bits, &h, 2);
  } else {
    __nv_bfloat16 h = __float2bfloat16_rn(x);
    std::memcpy(&bits, &h, 2);
  }
  return bits;
}

// 16-bit bits -> host float (exact), to read back what the device holds.
inline float from_bits(uint16_t bits, DType t) {
  if (t == DType::kFloat16) {
    __half h;
    std::memcpy(&h, &bits, 2);
    return __half2float(h);
  }
  __nv_bfloat16 h;
  std::memcpy(&h, &bits, 2);
  return __bfloat162float(h);
}

// A device buffer in dtype `t`: uploaded from `values` (rounded in place to what the
// device holds, so the reference sees the same numbers) or poisoned (all bits set: NaN in
// every float type, so an output the kernel fails to write shows up).
class DeviceArray {
 public:
  DeviceArray(std::vector<float>& values, DType t) : dtype_(t), count_(values.size()) {
    const size_t bytes = count_ * attn::cuda::dtype_bytes(t);
    EXPECT_EQ(cudaMalloc(&ptr_, bytes), cudaSuccess);
    if (t == DType::kFloat32) {
      EXPECT_EQ(cudaMemcpy(ptr_, values.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
    } else if (t == DType::kUInt8) {
      std::vector<uint8_t> host(count_);
      for (size_t i = 0; i < count_; ++i) host[i] = values[i] != 0.0f;
      EXPECT_EQ(cudaMemcpy(ptr_, host.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
    } else {
      std::vector<uint16_t> host(count_);
      for (size_t i = 0; i < count_; ++i) {
        host[i] = to_bits(values[i], t);
        values[i] = from_bits(host[i], t);
      }
      EXPECT_EQ(cudaMemcpy(ptr_, host.data(), bytes, cudaMemcpyHostToDevice), cudaSuccess);
    }
  }
  DeviceArray(size_t count, DType t) : dtype_(t), count_(count) {  // poisoned
    const size_t bytes = count_ * attn::cuda::dtype_bytes(t);
    EXPECT_EQ(cudaMalloc(&ptr_, bytes), cudaSuccess);
    EXPECT_EQ(cudaMemset(ptr_, 0xff, bytes), cudaSuccess);
  }
  ~DeviceArray() { cudaFree(ptr_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;

  // The contents as floats (float32 or 16-bit buffers).
  std::vector<float> download() const {
    std::vector<float> out(count_);
    if (dtype_ == DType::kFloat32) {
      cudaMemcpy(out.data(), ptr_, count_ * 4, cudaMemcpyDeviceToHost);
    } else {
      std::vector<uint16_t> host(count_);
      cudaMemcpy(host.data(), ptr_, count_ * 2, cudaMemcpyDeviceToHost);
      for (size_t i = 0; i < count_; ++i) out[i] = from_bits(host[i], dtype_);
    }
    return out;
  }
  // A contiguous view of the buffer with the given shape, for the kernel arguments.
  TensorView view(std::initializer_list<int64_t> shape) const {
    return attn::cuda::contiguous_view(ptr_, dtype_, shape);
  }

 private:
  void* ptr_ = nullptr;
  DType dtype_;
  size_t count_;
};

// ||got - want|| / max(||want||, floor): the error measure both suites compare with their
// tolerance. `floor` (default 0: plain relative error) keeps gradients that cancel to
// (near) zero from turning rounding noise into huge relative errors.
inline double rel_l2(const std::vector<float>& got, const std::vector<double>& want,
                     double floor = 0.0) {
  double num = 0, den = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double d = double(got[i]) - want[i];
    num += d * d;
    den += want[i] * want[i];
  }
  return std::sqrt(num / std::max({den, floor * floor, 1e-30}));
}

// The parameter `validate` names when it refuses `args`, or "(accepted)": the argument-check
// tests compare it with the parameter they spoiled.
template <class Args>
std::string error_param(const Args& args, void (*validate)(const Args&)) {
  try {
    validate(args);
  } catch (const attn::AttnError& e) {
    return e.param();
  }
  return "(accepted)";
}

// One argument check: the parameter the validator must name once `spoil` has changed a
// valid argument set.
template <class Args>
using Refusal = std::pair<const char*, std::function<void(Args&)>>;

// Table-driven argument checks: `valid()` must be accepted, and each refusal, applied to a
// fresh valid set, must be refused naming its parameter.
template <class Args, class Valid>
void expect_refusals(Valid valid, void (*validate)(const Args&),
                     std::initializer_list<Refusal<Args>> refusals) {
  EXPECT_EQ(error_param(valid(), validate), "(accepted)");
  for (const auto& [param, spoil] : refusals) {
    Args a = valid();
    spoil(a);
    EXPECT_EQ(error_param(a, validate), param);
  }
}

}  // namespace cudatest
