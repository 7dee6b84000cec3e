#include "core/recent_streams.h"

#include <chrono>

#include "core/stream.h"

namespace billnet::server {

namespace {

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

}  // namespace

RecentStreams::RecentStreams(RecentStreamsOptions options) : options_(options) {}

uint64_t RecentStreams::Open(const std::string& stream_id, const std::string& mode,
                             const std::string& model, const std::vector<std::string>& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  const uint64_t id = next_id_++;
  RecentStream& s = running_[id];
  s.id = id;
  s.stream_id = stream_id;
  s.mode = mode;
  s.model = model;
  s.labels = labels;
  s.started = UnixNow();
  return id;
}

void RecentStreams::AddWindow(uint64_t id, const WindowOutput& w) {
  RecentWindow r;
  r.sequence = w.sequence;
  r.first_source_ts = w.first_source_ts;
  r.last_source_ts = w.last_source_ts;
  r.steps = w.response.steps;
  r.classes = w.response.classes;
  r.probabilities = w.response.probabilities;
  r.top_class = w.response.top_class;
  r.padded = w.padded;
  r.state_reset = w.state_reset;
  if (w.model) r.model = w.model->key.ToString();
  r.queue_s = w.timings.queue_s;
  r.inference_s = w.timings.inference_s;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = running_.find(id);
  if (it == running_.end()) return;
  RecentStream& s = it->second;
  ++s.windows;
  if (!r.model.empty()) s.model = r.model;
  if (w.model && w.model->model) s.labels = w.model->model->info().labels;
  s.recent.push_back(std::move(r));
  while (s.recent.size() > options_.windows_per_stream) s.recent.pop_front();
  AddEventsLocked(&s, w.events);
}

void RecentStreams::End(uint64_t id, const ServeStatus& status,
                        const std::vector<GestureEvent>& final_events) {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = running_.find(id);
  if (it == running_.end()) return;
  RecentStream s = std::move(it->second);
  running_.erase(it);
  s.ended = UnixNow();
  s.status = CodeName(status.code);
  AddEventsLocked(&s, final_events);
  ended_.push_front(std::move(s));
  while (ended_.size() > options_.ended_kept) ended_.pop_back();
}

void RecentStreams::AddEventsLocked(RecentStream* s, const std::vector<GestureEvent>& events) {
  for (const GestureEvent& e : events) s->events.push_back(e);
  while (s->events.size() > options_.events_per_stream) s->events.pop_front();
}

std::vector<RecentStream> RecentStreams::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<RecentStream> out;
  out.reserve(running_.size() + ended_.size());
  const auto brief = [](const RecentStream& s) {
    RecentStream b;
    b.id = s.id;
    b.stream_id = s.stream_id;
    b.mode = s.mode;
    b.model = s.model;
    b.started = s.started;
    b.ended = s.ended;
    b.status = s.status;
    b.windows = s.windows;
    return b;
  };
  for (const auto& [id, s] : running_) out.push_back(brief(s));
  for (const RecentStream& s : ended_) out.push_back(brief(s));
  return out;
}

std::optional<RecentStream> RecentStreams::Get(uint64_t id) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = running_.find(id);
  if (it != running_.end()) return it->second;
  for (const RecentStream& s : ended_)
    if (s.id == id) return s;
  return std::nullopt;
}

}  // namespace billnet::server
