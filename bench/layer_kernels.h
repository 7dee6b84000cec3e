// One convolution of a plan on its own, for per-layer benchmarks: in-range
// random inputs (DESIGN.md 2.1), random +-1 weights, in the layout the fast
// runner gives its kernel, run through the fast kernel or the reference.
// Used by engine_fast_bench (Google Benchmark) and billnet-bench.
#ifndef BILLNET_BENCH_LAYER_KERNELS_H_
#define BILLNET_BENCH_LAYER_KERNELS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "billnet/topology.h"
#include "kernels/fast/bitpack.h"
#include "kernels/fast/fast_kernels_avx2.h"
#include "kernels/fast/fast_kernels_avx512.h"
#include "kernels/fast/isa.h"

namespace billnet::bench {

// Which fast kernel a convolution of the integer stages runs.
enum class LayerRole {
  kIntRows,          // stem and grouped 3x3x3: ConvRowInt16Portable
  kPointwiseBinary,  // a CF's first pointwise (bits in): PointwiseBinaryPortable
  kPointwiseInt32,   // a CF's second pointwise: PointwiseInt32Portable
};

struct PlanConv {
  const ConvSpec* conv;  // points into the plan
  LayerRole role;
  // A grouped conv whose sums fit int16, or the second pointwise after one:
  // the AVX2 variant passes int16 between them (fast_runner.cc's out16).
  bool int16_mid = false;
  // The AVX2 variant's u8 x s8 form (fast_runner.cc): the stem on u8 pixels,
  // a grouped conv whose input [-m, m] fits u8 as v + m (m = the first
  // pointwise's ci), and that first pointwise, which then writes u8.
  bool u8 = false;
  int u8_offset = 0;
  // The p form (grouped convs with first pointwise ci >= 128; the runner takes
  // it when no first-pointwise row is all +1): pmax is the bench's stand-in
  // for the most +1 weights in a row, 5/8 of ci (random +-1 rows).
  bool p_form = false;
  int pmax = 0;
};

// Every convolution of `plan` in execution order (the names cost.h uses).
std::vector<PlanConv> PlanConvs(const TopologyPlan& plan);

// Inputs, weights and outputs of one convolution; Run() computes it once.
// Not thread-safe.
class LayerKernel {
 public:
  // isa: the fast variant (ignored when !fast; must be supported).
  LayerKernel(const PlanConv& layer, bool fast, uint64_t seed, FastIsa isa = FastIsa::kPortable);
  void Run();
  const std::string& kernel() const { return kernel_; }  // "ConvRowInt16Portable", ...
  const ConvSpec& conv() const { return c_; }
  const void* output() const;

 private:
  ConvSpec c_;
  LayerRole role_;
  bool fast_;
  FastIsa isa_;
  bool int16_mid_;
  bool u8_;
  int u8_offset_;
  std::string kernel_;
  std::vector<int8_t> w_;
  std::vector<int32_t> in32_, out_;
  std::vector<uint8_t> in8_;
  // Fast layouts.
  std::vector<int16_t> padded_, rows_, col_, out16_;
  std::vector<uint8_t> padded8_, out8_;
  std::vector<int16_t> pplane_;
  bool p_form_;
  int pmax_;
  TapsU8 taps8_;
  int kpad_ = 0;
  std::vector<BitWord> bits_, wpos_,
      wpos_avx2_;  // wpos_avx2_: the variant's layout (avx2 or avx512)
  std::vector<int32_t> mask_;
  // AVX2 layouts.
  TapsBlocked taps_;
  std::vector<int16_t> in16_;
  PointwiseSubsets subsets_;
  std::vector<int32_t> subset_scratch_;
};

}  // namespace billnet::bench

#endif  // BILLNET_BENCH_LAYER_KERNELS_H_
