// billnet-client's stream features: reconnect with the state token after the
// server goes away mid-stream (responses equal an undisturbed run), --realtime
// pacing (an injected clock; paced output equals unpaced), capture devices
// (a missing one), the live terminal view and the events timeline PNG.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <condition_variable>
#include <fstream>
#include <functional>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "billnet/client/client.h"
#include "billnet/viz/charts.h"
#include "billnet/viz/png.h"
#include "client_impl.h"
#include "client_test_util.h"
#include "grpc_test_util.h"
#include "uplink.h"
#include "view.h"

namespace billnet::client {
namespace {

using media::VideoCodec;
using server::testing::CoreHarness;
using server::testing::EncodeClip;
using server::testing::GrpcHarness;
using server::testing::TempDir;

using testing::Client;
using testing::Repo;
using testing::Result;
using testing::WriteClip;

std::vector<nlohmann::json> JsonLines(const std::string& text, const std::string& type) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    auto j = nlohmann::json::parse(line);
    if (type.empty() || j["type"] == type) lines.push_back(j);
  }
  return lines;
}

// A stream buffer other threads can watch while the client writes to it.
class WatchedBuf : public std::streambuf {
 public:
  std::string Text() {
    std::lock_guard<std::mutex> lock(mu_);
    return text_;
  }
  bool WaitFor(const std::function<bool(const std::string&)>& pred) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(60), [&] { return pred(text_); });
  }

 protected:
  int overflow(int c) override {
    if (c != traits_type::eof()) {
      std::lock_guard<std::mutex> lock(mu_);
      text_.push_back(char(c));
      cv_.notify_all();
    }
    return c;
  }
  std::streamsize xsputn(const char* p, std::streamsize n) override {
    std::lock_guard<std::mutex> lock(mu_);
    text_.append(p, size_t(n));
    cv_.notify_all();
    return n;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string text_;
};

size_t Count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

// The window fields that must match between two runs.
void ExpectSameWindows(const std::vector<nlohmann::json>& got,
                       const std::vector<nlohmann::json>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    for (const char* key :
         {"sequence", "label_index", "probability", "first_ts", "last_ts", "padded", "top_label"})
      EXPECT_EQ(got[i][key], want[i][key]) << "window " << i << " field " << key;
    EXPECT_FALSE(got[i].contains("state_reset")) << "window " << i;
  }
}

// Streams `clip` from a FIFO the test fills in two parts: once the client has
// printed `windows_before` windows, server `a` is destroyed (its drain cancels
// the file stream) and, unless `restart` is false, a new server with the same
// repository and token key (CoreHarness's) starts on the same port; then the
// rest of the clip is written.
Result StreamAcrossARestart(std::unique_ptr<GrpcHarness> a, const std::string& repo,
                            const std::string& fifo, const std::vector<uint8_t>& clip,
                            std::vector<std::string> args, size_t windows_before, bool restart,
                            bool other_key = false) {
  const int port = a->server->port();
  EXPECT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  std::mutex mu;
  std::condition_variable cv;
  bool write_rest = false;
  std::thread feeder([&] {
    std::ofstream f(fifo, std::ios::binary);  // blocks until the client opens it
    const size_t part = clip.size() * 6 / 10;
    f.write(reinterpret_cast<const char*>(clip.data()), std::streamsize(part));
    f.flush();
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return write_rest; });
    f.write(reinterpret_cast<const char*>(clip.data() + part), std::streamsize(clip.size() - part));
  });
  WatchedBuf out_buf, err_buf;
  std::ostream out(&out_buf), err(&err_buf);
  Result r;
  args.insert(args.begin(), {"--server", a->address(), "stream", fifo, "--json"});
  std::thread client([&] { r.code = RunClient(args, out, err); });
  const bool seen = out_buf.WaitFor(
      [&](const std::string& t) { return Count(t, "\"type\":\"window\"") >= windows_before; });
  EXPECT_TRUE(seen) << out_buf.Text();
  a.reset();
  std::unique_ptr<CoreHarness> b_core;
  std::unique_ptr<server::GrpcServer> b;
  if (restart) {
    b_core = std::make_unique<CoreHarness>(repo);
    if (other_key) {  // a server that cannot verify the client's tokens
      b_core->core.reset();
      b_core->tokens = std::make_unique<server::TokenCodec>(std::vector<uint8_t>(32, 9));
      b_core->core = std::make_unique<server::ServiceCore>(
          server::CoreOptions{}, b_core->repository.get(), &b_core->metrics, b_core->tokens.get(),
          nullptr, nullptr);
    }
    server::GrpcServerOptions b_options;
    b_options.listen = "127.0.0.1:" + std::to_string(port);
    b = std::make_unique<server::GrpcServer>(b_core->core.get(), b_options);
    EXPECT_TRUE(b->Start().ok());
  }
  {
    std::lock_guard<std::mutex> lock(mu);
    write_rest = true;
    cv.notify_all();
  }
  feeder.join();
  client.join();
  if (b) b->Shutdown(std::chrono::milliseconds(0));
  r.out = out_buf.Text();
  r.err = err_buf.Text();
  return r;
}

// The client reconnects, resumes with its last state token and resends from
// the frame the token covers (default mode: the kept model frames re-encoded
// with FFV1; --passthrough: the file from its first byte): the windows equal
// an undisturbed run's, none repeated or skipped.
TEST(ClientReconnectTest, ResumesOnANewServerAndEqualsAnUndisturbedRun) {
  // 96 frames at 12 fps: 48 model frames at 6 fps, 6 windows of 8.
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 96);
  for (const bool passthrough : {false, true}) {
    SCOPED_TRACE(passthrough ? "passthrough" : "client-side encoding");
    const std::string name = passthrough ? "client_reconnect_pass" : "client_reconnect";
    const std::string repo = Repo(name);
    auto a = std::make_unique<GrpcHarness>(repo);
    const std::string dir = TempDir(name + "_files");
    const std::string file = WriteClip(dir, "cam.mkv", clip);
    std::vector<std::string> args = {"--reconnect-seconds", "60", "--chunk", "2000"};
    if (passthrough) args.push_back("--passthrough");
    std::vector<std::string> ref_args = {"--server", a->address(), "stream", file, "--json"};
    if (passthrough) ref_args.push_back("--passthrough");
    Result ref = Client(ref_args);
    ASSERT_EQ(ref.code, kExitOk) << ref.err;
    const auto want = JsonLines(ref.out, "window");
    ASSERT_EQ(want.size(), 6u) << ref.out;

    std::filesystem::create_directories(dir + "/pipe");
    Result r = StreamAcrossARestart(std::move(a), repo, dir + "/pipe/cam.mkv", clip, args,
                                    /*windows_before=*/2, /*restart=*/true);
    ASSERT_EQ(r.code, kExitOk) << r.err << r.out;
    EXPECT_NE(r.err.find("connection lost: "), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("reconnecting (attempt 1)"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("resumed at window "), std::string::npos) << r.err;
    const auto started = JsonLines(r.out, "started");
    ASSERT_GE(started.size(), 2u) << r.out;
    EXPECT_EQ(started.back()["resumed"], true);
    ExpectSameWindows(JsonLines(r.out, "window"), want);
    const auto summary = JsonLines(r.out, "summary");
    ASSERT_EQ(summary.size(), 1u);
    EXPECT_GE(summary[0]["connections"], 2);
  }
}

// A new server with another token key cannot resume: the client prints its
// reason and the stream goes on fresh (numbering from 0, state reset).
TEST(ClientReconnectTest, RefusedTokenStartsFreshWithTheReason) {
  const std::string repo = Repo("client_refused_token");
  auto a = std::make_unique<GrpcHarness>(repo);
  const std::string dir = TempDir("client_refused_token_files");
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 96);
  Result r = StreamAcrossARestart(std::move(a), repo, dir + "/cam.mkv", clip,
                                  {"--reconnect-seconds", "60"}, 2, /*restart=*/true,
                                  /*other_key=*/true);
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_NE(r.err.find("the server could not resume (fresh start: state token does not verify"),
            std::string::npos)
      << r.err;
  const auto started = JsonLines(r.out, "started");
  ASSERT_GE(started.size(), 2u);
  EXPECT_EQ(started.back()["resumed"], false);
  const auto windows = JsonLines(r.out, "window");
  size_t restart = 0;
  for (size_t i = 1; i < windows.size(); ++i)
    if (windows[i]["sequence"] == 0) restart = i;
  ASSERT_GE(restart, 2u) << r.out;
  EXPECT_TRUE(windows[restart].contains("state_reset")) << windows[restart];
}

// With --reconnect-seconds 0 a dropped connection ends the command (exit 3).
TEST(ClientReconnectTest, ZeroDisablesReconnecting) {
  const std::string repo = Repo("client_no_reconnect");
  auto a = std::make_unique<GrpcHarness>(repo);
  const std::string dir = TempDir("client_no_reconnect_files");
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 96);
  Result r = StreamAcrossARestart(std::move(a), repo, dir + "/cam.mkv", clip,
                                  {"--reconnect-seconds", "0"}, 1, /*restart=*/false);
  EXPECT_EQ(r.code, kExitUnreachable) << r.err;
  EXPECT_NE(r.err.find("connection lost: "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("attempt"), std::string::npos) << r.err;
}

// Which ends of a Stream call are a lost connection that the client resumes.
// Through an L7 proxy a replica's death ends the call without a gRPC status
// (UNKNOWN, "No status received", as HAProxy does after a SIGKILL: proved by
// tests/failover); the server's own errors are final.
TEST(ClientReconnectTest, LostConnectionStatuses) {
  using grpc::StatusCode;
  EXPECT_TRUE(ResumableStreamStatus(grpc::Status(StatusCode::UNAVAILABLE, "server draining")));
  EXPECT_TRUE(ResumableStreamStatus(grpc::Status(StatusCode::CANCELLED, "")));
  EXPECT_TRUE(ResumableStreamStatus(grpc::Status(StatusCode::UNKNOWN, "No status received")));
  for (StatusCode code : {StatusCode::OK, StatusCode::INVALID_ARGUMENT, StatusCode::NOT_FOUND,
                          StatusCode::FAILED_PRECONDITION, StatusCode::RESOURCE_EXHAUSTED,
                          StatusCode::DEADLINE_EXCEEDED, StatusCode::INTERNAL})
    EXPECT_FALSE(ResumableStreamStatus(grpc::Status(code, "x"))) << int(code);
}

TEST(ClientPacingTest, DelayFollowsTheTimestamps) {
  EXPECT_DOUBLE_EQ(PacingDelay(100, 0, 100, 0), 0);
  EXPECT_DOUBLE_EQ(PacingDelay(100, 0, 100.25, 1), 0.75);
  EXPECT_DOUBLE_EQ(PacingDelay(100, 2, 100, 2.5), 0.5);  // origin at source time 2 s
  EXPECT_DOUBLE_EQ(PacingDelay(100, 0, 103, 1), 0);      // late: no wait
}

TEST(ClientPacingTest, PacerSleepsUntilEachFrameIsDue) {
  double now = 10;
  std::vector<double> sleeps;
  Pacer pacer([&] { return now; },
              [&](double s) {
                sleeps.push_back(s);
                now += s;
                return true;
              });
  EXPECT_TRUE(pacer.Wait(5.0));  // the origin: no wait
  EXPECT_TRUE(pacer.Wait(5.5));
  now += 0.1;  // work between frames
  EXPECT_TRUE(pacer.Wait(6.0));
  now += 2;  // a stall: the next frame is late
  EXPECT_TRUE(pacer.Wait(6.5));
  pacer.Rebase();  // after a reconnect: a new origin, no burst
  EXPECT_TRUE(pacer.Wait(7.0));
  EXPECT_TRUE(pacer.Wait(7.25));
  ASSERT_EQ(sleeps.size(), 3u);
  EXPECT_DOUBLE_EQ(sleeps[0], 0.5);
  EXPECT_NEAR(sleeps[1], 0.4, 1e-9);
  EXPECT_DOUBLE_EQ(sleeps[2], 0.25);
  // An interrupted sleep stops the pacing.
  Pacer stopped([&] { return now; }, [](double) { return false; });
  EXPECT_TRUE(stopped.Wait(0));
  EXPECT_FALSE(stopped.Wait(1));
}

// --realtime changes when bytes are sent, never what the server computes.
TEST(ClientPacingTest, RealtimeGivesTheSameWindows) {
  GrpcHarness h(Repo("client_realtime"));
  const std::string dir = TempDir("client_realtime_files");
  const std::string file =
      WriteClip(dir, "clip.mkv", EncodeClip(VideoCodec::kMjpeg, "matroska", 30));
  Result fast = Client({"--server", h.address(), "stream", file, "--json"});
  ASSERT_EQ(fast.code, kExitOk) << fast.err;
  Result paced = Client({"--server", h.address(), "stream", file, "--json", "--realtime"});
  ASSERT_EQ(paced.code, kExitOk) << paced.err;
  const auto want = JsonLines(fast.out, "window");
  ASSERT_GE(want.size(), 2u);
  ExpectSameWindows(JsonLines(paced.out, "window"), want);
  // --passthrough --realtime paces the file's packets (remuxed, not
  // re-encoded): the same windows as --passthrough unpaced.
  Result pass = Client({"--server", h.address(), "stream", file, "--json", "--passthrough"});
  ASSERT_EQ(pass.code, kExitOk) << pass.err;
  Result pass_paced =
      Client({"--server", h.address(), "stream", file, "--json", "--passthrough", "--realtime"});
  ASSERT_EQ(pass_paced.code, kExitOk) << pass_paced.err;
  const auto want_pass = JsonLines(pass.out, "window");
  ASSERT_GE(want_pass.size(), 2u);
  ExpectSameWindows(JsonLines(pass_paced.out, "window"), want_pass);
  // A URL arrives at its own pace: refused with the reason.
  Result url = Client({"--server", h.address(), "stream", "http://127.0.0.1:1/clip.mkv",
                       "--passthrough", "--realtime"});
  EXPECT_EQ(url.code, kExitUsage);
  EXPECT_NE(url.err.find("needs a file"), std::string::npos) << url.err;
}

// The paced passthrough uplink against a fake clock: every byte of the remuxed
// file goes out, each packet not before its send time; after a reconnect the
// packets the token covers go out at once and pacing starts again after them.
TEST(ClientPacingTest, PassthroughPacesPacketsBySendTime) {
  const std::string dir = TempDir("client_paced_passthrough");
  const std::string file =
      WriteClip(dir, "clip.mkv", EncodeClip(VideoCodec::kMjpeg, "matroska", 24));
  double now = 0;
  std::vector<double> sleeps;
  auto up = PacedPassthroughUplink::Open(
      file, [&] { return now; },
      [&](double s) {
        sleeps.push_back(s);
        now += s;
        return true;
      });
  ASSERT_TRUE(up.ok()) << up.status().ToString();
  const media::LoopedVideo& v = (*up)->video();
  ASSERT_GE(v.packets.size(), 24u);
  const auto send_all = [&](double covered_ts) {
    EXPECT_TRUE((*up)->Begin(covered_ts).ok());
    std::string all, chunk;
    for (;;) {
      auto more = (*up)->Next(1000, &chunk);
      EXPECT_TRUE(more.ok());
      if (!more.ok() || !*more) break;
      EXPECT_LE(chunk.size(), 1000u);
      all += chunk;
    }
    return all;
  };
  const std::string all = send_all(-1);
  EXPECT_EQ(all, std::string(v.bytes.begin(), v.bytes.end()));
  const double span = v.packets.back().send_s - v.packets.front().send_s;
  ASSERT_GT(span, 0.5);
  double slept = 0;
  for (double s : sleeps) slept += s;
  EXPECT_NEAR(slept, span, 1e-9);
  // Resume after the packet at the middle: no sleep until after it.
  const size_t mid = v.packets.size() / 2;
  sleeps.clear();
  EXPECT_EQ(send_all(v.packets[mid].pts_s), all);
  slept = 0;
  for (double s : sleeps) slept += s;
  EXPECT_LT(slept, span * 0.75);
  EXPECT_GT(slept, 0);
  // A missing file is NotFound.
  auto missing = PacedPassthroughUplink::Open(dir + "/none.mkv");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();
}

TEST(ClientDeviceTest, MissingDeviceNamesItAndExits4) {
  for (const std::string source : {"/dev/video97", "v4l2:/dev/video98"}) {
    Result r = Client({"--server", "127.0.0.1:1", "--timeout", "1", "stream", source,
                       "--video-size", "640x480", "--fps", "30"});
    EXPECT_EQ(r.code, kExitNotFound) << source;
    const std::string device = source.substr(source.find("/dev/"));
    EXPECT_NE(r.err.find("no such capture device: " + device + " (v4l2"), std::string::npos)
        << r.err;
  }
  // Capture devices cannot be passed through.
  Result p = Client({"--server", "127.0.0.1:1", "stream", "/dev/null", "--passthrough"});
  EXPECT_EQ(p.code, kExitUsage) << p.err;
}

TEST(ClientLiveViewTest, RendersTheStateAndRedrawsInPlace) {
  LiveState s;
  s.source = "cam.mkv";
  s.model = "tiny v1 S5";
  int lines = 0;
  std::string first = RenderLiveView(s, 0, &lines);
  EXPECT_EQ(first.find("\x1b[J"), std::string::npos) << first;  // nothing to move over
  EXPECT_NE(first.find("waiting for the first window"), std::string::npos);
  EXPECT_NE(first.find("gestures: none yet"), std::string::npos);
  EXPECT_EQ(lines, 3);
  EXPECT_EQ(Count(first, "\x1b[K\n"), 3u);

  s.windows = 4;
  s.sequence = 3;
  s.label = "Swiping Left";
  s.probability = 0.8125;
  s.source_s = 5.25;
  s.fps = 6;
  s.latency_ms = 12.5;
  for (int i = 0; i < 7; ++i) {
    std::string label = "g";
    label += std::to_string(i);
    s.events.push_back({label, i, double(i), i + 0.5, 0.5 + i * 0.05});
  }
  std::string next = RenderLiveView(s, lines, &lines);
  EXPECT_EQ(next.rfind("\x1b[3F\x1b[J", 0), 0u) << next;  // up 3 lines, clear, redraw
  EXPECT_NE(next.find("now: Swiping Left 0.812 [################....]  at 5.25 s"),
            std::string::npos)
      << next;
  EXPECT_NE(next.find("window 3 (4 received)  6.0 fps  latency 12.5 ms\x1b[K"), std::string::npos)
      << next;
  // The last kLiveEvents events, latest last.
  EXPECT_EQ(next.find("g1 "), std::string::npos);
  EXPECT_NE(next.find("    g2 2.00-2.50 s (0.600)"), std::string::npos) << next;
  EXPECT_LT(next.find("g5 "), next.find("g6 "));
  EXPECT_EQ(lines, 3 + 1 + int(kLiveEvents));

  s.latency_ms = 40;
  s.latency_from_server = false;
  s.status = "reconnecting (attempt 2)";
  std::string third = RenderLiveView(s, lines, &lines);
  EXPECT_NE(third.find("latency 40.0 ms (round trip)"), std::string::npos) << third;
  EXPECT_NE(third.find("[reconnecting (attempt 2)]"), std::string::npos) << third;
  s.latency_ms = -1;
  EXPECT_NE(RenderLiveView(s, 0, nullptr).find("latency n/a"), std::string::npos);
}

// --live draws the status area even into a string (no terminal needed).
TEST(ClientLiveViewTest, LiveFlagDrawsTheView) {
  GrpcHarness h(Repo("client_live"));
  const std::string dir = TempDir("client_live_files");
  const std::string file =
      WriteClip(dir, "clip.mkv", EncodeClip(VideoCodec::kMjpeg, "matroska", 40));
  Result r = Client({"--server", h.address(), "stream", file, "--live"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  EXPECT_NE(r.out.find("now: class"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\x1b[J"), std::string::npos);
  EXPECT_EQ(r.out.find("window    0"), std::string::npos);  // no per-window lines
  EXPECT_NE(r.out.find("done: "), std::string::npos);
  EXPECT_EQ(Client({"--server", h.address(), "stream", file, "--live", "--json"}).code, kExitUsage);
}

TEST(ClientTimelineTest, OneLanePerOccurredClassInIndexOrder) {
  const std::vector<ViewEvent> events = {
      {"class3", 3, 1.0, 2.0, 0.9}, {"class1", 1, 2.5, 3.0, 0.5}, {"class3", 3, 4.0, 5.0, 0.7}};
  const viz::TimelineSpec spec = TimelineFromEvents(events, 6.0, "t");
  EXPECT_EQ(spec.label_order, (std::vector<std::string>{"class1", "class3"}));
  ASSERT_EQ(spec.predicted.size(), 3u);
  EXPECT_EQ(spec.predicted[1].label, "class1");
  EXPECT_DOUBLE_EQ(spec.predicted[2].confidence, 0.7);
  EXPECT_EQ(spec.t_min, 0.0);
  EXPECT_EQ(spec.t_max, 6.0);
  viz::TimelineLayout layout;
  viz::Timeline(spec, &layout);
  EXPECT_EQ(layout.lane_names, (std::vector<std::string>{"class1", "class3"}));
}

// Events (with thresholds that let the tiny random model form them) drawn as
// a timeline PNG: it decodes at the size the events give, lanes for exactly
// the classes that occurred, and the first event's bar is where it belongs.
TEST(ClientTimelineTest, StreamWritesTheEventsTimeline) {
  GrpcHarness h(Repo("client_timeline"));
  const std::string dir = TempDir("client_timeline_files");
  const std::string file =
      WriteClip(dir, "clip.mkv", EncodeClip(VideoCodec::kMjpeg, "matroska", 96));
  const std::string png = dir + "/events.png";
  Result r = Client({"--server", h.address(), "stream", file, "--json", "--timeline", png,
                     "--event-smoothing", "1", "--event-enter", "0", "--event-exit", "0",
                     "--event-min-duration", "0", "--background-labels", "class0"});
  ASSERT_EQ(r.code, kExitOk) << r.err;
  const auto events = JsonLines(r.out, "event");
  ASSERT_FALSE(events.empty()) << r.out;
  const auto windows = JsonLines(r.out, "window");
  ASSERT_FALSE(windows.empty());
  std::vector<ViewEvent> ve;
  std::set<int> classes;
  for (const auto& e : events) {
    ve.push_back({e["label"], e["label_index"], e["start_s"], e["end_s"], e["confidence"]});
    classes.insert(e["label_index"].get<int>());
    EXPECT_NE(e["label"], "class0");  // a background class never forms events
  }
  const double t_end = windows.back()["last_ts"];
  const viz::TimelineSpec spec = TimelineFromEvents(ve, t_end, "clip.mkv: gesture events");
  viz::TimelineLayout layout;
  const viz::Canvas expected = viz::Timeline(spec, &layout);
  const viz::DecodedPng img = viz::ReadPng(png);
  ASSERT_TRUE(img.ok()) << img.error;
  EXPECT_EQ(img.width, expected.width());
  EXPECT_EQ(img.height, expected.height());
  ASSERT_EQ(img.channels, 3);
  ASSERT_EQ(layout.lane_names.size(), classes.size());
  for (size_t i = 0; i < layout.lane_names.size(); ++i)
    EXPECT_EQ(layout.lane_names[i], "class" + std::to_string(*std::next(classes.begin(), long(i))));
  EXPECT_DOUBLE_EQ(layout.area.x_min, 0);
  EXPECT_DOUBLE_EQ(layout.area.x_max, std::max(t_end, ve.back().end_s));
  // The first event's bar: in its class's lane, from its start to its end,
  // filled with the label's colour (not the white or gray background).
  const ViewEvent& e = ve.front();
  const size_t lane = size_t(std::distance(classes.begin(), classes.find(e.label_index)));
  const viz::Rect& r0 = layout.lanes[lane];
  const int x = int(std::lround(layout.area.PixelX((e.start_s + e.end_s) / 2)));
  const int y = r0.y + 4;  // above the confidence text
  auto pixel = [&](int px, int py) {
    const size_t i = (size_t(py) * size_t(img.width) + size_t(px)) * 3;
    return viz::Rgb{img.pixels[i], img.pixels[i + 1], img.pixels[i + 2]};
  };
  const viz::Rgb bar = pixel(x, y);
  EXPECT_FALSE(bar == viz::kWhite);
  EXPECT_FALSE((bar == viz::Rgb{246, 246, 246}));
  EXPECT_TRUE(bar == expected.At(x, y));
  // Outside every bar of that lane (before the first event starts, if there
  // is room) the lane is background.
  const int before = int(std::lround(layout.area.PixelX(e.start_s))) - 3;
  if (before > r0.x + 1) {
    const viz::Rgb bg = pixel(before, y);
    EXPECT_TRUE(bg == viz::kWhite || (bg == viz::Rgb{246, 246, 246}) ||
                (bg == viz::Rgb{235, 235, 235}) || bg == expected.At(before, y));
  }
}

}  // namespace
}  // namespace billnet::client
