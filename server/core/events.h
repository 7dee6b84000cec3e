// Gesture events from a stream's class-temporal responses (DESIGN.md section
// 3): per output step, an exponential moving average of the probabilities
// (so a swap between stages, which all emit calibrated probabilities, does
// not change the scale), then hysteresis:
//   - an event of class c starts at a step where c is the most probable
//     gesture class (background classes excluded) and its smoothed
//     probability reaches enter_threshold;
//   - it ends before the first step where that probability falls below
//     exit_threshold, or another gesture class overtakes it above
//     enter_threshold (that class may then start its own event);
//   - events shorter than min_duration_s are discarded.
// Background classes ("No gesture", "Doing other things" by default) never
// form events; while they dominate, gesture probabilities fall below the exit
// threshold and end any event.
//
// Thread-safety: one detector per stream, used by one thread at a time.
#ifndef BILLNET_SERVER_CORE_EVENTS_H_
#define BILLNET_SERVER_CORE_EVENTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "billnet/session.h"
#include "billnet/status.h"

namespace billnet::server {

struct EventOptions {
  bool enabled = true;
  float smoothing = 0.5f;  // EMA weight of the newest step, (0, 1]
  float enter_threshold = 0.6f;
  float exit_threshold = 0.4f;
  float min_duration_s = 0.5f;
  std::vector<std::string> background_labels = {"No gesture", "Doing other things"};
};

// InvalidArgument naming the field when a value is out of range
// (thresholds in [0, 1], exit <= enter, smoothing in (0, 1], duration >= 0).
Status ValidateEventOptions(const EventOptions& options);

struct GestureEvent {
  int label = 0;
  std::string label_name;
  double start_s = 0, end_s = 0;  // source timestamps
  float confidence = 0;           // mean smoothed probability over its steps
  int64_t start_sequence = 0, end_sequence = 0;
};

// Source time span of one output step: first and last real frame it covers.
struct StepSpan {
  double start_s = 0, end_s = 0;
};

// Spans of the `real_steps` steps of a window whose real frames have the
// source timestamps `source_ts` (frames of the window = `frames`).
std::vector<StepSpan> StepSpans(int steps, int frames, const std::vector<double>& source_ts);

// What a detector carries from one window to the next (the state token holds
// it, so events continue across a resume as if the stream had not moved).
struct EventDetectorState {
  std::vector<float> smoothed;  // empty: no step seen yet
  int active = -1;              // the open event's class, -1: none
  int active_steps = 0;
  double active_sum = 0;
  double start_s = 0, end_s = 0;
  int64_t start_sequence = 0, end_sequence = 0;
};

class GestureEventDetector {
 public:
  // `step_duration_s`: frames per step / model fps (for min_duration_s).
  GestureEventDetector(EventOptions options, std::vector<std::string> labels,
                       double step_duration_s);

  // Feeds the first spans.size() steps of `r` (the steps that cover real
  // frames) and appends the events they finalize.
  void AddWindow(int64_t sequence, const Response& r, const std::vector<StepSpan>& spans,
                 std::vector<GestureEvent>* out);
  // Forgets the smoothing and any open event (the state was reset).
  void Reset();
  // End of stream: finalizes an open event.
  void Finish(std::vector<GestureEvent>* out);

  EventDetectorState ExportState() const;
  // InvalidArgument (and the detector unchanged) when the state does not fit
  // this detector's classes or holds out-of-range values.
  Status ImportState(const EventDetectorState& state);

 private:
  void Close(std::vector<GestureEvent>* out);

  EventOptions options_;
  std::vector<std::string> labels_;
  std::vector<bool> background_;
  double step_duration_s_;
  std::vector<float> smoothed_;
  bool has_smoothed_ = false;
  // The open event.
  int active_ = -1;
  int active_steps_ = 0;
  double active_sum_ = 0;
  GestureEvent open_;
};

}  // namespace billnet::server

#endif  // BILLNET_SERVER_CORE_EVENTS_H_
