// Streams through the server core (no sockets): results equal the engine run
// directly on media/'s windows, state across windows, concurrency, bad input,
// injected failures, hot swap, pinning, state tokens, limits, drain.
#include <gtest/gtest.h>
#include <prometheus/counter.h>

#include <atomic>
#include <cmath>
#include <condition_variable>
#include <thread>

#include "billnet/media/decoder.h"
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
  EXPECT_EQ(rec.summary.source_frames, 40);
  EXPECT_EQ(rec.summary.model_frames, 20);
  EXPECT_EQ(rec.summary.bytes_received, int64_t(clip.size()));
  EXPECT_FALSE(rec.windows[0].state_token.empty());
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

TEST(CoreStreamTest, ConcurrentStreamsDoNotInterfere) {
  CoreHarness h(OneVersionRepo("core_concurrent"));
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
  Recorder full;
  ASSERT_TRUE(RunStream(*h.core, FileConfig("cam"), clip, &full).ok());
  ASSERT_EQ(full.windows.size(), 6u);

  // First connection: cut after window 1 arrived.
  Recorder first;
  std::shared_ptr<Stream> s;
  StartInfo info;
  ASSERT_TRUE(h.core->OpenStream(FileConfig("cam"), &first, &s, &info).ok());
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
  StreamConfig c = FileConfig("cam");
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
  CoreHarness h(OneVersionRepo("core_live_drop"), {}, nullptr, std::move(gate));
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

}  // namespace
}  // namespace billnet::server
