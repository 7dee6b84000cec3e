// The synthetic gesture renderer: analogues of the 27 Jester V1 classes,
// rendered in memory as 8-bit RGB frames (DESIGN.md section 2.5).
//
// Standard library only, so the trainer can synthesize data wherever libtorch
// runs. Writing JPEG frames or videos is a separate layer (on FFmpeg).
//
// What a clip is: one scene (background, optional person, lighting, camera,
// noise, distractors, the hand's look and rest pose) drawn from the seed
// alone, and a hand that rests, then performs the class's gesture. The label
// changes only the hand's motion after the gesture starts (and, for the static
// signs, the hand's shape), never the look: rendering the same seed with two
// labels gives frames that are byte-identical before the gesture starts.
//
// Determinism: the output is a pure function of (label, seed, options), the
// same bytes on every platform and compiler with IEEE-754 float/double (own
// PRNG and distributions, own sin/cos/exp/log, no FP contraction; checked with
// GCC and Clang, -O0 to -O3 -march=native). The scene is described in
// fractions of the frame, so another size renders the same scene.
// docs/synth.md lists the classes and every distribution.
//
// Thread-safety: every function here is reentrant; render different clips on
// different threads freely. Results are plain values owned by the caller.
//
// Errors: invalid arguments (label out of range, sizes below 8 or above 4096,
// fps outside (0, 240], more than 100000 frames) throw std::invalid_argument
// with a message naming the field; CheckRenderOptions tells beforehand.
#ifndef BILLNET_SYNTH_RENDERER_H_
#define BILLNET_SYNTH_RENDERER_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace billnet::synth {

inline constexpr int kNumClasses = 27;
inline constexpr int kNoGesture = 25;
inline constexpr int kDoingOtherThings = 26;

// The 27 Jester V1 labels, in Jester's order (the label index is the position).
const std::vector<std::string>& SynthClassNames();

// Where the hand is in one frame (debug metadata; pixels of the output frame).
struct HandState {
  bool present = false;  // the scene has a hand in this frame (it may be outside the frame)
  float x = 0, y = 0;    // palm centre, pixels (x right, y down)
  float scale = 0;       // palm half-width, pixels
  float angle_deg = 0;   // in-plane rotation; increases CLOCKWISE in the image
  float pitch_deg = 0;   // about the image's horizontal axis; > 0: fingertips toward the camera
  // Rendered hand coverage in pixels (palm, fingers, thumb; not the forearm,
  // not reduced by distractors in front).
  float area_px = 0;
};

// A labelled interval of frames: [start, end).
struct GestureSegment {
  int label = 0;
  int start = 0;
  int end = 0;
};

// Frames and per-frame metadata; base of RenderedClip and RenderedStream.
struct RenderedVideo {
  int frames = 0, height = 0, width = 0;
  double fps = 0;
  // frames x height x width x 3 bytes: frame-major, row-major, RGB interleaved.
  std::vector<uint8_t> rgb;
  std::vector<HandState> hand;  // one per frame
  // Per frame: the class whose gesture is under way, kNoGesture elsewhere.
  std::vector<int> frame_labels;
  // frames x height x width hand coverage (0-255; palm, fingers, thumb, no
  // forearm); empty unless RenderOptions::hand_masks.
  std::vector<uint8_t> hand_mask;

  size_t frame_bytes() const { return static_cast<size_t>(height) * width * 3; }
  const uint8_t* frame(int f) const { return rgb.data() + frame_bytes() * f; }
};

struct RenderOptions {
  int width = 176;  // Jester frames are 100 pixels high, about 176 wide
  int height = 100;
  double fps = 12;  // Jester's rate; motion is defined in seconds
  // 0: a Jester-like length drawn from the seed (28-40 frames at 12 fps, i.e.
  // 2.33-3.33 s, times fps); otherwise exactly this many frames.
  int frames = 0;
  bool hand_masks = false;  // fill RenderedVideo::hand_mask (tests, debugging)
  // Scene difficulty in [0, 1], for curriculum training: 1 (the default) is
  // the full look distributions; lower values thin out distractors, clutter,
  // the person, camera motion, lighting changes and noise, and enlarge the
  // hand (0: a plain scene with a 1.5x hand). The motion is the same at every
  // difficulty. Test sets use 1.
  double difficulty = 1;
};

struct RenderedClip : RenderedVideo {
  int label = 0;
  // The frames where the class's motion happens (preparation, motion and, for
  // static signs, the hold); the whole clip for No gesture. Starts 10-30%
  // into the clip.
  GestureSegment gesture;
};

// Renders one clip of class `label` (0..26). Cost: linear in frames x width x
// height, about 0.3 ms per 176x100 frame on one core (11 ms for 36 frames;
// 4.5 ms for the model's 128x96 at 6 fps).
RenderedClip RenderClip(int label, uint64_t seed, const RenderOptions& options = {});

struct StreamOptions {
  int width = 176;
  int height = 100;
  double fps = 12;
  // The gestures performed, in order. Empty: `gestures` labels drawn from the
  // seed, uniformly over every class except No gesture.
  std::vector<int> labels;
  int gestures = 4;
  // "No gesture" time between consecutive gestures (the hand returns to a
  // rest pose, slowly, or drops out of view and comes back), seconds.
  double gap_min_s = 0.6;
  double gap_max_s = 2.0;
  // "No gesture" time before the first gesture and after the last, seconds.
  double lead_s = 0.8;
  bool hand_masks = false;
  double difficulty = 1;  // as RenderOptions::difficulty
};

struct RenderedStream : RenderedVideo {
  // One segment per performed gesture, in order, non-overlapping, within
  // [0, frames); frames outside every segment are No gesture. A No gesture
  // asked for in `labels` is a segment of label kNoGesture (the hand rests).
  std::vector<GestureSegment> segments;
};

// Renders a continuous stream (one scene, one camera) in which the hand
// performs several gestures one after another, for training on runs of
// consecutive windows with the LSTM state carried.
RenderedStream RenderStream(uint64_t seed, const StreamOptions& options = {});

// "" when the options are valid, else what is wrong.
std::string CheckRenderOptions(const RenderOptions& options);
std::string CheckStreamOptions(const StreamOptions& options);

}  // namespace billnet::synth

#endif  // BILLNET_SYNTH_RENDERER_H_
