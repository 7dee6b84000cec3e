// The float baseline of billnet-bench: the same topology's S1-shaped float
// forward in libtorch (random weights), one thread, in three variants
// (DESIGN.md section 6, docs/performance.md):
//   "eager"                   the graph's aten ops as eager dispatches them
//                             (TorchScript interpreter, no graph passes)
//   "eager_onednn"            the same, every convolution through
//                             aten::mkldnn_convolution (oneDNN)
//   "optimize_for_inference"  the module frozen and passed through
//                             torch::jit::optimize_for_inference
// Built only where libtorch is (BILLNET_BENCH_HAS_TORCH); elsewhere
// TorchBaselineAvailable() is false and RunTorchBaseline returns nothing.
// This header includes no libtorch header.
#ifndef BILLNET_BENCH_TORCH_BASELINE_H_
#define BILLNET_BENCH_TORCH_BASELINE_H_

#include <string>
#include <vector>

#include "billnet/topology.h"

namespace billnet::bench {

struct TorchResult {
  std::string variant;  // "eager", "eager_onednn", "optimize_for_inference"
  int batch = 1;
  bool ok = false;  // false: `error` says why (variant failed or missing)
  std::string error;
  double cpu_ms_per_clip = 0;
  double wall_ms_per_clip = 0;
};

bool TorchBaselineAvailable();
// "1.13.0" or "unavailable".
std::string TorchVersion();
// What at::show_config() says about speed: CPU capability, oneDNN, BLAS,
// OpenMP ("CPU capability usage: AVX2; ...; BLAS_INFO=generic; ..."); empty
// without libtorch.
std::string TorchConfigSummary();

// Times every variant at every batch size: `repetitions` medians of calls
// lasting at least `min_seconds` each. One intra-op thread.
std::vector<TorchResult> RunTorchBaseline(const TopologyPlan& plan, const std::vector<int>& batches,
                                          int repetitions, double min_seconds);

}  // namespace billnet::bench

#endif  // BILLNET_BENCH_TORCH_BASELINE_H_
