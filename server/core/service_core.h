// ServiceCore: the gesture service without its transport. It owns the
// inference pool and the set of running streams, and opens streams and
// whole-clip classifications on the model repository. The gRPC layer
// (server/grpc/) wraps it; tests drive it directly, with injected decoders and
// engines (STYLE.md).
//
// Thread-safety: every method may be called from any thread.
#ifndef BILLNET_SERVER_CORE_SERVICE_CORE_H_
#define BILLNET_SERVER_CORE_SERVICE_CORE_H_

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "billnet/session.h"
#include "core/decoding.h"
#include "core/events.h"
#include "core/inference.h"
#include "core/metrics.h"
#include "core/recent_streams.h"
#include "core/repository.h"
#include "core/serve_status.h"
#include "core/stream.h"
#include "core/token.h"

namespace billnet::server {

struct CoreOptions {
  StreamLimits limits;
  InferencePoolOptions pool;
  int max_streams = 1000;  // streams and classifications at once; more are refused
  // The clock live streams measure their lag behind real time with (null:
  // Clock::now); tests inject one.
  std::function<Clock::time_point()> live_clock;
};

struct ClassifyInput {
  std::string model_name;
  uint32_t version = 0;
  std::optional<Stage> stage;
  std::string video;  // the whole clip
  std::string format_hint;
  std::map<std::string, std::string> demuxer_options;
};

struct ClassifyOutput {
  ClipLabel label;
  std::vector<WindowOutput> windows;
  ModelHandle model;
  StreamSummary summary;
};

class ServiceCore {
 public:
  // `repository`, `metrics` and `tokens` must outlive the core. Null
  // `decoders` / `backend`: FFmpeg and the engine.
  ServiceCore(CoreOptions options, ModelRepository* repository, Metrics* metrics,
              const TokenCodec* tokens, std::shared_ptr<DecoderFactory> decoders = nullptr,
              std::unique_ptr<InferenceBackend> backend = nullptr);
  // Cancels every stream and waits for them to end.
  ~ServiceCore();
  ServiceCore(const ServiceCore&) = delete;
  ServiceCore& operator=(const ServiceCore&) = delete;

  // Opens a stream reading the chunks pushed to *stream (or `source` when
  // given). On success the observer receives every window and exactly one
  // OnEnd; on error nothing is called and the status says why (NOT_FOUND for
  // an unknown model, INVALID_ARGUMENT for bad options, RESOURCE_EXHAUSTED
  // over max_streams, UNAVAILABLE while draining).
  ServeStatus OpenStream(const StreamConfig& config, StreamObserver* observer,
                         std::shared_ptr<Stream>* stream, StartInfo* info,
                         std::unique_ptr<media::ByteSource> source = nullptr);

  // A whole clip through the same path as a file stream (its own decode
  // thread and the pool); `done` runs once, on a core thread.
  void Classify(ClassifyInput input, std::function<void(ServeStatus, ClassifyOutput)> done);
  ServeStatus ClassifySync(ClassifyInput input, ClassifyOutput* out);

  // Refuses new streams (UNAVAILABLE); live streams end after the windows
  // they have (UNAVAILABLE: resume elsewhere); file streams run to their end.
  void BeginDrain();
  bool draining() const;
  // Waits until no stream runs or the deadline passes; true if none runs.
  bool WaitForStreams(Clock::time_point deadline);
  // Ends every running stream with UNAVAILABLE and `message`: the server is
  // going away, so a client resumes elsewhere with its last state token
  // (DESIGN.md 3); a client's own cancel stays CANCELLED.
  void CancelAll(const std::string& message);
  size_t active_streams() const;

  ModelRepository& repository() { return *repository_; }
  Metrics& metrics() { return *metrics_; }
  // Running and recently ended streams, for the dashboard.
  const RecentStreams& recent_streams() const { return recent_; }
  const CoreOptions& options() const { return options_; }

 private:
  CoreOptions options_;
  ModelRepository* repository_;
  Metrics* metrics_;
  const TokenCodec* tokens_;
  std::shared_ptr<DecoderFactory> decoders_;
  RecentStreams recent_;
  std::unique_ptr<InferencePool> pool_;
  StreamDeps deps_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::set<std::shared_ptr<Stream>> streams_;
  bool draining_ = false;
};

}  // namespace billnet::server

#endif  // BILLNET_SERVER_CORE_SERVICE_CORE_H_
