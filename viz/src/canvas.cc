#include "billnet/viz/canvas.h"

#include <algorithm>
#include <cmath>

#include "font.h"

namespace billnet::viz {
namespace {

constexpr int kMaxCanvasSize = 16384;

uint8_t MixChannel(uint8_t a, uint8_t b, double t) {
  return static_cast<uint8_t>(std::lround(a + (static_cast<double>(b) - a) * t));
}

Rect Intersect(const Rect& a, const Rect& b) {
  const int x0 = std::max(a.x, b.x), y0 = std::max(a.y, b.y);
  const int x1 = std::min(a.x + a.w, b.x + b.w), y1 = std::min(a.y + a.h, b.y + b.h);
  return {x0, y0, std::max(0, x1 - x0), std::max(0, y1 - y0)};
}

struct Segment {
  PointF a, b;
};

double DistanceToSegment(double px, double py, const Segment& s) {
  const double dx = s.b.x - s.a.x, dy = s.b.y - s.a.y;
  const double len2 = dx * dx + dy * dy;
  double t = len2 > 0 ? ((px - s.a.x) * dx + (py - s.a.y) * dy) / len2 : 0;
  t = std::clamp(t, 0.0, 1.0);
  const double qx = s.a.x + t * dx - px, qy = s.a.y + t * dy - py;
  return std::sqrt(qx * qx + qy * qy);
}

double Coverage(double distance, double radius, bool antialias) {
  if (!antialias) return distance <= radius ? 1.0 : 0.0;
  return std::clamp(radius + 0.5 - distance, 0.0, 1.0);
}

// Splits a run of finite points into the "on" pieces of a dash pattern.
void DashRun(const std::vector<PointF>& run, double dash, double gap, std::vector<Segment>* out) {
  bool on = true;
  double left = dash;  // length left in the current on/off state
  for (size_t i = 0; i + 1 < run.size(); ++i) {
    PointF a = run[i];
    const PointF b = run[i + 1];
    double seg = std::hypot(b.x - a.x, b.y - a.y);
    while (seg > 0) {
      const double step = std::min(seg, left);
      const double f = step / seg;
      const PointF m{a.x + (b.x - a.x) * f, a.y + (b.y - a.y) * f};
      if (on) out->push_back({a, m});
      a = m;
      seg -= step;
      left -= step;
      if (left <= 1e-9) {
        on = !on;
        left = on ? dash : gap;
      }
    }
  }
}

}  // namespace

Rgb Mix(Rgb a, Rgb b, double t) {
  t = std::clamp(t, 0.0, 1.0);
  return {MixChannel(a.r, b.r, t), MixChannel(a.g, b.g, t), MixChannel(a.b, b.b, t)};
}

Canvas::Canvas(int width, int height, Rgb background)
    : width_(std::clamp(width, 1, kMaxCanvasSize)),
      height_(std::clamp(height, 1, kMaxCanvasSize)),
      pixels_(static_cast<size_t>(width_) * height_ * 3),
      clip_{0, 0, width_, height_} {
  Fill(background);
}

Rgb Canvas::At(int x, int y) const {
  if (x < 0 || y < 0 || x >= width_ || y >= height_) return kBlack;
  const uint8_t* p = &pixels_[(static_cast<size_t>(y) * width_ + x) * 3];
  return {p[0], p[1], p[2]};
}

void Canvas::SetClip(const Rect& r) { clip_ = Intersect(r, {0, 0, width_, height_}); }
void Canvas::ResetClip() { clip_ = {0, 0, width_, height_}; }
Rect Canvas::ClipRect(Rect r) const { return Intersect(r, clip_); }

void Canvas::Set(int x, int y, Rgb c) {
  if (!clip_.Contains(x, y)) return;
  uint8_t* p = &pixels_[(static_cast<size_t>(y) * width_ + x) * 3];
  p[0] = c.r;
  p[1] = c.g;
  p[2] = c.b;
}

void Canvas::Blend(int x, int y, Rgb c, double alpha) {
  if (!(alpha > 0) || !clip_.Contains(x, y)) return;
  if (alpha >= 1) return Set(x, y, c);
  uint8_t* p = &pixels_[(static_cast<size_t>(y) * width_ + x) * 3];
  p[0] = MixChannel(p[0], c.r, alpha);
  p[1] = MixChannel(p[1], c.g, alpha);
  p[2] = MixChannel(p[2], c.b, alpha);
}

void Canvas::Fill(Rgb c) { FillRect(clip_.x, clip_.y, clip_.w, clip_.h, c); }

void Canvas::FillRect(int x, int y, int w, int h, Rgb c) {
  const Rect r = ClipRect({x, y, w, h});
  for (int yy = r.y; yy < r.y + r.h; ++yy) {
    uint8_t* p = &pixels_[(static_cast<size_t>(yy) * width_ + r.x) * 3];
    for (int xx = 0; xx < r.w; ++xx, p += 3) {
      p[0] = c.r;
      p[1] = c.g;
      p[2] = c.b;
    }
  }
}

void Canvas::StrokeRect(int x, int y, int w, int h, Rgb c, int thickness) {
  const int t = std::max(1, std::min({thickness, (w + 1) / 2, (h + 1) / 2}));
  FillRect(x, y, w, t, c);
  FillRect(x, y + h - t, w, t, c);
  FillRect(x, y + t, t, h - 2 * t, c);
  FillRect(x + w - t, y + t, t, h - 2 * t, c);
}

void Canvas::DashedHLine(int x0, int y0, int length, Rgb c, int dash, int gap, int thickness) {
  dash = std::max(1, dash);
  gap = std::max(0, gap);
  for (int x = 0; x < length; x += dash + gap) {
    FillRect(x0 + x, y0, std::min(dash, length - x), thickness, c);
  }
}

void Canvas::DashedVLine(int x0, int y0, int length, Rgb c, int dash, int gap, int thickness) {
  dash = std::max(1, dash);
  gap = std::max(0, gap);
  for (int y = 0; y < length; y += dash + gap) {
    FillRect(x0, y0 + y, thickness, std::min(dash, length - y), c);
  }
}

void Canvas::DrawLine(PointF a, PointF b, Rgb c, double thickness, bool antialias) {
  DrawPolyline({a, b}, c, thickness, antialias);
}

void Canvas::DrawPolyline(const std::vector<PointF>& points, Rgb c, double thickness,
                          bool antialias, double dash, double gap) {
  if (!(thickness > 0)) return;
  const double radius = thickness / 2;
  // Segments of every finite run, plus dots for isolated points.
  std::vector<Segment> segments;
  std::vector<PointF> dots, run;
  auto flush = [&] {
    if (run.size() == 1) {
      dots.push_back(run[0]);
    } else if (run.size() > 1) {
      if (dash > 0) {
        DashRun(run, dash, gap > 0 ? gap : dash, &segments);
      } else {
        for (size_t i = 0; i + 1 < run.size(); ++i) segments.push_back({run[i], run[i + 1]});
      }
    }
    run.clear();
  };
  for (const PointF& p : points) {
    if (std::isfinite(p.x) && std::isfinite(p.y) && std::abs(p.x) < 1e7 && std::abs(p.y) < 1e7) {
      run.push_back(p);
    } else {
      flush();
    }
  }
  flush();
  if (segments.empty() && dots.empty()) return;

  const double reach = radius + 1;
  double x0 = 1e18, y0 = 1e18, x1 = -1e18, y1 = -1e18;
  for (const Segment& s : segments) {
    x0 = std::min({x0, s.a.x, s.b.x});
    x1 = std::max({x1, s.a.x, s.b.x});
    y0 = std::min({y0, s.a.y, s.b.y});
    y1 = std::max({y1, s.a.y, s.b.y});
  }
  const double dot_radius = std::max(1.0, thickness);
  for (const PointF& p : dots) {
    x0 = std::min(x0, p.x - dot_radius);
    x1 = std::max(x1, p.x + dot_radius);
    y0 = std::min(y0, p.y - dot_radius);
    y1 = std::max(y1, p.y + dot_radius);
  }
  const int bx0 = static_cast<int>(std::floor(x0 - reach)),
            by0 = static_cast<int>(std::floor(y0 - reach));
  const int bx1 = static_cast<int>(std::ceil(x1 + reach)),
            by1 = static_cast<int>(std::ceil(y1 + reach));
  const Rect box = ClipRect({bx0, by0, bx1 - bx0 + 1, by1 - by0 + 1});
  if (box.w <= 0 || box.h <= 0) return;
  std::vector<float> mask(static_cast<size_t>(box.w) * box.h, 0.0f);

  for (const Segment& s : segments) {
    // Rows near the segment, and per row the x-range within `reach` of it.
    const int ry0 = std::max(box.y, static_cast<int>(std::floor(std::min(s.a.y, s.b.y) - reach)));
    const int ry1 =
        std::min(box.y + box.h - 1, static_cast<int>(std::ceil(std::max(s.a.y, s.b.y) + reach)));
    const double dy = s.b.y - s.a.y, dx = s.b.x - s.a.x;
    for (int y = ry0; y <= ry1; ++y) {
      const double yc = y + 0.5;
      double t0 = 0, t1 = 1;
      if (std::abs(dy) > 1e-12) {
        t0 = (yc - reach - s.a.y) / dy;
        t1 = (yc + reach - s.a.y) / dy;
        if (t0 > t1) std::swap(t0, t1);
        t0 = std::max(t0, 0.0);
        t1 = std::min(t1, 1.0);
        if (t0 > t1) continue;
      } else if (std::abs(yc - s.a.y) > reach) {
        continue;
      }
      const double xa = s.a.x + dx * t0, xb = s.a.x + dx * t1;
      const int cx0 = std::max(box.x, static_cast<int>(std::floor(std::min(xa, xb) - reach)));
      const int cx1 =
          std::min(box.x + box.w - 1, static_cast<int>(std::ceil(std::max(xa, xb) + reach)));
      float* m = &mask[static_cast<size_t>(y - box.y) * box.w];
      for (int x = cx0; x <= cx1; ++x) {
        const double cov = Coverage(DistanceToSegment(x + 0.5, yc, s), radius, antialias);
        if (cov > m[x - box.x]) m[x - box.x] = static_cast<float>(cov);
      }
    }
  }
  for (const PointF& p : dots) {
    for (int y = box.y; y < box.y + box.h; ++y) {
      if (std::abs(y + 0.5 - p.y) > dot_radius + 1) continue;
      for (int x = box.x; x < box.x + box.w; ++x) {
        const double d = std::hypot(x + 0.5 - p.x, y + 0.5 - p.y);
        const double cov = Coverage(d, dot_radius, antialias);
        float& m = mask[static_cast<size_t>(y - box.y) * box.w + (x - box.x)];
        if (cov > m) m = static_cast<float>(cov);
      }
    }
  }
  BlendMask(box, mask, c);
}

void Canvas::FillCircle(PointF centre, double radius, Rgb c) {
  if (!(radius > 0) || !std::isfinite(centre.x) || !std::isfinite(centre.y)) return;
  if (std::abs(centre.x) > 1e7 || std::abs(centre.y) > 1e7 || radius > 1e7) return;
  const int x0 = static_cast<int>(std::floor(centre.x - radius - 1));
  const int y0 = static_cast<int>(std::floor(centre.y - radius - 1));
  const int x1 = static_cast<int>(std::ceil(centre.x + radius + 1));
  const int y1 = static_cast<int>(std::ceil(centre.y + radius + 1));
  const Rect box = ClipRect({x0, y0, x1 - x0 + 1, y1 - y0 + 1});
  for (int y = box.y; y < box.y + box.h; ++y) {
    for (int x = box.x; x < box.x + box.w; ++x) {
      const double d = std::hypot(x + 0.5 - centre.x, y + 0.5 - centre.y);
      Blend(x, y, c, Coverage(d, radius, true));
    }
  }
}

void Canvas::BlendMask(const Rect& box, const std::vector<float>& mask, Rgb c) {
  for (int y = 0; y < box.h; ++y) {
    for (int x = 0; x < box.w; ++x) {
      const float m = mask[static_cast<size_t>(y) * box.w + x];
      if (m > 0) Blend(box.x + x, box.y + y, c, m);
    }
  }
}

int Canvas::TextWidth(std::string_view text, int scale) {
  scale = std::clamp(scale, 1, 4);
  if (text.empty()) return 0;
  return scale * (font::kAdvance * static_cast<int>(text.size()) - 1);
}

int Canvas::TextHeight(int scale) { return std::clamp(scale, 1, 4) * font::kGlyphRows; }

std::string Canvas::Ellipsize(std::string_view text, int max_width, int scale) {
  if (TextWidth(text, scale) <= max_width) return std::string(text);
  for (size_t n = text.size(); n-- > 0;) {
    std::string s(text.substr(0, n));
    while (!s.empty() && s.back() == ' ') s.pop_back();
    s += "...";
    if (TextWidth(s, scale) <= max_width) return s;
  }
  return "";
}

void Canvas::DrawText(int x, int y, std::string_view text, const TextStyle& style) {
  if (text.empty()) return;
  const int s = std::clamp(style.scale, 1, 4);
  const int tw = TextWidth(text, s), th = TextHeight(s);
  const int bw = style.rotated ? th : tw, bh = style.rotated ? tw : th;
  const int left = x - (style.halign == HAlign::kCenter  ? bw / 2
                        : style.halign == HAlign::kRight ? bw
                                                         : 0);
  const int top = y - (style.valign == VAlign::kMiddle   ? bh / 2
                       : style.valign == VAlign::kBottom ? bh
                                                         : 0);
  const Rect visible = ClipRect({left, top, bw, bh});
  if (visible.w == 0 || visible.h == 0) return;  // entirely clipped
  for (size_t i = 0; i < text.size(); ++i) {
    const auto& glyph = font::Glyph(static_cast<unsigned char>(text[i]));
    for (int r = 0; r < font::kGlyphRows; ++r) {
      const uint8_t bits = glyph[r];
      if (!bits) continue;
      for (int col = 0; col < font::kGlyphWidth; ++col) {
        if (!(bits & (1u << (font::kGlyphWidth - 1 - col)))) continue;
        const int u = (static_cast<int>(i) * font::kAdvance + col) * s;  // along the text
        const int v = r * s;                                             // down the glyph
        if (style.rotated) {
          FillRect(left + v, top + tw - u - s, s, s, style.color);
        } else {
          FillRect(left + u, top + v, s, s, style.color);
        }
      }
    }
  }
}

}  // namespace billnet::viz
