#include "core/stream.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <mutex>

#if defined(__linux__)
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "billnet/media/pipeline.h"
#include "core/metrics.h"

namespace billnet::server {

namespace {

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Lowers the calling thread's priority: SCHED_IDLE when `idle`, else by
// `nice` (Linux: both are per thread). A failure is logged once per process;
// decoding goes on (at `nice` if SCHED_IDLE was refused).
void LowerThreadPriority(int nice, bool idle) {
  std::string error;
#if defined(__linux__)
  if (idle) {
    sched_param sp{};
    sp.sched_priority = 0;
    const int err = pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp);
    if (err == 0) return;
    static std::once_flag once;
    std::call_once(once, [&] {
      spdlog::warn("decode threads not at SCHED_IDLE (decode_idle): {}; using decode_nice={}",
                   std::strerror(err), nice);
    });
  }
  if (nice <= 0) return;
  const id_t tid = id_t(syscall(SYS_gettid));
  errno = 0;
  const int current = getpriority(PRIO_PROCESS, tid);
  if (current == -1 && errno != 0) {
    error = std::string("getpriority: ") + std::strerror(errno);
  } else if (setpriority(PRIO_PROCESS, tid, std::min(19, current + nice)) != 0) {
    error = std::string("setpriority: ") + std::strerror(errno);
  }
#else
  if (nice <= 0 && !idle) return;
  error = "per-thread priorities need Linux";
#endif
  if (error.empty()) return;
  static std::once_flag once;
  std::call_once(once, [&] {
    spdlog::warn("decode threads keep their priority (decode_nice={} not applied): {}", nice,
                 error);
  });
}

bool SameInput(const Model& a, const Model& b) {
  const TopologyConfig& x = a.info().topology;
  const TopologyConfig& y = b.info().topology;
  return x.frames == y.frames && x.height == y.height && x.width == y.width &&
         x.classes == y.classes && a.info().frame_rate == b.info().frame_rate;
}

}  // namespace

double MarkSent(const WindowOutput& w) {
  const double total = Seconds(Clock::now() - w.ready);
  if (w.model && w.model->series) Metrics::Observe(w.model->series->total, total);
  return total;
}

Stream::Stream(const StreamDeps& deps, StreamConfig config, ModelHandle model, bool pinned,
               StreamObserver* observer, std::unique_ptr<media::ByteSource> source)
    : deps_(deps),
      config_(std::move(config)),
      pinned_(pinned),
      observer_(observer),
      own_source_(std::move(source)),
      model_(std::move(model)) {
  if (own_source_) {
    source_ = own_source_.get();
  } else {
    queue_ = std::make_unique<ChunkQueue>(deps_.limits.max_queued_bytes, deps_.limits.idle_timeout);
    // The transport stops reading when PushChunk returns false and starts
    // again on OnInputSpace. Runs on the decode thread, inside Read, so always
    // before OnEnd: the observer is alive.
    if (observer_) queue_->SetSpaceCallback([observer = observer_] { observer->OnInputSpace(); });
    source_ = queue_.get();
  }
  session_ = std::make_unique<Session>(model_->model);
  seen_generation_ = deps_.repository ? deps_.repository->generation() : 0;
  series_ = model_->series;
  MakeDetector();
}

Stream::~Stream() = default;

void Stream::MakeDetector() {
  const Model& m = *model_->model;
  const TopologyPlan& plan = m.plan();
  const double step_s = double(plan.config.frames) / std::max(1, plan.steps) / m.info().frame_rate;
  detector_.emplace(config_.events, m.info().labels, step_s);
}

// ---- Start and input -------------------------------------------------------

StartInfo Stream::Start(std::function<void()> on_finished) {
  on_finished_ = std::move(on_finished);
  StartInfo info;
  info.model = model_;
  const ModelKey& key = model_->key;
  if (!config_.state_token.empty()) {
    std::string reason;
    auto token = deps_.tokens->Decode(config_.state_token);
    if (!token.ok()) {
      reason = token.status().message();
    } else if (token->model_name != key.name || token->version != key.version ||
               token->stage != int(key.stage)) {
      reason = "state token is for model " + token->model_name + "/" +
               std::to_string(token->version) + "/s" + std::to_string(token->stage) +
               ", this stream runs " + key.ToString();
    } else if (token->stream_id != config_.stream_id) {
      reason =
          "state token is for stream '" + token->stream_id + "', not '" + config_.stream_id + "'";
    } else {
      media::Resampler check(model_->model->info().frame_rate);
      Status s = session_->ImportState(token->engine_state.data(), token->engine_state.size());
      if (s.ok()) s = check.Restore(token->phase);
      if (!s.ok()) {
        session_->Reset();
        reason = "state token does not fit the model: " + s.message();
      }
    }
    if (reason.empty()) {
      resume_ = *token;
      if (token->events) {
        // Events continue where the token left them; a state that does not
        // fit (another label set) only restarts the events.
        if (Status es = detector_->ImportState(*token->events); !es.ok())
          spdlog::info("stream event state not resumed stream_id={} reason=\"{}\"",
                       config_.stream_id, es.message());
      }
      next_output_sequence_ = token->next_sequence;
      info.resumed = true;
      info.next_sequence = token->next_sequence;
      spdlog::info("stream resumed stream_id={} model={} next_sequence={} covered_ts={}",
                   config_.stream_id, key.ToString(), token->next_sequence, token->last_covered_ts);
    } else {
      reset_next_ = true;
      reset_reason_ = "fresh start: " + reason;
      info.reset_reason = reset_reason_;
      spdlog::info("stream token refused stream_id={} reason=\"{}\"", config_.stream_id, reason);
    }
  }
  Metrics::Add(model_->series ? model_->series->active_streams : nullptr, 1);
  if (deps_.recent)
    recent_id_ =
        deps_.recent->Open(config_.stream_id, config_.mode == StreamMode::kLive ? "live" : "file",
                           key.ToString(), model_->model->info().labels);
  std::thread([self = shared_from_this()] { self->DecodeLoop(); }).detach();
  return info;
}

bool Stream::PushChunk(std::string chunk) {
  if (!queue_) return true;
  return queue_->Push(std::move(chunk));
}

bool Stream::PushChunkBlocking(std::string chunk) {
  if (!queue_) return false;
  return queue_->PushBlocking(std::move(chunk));
}

void Stream::CloseInput() {
  if (queue_) queue_->Close();
}

void Stream::Cancel(ServeStatus status) {
  std::lock_guard<std::mutex> lock(mu_);
  StopLocked(std::move(status));
  pending_.clear();
}

void Stream::Drain() {
  if (config_.mode != StreamMode::kLive) return;
  std::lock_guard<std::mutex> lock(mu_);
  if (stopped_) return;
  // Windows already decoded still run; nothing more is read or padded.
  stopped_ = true;
  stop_status_ = ServeStatus(Code::kUnavailable,
                             "server is draining: resume on another replica with the last "
                             "state token");
  if (queue_) queue_->Abort(Cancelled("server draining"));
  cv_.notify_all();
}

void Stream::StopLocked(ServeStatus status) {
  if (!stopped_ || stop_status_.ok()) {
    stopped_ = true;
    stop_status_ = std::move(status);
  }
  if (queue_) queue_->Abort(Cancelled(stop_status_.message));
  cv_.notify_all();
}

// ---- Decode thread: bytes -> frames -> model frames -> windows -------------

void Stream::DecodeLoop() {
#if defined(__linux__)
  pthread_setname_np(pthread_self(), "billnet-decode");  // top -H, perf, gdb
#endif
  LowerThreadPriority(deps_.limits.decode_nice, deps_.limits.decode_idle);
  const Model& m = *model_->model;
  const TopologyConfig& topo = m.info().topology;
  media::DecoderOptions options;
  options.format_hint = config_.format_hint;
  options.format_options = config_.demuxer_options;
  options.max_pixels = deps_.limits.max_frame_pixels;
  options.probesize = deps_.limits.probesize;
  options.analyzeduration_us = deps_.limits.analyzeduration_us;
  options.threads = 1;
  const std::string name =
      config_.stream_id.empty() ? "stream" : "stream '" + config_.stream_id + "'";

  Status input_error;
  bool clean_end = false;
  int64_t source_frames = 0, model_frames = 0, dropped_frames = 0, skipped_frames = 0;
  int64_t undecoded_frames = 0;
  // Live lag (see StreamLimits::max_live_lag): how much later than its best
  // offset between the clock and the frames' timestamps a frame comes out.
  const bool skip_when_behind =
      config_.mode == StreamMode::kLive && deps_.limits.max_live_lag.count() > 0;
  const double max_lag_s = Seconds(deps_.limits.max_live_lag);
  bool anchored = false;
  double best_offset = 0;
  auto decoder = deps_.decoders->Open(source_, options, name);
  if (!decoder.ok()) {
    input_error = decoder.status();
  } else {
    const media::ModelTarget target{topo.height, topo.width, m.info().frame_rate};
    media::ModelFrameStream frames(target);
    media::Windower windower(topo.frames, topo.height, topo.width,
                             resume_ ? resume_->next_sequence : 0);
    if (resume_) input_error = frames.Restore(resume_->phase);
    const auto count_undecoded = [&] {
      if (const int64_t u = (*decoder)->frames_undecoded(); u > undecoded_frames) {
        ModelSeries* series = series_.load(std::memory_order_acquire);
        if (series) Metrics::Inc(series->undecoded_frames, double(u - undecoded_frames));
        undecoded_frames = u;
      }
    };
    if (!deps_.limits.decode_all_frames) {
      // `frames` is move-assigned after a live skip (the filter follows it);
      // the decoder does not ask between the skip and the first frame after
      // it (decoder.h).
      (*decoder)->SetFrameFilter(frames.TakeFilter());
    }
    media::ResamplerPhase last_phase = resume_ ? resume_->phase : media::ResamplerPhase{};
    double decode_acc = 0;
    const media::ModelFrameStream::Emit emit = [&](const media::ModelFrame& f) -> Status {
      last_phase.started = true;
      last_phase.t0 = frames.phase().t0;
      last_phase.next_tick = f.tick + 1;
      last_phase.last_taken_ts = f.source_timestamp;
      if (auto w = windower.Add(f.rgb, f.source_timestamp)) {
        HandleWindow(std::move(*w), last_phase, decode_acc);
        decode_acc = 0;
      }
      return Status::Ok();
    };
    while (input_error.ok()) {
      if (stopped_.load(std::memory_order_acquire)) break;
      const auto blocked0 = queue_ ? queue_->blocked() : std::chrono::nanoseconds(0);
      const auto t0 = Clock::now();
      media::DecodedFrame frame;
      auto got = (*decoder)->Next(&frame);
      const auto blocked = (queue_ ? queue_->blocked() : std::chrono::nanoseconds(0)) - blocked0;
      const double next_s = std::max(0.0, Seconds(Clock::now() - t0 - blocked));
      if (!got.ok()) {
        input_error = got.status();
        break;
      }
      if (!*got) {
        clean_end = true;
        break;
      }
      ++source_frames;
      decode_acc += next_s;
      count_undecoded();
      if (skip_when_behind) {
        // Frames skipped since the last one: restart the model frames at
        // this key frame if the gap cost model frames (stream.h).
        const int64_t skipped = (*decoder)->frames_skipped();
        if (skipped > skipped_frames) {
          ModelSeries* series = series_.load(std::memory_order_acquire);
          if (series) Metrics::Inc(series->skipped_frames, double(skipped - skipped_frames));
          skipped_frames = skipped;
          const media::ResamplerPhase ph = frames.phase();
          int64_t lost = 0;  // ticks of the old grid before this frame, not emitted
          if (ph.started) {
            const double ticks = std::ceil((frame.timestamp() - ph.t0) * target.fps -
                                           media::Resampler::kEpsilon * target.fps);
            lost = std::max<int64_t>(0, int64_t(ticks) - ph.next_tick);
          }
          if (lost > 0) {
            // The windows those frames would have filled, the partial one
            // included: rounded (not up), so windows + drops match the
            // stream's duration on average; at least the partial one.
            lost += windower.pending();
            const int64_t windows =
                std::max<int64_t>(1, (2 * lost + topo.frames) / (2 * topo.frames));
            model_frames += frames.frames_out();
            dropped_frames += frames.frames_dropped();
            frames = media::ModelFrameStream(target);
            windower = media::Windower(topo.frames, topo.height, topo.width,
                                       windower.next_sequence() + windows);
            decode_acc = next_s;
            std::lock_guard<std::mutex> lock(mu_);
            CountDroppedLocked(windows);
          }
        }
        const Clock::time_point now = deps_.live_clock ? deps_.live_clock() : Clock::now();
        const double offset = Seconds(now.time_since_epoch()) - frame.timestamp();
        // Waiting for input means the decoder had caught up: renew the anchor.
        if (!anchored || blocked.count() > 0 || offset < best_offset) best_offset = offset;
        anchored = true;
        const double lag = offset - best_offset;
        if (lag > max_lag_s) {
          // Catch up to half the bound behind real time, at a key frame.
          (*decoder)->SkipToKeyFrame(frame.timestamp() + lag - max_lag_s / 2);
          spdlog::debug("stream behind real time stream_id={} lag_s={:.3f} skip_to_s={:.3f}",
                        config_.stream_id, lag, frame.timestamp() + lag - max_lag_s / 2);
        }
      }
      const auto t1 = Clock::now();
      input_error = frames.Push(std::move(frame), emit);
      const double push_s = Seconds(Clock::now() - t1);
      ModelSeries* series = series_.load(std::memory_order_acquire);
      if (series) {
        Metrics::Inc(series->frames);
        Metrics::Observe(series->decode, next_s + push_s);
      }
      decode_acc += push_s;
    }
    if (clean_end && input_error.ok()) {
      std::unique_lock<std::mutex> lock(mu_);
      if (!stopped_) {
        lock.unlock();
        input_error = frames.Flush(emit);
        if (auto w = windower.Finish(); w && input_error.ok())
          HandleWindow(std::move(*w), last_phase, decode_acc);
      }
    }
    model_frames += frames.frames_out();
    dropped_frames += frames.frames_dropped();
    count_undecoded();
    (*decoder)->SetFrameFilter(nullptr);  // it refers to `frames`, which ends here
  }
  decoder = Status(Internal("closed"));  // release FFmpeg before waiting

  // Wait for the windows in the pool.
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return !in_flight_ && pending_.empty(); });
  ServeStatus end;
  if (stopped_) {
    end = stop_status_;
  } else if (!input_error.ok()) {
    if (queue_ && queue_->idle_expired()) {
      end =
          ServeStatus(Code::kDeadlineExceeded,
                      "stream idle: nothing received for " +
                          std::to_string(deps_.limits.idle_timeout.count()) + " ms (idle timeout)");
    } else {
      end = FromEngine(input_error, "decoding " + name);
      ModelSeries* series = series_.load();
      if (series) Metrics::Inc(series->decode_errors);
    }
  }
  summary_.source_frames = source_frames;
  summary_.model_frames = model_frames;
  summary_.dropped_frames = dropped_frames;
  summary_.skipped_frames = skipped_frames;
  summary_.undecoded_frames = undecoded_frames;
  summary_.bytes_received = queue_ ? queue_->bytes_received() : own_source_->size();
  const StreamSummary summary = summary_;
  std::vector<GestureEvent> final_events;
  if (end.code != Code::kCancelled) detector_->Finish(&final_events);
  ModelSeries* series = series_.load();
  lock.unlock();

  if (series) Metrics::Add(series->active_streams, -1);
  if (end.ok()) {
    spdlog::debug("stream ended stream_id={} windows={} frames={}", config_.stream_id,
                  summary.windows, summary.source_frames);
  } else {
    spdlog::info("stream ended stream_id={} status={} message=\"{}\" windows={}", config_.stream_id,
                 CodeName(end.code), end.message, summary.windows);
  }
  if (deps_.recent) deps_.recent->End(recent_id_, end, final_events);
  observer_->OnEnd(end, summary, std::move(final_events));
  if (on_finished_) on_finished_();
}

// ---- Windows -> the pool ---------------------------------------------------

void Stream::HandleWindow(media::Window window, const media::ResamplerPhase& phase,
                          double decode_s) {
  PendingWindow pw{std::move(window), phase, Clock::now(), decode_s};
  std::unique_lock<std::mutex> lock(mu_);
  if (stopped_) return;
  if (config_.mode == StreamMode::kLive) {
    while (int(pending_.size()) >= std::max(1, deps_.limits.max_pending_windows_live)) {
      pending_.pop_front();
      CountDroppedLocked(1);
    }
  } else {
    cv_.wait(lock, [&] {
      return stopped_ || int(pending_.size()) < std::max(1, deps_.limits.max_pending_windows_file);
    });
    if (stopped_) return;
  }
  pending_.push_back(std::move(pw));
  if (in_flight_) return;
  // Submitted outside mu_: Submit wakes a pool thread, which may preempt this
  // (low-priority) decode thread at once; holding mu_ then, it would make
  // that thread's OnInferenceDone wait until the scheduler came back to a
  // nice-19 thread among dozens (decision 26).
  InferenceJob job = NextJobLocked();
  lock.unlock();
  deps_.pool->Submit(std::move(job));
}

void Stream::CountDroppedLocked(int64_t windows) {
  summary_.dropped_windows += windows;
  ModelSeries* series = series_.load();
  if (series) Metrics::Inc(series->dropped_windows, double(windows));
}

void Stream::MaybeSwapModelLocked() {
  if (pinned_ || !deps_.repository) return;
  const uint64_t g = deps_.repository->generation();
  if (g == seen_generation_) return;
  seen_generation_ = g;
  ModelHandle active = deps_.repository->Active(model_->key.name);
  if (!active || active == model_) return;
  if (!SameInput(*active->model, *model_->model)) {
    spdlog::warn(
        "stream stays on its model stream_id={} model={} new={} reason=\"input geometry, "
        "frame rate or classes differ\"",
        config_.stream_id, model_->key.ToString(), active->key.ToString());
    return;
  }
  const std::string from = model_->key.ToString();
  if (model_->series) Metrics::Add(model_->series->active_streams, -1);
  if (active->series) Metrics::Add(active->series->active_streams, 1);
  model_ = active;
  series_.store(model_->series, std::memory_order_release);
  session_ = std::make_unique<Session>(model_->model);
  MakeDetector();
  reset_next_ = true;
  reset_reason_ = "model changed from " + from + " to " + model_->key.ToString() + " (hot swap)";
  spdlog::info("stream switched model stream_id={} from={} to={}", config_.stream_id, from,
               model_->key.ToString());
}

InferenceJob Stream::NextJobLocked() {
  auto pw = std::make_shared<PendingWindow>(std::move(pending_.front()));
  pending_.pop_front();
  MaybeSwapModelLocked();
  const bool reset = reset_next_;
  std::string reason = std::move(reset_reason_);
  reset_next_ = false;
  reset_reason_.clear();
  in_flight_ = true;
  InferenceJob job;
  job.session = session_.get();
  job.window = pw->window.rgb.data();
  if (config_.mode == StreamMode::kLive && deps_.limits.max_queue_wait.count() > 0) {
    job.deadline = pw->ready + deps_.limits.max_queue_wait;
    job.expired = [self = shared_from_this(), reset, reason] {
      self->OnWindowExpired(reset, reason);
    };
  }
  job.done = [self = shared_from_this(), pw, reset, reason = std::move(reason)](
                 Status s, Response r, const InferenceTimes& t) mutable {
    self->OnInferenceDone(pw, std::move(s), std::move(r), t, reset, std::move(reason));
  };
  return job;
}

// ---- Pool thread: results -> the observer ----------------------------------

void Stream::OnWindowExpired(bool reset, std::string reset_reason) {
  std::unique_lock<std::mutex> lock(mu_);
  in_flight_ = false;
  if (stopped_ && stop_status_.code == Code::kCancelled) {
    pending_.clear();
    cv_.notify_all();
    return;
  }
  // Like a window dropped from pending_: its session did not run, so the
  // state goes on from the last window run; a reset it carried (hot swap,
  // refused token) moves to the next window.
  CountDroppedLocked(1);
  if (reset && !reset_next_) {
    reset_next_ = true;
    reset_reason_ = std::move(reset_reason);
  }
  cv_.notify_all();
  if (pending_.empty()) return;
  InferenceJob job = NextJobLocked();
  lock.unlock();
  deps_.pool->Submit(std::move(job));
}

void Stream::OnInferenceDone(const std::shared_ptr<PendingWindow>& pw, Status status,
                             Response response, const InferenceTimes& times, bool reset,
                             std::string reset_reason) {
  {
    // A cancelled stream (client gone, protocol error) sends nothing more.
    std::lock_guard<std::mutex> lock(mu_);
    if (stopped_ && stop_status_.code == Code::kCancelled) {
      in_flight_ = false;
      pending_.clear();
      cv_.notify_all();
      return;
    }
  }
  if (!status.ok()) {
    spdlog::error("inference failed stream_id={} model={} error=\"{}\"", config_.stream_id,
                  model_->key.ToString(), status.ToString());
    if (model_->series) Metrics::Inc(model_->series->engine_failures);
    std::lock_guard<std::mutex> lock(mu_);
    StopLocked(FromEngine(status, "inference on " + model_->key.ToString()));
    if (stop_status_.code == Code::kInvalidArgument) stop_status_.code = Code::kInternal;
    pending_.clear();
    in_flight_ = false;
    cv_.notify_all();
    return;
  }
  const media::Window& w = pw->window;
  WindowOutput out;
  out.sequence = w.sequence;
  out.first_source_ts = w.first_source_ts;
  out.last_source_ts = w.last_source_ts;
  out.padded = w.padded;
  out.real_frames = w.real_frames;
  out.frames = w.frames;
  out.state_reset = reset;
  out.state_reset_reason = std::move(reset_reason);
  out.model = model_;
  out.timings.decode_s = pw->decode_s;
  out.timings.queue_s = std::max(0.0, Seconds(times.start - pw->ready));
  out.timings.inference_s = Seconds(times.end - times.start);
  out.ready = pw->ready;

  if (reset) detector_->Reset();
  detector_->AddWindow(w.sequence, response, StepSpans(response.steps, w.frames, w.source_ts),
                       &out.events);

  // The token covers this window: the engine state after it and the event
  // detector after its steps, so a resume continues both.
  StateToken token;
  token.model_name = model_->key.name;
  token.version = model_->key.version;
  token.stage = int(model_->key.stage);
  token.stream_id = config_.stream_id;
  token.next_sequence = w.sequence + 1;
  token.engine_state = session_->ExportState();
  token.phase = pw->phase;
  token.last_covered_ts = w.last_source_ts;
  token.events = detector_->ExportState();
  out.state_token = deps_.tokens->Encode(token);
  out.response = std::move(response);
  if (ModelSeries* s = model_->series) {
    Metrics::Inc(s->windows);
    Metrics::Observe(s->queue, out.timings.queue_s);
    Metrics::Observe(s->inference, out.timings.inference_s);
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    out.dropped_before = std::max<int64_t>(0, w.sequence - next_output_sequence_);
    next_output_sequence_ = w.sequence + 1;
    ++summary_.windows;
    if (w.padded) ++summary_.padded_windows;
  }
  if (deps_.recent) deps_.recent->AddWindow(recent_id_, out);
  observer_->OnWindow(std::move(out));

  std::unique_lock<std::mutex> lock(mu_);
  in_flight_ = false;
  cv_.notify_all();
  if (pending_.empty()) return;
  InferenceJob job = NextJobLocked();
  lock.unlock();
  deps_.pool->Submit(std::move(job));
}

}  // namespace billnet::server
