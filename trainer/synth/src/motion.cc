#include "motion.h"

#include <algorithm>
#include <cmath>

#include "billnet/synth/renderer.h"
#include "portable_math.h"
#include "raster.h"

namespace billnet::synth {
namespace {

using portable::kPi;
using portable::kTwoPi;

// Jester labels (renderer.h lists the names).
enum Label {
  kSwipeLeft = 0,
  kSwipeRight,
  kSwipeDown,
  kSwipeUp,
  kPushHand,
  kPullHand,
  kSlideLeft,
  kSlideRight,
  kSlideDown,
  kSlideUp,
  kPushTwo,
  kPullTwo,
  kRollForward,
  kRollBackward,
  kTurnClockwise,
  kTurnCounterclockwise,
  kZoomInFull,
  kZoomOutFull,
  kZoomInTwo,
  kZoomOutTwo,
  kThumbUp,
  kThumbDown,
  kShaking,
  kStopSign,
  kDrumming,
  kNoGestureLabel,
  kOtherThings,
};

// Hand shapes; each draw jitters them a little.
Articulation OpenShape(Rng& r) {
  Articulation a;
  for (double& c : a.curl) c = r.Uniform(0.0, 0.1);
  a.spread = r.Uniform(0.15, 0.7);
  a.thumb_abduct = r.Uniform(0.6, 1.0);
  a.thumb_flex = r.Uniform(0.0, 0.25);
  a.thumb_curl = r.Uniform(0.0, 0.2);
  a.thumb_base_v = -0.3;
  return a;
}

Articulation TwoFingerShape(Rng& r) {
  Articulation a;
  a.curl[0] = r.Uniform(0.0, 0.1);
  a.curl[1] = r.Uniform(0.0, 0.1);
  a.curl[2] = r.Uniform(0.85, 1.0);
  a.curl[3] = r.Uniform(0.85, 1.0);
  a.spread = r.Uniform(0.0, 0.35);
  a.thumb_abduct = r.Uniform(-1.1, -0.7);
  a.thumb_flex = r.Uniform(0.35, 0.6);
  a.thumb_curl = r.Uniform(0.2, 0.5);
  a.thumb_base_v = r.Uniform(-0.35, -0.2);
  return a;
}

Articulation BunchedShape(Rng& r) {  // fingertips gathered: the closed end of a full-hand zoom
  Articulation a;
  for (double& c : a.curl) c = r.Uniform(0.55, 0.75);
  a.spread = 0;
  a.thumb_abduct = r.Uniform(-0.2, 0.15);
  a.thumb_flex = r.Uniform(0.5, 0.8);
  a.thumb_curl = 0.3;
  a.thumb_base_v = -0.25;
  return a;
}

Articulation SpreadShape(Rng& r) {
  Articulation a;
  for (double& c : a.curl) c = r.Uniform(0.0, 0.08);
  a.spread = r.Uniform(0.85, 1.0);
  a.thumb_abduct = r.Uniform(1.0, 1.3);
  a.thumb_flex = 0.1;
  a.thumb_base_v = -0.3;
  return a;
}

Articulation PinchShape(Rng& r, bool closed) {  // thumb and index; the others curled
  Articulation a;
  for (int i = 1; i < 4; ++i) a.curl[i] = r.Uniform(0.75, 1.0);
  a.spread = 0.1;
  if (closed) {
    a.curl[0] = r.Uniform(0.5, 0.6);
    a.index_tilt = r.Uniform(0.1, 0.25);
    a.thumb_abduct = r.Uniform(0.1, 0.3);
    a.thumb_flex = 0.3;
  } else {
    a.curl[0] = r.Uniform(0.0, 0.1);
    a.index_tilt = r.Uniform(-0.1, 0.05);
    a.thumb_abduct = r.Uniform(1.0, 1.4);
    a.thumb_flex = 0.1;
  }
  a.thumb_base_v = -0.2;
  return a;
}

Articulation ThumbShape(Rng& r, bool up) {  // a fist, the thumb pointing up or down
  Articulation a;
  for (double& c : a.curl) c = r.Uniform(0.9, 1.0);
  a.spread = 0;
  a.thumb_flex = r.Uniform(0.0, 0.2);
  a.thumb_curl = 0;
  // Tilted a little outward, away from the fingers / the forearm.
  if (up) {
    a.thumb_abduct = r.Uniform(0.05, 0.35);
    a.thumb_base_v = r.Uniform(0.2, 0.35);
  } else {
    a.thumb_abduct = kPi - r.Uniform(0.25, 0.55);
    a.thumb_base_v = r.Uniform(-0.45, -0.3);
  }
  return a;
}

Articulation StopShape(Rng& r) {  // open palm, fingers together-ish, upright
  Articulation a;
  for (double& c : a.curl) c = r.Uniform(0.0, 0.06);
  a.spread = r.Uniform(0.0, 0.35);
  a.thumb_abduct = r.Uniform(0.35, 0.7);
  a.thumb_flex = 0.1;
  a.thumb_base_v = -0.3;
  return a;
}

Articulation RandomShape(Rng& r) {
  Articulation a;
  for (double& c : a.curl) c = r.Uniform(0.0, 0.9);
  a.spread = r.Uniform(0.0, 0.6);
  a.thumb_abduct = r.Uniform(-0.3, 1.2);
  a.thumb_flex = r.Uniform(0.0, 0.5);
  a.thumb_curl = r.Uniform(0.0, 0.5);
  a.thumb_base_v = r.Uniform(-0.4, -0.2);
  return a;
}

// 0 at the ends, 1 in the middle, smooth ramps over the first and last 20%.
double Envelope(double tm) { return MinJerk(tm / 0.2) * MinJerk((1 - tm) / 0.2); }

void SetDirection(GesturePlan* p, double dx, double dy, Rng& r) {
  double s, c;
  portable::SinCos(r.Uniform(-0.2, 0.2), &s, &c);  // direction jitter
  p->dir_x = c * dx - s * dy;
  p->dir_y = s * dx + c * dy;
}

}  // namespace

GesturePlan PlanGesture(int label, Rng& r, double start, double aspect, bool allow_absent) {
  GesturePlan p;
  p.label = label;
  p.start = start;
  const double speed = r.LogUniform(0.75, 1.35);  // > 1: slower
  p.prep = r.Uniform(0.15, 0.35) * speed;
  p.warp = r.LogUniform(0.75, 1.33);
  switch (label) {
    case kSwipeLeft:
    case kSwipeRight:
    case kSwipeDown:
    case kSwipeUp:
    case kSlideLeft:
    case kSlideRight:
    case kSlideDown:
    case kSlideUp: {
      const bool two = label >= kSlideLeft;
      const int d = label - (two ? kSlideLeft : kSwipeLeft);
      const bool horizontal = d < 2;
      const double dx = d == 0 ? -1 : (d == 1 ? 1 : 0), dy = d == 2 ? 1 : (d == 3 ? -1 : 0);
      p.shape_from = two ? TwoFingerShape(r) : OpenShape(r);
      SetDirection(&p, dx, dy, r);
      if (two) {
        p.amount = horizontal ? r.Uniform(0.18, 0.4) * aspect : r.Uniform(0.22, 0.45);
        p.main = r.Uniform(0.5, 1.0) * speed;
      } else {
        p.amount = horizontal ? r.Uniform(0.35, 0.7) * aspect : r.Uniform(0.4, 0.8);
        p.main = r.Uniform(0.45, 0.9) * speed;
      }
      p.arc = r.Uniform(-0.15, 0.15) * p.amount;
      p.tilt = r.Uniform(0.0, 0.25);  // one draw per statement: argument order is unspecified
      p.tilt *= horizontal ? dx : r.Sign();
      break;
    }
    case kPushHand:
    case kPullHand:
    case kPushTwo:
    case kPullTwo: {
      const bool two = label >= kPushTwo;
      const bool push = label == kPushHand || label == kPushTwo;
      p.shape_from = two ? TwoFingerShape(r) : OpenShape(r);
      const double factor = push ? (two ? r.Uniform(0.5, 0.72) : r.Uniform(0.45, 0.68))
                                 : (two ? r.Uniform(1.35, 1.9) : r.Uniform(1.45, 2.0));
      p.amount = portable::Log(factor);
      p.drift_x = r.Uniform(-0.03, 0.03);
      p.drift_y = r.Uniform(-0.06, 0.03);
      p.main = r.Uniform(0.5, 1.0) * speed;
      break;
    }
    case kRollForward:
    case kRollBackward:
      p.shape_from = OpenShape(r);
      p.order = label == kRollForward ? 1 : -1;
      p.cycles = r.Uniform(1.2, 2.4);
      p.radius = r.Uniform(0.04, 0.09);
      p.scale_amp = r.Uniform(0.1, 0.22);
      p.pitch_amp = r.Uniform(0.5, 0.95);
      p.main = p.cycles * r.Uniform(0.55, 0.9) * speed;
      break;
    case kTurnClockwise:
    case kTurnCounterclockwise:
      p.shape_from = OpenShape(r);
      for (double& c : p.shape_from.curl) c = r.Uniform(0.0, 0.3);
      p.amount = r.Uniform(1.05, 2.45) * (label == kTurnClockwise ? 1 : -1);
      p.main = r.Uniform(0.6, 1.3) * speed;
      break;
    case kZoomInFull:
    case kZoomOutFull:
    case kZoomInTwo:
    case kZoomOutTwo: {
      const bool two = label >= kZoomInTwo;
      const bool in = label == kZoomInFull || label == kZoomInTwo;
      const Articulation closed = two ? PinchShape(r, true) : BunchedShape(r);
      const Articulation open = two ? PinchShape(r, false) : SpreadShape(r);
      p.shape_from = in ? closed : open;
      p.shape_to = in ? open : closed;
      p.drift_x = r.Uniform(-0.02, 0.02);
      p.drift_y = r.Uniform(-0.02, 0.02);
      p.main = r.Uniform(0.5, 1.0) * speed;
      break;
    }
    case kThumbUp:
    case kThumbDown:
    case kStopSign:
      p.is_static = true;
      p.shape_from = label == kStopSign ? StopShape(r) : ThumbShape(r, label == kThumbUp);
      p.prep = r.Uniform(0.3, 0.6) * speed;
      p.raise = label == kStopSign ? r.Uniform(0.04, 0.12) : r.Uniform(0.02, 0.1);
      p.grow = label == kStopSign ? r.Uniform(0.05, 0.2) : r.Uniform(0.0, 0.15);
      p.bob = label == kStopSign ? r.Uniform(0.0, 0.004) : r.Uniform(0.0, 0.015);
      p.hz = r.Uniform(0.5, 1.5);
      p.main = 0;
      p.hold = r.Uniform(1.0, 2.0);
      break;
    case kShaking:
      p.shape_from = OpenShape(r);
      p.cycles = r.Uniform(2.0, 4.0);
      p.amount = r.Uniform(0.04, 0.1);
      p.angle_amp = r.Uniform(0.17, 0.5);
      p.main = p.cycles * r.Uniform(0.3, 0.5) * speed;
      break;
    case kDrumming:
      for (double& c : p.shape_from.curl) c = r.Uniform(0.1, 0.25);
      p.shape_from.spread = r.Uniform(0.1, 0.3);
      p.shape_from.thumb_abduct = r.Uniform(0.4, 0.8);
      p.hz = r.Uniform(1.0, 2.2);
      p.amount = r.Uniform(0.35, 0.6);
      p.phase_step = r.Uniform(0.5, 1.0);
      p.order = r.Bernoulli(0.5) ? 1 : -1;
      p.main = r.Uniform(1.2, 2.2) * speed;
      break;
    case kNoGestureLabel:
      p.morph = false;
      p.prep = 0;
      p.variant = allow_absent && r.Bernoulli(0.25) ? 0 : 1;
      if (r.Bernoulli(0.4)) {
        p.drift_x = r.Uniform(-0.03, 0.03);
        p.drift_y = r.Uniform(-0.03, 0.03);
      }
      p.main = r.Uniform(1.0, 2.0) * speed;
      break;
    case kOtherThings:
    default: {
      p.morph = false;
      p.prep = 0;
      p.variant = r.Choose({0.5, 0.25, 0.25});
      p.main = r.Uniform(1.0, 2.2) * speed;
      p.keys.push_back({});  // t = 0: the rest pose
      if (p.variant == 1) {  // scratch: go somewhere, then small fast rubbing
        GesturePlan::Key k;
        k.t = 0.3;
        k.dx = r.Uniform(-0.15, 0.15);
        k.dy = r.Uniform(-0.15, 0.15);
        k.dangle = r.Uniform(-0.5, 0.5);
        k.art = RandomShape(r);
        for (double& c : k.art.curl) c = r.Uniform(0.3, 0.6);
        p.keys.push_back(k);
        p.hz = r.Uniform(2.0, 3.5);
        p.amount = r.Uniform(0.01, 0.025);
        double s, c;
        portable::SinCos(r.Uniform(0, kPi), &s, &c);
        p.dir_x = c;
        p.dir_y = s;
      } else {  // wander (larger moves) or fidget (the fingers, mostly)
        const int n = p.variant == 0 ? r.UniformInt(3, 5) : r.UniformInt(4, 6);
        const double reach = p.variant == 0 ? 0.12 : 0.03;
        for (int i = 1; i <= n; ++i) {
          GesturePlan::Key k;
          k.t = (i - r.Uniform(0.0, 0.4)) / n;
          k.dx = r.Uniform(-reach, reach);
          k.dy = r.Uniform(-reach, reach);
          k.dangle = r.Uniform(-0.4, 0.4) * (p.variant == 0 ? 1 : 0.4);
          k.dscale = portable::Log(r.Uniform(0.88, 1.12));
          k.art = RandomShape(r);
          p.keys.push_back(k);
        }
      }
      break;
    }
  }
  if (!p.is_static) p.hold = r.Uniform(0.2, 0.6);
  if (label < kZoomInFull || label > kZoomOutTwo) p.shape_to = p.shape_from;
  return p;
}

HandPose EvaluateGesture(const GesturePlan& p, const HandPose& rest, double t) {
  HandPose h = rest;
  const double since_prep = t - p.start;
  const double since_main = since_prep - p.prep;
  const double ep = p.prep > 0 ? MinJerk(since_prep / p.prep) : (since_prep >= 0 ? 1 : 0);
  const double tm = p.main > 0 ? Clamp01(since_main / p.main) : (since_main >= 0 ? 1 : 0);
  const double e = MinJerk(portable::Pow(std::max(tm, 1e-12), p.warp));
  const double env = Envelope(tm);
  if (p.morph) h.art = Lerp(rest.art, p.shape_from, ep);
  h.y -= p.raise * ep;
  h.scale *= 1 + p.grow * ep;

  switch (p.label) {
    case kSwipeLeft:
    case kSwipeRight:
    case kSwipeDown:
    case kSwipeUp:
    case kSlideLeft:
    case kSlideRight:
    case kSlideDown:
    case kSlideUp: {
      const double bow = portable::Sin(kPi * e);
      h.x += p.dir_x * p.amount * e - p.dir_y * p.arc * bow;
      h.y += p.dir_y * p.amount * e + p.dir_x * p.arc * bow;
      h.angle += p.tilt * bow;
      break;
    }
    case kPushHand:
    case kPullHand:
    case kPushTwo:
    case kPullTwo:
      h.scale *= portable::Exp(p.amount * e);
      h.x += p.drift_x * e;
      h.y += p.drift_y * e;
      break;
    case kRollForward:
    case kRollBackward: {
      // A loop in the (y, depth) plane. Rolling forward (toward the camera
      // over the top of the loop): the hand is largest, pitched toward the
      // camera, while it moves down; backward reverses the loop.
      double s, c;
      portable::SinCos(p.order * kTwoPi * p.cycles * tm, &s, &c);
      h.y += env * p.radius * s;
      h.scale *= 1 + env * p.scale_amp * c;
      h.pitch += env * p.pitch_amp * c;
      break;
    }
    case kTurnClockwise:
    case kTurnCounterclockwise:
      h.angle += p.amount * e;
      break;
    case kZoomInFull:
    case kZoomOutFull:
    case kZoomInTwo:
    case kZoomOutTwo:
      h.art = Lerp(h.art, p.shape_to, e);
      h.x += p.drift_x * e;
      h.y += p.drift_y * e;
      break;
    case kThumbUp:
    case kThumbDown:
    case kStopSign:
      if (since_main > 0) {
        h.y += p.bob * portable::Sin(kTwoPi * p.hz * since_main) * MinJerk(since_main / 0.3);
      }
      break;
    case kShaking: {
      const double s = portable::Sin(kTwoPi * p.cycles * tm);
      const double s_lag = portable::Sin(kTwoPi * p.cycles * tm - 0.6);
      h.x += env * p.amount * s;
      h.angle += env * p.angle_amp * s_lag;
      break;
    }
    case kDrumming:
      for (int i = 0; i < 4; ++i) {
        const int k = p.order > 0 ? i : 3 - i;
        const double wave =
            portable::Sin(kTwoPi * p.hz * std::max(0.0, since_main) - k * p.phase_step);
        h.art.curl[i] = std::min(1.0, h.art.curl[i] + env * p.amount * std::max(0.0, wave));
      }
      break;
    case kNoGestureLabel:
      if (p.variant == 0) h.present = false;
      h.x += p.drift_x * e;
      h.y += p.drift_y * e;
      break;
    case kOtherThings: {
      // Piecewise minimum-jerk between keys.
      const auto& keys = p.keys;
      size_t i = 0;
      while (i + 1 < keys.size() && keys[i + 1].t <= tm) ++i;
      const GesturePlan::Key& a = keys[i];
      const GesturePlan::Key& b = keys[std::min(i + 1, keys.size() - 1)];
      const double f = b.t > a.t ? MinJerk((tm - a.t) / (b.t - a.t)) : 1.0;
      const Articulation art_a = i == 0 ? rest.art : a.art;
      h.x += a.dx + (b.dx - a.dx) * f;
      h.y += a.dy + (b.dy - a.dy) * f;
      h.angle += a.dangle + (b.dangle - a.dangle) * f;
      h.scale *= portable::Exp(a.dscale + (b.dscale - a.dscale) * f);
      h.art = Lerp(art_a, b.art, f);
      if (p.variant == 1 && tm > 0.3) {  // scratching
        const double w = MinJerk((tm - 0.3) / 0.1) * env;
        const double s = portable::Sin(kTwoPi * p.hz * since_main);
        h.x += w * p.amount * s * p.dir_x;
        h.y += w * p.amount * s * p.dir_y;
        for (double& c : h.art.curl) c = std::clamp(c + 0.2 * w * s, 0.0, 1.0);
      }
      break;
    }
    default:
      break;
  }
  return h;
}

HandPose BelowFrame(const HandPose& pose) {
  HandPose p = pose;
  p.y = 1.0 + 3.2 * pose.scale + 0.02;
  return p;
}

HandTimeline::HandTimeline(const HandPose& initial) : initial_(initial) {}

double HandTimeline::end_time() const { return phases_.empty() ? 0.0 : phases_.back().t1; }

HandPose HandTimeline::EndPose() const {
  return phases_.empty() ? initial_ : Evaluate(phases_.back(), phases_.back().t1);
}

void HandTimeline::AddRest(double until) {
  const HandPose from = EndPose();
  phases_.push_back({Kind::kRest, end_time(), std::max(until, end_time()), from, from, {}});
}

void HandTimeline::AddMove(double until, const HandPose& to) {
  phases_.push_back({Kind::kMove, end_time(), std::max(until, end_time()), EndPose(), to, {}});
}

void HandTimeline::AddGesture(const GesturePlan& plan) {
  GesturePlan p = plan;
  p.start = end_time();
  const HandPose from = EndPose();
  phases_.push_back({Kind::kGesture, p.start, p.End(), from, from, p});
}

HandPose HandTimeline::Evaluate(const Phase& p, double t) const {
  switch (p.kind) {
    case Kind::kRest:
      return p.from;
    case Kind::kMove: {
      const double f = p.t1 > p.t0 ? MinJerk((t - p.t0) / (p.t1 - p.t0)) : 1.0;
      HandPose h = Lerp(p.from, p.to, f);
      h.present = p.to.present || p.from.present;
      return h;
    }
    case Kind::kGesture:
      return EvaluateGesture(p.plan, p.from, t);
  }
  return p.from;
}

HandPose HandTimeline::At(double t) const {
  if (phases_.empty() || t < phases_.front().t0) return initial_;
  // Phases are few (a clip has 2-3, a stream a few dozen): a linear scan.
  size_t i = 0;
  while (i + 1 < phases_.size() && phases_[i + 1].t0 <= t) ++i;
  return Evaluate(phases_[i], t);
}

}  // namespace billnet::synth
