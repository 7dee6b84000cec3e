// Helpers for the server tests: tiny model repositories, clips encoded in the
// test, the expected results computed with media/ and the engine directly, and
// an observer that records a stream.
#ifndef BILLNET_TESTS_SERVER_TEST_UTIL_H_
#define BILLNET_TESTS_SERVER_TEST_UTIL_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "billnet/media/encoder.h"
#include "billnet/model.h"
#include "billnet/session.h"
#include "core/metrics.h"
#include "core/repository.h"
#include "core/service_core.h"
#include "core/stream.h"
#include "core/token.h"

namespace billnet::server::testing {

// A fresh empty directory for one test.
std::string TempDir(const std::string& name);

// Writes <repo>/<name>/<version>/s1..s5.safetensors: the tiny topology
// (tests/engine/test_util.h) with random weights derived from `seed`.
// `stages` limits which files are written (an incomplete version).
void WriteTinyVersion(const std::string& repo, const std::string& name, uint32_t version,
                      uint64_t seed, const std::vector<int>& stages = {1, 2, 3, 4, 5},
                      const std::vector<std::string>& labels = {});
std::string ModelPath(const std::string& repo, const std::string& name, uint32_t version,
                      int stage);

// A clip of `frames` frames of width x height at `fps` (moving gradients and
// noise), encoded in memory. seekable=false writes a streamable file
// (fragmented MP4).
std::vector<uint8_t> EncodeClip(media::VideoCodec codec, const std::string& container, int frames,
                                int width = 64, int height = 48, double fps = 12,
                                bool seekable = false, int first_frame = 0, uint64_t seed = 1);
// The RGB frames EncodeClip encodes (frame i of the clip = frame first+i).
std::vector<uint8_t> ClipFrames(int frames, int width, int height, int first_frame, uint64_t seed);

struct ExpectedWindow {
  int64_t sequence = 0;
  Response response;
  bool padded = false;
  int real_frames = 0;
  double first_ts = 0, last_ts = 0;
};

// What the server must answer for `bytes`: media's pipeline to model frames,
// 16-frame (model.frames) windows with the tail padded, one Session carrying
// the state across them.
// Windows before `run_from` are listed but not run (their response is empty);
// the session starts fresh at window run_from (a hot swap there). Windows in
// `dropped` are listed but not run either, and the state goes on from the
// window before them (a live stream's dropped windows).
std::vector<ExpectedWindow> ExpectedWindows(const Model& model, const std::vector<uint8_t>& bytes,
                                            const std::string& format_hint = "", int run_from = 0,
                                            const std::set<int64_t>& dropped = {});

// Records one stream.
class Recorder : public StreamObserver {
 public:
  void OnWindow(WindowOutput&& w) override;
  void OnEnd(const ServeStatus& status, const StreamSummary& summary,
             std::vector<GestureEvent> final_events) override;
  void OnInputSpace() override;

  // Waits for OnEnd (true) or gives up after `timeout` (false).
  bool WaitEnd(std::chrono::seconds timeout = std::chrono::seconds(60));
  // Waits until at least n windows arrived.
  bool WaitWindows(size_t n, std::chrono::seconds timeout = std::chrono::seconds(60));
  // Waits for an OnInputSpace not yet consumed by an earlier call (true), or
  // gives up after `timeout` (false).
  bool WaitInputSpace(std::chrono::seconds timeout);

  std::mutex mu;
  std::condition_variable cv;
  std::vector<WindowOutput> windows;
  std::vector<GestureEvent> events;  // from windows and the end
  bool ended = false;
  int input_space = 0;  // OnInputSpace calls not yet waited for
  ServeStatus status;
  StreamSummary summary;
};

// Repository + metrics + token codec + core over a temp repository.
struct CoreHarness {
  explicit CoreHarness(const std::string& repo, CoreOptions options = {},
                       std::shared_ptr<DecoderFactory> decoders = nullptr,
                       std::unique_ptr<InferenceBackend> backend = nullptr,
                       RepositoryOptions repo_options = {});
  Metrics metrics;
  std::unique_ptr<ModelRepository> repository;
  std::unique_ptr<TokenCodec> tokens;
  std::unique_ptr<ServiceCore> core;
};

// Streams `bytes` in chunks of `chunk` bytes through a core stream and waits
// for its end.
ServeStatus RunStream(ServiceCore& core, const StreamConfig& config,
                      const std::vector<uint8_t>& bytes, Recorder* recorder, size_t chunk = 4096,
                      StartInfo* info = nullptr);

// The same with the transport's flow control instead of blocking pushes: when
// PushChunk says the queue is full, it waits for OnInputSpace (at most
// `space_timeout` each time) before the next chunk. A missing OnInputSpace
// ends the input early: the stream then ends by its idle timeout.
ServeStatus RunStreamFlowControlled(ServiceCore& core, const StreamConfig& config,
                                    const std::vector<uint8_t>& bytes, Recorder* recorder,
                                    size_t chunk, std::chrono::seconds space_timeout,
                                    int* pauses);

// The exact comparison of a window result with the engine's.
void ExpectSameWindow(const WindowOutput& got, const ExpectedWindow& want);

}  // namespace billnet::server::testing

#endif  // BILLNET_TESTS_SERVER_TEST_UTIL_H_
