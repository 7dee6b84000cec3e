// Which variant of the fast integer kernels a runner uses: chosen once per
// runner from the CPU's features, or forced by BILLNET_FAST_ISA.
//
//   portable  the portable C++ kernels (fast_kernels.h; GCC target_clones)
//   avx2      hand-written AVX2 kernels for the convolutions and thresholds
//             (fast_kernels_avx2.h), the portable ones for the rest
//   avx512    AVX-512 VNNI for the u8 convolutions and VPOPCNTD for the
//             first pointwise (fast_kernels_avx512.h: needs AVX-512 F, BW,
//             VL, VNNI and VPOPCNTDQ), the avx2 variant's kernels for the rest
//
// BILLNET_FAST_ISA=portable|avx2|avx512 forces a variant; a variant the CPU
// (or the build) lacks, or an unknown name, is reported once on stderr and
// the best available one is used instead. Every variant is bit-exact against
// the reference (tests/engine/fast_kernels_test.cc runs each available one,
// and the AVX-512 kernels also on SIMDe where the CPU lacks them).
#ifndef BILLNET_ENGINE_KERNELS_FAST_ISA_H_
#define BILLNET_ENGINE_KERNELS_FAST_ISA_H_

#include <vector>

namespace billnet {

enum class FastIsa { kPortable, kAvx2, kAvx512 };

// Whether a variant runs the AVX2 kernels (avx2 and avx512 do).
inline bool UsesAvx2Kernels(FastIsa isa) { return isa != FastIsa::kPortable; }

// "portable", "avx2", "avx512".
const char* FastIsaName(FastIsa isa);

// True when this build has the variant and this CPU can run it.
bool FastIsaSupported(FastIsa isa);

// Every supported variant, the portable one first.
std::vector<FastIsa> SupportedFastIsas();

// The best supported variant (avx512, else avx2, else portable).
FastIsa BestFastIsa();

// BILLNET_FAST_ISA if set and supported, else BestFastIsa(). Reads the
// environment on every call (cheap; called once per runner).
FastIsa FastIsaFromEnvironment();

}  // namespace billnet

#endif  // BILLNET_ENGINE_KERNELS_FAST_ISA_H_
