// Counter-based dropout: whether weight (batch, head, query, key) is kept depends only
// on the seed and those coordinates, never on tiling or threads, so a seed reproduces
// the same mask everywhere (the JS reference in the tests recomputes it).
#pragma once
#include <cstdint>

// The CUDA kernels draw the same mask: under nvcc these functions are also device code.
#if defined(__CUDACC__)
#define ATTN_HOST_DEVICE __host__ __device__
#else
#define ATTN_HOST_DEVICE
#endif

namespace attn {

ATTN_HOST_DEVICE inline uint64_t mix64(uint64_t x) {  // splitmix64's finalizer
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

class DropoutRng {
 public:
  ATTN_HOST_DEVICE DropoutRng(uint64_t seed, float probability)
      : seed_(mix64(seed + 0x9e3779b97f4a7c15ULL)),
        threshold_(static_cast<uint32_t>(static_cast<double>(probability) * 16777216.0)),
        keep_scale_(1.0f / (1.0f - probability)) {}

  // `element` is the flat index ((batch * heads + head) * seq_q + query) * seq_k + key.
  ATTN_HOST_DEVICE bool keep(uint64_t element) const {
    return static_cast<uint32_t>(mix64(seed_ ^ element) >> 40) >= threshold_;
  }
  ATTN_HOST_DEVICE float keep_scale() const { return keep_scale_; }

 private:
  uint64_t seed_;
  uint32_t threshold_;  // drop when the top 24 bits of the hash fall below it
  float keep_scale_;
};

}  // namespace attn
