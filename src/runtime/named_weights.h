// Weights by name, as PyTorch's state dicts hold them: what load_named() of a layer takes.
#pragma once
#include <cmath>
#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "runtime/errors.h"

namespace attn {

using NamedWeights = std::vector<std::pair<std::string, std::vector<float>>>;

// A named array must hold exactly `count` finite floats; throws AttnError naming it.
inline void check_named_weight(const std::string& name, const std::vector<float>& x, size_t count) {
  if (x.size() != count) {
    throw_range(name, "expected " + std::to_string(count) + " floats, got " + std::to_string(x.size()));
  }
  for (float v : x) {
    if (!std::isfinite(v)) throw_range(name, "holds a value that is not finite");
  }
}

}  // namespace attn
