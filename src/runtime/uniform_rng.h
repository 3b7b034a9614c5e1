// The seeded generator behind every layer's initial weights: splitmix64, uniform floats in
// [-bound, bound). The same seed gives the same weights on every platform and build.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace attn {

struct UniformRng {
  uint64_t state;
  float next(float bound) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    const double u = double(z >> 11) * (1.0 / 9007199254740992.0);  // [0, 1)
    return static_cast<float>((2.0 * u - 1.0) * bound);
  }
  std::vector<float> fill(size_t n, float bound) {
    std::vector<float> x(n);
    for (auto& e : x) e = next(bound);
    return x;
  }
};

// An independent seed for stream `stream` of `seed` (a layer's sub-module, an encoder's
// layer): the splitmix64 finaliser of a distinct state, so streams do not overlap as
// seed + k would (UniformRng steps its state by the same constant).
inline uint64_t derive_seed(uint64_t seed, uint64_t stream) {
  uint64_t z = seed ^ ((stream + 1) * 0xd1b54a32d192ed03ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace attn
