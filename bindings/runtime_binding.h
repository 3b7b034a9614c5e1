#pragma once

namespace attn {
class ThreadPool;
namespace bindings {
// The module's one thread pool, sized by setNumThreads() from JS.
ThreadPool* shared_pool();
}  // namespace bindings
}  // namespace attn
