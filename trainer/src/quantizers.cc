#include "billnet/trainer/quantizers.h"

#include <algorithm>
#include <cmath>

namespace billnet::trainer {

namespace {
torch::Tensor Ste(const torch::Tensor& q, const torch::Tensor& x, const torch::Tensor& mask) {
  return q.detach() + (x - x.detach()) * mask;
}
torch::Tensor Window(const torch::Tensor& x) { return (x.detach().abs() <= 1).to(x.scalar_type()); }
}  // namespace

torch::Tensor SignValues(const torch::Tensor& x) {
  return torch::where(x >= 0, torch::ones_like(x), -torch::ones_like(x));
}

torch::Tensor TernValues(const torch::Tensor& w) {
  const torch::Tensor d = w.detach();
  const torch::Tensor delta = 0.7 * d.abs().mean();
  return torch::where(d.abs() > delta, SignValues(d), torch::zeros_like(d));
}

torch::Tensor SignSte(const torch::Tensor& x) { return Ste(SignValues(x.detach()), x, Window(x)); }

torch::Tensor SSign(const torch::Tensor& x, double scale) { return SignSte(x) * scale; }

torch::Tensor STern(const torch::Tensor& w, double scale) {
  return Ste(TernValues(w), w, Window(w)) * scale;
}

torch::Tensor HeavisideSte(const torch::Tensor& x) {
  return Ste((x.detach() > 0).to(x.scalar_type()), x, Window(x));
}

torch::Tensor ClipSte(const torch::Tensor& x) {
  return Ste(x.detach().clamp(-1, 1), x, torch::ones_like(x));
}

int BsnShift(double scale) {
  const double a = std::fabs(scale);
  if (!(a > 0) || !std::isfinite(a)) return a > 0 ? 64 : -64;
  return int(std::clamp(std::round(std::log2(a)), -64.0, 64.0));
}

torch::Tensor BsnScale(const torch::Tensor& scale) {
  torch::Tensor s = scale.detach().abs().log2().round().clamp(-64, 64);
  return torch::pow(2.0, s).to(scale.scalar_type());
}

}  // namespace billnet::trainer
