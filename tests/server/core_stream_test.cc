// Streams through the server core (no sockets): results equal the engine run
// directly on media/'s windows, state across windows, concurrency, bad input,
// injected failures, hot swap, pinning, state tokens, limits, drain.
#include <gtest/gtest.h>
#include <prometheus/counter.h>

#include <sched.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <filesystem>
#include <set>
#include <span>
#include <thread>

#include "billnet/media/decoder.h"
#include "billnet/media/pipeline.h"
#include "core/service_core.h"
#include "server_test_util.h"

namespace billnet::server {
namespace {

using media::VideoCodec;
using testing::CoreHarness;
using testing::EncodeClip;
using testing::ExpectedWindows;
using testing::ExpectSameWindow;
using testing::Recorder;
using testing::RunStream;
using testing::RunStreamFlowControlled;
using testing::TempDir;
using testing::WriteTinyVersion;

std::string OneVersionRepo(const std::string& name) {
  const std::string repo = TempDir(name);
  WriteTinyVersion(repo, "tiny", 1, 1);
  return repo;
}

StreamConfig FileConfig(const std::string& id = "s") {
  StreamConfig c;
  c.stream_id = id;
  c.mode = StreamMode::kFile;
  return c;
}

// Lets the test hold the engine: every batch waits until released.
class GatedBackend : public InferenceBackend {
 public:
  void RunBatch(Session* const* sessions, const uint8_t* const* windows, size_t count,
                Response* responses, Status* statuses) override {
    {
      std::unique_lock<std::mutex> lock(mu_);
      ++calls_;
      cv_.notify_all();
      cv_.wait(lock, [&] { return open_; });
    }
    engine_->RunBatch(sessions, windows, count, responses, statuses);
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

class FailingBackend : public InferenceBackend {
 public:
  void RunBatch(Session* const*, const uint8_t* const*, size_t count, Response*,
                Status* statuses) override {
    for (size_t i = 0; i < count; ++i) statuses[i] = Internal("injected engine failure");
  }
};

// A real decoder that fails after `after` frames.
class FailingDecoderFactory : public DecoderFactory {
 public:
  explicit FailingDecoderFactory(int after) : after_(after) {}
  StatusOr<std::unique_ptr<FrameDecoder>> Open(media::ByteSource* source,
                                               const media::DecoderOptions& options,
                                               const std::string& name) override {
    BILLNET_ASSIGN_OR_RETURN(auto inner, real_->Open(source, options, name));
    return std::unique_ptr<FrameDecoder>(std::make_unique<Failing>(std::move(inner), after_));
  }

 private:
  class Failing : public FrameDecoder {
   public:
    Failing(std::unique_ptr<FrameDecoder> inner, int after)
        : inner_(std::move(inner)), left_(after) {}
    StatusOr<bool> Next(media::DecodedFrame* f) override {
      if (left_-- <= 0) return Corruption("injected decoder failure");
      return inner_->Next(f);
    }

   private:
    std::unique_ptr<FrameDecoder> inner_;
    int left_;
  };
  int after_;
  std::shared_ptr<DecoderFactory> real_ = MakeFfmpegDecoderFactory();
};

TEST(CoreStreamTest, H264Mp4ResultsEqualTheEngineOnMediaWindows) {
  CoreHarness h(OneVersionRepo("core_h264"));
  // 40 frames at 12 fps -> 20 model frames at 6 fps -> 8 + 8 + 4 (padded).
  const auto clip = EncodeClip(VideoCodec::kH264, "mp4", 40);
  const auto want = ExpectedWindows(*h.repository->Active("tiny")->model, clip);
  ASSERT_EQ(want.size(), 3u);
  Recorder rec;
  ASSERT_TRUE(RunStream(*h.core, FileConfig(), clip, &rec).ok()) << rec.status.ToString();
  ASSERT_EQ(rec.windows.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ExpectSameWindow(rec.windows[i], want[i]);
  EXPECT_TRUE(rec.windows[2].padded);
  EXPECT_EQ(rec.windows[2].real_frames, 4);
  EXPECT_FALSE(rec.windows[0].state_reset);
  EXPECT_EQ(rec.windows[0].model->key.ToString(), "tiny/1/s5");
  EXPECT_TRUE(rec.windows[0].response.scores_are_integers);
  EXPECT_EQ(rec.summary.windows, 3);
  EXPECT_EQ(rec.summary.padded_windows, 1);
  // x264's B-frames that no tick takes were left undecoded (the expected
  // windows decoded every frame).
  EXPECT_GT(rec.summary.undecoded_frames, 0);
  EXPECT_EQ(rec.summary.source_frames + rec.summary.undecoded_frames, 40);
  EXPECT_EQ(rec.summary.model_frames, 20);
  EXPECT_EQ(rec.summary.bytes_received, int64_t(clip.size()));
  EXPECT_FALSE(rec.windows[0].state_token.empty());
  ModelHandle handle = h.repository->Active("tiny");
  EXPECT_EQ(handle->series->undecoded_frames->Value(), double(rec.summary.undecoded_frames));
}

// Threads of this process at SCHED_IDLE (Linux).
int IdleThreads() {
  int n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/proc/self/task", ec)) {
    const int policy = sched_getscheduler(std::stoi(e.path().filename().string()));
    if (policy == SCHED_IDLE) ++n;
  }
  return n;
}

// A core with `limits`, the 40-frame H.264 clip (12 fps, B-frames) and the
// windows the media pipeline gives for it with every frame decoded.
struct H264Core {
  static CoreOptions With(const StreamLimits& limits) {
    CoreOptions o;
    o.limits = limits;
    return o;
  }
  H264Core(const std::string& repo, const StreamLimits& limits)
      : h(OneVersionRepo(repo), With(limits)),
        clip(EncodeClip(VideoCodec::kH264, "mp4", 40)),
        want(ExpectedWindows(*h.repository->Active("tiny")->model, clip)) {}
  CoreHarness h;
  std::vector<uint8_t> clip;
  std::vector<testing::ExpectedWindow> want;
};

TEST(CoreStreamTest, DecodeIdleRunsTheDecodeThreadAtSchedIdleWithTheSameWindows) {
  StreamLimits limits;
  limits.decode_idle = true;
  H264Core c("core_h264_idle", limits);
  CoreHarness& h = c.h;
  const auto& clip = c.clip;
  const auto& want = c.want;
  ASSERT_EQ(IdleThreads(), 0);
  Recorder rec;
  std::shared_ptr<Stream> s;
  StartInfo info;
  ASSERT_TRUE(h.core->OpenStream(FileConfig(), &rec, &s, &info).ok());
  // The decode thread waits for the rest of the clip meanwhile.
  s->PushChunkBlocking(std::string(clip.begin(), clip.begin() + 100));
  bool idle = false;
  for (int i = 0; i < 200 && !idle; ++i) {
    idle = IdleThreads() == 1;
    if (!idle) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_TRUE(idle) << "no thread at SCHED_IDLE while the stream decodes";
  s->PushChunkBlocking(std::string(clip.begin() + 100, clip.end()));
  s->CloseInput();
  ASSERT_TRUE(rec.WaitEnd());
  ASSERT_TRUE(rec.status.ok()) << rec.status.ToString();
  ASSERT_EQ(rec.windows.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ExpectSameWindow(rec.windows[i], want[i]);
}

TEST(CoreStreamTest, DecodeAllFramesDecodesEveryFrameWithTheSameWindows) {
  StreamLimits limits;
  limits.decode_all_frames = true;
  H264Core c("core_h264_all", limits);
  Recorder rec;
  ASSERT_TRUE(RunStream(*c.h.core, FileConfig(), c.clip, &rec).ok()) << rec.status.ToString();
  ASSERT_EQ(rec.windows.size(), c.want.size());
  for (size_t i = 0; i < c.want.size(); ++i) ExpectSameWindow(rec.windows[i], c.want[i]);
  EXPECT_EQ(rec.summary.source_frames, 40);
  EXPECT_EQ(rec.summary.undecoded_frames, 0);
}

TEST(CoreStreamTest, MjpegMatroskaInTinyChunksEqualsTheEngine) {
  CoreHarness h(OneVersionRepo("core_mjpeg"));
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 70);
  const auto want = ExpectedWindows(*h.repository->Active("tiny")->model, clip);
  ASSERT_EQ(want.size(), 5u);  // 35 model frames: 4 full + 3 real
  Recorder rec;
  ASSERT_TRUE(RunStream(*h.core, FileConfig(), clip, &rec, /*chunk=*/97).ok())
      << rec.status.ToString();
  ASSERT_EQ(rec.windows.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ExpectSameWindow(rec.windows[i], want[i]);
  EXPECT_EQ(rec.windows.back().real_frames, 3);
}

TEST(CoreStreamTest, EveryStageRunsAndS1ToS4GiveFloatScores) {
  CoreHarness h(OneVersionRepo("core_stages"));
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 20);
  for (int s = 1; s <= 5; ++s) {
    StreamConfig c = FileConfig();
    c.stage = Stage(s);
    auto model = h.repository->Resolve("tiny", 0, Stage(s));
    ASSERT_TRUE(model.ok());
    const auto want = ExpectedWindows(*(*model)->model, clip);
    Recorder rec;
    ASSERT_TRUE(RunStream(*h.core, c, clip, &rec).ok()) << rec.status.ToString();
    ASSERT_EQ(rec.windows.size(), want.size());
    for (size_t i = 0; i < want.size(); ++i) ExpectSameWindow(rec.windows[i], want[i]);
    EXPECT_EQ(rec.windows[0].response.scores_are_integers, s == 5);
  }
}

TEST(CoreStreamTest, ClassifyEqualsTheEnginesClipLabel) {
  CoreHarness h(OneVersionRepo("core_classify"));
  // A plain (seekable, index at the end) MP4: unary calls may send one.
  const auto clip = EncodeClip(VideoCodec::kH264, "mp4", 50, 64, 48, 12, /*seekable=*/true);
  const auto want = ExpectedWindows(*h.repository->Active("tiny")->model, clip);
  std::vector<Response> responses;
  std::vector<int> real;
  for (const auto& w : want) {
    responses.push_back(w.response);
    real.push_back(w.real_frames);
  }
  auto label = ClassifyClip(responses, real, 8);
  ASSERT_TRUE(label.ok());
  ClassifyInput in;
  in.video.assign(clip.begin(), clip.end());
  ClassifyOutput out;
  ServeStatus st = h.core->ClassifySync(std::move(in), &out);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_EQ(out.label.label, label->label);
  EXPECT_EQ(out.label.probability, label->probability);
  EXPECT_EQ(out.label.mean_probabilities, label->mean_probabilities);
  EXPECT_EQ(out.label.steps_used, label->steps_used);
  ASSERT_EQ(out.windows.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ExpectSameWindow(out.windows[i], want[i]);
}

TEST(CoreStreamTest, ClassifyRejectsGarbageAndEmptyInput) {
  CoreHarness h(OneVersionRepo("core_classify_bad"));
  ClassifyInput garbage;
  garbage.video = std::string(5000, '\x5a');
  ClassifyOutput out;
  EXPECT_EQ(h.core->ClassifySync(garbage, &out).code, Code::kInvalidArgument);
  ClassifyInput empty;
  EXPECT_EQ(h.core->ClassifySync(empty, &out).code, Code::kInvalidArgument);
  ClassifyInput unknown;
  unknown.model_name = "nope";
  EXPECT_EQ(h.core->ClassifySync(unknown, &out).code, Code::kNotFound);
}

// Also with engine helper threads: batches spread over them and lone windows
// split their rows, with the same results.
class ConcurrentStreams : public ::testing::TestWithParam<int> {};

TEST_P(ConcurrentStreams, DoNotInterfere) {
  CoreOptions options;
  options.pool.engine_helpers = GetParam();
  CoreHarness h(OneVersionRepo("core_concurrent_" + std::to_string(GetParam())), options);
  const Model& model = *h.repository->Active("tiny")->model;
  constexpr int kStreams = 4;
  std::vector<std::vector<uint8_t>> clips;
  std::vector<std::vector<testing::ExpectedWindow>> want;
  for (int i = 0; i < kStreams; ++i) {
    clips.push_back(EncodeClip(i % 2 ? VideoCodec::kMjpeg : VideoCodec::kH264,
                               i % 2 ? "matroska" : "mpegts", 40 + 8 * i, 64, 48, 12, false, 0,
                               uint64_t(100 + i)));
    want.push_back(ExpectedWindows(model, clips[i]));
  }
  std::vector<Recorder> recs(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i)
    threads.emplace_back([&, i] {
      ServeStatus st =
          RunStream(*h.core, FileConfig("s" + std::to_string(i)), clips[i], &recs[i], 500 + 37 * i);
      EXPECT_TRUE(st.ok()) << st.ToString();
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < kStreams; ++i) {
    ASSERT_EQ(recs[i].windows.size(), want[i].size()) << "stream " << i;
    for (size_t j = 0; j < want[i].size(); ++j) ExpectSameWindow(recs[i].windows[j], want[i][j]);
  }
}

INSTANTIATE_TEST_SUITE_P(CoreStreamTest, ConcurrentStreams, ::testing::Values(0, 2),
                         [](const auto& info) { return "EngineHelpers" + std::to_string(info.param); });

TEST(CoreStreamTest, GarbageEndsOnlyThatStream) {
  CoreHarness h(OneVersionRepo("core_garbage"));
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 40);
  const auto want = ExpectedWindows(*h.repository->Active("tiny")->model, clip);
  std::vector<uint8_t> garbage(20000);
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = uint8_t(i * 2654435761u >> 13);
  Recorder good, bad;
  std::thread t(
      [&] { EXPECT_TRUE(RunStream(*h.core, FileConfig("good"), clip, &good, 300).ok()); });
  ServeStatus st = RunStream(*h.core, FileConfig("bad"), garbage, &bad);
  t.join();
  EXPECT_EQ(st.code, Code::kInvalidArgument) << st.ToString();
  EXPECT_NE(st.message.find("decoding"), std::string::npos) << st.message;
  EXPECT_TRUE(bad.windows.empty());
  ASSERT_EQ(good.windows.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ExpectSameWindow(good.windows[i], want[i]);
  const std::string text = h.metrics.Serialize();
  EXPECT_NE(text.find("billnet_decode_errors_total{model=\"tiny\",stage=\"s5\",version=\"1\"} 1"),
            std::string::npos);
}

TEST(CoreStreamTest, TruncatedClipGivesItsWindowsThenAnErrorOrAnEnd) {
  CoreHarness h(OneVersionRepo("core_truncated"));
  auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 60);
  clip.resize(clip.size() / 2);
  Recorder rec;
  ServeStatus st = RunStream(*h.core, FileConfig(), clip, &rec);
  // Matroska cut in the middle of a frame: the frames before it decode.
  EXPECT_TRUE(st.ok() || st.code == Code::kInvalidArgument) << st.ToString();
  EXPECT_GE(rec.windows.size(), 1u);
}

TEST(CoreStreamTest, InjectedDecoderFailureEndsTheStreamAfterItsWindows) {
  CoreHarness h(OneVersionRepo("core_fail_decoder"), {},
                std::make_shared<FailingDecoderFactory>(20));
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 40);
  const auto want = ExpectedWindows(*h.repository->Active("tiny")->model, clip);
  Recorder rec;
  ServeStatus st = RunStream(*h.core, FileConfig(), clip, &rec);
  EXPECT_EQ(st.code, Code::kInvalidArgument);
  EXPECT_NE(st.message.find("injected decoder failure"), std::string::npos) << st.message;
  // 20 source frames -> 10 model frames: one full window, the rest not padded.
  ASSERT_EQ(rec.windows.size(), 1u);
  ExpectSameWindow(rec.windows[0], want[0]);
}

TEST(CoreStreamTest, InjectedEngineFailureEndsTheStreamWithInternal) {
  CoreHarness h(OneVersionRepo("core_fail_engine"), {}, nullptr,
                std::make_unique<FailingBackend>());
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 40);
  Recorder rec;
  ServeStatus st = RunStream(*h.core, FileConfig(), clip, &rec);
  EXPECT_EQ(st.code, Code::kInternal) << st.ToString();
  EXPECT_NE(st.message.find("injected engine failure"), std::string::npos);
  EXPECT_TRUE(rec.windows.empty());
  // The failed window is counted (one window in flight: one failure).
  const std::string text = h.metrics.Serialize();
  EXPECT_NE(text.find("billnet_engine_failures_total{model=\"tiny\",stage=\"s5\",version=\"1\"} 1"),
            std::string::npos)
      << text;
}

TEST(CoreStreamTest, HotSwapMovesTheStreamAtTheNextWindowWithItsStateReset) {
  const std::string repo = OneVersionRepo("core_swap");
  WriteTinyVersion(repo, "tiny", 2, 2, {1, 2, 3, 4});  // incomplete: not active
  auto gate = std::make_unique<GatedBackend>();
  GatedBackend* g = gate.get();
  CoreHarness h(repo, {}, nullptr, std::move(gate));
  WriteTinyVersion(repo, "tiny", 2, 2, {5});
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 60);  // 4 windows
  const auto old_want = ExpectedWindows(*h.repository->Active("tiny")->model, clip);
  Recorder rec, pinned_rec;
  std::shared_ptr<Stream> stream, pinned;
  StartInfo info;
  ASSERT_TRUE(h.core->OpenStream(FileConfig("swap"), &rec, &stream, &info).ok());
  StreamConfig pc = FileConfig("pinned");
  pc.version = 1;
  ASSERT_TRUE(h.core->OpenStream(pc, &pinned_rec, &pinned, &info).ok());
  // Only the moving stream has bytes until its window 0 is in the engine;
  // the pinned stream (opened before the swap) gets its bytes after.
  std::thread feed([&] {
    stream->PushChunkBlocking(std::string(clip.begin(), clip.end()));
    stream->CloseInput();
  });
  ASSERT_TRUE(g->WaitCalls(1));  // the moving stream's window 0 is in the engine
  pinned->PushChunkBlocking(std::string(clip.begin(), clip.end()));
  pinned->CloseInput();
  auto act = h.repository->Activate("tiny", 2, std::nullopt);
  ASSERT_TRUE(act.ok()) << act.status().ToString();
  g->Open();
  feed.join();
  ASSERT_TRUE(rec.WaitEnd());
  ASSERT_TRUE(pinned_rec.WaitEnd());
  ASSERT_TRUE(rec.status.ok()) << rec.status.ToString();
  const auto new_want =
      ExpectedWindows(*h.repository->Active("tiny")->model, clip, "", /*run_from=*/1);
  ASSERT_EQ(rec.windows.size(), 4u);
  ExpectSameWindow(rec.windows[0], old_want[0]);
  EXPECT_EQ(rec.windows[0].model->key.version, 1u);
  EXPECT_FALSE(rec.windows[0].state_reset);
  EXPECT_TRUE(rec.windows[1].state_reset);
  EXPECT_NE(rec.windows[1].state_reset_reason.find("tiny/1/s5 to tiny/2/s5"), std::string::npos)
      << rec.windows[1].state_reset_reason;
  for (size_t i = 1; i < 4; ++i) {
    EXPECT_EQ(rec.windows[i].model->key.version, 2u);
    ExpectSameWindow(rec.windows[i], new_want[i]);
  }
  EXPECT_FALSE(rec.windows[2].state_reset);
  // The pinned stream kept version 1 and its state throughout.
  ASSERT_EQ(pinned_rec.windows.size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(pinned_rec.windows[i].model->key.version, 1u);
    EXPECT_FALSE(pinned_rec.windows[i].state_reset);
    ExpectSameWindow(pinned_rec.windows[i], old_want[i]);
  }
  const std::string text = h.metrics.Serialize();
  EXPECT_NE(text.find("billnet_model_swaps_total{model=\"tiny\",stage=\"s5\",version=\"2\"} 1"),
            std::string::npos);
}

// Resume: the connection breaks after some windows; the client reconnects with
// the last token and resends from the frame the token covers (MJPEG: every
// frame is a key frame). Numbering and results equal an undisturbed run.
TEST(CoreStreamTest, TokenResumeEqualsAnUndisturbedRun) {
  CoreHarness h(OneVersionRepo("core_resume"));
  constexpr int kFrames = 90;  // 45 model frames: 5 full windows + 5 real
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", kFrames);
  // Events on every step (thresholds 0) with smoothing across windows, so the
  // token's event state matters.
  const auto with_events = [](StreamConfig c) {
    c.events.smoothing = 0.5f;
    c.events.enter_threshold = 0;
    c.events.exit_threshold = 0;
    c.events.min_duration_s = 0;
    c.events.background_labels = {"class0"};
    return c;
  };
  Recorder full;
  ASSERT_TRUE(RunStream(*h.core, with_events(FileConfig("cam")), clip, &full).ok());
  ASSERT_EQ(full.windows.size(), 6u);

  // First connection: cut after window 1 arrived.
  Recorder first;
  std::shared_ptr<Stream> s;
  StartInfo info;
  ASSERT_TRUE(h.core->OpenStream(with_events(FileConfig("cam")), &first, &s, &info).ok());
  std::thread feed([&] {
    for (size_t off = 0; off < clip.size(); off += 512)
      if (!s->PushChunkBlocking(
              std::string(clip.begin() + off, clip.begin() + std::min(clip.size(), off + 512))))
        break;
  });
  ASSERT_TRUE(first.WaitWindows(2));
  s->Cancel(ServeStatus(Code::kCancelled, "connection dropped"));
  feed.join();
  ASSERT_TRUE(first.WaitEnd());
  EXPECT_EQ(first.status.code, Code::kCancelled);
  const WindowOutput& last = first.windows.back();
  const int64_t next = last.sequence + 1;

  // Second connection: resend from the source frame of the covered timestamp.
  const int resend_from = int(std::lround(last.last_source_ts * 12));
  const auto rest = EncodeClip(VideoCodec::kMjpeg, "matroska", kFrames - resend_from, 64, 48, 12,
                               false, resend_from);
  StreamConfig c = with_events(FileConfig("cam"));
  c.state_token = last.state_token;
  Recorder second;
  StartInfo resumed;
  ASSERT_TRUE(RunStream(*h.core, c, rest, &second, 777, &resumed).ok()) << second.status.ToString();
  EXPECT_TRUE(resumed.resumed);
  EXPECT_EQ(resumed.next_sequence, next);
  ASSERT_EQ(second.windows.size(), full.windows.size() - size_t(next));
  for (size_t i = 0; i < second.windows.size(); ++i) {
    const WindowOutput& got = second.windows[i];
    const WindowOutput& want = full.windows[size_t(next) + i];
    EXPECT_EQ(got.sequence, want.sequence);
    EXPECT_EQ(got.first_source_ts, want.first_source_ts);
    EXPECT_EQ(got.last_source_ts, want.last_source_ts);
    EXPECT_EQ(got.padded, want.padded);
    EXPECT_EQ(got.response.scores, want.response.scores) << "window " << want.sequence;
    EXPECT_FALSE(got.state_reset);
  }
  // The gesture events after the cut (and at the end) equal the undisturbed
  // run's: the token carried the smoothing and the open event.
  const auto events_from = [](const Recorder& r, int64_t from) {
    std::vector<GestureEvent> out;
    size_t in_windows = 0;
    for (const WindowOutput& w : r.windows) {
      in_windows += w.events.size();
      if (w.sequence >= from) out.insert(out.end(), w.events.begin(), w.events.end());
    }
    out.insert(out.end(), r.events.begin() + std::ptrdiff_t(in_windows), r.events.end());
    return out;
  };
  const auto want_events = events_from(full, next), got_events = events_from(second, next);
  ASSERT_FALSE(want_events.empty());
  ASSERT_EQ(got_events.size(), want_events.size());
  for (size_t i = 0; i < got_events.size(); ++i) {
    EXPECT_EQ(got_events[i].label, want_events[i].label) << "event " << i;
    EXPECT_EQ(got_events[i].start_s, want_events[i].start_s) << "event " << i;
    EXPECT_EQ(got_events[i].end_s, want_events[i].end_s) << "event " << i;
    EXPECT_EQ(got_events[i].confidence, want_events[i].confidence) << "event " << i;
    EXPECT_EQ(got_events[i].start_sequence, want_events[i].start_sequence) << "event " << i;
    EXPECT_EQ(got_events[i].end_sequence, want_events[i].end_sequence) << "event " << i;
  }
}

TEST(CoreStreamTest, TamperedOrForeignTokenStartsFreshWithAReason) {
  const std::string repo = OneVersionRepo("core_bad_token");
  CoreHarness h(repo);
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 40);
  const auto want = ExpectedWindows(*h.repository->Active("tiny")->model, clip);
  Recorder full;
  ASSERT_TRUE(RunStream(*h.core, FileConfig("cam"), clip, &full).ok());
  std::string token = full.windows[0].state_token;
  token[10] = char(token[10] ^ 0x40);

  StreamConfig c = FileConfig("cam");
  c.state_token = token;
  Recorder rec;
  StartInfo info;
  ASSERT_TRUE(RunStream(*h.core, c, clip, &rec, 4096, &info).ok());
  EXPECT_FALSE(info.resumed);
  EXPECT_NE(info.reset_reason.find("does not verify"), std::string::npos) << info.reset_reason;
  ASSERT_EQ(rec.windows.size(), want.size());
  EXPECT_TRUE(rec.windows[0].state_reset);
  EXPECT_NE(rec.windows[0].state_reset_reason.find("does not verify"), std::string::npos);
  for (size_t i = 0; i < want.size(); ++i) ExpectSameWindow(rec.windows[i], want[i]);

  // A valid token of another stage (pinned S3 stream, S5 token).
  StreamConfig other = FileConfig("cam");
  other.stage = Stage::kS3;
  other.state_token = full.windows[0].state_token;
  Recorder rec3;
  ASSERT_TRUE(RunStream(*h.core, other, clip, &rec3, 4096, &info).ok());
  EXPECT_NE(info.reset_reason.find("tiny/1/s5"), std::string::npos) << info.reset_reason;
  ASSERT_FALSE(rec3.windows.empty());
  EXPECT_EQ(rec3.windows[0].sequence, 0);
  EXPECT_TRUE(rec3.windows[0].state_reset);

  // Another stream id.
  StreamConfig other_id = FileConfig("other");
  other_id.state_token = full.windows[0].state_token;
  Recorder rec_id;
  ASSERT_TRUE(RunStream(*h.core, other_id, clip, &rec_id, 4096, &info).ok());
  EXPECT_NE(info.reset_reason.find("stream 'cam'"), std::string::npos) << info.reset_reason;
}

TEST(CoreStreamTest, IdleStreamEndsWithDeadlineExceeded) {
  CoreOptions o;
  o.limits.idle_timeout = std::chrono::milliseconds(100);
  CoreHarness h(OneVersionRepo("core_idle"), o);
  Recorder rec;
  std::shared_ptr<Stream> s;
  StartInfo info;
  ASSERT_TRUE(h.core->OpenStream(FileConfig(), &rec, &s, &info).ok());
  ASSERT_TRUE(rec.WaitEnd());
  EXPECT_EQ(rec.status.code, Code::kDeadlineExceeded) << rec.status.ToString();
  EXPECT_NE(rec.status.message.find("idle"), std::string::npos);
}

// The transport's flow control: a full queue pauses the input and the
// decoder's reads resume it (OnInputSpace). A stream many times the queue
// limit passes whole; without the resume it would stall until its idle
// timeout.
TEST(CoreStreamTest, FullInputQueueResumesTheTransportWhenTheDecoderReads) {
  CoreOptions o;
  o.limits.max_queued_bytes = 2048;
  o.limits.idle_timeout = std::chrono::milliseconds(20000);
  CoreHarness h(OneVersionRepo("core_flow"), o);
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 70);
  ASSERT_GT(clip.size(), 20 * o.limits.max_queued_bytes);
  const auto want = ExpectedWindows(*h.repository->Active("tiny")->model, clip);
  Recorder rec;
  int pauses = 0;
  const ServeStatus st = RunStreamFlowControlled(*h.core, FileConfig(), clip, &rec, 1024,
                                                 std::chrono::seconds(10), &pauses);
  ASSERT_TRUE(st.ok()) << st.ToString();
  EXPECT_GT(pauses, 5);
  EXPECT_EQ(rec.summary.bytes_received, int64_t(clip.size()));
  ASSERT_EQ(rec.windows.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ExpectSameWindow(rec.windows[i], want[i]);
}

TEST(CoreStreamTest, LiveStreamDropsStaleWindowsAsSequenceGaps) {
  auto gate = std::make_unique<GatedBackend>();
  GatedBackend* g = gate.get();
  CoreOptions o;
  o.limits.max_queue_wait = std::chrono::milliseconds(0);  // only the pending bound drops here
  CoreHarness h(OneVersionRepo("core_live_drop"), o, nullptr, std::move(gate));
  // 100 frames -> 50 model frames: 7 windows. Window 0 waits in the engine
  // while the rest are decoded; two may wait, four are dropped.
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 100);
  StreamConfig c = FileConfig("live");
  c.mode = StreamMode::kLive;
  Recorder rec;
  std::shared_ptr<Stream> s;
  StartInfo info;
  ASSERT_TRUE(h.core->OpenStream(c, &rec, &s, &info).ok());
  s->PushChunkBlocking(std::string(clip.begin(), clip.end()));
  s->CloseInput();
  ASSERT_TRUE(g->WaitCalls(1));
  prometheus::Counter* dropped = h.repository->Active("tiny")->series->dropped_windows;
  for (int i = 0; i < 60000 && dropped->Value() < 4; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  g->Open();
  ASSERT_TRUE(rec.WaitEnd());
  ASSERT_TRUE(rec.status.ok());
  ASSERT_EQ(rec.windows.size(), 3u);
  EXPECT_EQ(rec.windows[0].sequence, 0);
  EXPECT_EQ(rec.windows[1].sequence, 5);
  EXPECT_EQ(rec.windows[1].dropped_before, 4);
  EXPECT_EQ(rec.windows[2].sequence, 6);
  EXPECT_EQ(rec.summary.dropped_windows, 4);
}

TEST(CoreStreamTest, LimitsRefuseStreamsWithClearStatuses) {
  CoreOptions o;
  o.max_streams = 1;
  o.limits.max_frame_pixels = 1000;  // below 64x48
  CoreHarness h(OneVersionRepo("core_limits"), o);
  StreamConfig unknown = FileConfig();
  unknown.model_name = "nope";
  Recorder r0;
  std::shared_ptr<Stream> s;
  StartInfo info;
  EXPECT_EQ(h.core->OpenStream(unknown, &r0, &s, &info).code, Code::kNotFound);
  StreamConfig bad_events = FileConfig();
  bad_events.events.exit_threshold = 2;
  EXPECT_EQ(h.core->OpenStream(bad_events, &r0, &s, &info).code, Code::kInvalidArgument);

  Recorder r1;
  ASSERT_TRUE(h.core->OpenStream(FileConfig("one"), &r1, &s, &info).ok());
  Recorder r2;
  std::shared_ptr<Stream> s2;
  EXPECT_EQ(h.core->OpenStream(FileConfig("two"), &r2, &s2, &info).code, Code::kResourceExhausted);
  // The frame-size guard: 64x48 is above this server's 1000-pixel limit.
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 10);
  s->PushChunkBlocking(std::string(clip.begin(), clip.end()));
  s->CloseInput();
  ASSERT_TRUE(r1.WaitEnd());
  EXPECT_EQ(r1.status.code, Code::kResourceExhausted) << r1.status.ToString();
  const std::string text = h.metrics.Serialize();
  EXPECT_NE(text.find("billnet_refused_streams_total{reason=\"limit\"} 1"), std::string::npos);
  EXPECT_NE(text.find("billnet_refused_streams_total{reason=\"unknown_model\"} 1"),
            std::string::npos);
}

TEST(CoreStreamTest, DrainEndsLiveStreamsAndFinishesFileStreams) {
  CoreHarness h(OneVersionRepo("core_drain"));
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 40);
  const auto want = ExpectedWindows(*h.repository->Active("tiny")->model, clip);
  Recorder live, file;
  std::shared_ptr<Stream> ls, fs;
  StartInfo info;
  StreamConfig lc = FileConfig("live");
  lc.mode = StreamMode::kLive;
  ASSERT_TRUE(h.core->OpenStream(lc, &live, &ls, &info).ok());
  ASSERT_TRUE(h.core->OpenStream(FileConfig("file"), &file, &fs, &info).ok());
  // Half of each clip has arrived when the drain starts.
  const size_t half = clip.size() / 2;
  ls->PushChunkBlocking(std::string(clip.begin(), clip.begin() + half));
  fs->PushChunkBlocking(std::string(clip.begin(), clip.begin() + half));
  h.core->BeginDrain();
  Recorder r3;
  std::shared_ptr<Stream> s3;
  EXPECT_EQ(h.core->OpenStream(FileConfig("late"), &r3, &s3, &info).code, Code::kUnavailable);
  ASSERT_TRUE(live.WaitEnd());
  EXPECT_EQ(live.status.code, Code::kUnavailable) << live.status.ToString();
  for (const auto& w : live.windows) EXPECT_FALSE(w.padded);
  fs->PushChunkBlocking(std::string(clip.begin() + half, clip.end()));
  fs->CloseInput();
  ASSERT_TRUE(file.WaitEnd());
  EXPECT_TRUE(file.status.ok());
  ASSERT_EQ(file.windows.size(), want.size());
  EXPECT_TRUE(h.core->WaitForStreams(Clock::now() + std::chrono::seconds(30)));
}

// When the drain's deadline passes, the streams still running are cut with
// UNAVAILABLE (resume elsewhere with the token), never CANCELLED (which
// means the client gave up).
TEST(CoreStreamTest, StreamsCutAtShutdownEndUnavailable) {
  CoreHarness h(OneVersionRepo("core_cut"));
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 40);
  Recorder file;
  std::shared_ptr<Stream> fs;
  StartInfo info;
  ASSERT_TRUE(h.core->OpenStream(FileConfig("file"), &file, &fs, &info).ok());
  fs->PushChunkBlocking(std::string(clip.begin(), clip.begin() + clip.size() / 2));
  h.core->BeginDrain();
  h.core->CancelAll("server shut down before the stream finished");
  ASSERT_TRUE(file.WaitEnd());
  EXPECT_EQ(file.status.code, Code::kUnavailable) << file.status.ToString();
  EXPECT_NE(file.status.message.find("shut down"), std::string::npos);
}

// ---- Load shedding: drop by age, skip to a key frame (live streams only) ----

// Waits (up to a minute) until `c` reaches `value`.
bool WaitCounter(prometheus::Counter* c, double value) {
  for (int i = 0; i < 60000 && c->Value() < value; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  return c->Value() >= value;
}

CoreOptions AgeDropOptions() {
  CoreOptions o;
  o.limits.max_queue_wait = std::chrono::milliseconds(300);
  o.limits.max_pending_windows_live = 100;  // no drop by count: only by age
  o.limits.max_live_lag = std::chrono::milliseconds(0);
  return o;
}

// Window 0 is held in the engine while the first 3/4 of the clip is decoded;
// those windows then wait longer than the budget. The rest arrives after the
// engine is released, so its windows are fresh.
void RunWithAgedWindows(CoreHarness& h, GatedBackend* gate, const StreamConfig& config,
                        const std::vector<uint8_t>& clip, Recorder* rec) {
  std::shared_ptr<Stream> s;
  StartInfo info;
  ASSERT_TRUE(h.core->OpenStream(config, rec, &s, &info).ok());
  const size_t part = clip.size() * 3 / 4;
  s->PushChunkBlocking(std::string(clip.begin(), clip.begin() + part));
  ASSERT_TRUE(gate->WaitCalls(1));
  ModelSeries* series = h.repository->Active("tiny")->series;
  if (config.mode == StreamMode::kLive) {
    // 64 source frames: model frames 0..31, windows 0..3 are ready.
    ASSERT_TRUE(WaitCounter(series->frames, 64));
  }
  std::this_thread::sleep_for(2 * h.core->options().limits.max_queue_wait);
  gate->Open();
  if (config.mode == StreamMode::kLive) {
    ASSERT_TRUE(WaitCounter(series->dropped_windows, 1));
  }
  s->PushChunkBlocking(std::string(clip.begin() + part, clip.end()));
  s->CloseInput();
  ASSERT_TRUE(rec->WaitEnd());
}

TEST(CoreStreamTest, LiveWindowsOlderThanTheQueueBudgetAreDroppedAndCounted) {
  auto gate = std::make_unique<GatedBackend>();
  GatedBackend* g = gate.get();
  CoreHarness h(OneVersionRepo("core_age_drop"), AgeDropOptions(), nullptr, std::move(gate));
  const Model& model = *h.repository->Active("tiny")->model;
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 100);  // 7 windows
  const size_t all = ExpectedWindows(model, clip).size();
  ASSERT_EQ(all, 7u);
  StreamConfig c = FileConfig("live");
  c.mode = StreamMode::kLive;
  Recorder rec;
  RunWithAgedWindows(h, g, c, clip, &rec);
  ASSERT_TRUE(rec.status.ok()) << rec.status.ToString();
  std::set<int64_t> dropped;
  for (int64_t i = 0; i < int64_t(all); ++i) dropped.insert(i);
  for (const auto& w : rec.windows) dropped.erase(w.sequence);
  // Window 0 ran; window 1 waited behind it past the budget; the tail is fresh.
  ASSERT_FALSE(rec.windows.empty());
  EXPECT_EQ(rec.windows.front().sequence, 0);
  EXPECT_EQ(rec.windows.back().sequence, int64_t(all) - 1);
  EXPECT_TRUE(dropped.count(1));
  EXPECT_EQ(rec.summary.dropped_windows, int64_t(dropped.size()));
  EXPECT_EQ(h.repository->Active("tiny")->series->dropped_windows->Value(), double(dropped.size()));
  // Gaps the client sees, and the state goes on from the last window run.
  const auto want = ExpectedWindows(model, clip, "", 0, dropped);
  int64_t previous = -1;
  for (const auto& w : rec.windows) {
    EXPECT_EQ(w.dropped_before, w.sequence - previous - 1) << "window " << w.sequence;
    EXPECT_FALSE(w.state_reset);
    ExpectSameWindow(w, want[w.sequence]);
    previous = w.sequence;
  }
}

TEST(CoreStreamTest, FileStreamWindowsAreNeverDroppedByAge) {
  auto gate = std::make_unique<GatedBackend>();
  GatedBackend* g = gate.get();
  CoreHarness h(OneVersionRepo("core_age_file"), AgeDropOptions(), nullptr, std::move(gate));
  const auto clip = EncodeClip(VideoCodec::kMjpeg, "matroska", 100);
  const auto want = ExpectedWindows(*h.repository->Active("tiny")->model, clip);
  Recorder rec;
  RunWithAgedWindows(h, g, FileConfig("file"), clip, &rec);
  ASSERT_TRUE(rec.status.ok()) << rec.status.ToString();
  ASSERT_EQ(rec.windows.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ExpectSameWindow(rec.windows[i], want[i]);
  EXPECT_EQ(rec.summary.dropped_windows, 0);
  EXPECT_EQ(h.repository->Active("tiny")->series->dropped_windows->Value(), 0);
}

// H.264 (x264 veryfast, B-frames) in Matroska, EncodeClip's frames at 12 fps,
// with a key frame every `gop` frames.
std::vector<uint8_t> EncodeGopClip(int frames, int gop) {
  constexpr int kWidth = 64, kHeight = 48;
  constexpr double kFps = 12;
  const std::vector<uint8_t> rgb = testing::ClipFrames(frames, kWidth, kHeight, 0, 1);
  media::EncoderOptions o;
  o.codec = VideoCodec::kH264;
  o.container = "matroska";
  o.width = kWidth;
  o.height = kHeight;
  o.fps = kFps;
  o.time_base_den = 1000;
  o.gop = gop;
  media::MemoryByteSink sink(false);
  auto enc = media::VideoEncoder::Open(&sink, o);
  EXPECT_TRUE(enc.ok()) << enc.status().ToString();
  if (!enc.ok()) return {};
  const size_t fb = size_t(kWidth) * kHeight * 3;
  std::vector<uint8_t> frame(fb + 4096);  // slack for swscale's readers (see EncodeClip)
  for (int i = 0; i < frames; ++i) {
    std::copy_n(rgb.data() + fb * i, fb, frame.data());
    EXPECT_TRUE((*enc)->AddFrame(frame.data(), 0, double(i) / kFps).ok());
  }
  EXPECT_TRUE((*enc)->Finish().ok());
  enc->reset();
  return sink.Take();
}

// The decode thread's clock for the live lag: it keeps pace with a 12 fps
// source (one call per decoded frame) and jumps `jump_s` ahead at call
// `jump_at`, as if decoding had stalled that long.
struct JumpingClock {
  JumpingClock(int jump_at, double jump_s) : jump_at(jump_at), jump_s(jump_s) {}
  Clock::time_point Now() {
    const int n = calls++;
    const double t = n / 12.0 + (n >= jump_at ? jump_s : 0.0);
    return base + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(t));
  }
  const int jump_at;
  const double jump_s;
  const Clock::time_point base = Clock::now();
  std::atomic<int> calls{0};
};

CoreOptions SkipOptions(const std::shared_ptr<JumpingClock>& clock) {
  CoreOptions o;
  o.limits.max_live_lag = std::chrono::milliseconds(1000);
  o.limits.max_queue_wait = std::chrono::milliseconds(0);  // no drop by age
  o.limits.max_pending_windows_live = 100;                 // nor by count
  o.live_clock = [clock] { return clock->Now(); };
  return o;
}

// 96 frames (8 s) with key frames at 0, 2, 4 and 6 s. The clock keeps pace
// until frame 40 (3.33 s) is decoded, then it is 3 s ahead: the decoder is 3
// s behind real time, more than the 1 s bound, so it skips to the first key
// frame at or after 3.33 + 3 - 0.5 s (half the bound behind; x264 places it
// near 6 s).
// Windows 0 and 1 (model frames 0..15) ran before; the partial window 2 and
// the windows the skipped time would have filled are dropped; the windows
// after the key frame run on the state the last window left.
TEST(CoreStreamTest, LiveDecoderBehindRealTimeSkipsToAKeyFrame) {
  constexpr int kFrames = 96, kJumpAt = 40;
  constexpr double kJump = 3.0;
  auto clock = std::make_shared<JumpingClock>(kJumpAt, kJump);
  CoreHarness h(OneVersionRepo("core_live_skip"), SkipOptions(clock));
  const auto clip = EncodeGopClip(kFrames, 24);
  ModelHandle handle = h.repository->Active("tiny");
  const Model& model = *handle->model;
  const TopologyConfig& topo = model.info().topology;
  ASSERT_EQ(topo.frames, 8);
  ASSERT_EQ(model.info().frame_rate, 6);

  StreamConfig c = FileConfig("cam");
  c.mode = StreamMode::kLive;
  Recorder rec;
  std::shared_ptr<Stream> s;
  StartInfo info;
  ASSERT_TRUE(h.core->OpenStream(c, &rec, &s, &info).ok());
  // One chunk: the decoder never waits for input, so its anchor stays.
  s->PushChunkBlocking(std::string(clip.begin(), clip.end()));
  s->CloseInput();
  ASSERT_TRUE(rec.WaitEnd());
  ASSERT_TRUE(rec.status.ok()) << rec.status.ToString();

  // Every source frame was decoded or skipped, and the skip is counted.
  const StreamSummary& sum = rec.summary;
  EXPECT_GT(sum.skipped_frames, 0);
  EXPECT_EQ(sum.source_frames + sum.skipped_frames + sum.undecoded_frames, kFrames);
  EXPECT_EQ(handle->series->skipped_frames->Value(), double(sum.skipped_frames));
  EXPECT_NE(h.metrics.Serialize().find("billnet_skipped_frames_total{model=\"tiny\",stage=\"s5\","
                                       "version=\"1\"} " +
                                       std::to_string(sum.skipped_frames)),
            std::string::npos);

  // Every source frame at the model's geometry (a decode at the source's 12
  // fps), to check the pixels: model frame i of a window is the source frame
  // 2i after its first (6 fps).
  media::MemoryByteSource source(std::span<const uint8_t>(clip), true);
  auto full = media::DecodeSourceToModelFrames(&source, {topo.height, topo.width, 12.0});
  ASSERT_TRUE(full.ok()) << full.status().ToString();
  const auto index_of = [&](double ts) {
    for (int i = 0; i < full->frames; ++i)
      if (std::fabs(full->source_ts[i] - ts) < 1e-6) return i;
    return -1;
  };

  // Windows 0 and 1 before the skip, a gap, then well-formed windows from
  // the key frame on (consecutive model frames of the source, the last one
  // padded), whose results are the engine's with the state carried on from
  // window 1 (no reset).
  ASSERT_GE(rec.windows.size(), 3u);
  EXPECT_EQ(rec.windows[0].sequence, 0);
  EXPECT_EQ(rec.windows[1].sequence, 1);
  const double skip_target = kJumpAt / 12.0 + kJump - 0.5;
  Session session(handle->model);
  const size_t fb = full->frame_bytes();
  int64_t previous = -1, gaps = 0, dropped = 0;
  for (size_t k = 0; k < rec.windows.size(); ++k) {
    const WindowOutput& w = rec.windows[k];
    SCOPED_TRACE("window " + std::to_string(w.sequence));
    EXPECT_EQ(w.dropped_before, w.sequence - previous - 1);
    dropped += w.dropped_before;
    if (w.dropped_before > 0) {
      ++gaps;
      EXPECT_GE(w.first_source_ts, skip_target - 1e-3);  // at the key frame it skipped to
    }
    EXPECT_FALSE(w.state_reset);
    EXPECT_EQ(w.frames, topo.frames);
    EXPECT_EQ(w.padded, k + 1 == rec.windows.size() && w.real_frames < topo.frames);
    const int first = index_of(w.first_source_ts);
    ASSERT_GE(first, 0);
    const int last = first + 2 * (w.real_frames - 1);
    ASSERT_LT(last, full->frames);
    std::vector<uint8_t> pixels(fb * topo.frames);
    for (int i = 0; i < topo.frames; ++i)
      std::copy_n(full->rgb.data() + fb * (first + 2 * std::min(i, w.real_frames - 1)), fb,
                  pixels.data() + fb * i);
    testing::ExpectedWindow want;
    want.sequence = w.sequence;
    want.padded = w.real_frames < topo.frames;
    want.real_frames = w.real_frames;
    want.first_ts = full->source_ts[first];
    want.last_ts = full->source_ts[last];
    ASSERT_TRUE(session.Run(pixels.data(), pixels.size(), &want.response).ok());
    ExpectSameWindow(w, want);
    previous = w.sequence;
  }
  EXPECT_EQ(gaps, 1);
  EXPECT_EQ(sum.dropped_windows, dropped);
  EXPECT_EQ(handle->series->dropped_windows->Value(), double(dropped));
}

TEST(CoreStreamTest, FileStreamNeverSkipsHoweverFarBehind) {
  auto clock = std::make_shared<JumpingClock>(10, 30.0);
  CoreHarness h(OneVersionRepo("core_file_noskip"), SkipOptions(clock));
  const auto clip = EncodeGopClip(96, 24);
  const auto want = ExpectedWindows(*h.repository->Active("tiny")->model, clip);
  Recorder rec;
  std::shared_ptr<Stream> s;
  StartInfo info;
  ASSERT_TRUE(h.core->OpenStream(FileConfig("file"), &rec, &s, &info).ok());
  s->PushChunkBlocking(std::string(clip.begin(), clip.end()));
  s->CloseInput();
  ASSERT_TRUE(rec.WaitEnd());
  ASSERT_TRUE(rec.status.ok()) << rec.status.ToString();
  EXPECT_EQ(rec.summary.skipped_frames, 0);
  EXPECT_EQ(rec.summary.source_frames + rec.summary.undecoded_frames, 96);
  ASSERT_EQ(rec.windows.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) ExpectSameWindow(rec.windows[i], want[i]);
}

}  // namespace
}  // namespace billnet::server
