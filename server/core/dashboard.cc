#include "core/dashboard.h"

#include <prometheus/registry.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/metrics.h"
#include "core/recent_streams.h"

namespace billnet::server {

// The page (server/web/dashboard.html), compiled in by CMake.
extern const char kDashboardHtml[];

namespace {

using Json = nlohmann::json;

constexpr double kQuantiles[3] = {0.5, 0.95, 0.99};
constexpr size_t kMaxModelEvents = 20;

double UnixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

HttpResponse JsonResponse(const Json& j) {
  return {200, "application/json; charset=utf-8", j.dump()};
}

HttpResponse Error(int status, const std::string& message) {
  return {status, "text/plain; charset=utf-8", message + "\n"};
}

Json Optional(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

bool PercentDecode(const std::string& s, std::string* out) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      *out += ' ';
    } else if (s[i] != '%') {
      *out += s[i];
    } else if (i + 2 < s.size() && HexDigit(s[i + 1]) >= 0 && HexDigit(s[i + 2]) >= 0) {
      *out += char(HexDigit(s[i + 1]) * 16 + HexDigit(s[i + 2]));
      i += 2;
    } else {
      return false;
    }
  }
  return true;
}

// "a=1&b=x%20y" -> {a: "1", b: "x y"}; an error message for a malformed
// escape, a repeated key or a key outside `known`.
std::optional<std::string> ParseQuery(const std::string& query,
                                      const std::vector<std::string>& known,
                                      std::map<std::string, std::string>* out) {
  size_t start = 0;
  while (start < query.size()) {
    size_t end = query.find('&', start);
    if (end == std::string::npos) end = query.size();
    const std::string part = query.substr(start, end - start);
    start = end + 1;
    if (part.empty()) continue;
    const size_t eq = part.find('=');
    std::string key, value;
    if (!PercentDecode(part.substr(0, eq), &key) ||
        (eq != std::string::npos && !PercentDecode(part.substr(eq + 1), &value)))
      return "malformed percent-escape in the query '" + query + "'";
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string list;
      for (const std::string& k : known) list += (list.empty() ? "" : ", ") + k;
      return "unknown query parameter '" + key + "' (known: " + list + ")";
    }
    if (out->count(key)) return "query parameter '" + key + "' given twice";
    (*out)[key] = value;
  }
  return std::nullopt;
}

// A whole positive number within [lo, hi], else nullopt.
std::optional<int64_t> ParseInteger(const std::string& s, int64_t lo, int64_t hi) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  int64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    v = v * 10 + (c - '0');
  }
  if (v < lo || v > hi) return std::nullopt;
  return v;
}

std::string Label(const prometheus::ClientMetric& m, const char* name) {
  for (const auto& l : m.label)
    if (l.name == name) return l.value;
  return "";
}

std::string ModelOf(const prometheus::ClientMetric& m) {
  return Label(m, "model") + "/" + Label(m, "version") + "/" + Label(m, "stage");
}

double Delta(const std::map<std::string, double>& now, const std::map<std::string, double>& then,
             const std::string& key) {
  auto a = now.find(key);
  auto b = then.find(key);
  const double x = a == now.end() ? 0 : a->second;
  const double y = b == then.end() ? 0 : b->second;
  return x >= y ? x - y : x;  // a counter reset: count from 0
}

}  // namespace

std::optional<double> HistogramQuantile(double q, const HistogramCounts& h) {
  const size_t n = h.cumulative.size();
  if (n < 2 || h.upper_bounds.size() != n || !(h.cumulative.back() > 0)) return std::nullopt;
  if (q < 0) return -std::numeric_limits<double>::infinity();
  if (q > 1) return std::numeric_limits<double>::infinity();
  const double rank = q * h.cumulative.back();
  size_t b = 0;
  while (b < n - 1 && h.cumulative[b] < rank) ++b;
  if (b == n - 1) return h.upper_bounds[n - 2];  // in +Inf: the highest finite bound
  const double lower = b == 0 ? 0 : h.upper_bounds[b - 1];
  const double below = b == 0 ? 0 : h.cumulative[b - 1];
  const double in_bucket = h.cumulative[b] - below;
  if (in_bucket <= 0) return h.upper_bounds[b];
  // Clamped: rounding must not carry it past its bucket.
  return std::min(h.upper_bounds[b],
                  lower + (h.upper_bounds[b] - lower) * (rank - below) / in_bucket);
}

HistogramCounts Difference(const HistogramCounts& a, const HistogramCounts& b) {
  if (b.cumulative.size() != a.cumulative.size() || b.count > a.count) return a;
  HistogramCounts d = a;
  for (size_t i = 0; i < d.cumulative.size(); ++i) d.cumulative[i] -= b.cumulative[i];
  d.count -= b.count;
  d.sum -= b.sum;
  return d;
}

Dashboard::Dashboard(const Metrics* metrics, const RecentStreams* streams, DashboardOptions options)
    : metrics_(metrics),
      streams_(streams),
      options_(options),
      epoch_(std::chrono::steady_clock::now()) {}

Dashboard::~Dashboard() { Stop(); }

void Dashboard::Start() {
  if (sampler_.joinable()) return;
  Sample();
  stop_ = false;
  sampler_ = std::thread([this] {
    std::unique_lock<std::mutex> lock(run_mu_);
    while (!run_cv_.wait_for(lock, options_.sample_period, [this] { return stop_; })) {
      lock.unlock();
      Sample();
      lock.lock();
    }
  });
}

void Dashboard::Stop() {
  {
    std::lock_guard<std::mutex> lock(run_mu_);
    stop_ = true;
  }
  run_cv_.notify_all();
  if (sampler_.joinable()) sampler_.join();
}

Dashboard::Snapshot Dashboard::Collect() const {
  Snapshot s;
  s.t = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_).count();
  s.wall = UnixNow();
  for (const auto& family : metrics_->registry()->Collect()) {
    const std::string& name = family.name;
    for (const auto& m : family.metric) {
      if (name == "billnet_window_latency_seconds") {
        HistogramCounts& h = s.latency[Label(m, "phase")];
        if (h.upper_bounds.empty()) {
          for (const auto& b : m.histogram.bucket) h.upper_bounds.push_back(b.upper_bound);
          h.cumulative.assign(h.upper_bounds.size(), 0);
        }
        if (m.histogram.bucket.size() != h.upper_bounds.size()) continue;
        for (size_t i = 0; i < h.cumulative.size(); ++i)
          h.cumulative[i] += double(m.histogram.bucket[i].cumulative_count);
        h.count += double(m.histogram.sample_count);
        h.sum += m.histogram.sample_sum;
      } else if (name == "billnet_refused_streams_total") {
        s.totals["refused." + Label(m, "reason")] += m.counter.value;
      } else if (name == "billnet_calls_total") {
        s.totals["calls." + Label(m, "call") + "." + Label(m, "code")] += m.counter.value;
      } else if (name == "billnet_active_streams") {
        s.totals["active_streams"] += m.gauge.value;
        s.models[ModelOf(m)].active_streams = m.gauge.value;
      } else if (name == "billnet_windows_total") {
        s.totals["windows"] += m.counter.value;
        s.models[ModelOf(m)].windows = m.counter.value;
      } else if (name == "billnet_frames_total") {
        s.totals["frames"] += m.counter.value;
      } else if (name == "billnet_dropped_windows_total") {
        s.totals["dropped_windows"] += m.counter.value;
      } else if (name == "billnet_decode_errors_total") {
        s.totals["decode_errors"] += m.counter.value;
      } else if (name == "billnet_engine_failures_total") {
        s.totals["engine_failures"] += m.counter.value;
      } else if (name == "billnet_model_loads_total") {
        s.totals["model_loads"] += m.counter.value;
        s.models[ModelOf(m)].loads = m.counter.value;
      } else if (name == "billnet_model_load_failures_total") {
        s.totals["model_load_failures"] += m.counter.value;
        s.models[ModelOf(m)].load_failures = m.counter.value;
      } else if (name == "billnet_model_swaps_total") {
        s.totals["model_swaps"] += m.counter.value;
        s.models[ModelOf(m)].swaps = m.counter.value;
      } else if (name == "billnet_model_active") {
        s.models[ModelOf(m)].active = m.gauge.value;
      } else if (name == "billnet_model_info") {
        ModelRow& row = s.models[ModelOf(m)];
        row.loaded = m.gauge.value > 0;
        row.checksum = Label(m, "checksum");
      } else if (name == "billnet_kernel_variant_info") {
        if (m.gauge.value > 0) s.info["kernel_variant"] = Label(m, "variant");
      } else if (name == "billnet_build_info") {
        for (const auto& l : m.label) s.info["build." + l.name] = l.value;
      } else if (name == "billnet_process_start_time_seconds") {
        s.totals["process_start_time_seconds"] = m.gauge.value;
      }
    }
  }
  return s;
}

const Dashboard::Snapshot* Dashboard::SnapshotAtLocked(double t) const {
  if (snapshots_.empty()) return nullptr;
  const Snapshot* best = &snapshots_.front();
  for (const Snapshot& s : snapshots_) {
    if (s.t > t) break;
    best = &s;
  }
  return best;
}

Dashboard::ChartPoint Dashboard::PointLocked(const Snapshot& now) const {
  ChartPoint p;
  p.wall = now.wall;
  p.active_streams = now.totals.count("active_streams") ? now.totals.at("active_streams") : 0;
  const Snapshot* base = SnapshotAtLocked(now.t - double(options_.rate_window.count()));
  if (!base || base->t >= now.t) return p;
  const double dt = now.t - base->t;
  p.windows_per_s = Delta(now.totals, base->totals, "windows") / dt;
  p.frames_per_s = Delta(now.totals, base->totals, "frames") / dt;
  for (const auto& [phase, h] : now.latency) {
    auto it = base->latency.find(phase);
    const HistogramCounts d = it == base->latency.end() ? h : Difference(h, it->second);
    for (int i = 0; i < 3; ++i) p.latency[phase][i] = HistogramQuantile(kQuantiles[i], d);
  }
  return p;
}

void Dashboard::Sample() {
  Snapshot s = Collect();
  std::lock_guard<std::mutex> lock(mu_);
  if (!snapshots_.empty()) {
    const Snapshot& prev = snapshots_.back();
    for (const auto& [model, row] : s.models) {
      auto it = prev.models.find(model);
      const ModelRow old = it == prev.models.end() ? ModelRow{} : it->second;
      const auto add = [&](const char* kind, double now, double then) {
        if (now > then) events_.push_back({s.wall, kind, model, now - then});
      };
      add("load", row.loads, old.loads);
      add("load_failed", row.load_failures, old.load_failures);
      add("swap", row.swaps, old.swaps);
    }
    while (events_.size() > kMaxModelEvents) events_.pop_front();
  }
  points_.push_back(PointLocked(s));
  snapshots_.push_back(std::move(s));
  const double keep = double(options_.history.count()) + double(options_.rate_window.count());
  while (snapshots_.size() > 2 && snapshots_.back().t - snapshots_[1].t > keep)
    snapshots_.pop_front();
  const double history = double(options_.history.count());
  while (!points_.empty() && points_.back().wall - points_.front().wall > history)
    points_.pop_front();
}

void Dashboard::AddHandlers(HttpServer* http) {
  http->AddHandler("/dashboard", [this](const HttpRequest&) { return Page(); });
  http->AddHandler("/dashboard/", [this](const HttpRequest&) { return Page(); });
  http->AddHandler("/dashboard/data.json", [this](const HttpRequest& r) { return Data(r); });
  http->AddHandler("/dashboard/stream.json",
                   [this](const HttpRequest& r) { return StreamData(r); });
}

HttpResponse Dashboard::Page() const { return {200, "text/html; charset=utf-8", kDashboardHtml}; }

HttpResponse Dashboard::Data(const HttpRequest& request) const {
  std::map<std::string, std::string> query;
  if (auto error = ParseQuery(request.query, {"window"}, &query)) return Error(400, *error);
  const int64_t history = options_.history.count();
  int64_t window = history;
  if (query.count("window")) {
    auto w = ParseInteger(query["window"], 1, history);
    if (!w)
      return Error(400, "window: expected whole seconds from 1 to " + std::to_string(history) +
                            ", got '" + query["window"] + "'");
    window = *w;
  }

  // Totals are read now, from the same registry /metrics serializes.
  const Snapshot now = Collect();
  Json j;
  j["time"] = now.wall;
  j["sample_period_s"] = std::chrono::duration<double>(options_.sample_period).count();
  j["history_s"] = history;
  j["rate_window_s"] = options_.rate_window.count();
  j["window_s"] = window;
  const auto info = [&](const std::string& key) {
    auto it = now.info.find(key);
    return it == now.info.end() ? std::string() : it->second;
  };
  j["kernel_variant"] = info("kernel_variant");
  j["build"] = {{"version", info("build.version")},
                {"revision", info("build.revision")},
                {"compiler", info("build.compiler")}};
  const auto total = [&](const std::string& key) {
    auto it = now.totals.find(key);
    return it == now.totals.end() ? 0.0 : it->second;
  };
  j["start_time"] = total("process_start_time_seconds");
  Json totals = Json::object();
  for (const char* key : {"windows", "frames", "active_streams", "dropped_windows", "decode_errors",
                          "engine_failures", "model_loads", "model_load_failures", "model_swaps"})
    totals[key] = total(key);
  Json refused = Json::object();
  Json calls = Json::object();
  for (const auto& [key, value] : now.totals) {
    if (key.rfind("refused.", 0) == 0) refused[key.substr(8)] = value;
    if (key.rfind("calls.", 0) == 0) {
      const size_t dot = key.find('.', 6);
      calls[key.substr(6, dot - 6)][key.substr(dot + 1)] = value;
    }
  }
  totals["refused"] = refused;
  totals["calls"] = calls;
  j["totals"] = totals;

  std::lock_guard<std::mutex> lock(mu_);
  // Rates over the trailing rate window; quantiles over `window`.
  Json rates = {{"windows_per_s", nullptr}, {"frames_per_s", nullptr}};
  if (const Snapshot* base = SnapshotAtLocked(now.t - double(options_.rate_window.count()));
      base && now.t > base->t) {
    rates["windows_per_s"] = Delta(now.totals, base->totals, "windows") / (now.t - base->t);
    rates["frames_per_s"] = Delta(now.totals, base->totals, "frames") / (now.t - base->t);
  }
  j["rates"] = rates;
  const Snapshot* base = SnapshotAtLocked(now.t - double(window));
  Json latency = Json::object();
  for (const char* phase : kLatencyPhases) {
    auto it = now.latency.find(phase);
    if (it == now.latency.end()) continue;
    HistogramCounts d = it->second;
    if (base && base->latency.count(phase)) d = Difference(d, base->latency.at(phase));
    Json p = {{"count", d.count}, {"sum", d.sum}};
    p["p50"] = Optional(HistogramQuantile(0.5, d));
    p["p95"] = Optional(HistogramQuantile(0.95, d));
    p["p99"] = Optional(HistogramQuantile(0.99, d));
    p["since"] = base ? base->wall : now.wall;
    latency[phase] = p;
  }
  j["latency"] = latency;
  j["latency_buckets"] = Metrics::LatencyBuckets();

  Json history_json = {{"time", Json::array()},
                       {"windows_per_s", Json::array()},
                       {"frames_per_s", Json::array()},
                       {"active_streams", Json::array()}};
  Json lat = Json::object();
  for (const char* phase : kLatencyPhases)
    lat[phase] = {{"p50", Json::array()}, {"p95", Json::array()}, {"p99", Json::array()}};
  for (const ChartPoint& p : points_) {
    history_json["time"].push_back(p.wall);
    history_json["windows_per_s"].push_back(Optional(p.windows_per_s));
    history_json["frames_per_s"].push_back(Optional(p.frames_per_s));
    history_json["active_streams"].push_back(p.active_streams);
    for (const char* phase : kLatencyPhases) {
      auto it = p.latency.find(phase);
      for (int i = 0; i < 3; ++i) {
        const char* q = i == 0 ? "p50" : i == 1 ? "p95" : "p99";
        lat[phase][q].push_back(it == p.latency.end() ? Json(nullptr) : Optional(it->second[i]));
      }
    }
  }
  history_json["latency"] = lat;
  j["history"] = history_json;

  Json models = Json::array();
  Json active = Json::array();
  for (const auto& [key, row] : now.models) {
    const size_t a = key.find('/'), b = key.rfind('/');
    Json m = {{"model", key.substr(0, a)},
              {"version", key.substr(a + 1, b - a - 1)},
              {"stage", key.substr(b + 1)},
              {"active", row.active > 0},
              {"loaded", row.loaded},
              {"checksum", row.checksum},
              {"loads", row.loads},
              {"load_failures", row.load_failures},
              {"swaps", row.swaps},
              {"windows", row.windows},
              {"active_streams", row.active_streams}};
    if (row.active > 0) active.push_back(m);
    models.push_back(std::move(m));
  }
  j["models"] = models;
  j["active_models"] = active;
  Json events = Json::array();
  for (auto it = events_.rbegin(); it != events_.rend(); ++it)
    events.push_back(
        {{"time", it->wall}, {"kind", it->kind}, {"model", it->model}, {"count", it->count}});
  j["model_events"] = events;

  Json streams = Json::array();
  if (streams_) {
    for (const RecentStream& s : streams_->List())
      streams.push_back({{"id", s.id},
                         {"stream_id", s.stream_id},
                         {"mode", s.mode},
                         {"model", s.model},
                         {"windows", s.windows},
                         {"started", s.started},
                         {"ended", s.ended > 0 ? Json(s.ended) : Json(nullptr)},
                         {"status", s.status}});
  }
  j["streams"] = streams;
  return JsonResponse(j);
}

HttpResponse Dashboard::StreamData(const HttpRequest& request) const {
  std::map<std::string, std::string> query;
  if (auto error = ParseQuery(request.query, {"id"}, &query)) return Error(400, *error);
  if (!query.count("id")) return Error(400, "missing query parameter 'id' (a stream number)");
  const auto id = ParseInteger(query["id"], 1, std::numeric_limits<int64_t>::max() / 10);
  if (!id) return Error(400, "id: expected a stream number, got '" + query["id"] + "'");
  std::optional<RecentStream> s = streams_ ? streams_->Get(uint64_t(*id)) : std::nullopt;
  if (!s)
    return Error(404,
                 "no stream " + query["id"] + ": it never existed, or it ended and was forgotten");
  Json j = {{"id", s->id},
            {"stream_id", s->stream_id},
            {"mode", s->mode},
            {"model", s->model},
            {"labels", s->labels},
            {"started", s->started},
            {"ended", s->ended > 0 ? Json(s->ended) : Json(nullptr)},
            {"status", s->status},
            {"windows", s->windows}};
  Json windows = Json::array();
  for (const RecentWindow& w : s->recent)
    windows.push_back({{"sequence", w.sequence},
                       {"first_source_ts", w.first_source_ts},
                       {"last_source_ts", w.last_source_ts},
                       {"steps", w.steps},
                       {"classes", w.classes},
                       {"probabilities", w.probabilities},
                       {"top_class", w.top_class},
                       {"padded", w.padded},
                       {"state_reset", w.state_reset},
                       {"model", w.model},
                       {"queue_s", w.queue_s},
                       {"inference_s", w.inference_s}});
  j["recent"] = windows;
  Json events = Json::array();
  for (const GestureEvent& e : s->events)
    events.push_back({{"label", e.label},
                      {"label_name", e.label_name},
                      {"start_s", e.start_s},
                      {"end_s", e.end_s},
                      {"confidence", e.confidence},
                      {"start_sequence", e.start_sequence},
                      {"end_sequence", e.end_sequence}});
  j["events"] = events;
  return JsonResponse(j);
}

}  // namespace billnet::server
