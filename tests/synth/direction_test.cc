// Each direction pair moves the way its name says, measured on the rendered
// frames and hand masks (not on the renderer's own pose metadata), so a test
// fails if the renderer swapped a pair. Image axes: x right, y down; an
// orientation angle that grows turns clockwise on screen.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include "billnet/synth/renderer.h"

namespace billnet::synth {
namespace {

constexpr int kSeeds = 12;
constexpr uint64_t kSeedBase = 5000;

RenderOptions MaskOptions() {
  RenderOptions o;
  o.width = 88;
  o.height = 50;
  o.hand_masks = true;
  return o;
}

// Moments of one frame's hand mask (coverage-weighted).
struct MaskMoments {
  double area = 0, cx = 0, cy = 0;
  double gyration = 0;         // root-mean-square distance from the centroid: the hand's spread
  double orientation = 0;      // principal axis, radians in (-pi/2, pi/2], y down
  double top = 0, bottom = 0;  // extreme rows with coverage > 0.5
};

MaskMoments Moments(const RenderedClip& clip, int f) {
  const uint8_t* m = clip.hand_mask.data() + static_cast<size_t>(clip.width) * clip.height * f;
  MaskMoments r;
  double sx = 0, sy = 0, sxx = 0, syy = 0, sxy = 0;
  r.top = clip.height;
  r.bottom = -1;
  for (int y = 0; y < clip.height; ++y) {
    for (int x = 0; x < clip.width; ++x) {
      const double w = m[y * clip.width + x] / 255.0;
      if (w <= 0) continue;
      r.area += w;
      sx += w * x;
      sy += w * y;
      sxx += w * x * x;
      syy += w * y * y;
      sxy += w * x * y;
      if (w > 0.5) {
        r.top = std::min<double>(r.top, y);
        r.bottom = std::max<double>(r.bottom, y);
      }
    }
  }
  if (r.area > 0) {
    r.cx = sx / r.area;
    r.cy = sy / r.area;
    const double cxx = sxx / r.area - r.cx * r.cx, cyy = syy / r.area - r.cy * r.cy;
    const double cxy = sxy / r.area - r.cx * r.cy;
    r.orientation = 0.5 * std::atan2(2 * cxy, cxx - cyy);
    r.gyration = std::sqrt(std::max(0.0, cxx + cyy));
  }
  return r;
}

// Frames of the gesture where enough of the hand is visible to measure.
std::vector<int> VisibleGestureFrames(const RenderedClip& clip, double min_area) {
  std::vector<int> frames;
  for (int f = clip.gesture.start; f < clip.gesture.end; ++f) {
    if (Moments(clip, f).area >= min_area) frames.push_back(f);
  }
  return frames;
}

std::string Describe(int label, uint64_t seed) {
  return SynthClassNames()[label] + " seed " + std::to_string(seed);
}

// Horizontal (axis 0) or vertical (axis 1) displacement of the hand-mask
// centroid between the first and last measurable gesture frames.
double MaskShift(const RenderedClip& clip, int axis) {
  const std::vector<int> frames = VisibleGestureFrames(clip, 4.0);
  if (frames.size() < 2) return 0;
  const MaskMoments a = Moments(clip, frames.front()), b = Moments(clip, frames.back());
  return axis == 0 ? b.cx - a.cx : b.cy - a.cy;
}

// Pixel-only statistic: the centroid of the frame-difference energy over
// the gesture, as a least-squares slope per frame (pixels per frame).
double DifferenceCentroidSlope(const RenderedClip& clip, int axis) {
  std::vector<double> t, c;
  const int w = clip.width, h = clip.height;
  for (int f = std::max(1, clip.gesture.start); f < clip.gesture.end; ++f) {
    const uint8_t* a = clip.frame(f - 1);
    const uint8_t* b = clip.frame(f);
    double e = 0, s = 0;
    for (int y = 0; y < h; ++y) {
      for (int x = 0; x < w; ++x) {
        double d = 0;
        for (int k = 0; k < 3; ++k)
          d += std::abs(int{b[(y * w + x) * 3 + k]} - a[(y * w + x) * 3 + k]);
        d = d > 24 ? d : 0;  // ignore sensor noise
        e += d;
        s += d * (axis == 0 ? x : y);
      }
    }
    if (e > 0) {
      t.push_back(f);
      c.push_back(s / e);
    }
  }
  if (t.size() < 2) return 0;
  double mt = 0, mc = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    mt += t[i];
    mc += c[i];
  }
  mt /= t.size();
  mc /= t.size();
  double num = 0, den = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    num += (t[i] - mt) * (c[i] - mc);
    den += (t[i] - mt) * (t[i] - mt);
  }
  return den > 0 ? num / den : 0;
}

struct TranslationCase {
  const char* name;
  int negative_label;  // moves toward -x (left) or -y (up)
  int positive_label;
  int axis;
  double min_shift;  // pixels, hand-mask centroid
};

class TranslationTest : public testing::TestWithParam<TranslationCase> {};

TEST_P(TranslationTest, HandMovesInTheNamedDirection) {
  const TranslationCase tc = GetParam();
  const RenderOptions o = MaskOptions();
  int pixel_agree = 0;
  for (int i = 0; i < kSeeds; ++i) {
    const uint64_t seed = kSeedBase + i;
    for (int sign : {-1, 1}) {
      const int label = sign < 0 ? tc.negative_label : tc.positive_label;
      SCOPED_TRACE(Describe(label, seed));
      const RenderedClip clip = RenderClip(label, seed, o);
      EXPECT_GT(sign * MaskShift(clip, tc.axis), tc.min_shift);
      if (sign * DifferenceCentroidSlope(clip, tc.axis) > 0) ++pixel_agree;
    }
  }
  // The pixel-only statistic sees distractors and camera shake too: most, not all.
  EXPECT_GE(pixel_agree, 2 * kSeeds * 3 / 4);
}

INSTANTIATE_TEST_SUITE_P(
    Synth, TranslationTest,
    testing::Values(TranslationCase{"SwipingLeftRight", 0, 1, 0, 8.0},
                    TranslationCase{"SwipingUpDown", 3, 2, 1, 5.0},
                    TranslationCase{"SlidingTwoFingersLeftRight", 6, 7, 0, 4.0},
                    TranslationCase{"SlidingTwoFingersUpDown", 9, 8, 1, 3.0}),
    [](const testing::TestParamInfo<TranslationCase>& info) { return info.param.name; });

TEST(SynthDirection, PushShrinksAndPullGrowsTheHand) {
  const RenderOptions o = MaskOptions();
  for (auto [push, pull] : {std::pair{4, 5}, std::pair{10, 11}}) {
    for (int i = 0; i < kSeeds; ++i) {
      const uint64_t seed = kSeedBase + i;
      for (int label : {push, pull}) {
        SCOPED_TRACE(Describe(label, seed));
        const RenderedClip clip = RenderClip(label, seed, o);
        // Area when the motion ends relative to the largest / smallest area
        // during the gesture (the preparation changes the hand's shape).
        const double end = Moments(clip, clip.gesture.end - 1).area;
        double lo = 1e9, hi = 0;
        for (int f = clip.gesture.start; f < clip.gesture.end; ++f) {
          const double a = Moments(clip, f).area;
          lo = std::min(lo, a);
          hi = std::max(hi, a);
        }
        if (label == push) {
          EXPECT_LT(end, 0.75 * hi);
        } else {
          EXPECT_GT(end, 1.3 * lo);
        }
      }
    }
  }
}

// Unwrapped change of the mask's principal-axis orientation over the gesture.
double OrientationChange(const RenderedClip& clip) {
  const std::vector<int> frames = VisibleGestureFrames(clip, 6.0);
  double total = 0;
  for (size_t i = 1; i < frames.size(); ++i) {
    double d = Moments(clip, frames[i]).orientation - Moments(clip, frames[i - 1]).orientation;
    while (d > std::numbers::pi / 2) d -= std::numbers::pi;
    while (d < -std::numbers::pi / 2) d += std::numbers::pi;
    total += d;
  }
  return total;
}

TEST(SynthDirection, TurningRotatesClockwiseOrCounterclockwiseOnScreen) {
  const RenderOptions o = MaskOptions();
  for (int i = 0; i < kSeeds; ++i) {
    const uint64_t seed = kSeedBase + i;
    {
      SCOPED_TRACE(Describe(14, seed));
      EXPECT_GT(OrientationChange(RenderClip(14, seed, o)), 0.5);  // > ~30 degrees clockwise
    }
    {
      SCOPED_TRACE(Describe(15, seed));
      EXPECT_LT(OrientationChange(RenderClip(15, seed, o)), -0.5);
    }
  }
}

// Rolling is a loop: forward, the hand is larger while it moves down;
// backward, while it moves up. The correlation of the mask area with the
// centroid's vertical velocity has the sign of the direction.
double AreaVelocityCorrelation(const RenderedClip& clip) {
  const std::vector<int> frames = VisibleGestureFrames(clip, 4.0);
  std::vector<double> area, vel;
  for (size_t i = 1; i + 1 < frames.size(); ++i) {
    if (frames[i + 1] - frames[i - 1] != 2) continue;
    area.push_back(Moments(clip, frames[i]).area);
    vel.push_back(Moments(clip, frames[i + 1]).cy - Moments(clip, frames[i - 1]).cy);
  }
  if (area.size() < 3) return 0;
  double ma = 0, mv = 0;
  for (size_t i = 0; i < area.size(); ++i) {
    ma += area[i];
    mv += vel[i];
  }
  ma /= area.size();
  mv /= area.size();
  double sav = 0, saa = 0, svv = 0;
  for (size_t i = 0; i < area.size(); ++i) {
    sav += (area[i] - ma) * (vel[i] - mv);
    saa += (area[i] - ma) * (area[i] - ma);
    svv += (vel[i] - mv) * (vel[i] - mv);
  }
  return saa > 0 && svv > 0 ? sav / std::sqrt(saa * svv) : 0;
}

TEST(SynthDirection, RollingForwardAndBackwardAreOppositeLoops) {
  const RenderOptions o = MaskOptions();
  int agree = 0;
  for (int i = 0; i < kSeeds; ++i) {
    const uint64_t seed = kSeedBase + i;
    if (AreaVelocityCorrelation(RenderClip(12, seed, o)) > 0) ++agree;
    if (AreaVelocityCorrelation(RenderClip(13, seed, o)) < 0) ++agree;
  }
  EXPECT_GE(agree, 2 * kSeeds * 3 / 4);
}

TEST(SynthDirection, ZoomingSpreadsOrGathersTheFingers) {
  // The hand's spread (radius of gyration of its mask) ends well above its
  // smallest value during the gesture when zooming in, well below its largest
  // when zooming out (the preparation first takes the start shape).
  RenderOptions o = MaskOptions();
  o.width = 132;  // fingers need a few pixels
  o.height = 75;
  for (auto [in, out] : {std::pair{16, 17}, std::pair{18, 19}}) {
    for (int i = 0; i < kSeeds; ++i) {
      const uint64_t seed = kSeedBase + i;
      for (int label : {in, out}) {
        SCOPED_TRACE(Describe(label, seed));
        const RenderedClip clip = RenderClip(label, seed, o);
        const double end = Moments(clip, clip.gesture.end - 1).gyration;
        double lo = 1e9, hi = 0;
        for (int f = clip.gesture.start; f < clip.gesture.end; ++f) {
          const double g = Moments(clip, f).gyration;
          lo = std::min(lo, g);
          hi = std::max(hi, g);
        }
        if (label == in) {
          EXPECT_GT(end, 1.1 * lo);
        } else {
          EXPECT_LT(end, hi / 1.1);
        }
      }
    }
  }
}

TEST(SynthDirection, ThumbPointsUpOrDown) {
  RenderOptions o = MaskOptions();
  o.width = 176;  // the thumb needs a few pixels
  o.height = 100;
  for (int i = 0; i < kSeeds; ++i) {
    const uint64_t seed = kSeedBase + i;
    for (int label : {20, 21}) {
      SCOPED_TRACE(Describe(label, seed));
      const RenderedClip clip = RenderClip(label, seed, o);
      const int f = clip.frames - 1;  // the sign is held to the end
      const MaskMoments m = Moments(clip, f);
      ASSERT_GT(m.area, 20);
      const double palm_y = clip.hand[f].y;
      const double above = palm_y - m.top, below = m.bottom - palm_y;
      if (m.top <= 0 || m.bottom >= clip.height - 1) continue;  // cut by the frame edge
      if (label == 20) {
        EXPECT_GT(above, below);
      } else {
        EXPECT_GT(below, above);
      }
    }
  }
}

}  // namespace
}  // namespace billnet::synth
