// RecentStreams: what the dashboard shows of single streams. Every running
// stream and the last few that ended, each with its most recent windows (the
// per-step probabilities exactly as sent) and gesture events. Stream ids live
// here only: they never become metric labels.
//
// Streams record into it (Open, AddWindow, End); the dashboard reads copies.
// Memory is bounded: `windows_per_stream` windows and `events_per_stream`
// events per stream, `ended_kept` ended streams.
//
// Thread-safety: every method may be called from any thread.
#ifndef BILLNET_SERVER_CORE_RECENT_STREAMS_H_
#define BILLNET_SERVER_CORE_RECENT_STREAMS_H_

#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "core/events.h"
#include "core/serve_status.h"

namespace billnet::server {

struct WindowOutput;

struct RecentWindow {
  int64_t sequence = 0;
  double first_source_ts = 0, last_source_ts = 0;
  int steps = 0, classes = 0;
  std::vector<float> probabilities;  // steps x classes, as in the response
  std::vector<int> top_class;        // per step
  bool padded = false;
  bool state_reset = false;
  std::string model;  // "name/version/stage"
  double queue_s = 0, inference_s = 0;
};

struct RecentStream {
  uint64_t id = 0;        // the server's number for it (the dashboard's key)
  std::string stream_id;  // the client's id (may be empty or repeated)
  std::string mode;       // "live" or "file"
  std::string model;      // the model of its last window (at start: its first model)
  std::vector<std::string> labels;
  double started = 0;  // Unix seconds
  double ended = 0;    // Unix seconds; 0 while it runs
  std::string status;  // "OK", "INVALID_ARGUMENT", ... once ended
  int64_t windows = 0;
  std::deque<RecentWindow> recent;  // oldest first
  std::deque<GestureEvent> events;  // oldest first
};

struct RecentStreamsOptions {
  size_t windows_per_stream = 16;
  size_t events_per_stream = 16;
  size_t ended_kept = 16;
};

class RecentStreams {
 public:
  explicit RecentStreams(RecentStreamsOptions options = {});

  // A stream started; returns its id (1, 2, ...).
  uint64_t Open(const std::string& stream_id, const std::string& mode, const std::string& model,
                const std::vector<std::string>& labels);
  // A window's response, as the stream hands it to its transport.
  void AddWindow(uint64_t id, const WindowOutput& window);
  // The stream ended with `status`; `final_events` are those still open at its end.
  void End(uint64_t id, const ServeStatus& status, const std::vector<GestureEvent>& final_events);

  // Running streams (by id), then ended ones (newest first); without windows and events.
  std::vector<RecentStream> List() const;
  // One stream with its windows and events; nullopt for an unknown id.
  std::optional<RecentStream> Get(uint64_t id) const;

 private:
  void AddEventsLocked(RecentStream* s, const std::vector<GestureEvent>& events);

  const RecentStreamsOptions options_;
  mutable std::mutex mu_;
  uint64_t next_id_ = 1;
  std::map<uint64_t, RecentStream> running_;
  std::deque<RecentStream> ended_;  // newest first
};

}  // namespace billnet::server

#endif  // BILLNET_SERVER_CORE_RECENT_STREAMS_H_
