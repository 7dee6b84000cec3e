// Training curves like the paper's Fig. 4: CCE loss (train and test) and
// accuracy (train steps, test top-1) per epoch across the stages, with the
// stage boundaries marked, as a PNG.
#ifndef BILLNET_TRAINER_CURVES_H_
#define BILLNET_TRAINER_CURVES_H_

#include <string>
#include <vector>

#include "billnet/status.h"
#include "billnet/trainer/training.h"

namespace billnet::trainer {

// Writes the curves of `history` (in training order) to `path`. Unsupported
// in a build without viz/.
Status WriteTrainingCurves(const std::vector<EpochMetrics>& history, const std::string& path);

}  // namespace billnet::trainer

#endif  // BILLNET_TRAINER_CURVES_H_
