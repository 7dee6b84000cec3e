// A labelled clip already at the model's geometry and frame rate, the unit
// every data source of the trainer produces (synthetic renderer, Jester
// folders, video files) and windows are cut from. DESIGN.md section 2.5.
#ifndef BILLNET_TRAINER_CLIP_H_
#define BILLNET_TRAINER_CLIP_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace billnet::trainer {

// The geometry and frame rate the model sees (from TopologyConfig and
// ModelInfo::frame_rate).
struct ClipGeometry {
  int height = 96;
  int width = 128;
  double fps = 6;
};

struct Clip {
  std::string id;  // Jester id, file name or "synth-<seed>"
  int label = 0;   // class index
  int frames = 0, height = 0, width = 0;
  // frames x height x width x 3 bytes, frame-major, row-major, RGB
  // interleaved: already centre-cropped, scaled and resampled to the model's
  // rate (frames may be fewer or more than a window).
  std::vector<uint8_t> rgb;
  // Optional per-frame labels (streams: the class under way, No gesture
  // elsewhere); empty for a single-gesture clip.
  std::vector<int> frame_labels;

  size_t frame_bytes() const { return static_cast<size_t>(height) * width * 3; }
  const uint8_t* frame(int f) const { return rgb.data() + frame_bytes() * f; }
};

}  // namespace billnet::trainer

#endif  // BILLNET_TRAINER_CLIP_H_
