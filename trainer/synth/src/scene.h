// The look of a clip: everything a single frame shows that is not the
// gesture. It is drawn from the seed alone, never from the label, so every
// class shares these distributions (DESIGN.md section 2.5):
// background (flat / gradients, value-noise texture, stripes, clutter shapes,
// defocus), an optional person, the hand's appearance, size, rest pose and
// position, light, camera shake and drift, global lighting changes, sensor
// noise and blur, distractors (moving objects, a second hand, a flickering
// screen), and the time the gesture starts.
#ifndef BILLNET_SYNTH_SCENE_H_
#define BILLNET_SYNTH_SCENE_H_

#include <cstdint>
#include <vector>

#include "hand.h"
#include "random.h"
#include "raster.h"

namespace billnet::synth {

// A smooth random signal: a sum of three sinusoids; |At(t)| <= amplitude.
struct Wobble {
  double amp[3] = {}, freq[3] = {}, phase[3] = {};
  static Wobble Sample(Rng& rng, double amplitude, double min_hz, double max_hz);
  double At(double t) const;
};

struct ClutterItem {
  enum class Kind { kBox, kEllipse, kBar };
  Kind kind = Kind::kBox;
  double x = 0, y = 0, hx = 0, hy = 0, angle = 0, rounding = 0;
  Rgb colour;
  bool lit = false;
};

struct BackgroundLook {
  int kind = 0;  // 0 flat, 1 linear gradient, 2 radial gradient
  Rgb c0, c1;
  double gx = 1, gy = 0;            // linear gradient direction
  double rcx = 0, rcy = 0, rr = 1;  // radial gradient centre and radius
  double noise_amp = 0, noise_cell = 0.1;
  int octaves = 1;
  Rgb noise_tint;
  uint64_t noise_seed = 0;
  double stripe_amp = 0, stripe_period = 0.1, stripe_nx = 1, stripe_ny = 0;
  std::vector<ClutterItem> clutter;
  double defocus = 0;  // box-blur radius, scene units
};

struct PersonLook {
  bool present = false;
  double x = 0, shoulder_y = 0.7, half_width = 0.25, head_rx = 0.1, head_ry = 0.13;
  Rgb shirt, skin, hair;
  Wobble sway_x, sway_y;
};

struct DistractorLook {
  enum class Kind { kMovingBlob, kSwingingBlob, kSecondHand, kScreen };
  Kind kind = Kind::kMovingBlob;
  bool in_front = false;  // drawn over the hand
  bool ellipse = true;
  double x = 0, y = 0;    // position at t = 0 (moving) or centre
  double vx = 0, vy = 0;  // scene units per second
  double hx = 0.05, hy = 0.05, angle = 0, spin = 0;
  double swing = 0, swing_hz = 1, swing_dx = 1, swing_dy = 0;
  Rgb colour;
  std::vector<Rgb> screen_colours;  // kScreen: one per period
  double screen_period = 0.5;
  HandPose hand;  // kSecondHand
  HandLook hand_look;
  Wobble drift_x, drift_y, drift_angle;
};

struct Look {
  double aspect = 1.76;   // width / height
  double duration = 3.0;  // seconds

  BackgroundLook background;
  PersonLook person;
  std::vector<DistractorLook> distractors;

  HandLook hand;
  HandPose rest;               // the hand's pose before the gesture
  bool hand_enters = false;    // the hand starts below the frame and rises before the gesture
  double gesture_start = 0.5;  // seconds
  double edge_blur = 0.01;     // scene units
  Wobble tremor_x, tremor_y, tremor_angle, tremor_scale;

  Light light;
  Wobble camera_x, camera_y;            // hand-held shake
  Wobble camera_slow_x, camera_slow_y;  // slow sway / pan

  double gain = 1;
  Rgb cast{1, 1, 1};
  Wobble gain_wobble;
  double step_time = -1, step_size = 0, step_length = 0.3;
  double light_gradient = 0, light_gx = 1, light_gy = 0, vignette = 0;

  double luma_noise = 0.01, chroma_noise = 0.005;  // standard deviations, [0, 1] units
  bool sensor_blur = false;
  uint64_t noise_seed = 0;
};

// duration_s > 0 fixes the duration; otherwise it is drawn from the seed
// (28-40 Jester frames at 12 fps). Every other draw is the same either way.
// `difficulty` in [0, 1] (RenderOptions::difficulty): below 1 the scene is
// simplified by SimplifyLook; 1 draws exactly the full distributions.
Look SampleLook(uint64_t seed, double aspect, double duration_s, double difficulty = 1);

// Scales the scene's nuisances by `difficulty` (0: plain background, no
// person, clutter, distractors, camera motion or lighting changes, little
// noise, a larger hand; 1: unchanged). Decisions use their own random stream
// (from `seed`), so the other draws, and the motion, stay the same.
void SimplifyLook(uint64_t seed, double difficulty, Look* look);

// A rest pose: relaxed, half-curled fingers, hand upright-ish, somewhere in
// the frame. Shared by every class (and by a stream's pauses).
HandPose SampleRestPose(Rng& rng, double aspect, double scale);
Articulation SampleRestArticulation(Rng& rng);

// The camera offset (scene units) at time t; bounded by kMaxCameraOffset.
inline constexpr double kMaxCameraOffset = 0.05;
void CameraOffset(const Look& look, double t, double* x, double* y);

// Renders the static background (with a margin of `margin` pixels all round).
void BakeBackground(const Look& look, int width, int height, int margin, Canvas* out);

// Per-frame layers, in drawing order.
void DrawScreens(const Look& look, double t, const View& view, Canvas* canvas);
void DrawDistractors(const Look& look, double t, const View& view, bool in_front, Canvas* canvas);

// The person does not change shape, only sways: it is drawn once into a
// premultiplied sprite (colour + alpha, the background's geometry; empty
// alpha when there is no person) and shifted by PersonSway each frame.
void BakePerson(const Look& look, int width, int height, int margin, Canvas* colour,
                std::vector<float>* alpha);
void PersonSway(const Look& look, double t, double* dx, double* dy);  // scene units

// The static part of the lighting (gradient, vignette, colour cast), one
// factor per pixel and channel.
std::vector<float> LightingField(const Look& look, int width, int height);

// Global lighting, sensor blur and noise; writes 8-bit RGB. `scratch` is
// reused between frames.
void FinishFrame(const Look& look, int frame_index, double t, const std::vector<float>& field,
                 Canvas* canvas, std::vector<float>* scratch, uint8_t* out);

}  // namespace billnet::synth

#endif  // BILLNET_SYNTH_SCENE_H_
