// The bindings never let a C++ exception reach JS as a WASM trap: every entry point
// catches and returns a status string that js/errors.js turns into a typed JS error.
//   ""                              success
//   "RangeError\x1fparam\x1fmessage"  (or TypeError / Error)
#pragma once
#include <new>
#include <string>

#include "runtime/errors.h"

namespace attn::bindings {

inline std::string encode_error(const char* js_class, const std::string& param,
                                const std::string& message) {
  return std::string(js_class) + '\x1f' + param + '\x1f' + message;
}

template <typename Fn>
std::string guarded(Fn&& fn) {
  try {
    fn();
    return {};
  } catch (const AttnError& e) {
    const char* js_class = e.kind() == ErrorKind::kType    ? "TypeError"
                           : e.kind() == ErrorKind::kRange ? "RangeError"
                                                           : "Error";
    // message(), not what() cut after "param: ": a NUL in a weight's name cut what() short,
    // and substr then threw out of this handler (found by tests/fuzz/weights_load_fuzz).
    return encode_error(js_class, e.param(), e.message());
  } catch (const std::bad_alloc&) {
    return encode_error("RangeError", "memory", "the WebAssembly heap cannot hold this call");
  } catch (const std::exception& e) {
    return encode_error("Error", "internal", e.what());
  }
}

// The error of the last construct_guarded() call that failed ("" after a success).
inline std::string& construction_status() {
  static std::string status;
  return status;
}

// Makes a handle for JS: the bindings export this factory rather than an embind constructor,
// because an exception thrown by a constructor (bad_alloc of a model's weights, a size the
// validation missed) would reach JS as a bare number, its memory never freed. nullptr (null
// in JS) on failure, with the encoded error kept for takeConstructionStatus().
template <class Handle, class Init>
Handle* construct_guarded(const Init& init) {
  Handle* made = nullptr;
  construction_status() = guarded([&] { made = new Handle(init); });
  return made;
}

}  // namespace attn::bindings
