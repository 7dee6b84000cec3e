// What every stream of billnet-load replays: one clip, remuxed once into a
// streamable container and looped with continuous timestamps
// (media::RemuxLooped); the streams share the bytes read-only.
#ifndef BILLNET_TOOLS_LOAD_SOURCE_H_
#define BILLNET_TOOLS_LOAD_SOURCE_H_

#include <string>

#include "billnet/media/remux.h"
#include "billnet/status.h"

namespace billnet::load {

struct SourceOptions {
  std::string file;  // empty: generate a clip
  // Generated clips: a synthetic gesture scene (billnet_synth) encoded with
  // x264 veryfast. Full resolution: 640x480, 30 fps, B-frames (x264's 3).
  // Scaled (the client's side already did it): the model's geometry and
  // frame rate, zerolatency (no B-frames, no lookahead).
  bool scaled = false;
  int width = 640, height = 480;
  double fps = 30;
  // Sensor noise added to generated frames: uniform in [-noise, noise] per
  // channel. The renderer's clean 640x480 frames encode to ~0.13 Mbit/s and
  // decode in ~0.3 ms (docs/media.md); billnet-load's default 12 gives
  // ~1.1 Mbit/s, a webcam's rate, and about the ~1 ms per frame DESIGN.md
  // section 4 assumes.
  int noise = 0;
  std::string container = "matroska";
  double min_duration_s = 10;
};

struct Source {
  media::LoopedVideo video;
  std::string description;  // e.g. "generated 640x480 30 fps h264 (x264 veryfast, B-frames)"
};

// NotFound for a missing file; the remuxer's and encoder's errors otherwise.
StatusOr<Source> PrepareSource(const SourceOptions& options);

}  // namespace billnet::load

#endif  // BILLNET_TOOLS_LOAD_SOURCE_H_
