// ThreadPool::parallel_for: every index exactly once, chunks within the grain, worker
// indices within [0, size), real concurrency, and reuse.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "runtime/thread_pool.h"

namespace {

using attn::ThreadPool;

// Runs one parallel_for and checks coverage, chunk bounds and worker indices.
void check_cover(ThreadPool& pool, int64_t count, int64_t grain) {
  SCOPED_TRACE(::testing::Message() << "size " << pool.size() << " count " << count
                                    << " grain " << grain);
  const size_t n = count > 0 ? size_t(count) : 0;
  std::unique_ptr<std::atomic<int>[]> hits(new std::atomic<int>[n + 1]);
  for (size_t i = 0; i <= n; ++i) hits[i] = 0;
  std::atomic<int> bad_chunk{0}, bad_worker{0}, calls{0};
  const int64_t eff_grain = grain < 1 ? 1 : grain;
  pool.parallel_for(count, grain, [&](int64_t begin, int64_t end, int worker) {
    ++calls;
    if (worker < 0 || worker >= pool.size()) ++bad_worker;
    if (begin < 0 || end > count || begin >= end || end - begin > eff_grain) {
      ++bad_chunk;
      return;
    }
    for (int64_t i = begin; i < end; ++i) ++hits[size_t(i)];
  });
  EXPECT_EQ(bad_chunk.load(), 0);
  EXPECT_EQ(bad_worker.load(), 0);
  if (count <= 0) {
    EXPECT_EQ(calls.load(), 0);
  }
  size_t wrong = 0;
  for (size_t i = 0; i < n; ++i) wrong += hits[i] != 1;
  EXPECT_EQ(wrong, 0u) << "indices not visited exactly once";
}

TEST(ThreadPool, SizeCountsTheCallingThread) {
  for (int t : {1, 2, 3, 5}) EXPECT_EQ(ThreadPool(t).size(), t);
  EXPECT_EQ(ThreadPool(0).size(), 1);  // never less than the caller itself
  EXPECT_EQ(ThreadPool(-4).size(), 1);
  EXPECT_GE(ThreadPool::hardware_threads(), 1);
}

TEST(ThreadPool, CoversEveryIndexExactlyOnce) {
  for (int size : {1, 2, 3, 4, 8}) {
    ThreadPool pool(size);
    for (int64_t count : {-5, 0, 1, 2, 3, 7, 64, 100, 1000, 10007}) {
      for (int64_t grain : {-1, 0, 1, 2, 3, 7, 64, 1000, 20000}) check_cover(pool, count, grain);
    }
  }
}

TEST(ThreadPool, RepeatedUseOfOnePool) {
  ThreadPool pool(3);
  std::vector<int> sums;
  for (int round = 0; round < 2000; ++round) {
    const int64_t count = 1 + round % 37;
    std::atomic<int64_t> sum{0};
    pool.parallel_for(count, 1 + round % 4, [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) sum += i + 1;
    });
    ASSERT_EQ(sum.load(), count * (count + 1) / 2) << "round " << round;
  }
  for (int round = 0; round < 20; ++round) check_cover(pool, 5000 + round, 1 + round);
}

TEST(ThreadPool, PoolOfOneRunsOnTheCaller) {
  ThreadPool pool(1);
  const auto caller = std::this_thread::get_id();
  std::atomic<int> elsewhere{0}, nonzero_worker{0};
  int64_t covered = 0;
  pool.parallel_for(1000, 7, [&](int64_t b, int64_t e, int worker) {
    if (std::this_thread::get_id() != caller) ++elsewhere;
    if (worker != 0) ++nonzero_worker;
    covered += e - b;  // no race: everything runs on the caller
  });
  EXPECT_EQ(elsewhere.load(), 0);
  EXPECT_EQ(nonzero_worker.load(), 0);
  EXPECT_EQ(covered, 1000);
}

// Each of `size` chunks waits until all `size` are running at once. A blocked worker
// cannot take another chunk, so this passes only if size distinct workers run them
// concurrently with distinct indices (a timeout turns a hang into a failure).
TEST(ThreadPool, WorkersRunConcurrentlyWithDistinctIndices) {
  for (int size : {2, 3, 4}) {
    ThreadPool pool(size);
    for (int round = 0; round < 3; ++round) {
      std::mutex m;
      std::condition_variable cv;
      int arrived = 0;
      bool timed_out = false;
      std::set<int> workers;
      std::set<std::thread::id> threads;
      pool.parallel_for(size, 1, [&](int64_t, int64_t, int worker) {
        std::unique_lock<std::mutex> lock(m);
        workers.insert(worker);
        threads.insert(std::this_thread::get_id());
        ++arrived;
        cv.notify_all();
        if (!cv.wait_for(lock, std::chrono::seconds(5), [&] { return arrived >= size; })) {
          timed_out = true;
        }
      });
      EXPECT_FALSE(timed_out) << "size " << size << ": chunks did not run concurrently";
      EXPECT_EQ(int(workers.size()), size);
      EXPECT_EQ(int(threads.size()), size);
      for (int w : workers) EXPECT_TRUE(w >= 0 && w < size) << w;
    }
  }
}

// The same worker index is never used by two threads at the same time: per-worker
// scratch memory (as the flash kernel keeps) is never shared.
TEST(ThreadPool, WorkerIndexIsExclusive) {
  ThreadPool pool(3);
  std::atomic<int> in_use[3] = {0, 0, 0};
  std::atomic<int> clashes{0};
  for (int round = 0; round < 50; ++round) {
    pool.parallel_for(300, 1, [&](int64_t, int64_t, int worker) {
      if (worker < 0 || worker >= 3) {
        ++clashes;
        return;
      }
      if (in_use[worker].fetch_add(1) != 0) ++clashes;
      volatile int spin = 0;
      for (int i = 0; i < 200; ++i) spin = spin + i;
      in_use[worker].fetch_sub(1);
    });
  }
  EXPECT_EQ(clashes.load(), 0);
}

TEST(ThreadPool, ManyPoolsCreatedAndDestroyed) {
  // Construction and destruction must not hang or lose work, used or idle.
  for (int n = 0; n < 50; ++n) {
    ThreadPool pool(1 + n % 4);
    if (n % 2) check_cover(pool, 100 + n, 1 + n % 5);
  }
}

// A chunk that throws on a worker thread (not the caller): the exception arrives on the
// caller, intact; no chunk is still running when it does; few chunks start after it; the pool
// then works as before. Repeated, because which thread throws first varies.
TEST(ThreadPool, ExceptionOnAWorkerIsRethrownOnTheCaller) {
  for (int size : {2, 3, 4}) {
    ThreadPool pool(size);
    const auto caller = std::this_thread::get_id();
    for (int round = 0; round < 20; ++round) {
      SCOPED_TRACE(::testing::Message() << "size " << size << " round " << round);
      std::atomic<int> running{0}, started{0}, thrown{0};
      std::atomic<int> still_running_at_catch{-1};
      const int64_t count = 4000;
      try {
        pool.parallel_for(count, 1, [&](int64_t begin, int64_t, int) {
          ++running;
          ++started;
          std::this_thread::sleep_for(std::chrono::microseconds(50));
          // Only threads other than the caller throw, and after the first few chunks.
          if (std::this_thread::get_id() != caller && begin >= 8) {
            --running;
            ++thrown;
            throw std::runtime_error("chunk " + std::to_string(begin));
          }
          --running;
        });
        ADD_FAILURE() << "parallel_for returned normally";
      } catch (const std::runtime_error& e) {
        still_running_at_catch = running.load();
        EXPECT_EQ(std::string(e.what()).rfind("chunk ", 0), 0u) << e.what();
      }
      EXPECT_EQ(still_running_at_catch.load(), 0) << "chunks still ran after parallel_for threw";
      EXPECT_GE(thrown.load(), 1);
      EXPECT_LE(thrown.load(), size - 1);  // each throwing worker stops after its throw
      EXPECT_LT(started.load(), count / 2) << "chunks kept being handed out after the throw";
    }
    check_cover(pool, 1000, 3);  // usable afterwards
    check_cover(pool, 7, 1);
  }
}

// The caller's own chunk throws while workers hold long chunks: the workers finish
// theirs first; the error is the caller's.
TEST(ThreadPool, ExceptionOnTheCallerWaitsForTheWorkers) {
  ThreadPool pool(3);
  const auto caller = std::this_thread::get_id();
  std::atomic<int> finished{0}, worker_chunks{0};
  bool caught = false;
  try {
    pool.parallel_for(3, 1, [&](int64_t, int64_t, int) {
      if (std::this_thread::get_id() == caller) throw std::out_of_range("caller");
      ++worker_chunks;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      ++finished;
    });
  } catch (const std::out_of_range& e) {
    caught = true;
    EXPECT_EQ(finished.load(), worker_chunks.load()) << "returned while a worker still ran";
    EXPECT_STREQ(e.what(), "caller");
  }
  EXPECT_TRUE(caught);
  check_cover(pool, 500, 2);
}

TEST(ThreadPool, ExceptionInAPoolOfOnePropagates) {
  ThreadPool pool(1);
  EXPECT_THROW(pool.parallel_for(10, 1, [](int64_t b, int64_t, int) {
                 if (b == 3) throw std::logic_error("three");
               }),
               std::logic_error);
  check_cover(pool, 100, 7);
}

}  // namespace
