// JS passes WebAssembly heap addresses as numbers (doubles in embind value objects); this
// turns one back into a typed pointer.
#pragma once
#include <cstdint>

namespace attn::bindings {

template <typename T>
T* address(double a) {
  return reinterpret_cast<T*>(static_cast<uintptr_t>(a));
}

}  // namespace attn::bindings
