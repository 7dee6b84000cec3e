// Training data: synthetic clips and streams rendered in memory, the
// standard-library preprocessing that brings them to the model's geometry and
// rate, and the windows cut from clips (DESIGN.md sections 2.5 and 2.7).
//
// Everything here is deterministic per seed and free of FFmpeg, so it runs
// wherever libtorch does. Reading Jester folders and video files goes through
// media/ (trainer/media, an optional part of the build).
#ifndef BILLNET_TRAINER_DATA_H_
#define BILLNET_TRAINER_DATA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "billnet/trainer/clip.h"

namespace billnet::trainer {

// ---- Preprocessing (standard library) -------------------------------------

// Centre-crops an rgb24 frame to the aspect ratio of `out_w` x `out_h` and
// area-averages it to that size (each output pixel is the coverage-weighted
// mean of the source pixels under it, rounded to nearest).
void CropAndAreaScale(const uint8_t* src, int src_w, int src_h, uint8_t* dst, int out_w, int out_h);

// The resampling rule shared with the server (media/resampler.h): for ticks
// t0 + k / fps (t0 = timestamps[0]) up to the last timestamp, the index of the
// frame nearest to each tick, ties to the earlier frame (1 us slack).
// `timestamps` must be increasing.
std::vector<int> ResampleIndices(const std::vector<double>& timestamps, double fps);

// A rendered video at its own size and rate -> a Clip at `geometry`.
Clip ClipFromFrames(const uint8_t* rgb, int frames, int width, int height, double src_fps,
                    const ClipGeometry& geometry, const std::vector<int>& frame_labels = {});

// ---- Synthetic data --------------------------------------------------------

struct SynthDataSpec {
  uint64_t seed = 1;
  int clips_per_class = 40;  // single-gesture clips of each class
  std::vector<int> labels;   // the classes rendered; empty: all 27
  int streams = 0;           // multi-gesture streams for runs of windows
  int gestures_per_stream = 4;
  // The renderer's output before preprocessing (Jester-like by default).
  int source_width = 176;
  int source_height = 100;
  double source_fps = 12;
  // The renderer's scene difficulty (synth::RenderOptions::difficulty): 1 is
  // the full distributions; lower values give plainer scenes (curriculum).
  double difficulty = 1;
  int threads = 0;  // 0: hardware concurrency
};

// Seed of clip `index` of class `label` under data seed `seed` (distinct data
// seeds never share a clip seed in practice: splitmix64 of the triple).
uint64_t SynthClipSeed(uint64_t seed, int label, int index);
uint64_t SynthStreamSeed(uint64_t seed, int index);

// Renders and preprocesses spec.clips_per_class clips of each class (class-
// major order) and spec.streams streams (appended; their Clip::frame_labels
// set, Clip::label -1).
// Throws std::invalid_argument for invalid options.
std::vector<Clip> MakeSynthData(const SynthDataSpec& spec, const ClipGeometry& geometry);

// ---- Windows -----------------------------------------------------------------

// One window of `frames` frames cut from a clip: frames past the clip's end
// repeat its last frame (the server's tail padding).
struct Window {
  std::vector<uint8_t> rgb;      // frames x H x W x 3
  int real_frames = 0;           // frames taken from the clip before padding
  std::vector<int> step_labels;  // per output step
};

// Per-step labels of a window starting at clip frame `start`: a single-gesture
// clip labels every step with its class; a stream labels step s with the
// gesture under way at the step's last real frame or that ended at most
// `hold_frames` before it, and No gesture (`no_gesture`) elsewhere.
std::vector<int> StepLabels(const Clip& clip, int start, int frames, int steps, int no_gesture,
                            int hold_frames);

// Cuts the window starting at `start` (may run past the end: padded), with
// `real_limit` (> 0) capping the real frames taken (end-padded windows).
Window CutWindow(const Clip& clip, int start, int frames, int steps, int no_gesture,
                 int hold_frames, int real_limit = 0);

// The paper's start: centred for evaluation ((frames_in_clip - frames) / 2,
// 0 when shorter), uniform over valid starts for training.
int CentreStart(const Clip& clip, int frames);

}  // namespace billnet::trainer

#endif  // BILLNET_TRAINER_DATA_H_
