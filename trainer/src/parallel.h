// ParallelFor: fn(0..n-1) over up to `threads` std::threads (0: hardware
// concurrency), each index exactly once, in no particular order. Private to
// trainer/src.
#ifndef BILLNET_TRAINER_SRC_PARALLEL_H_
#define BILLNET_TRAINER_SRC_PARALLEL_H_

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace billnet::trainer {

template <typename Fn>
void ParallelFor(int n, int threads, Fn fn) {
  if (threads <= 0) threads = int(std::max(1u, std::thread::hardware_concurrency()));
  threads = std::min(threads, n);
  if (threads <= 1) {
    for (int i = 0; i < n; ++i) fn(i);
    return;
  }
  std::atomic<int> next{0};
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&] {
      for (int i = next++; i < n; i = next++) fn(i);
    });
  for (auto& th : pool) th.join();
}

}  // namespace billnet::trainer

#endif  // BILLNET_TRAINER_SRC_PARALLEL_H_
