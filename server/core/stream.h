// One stream of the service (DESIGN.md section 3), top to bottom:
//
//   bytes (ChunkQueue, fed by the transport; flow control)
//     -> FrameDecoder (FFmpeg, on this stream's own thread)
//     -> media::ModelFrameStream (resample to the model's fps by timestamps,
//        crop + scale to its geometry)
//     -> media::Windower (16-frame windows; the tail padded at half-close)
//     -> pending windows (bounded: a file stream's decoder waits, a live
//        stream drops its oldest window)
//     -> InferencePool (shared; one window of this stream at a time, so the
//        LSTM state runs in order; a live window older than max_queue_wait
//        when the pool would start it is dropped) -> WindowOutput (+ state
//        token, events)
//     -> StreamObserver (the transport sends it)
//
// Load shedding, live streams only (file streams and Classify are lossless):
//   - dropped windows (too many pending, or past max_queue_wait): never run,
//     so the LSTM state goes on from the last window run (no reset); the
//     client sees a gap in sequence numbers (dropped_before), and each is
//     counted (billnet_dropped_windows_total, the summary).
//   - decoder behind real time by more than max_live_lag: the decoder skips
//     to a later key frame (packets demuxed, not decoded; counted in
//     billnet_skipped_frames_total). If model frames were lost, the pipeline
//     restarts at that key frame as after dropped windows: the partial window
//     and the windows the skipped time would have filled are dropped (their
//     sequence numbers skipped and counted as dropped windows), the resampler
//     starts a new tick grid at the key frame, the next window starts with it,
//     and the LSTM state is not reset.
//   - decode threads run at a lower priority (decode_nice) than the pool, so
//     decoding yields the CPU to inference.
//
// Hot swap: an unpinned stream checks the repository's active model at each
// window boundary; if it changed (and has the same input geometry, frame rate
// and classes) the next window runs on it with a fresh state, marked
// state_reset. A window already submitted finishes on its model.
//
// Create streams with ServiceCore::OpenStream.
//
// Thread-safety: the input methods may be called from any thread; observer
// callbacks come from the stream's decode thread and the pool's threads, one
// at a time, windows in sequence order, OnEnd exactly once and last.
#ifndef BILLNET_SERVER_CORE_STREAM_H_
#define BILLNET_SERVER_CORE_STREAM_H_

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "billnet/media/byte_io.h"
#include "billnet/media/frame.h"
#include "billnet/media/resampler.h"
#include "billnet/media/windower.h"
#include "billnet/session.h"
#include "core/decoding.h"
#include "core/events.h"
#include "core/inference.h"
#include "core/recent_streams.h"
#include "core/repository.h"
#include "core/serve_status.h"
#include "core/token.h"

namespace billnet::server {

class Metrics;

enum class StreamMode { kLive, kFile };

struct StreamConfig {
  std::string model_name;  // empty: the default model
  uint32_t version = 0;    // 0: the active version (a version or a stage pins the stream)
  std::optional<Stage> stage;
  std::string stream_id;
  StreamMode mode = StreamMode::kLive;
  std::string format_hint;  // FFmpeg demuxer name; empty: probe
  std::map<std::string, std::string> demuxer_options;
  std::string state_token;  // resume from it (empty: fresh)
  EventOptions events;
};

struct StreamLimits {
  // Received bytes not yet decoded; the transport stops reading above it.
  size_t max_queued_bytes = 4 << 20;
  // Decoded windows waiting for the pool (besides the one running).
  int max_pending_windows_live = 2;  // older ones are dropped
  int max_pending_windows_file = 2;  // the decoder waits
  // A stream that sends nothing for this long ends with DEADLINE_EXCEEDED (0: never).
  std::chrono::milliseconds idle_timeout{30000};
  // Live windows: dropped when the pool would start one later than this after
  // the decoder output its last frame (0: never). The default is the window
  // latency objective (DESIGN.md section 4): such a window has missed it.
  std::chrono::milliseconds max_queue_wait{50};
  // Live streams: a decoder further than this behind real time skips to a
  // key frame (0: never). Real time: the best offset seen between the clock
  // and the frames' timestamps, renewed whenever the decoder waits for input.
  std::chrono::milliseconds max_live_lag{1000};
  // Added to the nice value of every decode thread (0: unchanged; Linux).
  int decode_nice = 19;  // the lowest (decision 26)
  // Decode threads at SCHED_IDLE instead (Linux): they run only on cores
  // nothing else wants, so the pool's engine runs as fast as alone; when the
  // CPU is short they fall behind and live streams skip (max_live_lag).
  bool decode_idle = false;
  // Decode every source frame; false: the decoder leaves non-reference frames
  // that no tick of the model's rate takes undecoded (media::VideoDecoder::
  // SetFrameFilter), with the same model frames.
  bool decode_all_frames = false;
  int64_t max_frame_pixels = media::kMaxFramePixels;
  int64_t probesize = 1 << 20;
  int64_t analyzeduration_us = 500'000;
};

struct StartInfo {
  ModelHandle model;
  bool resumed = false;
  int64_t next_sequence = 0;
  std::string reset_reason;  // a state token was presented and refused
};

struct WindowTimings {
  double decode_s = 0, queue_s = 0, inference_s = 0;
};

struct WindowOutput {
  int64_t sequence = 0;
  double first_source_ts = 0, last_source_ts = 0;
  Response response;
  bool padded = false;
  int real_frames = 0, frames = 0;
  bool state_reset = false;
  std::string state_reset_reason;
  ModelHandle model;
  WindowTimings timings;
  Clock::time_point ready;  // the decoder output the window's last frame
  std::string state_token;
  std::vector<GestureEvent> events;  // finalized by this window
  int64_t dropped_before = 0;
};

// Records the window latency `total` (ready -> now) in the window's model
// histogram and returns it in seconds. The transport calls it as it hands the
// response over.
double MarkSent(const WindowOutput& window);

struct StreamSummary {
  int64_t windows = 0;
  int64_t source_frames = 0;
  int64_t model_frames = 0;
  int64_t dropped_windows = 0;
  int64_t padded_windows = 0;
  int64_t dropped_frames = 0;  // bad/repeated timestamps, and frames a resume token covered
  int64_t skipped_frames = 0;  // source frames a live decoder skipped to catch up
  int64_t undecoded_frames = 0;  // non-reference frames no tick takes (decode_all_frames off)
  int64_t bytes_received = 0;
};

class StreamObserver {
 public:
  virtual ~StreamObserver() = default;
  virtual void OnWindow(WindowOutput&& window) = 0;
  // The last call: how the stream ended, and the events still open at its end.
  virtual void OnEnd(const ServeStatus& status, const StreamSummary& summary,
                     std::vector<GestureEvent> final_events) = 0;
  // ChunkQueue has room again after Stream::PushChunk returned false.
  virtual void OnInputSpace() {}
};

// What every stream shares (owned by ServiceCore).
struct StreamDeps {
  ModelRepository* repository = nullptr;
  InferencePool* pool = nullptr;
  Metrics* metrics = nullptr;
  const TokenCodec* tokens = nullptr;
  DecoderFactory* decoders = nullptr;
  RecentStreams* recent = nullptr;  // the dashboard's view of single streams (may be null)
  StreamLimits limits;
  // The clock the decode thread reads to measure a live stream's lag behind
  // real time (null: Clock::now); tests inject one.
  std::function<Clock::time_point()> live_clock;
};

class Stream : public std::enable_shared_from_this<Stream> {
 public:
  // `source` null: the stream reads the chunks pushed to it.
  Stream(const StreamDeps& deps, StreamConfig config, ModelHandle model, bool pinned,
         StreamObserver* observer, std::unique_ptr<media::ByteSource> source);
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;

  // Checks the state token, starts the decode thread. Once. `on_finished`
  // runs after OnEnd.
  StartInfo Start(std::function<void()> on_finished);

  // Input. PushChunk returns false when the queue is full: stop reading until
  // OnInputSpace. PushChunkBlocking waits instead.
  bool PushChunk(std::string chunk);
  bool PushChunkBlocking(std::string chunk);
  void CloseInput();  // half-close: the tail window is padded, then OnEnd(OK)
  // Ends the stream now (client gone or protocol error): no padding; pending
  // windows are discarded; OnEnd(status).
  void Cancel(ServeStatus status);
  // Server drain: a live stream stops reading, finishes the windows it has
  // and ends with UNAVAILABLE; a file stream goes on to its end.
  void Drain();

  StreamMode mode() const { return config_.mode; }
  const std::string& id() const { return config_.stream_id; }

 private:
  struct PendingWindow {
    media::Window window;
    media::ResamplerPhase phase;  // after the window's last frame
    Clock::time_point ready;
    double decode_s = 0;
  };

  void DecodeLoop();
  void HandleWindow(media::Window window, const media::ResamplerPhase& phase, double decode_s);
  // The next pending window as a pool job (marks it in flight). The caller
  // submits it after releasing mu_ (decision 26).
  InferenceJob NextJobLocked();
  void OnInferenceDone(const std::shared_ptr<PendingWindow>& pw, Status status, Response response,
                       const InferenceTimes& times, bool reset, std::string reset_reason);
  // The pool dropped the window in flight (past max_queue_wait).
  void OnWindowExpired(bool reset, std::string reset_reason);
  void CountDroppedLocked(int64_t windows);
  void StopLocked(ServeStatus status);
  void MaybeSwapModelLocked();
  void MakeDetector();

  const StreamDeps deps_;
  const StreamConfig config_;
  const bool pinned_;
  StreamObserver* const observer_;
  std::unique_ptr<ChunkQueue> queue_;
  std::unique_ptr<media::ByteSource> own_source_;
  media::ByteSource* source_;
  std::function<void()> on_finished_;

  // The model chain: touched by one window at a time (in_flight_ orders it).
  ModelHandle model_;
  std::unique_ptr<Session> session_;
  std::optional<GestureEventDetector> detector_;
  uint64_t seen_generation_ = 0;
  bool reset_next_ = false;
  std::string reset_reason_;
  std::optional<StateToken> resume_;
  std::atomic<ModelSeries*> series_{nullptr};
  uint64_t recent_id_ = 0;  // in deps_.recent

  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<PendingWindow> pending_;
  bool in_flight_ = false;
  // No more windows (failure, cancel, drain). Set under mu_; atomic so the
  // decode loop reads it per frame without taking mu_ (a low-priority decode
  // thread preempted while holding mu_ would stall the pool thread that
  // delivers this stream's result).
  std::atomic<bool> stopped_{false};
  ServeStatus stop_status_;
  int64_t next_output_sequence_ = 0;  // gaps before a result are dropped windows
  StreamSummary summary_;
};

}  // namespace billnet::server

#endif  // BILLNET_SERVER_CORE_STREAM_H_
