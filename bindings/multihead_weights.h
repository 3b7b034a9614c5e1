// The weights surface shared by every handle over nn.MultiheadAttention-style projections
// (multi-head, dense, adaptive precision): save into the heap, load the binary format, and
// PyTorch-named arrays staged one by one then applied together. A handle provides model()
// (an object with save / load / load_named / param_count) and staging(); bind_multihead_weights
// adds the methods to its embind class. js/weights.js drives them.
#pragma once
#include <emscripten/bind.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "error_translation.h"
#include "heap_address.h"
#include "named_staging.h"
#include "runtime/errors.h"

namespace attn::bindings {

template <class Handle>
double saved_bytes(const Handle& h) {
  return static_cast<double>(h.model().save().size());
}

template <class Handle>
std::string save_into(const Handle& h, double dst, double capacity) {
  return guarded([&] {
    const auto bytes = h.model().save();
    if (double(bytes.size()) > capacity) throw_range("weights", "destination too small");
    std::memcpy(address<uint8_t>(dst), bytes.data(), bytes.size());
  });
}

template <class Handle>
std::string load_weights(Handle& h, double src, double size) {
  return guarded([&] { h.model().load(address<const uint8_t>(src), static_cast<size_t>(size)); });
}

template <class Handle>
std::string stage_named(Handle& h, const std::string& name, double src, double count) {
  return h.staging().stage(name, src, count);
}

template <class Handle>
std::string commit_named(Handle& h) {
  const NamedWeights staged = h.staging().take();
  return guarded([&] { h.model().load_named(staged); });
}

template <class Handle>
double param_count(const Handle& h) {
  return static_cast<double>(h.model().param_count());
}

template <class Handle>
const emscripten::class_<Handle>& bind_multihead_weights(const emscripten::class_<Handle>& cls) {
  return cls.function("savedBytes", &saved_bytes<Handle>)
      .function("saveInto", &save_into<Handle>)
      .function("load", &load_weights<Handle>)
      .function("stageNamed", &stage_named<Handle>)
      .function("commitNamed", &commit_named<Handle>)
      .function("paramCount", &param_count<Handle>);
}

}  // namespace attn::bindings
