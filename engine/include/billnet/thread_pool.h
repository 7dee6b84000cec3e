// Helper threads for the engine (issue 7 part 2): RunBatch spreads a batch's
// windows over them, and a fast-path window (S3-S5) splits its rows over them.
//
// The calling thread always works too: a ParallelFor makes progress even when
// every helper is busy elsewhere, so several callers (the server's inference
// threads) may share one pool, and a call from inside a ParallelFor item (a
// window of a batch splitting its rows) is allowed. Results never depend on
// how the work was split: the integer kernels are exact, and float work is
// not split within one output (DESIGN.md 2.6).
//
// Thread-safety: every method may be called from any thread.
#ifndef BILLNET_THREAD_POOL_H_
#define BILLNET_THREAD_POOL_H_

#include <cstdint>
#include <memory>
#include <type_traits>

namespace billnet {

class ThreadPool {
 public:
  // Starts `helpers` threads (0: every call runs on its caller alone).
  explicit ThreadPool(int helpers);
  // Joins the helpers; no ParallelFor may be running.
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int helpers() const;
  // The most threads that work on one call at once: helpers() + 1.
  int slots() const { return helpers() + 1; }

  // Runs fn(i, slot) once for every i in [0, n) and returns when all are done.
  // `slot` is in [0, slots()) and unique among the threads working on this
  // call at the same time (the caller is 0), so fn may use per-slot scratch.
  // Items are claimed in chunks of `grain` (0: about n / (8 slots)). `fn` is
  // called through a pointer, never copied: a call allocates nothing.
  template <typename Fn>
  void ParallelFor(int64_t n, Fn&& fn, int64_t grain = 0) {
    using F = std::remove_reference_t<Fn>;
    Run(
        n, grain, [](void* f, int64_t i, int slot) { (*static_cast<F*>(f))(i, slot); },
        const_cast<void*>(static_cast<const void*>(std::addressof(fn))));
  }

 private:
  using ItemFn = void (*)(void* fn, int64_t i, int slot);
  void Run(int64_t n, int64_t grain, ItemFn item, void* fn);

  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace billnet

#endif  // BILLNET_THREAD_POOL_H_
