// AVX2 kernels of the fast integer path (FastIsa::kAvx2, isa.h), and the
// weight layouts they read (built once at load by the Pack* functions, which
// are portable C++). Call the kernels only where FastIsaSupported(kAvx2).
//
// The convolutions are small GEMMs written as outer products, vectorized over
// 8 output channels per 256-bit register, with several output positions per
// tile sharing each weight load, so there are no horizontal sums and no
// im2col copies: per step a tile broadcasts one 32-bit word of the input (a
// pair of int16 values, or one int32) per position and multiplies it by the
// matching weights of 8 output channels.
//
//   int16 input  (stem, grouped 3x3x3, second pointwise when its input fits
//                int16): VPMADDWD of the broadcast pair (v[k], v[k+1]) with
//                the lanes' (w[o][k], w[o][k+1]), VPADDD into int32;
//   int32 input  (second pointwise otherwise, up to 19 bits): VPSIGND of the
//                broadcast value by the lanes' +-1 weights, VPADDD.
//
// Bounds: an odd run length is rounded up to a pair whose second weight is 0,
// so a kernel may read ONE int16 past the last value of a run; the caller's
// input buffers hold kAvx2InputSlack zero int16 past their end.
#ifndef BILLNET_ENGINE_KERNELS_FAST_FAST_KERNELS_AVX2_H_
#define BILLNET_ENGINE_KERNELS_FAST_FAST_KERNELS_AVX2_H_

#include <cstdint>
#include <vector>

#include "billnet/topology.h"
#include "kernels/fast/bitpack.h"

namespace billnet {

inline constexpr int kAvx2Lanes = 8;        // int32 output channels per register
inline constexpr int kAvx2InputSlack = 16;  // int16 readable past an input's end

// A strided, grouped convolution with +-1 weights on a zero-padded
// channel-last int16 input (PaddedInputShape), in the AVX2 layout.
//
// Groups are merged into super-groups of `merge` consecutive groups while a
// super-group has at most 8 output channels (a group of 4 outputs fills half
// a register otherwise); weights across groups inside a super-group are 0.
// A super-group's input is one contiguous channel range, so per output
// position its taps are `runs` runs of `run_len` contiguous int16:
//   span == ci (one super-group): one run per (kt, kh) of kw * ci values;
//   otherwise: one run per (kt, kh, kw) of span values.
// w: [supergroup][block][run][pair][8 lanes][2] int16, block = 8 of the
// super-group's sg_out output channels (the last block zero-padded).
struct TapsBlocked {
  int merge = 1, supergroups = 0;
  int span = 0;    // input channels per super-group
  int sg_out = 0;  // output channels per super-group
  int blocks = 0;  // ceil(sg_out / 8)
  int runs = 0, run_len = 0, pairs = 0;
  int64_t x_step = 0;            // int16 between consecutive output positions: sw * ci
  std::vector<int32_t> run_off;  // [run] int16 offset from the position's base
  std::vector<int16_t> w;
};

// w: the reference layout [co][kt][kh][kw][ci/g] of +-1 (or any int8).
TapsBlocked PackTapsBlocked(const ConvSpec& c, const int8_t* w);

// One output row (t, y): out_row[x][co] int32 (or out16_row[x][co] int16
// when out16_row is set: only where every sum fits int16).
void ConvRowTapsAvx2(const ConvSpec& c, const TapsBlocked& tb, const int16_t* padded, int t, int y,
                     int32_t* out_row, int16_t* out16_row);

// Second pointwise on int16 input (x: count x ci int16, values whose sums
// over ci fit int32): w as PackPointwiseInt16 gives it, [block][pair][8][2].
std::vector<int16_t> PackPointwiseInt16(int ci, int co, const int8_t* w);
void PointwiseInt16Avx2(int64_t count, int ci, const int16_t* x, int co, const int16_t* w,
                        int32_t* out);

// Second pointwise on int32 input: w as PackPointwiseSigns, [block][ci][8]
// int32 of +-1 (0 in padded lanes); wrapping 32-bit sums.
std::vector<int32_t> PackPointwiseSigns(int ci, int co, const int8_t* w);
void PointwiseInt32Avx2(int64_t count, int ci, const int32_t* x, int co, const int32_t* wsign,
                        int32_t* out);

// As ThresholdPackPortable.
void ThresholdPackAvx2(int64_t positions, int channels, const int32_t* x, const int32_t* lo,
                       const int32_t* hi, BitWord* out);

}  // namespace billnet

#endif  // BILLNET_ENGINE_KERNELS_FAST_FAST_KERNELS_AVX2_H_
