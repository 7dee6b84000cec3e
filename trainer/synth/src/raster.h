// Float RGB canvases and anti-aliased, shaded 2-D shapes: the renderer's only
// drawing primitives. Coordinates are frame pixels with pixel centres at
// integers (pixel (i, j) covers [i - 0.5, i + 0.5) x [j - 0.5, j + 0.5)),
// x right, y down. Colours are floats in [0, 1].
#ifndef BILLNET_SYNTH_RASTER_H_
#define BILLNET_SYNTH_RASTER_H_

#include <cstddef>
#include <vector>

namespace billnet::synth {

struct Rgb {
  float r = 0, g = 0, b = 0;
};
inline Rgb operator*(Rgb c, float k) { return {c.r * k, c.g * k, c.b * k}; }
inline Rgb operator*(Rgb a, Rgb b) { return {a.r * b.r, a.g * b.g, a.b * b.b}; }
inline Rgb operator+(Rgb a, Rgb b) { return {a.r + b.r, a.g + b.g, a.b + b.b}; }
inline Rgb Mix(Rgb a, Rgb b, float t) {
  return {a.r + (b.r - a.r) * t, a.g + (b.g - a.g) * t, a.b + (b.b - a.b) * t};
}

// A width x height RGB image whose pixel (0, 0) is frame pixel (origin_x,
// origin_y) (a negative origin gives a margin around the frame).
struct Canvas {
  int width = 0, height = 0;
  int origin_x = 0, origin_y = 0;
  std::vector<float> rgb;  // height x width x 3

  void Resize(int w, int h, int ox, int oy);
  float* at(int i, int j) { return rgb.data() + (static_cast<size_t>(j) * width + i) * 3; }
};

// A shape with a signed distance (pixels, negative inside) and a surface
// normal for shading: a capsule (rounded segment), a convex quad whose core is
// rounded by `radius`, or a rotated ellipse.
struct Shape {
  enum class Kind { kCapsule, kRoundedQuad, kEllipse };
  Kind kind = Kind::kCapsule;
  float ax = 0, ay = 0, bx = 0, by = 0;  // capsule axis
  float radius = 0;                      // capsule radius, quad rounding
  float qx[4] = {}, qy[4] = {};          // quad core corners, convex, either winding
  float cx = 0, cy = 0, rx = 1, ry = 1, cos_a = 1, sin_a = 0;  // ellipse

  static Shape Capsule(float ax, float ay, float bx, float by, float radius);
  static Shape RoundedQuad(const float qx[4], const float qy[4], float radius);
  // A rotated rectangle with rounded corners (total half extents hx, hy).
  static Shape Box(float cx, float cy, float hx, float hy, float angle, float rounding);
  static Shape Ellipse(float cx, float cy, float rx, float ry, float angle);

  // Signed distance at (px, py); *nx, *ny get the in-plane part of the
  // surface normal of the solid the shape stands for (a tube, a cushion, an
  // ellipsoid), length <= 1.
  float Distance(float px, float py, float* nx, float* ny) const;
  void Bounds(float* x0, float* y0, float* x1, float* y1) const;
};

// Directional light in image coordinates (x right, y down, z toward the camera).
struct Light {
  float x = 0, y = -0.5f, z = 0.866f;
  float ambient = 0.6f, diffuse = 0.4f;
};

struct Material {
  Rgb colour;
  bool lit = true;  // false: flat colour
  Light light;
  // Normal of the shape's flat part (a pitched palm), unit, image coordinates.
  float base_nx = 0, base_ny = 0, base_nz = 1;
  float opacity = 1;
  float edge = 1;  // anti-aliasing / blur width, pixels (>= 0.5)
};

// Composites the shape over the canvas. When `mask` is given (one float per
// canvas pixel) the coverage is also accumulated there as a union, so a
// canvas that starts black with a zero mask ends up holding premultiplied
// colour and alpha (a sprite).
void DrawShape(const Shape& shape, const Material& material, Canvas* canvas,
               std::vector<float>* mask = nullptr);

// Composites a premultiplied sprite (colour `sprite`, alpha `alpha`, same
// geometry) over `canvas`, the sprite shifted by (dx, dy) pixels (bilinear).
// Only the sprite's rows [row0, row1) and columns [col0, col1) are read.
struct SpriteBounds {
  int col0 = 0, col1 = 0, row0 = 0, row1 = 0;
};
SpriteBounds AlphaBounds(const Canvas& sprite, const std::vector<float>& alpha);
void CompositeSprite(const Canvas& sprite, const std::vector<float>& alpha,
                     const SpriteBounds& bounds, double dx, double dy, Canvas* canvas);

inline float Clamp01(float x) { return x < 0 ? 0 : (x > 1 ? 1 : x); }
inline double Clamp01(double x) { return x < 0 ? 0 : (x > 1 ? 1 : x); }
// The minimum-jerk profile 10t^3 - 15t^4 + 6t^5 on [0, 1], clamped.
inline double MinJerk(double t) {
  t = Clamp01(t);
  return t * t * t * (10 + t * (-15 + 6 * t));
}

}  // namespace billnet::synth

#endif  // BILLNET_SYNTH_RASTER_H_
