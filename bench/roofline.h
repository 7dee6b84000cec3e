// The machine's limit for the integer model: the throughput of the narrowest
// instruction each layer's input range allows, measured on this CPU by tiny
// register-only loops (no memory traffic), then a per-layer lower bound =
// the layer's MACs / that throughput. docs/performance.md "Whole model and
// roofline" gives the derivation.
//
// Instruction mixes (one "group" computes macs_per_group MACs):
//   popcount   binary x binary: VPAND + VPOPCNTQ + VPADDQ on 512 bits (AVX-512
//              VPOPCNTDQ), or on 64 bits (scalar POPCNT) elsewhere
//   int8_dot   u8 x s8 dot product: VPDPBUSD (zmm, AVX-512 VNNI; ymm, AVX-VNNI),
//              else VPMADDUBSW + VPMADDWD + VPADDD (AVX2), else a scalar MAC
//   int16_dot  s16 x s16: VPDPWSSD (zmm), else VPMADDWD + VPADDD (AVX2)
//   int32_add  +-1 weights on 32-bit inputs: one VPADDD/VPSUBD per 16 lanes
//              (8 on AVX2, 1 scalar)
// The ISA is chosen at run time (__builtin_cpu_supports), or forced.
#ifndef BILLNET_BENCH_ROOFLINE_H_
#define BILLNET_BENCH_ROOFLINE_H_

#include <string>
#include <vector>

#include "billnet/cost.h"

namespace billnet::bench {

enum class RoofOp { kPopcount, kInt8Dot, kInt16Dot, kInt32Add };
inline constexpr int kRoofOps = 4;
const char* RoofOpName(RoofOp op);  // "popcount", "int8_dot", "int16_dot", "int32_add"

struct InstructionRate {
  RoofOp op;
  std::string isa;          // "avx512", "avx2", "scalar"
  std::string instruction;  // "VPDPBUSD zmm", ...
  int macs_per_group = 0;   // MACs one instruction group computes
  int instructions_per_group = 0;
  double macs_per_s = 0;  // median over repetitions
};

// "avx512", "avx2" or "scalar": the best this CPU runs (needs AVX-512
// F/BW/VNNI/VPOPCNTDQ for "avx512", AVX2 for "avx2").
std::string BestRoofIsa();

// Measures every op's mix with `isa` ("" = BestRoofIsa(); an ISA the CPU
// lacks falls back to the best it has). Returns kRoofOps entries in RoofOp
// order. Takes about repetitions x 4 x 20 ms.
std::vector<InstructionRate> MeasureInstructionRates(const std::string& isa, int repetitions);

// The narrowest op a layer's input range allows (cost.h's input_bits_true:
// 1 bit -> popcount, <= 8 -> int8_dot (the stem's u8 pixels: v = 2x - 255 is
// affine in x), <= 16 -> int16_dot, else int32_add). Layers without MACs
// to speak of (norms) have none: returns false.
bool NarrowestOp(const LayerCost& layer, RoofOp* op);

}  // namespace billnet::bench

#endif  // BILLNET_BENCH_ROOFLINE_H_
