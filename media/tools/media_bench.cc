// billnet-media-bench: what decoding and converting cost per frame here.
//
//   billnet-media-bench [--width 640 --height 480 --fps 30 --frames 300]
//                       [--preset veryfast] [--zerolatency] [--file CLIP]
//                       [--interleave N]
//
// Encodes a synthetic gesture stream (the renderer, at the given size and
// rate) with x264 (B-frames unless --zerolatency) into memory, or reads
// --file, then times on one thread:
//   decode            VideoDecoder::Next over every frame
//   decode+convert    + FrameConverter to 128x96 RGB for every frame
//   decode+model      + ModelFrameStream at 6 fps (only the frames a tick
//                     takes are converted), every frame decoded
//   decode+model, untaken left undecoded
//                     the same with the decoder's frame filter (the server's
//                     path: non-reference frames no tick takes are not
//                     decoded); checks that the model frames are identical
//   decode, N interleaved (--interleave N, default 48)
//                     N decoders of the clip, one frame from each in turn,
//                     like N live streams on one core: whether decoding costs
//                     more when the decoders evict each other from the caches
// and prints milliseconds per source frame (best of 3 runs).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include "billnet/media/byte_io.h"
#include "billnet/media/converter.h"
#include "billnet/media/decoder.h"
#include "billnet/media/encoder.h"
#include "billnet/media/pipeline.h"
#include "billnet/synth/renderer.h"

namespace {

using namespace billnet;
using Clock = std::chrono::steady_clock;

int Fail(const Status& s) {
  std::fprintf(stderr, "billnet-media-bench: %s\n", s.ToString().c_str());
  return 1;
}

enum class Mode { kDecode, kConvert, kModel, kModelFiltered, kInterleaved };

// Times one pass; *frames: source frames (decoded or left undecoded),
// *digest: a hash of the model frames' pixels.
StatusOr<double> TimeOnce(const std::vector<uint8_t>& bytes, Mode mode, int64_t* frames,
                          int64_t* undecoded, uint64_t* digest) {
  media::MemoryByteSource src{std::span<const uint8_t>(bytes)};
  BILLNET_ASSIGN_OR_RETURN(auto dec, media::VideoDecoder::Open(&src));
  media::FrameConverter conv(128, 96);
  media::ModelFrameStream stream(media::ModelTarget{96, 128, 6});
  if (mode == Mode::kModelFiltered) dec->SetFrameFilter(stream.TakeFilter());
  std::vector<uint8_t> out(conv.frame_bytes());
  uint64_t hash = 1469598103934665603u;
  auto emit = [&hash](const media::ModelFrame& m) -> Status {
    for (size_t i = 0; i < size_t(m.width) * m.height * 3; ++i) hash = (hash ^ m.rgb[i]) * 1099511628211u;
    return Status::Ok();
  };
  *frames = 0;
  const auto t0 = Clock::now();
  for (;;) {
    media::DecodedFrame f;
    BILLNET_ASSIGN_OR_RETURN(const bool got, dec->Next(&f));
    if (!got) break;
    ++*frames;
    if (mode == Mode::kConvert) BILLNET_RETURN_IF_ERROR(conv.Convert(f, out.data()));
    if (mode == Mode::kModel || mode == Mode::kModelFiltered) {
      BILLNET_RETURN_IF_ERROR(stream.Push(std::move(f), emit));
    }
  }
  const double s = std::chrono::duration<double>(Clock::now() - t0).count();
  *undecoded = dec->frames_undecoded();
  *frames += *undecoded;
  *digest = hash;
  return s;
}

// Decodes `n` copies of the clip, one frame from each decoder in turn.
StatusOr<double> TimeInterleaved(const std::vector<uint8_t>& bytes, int n, int64_t* frames) {
  std::vector<std::unique_ptr<media::MemoryByteSource>> sources;
  std::vector<std::unique_ptr<media::VideoDecoder>> decoders;
  for (int i = 0; i < n; ++i) {
    sources.push_back(
        std::make_unique<media::MemoryByteSource>(std::span<const uint8_t>(bytes)));
    BILLNET_ASSIGN_OR_RETURN(auto dec, media::VideoDecoder::Open(sources.back().get()));
    decoders.push_back(std::move(dec));
  }
  *frames = 0;
  const auto t0 = Clock::now();
  for (size_t live = decoders.size(); live > 0;) {
    live = 0;
    for (auto& dec : decoders) {
      if (!dec) continue;
      media::DecodedFrame f;
      BILLNET_ASSIGN_OR_RETURN(const bool got, dec->Next(&f));
      if (got) {
        ++*frames;
        ++live;
      } else {
        dec.reset();
      }
    }
  }
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  int width = 640, height = 480, frames = 300;
  double fps = 30;
  std::string preset = "veryfast", file;
  bool zerolatency = false;
  CLI::App app{"billnet-media-bench: decode and convert cost per frame"};
  app.add_option("--width", width)->capture_default_str();
  app.add_option("--height", height)->capture_default_str();
  app.add_option("--fps", fps)->capture_default_str();
  app.add_option("--frames", frames)->capture_default_str();
  app.add_option("--preset", preset)->capture_default_str();
  app.add_flag("--zerolatency", zerolatency);
  app.add_option("--file", file, "Time this clip instead of a synthetic one");
  int interleave = 48;
  app.add_option("--interleave", interleave, "Decoders of the clip decoded in turn (0: skip)")
      ->check(CLI::Range(0, 1024))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  media::SetLogLevel(media::LogLevel::kError);

  std::vector<uint8_t> bytes;
  if (!file.empty()) {
    StatusOr<std::vector<uint8_t>> b = media::ReadFileBytes(file);
    if (!b.ok()) return Fail(b.status());
    bytes = std::move(b).value();
  } else {
    synth::StreamOptions so;
    so.width = width;
    so.height = height;
    so.fps = fps;
    so.gestures = std::max(1, static_cast<int>(frames / fps / 2.5));
    const synth::RenderedStream s = synth::RenderStream(1, so);
    media::EncoderOptions o;
    o.width = width;
    o.height = height;
    o.fps = fps;
    o.h264_preset = preset;
    o.zerolatency = zerolatency;
    media::MemoryByteSink sink;
    auto enc = media::VideoEncoder::Open(&sink, o);
    if (!enc.ok()) return Fail(enc.status());
    for (int i = 0; i < std::min(frames, s.frames); ++i) {
      if (Status st = (*enc)->AddFrame(s.frame(i)); !st.ok()) return Fail(st);
    }
    if (Status st = (*enc)->Finish(); !st.ok()) return Fail(st);
    bytes = sink.Take();
  }
  std::printf("clip: %zu bytes (%s)\n", bytes.size(),
              file.empty() ? ("synthetic " + std::to_string(width) + "x" + std::to_string(height) +
                              " H.264 " + preset + (zerolatency ? " zerolatency" : " B-frames"))
                                 .c_str()
                           : file.c_str());
  const std::pair<Mode, const char*> modes[] = {
      {Mode::kDecode, "decode"},
      {Mode::kConvert, "decode+convert (every frame)"},
      {Mode::kModel, "decode+model frames (6 fps)"},
      {Mode::kModelFiltered, "  the same, untaken undecoded"},
      {Mode::kInterleaved, "decode, interleaved"}};
  uint64_t model_digest = 0;
  for (const auto& [mode, name] : modes) {
    if (mode == Mode::kInterleaved) {
      if (interleave == 0) continue;
      double best = 1e30;
      int64_t n = 0;
      for (int run = 0; run < 3; ++run) {
        StatusOr<double> t = TimeInterleaved(bytes, interleave, &n);
        if (!t.ok()) return Fail(t.status());
        best = std::min(best, *t);
      }
      std::printf("%-30s %8.3f ms/frame  (%d decoders, %lld frames, best of 3)\n",
                  (std::string(name) + " x" + std::to_string(interleave)).c_str(),
                  1000 * best / std::max<int64_t>(n, 1), interleave, static_cast<long long>(n));
      continue;
    }
    double best = 1e30;
    int64_t n = 0, undecoded = 0;
    uint64_t digest = 0;
    for (int run = 0; run < 3; ++run) {
      StatusOr<double> t = TimeOnce(bytes, mode, &n, &undecoded, &digest);
      if (!t.ok()) return Fail(t.status());
      best = std::min(best, *t);
    }
    std::printf("%-30s %8.3f ms/frame  (%lld frames, %lld undecoded, best of 3)\n", name,
                1000 * best / std::max<int64_t>(n, 1), static_cast<long long>(n),
                static_cast<long long>(undecoded));
    if (mode == Mode::kModel) model_digest = digest;
    if (mode == Mode::kModelFiltered && digest != model_digest) {
      std::fprintf(stderr, "billnet-media-bench: the frame filter changed the model frames\n");
      return 1;
    }
  }
  return 0;
}
