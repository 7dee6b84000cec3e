// Canvas: an 8-bit RGB image to draw on, with rectangles, anti-aliased thick
// lines and polylines, dots, and text in an embedded bitmap font.
//
// Coordinates: x right, y down, in pixels. Pixel (x, y) covers the square
// [x, x+1) x [y, y+1); its centre is (x + 0.5, y + 0.5). Integer calls (rects,
// text) address pixels; floating-point calls (lines, dots) address the
// continuous plane, so a 1-pixel line from (0.5, 10.5) to (20.5, 10.5) covers
// exactly row 10.
//
// Clipping: every call clips to the canvas and to the clip rectangle
// (SetClip); nothing is ever written outside the image.
//
// Text: an own 5x7 bitmap font (5x9 cells with descenders, 6-pixel advance)
// covering printable ASCII 32..126; other bytes are drawn as '?'. One line
// only ('\n' is drawn as '?'). Scale 1..4 multiplies every glyph pixel.
//
// Thread-safety: a Canvas is a plain value (copyable, movable); concurrent
// reads are safe, writes need external synchronisation. The static helpers
// are reentrant.
#ifndef BILLNET_VIZ_CANVAS_H_
#define BILLNET_VIZ_CANVAS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace billnet::viz {

struct Rgb {
  uint8_t r = 0, g = 0, b = 0;
  friend bool operator==(const Rgb&, const Rgb&) = default;
};

inline constexpr Rgb kWhite{255, 255, 255};
inline constexpr Rgb kBlack{0, 0, 0};

// `a` * (1 - t) + `b` * t per channel, t clamped to [0, 1].
Rgb Mix(Rgb a, Rgb b, double t);

struct Rect {
  int x = 0, y = 0, w = 0, h = 0;
  bool Contains(int px, int py) const { return px >= x && px < x + w && py >= y && py < y + h; }
  friend bool operator==(const Rect&, const Rect&) = default;
};

struct PointF {
  double x = 0, y = 0;
};

enum class HAlign { kLeft, kCenter, kRight };
enum class VAlign { kTop, kMiddle, kBottom };

struct TextStyle {
  Rgb color = kBlack;
  int scale = 1;  // 1..4 (clamped)
  // Where (x, y) of DrawText sits on the text's box as drawn on the canvas
  // (for rotated text: the rotated box, TextHeight wide and TextWidth tall).
  HAlign halign = HAlign::kLeft;
  VAlign valign = VAlign::kTop;
  // Rotated 90 degrees counter-clockwise: reads bottom to top (y-axis titles).
  bool rotated = false;
};

class Canvas {
 public:
  // Sizes are clamped to 1..16384. The canvas starts filled with `background`.
  Canvas(int width, int height, Rgb background = kWhite);

  int width() const { return width_; }
  int height() const { return height_; }
  // width * height * 3 bytes, row-major RGB: ready for EncodePng(..., 3).
  const std::vector<uint8_t>& pixels() const { return pixels_; }
  const uint8_t* data() const { return pixels_.data(); }

  // The pixel at (x, y); kBlack outside the image.
  Rgb At(int x, int y) const;

  // Restricts drawing to `r` intersected with the image; ResetClip undoes it.
  void SetClip(const Rect& r);
  void ResetClip();
  const Rect& clip() const { return clip_; }

  // Sets one pixel; Blend mixes `c` over it with weight alpha in [0, 1].
  void Set(int x, int y, Rgb c);
  void Blend(int x, int y, Rgb c, double alpha);

  void Fill(Rgb c);  // the whole clip rectangle
  void FillRect(int x, int y, int w, int h, Rgb c);
  // The outline of [x, x+w) x [y, y+h), `thickness` pixels wide, inside.
  void StrokeRect(int x, int y, int w, int h, Rgb c, int thickness = 1);
  // Axis-aligned dashed line of `thickness` pixels, from (x0, y0) along x
  // (horizontal) or y (vertical) for `length` pixels.
  void DashedHLine(int x0, int y0, int length, Rgb c, int dash = 4, int gap = 3, int thickness = 1);
  void DashedVLine(int x0, int y0, int length, Rgb c, int dash = 4, int gap = 3, int thickness = 1);

  // A straight segment `thickness` pixels wide with round caps. Anti-aliased
  // unless `antialias` is false (then a pixel is set iff its centre is
  // within thickness / 2 of the segment).
  void DrawLine(PointF a, PointF b, Rgb c, double thickness = 1, bool antialias = true);
  // Connected segments with round joins; each pixel is blended once (no dark
  // joints). Non-finite points break the line; an isolated finite point is
  // drawn as a dot. `dash` > 0 draws dashes of that length along the path,
  // separated by `gap` (or by `dash` when gap <= 0); each dash has round caps.
  void DrawPolyline(const std::vector<PointF>& points, Rgb c, double thickness = 1,
                    bool antialias = true, double dash = 0, double gap = 0);
  // A filled disc (anti-aliased).
  void FillCircle(PointF centre, double radius, Rgb c);

  // Draws one line of text with its box anchored at (x, y) per `style`.
  void DrawText(int x, int y, std::string_view text, const TextStyle& style = {});

  // The text's box before rotation: TextWidth = scale * (6 * n - 1) for n
  // characters (0 when empty); TextHeight = 9 * scale (cap height 7 plus 2 for
  // descenders). Rotated text occupies TextHeight x TextWidth.
  static int TextWidth(std::string_view text, int scale = 1);
  static int TextHeight(int scale = 1);
  // The longest prefix of `text` that fits in `max_width` pixels, with "..."
  // appended when shortened (empty if not even "..." fits).
  static std::string Ellipsize(std::string_view text, int max_width, int scale = 1);

 private:
  // Blends `c` with per-pixel coverage from a mask over `box` (max over the
  // shapes that filled it), then clears the mask.
  void BlendMask(const Rect& box, const std::vector<float>& mask, Rgb c);
  Rect ClipRect(Rect r) const;

  int width_, height_;
  std::vector<uint8_t> pixels_;
  Rect clip_;
};

}  // namespace billnet::viz

#endif  // BILLNET_VIZ_CANVAS_H_
