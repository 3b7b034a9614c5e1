// Weights named as PyTorch names them, copied from the WebAssembly heap one array at a time
// (stageNamed) and then handed to a model's load_named together (commitNamed), so that a
// bad set is refused whole and the old weights stay.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "heap_address.h"
#include "runtime/named_weights.h"

namespace attn::bindings {

class NamedStaging {
 public:
  void stage(const std::string& name, double src, double count) {
    const float* p = address<const float>(src);
    staged_.push_back({name, std::vector<float>(p, p + static_cast<size_t>(count))});
  }
  // The staged arrays; staging starts afresh.
  NamedWeights take() {
    NamedWeights all = std::move(staged_);
    staged_.clear();
    return all;
  }

 private:
  NamedWeights staged_;
};

}  // namespace attn::bindings
