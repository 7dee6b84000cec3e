#include "billnet/fold.h"

#include <gtest/gtest.h>

#include "rng.h"

namespace billnet {
namespace {

bool Apply(const FoldedThreshold& f, int32_t x) {
  if (f.polarity > 0) return x >= f.threshold;
  if (f.polarity < 0) return x <= f.threshold;
  return f.threshold != 0;
}

TEST(Fold, MatchesTheFloatDecisionOnEveryIntegerNearTheBoundary) {
  Rng rng(5);
  for (int trial = 0; trial < 2000; ++trial) {
    const double scale = rng.Uniform(-3, 3), offset = rng.Uniform(-50, 50);
    const double input_scale = trial % 2 ? 1.0 : 1.0 / 255;
    const FoldedThreshold f = FoldNormToThreshold(scale, offset, input_scale);
    const double boundary = scale == 0 ? 0 : -offset / (scale * input_scale);
    const int64_t centre = std::llround(boundary);
    for (int64_t x = centre - 3; x <= centre + 3; ++x) {
      const bool want = scale * (input_scale * double(x)) + offset > 0;
      ASSERT_EQ(Apply(f, int32_t(x)), want)
          << "trial " << trial << " scale " << scale << " offset " << offset << " x " << x;
    }
  }
}

TEST(Fold, ExactBoundaryIsExcluded) {
  // 2x - 6 > 0 <=> x > 3: x = 3 gives 0 (H(0) = 0), x = 4 gives 1.
  const FoldedThreshold f = FoldNormToThreshold(2, -6, 1);
  EXPECT_EQ(f.polarity, 1);
  EXPECT_EQ(f.threshold, 4);
  // -2x + 6 > 0 <=> x < 3.
  const FoldedThreshold g = FoldNormToThreshold(-2, 6, 1);
  EXPECT_EQ(g.polarity, -1);
  EXPECT_EQ(g.threshold, 2);
}

TEST(Fold, ZeroScaleIsAConstant) {
  EXPECT_EQ(FoldNormToThreshold(0, 0.5, 1).polarity, 0);
  EXPECT_EQ(FoldNormToThreshold(0, 0.5, 1).threshold, 1);
  EXPECT_EQ(FoldNormToThreshold(0, -0.5, 1).threshold, 0);
  EXPECT_EQ(FoldNormToThreshold(0, 0.0, 1).threshold, 0);  // H(0) = 0
}

TEST(Fold, BoundariesOutsideInt32BecomeConstants) {
  const FoldedThreshold never = FoldNormToThreshold(1e-12, -1, 1);
  EXPECT_EQ(never.polarity, 0);
  EXPECT_EQ(never.threshold, 0);
  const FoldedThreshold always = FoldNormToThreshold(1e-12, 1, 1);
  EXPECT_EQ(always.polarity, 0);
  EXPECT_EQ(always.threshold, 1);
}

}  // namespace
}  // namespace billnet
