// billnet::ThreadPool: every item runs exactly once, slots are unique among
// the threads working on one call at a time, nested calls and several
// callers sharing a pool finish (the caller always works, so no call waits on
// a busy helper forever).
#include "billnet/thread_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace billnet {
namespace {

// Checks one call: each item once, slot in range, no two threads in one slot.
class CallCheck {
 public:
  CallCheck(int64_t n, int slots) : runs_(n), busy_(slots) {}

  void Item(int64_t i, int slot) {
    if (slot < 0 || slot >= int(busy_.size())) {
      bad_slot_ = true;
      return;
    }
    if (busy_[slot].exchange(true)) shared_slot_ = true;
    runs_[i].fetch_add(1);
    std::this_thread::yield();  // widen the window for a second thread in the slot
    busy_[slot].store(false);
  }

  ::testing::AssertionResult Ok() const {
    if (bad_slot_) return ::testing::AssertionFailure() << "a slot out of range";
    if (shared_slot_) return ::testing::AssertionFailure() << "two threads in one slot at once";
    for (size_t i = 0; i < runs_.size(); ++i)
      if (runs_[i].load() != 1)
        return ::testing::AssertionFailure() << "item " << i << " ran " << runs_[i].load() << "x";
    return ::testing::AssertionSuccess();
  }

 private:
  std::vector<std::atomic<int>> runs_;
  std::vector<std::atomic<bool>> busy_;
  std::atomic<bool> bad_slot_{false}, shared_slot_{false};
};

TEST(ThreadPool, EveryItemRunsOnceInItsOwnSlot) {
  for (int helpers : {0, 1, 3}) {
    ThreadPool pool(helpers);
    EXPECT_EQ(pool.helpers(), helpers);
    EXPECT_EQ(pool.slots(), helpers + 1);
    for (int64_t n : {0, 1, 2, 7, 1000, 20000})
      for (int64_t grain : {0, 1, 5}) {
        SCOPED_TRACE("helpers " + std::to_string(helpers) + " n " + std::to_string(n) +
                     " grain " + std::to_string(grain));
        CallCheck check(n, pool.slots());
        pool.ParallelFor(n, [&](int64_t i, int slot) { check.Item(i, slot); }, grain);
        EXPECT_TRUE(check.Ok());
      }
  }
}

TEST(ThreadPool, NestedCallsAndSeveralCallersFinishWithEveryItemOnce) {
  ThreadPool pool(2);
  constexpr int kCallers = 3, kOuter = 6, kInner = 300, kRounds = 20;
  std::vector<std::unique_ptr<CallCheck>> outer, inner;
  for (int c = 0; c < kCallers * kRounds; ++c) {
    outer.push_back(std::make_unique<CallCheck>(kOuter, pool.slots()));
    for (int o = 0; o < kOuter; ++o)
      inner.push_back(std::make_unique<CallCheck>(kInner, pool.slots()));
  }
  std::vector<std::thread> callers;
  for (int c = 0; c < kCallers; ++c)
    callers.emplace_back([&, c] {
      for (int r = 0; r < kRounds; ++r) {
        const int call = c * kRounds + r;
        pool.ParallelFor(
            kOuter,
            [&](int64_t o, int slot) {
              outer[call]->Item(o, slot);
              CallCheck& in = *inner[call * kOuter + o];
              pool.ParallelFor(kInner, [&](int64_t i, int s) { in.Item(i, s); });
            },
            1);
      }
    });
  for (auto& t : callers) t.join();
  for (size_t i = 0; i < outer.size(); ++i) EXPECT_TRUE(outer[i]->Ok()) << "outer call " << i;
  for (size_t i = 0; i < inner.size(); ++i) EXPECT_TRUE(inner[i]->Ok()) << "inner call " << i;
}

}  // namespace
}  // namespace billnet
