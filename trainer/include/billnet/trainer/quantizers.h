// Quantizers of the BILLNET training stages (DESIGN.md 2.1, docs/engine.md),
// with straight-through estimators. Each is written with the detach trick:
// y = q(x).detach() + (x - x.detach()) * mask, so the forward value is exactly
// q(x) and the gradient is mask (elementwise).
#ifndef BILLNET_TRAINER_QUANTIZERS_H_
#define BILLNET_TRAINER_QUANTIZERS_H_

#include <torch/torch.h>

namespace billnet::trainer {

// Sign(x) = +1 for x >= 0, -1 otherwise (no autograd).
torch::Tensor SignValues(const torch::Tensor& x);
// TWN ternarization: 0 where |w| <= 0.7 * mean|w|, Sign(w) elsewhere (no autograd).
torch::Tensor TernValues(const torch::Tensor& w);

// Sign with the BNN straight-through gradient 1{|x| <= 1}.
torch::Tensor SignSte(const torch::Tensor& x);
// Scaled sign: scale * Sign(x), gradient scale * 1{|x| <= 1} (eq. 9: scale = 3/sqrt(ni+no)).
torch::Tensor SSign(const torch::Tensor& x, double scale);
// Scaled ternary: scale * Tern(w), gradient scale * 1{|w| <= 1} (eq. 10: scale = 1/sqrt(4m)).
torch::Tensor STern(const torch::Tensor& w, double scale);
// Heaviside H(x) = 1{x > 0} (H(0) = 0), gradient 1{|x| <= 1}.
torch::Tensor HeavisideSte(const torch::Tensor& x);
// Clip(x) = max(-1, min(1, x)), gradient 1.
torch::Tensor ClipSte(const torch::Tensor& x);

// BSN: the power-of-two exponent round(log2|scale|), clamped to the file's
// [-64, 64]; a zero scale gives -64.
int BsnShift(double scale);
// Elementwise 2^round(log2|scale|) (no autograd), same clamp.
torch::Tensor BsnScale(const torch::Tensor& scale);

}  // namespace billnet::trainer

#endif  // BILLNET_TRAINER_QUANTIZERS_H_
