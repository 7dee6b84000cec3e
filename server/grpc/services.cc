#include "grpc/services.h"

#include <grpcpp/alarm.h>
#include <spdlog/spdlog.h>

#include <deque>
#include <mutex>

#include "grpc/convert.h"

namespace billnet::server {

namespace {

// One Stream call. Reads feed the core stream (the next read starts only when
// its chunk queue has room: flow control); results are written one at a time
// from a queue; Finish comes after the core's OnEnd and the last write.
// Lifetime: gRPC calls OnDone after Finish; OnDone deletes the reactor. Finish
// is always the last thing a method does (OnDone may run at once, elsewhere).
class StreamReactor final : public grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>,
                            public StreamObserver {
 public:
  StreamReactor(ServiceCore* core, const EventOptions& defaults)
      : core_(core), defaults_(defaults) {
    // The idle timeout also covers a call that never sends its config. The
    // alarm's callback reaches the reactor through `watch_`, which OnDone
    // clears before the delete (the callback may run after it, not fired).
    const auto idle = core_->options().limits.idle_timeout;
    if (idle.count() > 0) {
      watch_->reactor = this;
      config_alarm_.Set(std::chrono::system_clock::now() + idle, [w = watch_](bool fired) {
        if (!fired) return;
        std::lock_guard<std::recursive_mutex> lock(w->mu);
        if (w->reactor) w->reactor->OnConfigDeadline();
      });
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    std::shared_ptr<billnet::server::Stream> stream;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stream = stream_;
    }
    if (!ok) {  // half-close (or a broken call: OnCancel follows)
      if (stream) {
        stream->CloseInput();
      } else {
        FinishWithoutStream(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                         "stream closed before its StreamConfig"));
      }
      return;
    }
    if (!stream) {
      StartStream();
      return;
    }
    if (request_.has_config()) {
      stream->Cancel(ServeStatus(Code::kInvalidArgument,
                                 "StreamConfig sent twice: only the first message is a config"));
      return;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      space_signalled_ = false;
    }
    const bool more = stream->PushChunk(std::move(*request_.mutable_chunk()));
    std::lock_guard<std::mutex> lock(mu_);
    if (ending_) return;
    if (more || space_signalled_) {
      space_signalled_ = false;
      StartRead(&request_);
    } else {
      read_paused_ = true;
    }
  }

  void OnInputSpace() override {
    std::lock_guard<std::mutex> lock(mu_);
    if (ending_) return;
    if (read_paused_) {
      read_paused_ = false;
      StartRead(&request_);
    } else {
      space_signalled_ = true;
    }
  }

  void OnWindow(WindowOutput&& w) override {
    Item item;
    ToProto(w, item.response.mutable_window());
    for (const auto& e : w.events) ToProto(e, item.response.add_events());
    item.window = std::make_unique<WindowOutput>();
    item.window->ready = w.ready;
    item.window->model = std::move(w.model);
    std::shared_ptr<billnet::server::Stream> stop;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (write_failed_ || finished_) return;
      if (out_.size() >= kMaxQueuedResponses) {
        // The client does not read its results: memory stays bounded.
        stop = stream_;
      } else {
        out_.push_back(std::move(item));
        MaybeWriteLocked();
      }
    }
    if (stop)
      stop->Cancel(ServeStatus(Code::kResourceExhausted, "the client is not reading its results (" +
                                                             std::to_string(kMaxQueuedResponses) +
                                                             " unsent)"));
  }

  void OnEnd(const ServeStatus& status, const StreamSummary& summary,
             std::vector<GestureEvent> final_events) override {
    std::unique_lock<std::mutex> lock(mu_);
    ending_ = true;
    if (!write_failed_ && status.code != Code::kCancelled) {
      Item item;
      ToProto(summary, item.response.mutable_summary());
      for (const auto& e : final_events) ToProto(e, item.response.add_events());
      out_.push_back(std::move(item));
    }
    finish_status_ = ToGrpc(status);
    finish_pending_ = true;
    MaybeWriteLocked();
    if (writing_ || finished_) return;
    finished_ = true;
    const grpc::Status st = finish_status_;
    lock.unlock();
    FinishCall(st);
  }

  void OnWriteDone(bool ok) override {
    std::unique_lock<std::mutex> lock(mu_);
    writing_ = false;
    if (!ok) {
      write_failed_ = true;
      out_.clear();
    }
    MaybeWriteLocked();
    if (writing_ || !finish_pending_ || finished_) return;
    finished_ = true;
    const grpc::Status st = finish_status_;
    lock.unlock();
    FinishCall(st);
  }

  void OnCancel() override {
    std::shared_ptr<billnet::server::Stream> stream;
    {
      std::lock_guard<std::mutex> lock(mu_);
      stream = stream_;
    }
    if (stream) stream->Cancel(ServeStatus(Code::kCancelled, "the client cancelled the call"));
  }

  void OnDone() override {
    {
      std::lock_guard<std::recursive_mutex> lock(watch_->mu);
      watch_->reactor = nullptr;
    }
    // Every other reaction has returned (gRPC's guarantee); taking mu_ once
    // also orders the delete after the core threads' last use of the members.
    { std::lock_guard<std::mutex> lock(mu_); }
    delete this;
  }

 private:
  static constexpr size_t kMaxQueuedResponses = 256;

  struct Item {
    v1::StreamResponse response;
    std::unique_ptr<WindowOutput> window;  // ready time and model, for the latency
  };

  void OnConfigDeadline() {
    bool waiting;
    {
      std::lock_guard<std::mutex> lock(mu_);
      waiting = !stream_ && !finished_;
    }
    // Last: OnDone may follow at once.
    if (waiting)
      FinishWithoutStream(grpc::Status(
          grpc::StatusCode::DEADLINE_EXCEEDED,
          "stream idle: no StreamConfig within " +
              std::to_string(core_->options().limits.idle_timeout.count()) + " ms (idle timeout)"));
  }

  void StartStream() {
    config_alarm_.Cancel();
    if (!request_.has_config()) {
      core_->metrics().Refused(RefuseReason::kBadRequest);
      FinishWithoutStream(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                       "the first message of a stream must be a StreamConfig"));
      return;
    }
    StreamConfig config;
    ServeStatus st = FromProto(request_.config(), defaults_, &config);
    std::shared_ptr<billnet::server::Stream> stream;
    StartInfo info;
    if (st.ok()) {
      st = core_->OpenStream(config, this, &stream, &info);  // counts its own refusals
    } else {
      core_->metrics().Refused(RefuseReason::kBadRequest);
    }
    if (!st.ok()) {
      FinishWithoutStream(ToGrpc(st));
      return;
    }
    Item item;
    ToProto(info, item.response.mutable_started());
    std::lock_guard<std::mutex> lock(mu_);
    stream_ = std::move(stream);
    out_.push_front(std::move(item));
    MaybeWriteLocked();
    if (!ending_) StartRead(&request_);
  }

  void FinishWithoutStream(const grpc::Status& status) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      finished_ = true;
      ending_ = true;
    }
    config_alarm_.Cancel();
    FinishCall(status);
  }

  // Every end of the call goes through here: counted once, by the status the
  // client gets (billnet_calls_total).
  void FinishCall(const grpc::Status& status) {
    core_->metrics().CallEnded(CallKind::kStream, Code(status.error_code()));
    Finish(status);
  }

  void MaybeWriteLocked() {
    if (writing_ || out_.empty() || write_failed_ || finished_) return;
    current_ = std::move(out_.front());
    out_.pop_front();
    if (current_.window) {
      current_.response.mutable_window()->mutable_timings()->set_total_s(
          MarkSent(*current_.window));
    }
    writing_ = true;
    StartWrite(&current_.response);
  }

  ServiceCore* core_;
  const EventOptions defaults_;
  v1::StreamRequest request_;
  struct ConfigWatch {
    std::recursive_mutex mu;
    StreamReactor* reactor = nullptr;
  };
  std::shared_ptr<ConfigWatch> watch_ = std::make_shared<ConfigWatch>();
  grpc::Alarm config_alarm_;

  std::mutex mu_;
  std::shared_ptr<billnet::server::Stream> stream_;
  std::deque<Item> out_;
  Item current_;
  bool writing_ = false;
  bool write_failed_ = false;
  bool read_paused_ = false;
  bool space_signalled_ = false;
  bool ending_ = false;  // OnEnd came or Finish is decided: no more reads
  bool finish_pending_ = false;
  bool finished_ = false;
  grpc::Status finish_status_;
};

grpc::ServerUnaryReactor* Done(grpc::CallbackServerContext* context, const grpc::Status& st) {
  auto* reactor = context->DefaultReactor();
  reactor->Finish(st);
  return reactor;
}

// A Classify call ends: counted by its status (billnet_calls_total).
void FinishClassify(Metrics& metrics, grpc::ServerUnaryReactor* reactor, const grpc::Status& st) {
  metrics.CallEnded(CallKind::kClassify, Code(st.error_code()));
  reactor->Finish(st);
}

grpc::Status NotOk(const Status& s, const std::string& context = "") {
  return ToGrpc(FromEngine(s, context));
}

}  // namespace

GestureServiceImpl::GestureServiceImpl(ServiceCore* core, EventOptions default_events)
    : core_(core), default_events_(std::move(default_events)) {}

grpc::ServerBidiReactor<v1::StreamRequest, v1::StreamResponse>* GestureServiceImpl::Stream(
    grpc::CallbackServerContext*) {
  return new StreamReactor(core_, default_events_);
}

grpc::ServerUnaryReactor* GestureServiceImpl::Classify(grpc::CallbackServerContext* context,
                                                       const v1::ClassifyRequest* request,
                                                       v1::ClassifyResponse* response) {
  ClassifyInput in;
  in.model_name = request->model().name();
  in.version = request->model().version();
  ServeStatus st = FromProtoStage(request->model().stage(), &in.stage);
  if (!st.ok()) {
    core_->metrics().Refused(RefuseReason::kBadRequest);
    auto* reactor = context->DefaultReactor();
    FinishClassify(core_->metrics(), reactor, ToGrpc(st));
    return reactor;
  }
  in.video = request->video();
  for (const auto& c : request->chunks()) in.video += c;
  in.format_hint = request->container_hint();
  for (const auto& [k, v] : request->demuxer_options()) in.demuxer_options[k] = v;
  auto* reactor = context->DefaultReactor();
  Metrics* metrics = &core_->metrics();
  core_->Classify(std::move(in), [reactor, response, metrics](ServeStatus st, ClassifyOutput out) {
    if (st.ok()) {
      const auto& labels = out.model->model->info().labels;
      response->set_label(out.label.label);
      response->set_label_name(size_t(out.label.label) < labels.size() ? labels[out.label.label]
                                                                       : "");
      response->set_probability(out.label.probability);
      response->mutable_mean_probabilities()->Assign(out.label.mean_probabilities.begin(),
                                                     out.label.mean_probabilities.end());
      response->set_steps_used(out.label.steps_used);
      for (const auto& w : out.windows) ToProto(w, response->add_windows());
      ToProto(out.model->key, response->mutable_model());
      ToProto(out.summary, response->mutable_summary());
    }
    FinishClassify(*metrics, reactor, ToGrpc(st));
  });
  return reactor;
}

grpc::ServerUnaryReactor* GestureServiceImpl::GetModelInfo(grpc::CallbackServerContext* context,
                                                           const v1::ModelInfoRequest* request,
                                                           v1::ModelInfoResponse* response) {
  std::optional<Stage> stage;
  ServeStatus st = FromProtoStage(request->model().stage(), &stage);
  if (!st.ok()) return Done(context, ToGrpc(st));
  ModelRepository& repo = core_->repository();
  auto m = repo.Resolve(request->model().name(), request->model().version(), stage);
  if (!m.ok()) return Done(context, NotOk(m.status()));
  ToProto(**m, repo.Active((*m)->key.name) == *m, response);
  return Done(context, grpc::Status::OK);
}

ModelAdminImpl::ModelAdminImpl(ModelRepository* repository) : repository_(repository) {}

grpc::ServerUnaryReactor* ModelAdminImpl::ListModels(grpc::CallbackServerContext* context,
                                                     const v1::ListModelsRequest*,
                                                     v1::ListModelsResponse* response) {
  for (const ModelListing& l : repository_->List()) {
    v1::ModelEntry* e = response->add_models();
    e->set_name(l.name);
    e->set_follows_latest(l.follows_latest);
    if (l.active) ToProto(l.active->key, e->mutable_active());
    for (const VersionListing& v : l.versions) {
      v1::VersionEntry* ve = e->add_versions();
      ve->set_version(v.version);
      ve->set_complete(v.complete);
      for (Stage s : v.stages) {
        v1::StageEntry* se = ve->add_stages();
        se->set_stage(ToProtoStage(s));
        const ModelKey key{l.name, v.version, s};
        for (const ModelKey& k : l.loaded)
          if (k == key) se->set_loaded(true);
        se->set_active(l.active && l.active->key == key);
      }
    }
  }
  response->set_default_model(repository_->default_model());
  response->set_repository(repository_->root());
  return Done(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ModelAdminImpl::Load(grpc::CallbackServerContext* context,
                                               const v1::LoadModelRequest* request,
                                               v1::LoadModelResponse* response) {
  std::optional<Stage> stage;
  ServeStatus st = FromProtoStage(request->model().stage(), &stage);
  if (!st.ok()) return Done(context, ToGrpc(st));
  const std::string name =
      request->model().name().empty() ? repository_->default_model() : request->model().name();
  auto m = repository_->Load(name, request->model().version(), stage);
  if (!m.ok()) return Done(context, NotOk(m.status(), "load"));
  ToProto((*m)->key, response->mutable_model());
  response->set_checksum((*m)->model->info().checksum);
  return Done(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ModelAdminImpl::Activate(grpc::CallbackServerContext* context,
                                                   const v1::ActivateModelRequest* request,
                                                   v1::ActivateModelResponse* response) {
  std::optional<Stage> stage;
  ServeStatus st = FromProtoStage(request->model().stage(), &stage);
  if (!st.ok()) return Done(context, ToGrpc(st));
  const std::string name =
      request->model().name().empty() ? repository_->default_model() : request->model().name();
  auto r = repository_->Activate(name, request->model().version(), stage);
  if (!r.ok()) return Done(context, NotOk(r.status(), "activate"));
  if (r->first) ToProto(r->first->key, response->mutable_previous());
  ToProto(r->second->key, response->mutable_active());
  return Done(context, grpc::Status::OK);
}

grpc::ServerUnaryReactor* ModelAdminImpl::Unload(grpc::CallbackServerContext* context,
                                                 const v1::UnloadModelRequest* request,
                                                 v1::UnloadModelResponse*) {
  std::optional<Stage> stage;
  ServeStatus st = FromProtoStage(request->model().stage(), &stage);
  if (!st.ok()) return Done(context, ToGrpc(st));
  if (request->model().version() == 0 || !stage)
    return Done(context, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                      "unload needs a model version and stage"));
  const std::string name =
      request->model().name().empty() ? repository_->default_model() : request->model().name();
  const ModelKey key{name, request->model().version(), *stage};
  if (ModelHandle a = repository_->Active(name); a && a->key == key)
    return Done(context, grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                                      "model " + key.ToString() +
                                          " is active; activate another one before unloading it"));
  Status s = repository_->Unload(key);
  if (!s.ok()) return Done(context, NotOk(s, "unload"));
  return Done(context, grpc::Status::OK);
}

}  // namespace billnet::server
