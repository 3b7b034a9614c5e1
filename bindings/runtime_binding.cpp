// Module-wide state exposed to JS: the thread pool, the SIMD backend, heap figures.
#include <emscripten/bind.h>
#include <malloc.h>

#include <memory>
#include <string>
#include <utility>

#include "bindings/runtime_binding.h"
#include "error_translation.h"
#include "runtime/thread_pool.h"
#include "simd/vec.h"

namespace attn::bindings {

namespace {
std::unique_ptr<ThreadPool> g_pool;
}

ThreadPool* shared_pool() {
  if (!g_pool) g_pool = std::make_unique<ThreadPool>(1);
  return g_pool.get();
}

namespace {

std::string set_num_threads(int threads) {
  return guarded([&] {
    if (threads < 1 || threads > 256) throw_range("numThreads", "must be in [1, 256]");
    if (g_pool && g_pool->size() == threads) return;
    g_pool.reset();
    g_pool = std::make_unique<ThreadPool>(threads);
  });
}

int num_threads() { return shared_pool()->size(); }

std::string simd_backend() { return simd::kBackendName; }

// Bytes malloc currently hands out (what the library's buffers occupy).
double heap_used() { return static_cast<double>(mallinfo().uordblks); }

std::string take_construction_status() { return std::exchange(construction_status(), std::string()); }

}  // namespace

}  // namespace attn::bindings

EMSCRIPTEN_BINDINGS(attn_runtime) {
  emscripten::function("setNumThreads", &attn::bindings::set_num_threads);
  emscripten::function("numThreads", &attn::bindings::num_threads);
  emscripten::function("simdBackend", &attn::bindings::simd_backend);
  emscripten::function("heapUsed", &attn::bindings::heap_used);
  emscripten::function("takeConstructionStatus", &attn::bindings::take_construction_status);
}
