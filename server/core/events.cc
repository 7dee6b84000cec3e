#include "core/events.h"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace billnet::server {

namespace {

std::string Lower(std::string s) {
  for (char& c : s) c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

Status ValidateEventOptions(const EventOptions& o) {
  const auto in01 = [](float v) { return std::isfinite(v) && v >= 0 && v <= 1; };
  if (!(std::isfinite(o.smoothing) && o.smoothing > 0 && o.smoothing <= 1))
    return InvalidArgument("events.smoothing " + std::to_string(o.smoothing) +
                           " is outside (0, 1]");
  if (!in01(o.enter_threshold))
    return InvalidArgument("events.enter_threshold " + std::to_string(o.enter_threshold) +
                           " is outside [0, 1]");
  if (!in01(o.exit_threshold))
    return InvalidArgument("events.exit_threshold " + std::to_string(o.exit_threshold) +
                           " is outside [0, 1]");
  if (o.exit_threshold > o.enter_threshold)
    return InvalidArgument("events.exit_threshold " + std::to_string(o.exit_threshold) +
                           " is above enter_threshold " + std::to_string(o.enter_threshold));
  if (!(std::isfinite(o.min_duration_s) && o.min_duration_s >= 0 && o.min_duration_s <= 3600))
    return InvalidArgument("events.min_duration_s " + std::to_string(o.min_duration_s) +
                           " is outside [0, 3600]");
  if (o.background_labels.size() > 1000)
    return InvalidArgument("events.background_labels has more than 1000 entries");
  return Status::Ok();
}

std::vector<StepSpan> StepSpans(int steps, int frames, const std::vector<double>& source_ts) {
  std::vector<StepSpan> spans;
  const int real = int(source_ts.size());
  if (steps <= 0 || frames <= 0 || real == 0) return spans;
  const int real_steps = RealSteps(steps, frames, std::min(real, frames));
  for (int t = 0; t < real_steps; ++t) {
    const int first = int(int64_t(t) * frames / steps);
    const int last = std::min(int(int64_t(t + 1) * frames / steps) - 1, real - 1);
    spans.push_back({source_ts[std::min(first, real - 1)], source_ts[std::max(last, 0)]});
  }
  return spans;
}

GestureEventDetector::GestureEventDetector(EventOptions options, std::vector<std::string> labels,
                                           double step_duration_s)
    : options_(std::move(options)), labels_(std::move(labels)), step_duration_s_(step_duration_s) {
  background_.assign(labels_.size(), false);
  for (const std::string& b : options_.background_labels)
    for (size_t i = 0; i < labels_.size(); ++i)
      if (Lower(labels_[i]) == Lower(b)) background_[i] = true;
}

void GestureEventDetector::Reset() {
  has_smoothed_ = false;
  smoothed_.clear();
  active_ = -1;
  active_steps_ = 0;
  active_sum_ = 0;
}

void GestureEventDetector::Close(std::vector<GestureEvent>* out) {
  if (active_ < 0) return;
  const double duration = active_steps_ * step_duration_s_;
  if (duration + 1e-9 >= options_.min_duration_s) {
    open_.confidence = float(active_sum_ / active_steps_);
    out->push_back(open_);
  }
  active_ = -1;
  active_steps_ = 0;
  active_sum_ = 0;
}

void GestureEventDetector::AddWindow(int64_t sequence, const Response& r,
                                     const std::vector<StepSpan>& spans,
                                     std::vector<GestureEvent>* out) {
  if (!options_.enabled) return;
  const int k = r.classes;
  if (k <= 0 || size_t(k) != labels_.size()) return;
  const float a = options_.smoothing;
  const int steps = std::min<int>(int(spans.size()), r.steps);
  for (int t = 0; t < steps; ++t) {
    const float* p = r.probabilities.data() + int64_t(t) * k;
    if (!has_smoothed_) {
      smoothed_.assign(p, p + k);
      has_smoothed_ = true;
    } else {
      for (int j = 0; j < k; ++j) smoothed_[j] = a * p[j] + (1 - a) * smoothed_[j];
    }
    int best = -1;
    for (int j = 0; j < k; ++j)
      if (!background_[j] && (best < 0 || smoothed_[j] > smoothed_[best])) best = j;
    if (active_ >= 0) {
      const float s = smoothed_[active_];
      const bool overtaken = best >= 0 && best != active_ &&
                             smoothed_[best] >= options_.enter_threshold && smoothed_[best] > s;
      if (s < options_.exit_threshold || overtaken) {
        Close(out);
      } else {
        ++active_steps_;
        active_sum_ += s;
        open_.end_s = spans[t].end_s;
        open_.end_sequence = sequence;
      }
    }
    if (active_ < 0 && best >= 0 && smoothed_[best] >= options_.enter_threshold) {
      active_ = best;
      active_steps_ = 1;
      active_sum_ = smoothed_[best];
      open_ = GestureEvent{};
      open_.label = best;
      open_.label_name = labels_[best];
      open_.start_s = spans[t].start_s;
      open_.end_s = spans[t].end_s;
      open_.start_sequence = open_.end_sequence = sequence;
    }
  }
}

void GestureEventDetector::Finish(std::vector<GestureEvent>* out) { Close(out); }

EventDetectorState GestureEventDetector::ExportState() const {
  EventDetectorState st;
  if (has_smoothed_) st.smoothed = smoothed_;
  st.active = active_;
  if (active_ >= 0) {
    st.active_steps = active_steps_;
    st.active_sum = active_sum_;
    st.start_s = open_.start_s;
    st.end_s = open_.end_s;
    st.start_sequence = open_.start_sequence;
    st.end_sequence = open_.end_sequence;
  }
  return st;
}

Status GestureEventDetector::ImportState(const EventDetectorState& st) {
  const int k = int(labels_.size());
  if (!st.smoothed.empty() && int(st.smoothed.size()) != k)
    return InvalidArgument("event state has " + std::to_string(st.smoothed.size()) +
                           " classes, the model " + std::to_string(k));
  for (float v : st.smoothed)
    if (!std::isfinite(v) || v < 0 || v > 1)
      return InvalidArgument("event state holds a probability outside [0, 1]");
  if (st.active >= 0) {
    if (st.active >= k || st.smoothed.empty() || st.active_steps < 1 ||
        !std::isfinite(st.active_sum) || !std::isfinite(st.start_s) ||
        !std::isfinite(st.end_s) || st.start_sequence < 0 ||
        st.end_sequence < st.start_sequence)
      return InvalidArgument("event state holds an open event out of range");
  } else if (st.active != -1) {
    return InvalidArgument("event state holds an open event out of range");
  }
  Reset();
  if (!st.smoothed.empty()) {
    smoothed_ = st.smoothed;
    has_smoothed_ = true;
  }
  if (st.active >= 0) {
    active_ = st.active;
    active_steps_ = st.active_steps;
    active_sum_ = st.active_sum;
    open_ = GestureEvent{};
    open_.label = st.active;
    open_.label_name = labels_[st.active];
    open_.start_s = st.start_s;
    open_.end_s = st.end_s;
    open_.start_sequence = st.start_sequence;
    open_.end_sequence = st.end_sequence;
  }
  return Status::Ok();
}

}  // namespace billnet::server
