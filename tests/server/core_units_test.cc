// Units of the server core: state tokens, gesture events, the chunk queue, the
// model repository, metrics exposition.
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/decoding.h"
#include "core/events.h"
#include "core/inference.h"
#include "core/metrics.h"
#include "core/repository.h"
#include "core/token.h"
#include "server_test_util.h"

namespace billnet::server {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;
using testing::WriteTinyVersion;

StateToken SampleToken() {
  StateToken t;
  t.model_name = "tiny";
  t.version = 3;
  t.stage = 5;
  t.stream_id = "cam-1";
  t.next_sequence = 42;
  t.engine_state = {1, 2, 3, 4, 5};
  t.phase.started = true;
  t.phase.t0 = 1.4;
  t.phase.next_tick = 336;
  t.phase.last_taken_ts = 57.3333333;
  t.last_covered_ts = 57.3333333;
  return t;
}

TEST(TokenTest, RoundTripsEveryField) {
  TokenCodec codec(std::vector<uint8_t>(32, 1));
  const StateToken t = SampleToken();
  auto back = codec.Decode(codec.Encode(t));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->model_name, t.model_name);
  EXPECT_EQ(back->version, t.version);
  EXPECT_EQ(back->stage, t.stage);
  EXPECT_EQ(back->stream_id, t.stream_id);
  EXPECT_EQ(back->next_sequence, t.next_sequence);
  EXPECT_EQ(back->engine_state, t.engine_state);
  EXPECT_EQ(back->phase.started, t.phase.started);
  EXPECT_EQ(back->phase.t0, t.phase.t0);
  EXPECT_EQ(back->phase.next_tick, t.phase.next_tick);
  EXPECT_EQ(back->phase.last_taken_ts, t.phase.last_taken_ts);
  EXPECT_EQ(back->last_covered_ts, t.last_covered_ts);
}

TEST(TokenTest, RoundTripsTheEventState) {
  TokenCodec codec(std::vector<uint8_t>(32, 1));
  StateToken t = SampleToken();
  EventDetectorState e;
  e.smoothed = {0.1f, 0.7f, 0.15f, 0.05f};
  e.active = 1;
  e.active_steps = 3;
  e.active_sum = 1.95;
  e.start_s = 10.3333333;
  e.end_s = 11.32;
  e.start_sequence = 40;
  e.end_sequence = 41;
  t.events = e;
  auto back = codec.Decode(codec.Encode(t));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  ASSERT_TRUE(back->events.has_value());
  EXPECT_EQ(back->events->smoothed, e.smoothed);
  EXPECT_EQ(back->events->active, 1);
  EXPECT_EQ(back->events->active_steps, 3);
  EXPECT_EQ(back->events->active_sum, e.active_sum);
  EXPECT_EQ(back->events->start_s, e.start_s);
  EXPECT_EQ(back->events->end_s, e.end_s);
  EXPECT_EQ(back->events->start_sequence, 40);
  EXPECT_EQ(back->events->end_sequence, 41);
  // No open event, no step seen yet.
  t.events = EventDetectorState{};
  back = codec.Decode(codec.Encode(t));
  ASSERT_TRUE(back.ok());
  ASSERT_TRUE(back->events.has_value());
  EXPECT_TRUE(back->events->smoothed.empty());
  EXPECT_EQ(back->events->active, -1);
  // Without an event state.
  t.events.reset();
  back = codec.Decode(codec.Encode(t));
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->events.has_value());
}

// A format-1 token (before the event state: the same fields up to
// last_covered_ts) from a server of the previous release still resumes.
TEST(TokenTest, FormatOneTokensStillDecode) {
  const std::vector<uint8_t> key(32, 1);
  TokenCodec codec(key);
  const std::string v2 = codec.Encode(SampleToken());  // no events: ends "... u8 0 | mac"
  std::string body = v2.substr(0, v2.size() - TokenCodec::kMacBytes - 1);
  ASSERT_EQ(body[4], 2);
  body[4] = 1;
  unsigned char mac[32];
  unsigned int len = 32;
  HMAC(EVP_sha256(), key.data(), int(key.size()), reinterpret_cast<const uint8_t*>(body.data()),
       body.size(), mac, &len);
  auto back = codec.Decode(body + std::string(reinterpret_cast<const char*>(mac), 32));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->next_sequence, 42);
  EXPECT_EQ(back->last_covered_ts, SampleToken().last_covered_ts);
  EXPECT_FALSE(back->events.has_value());
  // Format 3 is unknown.
  body[4] = 3;
  HMAC(EVP_sha256(), key.data(), int(key.size()), reinterpret_cast<const uint8_t*>(body.data()),
       body.size(), mac, &len);
  auto bad = codec.Decode(body + std::string(reinterpret_cast<const char*>(mac), 32));
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("format 3"), std::string::npos);
}

TEST(TokenTest, EveryFlippedByteIsRejected) {
  TokenCodec codec(std::vector<uint8_t>(32, 1));
  const std::string token = codec.Encode(SampleToken());
  for (size_t i = 0; i < token.size(); ++i) {
    std::string bad = token;
    bad[i] = char(bad[i] ^ 0x01);
    EXPECT_FALSE(codec.Decode(bad).ok()) << "byte " << i;
  }
  for (size_t n = 0; n < token.size(); ++n)
    EXPECT_FALSE(codec.Decode(token.substr(0, n)).ok()) << "truncated to " << n;
}

TEST(TokenTest, AnotherKeyDoesNotVerify) {
  TokenCodec a(std::vector<uint8_t>(32, 1)), b(std::vector<uint8_t>(32, 2));
  auto r = b.Decode(a.Encode(SampleToken()));
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("does not verify"), std::string::npos);
}

TEST(TokenTest, KeyFromFileEnvOrRandom) {
  const std::string dir = TempDir("token_key");
  const std::string path = dir + "/key";
  std::ofstream(path) << "0123456789abcdef0123\n";
  auto k = LoadTokenKey(path);
  ASSERT_TRUE(k.ok()) << k.status().ToString();
  EXPECT_EQ(k->key.size(), 20u);
  EXPECT_FALSE(k->ephemeral);
  std::ofstream(dir + "/short") << "short";
  EXPECT_FALSE(LoadTokenKey(dir + "/short").ok());
  EXPECT_FALSE(LoadTokenKey(dir + "/missing").ok());
  ::setenv("BILLNET_TOKEN_KEY_FILE", path.c_str(), 1);
  auto e = LoadTokenKey("");
  ::unsetenv("BILLNET_TOKEN_KEY_FILE");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->key, k->key);
  auto r = LoadTokenKey("");
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->ephemeral);
  EXPECT_EQ(r->key.size(), 32u);
}

// ---- Events ----

Response Steps(const std::vector<std::vector<float>>& probs) {
  Response r;
  r.steps = int(probs.size());
  r.classes = int(probs[0].size());
  for (const auto& p : probs) r.probabilities.insert(r.probabilities.end(), p.begin(), p.end());
  r.scores = r.probabilities;
  return r;
}

std::vector<StepSpan> Spans(int n, double t0, double step) {
  std::vector<StepSpan> s;
  for (int i = 0; i < n; ++i) s.push_back({t0 + i * step, t0 + (i + 1) * step - 0.01});
  return s;
}

const std::vector<std::string> kLabels = {"No gesture", "Swiping Left", "Swiping Right",
                                          "Doing other things"};

TEST(EventsTest, HysteresisGivesOneEventWithItsSpan) {
  EventOptions o;
  o.smoothing = 1.0f;  // no smoothing: the thresholds act on the raw steps
  o.min_duration_s = 0.5f;
  GestureEventDetector d(o, kLabels, 1.0 / 3);
  std::vector<GestureEvent> ev;
  // Background, then Swiping Left rises above 0.6, dips to 0.5 (still above
  // exit 0.4), then falls to 0.1.
  d.AddWindow(0,
              Steps({{0.9f, 0.05f, 0.05f, 0},
                     {0.3f, 0.65f, 0.05f, 0},
                     {0.3f, 0.5f, 0.2f, 0},
                     {0.2f, 0.7f, 0.1f, 0},
                     {0.8f, 0.1f, 0.1f, 0}}),
              Spans(5, 10.0, 1.0 / 3), &ev);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].label, 1);
  EXPECT_EQ(ev[0].label_name, "Swiping Left");
  EXPECT_DOUBLE_EQ(ev[0].start_s, 10.0 + 1.0 / 3);
  EXPECT_DOUBLE_EQ(ev[0].end_s, 10.0 + 4.0 / 3 - 0.01);
  EXPECT_NEAR(ev[0].confidence, (0.65f + 0.5f + 0.7f) / 3, 1e-6);
  EXPECT_EQ(ev[0].start_sequence, 0);
}

TEST(EventsTest, ShortBlipsAndBackgroundClassesMakeNoEvent) {
  EventOptions o;
  o.smoothing = 1.0f;
  o.min_duration_s = 0.5f;
  GestureEventDetector d(o, kLabels, 1.0 / 3);
  std::vector<GestureEvent> ev;
  // One step of Swiping Right (0.33 s < 0.5 s); a long Doing other things.
  d.AddWindow(0,
              Steps({{0.1f, 0.1f, 0.8f, 0},
                     {0.9f, 0, 0.1f, 0},
                     {0, 0.05f, 0.05f, 0.9f},
                     {0, 0.05f, 0.05f, 0.9f},
                     {0, 0.05f, 0.05f, 0.9f}}),
              Spans(5, 0, 1.0 / 3), &ev);
  d.Finish(&ev);
  EXPECT_TRUE(ev.empty());
}

TEST(EventsTest, SmoothingSpansWindowsAndFinishClosesTheOpenEvent) {
  EventOptions o;  // smoothing 0.5
  GestureEventDetector d(o, kLabels, 1.0 / 3);
  std::vector<GestureEvent> ev;
  d.AddWindow(0, Steps({{1, 0, 0, 0}, {0, 0, 1, 0}}), Spans(2, 0, 1.0 / 3), &ev);
  // Smoothed Swiping Right: 0.5 (< 0.6), then 0.75, 0.875: starts at step 2.
  d.AddWindow(1, Steps({{0, 0, 1, 0}, {0, 0, 1, 0}}), Spans(2, 2.0 / 3, 1.0 / 3), &ev);
  EXPECT_TRUE(ev.empty());
  d.Finish(&ev);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].label, 2);
  EXPECT_EQ(ev[0].start_sequence, 1);
  EXPECT_DOUBLE_EQ(ev[0].start_s, 2.0 / 3);
}

TEST(EventsTest, AnotherGestureOvertakes) {
  EventOptions o;
  o.smoothing = 1.0f;
  o.min_duration_s = 0;
  o.enter_threshold = 0.5f;
  GestureEventDetector d(o, kLabels, 1.0 / 3);
  std::vector<GestureEvent> ev;
  d.AddWindow(0, Steps({{0, 0.7f, 0.3f, 0}, {0, 0.45f, 0.55f, 0}, {0, 0.3f, 0.7f, 0}}),
              Spans(3, 0, 1), &ev);
  d.Finish(&ev);
  ASSERT_EQ(ev.size(), 2u);
  EXPECT_EQ(ev[0].label, 1);  // ended when Swiping Right passed 0.5 above it
  EXPECT_DOUBLE_EQ(ev[0].end_s, 1 - 0.01);
  EXPECT_EQ(ev[1].label, 2);
  EXPECT_DOUBLE_EQ(ev[1].start_s, 1);
  EXPECT_DOUBLE_EQ(ev[1].end_s, 3 - 0.01);
}

// A detector that imports another's state after window 0 gives the events
// the first one gives for window 1 and at the end: an open event crosses the
// boundary (what a resumed stream's token carries).
TEST(EventsTest, ExportedStateContinuesInAnotherDetector) {
  EventOptions o;  // smoothing 0.5
  o.min_duration_s = 0;
  const auto w0 = Steps({{1, 0, 0, 0}, {0, 0, 1, 0}, {0, 0, 1, 0}});
  const auto w1 = Steps({{0, 0, 1, 0}, {0, 1, 0, 0}, {0, 1, 0, 0}, {1, 0, 0, 0}, {1, 0, 0, 0}});
  GestureEventDetector whole(o, kLabels, 1.0 / 3);
  std::vector<GestureEvent> want;
  whole.AddWindow(0, w0, Spans(3, 0, 1.0 / 3), &want);
  const EventDetectorState mid = whole.ExportState();
  EXPECT_EQ(mid.active, 2);  // Swiping Right is open at the boundary
  whole.AddWindow(1, w1, Spans(5, 1, 1.0 / 3), &want);
  whole.Finish(&want);

  GestureEventDetector resumed(o, kLabels, 1.0 / 3);
  ASSERT_TRUE(resumed.ImportState(mid).ok());
  std::vector<GestureEvent> got;
  resumed.AddWindow(1, w1, Spans(5, 1, 1.0 / 3), &got);
  resumed.Finish(&got);
  ASSERT_EQ(got.size(), want.size());
  ASSERT_GE(got.size(), 2u);
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].label, want[i].label);
    EXPECT_EQ(got[i].label_name, want[i].label_name);
    EXPECT_EQ(got[i].start_s, want[i].start_s);
    EXPECT_EQ(got[i].end_s, want[i].end_s);
    EXPECT_EQ(got[i].confidence, want[i].confidence);
    EXPECT_EQ(got[i].start_sequence, want[i].start_sequence);
    EXPECT_EQ(got[i].end_sequence, want[i].end_sequence);
  }
  EXPECT_EQ(got[0].start_sequence, 0);  // the event opened before the resume
  // A fresh detector gives a different result (the test can tell).
  GestureEventDetector fresh(o, kLabels, 1.0 / 3);
  std::vector<GestureEvent> restart;
  fresh.AddWindow(1, w1, Spans(5, 1, 1.0 / 3), &restart);
  fresh.Finish(&restart);
  EXPECT_TRUE(restart.empty() || restart[0].start_sequence == 1);

  // States that do not fit are refused and change nothing.
  EventDetectorState wrong = mid;
  wrong.smoothed.push_back(0);
  EXPECT_FALSE(resumed.ImportState(wrong).ok());
  wrong = mid;
  wrong.active = 4;
  EXPECT_FALSE(resumed.ImportState(wrong).ok());
  wrong = mid;
  wrong.smoothed[0] = 2;
  EXPECT_FALSE(resumed.ImportState(wrong).ok());
  wrong = mid;
  wrong.active = -2;
  EXPECT_FALSE(resumed.ImportState(wrong).ok());
}

TEST(EventsTest, OptionsAreValidated) {
  EventOptions o;
  EXPECT_TRUE(ValidateEventOptions(o).ok());
  o.exit_threshold = 0.9f;
  EXPECT_FALSE(ValidateEventOptions(o).ok());
  o = EventOptions{};
  o.smoothing = 0;
  EXPECT_FALSE(ValidateEventOptions(o).ok());
  o = EventOptions{};
  o.enter_threshold = 1.5f;
  EXPECT_FALSE(ValidateEventOptions(o).ok());
}

TEST(EventsTest, StepSpansCoverRealFramesOnly) {
  // 8 frames, 4 steps; 5 real frames: steps 0..2 are real.
  const auto s = StepSpans(4, 8, {0, 1, 2, 3, 4});
  ASSERT_EQ(s.size(), 3u);
  EXPECT_EQ(s[0].start_s, 0);
  EXPECT_EQ(s[0].end_s, 1);
  EXPECT_EQ(s[2].start_s, 4);
  EXPECT_EQ(s[2].end_s, 4);
}

// ---- Chunk queue ----

TEST(ChunkQueueTest, ReadsAcrossChunksThenEnds) {
  ChunkQueue q(1 << 20, std::chrono::milliseconds(0));
  EXPECT_TRUE(q.Push("abc"));
  EXPECT_TRUE(q.Push("defg"));
  q.Close();
  uint8_t buf[5];
  auto n = q.Read(buf, 5);  // at most one chunk per read
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 3u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 3), "abc");
  n = q.Read(buf, 2);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 2), "de");
  n = q.Read(buf, 5);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(std::string(reinterpret_cast<char*>(buf), 2), "fg");
  n = q.Read(buf, 5);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(q.bytes_received(), 7);
}

TEST(ChunkQueueTest, FullQueueAsksForSpaceAndCallsBack) {
  ChunkQueue q(4, std::chrono::milliseconds(0));
  int called = 0;
  q.SetSpaceCallback([&] { ++called; });
  EXPECT_TRUE(q.Push("ab"));
  EXPECT_FALSE(q.Push("cdef"));  // 6 bytes >= 4
  uint8_t buf[8];
  ASSERT_TRUE(q.Read(buf, 1).ok());  // takes "ab": "cdef" is still queued
  ASSERT_TRUE(q.Read(buf, 8).ok());
  EXPECT_EQ(called, 0);
  ASSERT_TRUE(q.Read(buf, 8).ok());  // takes "cdef": room again
  EXPECT_EQ(called, 1);
}

TEST(ChunkQueueTest, AbortStopsAPartlyReadChunk) {
  ChunkQueue q(16, std::chrono::milliseconds(0));
  EXPECT_TRUE(q.Push("abcdef"));
  uint8_t buf[2];
  auto n = q.Read(buf, 2);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 2u);
  q.Abort(Cancelled("client went away"));
  n = q.Read(buf, 2);  // "cdef" is not returned
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("client went away"), std::string::npos);
}

TEST(ChunkQueueTest, AbortBreaksABlockedRead) {
  ChunkQueue q(16, std::chrono::milliseconds(0));
  std::thread t([&] { q.Abort(Cancelled("client went away")); });
  uint8_t buf[4];
  auto n = q.Read(buf, 4);
  t.join();
  ASSERT_FALSE(n.ok());
  EXPECT_NE(n.status().message().find("client went away"), std::string::npos);
}

TEST(ChunkQueueTest, IdleTimeoutExpires) {
  ChunkQueue q(16, std::chrono::milliseconds(20));
  uint8_t buf[4];
  auto n = q.Read(buf, 4);
  EXPECT_FALSE(n.ok());
  EXPECT_TRUE(q.idle_expired());
}

// ---- InferencePool batching ----

// Records each batch's size; every batch waits until released. The record
// outlives the backend (the pool owns and destroys it).
struct BatchRecord {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<size_t> sizes;
  bool released = false;

  void WaitForBatches(size_t n) {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return sizes.size() >= n; });
  }
  void Release() {
    std::lock_guard<std::mutex> lock(mu);
    released = true;
    cv.notify_all();
  }
};

class RecordingBackend : public InferenceBackend {
 public:
  explicit RecordingBackend(std::shared_ptr<BatchRecord> record) : record_(std::move(record)) {}
  void RunBatch(Session* const*, const uint8_t* const*, size_t count, Response*,
                Status* statuses) override {
    std::unique_lock<std::mutex> lock(record_->mu);
    record_->sizes.push_back(count);
    record_->cv.notify_all();
    record_->cv.wait(lock, [&] { return record_->released; });
    for (size_t i = 0; i < count; ++i) statuses[i] = Status::Ok();
  }

 private:
  std::shared_ptr<BatchRecord> record_;
};

// Windows that queue while the pool's threads are busy run together, up to
// max_batch per batch, each reported once.
TEST(InferencePoolTest, WindowsQueuedWhileBusyRunInBatchesOfAtMostMaxBatch) {
  for (const int max_batch : {8, 2}) {
    SCOPED_TRACE("max_batch " + std::to_string(max_batch));
    auto record = std::make_shared<BatchRecord>();
    std::atomic<int> done{0};
    {
      InferencePoolOptions o;
      o.threads = 1;
      o.max_batch = max_batch;
      o.batch_wait = std::chrono::microseconds(0);
      InferencePool pool(o, std::make_unique<RecordingBackend>(record));
      const auto job = [&] {
        InferenceJob j;
        j.done = [&](Status s, Response, const InferenceTimes& t) {
          EXPECT_TRUE(s.ok());
          EXPECT_GE(t.batch_size, 1);
          ++done;
        };
        return j;
      };
      pool.Submit(job());
      record->WaitForBatches(1);  // the thread is busy with the first window
      for (int i = 0; i < 5; ++i) pool.Submit(job());
      record->Release();
    }  // the destructor runs what is queued
    EXPECT_EQ(done.load(), 6);
    const std::vector<size_t> want =
        max_batch == 8 ? std::vector<size_t>{1, 5} : std::vector<size_t>{1, 2, 2, 1};
    std::lock_guard<std::mutex> lock(record->mu);
    EXPECT_EQ(record->sizes, want);
  }
}

// A thread that starts while another pool thread runs takes one window: it
// gets no engine helpers then, so a batch would run its windows one after
// another (decision 24). Alone again, it batches.
TEST(InferencePoolTest, AThreadStartingWhileAnotherRunsTakesOneWindow) {
  auto record = std::make_shared<BatchRecord>();
  std::atomic<int> done{0};
  {
    InferencePoolOptions o;
    o.threads = 2;
    o.max_batch = 8;
    o.batch_wait = std::chrono::microseconds(0);
    InferencePool pool(o, std::make_unique<RecordingBackend>(record));
    const auto job = [&] {
      InferenceJob j;
      j.done = [&](Status s, Response, const InferenceTimes&) {
        EXPECT_TRUE(s.ok());
        ++done;
      };
      return j;
    };
    pool.Submit(job());
    record->WaitForBatches(1);  // one thread runs (blocked in the backend)
    for (int i = 0; i < 3; ++i) pool.Submit(job());
    record->WaitForBatches(2);  // the other thread took what it may
    {
      std::lock_guard<std::mutex> lock(record->mu);
      EXPECT_EQ(record->sizes[1], 1u);
      EXPECT_EQ(pool.queued(), 2u);
    }
    record->Release();
  }
  EXPECT_EQ(done.load(), 4);
  std::lock_guard<std::mutex> lock(record->mu);
  size_t windows = 0;
  for (size_t n : record->sizes) windows += n;
  EXPECT_EQ(windows, 4u);
}

// The engine's helper threads go to one run at a time (decision 24).
TEST(HelperGateTest, LendsThePoolToOneRunAtATime) {
  ThreadPool helpers(1);
  HelperGate gate;
  EXPECT_EQ(gate.Enter(&helpers), &helpers);  // alone: the run splits over the helpers
  EXPECT_EQ(gate.Enter(&helpers), nullptr);   // a second run meanwhile: its own thread only
  gate.Leave();
  EXPECT_EQ(gate.Enter(&helpers), nullptr);   // still another run under way
  EXPECT_EQ(gate.running(), 2);
  gate.Leave();
  gate.Leave();
  EXPECT_EQ(gate.running(), 0);
  EXPECT_EQ(gate.Enter(&helpers), &helpers);  // alone again
  gate.Leave();
  EXPECT_EQ(gate.Enter(nullptr), nullptr);    // no helpers configured
  gate.Leave();
}

// ---- Repository ----

TEST(RepositoryTest, ActivatesTheHighestCompleteVersionAtTheDefaultStage) {
  const std::string repo = TempDir("repo_init");
  WriteTinyVersion(repo, "tiny", 1, 1);
  WriteTinyVersion(repo, "tiny", 2, 2);
  WriteTinyVersion(repo, "tiny", 3, 3, {1, 5});  // incomplete
  fs::create_directories(repo + "/tiny/notaversion");
  Metrics metrics;
  ModelRepository r({repo, "", Stage::kS5, {}}, &metrics);
  ASSERT_TRUE(r.Init().ok());
  ModelHandle a = r.Active("tiny");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->key.ToString(), "tiny/2/s5");
  EXPECT_EQ(r.default_model(), "tiny");
  auto list = r.List();
  ASSERT_EQ(list.size(), 1u);
  ASSERT_EQ(list[0].versions.size(), 3u);
  EXPECT_TRUE(list[0].versions[1].complete);
  EXPECT_FALSE(list[0].versions[2].complete);
  // Pinned resolution loads on demand; the incomplete version's S1 is loadable.
  auto pinned = r.Resolve("tiny", 3, Stage::kS1);
  ASSERT_TRUE(pinned.ok()) << pinned.status().ToString();
  EXPECT_EQ((*pinned)->key.ToString(), "tiny/3/s1");
  auto stage_only = r.Resolve("", 0, Stage::kS3);
  ASSERT_TRUE(stage_only.ok());
  EXPECT_EQ((*stage_only)->key.ToString(), "tiny/2/s3");
  EXPECT_EQ(r.Resolve("nope", 0, std::nullopt).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.Resolve("../etc", 1, Stage::kS5).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(r.Resolve("tiny", 9, Stage::kS5).status().code(), StatusCode::kNotFound);
}

TEST(RepositoryTest, BadFileIsRejectedAndTheActiveModelStays) {
  const std::string repo = TempDir("repo_bad");
  WriteTinyVersion(repo, "tiny", 1, 1);
  WriteTinyVersion(repo, "tiny", 2, 2);
  // Damage version 2's S5 after the fact: Init falls back to version 1.
  std::ofstream(testing::ModelPath(repo, "tiny", 2, 5), std::ios::binary | std::ios::trunc)
      << "not a model";
  Metrics metrics;
  ModelRepository r({repo, "", Stage::kS5, {}}, &metrics);
  ASSERT_TRUE(r.Init().ok());
  EXPECT_EQ(r.Active("tiny")->key.ToString(), "tiny/1/s5");
  const uint64_t g = r.generation();
  auto act = r.Activate("tiny", 2, Stage::kS5);
  EXPECT_FALSE(act.ok());
  EXPECT_EQ(r.Active("tiny")->key.ToString(), "tiny/1/s5");
  EXPECT_EQ(r.generation(), g);
  const std::string text = metrics.Serialize();
  EXPECT_NE(
      text.find("billnet_model_load_failures_total{model=\"tiny\",stage=\"s5\",version=\"2\"}"),
      std::string::npos)
      << text;
}

TEST(RepositoryTest, ActivateSwapsAndUnloadKeepsTheActive) {
  const std::string repo = TempDir("repo_activate");
  WriteTinyVersion(repo, "tiny", 1, 1);
  WriteTinyVersion(repo, "tiny", 2, 2);
  Metrics metrics;
  ModelRepository r({repo, "", Stage::kS5, {}}, &metrics);
  ASSERT_TRUE(r.Init().ok());
  const uint64_t g = r.generation();
  auto act = r.Activate("tiny", 1, Stage::kS3);
  ASSERT_TRUE(act.ok());
  EXPECT_EQ(act->first->key.ToString(), "tiny/2/s5");
  EXPECT_EQ(act->second->key.ToString(), "tiny/1/s3");
  EXPECT_NE(r.generation(), g);
  EXPECT_FALSE(r.Unload({"tiny", 1, Stage::kS3}).ok());
  EXPECT_TRUE(r.Unload({"tiny", 2, Stage::kS5}).ok());
  EXPECT_FALSE(r.Unload({"tiny", 2, Stage::kS5}).ok());
  // version 0: back to following the latest, at the active stage.
  act = r.Activate("tiny", 0, std::nullopt);
  ASSERT_TRUE(act.ok());
  EXPECT_EQ(act->second->key.ToString(), "tiny/2/s3");
}

TEST(RepositoryTest, RescanPicksUpANewVersionAndSkipsABadOne) {
  const std::string repo = TempDir("repo_poll");
  WriteTinyVersion(repo, "tiny", 1, 1);
  Metrics metrics;
  ModelRepository r({repo, "", Stage::kS5, {}}, &metrics);
  ASSERT_TRUE(r.Init().ok());
  WriteTinyVersion(repo, "tiny", 2, 2);
  std::ofstream(testing::ModelPath(repo, "tiny", 2, 5), std::ios::binary | std::ios::trunc)
      << "half-written";
  const std::string failures_v2 =
      "billnet_model_load_failures_total{model=\"tiny\",stage=\"s5\",version=\"2\"} ";
  // The first pass that sees a file only creates its series (exported at 0);
  // the next one loads it, so a failure goes from 0 to 1.
  r.Rescan();
  EXPECT_NE(metrics.Serialize().find(failures_v2 + "0"), std::string::npos);
  r.Rescan();
  EXPECT_EQ(r.Active("tiny")->key.ToString(), "tiny/1/s5");
  EXPECT_NE(metrics.Serialize().find(failures_v2 + "1"), std::string::npos);
  r.Rescan();  // not retried until the file changes
  EXPECT_NE(metrics.Serialize().find(failures_v2 + "1"), std::string::npos);
  WriteTinyVersion(repo, "tiny", 3, 3);
  r.Rescan();
  EXPECT_EQ(r.Active("tiny")->key.ToString(), "tiny/1/s5");
  r.Rescan();
  EXPECT_EQ(r.Active("tiny")->key.ToString(), "tiny/3/s5");
  // A pinned activation is not overridden by polling.
  ASSERT_TRUE(r.Activate("tiny", 1, std::nullopt).ok());
  WriteTinyVersion(repo, "tiny", 4, 4);
  r.Rescan();
  r.Rescan();
  EXPECT_EQ(r.Active("tiny")->key.ToString(), "tiny/1/s5");
}

TEST(RepositoryTest, PollingThreadActivatesNewVersions) {
  const std::string repo = TempDir("repo_poll_thread");
  WriteTinyVersion(repo, "tiny", 1, 1);
  Metrics metrics;
  ModelRepository r({repo, "", Stage::kS5, std::chrono::milliseconds(20)}, &metrics);
  ASSERT_TRUE(r.Init().ok());
  r.StartPolling();
  WriteTinyVersion(repo, "tiny", 2, 2);
  for (int i = 0; i < 1000 && r.Active("tiny")->key.version != 2; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  EXPECT_EQ(r.Active("tiny")->key.version, 2u);
  r.StopPolling();
}

TEST(RepositoryTest, EmptyOrMissingRepositoryIsAnError) {
  Metrics metrics;
  ModelRepository missing({"/nonexistent/billnet", "", Stage::kS5, {}}, &metrics);
  EXPECT_EQ(missing.Init().code(), StatusCode::kNotFound);
  const std::string repo = TempDir("repo_empty");
  ModelRepository empty({repo, "", Stage::kS5, {}}, &metrics);
  EXPECT_EQ(empty.Init().code(), StatusCode::kNotFound);
}

// ---- Metrics ----

TEST(MetricsTest, EveryFamilyExportsItsLabelSetsAtZero) {
  Metrics m;
  m.Series("tiny", 1, 5);
  const std::string text = m.Serialize();
  for (const char* family :
       {"billnet_active_streams", "billnet_windows_total", "billnet_frames_total",
        "billnet_decode_errors_total", "billnet_dropped_windows_total",
        "billnet_skipped_frames_total", "billnet_refused_streams_total",
        "billnet_window_latency_seconds_bucket", "billnet_model_loads_total",
        "billnet_model_load_failures_total", "billnet_model_swaps_total", "billnet_model_active",
        "billnet_kernel_variant_info", "billnet_engine_failures_total", "billnet_calls_total",
        "billnet_build_info", "billnet_process_start_time_seconds"})
    EXPECT_NE(text.find(family), std::string::npos) << family;
  EXPECT_NE(text.find("billnet_engine_failures_total{model=\"tiny\",stage=\"s5\",version=\"1\"} 0"),
            std::string::npos);
  EXPECT_NE(text.find("billnet_skipped_frames_total{model=\"tiny\",stage=\"s5\",version=\"1\"} 0"),
            std::string::npos);
  // Every call kind and status code from the start.
  for (const char* call : {"stream", "classify"})
    for (const char* code : {"OK", "CANCELLED", "INVALID_ARGUMENT", "NOT_FOUND", "INTERNAL",
                             "UNAVAILABLE", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"})
      EXPECT_NE(text.find(std::string("billnet_calls_total{call=\"") + call + "\",code=\"" + code +
                          "\"} 0"),
                std::string::npos)
          << call << " " << code;
  m.CallEnded(CallKind::kClassify, Code::kNotFound);
  EXPECT_NE(m.Serialize().find("billnet_calls_total{call=\"classify\",code=\"NOT_FOUND\"} 1"),
            std::string::npos);
  EXPECT_NE(text.find("billnet_build_info{compiler="), std::string::npos) << text;
  EXPECT_GT(m.start_time(), 1.6e9);
  EXPECT_NE(text.find("billnet_windows_total{model=\"tiny\",stage=\"s5\",version=\"1\"} 0"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("billnet_refused_streams_total{reason=\"limit\"} 0"), std::string::npos);
  EXPECT_NE(text.find("le=\"0.05\""), std::string::npos);
  for (const char* phase : {"decode", "queue", "inference", "total"})
    EXPECT_NE(text.find(std::string("phase=\"") + phase + "\""), std::string::npos) << phase;
}

}  // namespace
}  // namespace billnet::server
