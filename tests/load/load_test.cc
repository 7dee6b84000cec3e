// billnet-load: the looped remux (media::RemuxLooped), short runs against an
// in-process server with the tiny model (tests/server's harness), the plot,
// and the error paths. Counts only: no assertion on latency values.
#include "load.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "billnet/media/byte_io.h"
#include "billnet/media/decoder.h"
#include "billnet/media/remux.h"
#include "billnet/viz/png.h"
#include "grpc_test_util.h"

namespace billnet::load {
namespace {

using nlohmann::json;
using server::testing::EncodeClip;
using server::testing::GrpcHarness;
using server::testing::TempDir;
using server::testing::WriteTinyVersion;

struct Result {
  int code = -1;
  std::string out, err;
};

Result Load(const std::vector<std::string>& args) {
  std::ostringstream out, err;
  Result r;
  r.code = RunLoad(args, out, err);
  r.out = out.str();
  r.err = err.str();
  return r;
}

std::string WriteFile(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
  return path;
}

std::string Repo(const std::string& name) {
  const std::string repo = TempDir(name);
  WriteTinyVersion(repo, "tiny", 1, 1);
  return repo;
}

// Decodes `video` as the server would (its container as the hint).
std::vector<double> DecodedTimestamps(const media::LoopedVideo& video) {
  media::MemoryByteSource source(std::span<const uint8_t>(video.bytes), /*seekable=*/false);
  media::DecoderOptions o;
  o.format_hint = video.container;
  auto decoder = media::VideoDecoder::Open(&source, o);
  EXPECT_TRUE(decoder.ok()) << decoder.status().ToString();
  std::vector<double> ts;
  if (!decoder.ok()) return ts;
  media::DecodedFrame frame;
  for (;;) {
    auto more = (*decoder)->Next(&frame);
    EXPECT_TRUE(more.ok()) << more.status().ToString();
    if (!more.ok() || !*more) break;
    ts.push_back(frame.timestamp());
  }
  return ts;
}

// An H.264 clip with B-frames (x264's default) in MP4, 24 frames at 12 fps,
// looped to at least 5 s, for each container the load generator can send:
// whole passes, every frame decodes, timestamps continue across passes one
// frame apart, the packet table covers the bytes in order and its pacing
// never goes backwards.
TEST(RemuxLoopedTest, LoopsWithContinuousTimestamps) {
  const std::string dir = TempDir("remux");
  const int frames = 24;
  const double fps = 12;
  const std::string clip = WriteFile(
      dir + "/clip.mp4", EncodeClip(media::VideoCodec::kH264, "mp4", frames, 64, 48, fps, true));
  for (const std::string container : {"matroska", "mpegts", "nut"}) {
    SCOPED_TRACE(container);
    media::LoopOptions o;
    o.container = container;
    o.min_duration_s = 5;
    auto looped = media::RemuxLooped(clip, o);
    ASSERT_TRUE(looped.ok()) << looped.status().ToString();
    const media::LoopedVideo& v = *looped;
    EXPECT_EQ(v.container, container);
    EXPECT_EQ(v.codec, "h264");
    EXPECT_EQ(v.width, 64);
    EXPECT_EQ(v.height, 48);
    EXPECT_NEAR(v.pass_s, frames / fps, 1e-3);
    EXPECT_EQ(v.passes, int(std::ceil(5 / v.pass_s)));
    EXPECT_EQ(v.input_packets, frames);
    ASSERT_EQ(v.packets.size(), size_t(frames * v.passes));
    EXPECT_EQ(v.packets.back().end, v.bytes.size());
    EXPECT_EQ(v.packets.front().send_s, 0);
    EXPECT_TRUE(v.packets.front().key);
    for (size_t k = 1; k < v.packets.size(); ++k) {
      EXPECT_GT(v.packets[k].end, v.packets[k - 1].end) << k;
      EXPECT_GE(v.packets[k].send_s, v.packets[k - 1].send_s) << k;
      // Pass p's packet k is pass 0's shifted by p passes.
      const size_t first = k % frames;
      EXPECT_NEAR(v.packets[k].pts_s - v.packets[first].pts_s, double(k / frames) * v.pass_s, 2e-3)
          << k;
    }
    // B-frames: decode order differs from presentation order somewhere.
    bool reordered = false;
    for (size_t k = 1; k < size_t(frames); ++k)
      reordered |= v.packets[k].pts_s < v.packets[k - 1].pts_s;
    EXPECT_TRUE(reordered);
    const std::vector<double> ts = DecodedTimestamps(v);
    ASSERT_EQ(ts.size(), v.packets.size());
    for (size_t i = 1; i < ts.size(); ++i) EXPECT_NEAR(ts[i] - ts[i - 1], 1 / fps, 2e-3) << i;
  }
}

// Repeated runs of a stream count become one point of medians (the mean of
// the middle two for an even number), in increasing order of streams.
TEST(CurvePointsTest, MediansPerStreamCount) {
  EXPECT_TRUE(CurvePoints({}).empty());
  const std::vector<CurvePoint> c = CurvePoints({{64, 10, 90, 99},
                                                 {32, 8, 20, 100},
                                                 {64, 12, 40, 100},
                                                 {64, 9, 70, -1},
                                                 {16, 5, 15, -1},
                                                 {32, 6, 30, 90}});
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].streams, 16);
  EXPECT_EQ(c[0].runs, 1);
  EXPECT_EQ(c[0].p99_ms, 15);
  EXPECT_EQ(c[0].answered_pct, -1);  // no run knew it
  EXPECT_EQ(c[1].streams, 32);
  EXPECT_EQ(c[1].runs, 2);
  EXPECT_EQ(c[1].p50_ms, 7);
  EXPECT_EQ(c[1].p99_ms, 25);
  EXPECT_EQ(c[1].answered_pct, 95);
  EXPECT_EQ(c[2].streams, 64);
  EXPECT_EQ(c[2].runs, 3);
  EXPECT_EQ(c[2].p50_ms, 10);
  EXPECT_EQ(c[2].p99_ms, 70);
  EXPECT_EQ(c[2].answered_pct, 99.5);  // of the two runs that knew it
}

TEST(QuantileTest, NearestRank) {
  std::vector<double> none;
  EXPECT_EQ(Quantile(none, 0.99), 0);
  std::vector<double> v = {4, 1, 3, 2};
  EXPECT_EQ(Quantile(v, 0), 1);
  EXPECT_EQ(Quantile(v, 0.5), 2);
  EXPECT_EQ(Quantile(v, 0.51), 3);
  EXPECT_EQ(Quantile(v, 0.99), 4);
  EXPECT_EQ(Quantile(v, 1), 4);
}

TEST(RemuxLoopedTest, Errors) {
  EXPECT_EQ(media::RemuxLooped("/nonexistent/clip.mp4").status().code(), StatusCode::kNotFound);
  const std::string dir = TempDir("remux_errors");
  const std::string clip = WriteFile(
      dir + "/clip.mp4", EncodeClip(media::VideoCodec::kH264, "mp4", 8, 64, 48, 12, true));
  media::LoopOptions o;
  o.container = "no-such-muxer";
  EXPECT_EQ(media::RemuxLooped(clip, o).status().code(), StatusCode::kInvalidArgument);
  const std::string garbage = WriteFile(dir + "/garbage.mp4", std::vector<uint8_t>(4096, 0x5a));
  EXPECT_FALSE(media::RemuxLooped(garbage).ok());
}

// Checks the fields every report has and returns it.
json ParseReport(const Result& r) {
  EXPECT_EQ(r.code, kExitOk) << r.err;
  json j = json::parse(r.out, nullptr, false);
  EXPECT_FALSE(j.is_discarded()) << r.out;
  if (j.is_discarded()) return j;
  for (const char* field : {"streams",
                            "duration_s",
                            "scaled",
                            "source",
                            "model",
                            "window_s",
                            "windows",
                            "windows_expected",
                            "windows_per_s",
                            "p50_s",
                            "p99_s",
                            "max_s",
                            "e2e_p50_s",
                            "e2e_p99_s",
                            "send_lag_p99_s",
                            "send_lag_max_s",
                            "dropped_windows",
                            "lost_streams",
                            "errors",
                            "phases",
                            "server_rss_mb",
                            "server_rss_mb_start",
                            "server_rss_mb_max",
                            "server_rss_mb_series",
                            "server_cpu_cores",
                            "server_cpu_s_per_window",
                            "load_cpu_cores",
                            "load_average_1m",
                            "elapsed_s",
                            "grace_s",
                            "steady",
                            "timeline",
                            "host_steal_cores",
                            "host_steal_series"})
    EXPECT_TRUE(j.contains(field)) << field << " missing in " << r.out;
  return j;
}

// Windows a live stream of `seconds` of video yields at the model's rate:
// every window its model frames fill, the last one padded at the half-close
// (ceil(frames / window)); a model frame more or less at the edges (the
// resampler's first tick, B-frames cut at the end).
void ExpectWindowCount(const json& j, int streams, double seconds, double model_fps,
                       int window_frames) {
  const double frames = seconds * model_fps;
  const int64_t low = streams * int64_t(std::ceil((frames - 1) / window_frames));
  const int64_t high = streams * int64_t(std::ceil((frames + 1) / window_frames));
  const int64_t windows = j["windows"].get<int64_t>() + j["dropped_windows"].get<int64_t>();
  EXPECT_GE(windows, low) << j.dump();
  EXPECT_LE(windows, high) << j.dump();
}

// 3 client-scaled streams (the tiny model: 32x32, 6 fps, 8-frame windows)
// for 4 s: every field, the server's memory read from /proc (the server runs
// in this process), no stream lost, windows as the protocol predicts.
TEST(LoadTest, ScaledStreams) {
  GrpcHarness h(Repo("load_scaled"));
  const Result r = Load({"--server", h.address(), "--streams", "3", "--duration", "4", "--scaled",
                         "--server-pid", std::to_string(::getpid()), "--json", "--label",
                         "tiny scaled"});
  const json j = ParseReport(r);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["streams"], 3);
  EXPECT_EQ(j["scaled"], true);
  EXPECT_EQ(j["label"], "tiny scaled");
  EXPECT_EQ(j["source"]["width"], 32);
  EXPECT_EQ(j["source"]["height"], 32);
  EXPECT_EQ(j["model"]["name"], "tiny");
  EXPECT_EQ(j["lost_streams"], 0) << j["errors"].dump();
  EXPECT_GT(j["windows"].get<int64_t>(), 0);
  EXPECT_GT(j["windows_per_s"].get<double>(), 0);
  EXPECT_GT(j["p99_s"].get<double>(), 0);
  EXPECT_GE(j["p99_s"].get<double>(), j["p50_s"].get<double>());
  EXPECT_GT(j["e2e_p99_s"].get<double>(), 0);
  // Lateness is never negative: nothing is sent before its time.
  EXPECT_GE(j["send_lag_p99_s"].get<double>(), 0);
  EXPECT_GE(j["send_lag_max_s"].get<double>(), j["send_lag_p99_s"].get<double>());
  EXPECT_GT(j["server_rss_mb"].get<double>(), 0);
  EXPECT_FALSE(j["server_rss_mb_series"].empty());
  ExpectWindowCount(j, 3, 4, 6, 8);

  // Linux counts the hypervisor's steal in /proc/stat (0 on bare metal).
  ASSERT_TRUE(j["host_steal_cores"].is_number()) << j["host_steal_cores"].dump();
  EXPECT_GE(j["host_steal_cores"].get<double>(), 0);
  EXPECT_FALSE(j["host_steal_series"].empty());
  // Per second: every answered window once.
  int64_t timeline_windows = 0;
  for (const json& second : j["timeline"]) {
    timeline_windows += second["windows"].get<int64_t>();
    EXPECT_LE(second["p99_s"].get<double>(), second["max_s"].get<double>());
  }
  EXPECT_EQ(timeline_windows, j["windows"].get<int64_t>());
  // The steady state: from one window period (8 / 6 s) after the last
  // stream's start (2 / 3 of a period after the first's) to the first
  // stream's input end.
  const json& steady = j["steady"];
  ASSERT_TRUE(steady.is_object()) << j.dump();
  EXPECT_NEAR(steady["from_s"].get<double>(), 8.0 / 6 * (1 + 2.0 / 3), 1e-3);
  EXPECT_NEAR(steady["to_s"].get<double>(), 4, 1e-9);
  EXPECT_GT(steady["windows"].get<int64_t>(), 0);
  EXPECT_LT(steady["windows"].get<int64_t>(), j["windows"].get<int64_t>());
  EXPECT_LE(steady["max_s"].get<double>(), j["max_s"].get<double>());
  EXPECT_LE(steady["dropped_windows"].get<int64_t>(), j["dropped_windows"].get<int64_t>());

  // The text report says the same, figures rounded.
  const Result text = Load({"--server", h.address(), "--streams", "3", "--duration", "4",
                            "--scaled", "--server-pid", std::to_string(::getpid())});
  EXPECT_EQ(text.code, kExitOk) << text.err;
  EXPECT_NE(text.out.find("steady state (2.2-4.0 s, all streams live): windows "),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("server memory "), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("CPU taken by the hypervisor (steal) "), std::string::npos) << text.out;
}

// The default: generated 640x480 30 fps H.264 with B-frames, decoded and
// scaled by the server; the text report.
TEST(LoadTest, FullResolutionStreams) {
  GrpcHarness h(Repo("load_full"));
  const Result json_run =
      Load({"--server", h.address(), "--streams", "2", "--duration", "3", "--json"});
  const json j = ParseReport(json_run);
  ASSERT_FALSE(j.is_discarded());
  EXPECT_EQ(j["source"]["width"], 640);
  EXPECT_EQ(j["source"]["height"], 480);
  EXPECT_EQ(j["source"]["fps"], 30);
  EXPECT_EQ(j["lost_streams"], 0) << j["errors"].dump();
  EXPECT_TRUE(j["server_rss_mb"].is_null());  // no --server-pid
  EXPECT_FALSE(j.contains("label"));
  ExpectWindowCount(j, 2, 3, 6, 8);
  // 3 s leave less than a window period between the last stream's first
  // window and the first stream's end: no steady state to report.
  EXPECT_TRUE(j["steady"].is_null()) << j["steady"].dump();

  const std::string dir = TempDir("load_full_source");
  const std::string clip = WriteFile(
      dir + "/clip.mp4", EncodeClip(media::VideoCodec::kH264, "mp4", 24, 64, 48, 12, true));
  const Result text = Load({"--server", h.address(), "--streams", "1", "--duration", "2",
                            "--source", clip, "--container", "mpegts"});
  EXPECT_EQ(text.code, kExitOk) << text.err;
  EXPECT_NE(text.out.find("1 live streams x 2 s of " + clip), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("lost streams 0"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("window latency p50"), std::string::npos) << text.out;
}

TEST(LoadTest, BadArguments) {
  Result r = Load({"--server", "127.0.0.1:1", "--streams", "1", "--duration", "1", "--timeout",
                   "0.5", "--json"});
  EXPECT_EQ(r.code, kExitUnreachable);
  EXPECT_NE(r.err.find("cannot reach the server at 127.0.0.1:1"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty());

  r = Load({"--streams", "1", "--source", "/nonexistent/clip.mp4"});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_NE(r.err.find("no such file: /nonexistent/clip.mp4"), std::string::npos) << r.err;

  for (const char* n : {"0", "-3", "many"}) {
    r = Load({"--streams", n, "--duration", "1"});
    EXPECT_EQ(r.code, kExitUsage) << n;
    EXPECT_NE(r.err.find("--streams"), std::string::npos) << r.err;
  }
  r = Load({"--duration", "0"});
  EXPECT_EQ(r.code, kExitUsage);
  r = Load({"--container", "avi"});
  EXPECT_EQ(r.code, kExitUsage);
  r = Load({"--plot", "/tmp/x.png"});
  EXPECT_EQ(r.code, kExitUsage);
  EXPECT_NE(r.err.find("--plot needs result files"), std::string::npos) << r.err;

  // An unknown model; a source that is not a video: clear errors naming them.
  GrpcHarness h(Repo("load_bad_source"));
  r = Load({"--server", h.address(), "--model", "nosuch", "--duration", "1"});
  EXPECT_EQ(r.code, kExitNotFound);
  EXPECT_NE(r.err.find("GetModelInfo failed: NOT_FOUND"), std::string::npos) << r.err;
  const std::string dir = TempDir("load_bad_source_file");
  const std::string garbage = WriteFile(dir + "/garbage.mp4", std::vector<uint8_t>(4096, 0x5a));
  r = Load({"--server", h.address(), "--source", garbage, "--duration", "1"});
  EXPECT_EQ(r.code, kExitError);
  EXPECT_NE(r.err.find(garbage), std::string::npos) << r.err;
}

// --plot: one PNG of the size viz's line chart was asked for (latency and
// dropped windows against streams), one curve per kind of stream, or per
// label where reports have one; a line that is no report is an error naming it.
TEST(LoadTest, Plot) {
  const std::string dir = TempDir("load_plot");
  {
    std::ofstream f(dir + "/runs.jsonl");
    f << R"({"streams": 1, "scaled": false, "p50_s": 0.02, "p99_s": 0.03, "windows": 10,)"
      << R"( "window_s": 2.666667, "duration_s": 25})"
      << "\n"
      << R"({"streams": 8, "scaled": false, "p50_s": 0.025, "p99_s": 0.06})"
      << "\n\n"
      << R"({"streams": 64, "scaled": true, "p50_s": 0.02, "p99_s": 0.04})"
      << "\n";
  }
  const std::string png = dir + "/latency.png";
  Result r = Load({"--plot", png, dir + "/runs.jsonl"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const viz::DecodedPng image = viz::ReadPng(png);
  EXPECT_TRUE(image.error.empty()) << image.error;
  EXPECT_EQ(image.width, 960);
  EXPECT_EQ(image.height, 640);
  EXPECT_NE(r.out.find("(640x480 30 fps, client-scaled)"), std::string::npos) << r.out;
  {
    std::ofstream f(dir + "/labelled.jsonl");
    f << R"({"streams": 32, "p50_s": 0.05, "p99_s": 0.14, "label": "all"})" << "\n"
      << R"({"streams": 32, "p50_s": 0.03, "p99_s": 0.09, "label": "filter"})" << "\n"
      << R"({"streams": 48, "p50_s": 0.05, "p99_s": 0.21, "label": "all"})" << "\n";
  }
  r = Load({"--plot", png, dir + "/labelled.jsonl"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_NE(r.out.find("(all, filter)"), std::string::npos) << r.out;

  // --plot-steady draws the steady-state figures; a report without them is
  // refused, naming its stream count.
  r = Load({"--plot", png, "--plot-steady", dir + "/labelled.jsonl"});
  EXPECT_EQ(r.code, kExitError);
  EXPECT_NE(r.err.find("a report of 32 streams has no steady-state figures"), std::string::npos)
      << r.err;
  {
    std::ofstream f(dir + "/steady.jsonl");
    f << R"({"streams": 32, "p50_s": 0.05, "p99_s": 0.14, "steady": {"windows": 90,)"
      << R"( "dropped_windows": 10, "p50_s": 0.02, "p99_s": 0.04}})"
      << "\n";
  }
  r = Load({"--plot", png, "--plot-steady", dir + "/steady.jsonl"});
  EXPECT_EQ(r.code, kExitOk) << r.err;
  EXPECT_TRUE(viz::ReadPng(png).error.empty());

  std::ofstream(dir + "/bad.jsonl") << "{\"streams\": 1}\n";
  r = Load({"--plot", png, dir + "/bad.jsonl"});
  EXPECT_EQ(r.code, kExitError);
  EXPECT_NE(r.err.find("bad.jsonl:1: not a billnet-load report"), std::string::npos) << r.err;
  r = Load({"--plot", png, dir + "/missing.jsonl"});
  EXPECT_EQ(r.code, kExitNotFound);
}

}  // namespace
}  // namespace billnet::load
