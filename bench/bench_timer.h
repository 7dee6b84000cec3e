// Timing for billnet-bench: process CPU time (every thread of the process, so
// a figure is per core even if a library starts helper threads) and wall time,
// medians over repetitions.
#ifndef BILLNET_BENCH_BENCH_TIMER_H_
#define BILLNET_BENCH_BENCH_TIMER_H_

#include <time.h>

#include <algorithm>
#include <cstdint>
#include <vector>

namespace billnet::bench {

inline double ProcessCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

inline double WallSeconds() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

inline double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Seconds per call of `fn`, median over `repetitions`; each repetition calls
// it at least once and until `min_seconds` of CPU time have passed.
struct Timing {
  double cpu_s = 0;   // median CPU seconds per call
  double wall_s = 0;  // median wall seconds per call
  int64_t calls = 0;  // calls in all repetitions
};

template <typename Fn>
Timing TimeCalls(Fn&& fn, int repetitions, double min_seconds) {
  std::vector<double> cpu, wall;
  Timing t;
  for (int r = 0; r < std::max(1, repetitions); ++r) {
    const double c0 = ProcessCpuSeconds(), w0 = WallSeconds();
    int64_t n = 0;
    do {
      fn();
      ++n;
    } while (ProcessCpuSeconds() - c0 < min_seconds);
    cpu.push_back((ProcessCpuSeconds() - c0) / double(n));
    wall.push_back((WallSeconds() - w0) / double(n));
    t.calls += n;
  }
  t.cpu_s = Median(cpu);
  t.wall_s = Median(wall);
  return t;
}

}  // namespace billnet::bench

#endif  // BILLNET_BENCH_BENCH_TIMER_H_
