// embind surface of KVCache (src/adaattn/kv_cache.h): a handle whose methods return "" or an
// encoded error; JS copies the rows into the heap and passes their addresses.
#include <emscripten/bind.h>

#include <cstddef>
#include <limits>
#include <string>

#include "adaattn/kv_cache.h"
#include "bindings/runtime_binding.h"
#include "error_translation.h"
#include "heap_address.h"

namespace attn::bindings {

namespace {

struct KVCacheInit {
  int heads = 1, headDim = 0, valueDim = 0;
  int precision = 0;  // 0 fp32, 1 fp16, 2 bf16
  double capacity = 0;
};

StoragePrecision precision_of(int p) {
  return p == 1 ? StoragePrecision::kFp16 : p == 2 ? StoragePrecision::kBf16 : StoragePrecision::kFp32;
}

std::string validate_kv_cache(const KVCacheInit& i) {
  return guarded([&] {
    KVCache(i.heads, i.headDim, i.valueDim, precision_of(i.precision), 0);
    if (i.capacity < 0) throw_range("capacity", "must be >= 0");
    // The rows reserved up front must be addressable (KVCache::reserve would name them "rows").
    const double bytes = i.capacity * i.heads * (double(i.headDim) + i.valueDim) * (i.precision == 0 ? 4 : 2);
    if (bytes > double(std::numeric_limits<std::ptrdiff_t>::max())) {
      throw_range("capacity", std::to_string(static_cast<long long>(i.capacity)) + " rows of keys and values take " +
                                  std::to_string(static_cast<long long>(bytes)) +
                                  " bytes, more than a WebAssembly buffer can address (2 GiB)");
    }
  });
}

class KVCacheHandle {
 public:
  explicit KVCacheHandle(const KVCacheInit& i)
      : c_(i.heads, i.headDim, i.valueDim, precision_of(i.precision), static_cast<int64_t>(i.capacity)) {}

  std::string append(double rows, double k, double v) {
    return guarded([&] { c_.append(static_cast<int64_t>(rows), address<const float>(k), address<const float>(v)); });
  }
  // scale <= 0: 1 / sqrt(head_dim).
  std::string attend(double queries, double q, double out, double scale, bool causal) {
    return guarded([&] {
      std::optional<float> s;
      if (scale > 0) s = static_cast<float>(scale);
      c_.attend(static_cast<int64_t>(queries), address<const float>(q), address<float>(out), s, shared_pool(), causal);
    });
  }
  double size() const { return static_cast<double>(c_.size()); }
  double memoryBytes() const { return static_cast<double>(c_.memory_bytes()); }
  void clear() { c_.clear(); }

 private:
  KVCache c_;
};

}  // namespace

}  // namespace attn::bindings

EMSCRIPTEN_BINDINGS(attn_kv_cache) {
  using attn::bindings::KVCacheHandle;
  using attn::bindings::KVCacheInit;
  emscripten::value_object<KVCacheInit>("KVCacheInit")
      .field("heads", &KVCacheInit::heads)
      .field("headDim", &KVCacheInit::headDim)
      .field("valueDim", &KVCacheInit::valueDim)
      .field("precision", &KVCacheInit::precision)
      .field("capacity", &KVCacheInit::capacity);
  emscripten::function("validateKVCache", &attn::bindings::validate_kv_cache);
  emscripten::class_<KVCacheHandle>("KVCacheHandle")
      .function("append", &KVCacheHandle::append)
      .function("attend", &KVCacheHandle::attend)
      .function("size", &KVCacheHandle::size)
      .function("memoryBytes", &KVCacheHandle::memoryBytes)
      .function("clear", &KVCacheHandle::clear);
  emscripten::function("makeKVCacheHandle", &attn::bindings::construct_guarded<attn::bindings::KVCacheHandle, attn::bindings::KVCacheInit>,
                       emscripten::allow_raw_pointers());
}
