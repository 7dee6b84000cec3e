// Elementary functions computed with +, *, /, floor and ldexp only, so their
// results are the same bits on every platform (libm's sin/exp/log may differ
// in the last place between C libraries). Accurate to a few ulp over the
// ranges the renderer uses; determinism, not accuracy, is the point.
#ifndef BILLNET_SYNTH_PORTABLE_MATH_H_
#define BILLNET_SYNTH_PORTABLE_MATH_H_

namespace billnet::synth::portable {

inline constexpr double kPi = 3.14159265358979323846;
inline constexpr double kTwoPi = 2 * kPi;
inline constexpr double kDegree = kPi / 180;

double Sin(double x);
double Cos(double x);
void SinCos(double x, double* s, double* c);
double Exp(double x);            // clamps x to [-700, 700]
double Log(double x);            // x <= 0 gives -1e300
double Pow(double x, double y);  // x > 0

}  // namespace billnet::synth::portable

#endif  // BILLNET_SYNTH_PORTABLE_MATH_H_
