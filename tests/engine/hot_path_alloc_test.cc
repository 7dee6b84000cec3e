// The fast path's hot path allocates nothing (issue 7 part 2): after a
// warm-up, Session::Run (with and without a ThreadPool) and a threaded
// RunBatch make no heap allocation on any thread. This binary's operator new
// counts allocations while a test switches counting on.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "billnet/session.h"
#include "billnet/thread_pool.h"
#include "test_util.h"

// Sanitizer runtimes own operator new (replacing it crashes them at start),
// so under a sanitizer the test is skipped.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define BILLNET_COUNT_ALLOCATIONS 0
#else
#define BILLNET_COUNT_ALLOCATIONS 1
#endif

namespace {
std::atomic<bool> g_counting{false};
std::atomic<long> g_allocations{0};
}  // namespace

#if BILLNET_COUNT_ALLOCATIONS
void* operator new(std::size_t n) {
  if (g_counting.load(std::memory_order_relaxed)) g_allocations.fetch_add(1);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
#endif

namespace billnet {
namespace {

using testing::RandomModel;
using testing::RandomWindow;

TEST(HotPath, RunAndThreadedRunBatchAllocateNothingAfterWarmUp) {
  if (!BILLNET_COUNT_ALLOCATIONS) GTEST_SKIP() << "a sanitizer owns operator new";
  ThreadPool pool(2);
  for (int s = 3; s <= 5; ++s) {
    SCOPED_TRACE("stage s" + std::to_string(s));
    auto m = RandomModel(Stage(s), 11);
    ASSERT_TRUE(m);
    Session a(m, KernelChoice::kFast), b(m, KernelChoice::kFast), c(m, KernelChoice::kFast);
    ASSERT_STREQ(a.kernels(), "fast");
    const auto w = RandomWindow(*m, 5);
    Session* ss[3] = {&a, &b, &c};
    const uint8_t* ws[3] = {w.data(), w.data(), w.data()};
    Response out[3];
    auto round = [&] {
      ASSERT_TRUE(RunBatch(ss, ws, 3, out, &pool).ok());
      ASSERT_TRUE(RunBatch(ss, ws, 3, out).ok());
      ASSERT_TRUE(a.Run(w.data(), w.size(), &out[0], nullptr, &pool).ok());
      ASSERT_TRUE(b.Run(w.data(), w.size(), &out[1]).ok());
    };
    round();  // warm-up: responses sized, row scratch per pool slot allocated
    g_allocations = 0;
    g_counting = true;
    for (int i = 0; i < 3; ++i) round();
    g_counting = false;
    EXPECT_EQ(g_allocations.load(), 0);
  }
}

}  // namespace
}  // namespace billnet
