// Pure formatting for `stream`: the live terminal view (state -> text with
// ANSI codes) and the events timeline (events -> viz::TimelineSpec). No I/O.
#ifndef BILLNET_CLIENT_SRC_VIEW_H_
#define BILLNET_CLIENT_SRC_VIEW_H_

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "billnet/viz/charts.h"

namespace billnet::client {

struct ViewEvent {
  std::string label;
  int label_index = 0;
  double start_s = 0, end_s = 0;
  double confidence = 0;
};

struct LiveState {
  std::string source, model;
  int64_t windows = 0;    // received
  int64_t sequence = -1;  // of the last window (-1: none yet)
  std::string label;      // the last window's label (highest mean probability)
  double probability = 0;
  double source_s = 0;              // the last window's last source timestamp
  double fps = 0;                   // model frames per second of wall time, measured by the client
  double latency_ms = -1;           // < 0: unknown
  bool latency_from_server = true;  // else the client's round trip
  std::deque<ViewEvent> events;     // the most recent last
  std::string status;               // e.g. "reconnecting (attempt 2)"; empty: streaming
};

// How many recent events the live view lists.
inline constexpr size_t kLiveEvents = 5;

// The status area for `state`. When previous_lines > 0 the text first moves
// the cursor up that many lines and clears to the end of the screen, so the
// area is redrawn in place. Every line ends with "\x1b[K\n". *lines gets the
// number of lines drawn (the next call's previous_lines).
std::string RenderLiveView(const LiveState& state, int previous_lines, int* lines);

// One lane per class that occurred (in class index order), a bar per event
// from start to end shaded by confidence, time axis from 0 to t_end seconds.
viz::TimelineSpec TimelineFromEvents(const std::vector<ViewEvent>& events, double t_end,
                                     const std::string& title);

}  // namespace billnet::client

#endif  // BILLNET_CLIENT_SRC_VIEW_H_
