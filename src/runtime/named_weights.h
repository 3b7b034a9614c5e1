// Weights by name, as PyTorch's state dicts hold them: what load_named() of a layer takes
// and named_parameters() lists.
#pragma once
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "runtime/errors.h"

namespace attn {

using NamedWeights = std::vector<std::pair<std::string, std::vector<float>>>;

// A weight a layer holds, by its PyTorch-style name, row-major with the given shape: what
// named_parameters() of a layer lists (the data stays the layer's).
struct ParameterView {
  std::string name;
  std::vector<int> shape;
  const float* data;

  // Floats it holds: the product of its shape.
  int64_t count() const {
    int64_t n = 1;
    for (int d : shape) n *= d;
    return n;
  }
};

// What an error about the entry `name` names: the name, or a placeholder for the empty
// name (a JS object may have the key ""), so that no error names nothing.
inline std::string weight_param(const std::string& name) { return name.empty() ? "(empty name)" : name; }

// A named array must hold exactly `count` finite floats; throws AttnError naming it.
inline void check_named_weight(const std::string& name, const std::vector<float>& x, size_t count) {
  if (x.size() != count) {
    throw_range(name, "expected " + std::to_string(count) + " floats, got " + std::to_string(x.size()));
  }
  for (float v : x) {
    if (!std::isfinite(v)) throw_range(name, "holds a value that is not finite");
  }
}

// Fills *slots[i] with the weight named params[i].name, for every slot: each name must be
// given, with slots[i]'s size, finite. Throws AttnError naming the weight (an unknown name
// gets `unknown`). Writes only into the slots: the caller's copies, so that a throw leaves
// its weights as they were.
inline void assign_named(const NamedWeights& named, const std::vector<ParameterView>& params,
                         const std::vector<std::vector<float>*>& slots, const std::string& unknown) {
  std::vector<bool> given(slots.size(), false);
  for (const auto& [name, x] : named) {
    size_t i = 0;
    while (i < slots.size() && params[i].name != name) ++i;
    if (i == slots.size()) throw_range(weight_param(name), unknown);
    check_named_weight(name, x, slots[i]->size());
    *slots[i] = x;
    given[i] = true;
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    if (!given[i]) throw_range(params[i].name, "missing");
  }
}

}  // namespace attn
