#include "view.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

namespace billnet::client {

namespace {

std::string Fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

// A bar of `width` cells filled in proportion to p in [0, 1].
std::string Bar(double p, int width) {
  const int n = std::clamp(int(p * width + 0.5), 0, width);
  return "[" + std::string(size_t(n), '#') + std::string(size_t(width - n), '.') + "]";
}

}  // namespace

std::string RenderLiveView(const LiveState& s, int previous_lines, int* lines) {
  std::vector<std::string> rows;
  rows.push_back("billnet " + s.source + " -> " + s.model +
                 (s.status.empty() ? "" : "  [" + s.status + "]"));
  if (s.sequence < 0) {
    rows.push_back("  waiting for the first window...");
  } else {
    rows.push_back("  now: " + s.label + " " + Fixed(s.probability, 3) + " " +
                   Bar(s.probability, 20) + "  at " + Fixed(s.source_s, 2) + " s");
    std::string perf = "  window " + std::to_string(s.sequence) + " (" + std::to_string(s.windows) +
                       " received)  " + Fixed(s.fps, 1) + " fps  ";
    if (s.latency_ms < 0)
      perf += "latency n/a";
    else
      perf += "latency " + Fixed(s.latency_ms, 1) + " ms" +
              (s.latency_from_server ? "" : " (round trip)");
    rows.push_back(perf);
  }
  if (s.events.empty()) {
    rows.push_back("  gestures: none yet");
  } else {
    rows.push_back("  gestures (latest last):");
    const size_t first = s.events.size() > kLiveEvents ? s.events.size() - kLiveEvents : 0;
    for (size_t i = first; i < s.events.size(); ++i) {
      const ViewEvent& e = s.events[i];
      rows.push_back("    " + e.label + " " + Fixed(e.start_s, 2) + "-" + Fixed(e.end_s, 2) +
                     " s (" + Fixed(e.confidence, 3) + ")");
    }
  }
  std::string text;
  if (previous_lines > 0) text += "\x1b[" + std::to_string(previous_lines) + "F\x1b[J";
  for (const std::string& r : rows) text += r + "\x1b[K\n";
  if (lines != nullptr) *lines = int(rows.size());
  return text;
}

viz::TimelineSpec TimelineFromEvents(const std::vector<ViewEvent>& events, double t_end,
                                     const std::string& title) {
  viz::TimelineSpec spec;
  spec.title = title;
  spec.x_title = "time (s)";
  spec.lanes = viz::LaneMode::kPerLabel;
  std::map<int, std::string> occurred;  // class index -> label: lanes in index order
  double t_max = t_end;
  for (const ViewEvent& e : events) {
    occurred.emplace(e.label_index, e.label);
    spec.predicted.push_back({e.label, e.start_s, e.end_s, e.confidence});
    t_max = std::max(t_max, e.end_s);
  }
  for (const auto& [index, label] : occurred) spec.label_order.push_back(label);
  spec.t_min = 0.0;
  spec.t_max = t_max > 0 ? t_max : 1.0;
  return spec;
}

}  // namespace billnet::client
