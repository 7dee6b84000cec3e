#include "core/inference.h"

#include <algorithm>

#if defined(__linux__)
#include <pthread.h>
#endif

namespace billnet::server {

namespace {

class EngineBackend : public InferenceBackend {
 public:
  explicit EngineBackend(int helpers) {
    if (helpers > 0) pool_ = std::make_unique<ThreadPool>(helpers);
  }

  void RunBatch(Session* const* sessions, const uint8_t* const* windows, size_t count,
                Response* responses, Status* statuses) override {
    std::vector<std::vector<uint8_t>> saved;
    if (count > 1) {
      saved.reserve(count);
      for (size_t i = 0; i < count; ++i) saved.push_back(sessions[i]->ExportState());
    }
    ThreadPool* pool = gate_.Enter(pool_.get());
    Status s = billnet::RunBatch(sessions, windows, count, responses, pool);
    if (s.ok()) {
      for (size_t i = 0; i < count; ++i) statuses[i] = Status::Ok();
    } else if (count == 1) {
      statuses[0] = s;
    } else {
      for (size_t i = 0; i < count; ++i) {
        Status r = sessions[i]->ImportState(saved[i].data(), saved[i].size());
        if (r.ok()) r = billnet::RunBatch(&sessions[i], &windows[i], 1, &responses[i], pool);
        statuses[i] = r;
      }
    }
    gate_.Leave();
  }

 private:
  std::unique_ptr<ThreadPool> pool_;
  HelperGate gate_;
};

}  // namespace

ThreadPool* HelperGate::Enter(ThreadPool* pool) {
  return running_.fetch_add(1) == 0 ? pool : nullptr;
}

void HelperGate::Leave() { running_.fetch_sub(1); }

std::unique_ptr<InferenceBackend> MakeEngineBackend(int engine_helpers) {
  return std::make_unique<EngineBackend>(engine_helpers);
}

InferencePool::InferencePool(InferencePoolOptions options,
                             std::unique_ptr<InferenceBackend> backend)
    : options_(options), backend_(std::move(backend)) {
  options_.threads = std::max(1, options_.threads);
  options_.max_batch = std::max(1, options_.max_batch);
  for (int i = 0; i < options_.threads; ++i) threads_.emplace_back([this] { Worker(); });
}

InferencePool::~InferencePool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : threads_) t.join();
}

void InferencePool::Submit(InferenceJob job) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    queue_.push_back(std::move(job));
  }
  cv_.notify_one();
}

size_t InferencePool::queued() const {
  std::lock_guard<std::mutex> lock(mu_);
  return queue_.size();
}

void InferencePool::Worker() {
#if defined(__linux__)
  pthread_setname_np(pthread_self(), "billnet-infer");  // top -H, perf, gdb
#endif
  std::vector<InferenceJob> batch;
  std::vector<InferenceJob> expired;
  std::vector<Session*> sessions;
  std::vector<const uint8_t*> windows;
  std::vector<Response> responses;
  std::vector<Status> statuses;
  for (;;) {
    batch.clear();
    expired.clear();
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, nothing left
      // Batch only while no other thread runs (see the header).
      const int limit = running_ > 0 ? 1 : options_.max_batch;
      const auto take = [&] {
        const auto now = Clock::now();
        while (!queue_.empty() && int(batch.size()) < limit) {
          InferenceJob job = std::move(queue_.front());
          queue_.pop_front();
          if (job.expired && job.deadline < now) {
            expired.push_back(std::move(job));
          } else {
            batch.push_back(std::move(job));
          }
        }
      };
      take();
      // Wait a little for more windows to batch with, unless stopping (or
      // every job taken expired: their callbacks may submit the next ones).
      if (!batch.empty() && int(batch.size()) < limit && options_.batch_wait.count() > 0 &&
          !stop_) {
        const auto deadline = Clock::now() + options_.batch_wait;
        while (int(batch.size()) < limit && !stop_) {
          if (!cv_.wait_until(lock, deadline, [this] { return stop_ || !queue_.empty(); })) break;
          take();
        }
      }
      if (!batch.empty()) ++running_;
      // Leave work for the other threads: wake one if jobs remain.
      if (!queue_.empty()) cv_.notify_one();
    }
    for (InferenceJob& job : expired) job.expired();
    if (batch.empty()) continue;
    const size_t n = batch.size();
    sessions.resize(n);
    windows.resize(n);
    responses.assign(n, Response{});
    statuses.assign(n, Status::Ok());
    for (size_t i = 0; i < n; ++i) {
      sessions[i] = batch[i].session;
      windows[i] = batch[i].window;
    }
    InferenceTimes times;
    times.batch_size = int(n);
    times.start = Clock::now();
    backend_->RunBatch(sessions.data(), windows.data(), n, responses.data(), statuses.data());
    times.end = Clock::now();
    for (size_t i = 0; i < n; ++i) {
      if (batch[i].done) batch[i].done(std::move(statuses[i]), std::move(responses[i]), times);
    }
    std::lock_guard<std::mutex> lock(mu_);
    --running_;
  }
}

}  // namespace billnet::server
