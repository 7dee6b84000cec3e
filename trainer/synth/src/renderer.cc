// RenderClip / RenderStream: the look (scene.h) + the hand's timeline
// (motion.h), rendered frame by frame (hand.h, raster.h).
#include "billnet/synth/renderer.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "hand.h"
#include "motion.h"
#include "portable_math.h"
#include "random.h"
#include "raster.h"
#include "scene.h"

namespace billnet::synth {
namespace {

constexpr int kMinSize = 8;
constexpr int kMaxSize = 4096;
constexpr double kMaxFps = 240;
constexpr int kMaxFrames = 100000;

enum : uint64_t { kTagClipGesture = 101, kTagStream = 102, kTagStreamGesture = 103 };

struct VideoSpec {
  int width, height;
  double fps;
  int frames;
  bool masks;
};

// Tremor is part of the look: every class has it, at rest and in motion.
HandPose WithTremor(const Look& look, HandPose pose, double t) {
  pose.x += look.tremor_x.At(t);
  pose.y += look.tremor_y.At(t);
  pose.angle += look.tremor_angle.At(t);
  pose.scale *= 1 + look.tremor_scale.At(t);
  return pose;
}

// First frame whose time f / fps is at or after t.
int FrameAt(double t, double fps, int frames) {
  const double f = std::ceil(t * fps - 1e-9);
  return static_cast<int>(std::clamp(f, 0.0, static_cast<double>(frames)));
}

void SampleBackground(const Canvas& bg, double shift_x, double shift_y, Canvas* out) {
  const double fx0 = std::floor(shift_x), fy0 = std::floor(shift_y);
  const int ix = static_cast<int>(fx0), iy = static_cast<int>(fy0);
  const float fx = static_cast<float>(shift_x - fx0), fy = static_cast<float>(shift_y - fy0);
  const float w00 = (1 - fx) * (1 - fy), w10 = fx * (1 - fy), w01 = (1 - fx) * fy, w11 = fx * fy;
  for (int j = 0; j < out->height; ++j) {
    const int sj = std::clamp(j + iy - bg.origin_y, 0, bg.height - 2);
    for (int i = 0; i < out->width; ++i) {
      const int si = std::clamp(i + ix - bg.origin_x, 0, bg.width - 2);
      const float* a = &bg.rgb[(static_cast<size_t>(sj) * bg.width + si) * 3];
      const float* b = a + static_cast<size_t>(bg.width) * 3;
      float* o = out->at(i, j);
      for (int k = 0; k < 3; ++k) o[k] = w00 * a[k] + w10 * a[k + 3] + w01 * b[k] + w11 * b[k + 3];
    }
  }
}

void RenderFrames(const Look& look, const HandTimeline& timeline, const VideoSpec& spec,
                  RenderedVideo* out) {
  const int W = spec.width, H = spec.height;
  out->frames = spec.frames;
  out->width = W;
  out->height = H;
  out->fps = spec.fps;
  out->rgb.assign(out->frame_bytes() * spec.frames, 0);
  out->hand.assign(spec.frames, HandState{});
  if (spec.masks) out->hand_mask.assign(static_cast<size_t>(W) * H * spec.frames, 0);

  const int margin = static_cast<int>(std::ceil(kMaxCameraOffset * H)) + 2;
  Canvas background, person;
  std::vector<float> person_alpha;
  BakeBackground(look, W, H, margin, &background);
  BakePerson(look, W, H, margin, &person, &person_alpha);
  const SpriteBounds person_bounds = AlphaBounds(person, person_alpha);
  const std::vector<float> field = LightingField(look, W, H);
  Canvas canvas;
  canvas.Resize(W, H, 0, 0);
  std::vector<float> mask(static_cast<size_t>(W) * H), scratch;
  const float ppu = static_cast<float>(H);
  const double dt = 1 / spec.fps;

  for (int f = 0; f < spec.frames; ++f) {
    const double t = f * dt;
    double cx, cy;
    CameraOffset(look, t, &cx, &cy);
    const View view{ppu, static_cast<float>(cx), static_cast<float>(cy)};
    SampleBackground(background, cx * H, cy * H, &canvas);
    DrawScreens(look, t, view, &canvas);
    double sway_x, sway_y;
    PersonSway(look, t, &sway_x, &sway_y);
    CompositeSprite(person, person_alpha, person_bounds, (sway_x - cx) * H, (sway_y - cy) * H,
                    &canvas);
    DrawDistractors(look, t, view, /*in_front=*/false, &canvas);

    const HandPose pose = WithTremor(look, timeline.At(t), t);
    const HandPose before = WithTremor(look, timeline.At(t - dt), t - dt);
    HandState& state = out->hand[f];
    state.present = pose.present;
    state.x = view.X(pose.x);
    state.y = view.Y(pose.y);
    state.scale = static_cast<float>(pose.scale * H);
    state.angle_deg = static_cast<float>(pose.angle / portable::kDegree);
    state.pitch_deg = static_cast<float>(pose.pitch / portable::kDegree);
    std::fill(mask.begin(), mask.end(), 0.f);
    if (pose.present) {
      // Motion blur, approximated by softer edges: half the distance a
      // fingertip travels in a frame, at most a quarter of the palm.
      const double mx = pose.x - before.x, my = pose.y - before.y;
      const double move = std::sqrt(mx * mx + my * my) +  // not hypot: libm-dependent
                          2.5 * std::fabs(pose.scale - before.scale) +
                          2.5 * pose.scale * std::fabs(pose.angle - before.angle);
      const double blur = std::min(0.5 * move * H, 0.25 * pose.scale * H);
      const float edge = static_cast<float>(std::max(0.75, look.edge_blur * H) + blur);
      DrawHand(pose, look.hand, look.light, view, edge, &canvas, &mask);
    }
    DrawDistractors(look, t, view, /*in_front=*/true, &canvas);
    FinishFrame(look, f, t, field, &canvas, &scratch, out->rgb.data() + out->frame_bytes() * f);

    double area = 0;
    for (float m : mask) area += m;
    state.area_px = static_cast<float>(area);
    if (spec.masks) {
      uint8_t* dst = out->hand_mask.data() + static_cast<size_t>(W) * H * f;
      for (size_t p = 0; p < mask.size(); ++p) dst[p] = static_cast<uint8_t>(mask[p] * 255 + 0.5f);
    }
  }
}

void Require(const std::string& error) {
  if (!error.empty()) throw std::invalid_argument(error);
}

std::string CheckGeometry(const char* what, int width, int height, double fps) {
  const std::string w = what;
  if (width < kMinSize || width > kMaxSize) {
    return w + ": width " + std::to_string(width) + " outside [8, 4096]";
  }
  if (height < kMinSize || height > kMaxSize) {
    return w + ": height " + std::to_string(height) + " outside [8, 4096]";
  }
  if (!(fps > 0 && fps <= kMaxFps)) return w + ": fps " + std::to_string(fps) + " outside (0, 240]";
  return "";
}

void CheckLabel(int label) {
  if (label < 0 || label >= kNumClasses) {
    throw std::invalid_argument("synth: label " + std::to_string(label) + " outside [0, 26]");
  }
}

}  // namespace

const std::vector<std::string>& SynthClassNames() {
  static const std::vector<std::string> kNames = {"Swiping Left",
                                                  "Swiping Right",
                                                  "Swiping Down",
                                                  "Swiping Up",
                                                  "Pushing Hand Away",
                                                  "Pulling Hand In",
                                                  "Sliding Two Fingers Left",
                                                  "Sliding Two Fingers Right",
                                                  "Sliding Two Fingers Down",
                                                  "Sliding Two Fingers Up",
                                                  "Pushing Two Fingers Away",
                                                  "Pulling Two Fingers In",
                                                  "Rolling Hand Forward",
                                                  "Rolling Hand Backward",
                                                  "Turning Hand Clockwise",
                                                  "Turning Hand Counterclockwise",
                                                  "Zooming In With Full Hand",
                                                  "Zooming Out With Full Hand",
                                                  "Zooming In With Two Fingers",
                                                  "Zooming Out With Two Fingers",
                                                  "Thumb Up",
                                                  "Thumb Down",
                                                  "Shaking Hand",
                                                  "Stop Sign",
                                                  "Drumming Fingers",
                                                  "No gesture",
                                                  "Doing other things"};
  return kNames;
}

std::string CheckRenderOptions(const RenderOptions& o) {
  std::string e = CheckGeometry("RenderOptions", o.width, o.height, o.fps);
  if (!e.empty()) return e;
  if (o.frames < 0 || o.frames > kMaxFrames) {
    return "RenderOptions: frames " + std::to_string(o.frames) + " outside [0, 100000]";
  }
  if (!(o.difficulty >= 0 && o.difficulty <= 1)) return "RenderOptions: difficulty outside [0, 1]";
  return "";
}

std::string CheckStreamOptions(const StreamOptions& o) {
  std::string e = CheckGeometry("StreamOptions", o.width, o.height, o.fps);
  if (!e.empty()) return e;
  for (int label : o.labels) {
    if (label < 0 || label >= kNumClasses) {
      return "StreamOptions: label " + std::to_string(label) + " outside [0, 26]";
    }
  }
  if (o.labels.empty() && (o.gestures < 0 || o.gestures > 1000)) {
    return "StreamOptions: gestures " + std::to_string(o.gestures) + " outside [0, 1000]";
  }
  if (o.labels.size() > 1000) return "StreamOptions: more than 1000 labels";
  if (!(o.gap_min_s >= 0 && o.gap_min_s <= o.gap_max_s && o.gap_max_s <= 60)) {
    return "StreamOptions: need 0 <= gap_min_s <= gap_max_s <= 60";
  }
  if (!(o.lead_s >= 0 && o.lead_s <= 60)) return "StreamOptions: lead_s outside [0, 60]";
  if (!(o.difficulty >= 0 && o.difficulty <= 1)) return "StreamOptions: difficulty outside [0, 1]";
  return "";
}

RenderedClip RenderClip(int label, uint64_t seed, const RenderOptions& options) {
  CheckLabel(label);
  Require(CheckRenderOptions(options));
  const double aspect = static_cast<double>(options.width) / options.height;
  const Look look = SampleLook(seed, aspect, options.frames > 0 ? options.frames / options.fps : 0,
                               options.difficulty);
  const int frames = options.frames > 0
                         ? options.frames
                         : std::max(1, static_cast<int>(std::lround(look.duration * options.fps)));

  Rng rng(DeriveSeed(seed, kTagClipGesture, static_cast<uint64_t>(label)));
  GesturePlan plan = PlanGesture(label, rng, look.gesture_start, aspect, /*allow_absent=*/true);
  // Fit the motion into the clip (a slow draw in a short clip goes faster).
  const double available = 0.95 * look.duration - look.gesture_start;
  if (plan.prep + plan.main > available && available > 0) {
    const double k = available / (plan.prep + plan.main);
    plan.prep *= k;
    plan.main *= k;
  }
  if (plan.is_static) plan.hold = std::max(plan.hold, look.duration);  // held to the end

  const bool absent = label == kNoGesture && plan.variant == 0;
  HandPose initial = look.rest;
  if (absent) initial.present = false;
  HandTimeline timeline(look.hand_enters && !absent ? BelowFrame(initial) : initial);
  if (look.hand_enters && !absent) timeline.AddMove(0.85 * look.gesture_start, initial);
  timeline.AddRest(look.gesture_start);
  timeline.AddGesture(plan);

  RenderedClip clip;
  RenderFrames(look, timeline,
               {options.width, options.height, options.fps, frames, options.hand_masks}, &clip);
  clip.label = label;
  if (label == kNoGesture) {
    clip.gesture = {label, 0, frames};
  } else {
    const int start = FrameAt(look.gesture_start, options.fps, frames);
    int end = FrameAt(plan.LabelEnd(), options.fps, frames);
    if (end <= start) end = std::min(frames, start + 1);
    clip.gesture = {label, start, end};
  }
  clip.frame_labels.assign(frames, kNoGesture);
  for (int f = clip.gesture.start; f < clip.gesture.end; ++f) clip.frame_labels[f] = label;
  return clip;
}

RenderedStream RenderStream(uint64_t seed, const StreamOptions& options) {
  Require(CheckStreamOptions(options));
  const double aspect = static_cast<double>(options.width) / options.height;
  Rng rng(DeriveSeed(seed, kTagStream));
  std::vector<int> labels = options.labels;
  if (labels.empty()) {
    for (int i = 0; i < options.gestures; ++i) {
      const int l = rng.UniformInt(kNumClasses - 1);  // every class but No gesture
      labels.push_back(l >= kNoGesture ? l + 1 : l);
    }
  }
  // The hand's look and rest pose do not depend on the duration, so the
  // timeline can be built before the duration-dependent parts are drawn.
  const Look hand_look = SampleLook(seed, aspect, 1.0, options.difficulty);
  HandTimeline timeline(hand_look.hand_enters ? BelowFrame(hand_look.rest) : hand_look.rest);
  if (hand_look.hand_enters) timeline.AddMove(0.85 * options.lead_s, hand_look.rest);
  timeline.AddRest(options.lead_s);
  struct TimedSegment {
    int label;
    double start, end;
  };
  std::vector<TimedSegment> timed;
  for (size_t i = 0; i < labels.size(); ++i) {
    Rng grng(DeriveSeed(seed, kTagStreamGesture, i));
    GesturePlan plan =
        PlanGesture(labels[i], grng, timeline.end_time(), aspect, /*allow_absent=*/false);
    timeline.AddGesture(plan);
    timed.push_back({labels[i], plan.start, plan.LabelEnd()});
    if (i + 1 == labels.size()) break;
    // The pause: back to a new rest pose, slowly, or down out of view and up.
    const double gap = rng.Uniform(options.gap_min_s, options.gap_max_s);
    const double t0 = timeline.end_time();
    HandPose next = SampleRestPose(rng, aspect, hand_look.rest.scale * rng.Uniform(0.85, 1.15));
    if (gap >= 1.0 && rng.Bernoulli(0.3)) {
      timeline.AddMove(t0 + 0.5 * gap, BelowFrame(timeline.EndPose()));
      timeline.AddMove(t0 + gap, next);
    } else {
      timeline.AddMove(t0 + 0.7 * gap, next);
      timeline.AddRest(t0 + gap);
    }
  }
  const double duration = timeline.end_time() + options.lead_s;
  timeline.AddRest(duration);
  const int frames = std::max(1, static_cast<int>(std::lround(duration * options.fps)));
  if (frames > kMaxFrames) {
    throw std::invalid_argument("StreamOptions: the stream would have " + std::to_string(frames) +
                                " frames, more than 100000");
  }
  const Look look = SampleLook(seed, aspect, duration, options.difficulty);

  RenderedStream stream;
  RenderFrames(look, timeline,
               {options.width, options.height, options.fps, frames, options.hand_masks}, &stream);
  stream.frame_labels.assign(frames, kNoGesture);
  int previous_end = 0;
  for (const TimedSegment& s : timed) {
    const int start = std::max(previous_end, FrameAt(s.start, options.fps, frames));
    int end = FrameAt(s.end, options.fps, frames);
    if (end <= start) end = std::min(frames, start + 1);
    if (end <= start) continue;
    previous_end = end;
    stream.segments.push_back({s.label, start, end});
    for (int f = start; f < end; ++f) stream.frame_labels[f] = s.label;
  }
  return stream;
}

}  // namespace billnet::synth
