#include "billnet/fold.h"

#include <cmath>
#include <limits>

namespace billnet {

FoldedThreshold FoldNormToThreshold(double scale, double offset, double input_scale) {
  const double s = scale * input_scale;
  if (s == 0 || !std::isfinite(s) || !std::isfinite(offset))
    return {offset > 0 ? 1 : 0, 0};
  const double t = -offset / s;  // the decision boundary on x
  constexpr double kMin = std::numeric_limits<int32_t>::min();
  constexpr double kMax = std::numeric_limits<int32_t>::max();
  // The decision exactly as the double expression makes it; the division
  // above only gives a first guess that may be off by one after rounding.
  auto bit = [&](double x) { return scale * (input_scale * x) + offset > 0; };
  if (s > 0) {  // bit = x > t  <=>  x >= floor(t) + 1
    double thr = std::floor(t) + 1;
    if (thr > kMax) return {0, 0};   // never
    if (thr <= kMin) return {1, 0};  // always
    while (thr > kMin && bit(thr - 1)) thr -= 1;
    while (thr <= kMax && !bit(thr)) thr += 1;
    if (thr > kMax) return {0, 0};
    return {int32_t(thr), 1};
  }
  // s < 0: bit = x < t  <=>  x <= ceil(t) - 1
  double thr = std::ceil(t) - 1;
  if (thr < kMin) return {0, 0};
  if (thr >= kMax) return {1, 0};
  while (thr < kMax && bit(thr + 1)) thr += 1;
  while (thr >= kMin && !bit(thr)) thr -= 1;
  if (thr < kMin) return {0, 0};
  return {int32_t(thr), -1};
}

}  // namespace billnet
