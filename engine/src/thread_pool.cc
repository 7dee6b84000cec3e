#include "billnet/thread_pool.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__linux__)
#include <pthread.h>
#endif

namespace billnet {

namespace {

// One ParallelFor call. Lives on its caller's stack: the caller returns only
// once it is out of the open list and no helper works on it (users == 0).
struct Job {
  void (*item)(void*, int64_t, int) = nullptr;
  void* fn = nullptr;
  int64_t n = 0, grain = 1;
  std::atomic<int64_t> next{0};
  int joined = 1;  // slots handed out (the caller has 0); under the pool's lock
  int users = 0;   // helpers working on it; under the pool's lock
  // The pool's open list (intrusive, so opening a call never allocates).
  Job* prev = nullptr;
  Job* next_open = nullptr;
  bool listed = false;
};

void Drain(Job& j, int slot) {
  for (;;) {
    const int64_t b = j.next.fetch_add(j.grain, std::memory_order_relaxed);
    if (b >= j.n) return;
    const int64_t e = std::min(j.n, b + j.grain);
    for (int64_t i = b; i < e; ++i) j.item(j.fn, i, slot);
  }
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// How long an idle helper polls for the next call before it sleeps: a window
// makes a few dozen calls a few hundred microseconds apart, and waking a
// sleeping thread costs tens of microseconds each time.
constexpr int kSpinIterations = 4000;

}  // namespace

struct ThreadPool::Impl {
  int helpers = 0;
  std::mutex mu;
  std::condition_variable work_cv, idle_cv;
  // Calls whose items may not all be claimed yet, oldest first.
  Job* open_head = nullptr;
  Job* open_tail = nullptr;
  std::atomic<int> open_count{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;

  void Helper() {
#if defined(__linux__)
    pthread_setname_np(pthread_self(), "billnet-helper");  // top -H, perf, gdb
#endif
    std::unique_lock<std::mutex> lock(mu);
    for (;;) {
      if (!open_head) {
        if (stop.load()) return;
        lock.unlock();
        for (int k = 0; k < kSpinIterations && open_count.load(std::memory_order_acquire) == 0 &&
                        !stop.load(std::memory_order_relaxed);
             ++k)
          CpuRelax();
        lock.lock();
        if (!open_head) {
          work_cv.wait(lock, [&] { return stop.load() || open_head != nullptr; });
          continue;
        }
      }
      Job* j = open_head;
      if (j->next.load(std::memory_order_relaxed) >= j->n || j->joined > helpers) {
        Close(j);  // the caller (and whoever joined) finish it
        continue;
      }
      const int slot = j->joined++;
      ++j->users;
      lock.unlock();
      Drain(*j, slot);
      lock.lock();
      if (--j->users == 0) idle_cv.notify_all();
    }
  }

  // Appends j to the open list; under the lock.
  void Open(Job* j) {
    j->prev = open_tail;
    j->next_open = nullptr;
    (open_tail ? open_tail->next_open : open_head) = j;
    open_tail = j;
    j->listed = true;
    open_count.fetch_add(1, std::memory_order_release);
  }

  // Takes j off the open list if it is there; under the lock.
  void Close(Job* j) {
    if (!j->listed) return;
    (j->prev ? j->prev->next_open : open_head) = j->next_open;
    (j->next_open ? j->next_open->prev : open_tail) = j->prev;
    j->listed = false;
    open_count.fetch_sub(1, std::memory_order_release);
  }
};

ThreadPool::ThreadPool(int helpers) : impl_(std::make_unique<Impl>()) {
  impl_->helpers = std::max(0, helpers);
  for (int i = 0; i < impl_->helpers; ++i)
    impl_->threads.emplace_back([impl = impl_.get()] { impl->Helper(); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->stop.store(true);
  }
  impl_->work_cv.notify_all();
  for (auto& t : impl_->threads) t.join();
}

int ThreadPool::helpers() const { return impl_->helpers; }

void ThreadPool::Run(int64_t n, int64_t grain, ItemFn item, void* fn) {
  if (n <= 0) return;
  if (grain <= 0) grain = std::max<int64_t>(1, n / (8 * int64_t(slots())));
  if (impl_->helpers == 0 || n <= grain) {
    for (int64_t i = 0; i < n; ++i) item(fn, i, 0);
    return;
  }
  Job j;
  j.item = item;
  j.fn = fn;
  j.n = n;
  j.grain = grain;
  {
    std::lock_guard<std::mutex> lock(impl_->mu);
    impl_->Open(&j);
  }
  impl_->work_cv.notify_all();
  Drain(j, 0);
  std::unique_lock<std::mutex> lock(impl_->mu);
  impl_->Close(&j);
  impl_->idle_cv.wait(lock, [&] { return j.users == 0; });
}

}  // namespace billnet
