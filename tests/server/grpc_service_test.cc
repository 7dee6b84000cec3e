// The gRPC service in-process over loopback: streams and unary calls equal the
// engine, protocol errors, admin and hot swap, state tokens, health checking,
// reflection, /metrics over HTTP, drain, idle timeout.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "grpc/convert.h"
#include "grpc_test_util.h"

namespace billnet::server {
namespace {

using media::VideoCodec;
using testing::ClientStream;
using testing::EncodeClip;
using testing::ExpectedWindows;
using testing::ExpectSameWindow;
using testing::GrpcHarness;
using testing::HttpGet;
using testing::StreamBytes;
using testing::TempDir;
using testing::WriteTinyVersion;

std::string Repo(const std::string& name, int versions = 1) {
  const std::string repo = TempDir(name);
  for (int v = 1; v <= versions; ++v) WriteTinyVersion(repo, "tiny", uint32_t(v), uint64_t(v));
  return repo;
}

v1::StreamConfig FileConfig(const std::string& id = "s") {
  v1::StreamConfig c;
  c.set_stream_id(id);
  c.set_mode(v1::STREAM_MODE_FILE);
  return c;
}

TEST(GrpcStreamTest, H264Mp4StreamEqualsTheEngine) {
  GrpcHarness h(Repo("grpc_h264"));
  const auto clip = EncodeClip(VideoCodec::kH264, "mp4", 40);
  const auto want = ExpectedWindows(*h.core.repository->Active("tiny")->model, clip);
  ClientStream s = StreamBytes(h.stub.get(), FileConfig(), clip);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  ASSERT_GE(s.responses.size(), 2u);
  ASSERT_TRUE(s.responses.front().has_started());
  const v1::StreamStarted& started = s.responses.front().started();
  EXPECT_EQ(started.model().name(), "tiny");
  EXPECT_EQ(started.model().version(), 1u);
  EXPECT_EQ(started.model().stage(), v1::STAGE_S5);
  EXPECT_EQ(started.frames(), 8);
  EXPECT_EQ(started.width(), 32);
  EXPECT_EQ(started.fps(), 6);
  EXPECT_EQ(started.labels_size(), 5);
  const auto windows = s.windows();
  ASSERT_EQ(windows.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ExpectSameWindow(windows[i], want[i]);
    EXPECT_EQ(windows[i].top_label_size(), windows[i].steps());
    EXPECT_EQ(windows[i].top_label(0), "class" + std::to_string(windows[i].top_class(0)));
    EXPECT_GT(windows[i].timings().total_s(), 0);
    EXPECT_GE(windows[i].timings().total_s(), windows[i].timings().inference_s());
    EXPECT_FALSE(windows[i].state_token().empty());
    EXPECT_EQ(windows[i].model().version(), 1u);
  }
  ASSERT_TRUE(s.responses.back().has_summary());
  EXPECT_EQ(s.responses.back().summary().windows(), 3);
  EXPECT_GT(s.responses.back().summary().undecoded_frames(), 0);
  EXPECT_EQ(s.responses.back().summary().source_frames() +
                s.responses.back().summary().undecoded_frames(),
            40);
  EXPECT_EQ(s.responses.back().summary().padded_windows(), 1);
}

TEST(GrpcStreamTest, MjpegMatroskaInTinyChunksEqualsTheEngine) {
  GrpcHarness h(Repo("grpc_mjpeg"));
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 70);
  const auto want = ExpectedWindows(*h.core.repository->Active("tiny")->model, clip);
  ClientStream s = StreamBytes(h.stub.get(), FileConfig(), clip, 61);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  const auto windows = s.windows();
  ASSERT_EQ(windows.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ExpectSameWindow(windows[i], want[i]);
}

TEST(GrpcStreamTest, RawVideoWithDemuxerOptions) {
  GrpcHarness h(Repo("grpc_raw"));
  const auto rgb = testing::ClipFrames(30, 64, 48, 0, 5);
  v1::StreamConfig c = FileConfig();
  c.set_container_hint("rawvideo");
  (*c.mutable_demuxer_options())["video_size"] = "64x48";
  (*c.mutable_demuxer_options())["pixel_format"] = "rgb24";
  (*c.mutable_demuxer_options())["framerate"] = "12";
  ClientStream s = StreamBytes(h.stub.get(), c, rgb, 5000);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  // 30 frames at 12 fps -> 15 model frames: one full window and a padded one.
  const auto windows = s.windows();
  ASSERT_EQ(windows.size(), 2u);
  EXPECT_TRUE(windows[1].padded());
  EXPECT_EQ(windows[1].real_frames(), 7);
}

TEST(GrpcStreamTest, ConcurrentStreamsDoNotInterfere) {
  GrpcHarness h(Repo("grpc_concurrent"));
  const Model& model = *h.core.repository->Active("tiny")->model;
  constexpr int kStreams = 3;
  std::vector<std::vector<uint8_t>> clips;
  std::vector<std::vector<testing::ExpectedWindow>> want;
  for (int i = 0; i < kStreams; ++i) {
    clips.push_back(EncodeClip(VideoCodec::kMjpeg, "matroska", 40 + 10 * i, 64, 48, 12, false, 0,
                               uint64_t(i + 11)));
    want.push_back(ExpectedWindows(model, clips[i]));
  }
  std::vector<ClientStream> got(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i)
    threads.emplace_back([&, i] {
      got[i] = StreamBytes(h.stub.get(), FileConfig("c" + std::to_string(i)), clips[i], 999);
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_TRUE(got[i].status.ok()) << got[i].status.error_message();
    const auto w = got[i].windows();
    ASSERT_EQ(w.size(), want[i].size());
    for (size_t j = 0; j < w.size(); ++j) ExpectSameWindow(w[j], want[i][j]);
  }
}

TEST(GrpcStreamTest, GarbageGetsInvalidArgumentAndAnotherStreamIsUnaffected) {
  GrpcHarness h(Repo("grpc_garbage"));
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 40);
  const auto want = ExpectedWindows(*h.core.repository->Active("tiny")->model, clip);
  std::vector<uint8_t> garbage(30000);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = uint8_t((i * 7919) >> 3);
  ClientStream good;
  std::thread t([&] { good = StreamBytes(h.stub.get(), FileConfig("good"), clip, 500); });
  ClientStream bad = StreamBytes(h.stub.get(), FileConfig("bad"), garbage);
  t.join();
  EXPECT_EQ(bad.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
      << bad.status.error_message();
  EXPECT_NE(bad.status.error_message().find("decoding stream 'bad'"), std::string::npos)
      << bad.status.error_message();
  ASSERT_TRUE(good.status.ok());
  const auto w = good.windows();
  ASSERT_EQ(w.size(), want.size());
  for (size_t j = 0; j < w.size(); ++j) ExpectSameWindow(w[j], want[j]);
}

TEST(GrpcStreamTest, ProtocolErrorsHaveClearStatuses) {
  CoreOptions co;
  GrpcServerOptions go;
  go.max_message_bytes = 64 * 1024;
  GrpcHarness h(Repo("grpc_protocol"), co, go);
  {  // A chunk before the config.
    grpc::ClientContext ctx;
    auto rw = h.stub->Stream(&ctx);
    v1::StreamRequest r;
    r.set_chunk("abc");
    rw->Write(r);
    rw->WritesDone();
    v1::StreamResponse resp;
    while (rw->Read(&resp)) {
    }
    grpc::Status st = rw->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("first message"), std::string::npos) << st.error_message();
  }
  {  // Half-close without any message.
    grpc::ClientContext ctx;
    auto rw = h.stub->Stream(&ctx);
    rw->WritesDone();
    v1::StreamResponse resp;
    while (rw->Read(&resp)) {
    }
    EXPECT_EQ(rw->Finish().error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  {  // The config twice.
    grpc::ClientContext ctx;
    auto rw = h.stub->Stream(&ctx);
    v1::StreamRequest r;
    *r.mutable_config() = FileConfig();
    rw->Write(r);
    rw->Write(r);
    v1::StreamResponse resp;
    while (rw->Read(&resp)) {
    }
    grpc::Status st = rw->Finish();
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_NE(st.error_message().find("twice"), std::string::npos) << st.error_message();
  }
  {  // An unknown model, a bad stage, bad event options.
    v1::StreamConfig c = FileConfig();
    c.mutable_model()->set_name("nope");
    EXPECT_EQ(StreamBytes(h.stub.get(), c, {}).status.error_code(), grpc::StatusCode::NOT_FOUND);
    c = FileConfig();
    c.mutable_model()->set_stage(static_cast<v1::Stage>(9));
    EXPECT_EQ(StreamBytes(h.stub.get(), c, {}).status.error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
    c = FileConfig();
    c.mutable_events()->set_enter_threshold(3);
    EXPECT_EQ(StreamBytes(h.stub.get(), c, {}).status.error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
    c = FileConfig();
    c.set_container_hint("no-such-container");
    EXPECT_EQ(StreamBytes(h.stub.get(), c, std::vector<uint8_t>(100, 1)).status.error_code(),
              grpc::StatusCode::INVALID_ARGUMENT);
  }
  {  // A message over the size limit.
    ClientStream s =
        StreamBytes(h.stub.get(), FileConfig(), std::vector<uint8_t>(100000, 7), 100000);
    EXPECT_EQ(s.status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED)
        << s.status.error_message();
  }
  {  // An empty stream: no frame, no window, OK with a summary.
    ClientStream s = StreamBytes(h.stub.get(), FileConfig(), {});
    EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << s.status.error_message();
  }
}

TEST(GrpcStreamTest, ThousandsOfTinyChunks) {
  GrpcHarness h(Repo("grpc_tiny_chunks"));
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 20);
  const auto want = ExpectedWindows(*h.core.repository->Active("tiny")->model, clip);
  ClientStream s = StreamBytes(h.stub.get(), FileConfig(), clip, 7);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  const auto w = s.windows();
  ASSERT_EQ(w.size(), want.size());
  for (size_t j = 0; j < w.size(); ++j) ExpectSameWindow(w[j], want[j]);
}

// A clip many times the server's input queue, sent as fast as the client can:
// the server pauses its reads at the limit and resumes them as the decoder
// reads (gRPC flow control holds the client meanwhile); every window arrives.
TEST(GrpcStreamTest, InputLargerThanTheQueueFlowsThroughPausedReads) {
  CoreOptions co;
  co.limits.max_queued_bytes = 2048;
  co.limits.idle_timeout = std::chrono::milliseconds(20000);
  GrpcHarness h(Repo("grpc_flow"), co);
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 70);
  ASSERT_GT(clip.size(), 20 * co.limits.max_queued_bytes);
  const auto want = ExpectedWindows(*h.core.repository->Active("tiny")->model, clip);
  ClientStream s = StreamBytes(h.stub.get(), FileConfig(), clip, 1024);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  const auto w = s.windows();
  ASSERT_EQ(w.size(), want.size());
  for (size_t j = 0; j < w.size(); ++j) ExpectSameWindow(w[j], want[j]);
}

// Every count of the core's stream summary reaches the client's summary.
TEST(GrpcConvertTest, SummaryCarriesEveryCount) {
  StreamSummary s;
  s.windows = 11;
  s.source_frames = 12;
  s.model_frames = 13;
  s.dropped_windows = 14;
  s.padded_windows = 15;
  s.dropped_frames = 16;
  s.bytes_received = 17;
  s.skipped_frames = 18;
  s.undecoded_frames = 19;
  v1::StreamSummary p;
  ToProto(s, &p);
  EXPECT_EQ(p.windows(), 11);
  EXPECT_EQ(p.source_frames(), 12);
  EXPECT_EQ(p.model_frames(), 13);
  EXPECT_EQ(p.dropped_windows(), 14);
  EXPECT_EQ(p.padded_windows(), 15);
  EXPECT_EQ(p.dropped_frames(), 16);
  EXPECT_EQ(p.bytes_received(), 17);
  EXPECT_EQ(p.skipped_frames(), 18);
  EXPECT_EQ(p.undecoded_frames(), 19);
}

TEST(GrpcStreamTest, IdleStreamEndsWithDeadlineExceeded) {
  CoreOptions co;
  co.limits.idle_timeout = std::chrono::milliseconds(150);
  GrpcHarness h(Repo("grpc_idle"), co);
  grpc::ClientContext ctx;
  auto rw = h.stub->Stream(&ctx);
  v1::StreamRequest r;
  *r.mutable_config() = FileConfig();
  ASSERT_TRUE(rw->Write(r));
  v1::StreamResponse resp;
  while (rw->Read(&resp)) {
  }
  grpc::Status st = rw->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
  EXPECT_NE(st.error_message().find("idle"), std::string::npos);
  // A call that never sends its config times out the same way.
  grpc::ClientContext ctx2;
  auto rw2 = h.stub->Stream(&ctx2);
  while (rw2->Read(&resp)) {
  }
  st = rw2->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED) << st.error_message();
  EXPECT_NE(st.error_message().find("no StreamConfig"), std::string::npos);
}

TEST(GrpcStreamTest, GestureEventsArriveWithWindowsAndAtTheEnd) {
  GrpcHarness h(Repo("grpc_events"));
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 90);
  v1::StreamConfig c = FileConfig();
  // Thresholds at 0: the top gesture class always forms an event, which ends
  // when another class overtakes it; the open one is closed at the end.
  c.mutable_events()->set_smoothing(1);
  c.mutable_events()->set_enter_threshold(0);
  c.mutable_events()->set_exit_threshold(0);
  c.mutable_events()->set_min_duration_s(0);
  c.mutable_events()->add_background_labels("class0");
  ClientStream s = StreamBytes(h.stub.get(), c, clip);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  const auto events = s.events();
  ASSERT_FALSE(events.empty());
  ASSERT_TRUE(s.responses.back().has_summary());
  EXPECT_GE(s.responses.back().events_size(), 1);  // the open event, closed at the end
  double last_end = -1;
  for (const auto& e : events) {
    EXPECT_NE(e.label(), 0);  // background
    EXPECT_EQ(e.label_name(), "class" + std::to_string(e.label()));
    EXPECT_LE(e.start_s(), e.end_s());
    EXPECT_GT(e.start_s(), last_end);
    EXPECT_LE(e.start_sequence(), e.end_sequence());
    last_end = e.end_s();
  }
  // Disabled: none.
  c.mutable_events()->set_disabled(true);
  EXPECT_TRUE(StreamBytes(h.stub.get(), c, clip).events().empty());
}

TEST(GrpcStreamTest, AClientThatVanishesFreesItsStream) {
  GrpcHarness h(Repo("grpc_vanish"));
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 90);
  v1::StreamConfig c = FileConfig();
  c.set_mode(v1::STREAM_MODE_LIVE);
  ClientStream s = StreamBytes(h.stub.get(), c, clip, 200, /*cancel after=*/1);
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::CANCELLED);
  for (int i = 0; i < 6000 && h.core.core->active_streams() > 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ(h.core.core->active_streams(), 0u);
  // The server goes on.
  EXPECT_TRUE(StreamBytes(h.stub.get(), FileConfig(), clip).status.ok());
}

TEST(GrpcUnaryTest, ClassifyEqualsTheEngine) {
  GrpcHarness h(Repo("grpc_classify"));
  const auto clip = EncodeClip(VideoCodec::kH264, "mp4", 50, 64, 48, 12, /*seekable=*/true);
  const auto want = ExpectedWindows(*h.core.repository->Active("tiny")->model, clip);
  std::vector<Response> responses;
  std::vector<int> real;
  for (const auto& w : want) {
    responses.push_back(w.response);
    real.push_back(w.real_frames);
  }
  auto label = ClassifyClip(responses, real, 8);
  ASSERT_TRUE(label.ok());
  v1::ClassifyRequest req;
  // Split into chunks: video + chunks are concatenated.
  req.set_video(clip.data(), 1000);
  req.add_chunks(clip.data() + 1000, clip.size() - 1000);
  v1::ClassifyResponse resp;
  grpc::ClientContext ctx;
  grpc::Status st = h.stub->Classify(&ctx, req, &resp);
  ASSERT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(resp.label(), label->label);
  EXPECT_EQ(resp.label_name(), "class" + std::to_string(label->label));
  EXPECT_EQ(resp.probability(), label->probability);
  EXPECT_EQ(std::vector<float>(resp.mean_probabilities().begin(), resp.mean_probabilities().end()),
            label->mean_probabilities);
  EXPECT_EQ(resp.steps_used(), label->steps_used);
  ASSERT_EQ(resp.windows_size(), int(want.size()));
  for (size_t i = 0; i < want.size(); ++i) ExpectSameWindow(resp.windows(int(i)), want[i]);
  EXPECT_EQ(resp.model().stage(), v1::STAGE_S5);

  v1::ClassifyRequest garbage;
  garbage.set_video(std::string(3000, 'x'));
  grpc::ClientContext ctx2;
  EXPECT_EQ(h.stub->Classify(&ctx2, garbage, &resp).error_code(),
            grpc::StatusCode::INVALID_ARGUMENT);
}

TEST(GrpcUnaryTest, GetModelInfo) {
  GrpcHarness h(Repo("grpc_info"));
  v1::ModelInfoRequest req;
  v1::ModelInfoResponse resp;
  grpc::ClientContext ctx;
  ASSERT_TRUE(h.stub->GetModelInfo(&ctx, req, &resp).ok());
  EXPECT_EQ(resp.model().name(), "tiny");
  EXPECT_EQ(resp.model().stage(), v1::STAGE_S5);
  EXPECT_EQ(resp.labels_size(), 5);
  EXPECT_EQ(resp.frames(), 8);
  EXPECT_EQ(resp.height(), 32);
  EXPECT_EQ(resp.width(), 32);
  EXPECT_EQ(resp.fps(), 6);
  EXPECT_EQ(resp.classes(), 5);
  EXPECT_GT(resp.weight_bits(), 0);
  EXPECT_GT(resp.gbops(), 0);
  EXPECT_EQ(resp.kernel_variant(), KernelVariant());
  EXPECT_TRUE(resp.active());
  EXPECT_EQ(resp.checksum().rfind("sha256:", 0), 0u);
  req.mutable_model()->set_stage(v1::STAGE_S1);
  grpc::ClientContext ctx2;
  ASSERT_TRUE(h.stub->GetModelInfo(&ctx2, req, &resp).ok());
  EXPECT_EQ(resp.model().stage(), v1::STAGE_S1);
  EXPECT_FALSE(resp.active());
  req.mutable_model()->set_name("nope");
  grpc::ClientContext ctx3;
  EXPECT_EQ(h.stub->GetModelInfo(&ctx3, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(GrpcAdminTest, ListLoadActivateUnloadAndABadFile) {
  const std::string repo = Repo("grpc_admin", 2);
  std::ofstream(testing::ModelPath(repo, "tiny", 1, 4), std::ios::binary | std::ios::trunc)
      << "corrupt";
  GrpcHarness h(repo);
  {
    v1::ListModelsResponse list;
    grpc::ClientContext ctx;
    ASSERT_TRUE(h.admin->ListModels(&ctx, {}, &list).ok());
    ASSERT_EQ(list.models_size(), 1);
    EXPECT_EQ(list.default_model(), "tiny");
    const v1::ModelEntry& m = list.models(0);
    EXPECT_EQ(m.active().version(), 2u);
    EXPECT_TRUE(m.follows_latest());
    ASSERT_EQ(m.versions_size(), 2);
    EXPECT_TRUE(m.versions(1).complete());
    EXPECT_TRUE(m.versions(1).stages(4).active());
    EXPECT_TRUE(m.versions(1).stages(4).loaded());
    EXPECT_FALSE(m.versions(0).stages(4).loaded());
  }
  {  // A bad file: the load fails, the active model stays.
    v1::LoadModelRequest req;
    req.mutable_model()->set_name("tiny");
    req.mutable_model()->set_version(1);
    req.mutable_model()->set_stage(v1::STAGE_S4);
    v1::LoadModelResponse resp;
    grpc::ClientContext ctx;
    grpc::Status st = h.admin->Load(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
    v1::ActivateModelRequest act;
    *act.mutable_model() = req.model();
    v1::ActivateModelResponse ar;
    grpc::ClientContext ctx2;
    EXPECT_FALSE(h.admin->Activate(&ctx2, act, &ar).ok());
    EXPECT_EQ(h.core.repository->Active("tiny")->key.ToString(), "tiny/2/s5");
  }
  {  // Load + activate version 1 S3.
    v1::LoadModelRequest req;
    req.mutable_model()->set_version(1);
    req.mutable_model()->set_stage(v1::STAGE_S3);
    v1::LoadModelResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(h.admin->Load(&ctx, req, &resp).ok());
    EXPECT_EQ(resp.model().name(), "tiny");
    v1::ActivateModelRequest act;
    *act.mutable_model() = req.model();
    v1::ActivateModelResponse ar;
    grpc::ClientContext ctx2;
    ASSERT_TRUE(h.admin->Activate(&ctx2, act, &ar).ok());
    EXPECT_EQ(ar.previous().version(), 2u);
    EXPECT_EQ(ar.active().version(), 1u);
    EXPECT_EQ(ar.active().stage(), v1::STAGE_S3);
  }
  {  // Unload: not the active one; yes the old one; a second time NOT_FOUND.
    v1::UnloadModelRequest req;
    req.mutable_model()->set_version(1);
    req.mutable_model()->set_stage(v1::STAGE_S3);
    v1::UnloadModelResponse resp;
    grpc::ClientContext c1;
    EXPECT_EQ(h.admin->Unload(&c1, req, &resp).error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    req.mutable_model()->set_version(2);
    req.mutable_model()->set_stage(v1::STAGE_S5);
    grpc::ClientContext c2;
    EXPECT_TRUE(h.admin->Unload(&c2, req, &resp).ok());
    grpc::ClientContext c3;
    EXPECT_EQ(h.admin->Unload(&c3, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
  }
}

// Holds every engine batch until released: makes the swap point exact.
class GatedBackend : public InferenceBackend {
 public:
  void RunBatch(Session* const* s, const uint8_t* const* w, size_t n, Response* r,
                Status* st) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++calls_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
    }
    engine_->RunBatch(s, w, n, r, st);
  }
  void Open() {
    std::lock_guard<std::mutex> lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  bool WaitCalls(int n) {
    std::unique_lock<std::mutex> lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(60), [&] { return calls_ >= n; });
  }

 private:
  std::unique_ptr<InferenceBackend> engine_ = MakeEngineBackend();
  std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  int calls_ = 0;
};

TEST(GrpcAdminTest, HotSwapMidStreamResetsStateAtTheNextWindowAndPinnedStreamsStay) {
  const std::string repo = Repo("grpc_swap", 1);
  auto gate = std::make_unique<GatedBackend>();
  GatedBackend* g = gate.get();
  GrpcHarness h(repo, {}, {}, std::move(gate));
  WriteTinyVersion(repo, "tiny", 2, 2);                              // not active: polling is off
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 60);  // 4 windows
  const auto old_want = ExpectedWindows(*h.core.repository->Active("tiny")->model, clip);
  ClientStream moving, pinned;
  std::thread t1([&] { moving = StreamBytes(h.stub.get(), FileConfig("moving"), clip); });
  ASSERT_TRUE(g->WaitCalls(1));  // the moving stream's window 0 is in the engine
  v1::StreamConfig pc = FileConfig("pinned");
  pc.mutable_model()->set_version(1);
  std::thread t2([&] { pinned = StreamBytes(h.stub.get(), pc, clip); });
  v1::ActivateModelRequest act;
  act.mutable_model()->set_version(2);
  v1::ActivateModelResponse ar;
  grpc::ClientContext ctx;
  ASSERT_TRUE(h.admin->Activate(&ctx, act, &ar).ok());
  g->Open();
  t1.join();
  t2.join();
  ASSERT_TRUE(moving.status.ok()) << moving.status.error_message();
  ASSERT_TRUE(pinned.status.ok()) << pinned.status.error_message();
  const auto mw = moving.windows();
  ASSERT_EQ(mw.size(), 4u);
  // The window in the engine during the swap (0, or 0 and 1 if both were
  // submitted) finished on version 1; the first on version 2 says state_reset.
  size_t first_new = 0;
  while (first_new < mw.size() && mw[first_new].model().version() == 1) ++first_new;
  ASSERT_GE(first_new, 1u);
  ASSERT_LT(first_new, mw.size());
  for (size_t i = 0; i < first_new; ++i) {
    ExpectSameWindow(mw[i], old_want[i]);
    EXPECT_FALSE(mw[i].state_reset());
  }
  EXPECT_TRUE(mw[first_new].state_reset());
  EXPECT_NE(mw[first_new].state_reset_reason().find("hot swap"), std::string::npos);
  const auto new_want =
      ExpectedWindows(*h.core.repository->Active("tiny")->model, clip, "", int(first_new));
  for (size_t i = first_new; i < mw.size(); ++i) {
    EXPECT_EQ(mw[i].model().version(), 2u);
    ExpectSameWindow(mw[i], new_want[i]);
  }
  const auto pw = pinned.windows();
  ASSERT_EQ(pw.size(), 4u);
  for (size_t i = 0; i < pw.size(); ++i) {
    EXPECT_EQ(pw[i].model().version(), 1u);
    EXPECT_FALSE(pw[i].state_reset());
    ExpectSameWindow(pw[i], old_want[i]);
  }
}

// A client whose connection drops reconnects with its last state token and
// resends from the frame the token covers (MJPEG: every frame is a key
// frame); numbering and results equal an undisturbed run.
TEST(GrpcTokenTest, ResumeAfterADroppedConnectionEqualsAnUndisturbedRun) {
  GrpcHarness h(Repo("grpc_resume"));
  constexpr int kFrames = 90;
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", kFrames);
  ClientStream full = StreamBytes(h.stub.get(), FileConfig("cam"), clip);
  ASSERT_TRUE(full.status.ok());
  const auto fw = full.windows();
  ASSERT_EQ(fw.size(), 6u);

  ClientStream cut = StreamBytes(h.stub.get(), FileConfig("cam"), clip, 300, /*cancel after=*/2);
  EXPECT_EQ(cut.status.error_code(), grpc::StatusCode::CANCELLED);
  const auto cw = cut.windows();
  ASSERT_GE(cw.size(), 2u);
  const v1::WindowResult& last = cw.back();
  const int resend_from = int(std::lround(last.last_source_ts() * 12));
  const auto rest = EncodeClip(VideoCodec::kMjpeg, "matroska", kFrames - resend_from, 64, 48, 12,
                               false, resend_from);
  v1::StreamConfig c = FileConfig("cam");
  c.set_state_token(last.state_token());
  ClientStream resumed = StreamBytes(h.stub.get(), c, rest, 1000);
  ASSERT_TRUE(resumed.status.ok()) << resumed.status.error_message();
  ASSERT_TRUE(resumed.responses.front().has_started());
  EXPECT_TRUE(resumed.responses.front().started().resumed());
  EXPECT_EQ(resumed.responses.front().started().next_sequence(), last.sequence() + 1);
  const auto rw = resumed.windows();
  ASSERT_EQ(rw.size(), fw.size() - size_t(last.sequence() + 1));
  for (size_t i = 0; i < rw.size(); ++i) {
    const v1::WindowResult& want = fw[size_t(last.sequence() + 1) + i];
    EXPECT_EQ(rw[i].sequence(), want.sequence());
    EXPECT_EQ(rw[i].first_source_ts(), want.first_source_ts());
    EXPECT_EQ(rw[i].padded(), want.padded());
    EXPECT_FALSE(rw[i].state_reset());
    EXPECT_EQ(std::vector<int>(rw[i].integer_scores().begin(), rw[i].integer_scores().end()),
              std::vector<int>(want.integer_scores().begin(), want.integer_scores().end()))
        << "window " << want.sequence();
    EXPECT_EQ(rw[i].state_token(), want.state_token()) << "window " << want.sequence();
  }
}

TEST(GrpcTokenTest, TamperedTokenStartsFreshWithAReason) {
  GrpcHarness h(Repo("grpc_tampered"));
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 40);
  const auto want = ExpectedWindows(*h.core.repository->Active("tiny")->model, clip);
  ClientStream full = StreamBytes(h.stub.get(), FileConfig("cam"), clip);
  ASSERT_TRUE(full.status.ok());
  std::string token = full.windows()[0].state_token();
  token[token.size() / 2] ^= 0x10;
  v1::StreamConfig c = FileConfig("cam");
  c.set_state_token(token);
  ClientStream s = StreamBytes(h.stub.get(), c, clip);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  const v1::StreamStarted& started = s.responses.front().started();
  EXPECT_FALSE(started.resumed());
  EXPECT_NE(started.state_reset_reason().find("does not verify"), std::string::npos);
  const auto w = s.windows();
  ASSERT_EQ(w.size(), want.size());
  EXPECT_TRUE(w[0].state_reset());
  EXPECT_NE(w[0].state_reset_reason().find("does not verify"), std::string::npos);
  for (size_t i = 0; i < w.size(); ++i) ExpectSameWindow(w[i], want[i]);
}

TEST(GrpcOpsTest, HealthCheckReportsServing) {
  GrpcHarness h(Repo("grpc_health"));
  auto health = grpc::health::v1::Health::NewStub(h.channel);
  for (const char* service : {"", "billnet.v1.GestureService", "billnet.v1.ModelAdmin"}) {
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    grpc::health::v1::HealthCheckResponse resp;
    grpc::ClientContext ctx;
    ASSERT_TRUE(health->Check(&ctx, req, &resp).ok()) << service;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
  grpc::health::v1::HealthCheckRequest req;
  req.set_service("no.such.Service");
  grpc::health::v1::HealthCheckResponse resp;
  grpc::ClientContext ctx;
  EXPECT_EQ(health->Check(&ctx, req, &resp).error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST(GrpcOpsTest, ReflectionListsAndDescribesTheServices) {
  GrpcHarness h(Repo("grpc_reflection"));
  auto refl = grpc::reflection::v1alpha::ServerReflection::NewStub(h.channel);
  grpc::ClientContext ctx;
  auto rw = refl->ServerReflectionInfo(&ctx);
  grpc::reflection::v1alpha::ServerReflectionRequest req;
  req.set_list_services("");
  ASSERT_TRUE(rw->Write(req));
  grpc::reflection::v1alpha::ServerReflectionResponse resp;
  ASSERT_TRUE(rw->Read(&resp));
  std::set<std::string> names;
  for (const auto& s : resp.list_services_response().service()) names.insert(s.name());
  EXPECT_TRUE(names.count("billnet.v1.GestureService"));
  EXPECT_TRUE(names.count("billnet.v1.ModelAdmin"));
  EXPECT_TRUE(names.count("grpc.health.v1.Health"));
  req.set_file_containing_symbol("billnet.v1.GestureService");
  ASSERT_TRUE(rw->Write(req));
  ASSERT_TRUE(rw->Read(&resp));
  ASSERT_GT(resp.file_descriptor_response().file_descriptor_proto_size(), 0);
  google::protobuf::FileDescriptorProto fd;
  ASSERT_TRUE(fd.ParseFromString(resp.file_descriptor_response().file_descriptor_proto(0)));
  EXPECT_EQ(fd.name(), "billnet/v1/gesture_service.proto");
  rw->WritesDone();
  EXPECT_TRUE(rw->Finish().ok());
}

std::map<std::string, double> ParseMetrics(const std::string& text) {
  std::map<std::string, double> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    const size_t sp = line.rfind(' ');
    out[line.substr(0, sp)] = std::stod(line.substr(sp + 1));
  }
  return out;
}

TEST(GrpcOpsTest, MetricsOverHttpStartAtZeroAndCountAStream) {
  GrpcHarness h(Repo("grpc_metrics"), {}, {}, nullptr, /*with_http=*/true);
  std::string body;
  ASSERT_EQ(HttpGet(h.http.port(), "/metrics", &body), 200);
  auto m = ParseMetrics(body);
  const std::string l = "model=\"tiny\",stage=\"s5\",version=\"1\"";
  for (const std::string family :
       {"billnet_active_streams", "billnet_windows_total", "billnet_frames_total",
        "billnet_decode_errors_total", "billnet_dropped_windows_total",
        "billnet_model_load_failures_total", "billnet_model_swaps_total"}) {
    ASSERT_TRUE(m.count(family + "{" + l + "}")) << family;
    EXPECT_EQ(m[family + "{" + l + "}"], 0) << family;
  }
  EXPECT_EQ(m["billnet_model_loads_total{" + l + "}"], 1);
  EXPECT_EQ(m["billnet_model_active{" + l + "}"], 1);
  EXPECT_EQ(m["billnet_kernel_variant_info{variant=\"" + std::string(KernelVariant()) + "\"}"], 1);
  EXPECT_EQ(m["billnet_refused_streams_total{reason=\"draining\"}"], 0);
  for (const char* phase : {"decode", "queue", "inference", "total"}) {
    const std::string hl =
        "model=\"tiny\",phase=\"" + std::string(phase) + "\",stage=\"s5\",version=\"1\"";
    EXPECT_EQ(m["billnet_window_latency_seconds_count{" + hl + "}"], 0) << phase;
    EXPECT_TRUE(m.count("billnet_window_latency_seconds_bucket{" + hl + ",le=\"0.05\"}")) << phase;
  }
  EXPECT_EQ(HttpGet(h.http.port(), "/nothing", &body), 404);

  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 40);
  ASSERT_TRUE(StreamBytes(h.stub.get(), FileConfig(), clip).status.ok());
  StreamBytes(h.stub.get(), FileConfig(), std::vector<uint8_t>(5000, 3));
  ASSERT_EQ(HttpGet(h.http.port(), "/metrics", &body), 200);
  m = ParseMetrics(body);
  EXPECT_EQ(m["billnet_windows_total{" + l + "}"], 3);
  EXPECT_EQ(m["billnet_frames_total{" + l + "}"], 40);
  EXPECT_EQ(m["billnet_decode_errors_total{" + l + "}"], 1);
  EXPECT_EQ(m["billnet_active_streams{" + l + "}"], 0);
  const std::string tl = "model=\"tiny\",phase=\"total\",stage=\"s5\",version=\"1\"";
  EXPECT_EQ(m["billnet_window_latency_seconds_count{" + tl + "}"], 3);
  const std::string dl = "model=\"tiny\",phase=\"decode\",stage=\"s5\",version=\"1\"";
  EXPECT_EQ(m["billnet_window_latency_seconds_count{" + dl + "}"], 40);
  // Every call is counted once by the status its client got.
  EXPECT_EQ(m["billnet_calls_total{call=\"stream\",code=\"OK\"}"], 1);
  EXPECT_EQ(m["billnet_calls_total{call=\"stream\",code=\"INVALID_ARGUMENT\"}"], 1);
  EXPECT_EQ(m["billnet_calls_total{call=\"classify\",code=\"OK\"}"], 0);
}

TEST(GrpcOpsTest, DrainEndsLiveStreamsWithUnavailableAndFinishesFileStreams) {
  GrpcHarness h(Repo("grpc_drain"));
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 60);
  const auto want = ExpectedWindows(*h.core.repository->Active("tiny")->model, clip);
  const size_t half = clip.size() / 2;
  auto start = [&](grpc::ClientContext* ctx, v1::StreamConfig c) {
    auto rw = h.stub->Stream(ctx);
    v1::StreamRequest r;
    *r.mutable_config() = c;
    EXPECT_TRUE(rw->Write(r));
    v1::StreamRequest chunk;
    chunk.set_chunk(clip.data(), half);
    EXPECT_TRUE(rw->Write(chunk));
    return rw;
  };
  grpc::ClientContext fctx, lctx;
  v1::StreamConfig live = FileConfig("live");
  live.set_mode(v1::STREAM_MODE_LIVE);
  auto frw = start(&fctx, FileConfig("file"));
  auto lrw = start(&lctx, live);
  v1::StreamResponse resp;
  // Both have started and the file stream has produced a window.
  ASSERT_TRUE(lrw->Read(&resp) && resp.has_started());
  ASSERT_TRUE(frw->Read(&resp) && resp.has_started());
  ASSERT_TRUE(frw->Read(&resp) && resp.has_window());
  std::thread shutdown([&] { h.server->Shutdown(std::chrono::seconds(60)); });
  int live_windows = 0;
  while (lrw->Read(&resp)) live_windows += resp.has_window();
  grpc::Status ls = lrw->Finish();
  EXPECT_EQ(ls.error_code(), grpc::StatusCode::UNAVAILABLE) << ls.error_message();
  // Draining: health says NOT_SERVING, new streams are refused.
  auto health = grpc::health::v1::Health::NewStub(h.channel);
  grpc::health::v1::HealthCheckRequest hreq;
  grpc::health::v1::HealthCheckResponse hresp;
  grpc::ClientContext hctx;
  ASSERT_TRUE(health->Check(&hctx, hreq, &hresp).ok());
  EXPECT_EQ(hresp.status(), grpc::health::v1::HealthCheckResponse::NOT_SERVING);
  ClientStream late = StreamBytes(h.stub.get(), FileConfig("late"), clip);
  EXPECT_EQ(late.status.error_code(), grpc::StatusCode::UNAVAILABLE);
  // The file stream sends the rest and gets every window.
  v1::StreamRequest rest;
  rest.set_chunk(clip.data() + half, clip.size() - half);
  EXPECT_TRUE(frw->Write(rest));
  frw->WritesDone();
  int file_windows = 1;
  while (frw->Read(&resp)) file_windows += resp.has_window();
  EXPECT_TRUE(frw->Finish().ok());
  EXPECT_EQ(file_windows, int(want.size()));
  shutdown.join();
}

}  // namespace
}  // namespace billnet::server
