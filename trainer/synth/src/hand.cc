#include "hand.h"

#include <algorithm>
#include <cmath>

#include "portable_math.h"

namespace billnet::synth {
namespace {

using portable::SinCos;

constexpr double kCameraDistance = 7.0;  // hand units, for perspective
constexpr double kFingerBaseU[4] = {-0.6, -0.2, 0.2, 0.58};
constexpr double kFingerBaseV[4] = {0.78, 0.85, 0.8, 0.68};
constexpr double kFingerRadius[4] = {0.2, 0.21, 0.2, 0.17};
constexpr double kFingerSpread[4] = {-0.23, -0.07, 0.09, 0.25};  // rad at spread = 1
constexpr double kPalmU[4] = {-0.6, 0.6, 0.47, -0.52};
constexpr double kPalmV[4] = {0.55, 0.55, -0.55, -0.55};
constexpr double kPalmRounding = 0.42;
constexpr double kForearmRadius = 0.62;

struct Vec3 {
  double u, v, w;
};

// Projects hand coordinates into frame pixels.
class Projector {
 public:
  Projector(const HandPose& pose, const HandLook& look, const View& view)
      : pose_(pose), mirror_(look.mirror), view_(view) {
    SinCos(pose.pitch, &sp_, &cp_);
    SinCos(pose.angle, &sa_, &ca_);
  }

  // Frame pixel position, local scale (pixels per hand unit) and depth.
  void Project(const Vec3& p, float* x, float* y, float* scale, double* depth) const {
    const double v = p.v * cp_ - p.w * sp_;
    const double w = p.v * sp_ + p.w * cp_;
    const double f = kCameraDistance / (kCameraDistance - std::min(w, kCameraDistance - 1));
    const double X = mirror_ * p.u * f, Y = -v * f;  // image axes, y down
    const double s = pose_.scale;
    *x = view_.X(pose_.x + s * (ca_ * X - sa_ * Y));
    *y = view_.Y(pose_.y + s * (sa_ * X + ca_ * Y));
    *scale = static_cast<float>(s * f * view_.pixels_per_unit);
    *depth = w;
  }

  // The palm's normal in image coordinates.
  void PalmNormal(float* nx, float* ny, float* nz) const {
    // (0, 0, 1) pitched: v = -sin, w = cos; image Y = -v; then in-plane rotation.
    const double Y = sp_;
    *nx = static_cast<float>(-sa_ * Y);
    *ny = static_cast<float>(ca_ * Y);
    *nz = static_cast<float>(cp_);
  }

 private:
  const HandPose& pose_;
  double mirror_;
  const View& view_;
  double sp_, cp_, sa_, ca_;
};

struct Part {
  Shape shape;
  double depth;
  float shade;  // colour factor, separates overlapping parts
  int order;    // tie-break: drawing order among equal depths
};

Vec3 Direction(double in_plane, double flex) {
  // in_plane: rad from +v toward +u; flex: rad toward +w.
  double si, ci, sf, cf;
  SinCos(in_plane, &si, &ci);
  SinCos(flex, &sf, &cf);
  return {si * cf, ci * cf, sf};
}

Vec3 Add(const Vec3& a, const Vec3& d, double k) {
  return {a.u + d.u * k, a.v + d.v * k, a.w + d.w * k};
}

// A capsule between two hand points.
Part Segment(const Projector& proj, const Vec3& a, const Vec3& b, double radius, float shade,
             int order) {
  float ax, ay, as, bx, by, bs;
  double ad, bd;
  proj.Project(a, &ax, &ay, &as, &ad);
  proj.Project(b, &bx, &by, &bs, &bd);
  return {Shape::Capsule(ax, ay, bx, by, static_cast<float>(radius) * 0.5f * (as + bs)),
          0.5 * (ad + bd), shade, order};
}

}  // namespace

Articulation Lerp(const Articulation& a, const Articulation& b, double t) {
  Articulation r;
  for (int i = 0; i < 4; ++i) r.curl[i] = a.curl[i] + (b.curl[i] - a.curl[i]) * t;
  r.spread = a.spread + (b.spread - a.spread) * t;
  r.thumb_abduct = a.thumb_abduct + (b.thumb_abduct - a.thumb_abduct) * t;
  r.thumb_flex = a.thumb_flex + (b.thumb_flex - a.thumb_flex) * t;
  r.thumb_curl = a.thumb_curl + (b.thumb_curl - a.thumb_curl) * t;
  r.thumb_base_v = a.thumb_base_v + (b.thumb_base_v - a.thumb_base_v) * t;
  r.index_tilt = a.index_tilt + (b.index_tilt - a.index_tilt) * t;
  return r;
}

HandPose Lerp(const HandPose& a, const HandPose& b, double t) {
  HandPose r;
  r.present = t < 0.5 ? a.present : b.present;
  r.x = a.x + (b.x - a.x) * t;
  r.y = a.y + (b.y - a.y) * t;
  r.scale = a.scale * portable::Exp(portable::Log(b.scale / a.scale) * t);
  r.angle = a.angle + (b.angle - a.angle) * t;
  r.pitch = a.pitch + (b.pitch - a.pitch) * t;
  r.art = Lerp(a.art, b.art, t);
  return r;
}

void DrawHand(const HandPose& pose, const HandLook& look, const Light& light, const View& view,
              float edge, Canvas* canvas, std::vector<float>* mask) {
  if (!pose.present) return;
  const Projector proj(pose, look, view);
  Material mat;
  mat.light = light;
  mat.edge = edge;
  proj.PalmNormal(&mat.base_nx, &mat.base_ny, &mat.base_nz);

  // Forearm: from the wrist to an elbow below the frame, behind everything.
  if (look.forearm) {
    float wx, wy, ws;
    double wd;
    proj.Project({0, -0.95 * look.palm_length, -0.1}, &wx, &wy, &ws, &wd);
    const double elbow_x =
        look.elbow_anchor_x + 0.6 * (pose.x - look.elbow_anchor_x) + look.elbow_dx;
    const float ex = view.X(elbow_x), ey = view.Y(look.elbow_y);
    Material arm = mat;
    arm.colour = look.sleeve;
    arm.base_nx = 0;
    arm.base_ny = 0;
    arm.base_nz = 1;
    DrawShape(Shape::Capsule(wx, wy, ex, ey, static_cast<float>(kForearmRadius) * ws), arm, canvas);
  }

  std::vector<Part> parts;
  parts.reserve(11);
  // Palm.
  {
    float qx[4], qy[4], s_sum = 0;
    for (int i = 0; i < 4; ++i) {
      float s;
      double d;
      proj.Project({kPalmU[i], kPalmV[i] * look.palm_length, 0}, &qx[i], &qy[i], &s, &d);
      s_sum += s;
    }
    parts.push_back(
        {Shape::RoundedQuad(qx, qy, static_cast<float>(kPalmRounding) * s_sum / 4), 0.0, 1.0f, 0});
  }
  const Articulation& a = pose.art;
  // Thumb.
  {
    const Vec3 base{-0.78, a.thumb_base_v * look.palm_length, 0.12};
    // The in-plane angle is measured from +v toward +u; the thumb side is -u.
    const Vec3 d1 = Direction(-a.thumb_abduct, a.thumb_flex);
    const Vec3 mid = Add(base, d1, 0.72);
    const Vec3 d2 =
        Direction(-a.thumb_abduct + 0.9 * a.thumb_curl, a.thumb_flex + 0.5 * a.thumb_curl);
    const Vec3 tip = Add(mid, d2, 0.6);
    parts.push_back(Segment(proj, base, mid, 0.25 * look.finger_width, 0.96f, 1));
    parts.push_back(Segment(proj, mid, tip, 0.22 * look.finger_width, 0.97f, 2));
  }
  // Fingers.
  for (int i = 0; i < 4; ++i) {
    const double c = std::clamp(a.curl[i], 0.0, 1.0);
    const double psi = a.spread * kFingerSpread[i] - (i == 0 ? a.index_tilt : 0.0);
    const double len = look.finger_length[i];
    const Vec3 base{kFingerBaseU[i], kFingerBaseV[i] * look.palm_length, 0};
    const double radius = kFingerRadius[i] * look.finger_width;
    const Vec3 mid = Add(base, Direction(psi, c * 1.4), 0.45 * len);
    const Vec3 tip = Add(mid, Direction(psi, c * 3.5), 0.55 * len);
    const float shade = 0.95f + 0.015f * static_cast<float>(i & 1);
    parts.push_back(Segment(proj, base, mid, radius, shade, 3 + 2 * i));
    parts.push_back(Segment(proj, mid, tip, radius * 0.9, shade, 4 + 2 * i));
  }
  std::stable_sort(parts.begin(), parts.end(), [](const Part& x, const Part& y) {
    // Depth buckets of 0.05 hand units keep the drawing order stable for parts
    // in the palm's plane.
    const double dx = std::floor(x.depth / 0.05), dy = std::floor(y.depth / 0.05);
    if (dx != dy) return dx < dy;
    return x.order < y.order;
  });
  for (const Part& p : parts) {
    Material m = mat;
    m.colour = look.skin * p.shade;
    DrawShape(p.shape, m, canvas, mask);
  }
}

}  // namespace billnet::synth
