#include "portable_math.h"

#include <cmath>
#include <cstdint>

namespace billnet::synth::portable {
namespace {

// Cody-Waite splits (fdlibm): the high parts have trailing zero bits, so
// k * hi is exact for the |k| the renderer produces.
constexpr double kTwoOverPi = 6.36619772367581382433e-01;
constexpr double kPiOver2Hi = 1.57079632673412561417e+00;
constexpr double kPiOver2Lo = 6.07710050650619224932e-11;
constexpr double kLog2e = 1.44269504088896338700e+00;
constexpr double kLn2Hi = 6.93147180369123816490e-01;
constexpr double kLn2Lo = 1.90821492927058770002e-10;
constexpr double kSqrtHalf = 7.07106781186547524401e-01;

}  // namespace

void SinCos(double x, double* s, double* c) {
  if (!(std::fabs(x) < 1e9)) x = 0;  // NaN / absurd inputs: defined, not accurate
  const double k = std::floor(x * kTwoOverPi + 0.5);
  const double r = (x - k * kPiOver2Hi) - k * kPiOver2Lo;  // |r| <= pi/4 (+tiny)
  const double r2 = r * r;
  // Taylor series to r^13 / r^14: error below 1e-14 on [-pi/4, pi/4].
  const double sr =
      r *
      (1 + r2 * (-1.0 / 6 +
                 r2 * (1.0 / 120 + r2 * (-1.0 / 5040 +
                                         r2 * (1.0 / 362880 + r2 * (-1.0 / 39916800 +
                                                                    r2 * (1.0 / 6227020800.0)))))));
  const double cr =
      1 + r2 * (-0.5 + r2 * (1.0 / 24 +
                             r2 * (-1.0 / 720 + r2 * (1.0 / 40320 +
                                                      r2 * (-1.0 / 3628800 +
                                                            r2 * (1.0 / 479001600 +
                                                                  r2 * (-1.0 / 87178291200.0)))))));
  switch (static_cast<int64_t>(k) & 3) {
    case 0:
      *s = sr;
      *c = cr;
      break;
    case 1:
      *s = cr;
      *c = -sr;
      break;
    case 2:
      *s = -sr;
      *c = -cr;
      break;
    default:
      *s = -cr;
      *c = sr;
      break;
  }
}

double Sin(double x) {
  double s, c;
  SinCos(x, &s, &c);
  return s;
}

double Cos(double x) {
  double s, c;
  SinCos(x, &s, &c);
  return c;
}

double Exp(double x) {
  if (!(x > -700)) x = -700;  // also maps NaN
  if (x > 700) x = 700;
  const double k = std::floor(x * kLog2e + 0.5);
  const double r = (x - k * kLn2Hi) - k * kLn2Lo;  // |r| <= 0.35
  // Taylor series to r^14: error below 1e-16 relative.
  double p = 1.0 / 87178291200.0;
  const double inv[] = {1.0 / 6227020800.0,
                        1.0 / 479001600,
                        1.0 / 39916800,
                        1.0 / 3628800,
                        1.0 / 362880,
                        1.0 / 40320,
                        1.0 / 5040,
                        1.0 / 720,
                        1.0 / 120,
                        1.0 / 24,
                        1.0 / 6,
                        0.5,
                        1,
                        1};
  for (double a : inv) p = p * r + a;
  return std::ldexp(p, static_cast<int>(k));
}

double Log(double x) {
  if (!(x > 0)) return -1e300;
  int e = 0;
  double m = std::frexp(x, &e);  // x = m * 2^e, m in [0.5, 1)
  if (m < kSqrtHalf) {
    m *= 2;
    e -= 1;
  }
  // log(m) = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.1716.
  const double s = (m - 1) / (m + 1);
  const double s2 = s * s;
  double p = 1.0 / 23;
  for (int n = 21; n >= 1; n -= 2) p = p * s2 + 1.0 / n;
  return e * kLn2Hi + (e * kLn2Lo + 2 * s * p);
}

double Pow(double x, double y) { return Exp(y * Log(x)); }

}  // namespace billnet::synth::portable
