// Folding a float batch normalization into the integer threshold of an S3
// model (the trainer's export uses this; so do tests).
#ifndef BILLNET_FOLD_H_
#define BILLNET_FOLD_H_

#include <cstdint>

namespace billnet {

struct FoldedThreshold {
  int32_t threshold = 0;
  int8_t polarity = 1;  // +1: bit = x >= threshold; -1: x <= threshold; 0: bit = threshold
};

// H(scale * (input_scale * x) + offset) for integer x, as one comparison:
// `scale`, `offset` are the BN's folded affine (gamma-hat, beta-hat) and
// `input_scale` the float value of one integer step of x (1/255 for the stem,
// whose float input is v / 255; 1 elsewhere). The result agrees, for every
// int32 x, with that expression evaluated in double.
FoldedThreshold FoldNormToThreshold(double scale, double offset, double input_scale);

}  // namespace billnet

#endif  // BILLNET_FOLD_H_
