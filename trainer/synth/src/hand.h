// The articulated hand: a palm, four two-segment fingers, a two-segment thumb
// and a forearm, posed in 3-D hand coordinates and drawn as shaded shapes.
//
// Hand coordinates (units: the palm's half-width): u across the palm (the
// thumb on the -u side), v along the hand toward the fingertips, w toward the
// camera when the palm faces it. Scene coordinates: units of the frame
// height, x right in [0, aspect], y down in [0, 1].
#ifndef BILLNET_SYNTH_HAND_H_
#define BILLNET_SYNTH_HAND_H_

#include <vector>

#include "raster.h"

namespace billnet::synth {

struct Articulation {
  double curl[4] = {0, 0, 0, 0};  // index, middle, ring, little: 0 straight .. 1 fist
  double spread = 0.3;            // 0 fingers together .. 1 wide apart
  double thumb_abduct = 0.8;      // rad from +v toward the thumb side (< 0: across the palm)
  double thumb_flex = 0.15;       // rad toward the camera
  double thumb_curl = 0;          // 0..1, bend of the distal segment
  double thumb_base_v = -0.3;     // where the thumb leaves the palm, along v
  double index_tilt = 0;          // rad, extra tilt of the index toward the thumb (pinch)
};
Articulation Lerp(const Articulation& a, const Articulation& b, double t);

struct HandPose {
  bool present = true;
  double x = 0, y = 0;  // palm centre, scene units
  double scale = 0.1;   // palm half-width, scene units
  double angle = 0;     // rad; increases clockwise in the image
  double pitch = 0;     // rad about the hand's u axis; > 0: fingertips toward the camera
  Articulation art;
};
HandPose Lerp(const HandPose& a, const HandPose& b, double t);

// What does not change while the hand moves.
struct HandLook {
  Rgb skin;
  Rgb sleeve;         // forearm colour (skin when bare)
  double mirror = 1;  // +1 or -1: which hand
  double finger_length[4] = {1.55, 1.7, 1.6, 1.25};
  double finger_width = 1;    // scales finger and thumb radii
  double palm_length = 1;     // scales the palm along v
  double elbow_dx = 0;        // elbow x relative to the hand, scene units
  double elbow_y = 1.4;       // elbow height, scene units (below the frame)
  double elbow_anchor_x = 0;  // the elbow follows the hand only partly in x
  bool forearm = true;
};

// Scene to frame pixels: pixel = (scene - camera) * pixels_per_unit - 0.5.
struct View {
  float pixels_per_unit = 100;
  float camera_x = 0, camera_y = 0;
  float X(double x) const { return static_cast<float>((x - camera_x) * pixels_per_unit - 0.5); }
  float Y(double y) const { return static_cast<float>((y - camera_y) * pixels_per_unit - 0.5); }
};

// Draws the hand. `mask` (one float per canvas pixel, may be null) receives
// the coverage of palm, fingers and thumb (not the forearm). `edge` is the
// edge width in pixels.
void DrawHand(const HandPose& pose, const HandLook& look, const Light& light, const View& view,
              float edge, Canvas* canvas, std::vector<float>* mask);

}  // namespace billnet::synth

#endif  // BILLNET_SYNTH_HAND_H_
