// Canvas: pixel-exact lines, thickness, clipping, polylines with gaps and
// dashes, the font table, text drawing and measurement.
#include "billnet/viz/canvas.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "font.h"

namespace billnet::viz {
namespace {

constexpr Rgb kRed{220, 20, 30};

// Bounding box of pixels that differ from `bg`; w == 0 when none.
Rect InkBox(const Canvas& c, Rgb bg = kWhite) {
  int x0 = c.width(), y0 = c.height(), x1 = -1, y1 = -1;
  for (int y = 0; y < c.height(); ++y) {
    for (int x = 0; x < c.width(); ++x) {
      if (c.At(x, y) != bg) {
        x0 = std::min(x0, x);
        y0 = std::min(y0, y);
        x1 = std::max(x1, x);
        y1 = std::max(y1, y);
      }
    }
  }
  if (x1 < 0) return {};
  return {x0, y0, x1 - x0 + 1, y1 - y0 + 1};
}

int CountInk(const Canvas& c, Rgb bg = kWhite) {
  int n = 0;
  for (int y = 0; y < c.height(); ++y)
    for (int x = 0; x < c.width(); ++x) n += c.At(x, y) != bg;
  return n;
}

TEST(VizCanvas, StartsFilledAndClampsSize) {
  Canvas c(7, 5, kRed);
  EXPECT_EQ(c.width(), 7);
  EXPECT_EQ(c.height(), 5);
  EXPECT_EQ(c.pixels().size(), 7u * 5 * 3);
  EXPECT_EQ(c.At(6, 4), kRed);
  EXPECT_EQ(c.At(7, 4), kBlack);  // outside
  Canvas tiny(0, -3);
  EXPECT_EQ(tiny.width(), 1);
  EXPECT_EQ(tiny.height(), 1);
}

TEST(VizCanvas, HorizontalLineCoversExactlyItsRow) {
  Canvas c(40, 30);
  c.DrawLine({0.5, 10.5}, {20.5, 10.5}, kRed, 1);
  for (int x = 0; x < 40; ++x) {
    for (int y = 0; y < 30; ++y) {
      const bool on = y == 10 && x <= 20;
      EXPECT_EQ(c.At(x, y), on ? kRed : kWhite) << x << "," << y;
    }
  }
}

TEST(VizCanvas, DiagonalLineWithoutAntialiasingHitsTheDiagonal) {
  Canvas c(30, 30);
  c.DrawLine({0.5, 0.5}, {25.5, 25.5}, kRed, 1, /*antialias=*/false);
  for (int i = 0; i <= 25; ++i) {
    EXPECT_EQ(c.At(i, i), kRed) << i;
    if (i + 2 < 30) {
      EXPECT_EQ(c.At(i + 2, i), kWhite) << i;
    }
  }
  EXPECT_EQ(CountInk(c), 26);
}

TEST(VizCanvas, ThickLineHasItsWidth) {
  Canvas c(60, 40);
  c.DrawLine({10.5, 20.5}, {50.5, 20.5}, kRed, 5);
  for (int y = 18; y <= 22; ++y) EXPECT_EQ(c.At(30, y), kRed) << y;
  EXPECT_EQ(c.At(30, 16), kWhite);
  EXPECT_EQ(c.At(30, 24), kWhite);
  // Anti-aliased slanted line: some partial pixels, all within reach.
  Canvas d(60, 40);
  d.DrawLine({5, 5}, {55, 30}, kRed, 3);
  const Rect box = InkBox(d);
  EXPECT_GE(box.x, 2);
  EXPECT_LE(box.x + box.w, 59);
  bool partial = false;
  for (int y = 0; y < 40; ++y)
    for (int x = 0; x < 60; ++x) partial |= d.At(x, y) != kRed && d.At(x, y) != kWhite;
  EXPECT_TRUE(partial);
}

TEST(VizCanvas, ClippingNeverWritesOutside) {
  // Shapes far outside and across every border: the buffer keeps its size and
  // pixels outside the clip rectangle stay untouched.
  Canvas c(20, 10);
  c.SetClip({5, 2, 10, 5});
  c.FillRect(-100, -100, 1000, 1000, kRed);
  c.DrawLine({-1e6, -50}, {1e6, 60}, kBlack, 7);
  c.DrawPolyline({{-30, -30}, {50, 40}, {-5, 100}}, kBlack, 3);
  c.FillCircle({0, 0}, 1000, kBlack);
  c.StrokeRect(-3, -3, 40, 40, kBlack, 4);
  c.DrawText(-7, -3, "Clipped text that is long", {kBlack, 4});
  c.DrawText(18, 8, "rot", {kBlack, 3, HAlign::kLeft, VAlign::kTop, true});
  c.DashedHLine(-50, 3, 200, kBlack);
  c.DashedVLine(7, -50, 200, kBlack);
  for (int x = -20; x < 40; ++x) c.Set(x, x / 2, kBlack);
  EXPECT_EQ(c.pixels().size(), 20u * 10 * 3);
  for (int y = 0; y < 10; ++y) {
    for (int x = 0; x < 20; ++x) {
      if (!c.clip().Contains(x, y)) {
        EXPECT_EQ(c.At(x, y), kWhite) << x << "," << y;
      }
    }
  }
  EXPECT_EQ(InkBox(c), (Rect{5, 2, 10, 5}));
  c.ResetClip();
  c.FillRect(-5, -5, 3, 3, kBlack);  // entirely outside: nothing happens
  EXPECT_EQ(c.At(0, 0), kWhite);
}

TEST(VizCanvas, NonFinitePointsBreakAPolyline) {
  Canvas c(80, 20);
  const double nan = std::nan("");
  c.DrawPolyline({{10, 10.5}, {30, 10.5}, {nan, nan}, {50, 10.5}, {70, 10.5}}, kRed, 1);
  EXPECT_EQ(c.At(20, 10), kRed);
  EXPECT_EQ(c.At(60, 10), kRed);
  EXPECT_EQ(c.At(40, 10), kWhite);
  // An isolated point becomes a dot.
  Canvas d(20, 20);
  d.DrawPolyline({{nan, 0}, {10, 10}, {nan, nan}}, kRed, 2);
  EXPECT_EQ(d.At(10, 10), kRed);
}

TEST(VizCanvas, DashedPolylineHasGaps) {
  Canvas c(100, 10);
  // Round caps (plus anti-aliasing) reach about a pixel into each gap.
  c.DrawPolyline({{0, 5.5}, {50, 5.5}, {100, 5.5}}, kRed, 1, true, /*dash=*/6, /*gap=*/6);
  int on = 0, off = 0;
  for (int x = 1; x < 99; ++x) (c.At(x, 5) == kWhite ? off : on)++;
  EXPECT_GT(on, 45);
  EXPECT_GT(off, 25);
  // Without dashes the same line is solid.
  Canvas d(100, 10);
  d.DrawPolyline({{0, 5.5}, {50, 5.5}, {100, 5.5}}, kRed, 1);
  for (int x = 1; x < 99; ++x) EXPECT_EQ(d.At(x, 5), kRed) << x;
}

TEST(VizCanvas, PolylineJointsAreNotDarker) {
  // Coverage is the maximum over the segments, blended once per pixel: two
  // collinear halves draw exactly what one segment draws (blending each
  // segment would darken the anti-aliased pixels around the joint).
  Canvas a(60, 20), b(60, 20);
  a.DrawPolyline({{5, 10.2}, {30, 10.2}, {55, 10.2}}, kRed, 2);
  b.DrawLine({5, 10.2}, {55, 10.2}, kRed, 2);
  EXPECT_EQ(a.pixels(), b.pixels());
}

TEST(VizFont, TableCoversPrintableAsciiWithDistinctGlyphs) {
  EXPECT_EQ(font::CheckGlyphTable(), "");
  std::set<std::array<uint8_t, font::kGlyphRows>> seen;
  for (int ch = 33; ch <= 126; ++ch) {
    const auto& g = font::Glyph(static_cast<unsigned char>(ch));
    int ink = 0;
    for (uint8_t row : g) ink += row != 0;
    EXPECT_GT(ink, 0) << "glyph '" << static_cast<char>(ch) << "' is empty";
    EXPECT_TRUE(seen.insert(g).second) << "glyph '" << static_cast<char>(ch) << "' repeats another";
  }
  for (uint8_t row : font::Glyph(' ')) EXPECT_EQ(row, 0);
  EXPECT_EQ(font::Glyph(200), font::Glyph('?'));
  EXPECT_EQ(font::Glyph('\n'), font::Glyph('?'));
}

TEST(VizText, DifferentLettersDrawDifferently) {
  Canvas a(20, 20), b(20, 20);
  a.DrawText(2, 2, "A");
  b.DrawText(2, 2, "B");
  EXPECT_NE(a.pixels(), b.pixels());
  EXPECT_GT(CountInk(a), 8);
  // The ink stays inside the text box.
  const Rect box = InkBox(a);
  EXPECT_GE(box.x, 2);
  EXPECT_GE(box.y, 2);
  EXPECT_LE(box.x + box.w, 2 + Canvas::TextWidth("A"));
  EXPECT_LE(box.y + box.h, 2 + Canvas::TextHeight());
}

TEST(VizText, WidthIsLinearInLengthAndScale) {
  EXPECT_EQ(Canvas::TextWidth(""), 0);
  for (int scale = 1; scale <= 4; ++scale) {
    const int one = Canvas::TextWidth("x", scale);
    EXPECT_EQ(one, 5 * scale);
    for (int n = 1; n < 30; ++n) {
      EXPECT_EQ(Canvas::TextWidth(std::string(n + 1, 'x'), scale) -
                    Canvas::TextWidth(std::string(n, 'x'), scale),
                6 * scale);
    }
    EXPECT_EQ(Canvas::TextHeight(scale), 9 * scale);
  }
  EXPECT_EQ(Canvas::TextWidth("abc", 9), Canvas::TextWidth("abc", 4));  // clamped
}

TEST(VizText, ScaledTextIsTheGlyphBlownUp) {
  Canvas a(40, 40), b(40, 40);
  a.DrawText(0, 0, "g", {kBlack, 1});
  b.DrawText(0, 0, "g", {kBlack, 3});
  EXPECT_EQ(CountInk(b), 9 * CountInk(a));
  for (int y = 0; y < 9; ++y)
    for (int x = 0; x < 5; ++x) EXPECT_EQ(a.At(x, y), b.At(3 * x + 1, 3 * y + 2));
}

TEST(VizText, AlignmentAndRotation) {
  const std::string s = "Accuracy";
  const int tw = Canvas::TextWidth(s), th = Canvas::TextHeight();
  Canvas right(100, 30);
  right.DrawText(90, 29, s, {kBlack, 1, HAlign::kRight, VAlign::kBottom});
  const Rect rb = InkBox(right);
  EXPECT_LE(rb.x + rb.w, 90);
  EXPECT_GE(rb.x, 90 - tw);
  EXPECT_LE(rb.y + rb.h, 29);

  Canvas flat(100, 100), rot(100, 100);
  flat.DrawText(10, 10, s);
  rot.DrawText(10, 10, s, {kBlack, 1, HAlign::kLeft, VAlign::kTop, true});
  const Rect fb = InkBox(flat), ob = InkBox(rot);
  EXPECT_EQ(CountInk(flat), CountInk(rot));
  EXPECT_EQ(fb.w, ob.h);  // 90 degrees: the extents swap
  EXPECT_EQ(fb.h, ob.w);
  EXPECT_LE(ob.x + ob.w, 10 + th);
  EXPECT_LE(ob.y + ob.h, 10 + tw);
  // Counter-clockwise: the first letter is at the bottom, its top faces left.
  // Pixel (u, v) of the flat text lands at (10 + v, 10 + tw - 1 - u).
  for (int v = 0; v < th; ++v)
    for (int u = 0; u < tw; ++u)
      EXPECT_EQ(flat.At(10 + u, 10 + v), rot.At(10 + v, 10 + tw - 1 - u));
}

TEST(VizText, EllipsizeFitsTheWidth) {
  EXPECT_EQ(Canvas::Ellipsize("short", 100), "short");
  const std::string e = Canvas::Ellipsize("Pulling Two Fingers In", 60);
  EXPECT_LE(Canvas::TextWidth(e), 60);
  EXPECT_EQ(e.substr(e.size() - 3), "...");
  EXPECT_EQ(Canvas::Ellipsize("abc", 3), "");
}

}  // namespace
}  // namespace billnet::viz
