// How the hand moves: one GesturePlan per performed gesture (class-specific
// parameters drawn from the label's own random stream), and a HandTimeline
// that chains rests, moves and gestures into a pose for any time.
//
// A gesture, starting from whatever rest pose the hand is in:
//   [start, start + prep)       preparation: the hand takes the class's shape
//                               (static signs also rise a little);
//   [.., + main)                the class's motion (none for static signs);
//   [.., + hold)                the end pose is held (a static sign: the sign).
// Classes differ only in these motions and shapes; where the hand is, its
// size, look and rest pose come from the scene (scene.h).
#ifndef BILLNET_SYNTH_MOTION_H_
#define BILLNET_SYNTH_MOTION_H_

#include <vector>

#include "hand.h"
#include "random.h"

namespace billnet::synth {

struct GesturePlan {
  int label = 0;
  // No gesture: 0 hand absent, 1 resting. Doing other things: 0 wander,
  // 1 scratch, 2 fidget.
  int variant = 0;
  double start = 0, prep = 0, main = 0, hold = 0;  // seconds
  bool is_static = false;  // the label covers the hold (thumb up/down, stop sign)
  bool morph = true;       // the preparation morphs the rest shape into shape_from
  Articulation shape_from, shape_to;
  double dir_x = 0, dir_y = 0;  // unit direction of a translation (image axes)
  double amount = 0;            // distance / log scale factor / rotation / amplitude
  double arc = 0, tilt = 0, drift_x = 0, drift_y = 0, warp = 1;
  double cycles = 0, hz = 0, radius = 0, scale_amp = 0, pitch_amp = 0, angle_amp = 0;
  double phase_step = 0, raise = 0, grow = 0, bob = 0;
  int order = 1;  // rolling / drumming direction
  struct Key {    // Doing other things: offsets from the rest pose at a fraction of `main`
    double t = 0, dx = 0, dy = 0, dangle = 0, dscale = 0;
    Articulation art;
  };
  std::vector<Key> keys;

  double LabelEnd() const { return start + prep + main + (is_static ? hold : 0); }
  double End() const { return start + prep + main + hold; }
};

// Draws the class-specific parameters. `allow_absent`: No gesture may be a
// clip without any hand.
GesturePlan PlanGesture(int label, Rng& rng, double start, double aspect, bool allow_absent);

// The pose at time t of a gesture begun from `rest` (no tremor).
HandPose EvaluateGesture(const GesturePlan& plan, const HandPose& rest, double t);

class HandTimeline {
 public:
  explicit HandTimeline(const HandPose& initial);

  // Each phase starts where the previous ended (at end_time()).
  void AddRest(double until);
  void AddMove(double until, const HandPose& to);  // minimum-jerk path
  void AddGesture(const GesturePlan& plan);        // until plan.End(); plan.start = end_time()

  double end_time() const;
  HandPose EndPose() const;
  HandPose At(double t) const;  // after the last phase: the last phase continued

 private:
  enum class Kind { kRest, kMove, kGesture };
  struct Phase {
    Kind kind;
    double t0, t1;
    HandPose from, to;
    GesturePlan plan;
  };
  HandPose Evaluate(const Phase& p, double t) const;

  HandPose initial_;
  std::vector<Phase> phases_;
};

// The pose below the bottom edge from which `pose` rises into view.
HandPose BelowFrame(const HandPose& pose);

}  // namespace billnet::synth

#endif  // BILLNET_SYNTH_MOTION_H_
