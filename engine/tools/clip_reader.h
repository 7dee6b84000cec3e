// Reading a clip for `billnet-model run` without a video decoder: a raw file of
// rgb24 frames of the model's geometry, or a folder of binary PPM (P6) frames.
// Video files go through media/ (the server and client), not here.
#ifndef BILLNET_ENGINE_TOOLS_CLIP_READER_H_
#define BILLNET_ENGINE_TOOLS_CLIP_READER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "billnet/status.h"

namespace billnet {

struct Clip {
  int frames = 0, height = 0, width = 0;
  std::vector<uint8_t> rgb;  // frames x height x width x 3
};

// `path` is a raw rgb24 file (its size a multiple of height*width*3) or a
// directory of *.ppm files taken in name order. Frames must be height x width.
StatusOr<Clip> ReadClip(const std::string& path, int height, int width);

// Cuts a clip into consecutive windows of `frames`; the last, partial window is
// completed by repeating its last frame. real_frames[i] is window i's count of
// real frames.
std::vector<std::vector<uint8_t>> CutWindows(const Clip& clip, int frames,
                                             std::vector<int>* real_frames);

// A synthetic test clip: a bright disc moving right to left over a grey
// gradient (for the demo until billnet-synth exists).
Clip MovingDiscClip(int frames, int height, int width);

}  // namespace billnet

#endif  // BILLNET_ENGINE_TOOLS_CLIP_READER_H_
