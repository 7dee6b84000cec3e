// Dashboard: the live page of billnet-server (issue 8, docs/monitoring.md)
// and its JSON, served by the one HTTP server on the metrics address:
//   GET /dashboard                    the page (HTML + JS, no other assets)
//   GET /dashboard/data.json[?window=S]  every number the page shows
//   GET /dashboard/stream.json?id=N   one stream's recent windows and events
//
// One source of truth: every number comes from the Metrics registry, the same
// collection /metrics serializes (totals are read fresh on each request). A
// sampler thread keeps a snapshot of the registry every `sample_period`, for
// `history` of time: rates and the latency quantiles of a sliding window are
// differences of two snapshots, and quantiles are interpolated inside the
// histogram's buckets the way Prometheus's histogram_quantile does. Streams
// come from RecentStreams (their ids are never metric labels).
//
// Thread-safety: every method may be called from any thread.
#ifndef BILLNET_SERVER_CORE_DASHBOARD_H_
#define BILLNET_SERVER_CORE_DASHBOARD_H_

#include <array>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/http_server.h"

namespace billnet::server {

class Metrics;
class RecentStreams;

struct DashboardOptions {
  std::chrono::milliseconds sample_period{1000};
  std::chrono::seconds history{300};  // how far back snapshots (and charts) go
  // Rates (windows/s, frames/s) and each chart point's latency quantiles are
  // taken over this trailing interval.
  std::chrono::seconds rate_window{10};
};

// The phases of billnet_window_latency_seconds, in the page's order.
inline constexpr std::array<const char*, 4> kLatencyPhases = {"decode", "queue", "inference",
                                                              "total"};

// A cumulative histogram (buckets by upper bound, +Inf last), summed over models.
struct HistogramCounts {
  std::vector<double> upper_bounds;
  std::vector<double> cumulative;
  double count = 0, sum = 0;
};

// The q-quantile (0..1) of a histogram as Prometheus's histogram_quantile
// computes it: linear inside the bucket the rank falls in (the first bucket
// starts at 0), the highest finite bound when it falls in +Inf. nullopt when
// the histogram is empty.
std::optional<double> HistogramQuantile(double q, const HistogramCounts& h);
// a - b, bucket by bucket (a counter reset, a < b, gives a).
HistogramCounts Difference(const HistogramCounts& a, const HistogramCounts& b);

class Dashboard {
 public:
  // `metrics` and `streams` (may be null) must outlive the dashboard.
  Dashboard(const Metrics* metrics, const RecentStreams* streams, DashboardOptions options = {});
  ~Dashboard();  // stops the sampler
  Dashboard(const Dashboard&) = delete;
  Dashboard& operator=(const Dashboard&) = delete;

  // Takes a first snapshot and starts the sampler thread.
  void Start();
  void Stop();
  // Takes one snapshot now (the sampler calls it; tests may call it by hand).
  void Sample();

  // The three routes on `http`.
  void AddHandlers(HttpServer* http);

  HttpResponse Page() const;
  // Query: `window=S` the latency quantiles' window in seconds (1 .. history;
  // default: history). Anything else is a 400 with a message.
  HttpResponse Data(const HttpRequest& request) const;
  // Query: `id=N` (a number from data.json's streams). 400 for a missing or
  // malformed id, 404 for an unknown one.
  HttpResponse StreamData(const HttpRequest& request) const;

 private:
  struct ModelRow {
    double loads = 0, load_failures = 0, swaps = 0, windows = 0, active = 0, active_streams = 0;
    bool loaded = false;
    std::string checksum;
  };
  struct Snapshot {
    double t = 0;     // seconds on the steady clock
    double wall = 0;  // Unix seconds
    std::map<std::string, double> totals;
    std::map<std::string, HistogramCounts> latency;  // by phase
    std::map<std::string, ModelRow> models;          // by "name/version/stage"
    std::map<std::string, std::string> info;         // kernel_variant, build.*
  };
  struct ChartPoint {
    double wall = 0;
    std::optional<double> windows_per_s, frames_per_s;
    double active_streams = 0;
    std::map<std::string, std::array<std::optional<double>, 3>> latency;  // p50, p95, p99
  };
  struct ModelEvent {
    double wall = 0;
    std::string kind;  // "swap", "load", "load_failed"
    std::string model;
    double count = 0;
  };

  Snapshot Collect() const;
  // The newest snapshot taken at or before `t` (else the oldest); null if none.
  const Snapshot* SnapshotAtLocked(double t) const;
  ChartPoint PointLocked(const Snapshot& now) const;

  const Metrics* metrics_;
  const RecentStreams* streams_;
  const DashboardOptions options_;
  const std::chrono::steady_clock::time_point epoch_;

  mutable std::mutex mu_;
  std::deque<Snapshot> snapshots_;  // oldest first
  std::deque<ChartPoint> points_;
  std::deque<ModelEvent> events_;  // newest last

  std::mutex run_mu_;
  std::condition_variable run_cv_;
  bool stop_ = false;
  std::thread sampler_;
};

}  // namespace billnet::server

#endif  // BILLNET_SERVER_CORE_DASHBOARD_H_
