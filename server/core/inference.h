// The shared inference worker pool (DESIGN.md sections 3 and 3.1): a bounded
// set of std::threads that run windows of many streams through the engine,
// batching the windows that are ready together (up to max_batch, waiting at
// most batch_wait for more once one is there) while no other pool thread is
// running; a thread that starts while another runs takes one window (it gets
// no engine helpers then, HelperGate, so a batch would run its windows one
// after another and report them all at its end: decision 24).
//
// The engine is reached through InferenceBackend, so tests can inject a
// failing one (STYLE.md). Each stream has at most one window in the pool at a
// time (its LSTM state runs in order), so the sessions of a batch are distinct.
//
// A job may carry a deadline (a live window's queue-wait budget): a thread
// that takes it later than that drops it, calling its `expired` callback
// instead, so an overloaded pool sheds stale windows rather than queueing
// seconds of work.
//
// Thread-safety: Submit may be called from any thread; `done` and `expired`
// callbacks run on pool threads without the pool's lock (they may Submit),
// exactly one of them per job.
#ifndef BILLNET_SERVER_CORE_INFERENCE_H_
#define BILLNET_SERVER_CORE_INFERENCE_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "billnet/session.h"
#include "billnet/status.h"
#include "billnet/thread_pool.h"

namespace billnet::server {

using Clock = std::chrono::steady_clock;

class InferenceBackend {
 public:
  virtual ~InferenceBackend() = default;
  // Runs windows[i] on sessions[i] (distinct) for i < count, writing
  // responses[i] and statuses[i]. A success must equal Session::Run; a failed
  // entry leaves its session's state unchanged.
  virtual void RunBatch(Session* const* sessions, const uint8_t* const* windows, size_t count,
                        Response* responses, Status* statuses) = 0;
};

// Lends the engine's helper threads to one engine run at a time: a run that
// starts while another is under way gets none and runs on its own thread.
// Two runs splitting their rows over the same helpers put three or more
// threads on two cores, and a split run waits for its slowest part, so a
// preempted helper stretches every window it touched (decision 24).
class HelperGate {
 public:
  // The pool the run starting now may use: `pool` when no other run is under
  // way, else null. Every Enter is paired with one Leave when the run ends.
  ThreadPool* Enter(ThreadPool* pool);
  void Leave();
  int running() const { return running_.load(); }

 private:
  std::atomic<int> running_{0};
};

// The engine (billnet::RunBatch); if a batch fails, its sessions' states are
// restored and each window runs alone, so only the bad entry fails. With
// `engine_helpers` > 0 the backend owns a billnet::ThreadPool of that many
// threads, which a batch uses when no other batch is running (HelperGate):
// a batch's windows then run on them at once, and a lone window splits its
// rows over them.
std::unique_ptr<InferenceBackend> MakeEngineBackend(int engine_helpers = 0);

struct InferenceTimes {
  Clock::time_point start, end;  // of the batch's engine run
  int batch_size = 0;
};

struct InferenceJob {
  Session* session = nullptr;
  const uint8_t* window = nullptr;  // Model::window_bytes() bytes, alive until `done`
  std::function<void(Status, Response, const InferenceTimes&)> done;
  // Drop by age (live windows): a pool thread that would start the job after
  // `deadline` runs `expired` instead of the engine and `done` (the session is
  // untouched). max(): never dropped. Set both or neither.
  Clock::time_point deadline = Clock::time_point::max();
  std::function<void()> expired;
};

struct InferencePoolOptions {
  int threads = 2;
  int max_batch = 8;
  std::chrono::microseconds batch_wait{2000};
  // Helper threads of the engine backend a ServiceCore makes when given none
  // (MakeEngineBackend); 0: none.
  int engine_helpers = 0;
};

class InferencePool {
 public:
  InferencePool(InferencePoolOptions options, std::unique_ptr<InferenceBackend> backend);
  // Runs every job still queued, then joins the threads.
  ~InferencePool();
  InferencePool(const InferencePool&) = delete;
  InferencePool& operator=(const InferencePool&) = delete;

  void Submit(InferenceJob job);
  size_t queued() const;
  const InferencePoolOptions& options() const { return options_; }

 private:
  void Worker();

  InferencePoolOptions options_;
  std::unique_ptr<InferenceBackend> backend_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<InferenceJob> queue_;
  int running_ = 0;  // pool threads between taking jobs and their callbacks' end
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace billnet::server

#endif  // BILLNET_SERVER_CORE_INFERENCE_H_
