#include "source.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <sstream>

#include "billnet/media/encoder.h"
#include "billnet/synth/renderer.h"

namespace billnet::load {
namespace {

// A synthetic scene in which a hand performs two gestures (billnet_synth's
// continuous stream, seed fixed), encoded to `path` (MP4).
Status GenerateClip(const SourceOptions& o, const std::string& path) {
  synth::StreamOptions scene;
  scene.width = o.width;
  scene.height = o.height;
  scene.fps = o.fps;
  scene.gestures = 2;
  if (std::string e = synth::CheckStreamOptions(scene); !e.empty()) {
    return InvalidArgument("generated source: " + e);
  }
  const synth::RenderedStream frames = synth::RenderStream(/*seed=*/7, scene);
  media::EncoderOptions enc;
  enc.codec = media::VideoCodec::kH264;
  enc.container = "mp4";
  enc.width = o.width;
  enc.height = o.height;
  enc.fps = o.fps;
  enc.h264_preset = "veryfast";
  enc.zerolatency = o.scaled;
  BILLNET_ASSIGN_OR_RETURN(auto encoder, media::VideoEncoder::Open(path, enc));
  // swscale's SIMD readers may read past a frame's last row: each frame goes
  // through a buffer with slack.
  std::vector<uint8_t> frame(frames.frame_bytes() + 4096);
  uint64_t state = 0x9e3779b97f4a7c15;
  for (int f = 0; f < frames.frames; ++f) {
    const uint8_t* rgb = frames.frame(f);
    if (o.noise == 0) {
      std::copy_n(rgb, frames.frame_bytes(), frame.data());
    } else {
      const int span = 2 * o.noise + 1;
      for (size_t i = 0; i < frames.frame_bytes(); ++i) {
        state = state * 6364136223846793005u + 1442695040888963407u;
        const int v = rgb[i] + int((state >> 33) % uint64_t(span)) - o.noise;
        frame[i] = uint8_t(std::clamp(v, 0, 255));
      }
    }
    BILLNET_RETURN_IF_ERROR(encoder->AddFrame(frame.data()));
  }
  return encoder->Finish();
}

}  // namespace

StatusOr<Source> PrepareSource(const SourceOptions& o) {
  media::LoopOptions loop;
  loop.container = o.container;
  loop.min_duration_s = o.min_duration_s;
  Source source;
  if (!o.file.empty()) {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(o.file, ec)) return NotFound("no such file: " + o.file);
    BILLNET_ASSIGN_OR_RETURN(source.video, media::RemuxLooped(o.file, loop));
    source.description = o.file;
  } else {
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("billnet-load-" + std::to_string(::getpid()) + ".mp4"))
                                 .string();
    Status s = GenerateClip(o, path);
    StatusOr<media::LoopedVideo> video =
        s.ok() ? media::RemuxLooped(path, loop) : StatusOr<media::LoopedVideo>(s);
    std::error_code ec;
    std::filesystem::remove(path, ec);
    if (!video.ok()) return video.status();
    source.video = std::move(video).value();
    std::ostringstream d;
    d << "generated " << o.width << "x" << o.height << " " << o.fps << " fps h264 (x264 veryfast, "
      << (o.scaled ? "zerolatency" : "B-frames") << ")";
    source.description = d.str();
  }
  return source;
}

}  // namespace billnet::load
