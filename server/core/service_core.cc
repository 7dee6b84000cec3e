#include "core/service_core.h"

#include <spdlog/spdlog.h>

#include <cstring>

namespace billnet::server {

namespace {

// The whole clip of a unary call, seekable (MP4 with its index at the end).
class StringSource : public media::ByteSource {
 public:
  explicit StringSource(std::string bytes) : bytes_(std::move(bytes)) {}
  StatusOr<size_t> Read(uint8_t* data, size_t size) override {
    const size_t n = std::min(size, bytes_.size() - pos_);
    std::memcpy(data, bytes_.data() + pos_, n);
    pos_ += n;
    return n;
  }
  bool seekable() const override { return true; }
  int64_t size() const override { return int64_t(bytes_.size()); }
  Status Seek(int64_t offset) override {
    if (offset < 0 || size_t(offset) > bytes_.size())
      return InvalidArgument("seek to " + std::to_string(offset) + " outside the clip");
    pos_ = size_t(offset);
    return Status::Ok();
  }

 private:
  std::string bytes_;
  size_t pos_ = 0;
};

// Collects a classification's windows, then computes the clip label.
class ClassifyObserver : public StreamObserver {
 public:
  explicit ClassifyObserver(std::function<void(ServeStatus, ClassifyOutput)> done)
      : done_(std::move(done)) {}

  void OnWindow(WindowOutput&& w) override {
    MarkSent(w);
    out_.model = w.model;
    out_.windows.push_back(std::move(w));
  }

  void OnEnd(const ServeStatus& status, const StreamSummary& summary,
             std::vector<GestureEvent>) override {
    out_.summary = summary;
    ServeStatus st = status;
    if (st.ok()) {
      std::vector<Response> responses;
      std::vector<int> real;
      int frames = 0;
      for (const WindowOutput& w : out_.windows) {
        responses.push_back(w.response);
        real.push_back(w.real_frames);
        frames = w.frames;
      }
      if (responses.empty()) {
        st = ServeStatus(Code::kInvalidArgument, "the clip has no decodable video frame");
      } else {
        auto label = ClassifyClip(responses, real, frames);
        if (label.ok()) {
          out_.label = *label;
        } else {
          st = FromEngine(label.status(), "classify");
        }
      }
    }
    auto done = std::move(done_);
    ClassifyOutput out = std::move(out_);
    delete this;  // the stream makes no call after OnEnd
    done(st, std::move(out));
  }

  ClassifyOutput out_;

 private:
  std::function<void(ServeStatus, ClassifyOutput)> done_;
};

}  // namespace

ServiceCore::ServiceCore(CoreOptions options, ModelRepository* repository, Metrics* metrics,
                         const TokenCodec* tokens, std::shared_ptr<DecoderFactory> decoders,
                         std::unique_ptr<InferenceBackend> backend)
    : options_(std::move(options)),
      repository_(repository),
      metrics_(metrics),
      tokens_(tokens),
      decoders_(decoders ? std::move(decoders) : MakeFfmpegDecoderFactory()) {
  pool_ = std::make_unique<InferencePool>(options_.pool,
                                          backend ? std::move(backend)
                                                  : MakeEngineBackend(options_.pool.engine_helpers));
  deps_.repository = repository_;
  deps_.pool = pool_.get();
  deps_.metrics = metrics_;
  deps_.tokens = tokens_;
  deps_.decoders = decoders_.get();
  deps_.recent = &recent_;
  deps_.limits = options_.limits;
  deps_.live_clock = options_.live_clock;
}

ServiceCore::~ServiceCore() {
  CancelAll("server shutting down");
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return streams_.empty(); });
  lock.unlock();
  pool_.reset();
}

ServeStatus ServiceCore::OpenStream(const StreamConfig& config, StreamObserver* observer,
                                    std::shared_ptr<Stream>* stream, StartInfo* info,
                                    std::unique_ptr<media::ByteSource> source) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (draining_) {
      metrics_->Refused(RefuseReason::kDraining);
      return ServeStatus(Code::kUnavailable, "server is draining; connect to another replica");
    }
    if (int(streams_.size()) >= options_.max_streams) {
      metrics_->Refused(RefuseReason::kLimit);
      return ServeStatus(Code::kResourceExhausted, "server is at its limit of " +
                                                       std::to_string(options_.max_streams) +
                                                       " concurrent streams");
    }
  }
  Status ev = ValidateEventOptions(config.events);
  if (!ev.ok()) {
    metrics_->Refused(RefuseReason::kBadRequest);
    return FromEngine(ev, "stream config");
  }
  auto model = repository_->Resolve(config.model_name, config.version, config.stage);
  if (!model.ok()) {
    metrics_->Refused(model.status().code() == StatusCode::kNotFound ? RefuseReason::kUnknownModel
                                                                     : RefuseReason::kBadRequest);
    ServeStatus st = FromEngine(model.status(), "stream config");
    // A model file that exists but does not load is the server's problem.
    if (model.status().code() != StatusCode::kNotFound) st.code = Code::kFailedPrecondition;
    return st;
  }
  const bool pinned = config.version != 0 || config.stage.has_value();
  auto s = std::make_shared<Stream>(deps_, config, *model, pinned, observer, std::move(source));
  {
    std::lock_guard<std::mutex> lock(mu_);
    // Checked again: a drain may have started while the model resolved.
    if (draining_) {
      metrics_->Refused(RefuseReason::kDraining);
      return ServeStatus(Code::kUnavailable, "server is draining; connect to another replica");
    }
    streams_.insert(s);
  }
  *info = s->Start([this, raw = s.get()] {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = streams_.begin(); it != streams_.end(); ++it)
      if (it->get() == raw) {
        streams_.erase(it);
        break;
      }
    cv_.notify_all();
  });
  spdlog::info("stream started stream_id={} model={} mode={} pinned={} resumed={}",
               config.stream_id, (*model)->key.ToString(),
               config.mode == StreamMode::kLive ? "live" : "file", pinned, info->resumed);
  *stream = std::move(s);
  return ServeStatus::Ok();
}

void ServiceCore::Classify(ClassifyInput input,
                           std::function<void(ServeStatus, ClassifyOutput)> done) {
  StreamConfig config;
  config.model_name = input.model_name;
  config.version = input.version;
  config.stage = input.stage;
  config.mode = StreamMode::kFile;
  config.format_hint = input.format_hint;
  config.demuxer_options = input.demuxer_options;
  config.events.enabled = false;
  config.stream_id = "classify";
  auto* observer = new ClassifyObserver(std::move(done));
  std::shared_ptr<Stream> stream;
  StartInfo info;
  ServeStatus st = OpenStream(config, observer, &stream, &info,
                              std::make_unique<StringSource>(std::move(input.video)));
  // Not started: the observer reports `st` and deletes itself.
  if (!st.ok()) observer->OnEnd(st, StreamSummary{}, {});
}

ServeStatus ServiceCore::ClassifySync(ClassifyInput input, ClassifyOutput* out) {
  std::mutex m;
  std::condition_variable cv;
  bool finished = false;
  ServeStatus status;
  Classify(std::move(input), [&](ServeStatus st, ClassifyOutput o) {
    std::lock_guard<std::mutex> lock(m);
    status = std::move(st);
    *out = std::move(o);
    finished = true;
    cv.notify_all();
  });
  std::unique_lock<std::mutex> lock(m);
  cv.wait(lock, [&] { return finished; });
  return status;
}

void ServiceCore::BeginDrain() {
  std::vector<std::shared_ptr<Stream>> streams;
  {
    std::lock_guard<std::mutex> lock(mu_);
    draining_ = true;
    streams.assign(streams_.begin(), streams_.end());
  }
  spdlog::info("draining streams={}", streams.size());
  for (auto& s : streams) s->Drain();
}

bool ServiceCore::draining() const {
  std::lock_guard<std::mutex> lock(mu_);
  return draining_;
}

bool ServiceCore::WaitForStreams(Clock::time_point deadline) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_until(lock, deadline, [&] { return streams_.empty(); });
}

void ServiceCore::CancelAll(const std::string& message) {
  std::vector<std::shared_ptr<Stream>> streams;
  {
    std::lock_guard<std::mutex> lock(mu_);
    streams.assign(streams_.begin(), streams_.end());
  }
  for (auto& s : streams) s->Cancel(ServeStatus(Code::kUnavailable, message));
}

size_t ServiceCore::active_streams() const {
  std::lock_guard<std::mutex> lock(mu_);
  return streams_.size();
}

}  // namespace billnet::server
