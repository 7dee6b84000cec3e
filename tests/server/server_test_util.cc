#include "server_test_util.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "billnet/media/byte_io.h"
#include "billnet/media/pipeline.h"
#include "test_util.h"

namespace billnet::server::testing {

namespace fs = std::filesystem;

namespace {

// Removes the test's temp directories when the test binary exits.
struct TempDirs {
  std::mutex mu;
  std::vector<fs::path> paths;
  ~TempDirs() {
    std::error_code ec;
    for (const auto& p : paths) fs::remove_all(p, ec);
  }
};
TempDirs g_temp_dirs;

}  // namespace

std::string TempDir(const std::string& name) {
  const fs::path p = fs::temp_directory_path() /
                     ("billnet_server_test_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(p);
  fs::create_directories(p);
  std::lock_guard<std::mutex> lock(g_temp_dirs.mu);
  g_temp_dirs.paths.push_back(p);
  return p.string();
}

std::string ModelPath(const std::string& repo, const std::string& name, uint32_t version,
                      int stage) {
  return (fs::path(repo) / name / std::to_string(version) /
          ("s" + std::to_string(stage) + ".safetensors"))
      .string();
}

void WriteTinyVersion(const std::string& repo, const std::string& name, uint32_t version,
                      uint64_t seed, const std::vector<int>& stages,
                      const std::vector<std::string>& labels) {
  const TopologyConfig topo = billnet::testing::TinyTopology();
  auto plan = BuildPlan(topo);
  ASSERT_TRUE(plan.ok());
  fs::create_directories(fs::path(repo) / name / std::to_string(version));
  for (int s : stages) {
    ModelInfo info = billnet::testing::TinyInfo(Stage(s), topo);
    info.name = name;
    if (!labels.empty()) info.labels = labels;
    const ModelWeights w = RandomWeights(*plan, Stage(s), seed * 10 + uint64_t(s));
    Status st = WriteModelFile(info, w, ModelPath(repo, name, version, s));
    ASSERT_TRUE(st.ok()) << st.ToString();
  }
}

std::vector<uint8_t> ClipFrames(int frames, int width, int height, int first_frame, uint64_t seed) {
  std::vector<uint8_t> rgb(size_t(frames) * width * height * 3);
  for (int i = 0; i < frames; ++i) {
    const int f = first_frame + i;
    uint8_t* p = rgb.data() + size_t(i) * width * height * 3;
    for (int y = 0; y < height; ++y)
      for (int x = 0; x < width; ++x) {
        // Moving blobs plus a deterministic per-pixel pattern: frames differ
        // enough that random models give varied responses.
        uint64_t h = (uint64_t(f) * 7919 + uint64_t(y) * 131 + uint64_t(x) * 17 + seed) *
                     0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
        const int cx = (f * 3 + int(seed % 7) * 5) % width, cy = (f * 2) % height;
        const int d = std::abs(x - cx) + std::abs(y - cy);
        const int blob = d < width / 4 ? 120 : 0;
        p[0] = uint8_t(std::min(255, 40 + blob + int(h % 40)));
        p[1] = uint8_t(std::min(255, 60 + (x * 100) / width + int((h >> 8) % 30)));
        p[2] = uint8_t(std::min(255, 50 + (y * 100) / height + blob / 2 + int((h >> 16) % 30)));
        p += 3;
      }
  }
  return rgb;
}

std::vector<uint8_t> EncodeClip(media::VideoCodec codec, const std::string& container, int frames,
                                int width, int height, double fps, bool seekable, int first_frame,
                                uint64_t seed) {
  const std::vector<uint8_t> rgb = ClipFrames(frames, width, height, first_frame, seed);
  media::EncoderOptions o;
  o.codec = codec;
  o.container = container;
  o.width = width;
  o.height = height;
  o.fps = fps;
  o.time_base_den = 1000;
  media::MemoryByteSink sink(seekable);
  auto enc = media::VideoEncoder::Open(&sink, o);
  EXPECT_TRUE(enc.ok()) << enc.status().ToString();
  if (!enc.ok()) return {};
  const size_t fb = size_t(width) * height * 3;
  // swscale's SIMD readers may read past the end of the last row (media's
  // encoder hands it the caller's buffer): give every frame slack.
  std::vector<uint8_t> frame(fb + 4096);
  for (int i = 0; i < frames; ++i) {
    std::copy_n(rgb.data() + fb * i, fb, frame.data());
    Status s = (*enc)->AddFrame(frame.data(), 0, double(first_frame + i) / fps);
    EXPECT_TRUE(s.ok()) << s.ToString();
  }
  Status s = (*enc)->Finish();
  EXPECT_TRUE(s.ok()) << s.ToString();
  enc->reset();
  return sink.Take();
}

std::vector<ExpectedWindow> ExpectedWindows(const Model& model, const std::vector<uint8_t>& bytes,
                                            const std::string& format_hint, int run_from,
                                            const std::set<int64_t>& dropped) {
  const TopologyConfig& topo = model.info().topology;
  media::MemoryByteSource source(std::span<const uint8_t>(bytes), true);
  media::PipelineOptions po;
  po.decoder.format_hint = format_hint;
  po.skip_untaken_frames = false;  // the reference decodes every frame
  auto frames = media::DecodeSourceToModelFrames(
      &source, {topo.height, topo.width, model.info().frame_rate}, po);
  EXPECT_TRUE(frames.ok()) << frames.status().ToString();
  std::vector<ExpectedWindow> out;
  if (!frames.ok()) return out;
  Session session(std::shared_ptr<const Model>(&model, [](const Model*) {}));
  const size_t fb = frames->frame_bytes();
  for (int start = 0, seq = 0; start < frames->frames; start += topo.frames, ++seq) {
    const int real = std::min(topo.frames, frames->frames - start);
    std::vector<uint8_t> window(fb * topo.frames);
    for (int i = 0; i < topo.frames; ++i) {
      const int src = start + std::min(i, real - 1);
      std::copy_n(frames->rgb.data() + fb * src, fb, window.data() + fb * i);
    }
    ExpectedWindow w;
    w.sequence = seq;
    w.padded = real < topo.frames;
    w.real_frames = real;
    w.first_ts = frames->source_ts[start];
    w.last_ts = frames->source_ts[start + real - 1];
    if (seq >= run_from && !dropped.count(seq)) {
      Status s = session.Run(window.data(), window.size(), &w.response);
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    out.push_back(std::move(w));
  }
  return out;
}

void Recorder::OnWindow(WindowOutput&& w) {
  MarkSent(w);
  std::lock_guard<std::mutex> lock(mu);
  for (const auto& e : w.events) events.push_back(e);
  windows.push_back(std::move(w));
  cv.notify_all();
}

void Recorder::OnEnd(const ServeStatus& s, const StreamSummary& sum,
                     std::vector<GestureEvent> final_events) {
  std::lock_guard<std::mutex> lock(mu);
  for (auto& e : final_events) events.push_back(std::move(e));
  status = s;
  summary = sum;
  ended = true;
  cv.notify_all();
}

void Recorder::OnInputSpace() {
  std::lock_guard<std::mutex> lock(mu);
  ++input_space;
  cv.notify_all();
}

bool Recorder::WaitInputSpace(std::chrono::seconds timeout) {
  std::unique_lock<std::mutex> lock(mu);
  if (!cv.wait_for(lock, timeout, [&] { return input_space > 0 || ended; })) return false;
  if (input_space == 0) return false;  // ended instead
  --input_space;
  return true;
}

bool Recorder::WaitEnd(std::chrono::seconds timeout) {
  std::unique_lock<std::mutex> lock(mu);
  return cv.wait_for(lock, timeout, [&] { return ended; });
}

bool Recorder::WaitWindows(size_t n, std::chrono::seconds timeout) {
  std::unique_lock<std::mutex> lock(mu);
  return cv.wait_for(lock, timeout, [&] { return windows.size() >= n || ended; }) &&
         windows.size() >= n;
}

CoreHarness::CoreHarness(const std::string& repo, CoreOptions options,
                         std::shared_ptr<DecoderFactory> decoders,
                         std::unique_ptr<InferenceBackend> backend,
                         RepositoryOptions repo_options) {
  media::SetLogLevel(media::LogLevel::kQuiet);
  repo_options.root = repo;
  repository = std::make_unique<ModelRepository>(repo_options, &metrics);
  Status s = repository->Init();
  EXPECT_TRUE(s.ok()) << s.ToString();
  tokens = std::make_unique<TokenCodec>(std::vector<uint8_t>(32, 7));
  core = std::make_unique<ServiceCore>(options, repository.get(), &metrics, tokens.get(),
                                       std::move(decoders), std::move(backend));
}

ServeStatus RunStream(ServiceCore& core, const StreamConfig& config,
                      const std::vector<uint8_t>& bytes, Recorder* recorder, size_t chunk,
                      StartInfo* info) {
  std::shared_ptr<Stream> stream;
  StartInfo local;
  ServeStatus st = core.OpenStream(config, recorder, &stream, info ? info : &local);
  if (!st.ok()) return st;
  for (size_t off = 0; off < bytes.size(); off += chunk) {
    const size_t n = std::min(chunk, bytes.size() - off);
    if (!stream->PushChunkBlocking(
            std::string(reinterpret_cast<const char*>(bytes.data()) + off, n)))
      break;
  }
  stream->CloseInput();
  EXPECT_TRUE(recorder->WaitEnd());
  return recorder->status;
}

ServeStatus RunStreamFlowControlled(ServiceCore& core, const StreamConfig& config,
                                    const std::vector<uint8_t>& bytes, Recorder* recorder,
                                    size_t chunk, std::chrono::seconds space_timeout,
                                    int* pauses) {
  std::shared_ptr<Stream> stream;
  StartInfo info;
  ServeStatus st = core.OpenStream(config, recorder, &stream, &info);
  if (!st.ok()) return st;
  *pauses = 0;
  for (size_t off = 0; off < bytes.size(); off += chunk) {
    const size_t n = std::min(chunk, bytes.size() - off);
    if (stream->PushChunk(std::string(reinterpret_cast<const char*>(bytes.data()) + off, n)))
      continue;
    ++*pauses;
    if (!recorder->WaitInputSpace(space_timeout)) {
      ADD_FAILURE() << "no OnInputSpace within " << space_timeout.count() << " s after pause "
                    << *pauses << " (offset " << off << " of " << bytes.size() << ")";
      break;
    }
  }
  stream->CloseInput();
  EXPECT_TRUE(recorder->WaitEnd());
  return recorder->status;
}

void ExpectSameWindow(const WindowOutput& got, const ExpectedWindow& want) {
  EXPECT_EQ(got.sequence, want.sequence);
  EXPECT_EQ(got.padded, want.padded) << "window " << want.sequence;
  EXPECT_EQ(got.real_frames, want.real_frames) << "window " << want.sequence;
  EXPECT_EQ(got.first_source_ts, want.first_ts) << "window " << want.sequence;
  EXPECT_EQ(got.last_source_ts, want.last_ts) << "window " << want.sequence;
  EXPECT_EQ(got.response.scores, want.response.scores) << "window " << want.sequence;
  EXPECT_EQ(got.response.integer_scores, want.response.integer_scores)
      << "window " << want.sequence;
  EXPECT_EQ(got.response.probabilities, want.response.probabilities) << "window " << want.sequence;
  EXPECT_EQ(got.response.top_class, want.response.top_class) << "window " << want.sequence;
}

}  // namespace billnet::server::testing
