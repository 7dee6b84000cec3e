// The built-in dashboard's JSON (server/core/dashboard.h): its numbers equal
// what /metrics says at the same moment, its quantiles fall in the bucket the
// histogram puts them in, the quantiles' window forgets older observations, a
// stream's heat map data equals the responses that stream got, and bad
// queries get clear errors. A tiny random model and an in-process server on
// loopback (tests/server's harness).
#include "core/dashboard.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/metrics.h"
#include "grpc_test_util.h"

namespace billnet::server {
namespace {

using Json = nlohmann::json;
using testing::EncodeClip;
using testing::GrpcHarness;
using testing::HttpGet;
using testing::StreamBytes;

std::string Repo(const std::string& name) {
  const std::string repo = testing::TempDir(name);
  testing::WriteTinyVersion(repo, "tiny", 1, 1);
  return repo;
}

v1::StreamConfig FileConfig(const std::string& id) {
  v1::StreamConfig c;
  c.set_stream_id(id);
  c.set_mode(v1::STREAM_MODE_FILE);
  return c;
}

// One sample of the text exposition format.
struct Sample {
  std::string name;
  std::map<std::string, std::string> labels;
  double value = 0;
};

std::vector<Sample> ParseExposition(const std::string& text) {
  std::vector<Sample> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    const size_t brace = line.find('{');
    const size_t space = line.rfind(' ');
    s.name = line.substr(0, std::min(brace, space));
    if (brace != std::string::npos) {
      const std::string labels = line.substr(brace + 1, line.rfind('}') - brace - 1);
      size_t pos = 0;
      while (pos < labels.size()) {
        const size_t eq = labels.find('=', pos);
        const size_t end = labels.find('"', eq + 2);
        s.labels[labels.substr(pos, eq - pos)] = labels.substr(eq + 2, end - eq - 2);
        pos = end + 2;  // past '",'
      }
    }
    s.value = std::stod(line.substr(space + 1));
    out.push_back(std::move(s));
  }
  return out;
}

// The sum of a family's samples whose labels include `match`.
double Sum(const std::vector<Sample>& samples, const std::string& name,
           const std::map<std::string, std::string>& match = {}) {
  double sum = 0;
  for (const Sample& s : samples) {
    if (s.name != name) continue;
    bool ok = true;
    for (const auto& [k, v] : match) ok = ok && s.labels.count(k) && s.labels.at(k) == v;
    if (ok) sum += s.value;
  }
  return sum;
}

// A phase's cumulative histogram from /metrics, summed over models.
HistogramCounts PhaseHistogram(const std::vector<Sample>& samples, const std::string& phase) {
  std::map<double, double> by_le;
  for (const Sample& s : samples)
    if (s.name == "billnet_window_latency_seconds_bucket" && s.labels.at("phase") == phase)
      by_le[s.labels.at("le") == "+Inf" ? INFINITY : std::stod(s.labels.at("le"))] += s.value;
  HistogramCounts h;
  for (const auto& [le, count] : by_le) {
    h.upper_bounds.push_back(le);
    h.cumulative.push_back(count);
  }
  h.count = Sum(samples, "billnet_window_latency_seconds_count", {{"phase", phase}});
  h.sum = Sum(samples, "billnet_window_latency_seconds_sum", {{"phase", phase}});
  return h;
}

// The bucket [lower, upper] that holds the q-quantile's rank.
std::pair<double, double> QuantileBucket(double q, const HistogramCounts& h) {
  const double rank = q * h.cumulative.back();
  size_t b = 0;
  while (b + 1 < h.cumulative.size() && h.cumulative[b] < rank) ++b;
  if (b + 1 == h.cumulative.size()) return {h.upper_bounds[b - 1], h.upper_bounds[b - 1]};
  return {b == 0 ? 0.0 : h.upper_bounds[b - 1], h.upper_bounds[b]};
}

Json GetJson(int port, const std::string& path) {
  std::string body;
  const int status = HttpGet(port, path, &body);
  EXPECT_EQ(status, 200) << path << ": " << body;
  return Json::parse(body);
}

TEST(HistogramQuantileTest, InterpolatesInsideBucketsLikePrometheus) {
  HistogramCounts h;
  h.upper_bounds = {0.1, 0.2, 0.5, INFINITY};
  h.cumulative = {10, 20, 20, 20};
  EXPECT_DOUBLE_EQ(*HistogramQuantile(0.5, h), 0.1);    // rank 10: the top of the first bucket
  EXPECT_DOUBLE_EQ(*HistogramQuantile(0.75, h), 0.15);  // rank 15: half-way in (0.1, 0.2]
  EXPECT_DOUBLE_EQ(*HistogramQuantile(0.25, h), 0.05);  // the first bucket starts at 0
  h.cumulative = {10, 10, 10, 20};                      // half the observations above 0.5
  EXPECT_DOUBLE_EQ(*HistogramQuantile(0.99, h), 0.5);   // in +Inf: the highest finite bound
  h.cumulative = {0, 0, 0, 0};
  EXPECT_FALSE(HistogramQuantile(0.5, h).has_value());
  // A difference of two snapshots.
  HistogramCounts a = h, b = h;
  a.cumulative = {5, 8, 9, 10};
  a.count = 10;
  b.cumulative = {5, 5, 5, 5};
  b.count = 5;
  const HistogramCounts d = Difference(a, b);
  EXPECT_EQ(d.cumulative, (std::vector<double>{0, 3, 4, 5}));
  EXPECT_EQ(d.count, 5);
}

TEST(DashboardTest, DataEqualsMetricsAndQuantilesFallInTheirBucket) {
  GrpcHarness h(Repo("dash_data"), {}, {}, nullptr, /*with_http=*/true);
  Dashboard dashboard(&h.core.metrics, &h.core.core->recent_streams());
  dashboard.AddHandlers(&h.http);
  dashboard.Start();
  const auto clip = EncodeClip(media::VideoCodec::kMjpeg, "matroska", 40);
  for (int i = 0; i < 3; ++i)
    ASSERT_TRUE(
        StreamBytes(h.stub.get(), FileConfig("cam-" + std::to_string(i)), clip).status.ok());
  EXPECT_FALSE(
      StreamBytes(h.stub.get(), FileConfig("junk"), std::vector<uint8_t>(5000, 3)).status.ok());
  v1::StreamConfig unknown = FileConfig("nobody");
  unknown.mutable_model()->set_name("no-such-model");
  EXPECT_EQ(StreamBytes(h.stub.get(), unknown, clip).status.error_code(), grpc::NOT_FOUND);

  // Nothing runs any more: both reads see the same values.
  std::string text;
  ASSERT_EQ(HttpGet(h.http.port(), "/metrics", &text), 200);
  const std::vector<Sample> m = ParseExposition(text);
  const Json d = GetJson(h.http.port(), "/dashboard/data.json");
  const Json& t = d["totals"];
  EXPECT_EQ(t["windows"].get<double>(), Sum(m, "billnet_windows_total"));
  EXPECT_EQ(t["windows"].get<double>(), 9);
  EXPECT_EQ(t["frames"].get<double>(), Sum(m, "billnet_frames_total"));
  EXPECT_EQ(t["active_streams"].get<double>(), Sum(m, "billnet_active_streams"));
  EXPECT_EQ(t["dropped_windows"].get<double>(), Sum(m, "billnet_dropped_windows_total"));
  EXPECT_EQ(t["decode_errors"].get<double>(), Sum(m, "billnet_decode_errors_total"));
  EXPECT_EQ(t["decode_errors"].get<double>(), 1);
  EXPECT_EQ(t["engine_failures"].get<double>(), Sum(m, "billnet_engine_failures_total"));
  for (const char* reason : {"limit", "draining", "unknown_model", "bad_request"})
    EXPECT_EQ(t["refused"][reason].get<double>(),
              Sum(m, "billnet_refused_streams_total", {{"reason", reason}}))
        << reason;
  EXPECT_EQ(t["refused"]["unknown_model"].get<double>(), 1);
  for (const auto& [call, codes] : t["calls"].items())
    for (const auto& [code, value] : codes.items())
      EXPECT_EQ(value.get<double>(),
                Sum(m, "billnet_calls_total", {{"call", call}, {"code", code}}))
          << call << " " << code;
  EXPECT_EQ(t["calls"]["stream"]["OK"].get<double>(), 3);
  EXPECT_EQ(t["calls"]["stream"]["NOT_FOUND"].get<double>(), 1);
  EXPECT_EQ(d["kernel_variant"], KernelVariant());
  EXPECT_EQ(d["start_time"].get<double>(), Sum(m, "billnet_process_start_time_seconds"));
  EXPECT_EQ(d["build"]["version"], GetBuildInfo().version);

  // Models: the same counters per model, and the active one.
  ASSERT_EQ(d["active_models"].size(), 1u);
  EXPECT_EQ(d["active_models"][0]["model"], "tiny");
  EXPECT_EQ(d["active_models"][0]["version"], "1");
  EXPECT_EQ(d["active_models"][0]["stage"], "s5");
  for (const Json& row : d["models"]) {
    const std::map<std::string, std::string> l = {
        {"model", row["model"]}, {"version", row["version"]}, {"stage", row["stage"]}};
    EXPECT_EQ(row["loads"].get<double>(), Sum(m, "billnet_model_loads_total", l));
    EXPECT_EQ(row["load_failures"].get<double>(), Sum(m, "billnet_model_load_failures_total", l));
    EXPECT_EQ(row["swaps"].get<double>(), Sum(m, "billnet_model_swaps_total", l));
    EXPECT_EQ(row["windows"].get<double>(), Sum(m, "billnet_windows_total", l));
    EXPECT_EQ(row["active"].get<bool>(), Sum(m, "billnet_model_active", l) == 1);
  }

  // Latency: everything happened since the dashboard started, so the window
  // holds every observation; each quantile lies in the bucket /metrics puts it in.
  for (const char* phase : kLatencyPhases) {
    const HistogramCounts hist = PhaseHistogram(m, phase);
    const Json& l = d["latency"][phase];
    ASSERT_EQ(l["count"].get<double>(), hist.count) << phase;
    ASSERT_GT(hist.count, 0) << phase;
    EXPECT_NEAR(l["sum"].get<double>(), hist.sum, 1e-9 * std::max(1.0, hist.sum)) << phase;
    for (const auto& [key, q] : {std::pair{"p50", 0.5}, {"p95", 0.95}, {"p99", 0.99}}) {
      const auto [lower, upper] = QuantileBucket(q, hist);
      const double got = l[key].get<double>();
      EXPECT_GE(got, lower) << phase << " " << key;
      EXPECT_LE(got, upper) << phase << " " << key;
      EXPECT_DOUBLE_EQ(got, *HistogramQuantile(q, hist)) << phase << " " << key;
    }
  }
  EXPECT_EQ(d["latency_buckets"].get<std::vector<double>>(), Metrics::LatencyBuckets());

  // Streams: the four that started, by the server's number; no metric label has an id.
  std::map<std::string, Json> streams;
  for (const Json& s : d["streams"]) streams[s["stream_id"]] = s;
  ASSERT_EQ(streams.size(), 4u) << d["streams"].dump();
  EXPECT_EQ(streams["cam-0"]["status"], "OK");
  EXPECT_EQ(streams["cam-0"]["windows"], 3);
  EXPECT_EQ(streams["cam-0"]["mode"], "file");
  EXPECT_EQ(streams["junk"]["status"], "INVALID_ARGUMENT");
  EXPECT_EQ(text.find("cam-0"), std::string::npos);

  // The history has points, one per sample.
  dashboard.Sample();
  const Json again = GetJson(h.http.port(), "/dashboard/data.json");
  const Json& history = again["history"];
  ASSERT_GE(history["time"].size(), 2u);
  EXPECT_EQ(history["windows_per_s"].size(), history["time"].size());
  EXPECT_EQ(history["latency"]["total"]["p99"].size(), history["time"].size());
  EXPECT_EQ(history["active_streams"].back().get<double>(), 0);
}

TEST(DashboardTest, StreamJsonEqualsTheResponsesTheStreamGot) {
  GrpcHarness h(Repo("dash_stream"), {}, {}, nullptr, /*with_http=*/true);
  Dashboard dashboard(&h.core.metrics, &h.core.core->recent_streams());
  dashboard.AddHandlers(&h.http);
  // 70 frames at 12 fps -> 35 model frames: the tiny model's 8-frame windows
  // 0..4 (the last padded), all kept (RecentStreams keeps 16).
  const auto clip = EncodeClip(media::VideoCodec::kMjpeg, "matroska", 70);
  v1::StreamConfig config = FileConfig("heat");
  config.mutable_events()->set_enter_threshold(0.05f);  // a random model: make events happen
  config.mutable_events()->set_exit_threshold(0.01f);
  config.mutable_events()->set_min_duration_s(0);
  const testing::ClientStream got = StreamBytes(h.stub.get(), config, clip);
  ASSERT_TRUE(got.status.ok()) << got.status.error_message();
  const auto windows = got.windows();
  ASSERT_EQ(windows.size(), 5u);

  const Json d = GetJson(h.http.port(), "/dashboard/data.json");
  ASSERT_EQ(d["streams"].size(), 1u);
  const uint64_t id = d["streams"][0]["id"];
  const Json s = GetJson(h.http.port(), "/dashboard/stream.json?id=" + std::to_string(id));
  EXPECT_EQ(s["stream_id"], "heat");
  EXPECT_EQ(s["status"], "OK");
  EXPECT_EQ(s["model"], "tiny/1/s5");
  EXPECT_EQ(s["windows"], 5);
  ASSERT_EQ(s["recent"].size(), windows.size());
  for (size_t i = 0; i < windows.size(); ++i) {
    const Json& w = s["recent"][i];
    const v1::WindowResult& want = windows[i];
    EXPECT_EQ(w["sequence"].get<int64_t>(), want.sequence());
    EXPECT_EQ(w["steps"].get<int>(), want.steps());
    EXPECT_EQ(w["classes"].get<int>(), want.classes());
    EXPECT_EQ(w["padded"].get<bool>(), want.padded());
    const auto p = w["probabilities"].get<std::vector<double>>();
    ASSERT_EQ(p.size(), size_t(want.probabilities_size()));
    for (size_t k = 0; k < p.size(); ++k)
      ASSERT_EQ(float(p[k]), want.probabilities(int(k))) << "window " << i << " value " << k;
    const auto top = w["top_class"].get<std::vector<int>>();
    ASSERT_EQ(top.size(), size_t(want.top_class_size()));
    for (size_t k = 0; k < top.size(); ++k) EXPECT_EQ(top[k], want.top_class(int(k)));
  }
  ASSERT_EQ(s["labels"].size(), size_t(windows[0].classes()));
  // Events: those of the windows and the summary, in order.
  const auto events = got.events();
  ASSERT_FALSE(events.empty());
  ASSERT_EQ(s["events"].size(), events.size());
  for (size_t i = 0; i < events.size(); ++i) {
    EXPECT_EQ(s["events"][i]["label"].get<int>(), events[i].label());
    EXPECT_EQ(s["events"][i]["label_name"], events[i].label_name());
    EXPECT_DOUBLE_EQ(s["events"][i]["start_s"].get<double>(), events[i].start_s());
    EXPECT_DOUBLE_EQ(s["events"][i]["end_s"].get<double>(), events[i].end_s());
    EXPECT_EQ(float(s["events"][i]["confidence"].get<double>()), events[i].confidence());
  }
}

TEST(DashboardTest, QuantileWindowForgetsOlderObservations) {
  Metrics metrics;
  ModelSeries* series = metrics.Series("tiny", 1, 5);
  Dashboard dashboard(&metrics, nullptr);
  dashboard.Sample();  // the empty start
  for (int i = 0; i < 10; ++i) Metrics::Observe(series->total, 0.3);
  dashboard.Sample();  // holds the slow windows
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  for (int i = 0; i < 10; ++i) Metrics::Observe(series->total, 0.003);
  // Over the last second: only the fast windows; over the default window: all.
  Json last = Json::parse(dashboard.Data({"GET", "/dashboard/data.json", "window=1"}).body);
  EXPECT_EQ(last["window_s"], 1);
  EXPECT_EQ(last["latency"]["total"]["count"].get<double>(), 10);
  EXPECT_LE(last["latency"]["total"]["p99"].get<double>(), 0.005);
  EXPECT_GT(last["latency"]["total"]["p99"].get<double>(), 0.002);
  Json all = Json::parse(dashboard.Data({"GET", "/dashboard/data.json", ""}).body);
  EXPECT_EQ(all["latency"]["total"]["count"].get<double>(), 20);
  EXPECT_GT(all["latency"]["total"]["p99"].get<double>(), 0.2);
  // A phase with no observation has no quantile (null), not 0.
  EXPECT_TRUE(all["latency"]["queue"]["p50"].is_null());
}

TEST(DashboardTest, ModelSwapsAndFailedLoadsAreListed) {
  Metrics metrics;
  ModelSeries* v1 = metrics.Series("tiny", 1, 5);
  ModelSeries* v2 = metrics.Series("tiny", 2, 5);
  Dashboard dashboard(&metrics, nullptr);
  dashboard.Sample();
  Metrics::Inc(v2->load_failures);
  Metrics::Inc(v1->swaps);
  dashboard.Sample();
  const Json d = Json::parse(dashboard.Data({"GET", "/dashboard/data.json", ""}).body);
  std::map<std::string, std::string> kinds;
  for (const Json& e : d["model_events"]) kinds[e["kind"]] = e["model"];
  EXPECT_EQ(kinds["load_failed"], "tiny/2/s5");
  EXPECT_EQ(kinds["swap"], "tiny/1/s5");
  EXPECT_EQ(d["totals"]["model_load_failures"].get<double>(), 1);
}

TEST(DashboardTest, BadQueriesGetClearErrors) {
  GrpcHarness h(Repo("dash_bad"), {}, {}, nullptr, /*with_http=*/true);
  Dashboard dashboard(&h.core.metrics, &h.core.core->recent_streams());
  dashboard.AddHandlers(&h.http);
  struct Case {
    std::string path;
    int status;
    std::string message;
  };
  const std::vector<Case> cases = {
      {"/dashboard/data.json?window=abc", 400, "window: expected whole seconds"},
      {"/dashboard/data.json?window=0", 400, "window: expected whole seconds"},
      {"/dashboard/data.json?window=100000", 400, "from 1 to 300"},
      {"/dashboard/data.json?window=-5", 400, "window"},
      {"/dashboard/data.json?colour=red", 400, "unknown query parameter 'colour'"},
      {"/dashboard/data.json?window=5&window=6", 400, "given twice"},
      {"/dashboard/data.json?window=%zz", 400, "malformed percent-escape"},
      {"/dashboard/stream.json", 400, "missing query parameter 'id'"},
      {"/dashboard/stream.json?id=", 400, "id: expected a stream number"},
      {"/dashboard/stream.json?id=cam-1", 400, "id: expected a stream number"},
      {"/dashboard/stream.json?id=99999999999999999999999", 400, "id: expected"},
      {"/dashboard/stream.json?id=42", 404, "no stream 42"},
      {"/dashboard/nothing", 404, "not found"},
  };
  for (const Case& c : cases) {
    std::string body;
    EXPECT_EQ(HttpGet(h.http.port(), c.path, &body), c.status) << c.path << ": " << body;
    EXPECT_NE(body.find(c.message), std::string::npos) << c.path << ": " << body;
  }
  // Percent-escapes decode; the page and the data still serve.
  std::string body;
  EXPECT_EQ(HttpGet(h.http.port(), "/dashboard/data.json?window=%36%30", &body), 200) << body;
  EXPECT_EQ(Json::parse(body)["window_s"], 60);
  EXPECT_EQ(HttpGet(h.http.port(), "/dashboard", &body), 200);
  EXPECT_NE(body.find("<canvas"), std::string::npos);
  EXPECT_NE(body.find("data.json"), std::string::npos);
  EXPECT_EQ(dashboard.Page().content_type, "text/html; charset=utf-8");
}

}  // namespace
}  // namespace billnet::server
