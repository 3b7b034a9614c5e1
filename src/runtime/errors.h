// Typed errors of the core. Each names the parameter at fault so that the bindings
// can turn it into a JS TypeError / RangeError / Error with a useful message.
#pragma once
#include <stdexcept>
#include <string>

namespace attn {

enum class ErrorKind {
  kType,   // wrong kind of value (becomes a JS TypeError)
  kRange,  // value of the right kind but outside what is allowed (RangeError)
  kState,  // the object cannot do this now, e.g. it was disposed (Error)
};

class AttnError : public std::invalid_argument {
 public:
  AttnError(ErrorKind kind, std::string param, const std::string& message)
      : std::invalid_argument(param + ": " + message), kind_(kind), param_(std::move(param)), message_(message) {}
  ErrorKind kind() const { return kind_; }
  const std::string& param() const { return param_; }
  // The message without the parameter (what() is "param: message"), for re-throwing under
  // another name: what() is a C string, cut short by a NUL in a fuzzed weight name.
  const std::string& message() const { return message_; }

 private:
  ErrorKind kind_;
  std::string param_;
  std::string message_;
};

[[noreturn]] inline void throw_range(const std::string& param, const std::string& message) {
  throw AttnError(ErrorKind::kRange, param, message);
}
[[noreturn]] inline void throw_type(const std::string& param, const std::string& message) {
  throw AttnError(ErrorKind::kType, param, message);
}

// A size that must be at least 1.
inline void require_positive(const std::string& param, int value) {
  if (value < 1) throw_range(param, "must be a positive integer, got " + std::to_string(value));
}

}  // namespace attn
