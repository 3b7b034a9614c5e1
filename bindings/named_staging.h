// Weights named as PyTorch names them, copied from the WebAssembly heap one array at a time
// (stageNamed) and then handed to a model's load_named together (commitNamed), so that a
// bad set is refused whole and the old weights stay.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "error_translation.h"
#include "heap_address.h"
#include "runtime/named_weights.h"

namespace attn::bindings {

class NamedStaging {
 public:
  // "" or the encoded error; a copy the heap cannot hold drops the whole set staged so far,
  // so that the commit that follows cannot apply part of it.
  std::string stage(const std::string& name, double src, double count) {
    return guarded([&] {
      const float* p = address<const float>(src);
      try {
        staged_.push_back({name, std::vector<float>(p, p + static_cast<size_t>(count))});
      } catch (...) {
        staged_.clear();
        throw;
      }
    });
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
