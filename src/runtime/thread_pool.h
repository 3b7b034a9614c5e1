// A small fork-join pool. The calling thread works too, so a pool of size N
// starts N-1 threads. Works natively and under Emscripten pthreads (where each
// std::thread takes one worker from the pre-spawned pool; see wasm/).
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace attn {

class ThreadPool {
 public:
  // Body of a parallel loop: handles task indices [begin, end) on worker `worker`
  // (0 <= worker < size()), so callers can keep per-worker scratch memory.
  using Body = std::function<void(int64_t begin, int64_t end, int worker)>;

  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(threads_.size()) + 1; }

  // Runs body over [0, count) in chunks of `grain`, handing chunks out
  // dynamically (causal attention makes tasks uneven). Returns when all are done.
  // Not reentrant: one parallel_for at a time per pool.
  // If a chunk throws, on whatever thread, no further chunk starts, the chunks already
  // running finish, and the first exception is rethrown here on the calling thread; the
  // pool stays usable.
  void parallel_for(int64_t count, int64_t grain, const Body& body);

  // Threads this platform can usefully run (hardware_concurrency, at least 1).
  static int hardware_threads();

 private:
  void worker_loop(int worker);
  void run_chunks(int worker);

  std::vector<std::thread> threads_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable done_;
  const Body* body_ = nullptr;
  int64_t count_ = 0;
  int64_t grain_ = 1;
  std::atomic<int64_t> next_{0};
  int busy_workers_ = 0;
  uint64_t generation_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;  // first exception of this parallel_for (under mutex_)
};

}  // namespace attn
