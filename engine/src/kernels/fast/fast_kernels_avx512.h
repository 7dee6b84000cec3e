// AVX-512 kernels of the fast integer path (FastIsa::kAvx512, isa.h): the u8
// taps convolutions (the stem and the grouped 3x3x3 convs) with VNNI's
// VPDPBUSD and the first pointwise with VPOPCNTD, 16 output channels per
// 512-bit register, and the second pointwise's subset-sum tables on 16
// positions per register. The avx512 variant runs these and the AVX2 kernels for
// every other operator (an AVX-512 CPU has AVX2). Call them only where
// FastIsaSupported(kAvx512). The weight layouts are built by portable code
// (fast_kernels.cc).
//
// The same source is built a second time on SIMDe's portable AVX-512
// (namespace avx512_emulated, tests only), so its property tests run on
// every host, not only on those with AVX-512 (decision 27).
#ifndef BILLNET_ENGINE_KERNELS_FAST_FAST_KERNELS_AVX512_H_
#define BILLNET_ENGINE_KERNELS_FAST_FAST_KERNELS_AVX512_H_

#include <cstdint>
#include <vector>

#include "billnet/topology.h"
#include "kernels/fast/bitpack.h"
#include "kernels/fast/fast_kernels_avx2.h"

namespace billnet {

// One output row (t, y) of a u8 taps convolution, as ConvRowTapsU8Avx2 but on
// a 16-lane layout (PackTapsU8 / PackTapsU8PForm with lanes kAvx512Lanes):
// per quad of 4 u8 of a position, one broadcast and one VPDPBUSD per 16
// output channels into int32 lanes (no int16 rounds: exact wherever the sums
// fit int32, which every taps layer's do), then x scale, the p form's P term
// by VPDPWSSD on pairs of P, and minus the border correction. Inputs carry
// kAvx2InputSlack bytes (u8) / int16 (P plane) past their end, as for AVX2.
void ConvRowTapsU8Avx512(const ConvSpec& c, const TapsU8& tb, const uint8_t* padded,
                         const int16_t* pplane, int t, int y, int32_t* out_row, int16_t* out16_row);

// First pointwise of a CF on bits, as PointwiseBinaryAvx2 (same outputs,
// modes and arguments) with VPOPCNTD: 16 outputs per register, each 64-bit
// word of the position as two broadcast 32-bit halves ANDed with the 16
// outputs' weight halves, counted and summed in int32 lanes (no byte counts
// to flush). w: PackPointwiseBinaryAvx512's layout, [16-output block][word]
// [low half, high half][16 lanes] uint32 in BitWords (zero lanes for the
// padding outputs of the last block). Needs AVX512_VPOPCNTDQ besides the
// variant's other features (FastIsaSupported(kAvx512) checks it).
std::vector<BitWord> PackPointwiseBinaryAvx512(int ci, int co, const int8_t* w);
void PointwiseBinaryAvx512(int64_t count, int words, const BitWord* a, int co, const BitWord* w,
                           int16_t* out16, uint8_t* out8, int offset, int64_t out_stride,
                           bool p_form = false, int16_t* pplane = nullptr,
                           int64_t pplane_stride = 1);

// Second pointwise by subset-sum tables, as PointwiseInt32SubsetAvx2 /
// PointwiseInt16SubsetAvx2 (same layout PackPointwiseSubsets, same scratch
// PointwiseSubsetScratch, same results) on 16-position registers: chunks of
// up to 32 positions, 16x16 transposes in and out, 16 outputs at a time. A
// call of at most 8 positions runs the AVX2 kernel (its registers hold 8).
void PointwiseInt32SubsetAvx512(int64_t count, const int32_t* x, const PointwiseSubsets& s,
                                int32_t* scratch, int32_t* out);
void PointwiseInt16SubsetAvx512(int64_t count, const int16_t* x, const PointwiseSubsets& s,
                                int32_t* scratch, int32_t* out);

// The avx512 variant's kernels, as the runner calls them.
struct Avx512KernelTable {
  decltype(&ConvRowTapsU8Avx512) conv_u8;
  decltype(&PointwiseBinaryAvx512) pointwise_binary;
  decltype(&PointwiseInt32SubsetAvx512) pointwise_int32;
  decltype(&PointwiseInt16SubsetAvx512) pointwise_int16;
};
// The CPU's kernels above, or the table a test set (SetAvx512KernelsForTesting).
const Avx512KernelTable& Avx512Kernels();

// Tests only: while set, the avx512 variant counts as supported wherever the
// avx2 one is (FastIsaSupported), models loaded meanwhile get its weight
// layouts, and its runners call `table`'s kernels (avx512_emulated::kTable)
// instead of the CPU's: whole models run the variant on hosts without
// AVX-512. nullptr restores the CPU's. Not for concurrent use.
void SetAvx512KernelsForTesting(const Avx512KernelTable* table);
const Avx512KernelTable* Avx512KernelsForTesting();

namespace avx512_emulated {
// The kernels above compiled on SIMDe (libsimde-dev) instead of the CPU's
// instructions: any x86-64 or ARM host runs them. Linked into the tests only.
void ConvRowTapsU8Avx512(const ConvSpec& c, const TapsU8& tb, const uint8_t* padded,
                         const int16_t* pplane, int t, int y, int32_t* out_row, int16_t* out16_row);
void PointwiseBinaryAvx512(int64_t count, int words, const BitWord* a, int co, const BitWord* w,
                           int16_t* out16, uint8_t* out8, int offset, int64_t out_stride,
                           bool p_form = false, int16_t* pplane = nullptr,
                           int64_t pplane_stride = 1);
void PointwiseInt32SubsetAvx512(int64_t count, const int32_t* x, const PointwiseSubsets& s,
                                int32_t* scratch, int32_t* out);
void PointwiseInt16SubsetAvx512(int64_t count, const int16_t* x, const PointwiseSubsets& s,
                                int32_t* scratch, int32_t* out);
// Those, for SetAvx512KernelsForTesting.
extern const Avx512KernelTable kTable;
}  // namespace avx512_emulated

}  // namespace billnet

#endif  // BILLNET_ENGINE_KERNELS_FAST_FAST_KERNELS_AVX512_H_
