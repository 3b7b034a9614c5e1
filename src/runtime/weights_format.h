// The versioned binary format of the layers' save() / load(): a 4-byte magic naming the
// layer kind, a u32 format version, the layer's u32 shape fields, its float arrays in a
// fixed order (little-endian hosts: every platform this builds for), and an FNV-1a 32
// checksum of everything before it. Each layer writes and checks its own shape fields; the
// framing, the byte order and the errors are shared here so they cannot drift apart.
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "runtime/errors.h"

namespace attn::weights_format {

inline uint32_t fnv1a32(const uint8_t* data, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; ++i) h = (h ^ data[i]) * 16777619u;
  return h;
}

inline void put_u32(std::vector<uint8_t>& out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
inline uint32_t get_u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

inline void put_floats(std::vector<uint8_t>& out, const float* x, size_t n) {
  const size_t at = out.size();
  out.resize(at + n * sizeof(float));
  if (n > 0) std::memcpy(out.data() + at, x, n * sizeof(float));
}
inline void put_floats(std::vector<uint8_t>& out, const std::vector<float>& x) { put_floats(out, x.data(), x.size()); }

// Fills x (already sized) from data + at; returns the offset after it.
inline size_t get_floats(const uint8_t* data, size_t at, std::vector<float>& x) {
  if (!x.empty()) std::memcpy(x.data(), data + at, x.size() * sizeof(float));
  return at + x.size() * sizeof(float);
}

// Appends the checksum of everything written so far.
inline void seal(std::vector<uint8_t>& out) { put_u32(out, fnv1a32(out.data(), out.size())); }

// Magic and version, before the layer reads its shape fields (header_bytes: magic, version
// and those fields). `what` names the format in the messages ("attnkit weights").
// Throws AttnError("weights").
inline void check_prefix(const uint8_t* data, size_t size, const char magic[4], uint32_t version,
                         size_t header_bytes, const std::string& what) {
  if (data == nullptr || size < header_bytes + 4) {
    throw_range("weights", "buffer of " + std::to_string(size) + " bytes is too short for " + what);
  }
  if (std::memcmp(data, magic, 4) != 0) throw_range("weights", "not " + what + " (bad magic)");
  if (get_u32(data + 4) != version) {
    throw_range("weights", "format version " + std::to_string(get_u32(data + 4)) + " is not supported (expected " +
                               std::to_string(version) + ")");
  }
}

// The whole buffer's size (once the shape fields are known) and its checksum.
inline void check_size_and_checksum(const uint8_t* data, size_t size, size_t expected) {
  if (size != expected) {
    throw_range("weights", "buffer of " + std::to_string(size) + " bytes, expected " + std::to_string(expected));
  }
  if (fnv1a32(data, size - 4) != get_u32(data + size - 4)) throw_range("weights", "checksum mismatch (corrupted buffer)");
}

}  // namespace attn::weights_format
