#include "raster.h"

#include <algorithm>
#include <cmath>

#include "portable_math.h"

namespace billnet::synth {

void Canvas::Resize(int w, int h, int ox, int oy) {
  width = w;
  height = h;
  origin_x = ox;
  origin_y = oy;
  rgb.assign(static_cast<size_t>(w) * h * 3, 0.f);
}

Shape Shape::Capsule(float ax, float ay, float bx, float by, float radius) {
  Shape s;
  s.kind = Kind::kCapsule;
  s.ax = ax;
  s.ay = ay;
  s.bx = bx;
  s.by = by;
  s.radius = std::max(radius, 0.05f);
  return s;
}

Shape Shape::RoundedQuad(const float qx[4], const float qy[4], float radius) {
  Shape s;
  s.kind = Kind::kRoundedQuad;
  for (int i = 0; i < 4; ++i) {
    s.qx[i] = qx[i];
    s.qy[i] = qy[i];
  }
  s.radius = std::max(radius, 0.05f);
  return s;
}

Shape Shape::Box(float cx, float cy, float hx, float hy, float angle, float rounding) {
  double sa, ca;
  portable::SinCos(angle, &sa, &ca);
  const float r = std::min({rounding, hx * 0.999f, hy * 0.999f});
  const float ix = hx - r, iy = hy - r;
  const float ux[4] = {-ix, ix, ix, -ix}, uy[4] = {-iy, -iy, iy, iy};
  float qx[4], qy[4];
  for (int i = 0; i < 4; ++i) {
    qx[i] = cx + static_cast<float>(ca) * ux[i] - static_cast<float>(sa) * uy[i];
    qy[i] = cy + static_cast<float>(sa) * ux[i] + static_cast<float>(ca) * uy[i];
  }
  return RoundedQuad(qx, qy, r);
}

Shape Shape::Ellipse(float cx, float cy, float rx, float ry, float angle) {
  Shape s;
  s.kind = Kind::kEllipse;
  s.cx = cx;
  s.cy = cy;
  s.rx = std::max(rx, 0.1f);
  s.ry = std::max(ry, 0.1f);
  double sa, ca;
  portable::SinCos(angle, &sa, &ca);
  s.cos_a = static_cast<float>(ca);
  s.sin_a = static_cast<float>(sa);
  return s;
}

namespace {

// Closest point on segment ab to p; returns the squared distance.
inline float ClosestOnSegment(float px, float py, float ax, float ay, float bx, float by, float* cx,
                              float* cy) {
  const float dx = bx - ax, dy = by - ay;
  const float len2 = dx * dx + dy * dy;
  float t = len2 > 1e-12f ? ((px - ax) * dx + (py - ay) * dy) / len2 : 0.f;
  t = Clamp01(t);
  *cx = ax + t * dx;
  *cy = ay + t * dy;
  const float ex = px - *cx, ey = py - *cy;
  return ex * ex + ey * ey;
}

inline void NormalFrom(float dx, float dy, float r, float* nx, float* ny) {
  float x = dx / r, y = dy / r;
  const float len2 = x * x + y * y;
  if (len2 > 1) {
    const float inv = 1 / std::sqrt(len2);
    x *= inv;
    y *= inv;
  }
  *nx = x;
  *ny = y;
}

}  // namespace

float Shape::Distance(float px, float py, float* nx, float* ny) const {
  switch (kind) {
    case Kind::kCapsule: {
      float cx_, cy_;
      const float d2 = ClosestOnSegment(px, py, ax, ay, bx, by, &cx_, &cy_);
      NormalFrom(px - cx_, py - cy_, radius, nx, ny);
      return std::sqrt(d2) - radius;
    }
    case Kind::kRoundedQuad: {
      float best = 3e38f, bcx = px, bcy = py;
      int positive = 0, negative = 0;
      for (int i = 0; i < 4; ++i) {
        const int j = (i + 1) & 3;
        float cx_, cy_;
        const float d2 = ClosestOnSegment(px, py, qx[i], qy[i], qx[j], qy[j], &cx_, &cy_);
        if (d2 < best) {
          best = d2;
          bcx = cx_;
          bcy = cy_;
        }
        const float cross = (qx[j] - qx[i]) * (py - qy[i]) - (qy[j] - qy[i]) * (px - qx[i]);
        if (cross > 0) ++positive;
        if (cross < 0) ++negative;
      }
      const bool inside = positive == 0 || negative == 0;
      if (inside) {
        *nx = 0;
        *ny = 0;
        return -std::sqrt(best) - radius;
      }
      NormalFrom(px - bcx, py - bcy, radius, nx, ny);
      return std::sqrt(best) - radius;
    }
    case Kind::kEllipse: {
      const float dx = px - cx, dy = py - cy;
      const float lx = cos_a * dx + sin_a * dy, ly = -sin_a * dx + cos_a * dy;
      const float ex = lx / rx, ey = ly / ry;
      const float k = std::sqrt(ex * ex + ey * ey);
      float ux = ex, uy = ey;
      if (k > 1) {
        ux /= k;
        uy /= k;
      }
      *nx = cos_a * ux - sin_a * uy;
      *ny = sin_a * ux + cos_a * uy;
      if (k < 1e-6f) return -std::min(rx, ry);
      const float gx = ex / (rx * k), gy = ey / (ry * k);
      return (k - 1) / std::sqrt(gx * gx + gy * gy);
    }
  }
  return 1e9f;
}

void Shape::Bounds(float* x0, float* y0, float* x1, float* y1) const {
  switch (kind) {
    case Kind::kCapsule:
      *x0 = std::min(ax, bx) - radius;
      *x1 = std::max(ax, bx) + radius;
      *y0 = std::min(ay, by) - radius;
      *y1 = std::max(ay, by) + radius;
      return;
    case Kind::kRoundedQuad:
      *x0 = std::min({qx[0], qx[1], qx[2], qx[3]}) - radius;
      *x1 = std::max({qx[0], qx[1], qx[2], qx[3]}) + radius;
      *y0 = std::min({qy[0], qy[1], qy[2], qy[3]}) - radius;
      *y1 = std::max({qy[0], qy[1], qy[2], qy[3]}) + radius;
      return;
    case Kind::kEllipse: {
      const float hx = std::sqrt(rx * rx * cos_a * cos_a + ry * ry * sin_a * sin_a);
      const float hy = std::sqrt(rx * rx * sin_a * sin_a + ry * ry * cos_a * cos_a);
      *x0 = cx - hx;
      *x1 = cx + hx;
      *y0 = cy - hy;
      *y1 = cy + hy;
      return;
    }
  }
}

void DrawShape(const Shape& shape, const Material& m, Canvas* canvas, std::vector<float>* mask) {
  float bx0, by0, bx1, by1;
  shape.Bounds(&bx0, &by0, &bx1, &by1);
  const float edge = std::max(m.edge, 0.5f);
  const float pad = edge * 0.5f + 1.f;
  // Frame-pixel bounds, clipped to the canvas.
  const int i0 = std::max(canvas->origin_x, static_cast<int>(std::floor(bx0 - pad)));
  const int i1 =
      std::min(canvas->origin_x + canvas->width - 1, static_cast<int>(std::ceil(bx1 + pad)));
  const int j0 = std::max(canvas->origin_y, static_cast<int>(std::floor(by0 - pad)));
  const int j1 =
      std::min(canvas->origin_y + canvas->height - 1, static_cast<int>(std::ceil(by1 + pad)));
  if (i0 > i1 || j0 > j1) return;
  const Light& L = m.light;
  // A capsule's row span: the axis points within reach of row j, widened by
  // the reach (a diagonal forearm's box is mostly empty).
  const bool capsule = shape.kind == Shape::Kind::kCapsule;
  const float reach = shape.radius + pad;
  const float sdx = shape.bx - shape.ax, sdy = shape.by - shape.ay;
  const bool use_span = capsule && std::fabs(sdy) > 1e-3f;
  for (int j = j0; j <= j1; ++j) {
    int row_i0 = i0, row_i1 = i1;
    if (use_span) {
      float t0 = (j - reach - shape.ay) / sdy, t1 = (j + reach - shape.ay) / sdy;
      if (t0 > t1) std::swap(t0, t1);
      t0 = Clamp01(t0);
      t1 = Clamp01(t1);
      const float xa = shape.ax + t0 * sdx, xb = shape.ax + t1 * sdx;
      row_i0 = std::max(i0, static_cast<int>(std::floor(std::min(xa, xb) - reach)));
      row_i1 = std::min(i1, static_cast<int>(std::ceil(std::max(xa, xb) + reach)));
    }
    for (int i = row_i0; i <= row_i1; ++i) {
      float nx, ny;
      const float d = shape.Distance(static_cast<float>(i), static_cast<float>(j), &nx, &ny);
      const float cov = Clamp01(0.5f - d / edge) * m.opacity;
      if (cov <= 0) continue;
      Rgb c = m.colour;
      if (m.lit) {
        const float nz = std::sqrt(std::max(0.f, 1 - nx * nx - ny * ny));
        float sx = nx + m.base_nx * nz, sy = ny + m.base_ny * nz, sz = nz * m.base_nz;
        const float len = std::sqrt(sx * sx + sy * sy + sz * sz);
        float lambert = 0;
        if (len > 1e-6f) lambert = std::max(0.f, (sx * L.x + sy * L.y + sz * L.z) / len);
        c = c * (L.ambient + L.diffuse * lambert);
      }
      float* p = canvas->at(i - canvas->origin_x, j - canvas->origin_y);
      p[0] += (c.r - p[0]) * cov;
      p[1] += (c.g - p[1]) * cov;
      p[2] += (c.b - p[2]) * cov;
      if (mask) {
        float& q = (*mask)[static_cast<size_t>(j - canvas->origin_y) * canvas->width +
                           (i - canvas->origin_x)];
        q += (1 - q) * cov;
      }
    }
  }
}

SpriteBounds AlphaBounds(const Canvas& sprite, const std::vector<float>& alpha) {
  SpriteBounds b{sprite.width, 0, sprite.height, 0};
  for (int j = 0; j < sprite.height; ++j) {
    for (int i = 0; i < sprite.width; ++i) {
      if (alpha[static_cast<size_t>(j) * sprite.width + i] > 0) {
        b.col0 = std::min(b.col0, i);
        b.col1 = std::max(b.col1, i + 1);
        b.row0 = std::min(b.row0, j);
        b.row1 = std::max(b.row1, j + 1);
      }
    }
  }
  return b;
}

void CompositeSprite(const Canvas& sprite, const std::vector<float>& alpha,
                     const SpriteBounds& bounds, double dx, double dy, Canvas* canvas) {
  if (bounds.col0 >= bounds.col1 || bounds.row0 >= bounds.row1) return;
  // Canvas pixel (i, j) reads sprite pixel (i, j) - (dx, dy) in frame coordinates.
  const double fx0 = std::floor(-dx), fy0 = std::floor(-dy);
  const int ix = static_cast<int>(fx0), iy = static_cast<int>(fy0);
  const float fx = static_cast<float>(-dx - fx0), fy = static_cast<float>(-dy - fy0);
  const float w00 = (1 - fx) * (1 - fy), w10 = fx * (1 - fy), w01 = (1 - fx) * fy, w11 = fx * fy;
  // Canvas range whose 2x2 source taps can touch the bounds.
  const int off_x = canvas->origin_x + ix - sprite.origin_x;  // sprite column of canvas column 0
  const int off_y = canvas->origin_y + iy - sprite.origin_y;
  const int c0 = std::max(0, bounds.col0 - 1 - off_x),
            c1 = std::min(canvas->width, bounds.col1 - off_x);
  const int r0 = std::max(0, bounds.row0 - 1 - off_y),
            r1 = std::min(canvas->height, bounds.row1 - off_y);
  auto tap = [&](int si, int sj, float* c) {  // outside the sprite: transparent
    if (si < 0 || sj < 0 || si >= sprite.width || sj >= sprite.height) {
      c[0] = c[1] = c[2] = c[3] = 0;
      return;
    }
    const size_t k = static_cast<size_t>(sj) * sprite.width + si;
    c[0] = sprite.rgb[k * 3];
    c[1] = sprite.rgb[k * 3 + 1];
    c[2] = sprite.rgb[k * 3 + 2];
    c[3] = alpha[k];
  };
  for (int j = r0; j < r1; ++j) {
    for (int i = c0; i < c1; ++i) {
      const int si = i + off_x, sj = j + off_y;
      float a[4], b[4], c[4], d[4];
      tap(si, sj, a);
      tap(si + 1, sj, b);
      tap(si, sj + 1, c);
      tap(si + 1, sj + 1, d);
      const float al = w00 * a[3] + w10 * b[3] + w01 * c[3] + w11 * d[3];
      if (al <= 0) continue;
      float* p = canvas->at(i, j);
      for (int k = 0; k < 3; ++k) {
        p[k] = w00 * a[k] + w10 * b[k] + w01 * c[k] + w11 * d[k] + p[k] * (1 - al);
      }
    }
  }
}

}  // namespace billnet::synth
