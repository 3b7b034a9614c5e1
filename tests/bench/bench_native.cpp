// Native benchmark of attn::flash_forward (AVX2 / AVX-512 / scalar, whichever this
// build's SIMD layer picked), printed as one JSON object per line so bench/run.mjs
// can put the figures beside the WASM ones.
//
//   attn_bench_native [--heads H] [--dims 64,128] [--seqs 256,1024,4096,16384]
//                     [--threads 1,2] [--causal 0,1] [--min-ms 300] [--max-runs 15]
//                     [--skip "d:n:t,..."]
//
// Layouts and FLOP count as in src/flash: q/k/v/out [seq][heads][dim], FLOPs
// 4*n*n*d*heads (halved for causal, counted by attn::flash_flops).
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "flash/flash_attention.h"
#include "runtime/thread_pool.h"
#include "simd/vec.h"

namespace {

using Clock = std::chrono::steady_clock;

std::vector<int> parse_list(const std::string& text) {
  std::vector<int> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    if (!item.empty()) out.push_back(std::atoi(item.c_str()));
  }
  return out;
}

// The same generator as bench/common.mjs, so inputs match the WASM runs.
void fill_random(std::vector<float>& a, uint32_t seed) {
  uint32_t s = seed;
  for (auto& x : a) {
    s = s * 1664525u + 1013904223u;
    x = static_cast<float>(static_cast<double>(s) / 2147483648.0 - 1.0);
  }
}

std::string json_escape(const std::string& text) {
  std::string out;
  for (char ch : text) {
    if (ch == '"' || ch == '\\') out += '\\';
    if (static_cast<unsigned char>(ch) < 0x20) ch = ' ';
    out += ch;
  }
  return out;
}

double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int heads = 8;
  std::vector<int> dims = {64, 128};
  std::vector<int> seqs = {256, 1024, 4096, 16384};
  std::vector<int> threads = {1, 2};
  std::vector<int> causals = {0, 1};
  double min_ms = 300.0;
  int max_runs = 15;
  std::set<std::tuple<int, int, int>> skip;  // (dim, seq, threads)

  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "attn_bench_native: %s needs a value\n", arg.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (arg == "--heads") heads = std::atoi(next().c_str());
    else if (arg == "--dims") dims = parse_list(next());
    else if (arg == "--seqs") seqs = parse_list(next());
    else if (arg == "--threads") threads = parse_list(next());
    else if (arg == "--causal") causals = parse_list(next());
    else if (arg == "--min-ms") min_ms = std::atof(next().c_str());
    else if (arg == "--max-runs") max_runs = std::atoi(next().c_str());
    else if (arg == "--skip") {
      std::stringstream ss(next());
      std::string item;
      while (std::getline(ss, item, ',')) {
        int d = 0, n = 0, t = 0;
        if (std::sscanf(item.c_str(), "%d:%d:%d", &d, &n, &t) == 3) skip.emplace(d, n, t);
      }
    } else if (arg == "--help" || arg == "-h") {
      std::printf("usage: attn_bench_native [--heads H] [--dims a,b] [--seqs a,b] [--threads a,b] "
                  "[--causal 0,1] [--min-ms MS] [--max-runs N] [--skip d:n:t,...]\n");
      return 0;
    } else {
      std::fprintf(stderr, "attn_bench_native: unknown argument %s\n", arg.c_str());
      return 2;
    }
  }

  std::printf("{\"kind\":\"info\",\"backend\":\"%s\",\"hardware_threads\":%d}\n",
              attn::simd::kBackendName, attn::ThreadPool::hardware_threads());
  std::fflush(stdout);

  for (int t : threads) {
    attn::ThreadPool pool(t);
    for (int d : dims) {
      for (int n : seqs) {
        if (skip.count({d, n, t})) continue;
        const size_t size = static_cast<size_t>(n) * heads * d;
        std::vector<float> q(size), k(size), v(size), out(size);
        fill_random(q, 1);
        fill_random(k, 2);
        fill_random(v, 3);
        for (int c : causals) {
          attn::FlashShape shape;
          shape.batch = 1;
          shape.seq_q = n;
          shape.seq_k = n;
          shape.heads_q = heads;
          shape.heads_kv = heads;
          shape.head_dim = d;
          shape.value_dim = d;
          attn::FlashOptions options;
          options.causal = c ? attn::CausalAlign::kTopLeft : attn::CausalAlign::kNone;
          attn::FlashTensors tensors;
          tensors.q = q.data();
          tensors.k = k.data();
          tensors.v = v.data();
          tensors.out = out.data();
          const double flops = attn::flash_flops(shape, options.causal);
          try {
            auto t0 = Clock::now();
            attn::flash_forward(shape, options, tensors, &pool);
            const double first_ms = ms_since(t0);
            std::vector<double> times;
            auto start = Clock::now();
            // At least 3 runs (1 when a single call already takes several seconds).
            const int min_runs = first_ms > 3000.0 ? 1 : 3;
            while (static_cast<int>(times.size()) < max_runs &&
                   (static_cast<int>(times.size()) < min_runs || ms_since(start) < min_ms)) {
              auto t1 = Clock::now();
              attn::flash_forward(shape, options, tensors, &pool);
              times.push_back(ms_since(t1));
            }
            std::vector<double> sorted = times;
            std::sort(sorted.begin(), sorted.end());
            const size_t m = sorted.size();
            const double median = m % 2 ? sorted[m / 2] : 0.5 * (sorted[m / 2 - 1] + sorted[m / 2]);
            double checksum = 0;
            for (size_t i = 0; i < size; i += 97) checksum += out[i];
            std::printf("{\"kind\":\"result\",\"backend\":\"%s\",\"heads\":%d,\"dim\":%d,\"seq\":%d,"
                        "\"causal\":%s,\"threads\":%d,\"runs\":%zu,\"medianMs\":%.4f,\"minMs\":%.4f,"
                        "\"firstCallMs\":%.4f,\"flops\":%.0f,\"gflops\":%.3f,\"checksum\":%.6g}\n",
                        attn::simd::kBackendName, heads, d, n, c ? "true" : "false", t, m, median,
                        sorted.front(), first_ms, flops, flops / (median * 1e6), checksum);
          } catch (const std::exception& e) {
            std::printf("{\"kind\":\"error\",\"heads\":%d,\"dim\":%d,\"seq\":%d,\"causal\":%s,"
                        "\"threads\":%d,\"error\":\"%s\"}\n",
                        heads, d, n, c ? "true" : "false", t, json_escape(e.what()).c_str());
          }
          std::fflush(stdout);
        }
      }
    }
  }
  return 0;
}
