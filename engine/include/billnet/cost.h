// Hardware cost report: parameters, weight memory and BOPs per layer and in
// total, as the paper's Table I counts them. The counting rules are in
// docs/cost-model.md; DESIGN.md section 2.3 fixes them.
#ifndef BILLNET_COST_H_
#define BILLNET_COST_H_

#include <cstdint>
#include <string>
#include <vector>

#include "billnet/topology.h"

namespace billnet {

struct LayerCost {
  std::string name;  // "cf1.gconv", "cf1.norm", "lstm", "dense"
  std::string kind;  // "conv", "norm", "lstm", "dense"
  std::string output_shape;
  int64_t params = 0;     // weights (BN parameters are not counted)
  int64_t macs = 0;       // multiply-accumulates (norm: elements)
  int weight_bits = 0;    // bits per weight (0 for norms)
  double input_bits = 0;  // paper convention (pixels count 32)
  double input_bits_true = 0;  // the width the values really need
  std::string input_range;     // "[-128, 128]", "{0,1}", "float"
  double bops = 0;
  double bops_true_width = 0;
};

struct CostReport {
  Stage stage;
  std::vector<LayerCost> layers;
  int64_t params = 0;
  int64_t weight_bits = 0;
  double weight_memory_mbit = 0;  // weight_bits / 1e6
  int64_t macs = 0;
  double gbops = 0;               // paper convention, 1e9 BOPs
  double gbops_true_width = 0;
};

// Bit-operations charged for one normalization element (S1-S3).
inline constexpr double kBopsPerNormElement = 1024;

CostReport ComputeCost(const TopologyPlan& plan, Stage stage);

}  // namespace billnet

#endif  // BILLNET_COST_H_
