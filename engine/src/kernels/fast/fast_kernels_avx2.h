// AVX2 kernels of the fast integer path (FastIsa::kAvx2, isa.h), and the
// weight layouts they read (built once at load by the Pack* functions, which
// are portable C++). Call the kernels only where FastIsaSupported(kAvx2).
//
// The stem and grouped convolutions are small GEMMs written as outer
// products, vectorized over 8 output channels per 256-bit register, with
// several output positions per tile sharing each weight load, so there are no
// horizontal sums and no im2col copies: per step a tile broadcasts one 32-bit
// word of the input (a pair of int16 values, or a quad of u8) per position
// and multiplies it by the matching weights of 8 output channels (VPMADDWD,
// or VPMADDUBSW for u8), VPADDD into int32. The second pointwise is
// vectorized over positions instead (subset-sum tables, below).
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
inline constexpr int kAvx512Lanes = 16;     // int32 output channels per 512-bit register

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

// The same convolution as u8 x s8 products (VPMADDUBSW, int16 accumulation,
// one VPMADDWD by 1 per output at the end): for a layer whose input v is an
// affine image of a u8 value u, v = scale * u - shift inside the tensor and
// v = 0 (the zero padding) where u holds `border_u`:
//   stem:          u = pixel x, v = 2x - 255  (scale 2, shift 255, border_u 0);
//   grouped conv:  u = v + ci,  v in [-ci, ci] (scale 1, shift ci, border_u ci;
//                  only where 2 ci <= 255).
// Then sum_taps w v = scale * sum_taps w u - corr(position, o) with
//   corr = scale * border_u * (sum of w over the taps in the border)
//        + shift * (sum of w over the taps inside),
// which depends on the output position only through which taps fall in the
// border: one class per output coordinate and axis, corr tabulated per
// (t class, y class, x class, o). Exact when every int16 lane's partial sum
// fits: 2 * runs * quads * max_u <= 32767 (TapsU8Fits); VPMADDUBSW's own
// saturation needs 2 * 255 * 1 <= 32767, always true with +-1 weights.
// Layout as TapsBlocked with quads of 4 u8 instead of pairs of int16:
// w: [supergroup][block][run][quad][8 lanes][4] int8. A run whose length is
// not a multiple of 4 reads up to 3 u8 past its end (zero weights): inputs
// carry kAvx2InputSlack bytes past their end.
//
// The "p form" (PackTapsU8PForm) covers grouped convs whose input range
// [-ci, ci] does not fit u8 (ci >= 128): the first pointwise's output is
// v = 2 p - P with p = popcount(a & w+) in [0, pmax] (pmax: the most +1
// weights in one of its rows, <= 255 unless a row is all +1) and P =
// popcount(a) of the position. The kernel reads p (u8, border 0) and P (a
// padded int16 plane of one channel, border 0) and computes
//   sum_taps w v = 2 sum_taps w p - sum_taps P * ws,  ws[o][tap] = the sum
// of w[o][tap][.] over the group, the second sum by VPMADDWD on pairs of P
// (runs of kw values per (kt, kh); p_w: [supergroup][block][run][pair][8][2]
// int16 of -ws). When 2 * runs * quads * pmax passes 32767 the int16 lanes
// are widened into int32 every flush_runs runs.
//
// lanes: output channels per register of the layout: kAvx2Lanes (8) for
// ConvRowTapsU8Avx2, kAvx512Lanes (16) for ConvRowTapsU8Avx512
// (fast_kernels_avx512.h), whose int32 accumulation (VPDPBUSD) has no int16
// bound: a 16-lane layout has flush_runs == runs.
struct TapsU8 {
  int lanes = kAvx2Lanes;
  int merge = 1, supergroups = 0, span = 0, sg_out = 0, blocks = 0;
  int runs = 0, run_len = 0, quads = 0;
  int flush_runs = 0;  // runs per int16 accumulation round (== runs: one round)
  int64_t x_step = 0;
  std::vector<int32_t> run_off;
  std::vector<int8_t> w;
  int scale = 1;
  std::vector<uint8_t> cls_t, cls_y, cls_x;  // class of each output coordinate
  int ny = 1, nx = 1;                        // classes along y and x
  std::vector<int32_t> corr;                 // [ct][cy][cx][co], plus `lanes` slack
  // p form only: the P term (empty otherwise).
  int p_runs = 0, p_pairs = 0;
  int64_t p_x_step = 0;
  std::vector<int32_t> p_run_off;  // int16 offsets into the P plane
  std::vector<int16_t> p_w;
};

// Whether the int16 accumulation of a u8 taps conv is exact for inputs u in
// [0, max_u] (and max_u <= 255) in one round (the 8-lane layout).
bool TapsU8Fits(const ConvSpec& c, int max_u);
TapsU8 PackTapsU8(const ConvSpec& c, const int8_t* w, int scale, int shift, int border_u,
                  int lanes = kAvx2Lanes);
// The p form, for p in [0, pmax]; usable where TapsU8PFormFlushRuns > 0
// (the 8-lane layout's rounds; a 16-lane layout needs only pmax <= 255).
int TapsU8PFormFlushRuns(const ConvSpec& c, int pmax);
TapsU8 PackTapsU8PForm(const ConvSpec& c, const int8_t* w, int pmax, int lanes = kAvx2Lanes);
// Shape of the p form's P plane: PaddedInputShape with one channel.
inline Shape4 PPlaneShape(const ConvSpec& c) {
  return Shape4{c.in.t + 2 * c.pt, c.in.h + 2 * c.ph, c.in.w + 2 * c.pw, 1};
}

// One output row (t, y) from a padded u8 input (PaddedInputShape, u8 per
// value): as ConvRowTapsAvx2. pplane: the p form's P plane (PPlaneShape,
// kAvx2InputSlack int16 past its end), else null.
void ConvRowTapsU8Avx2(const ConvSpec& c, const TapsU8& tb, const uint8_t* padded,
                       const int16_t* pplane, int t, int y, int32_t* out_row, int16_t* out16_row);

// First pointwise of a CF on bits (as PointwiseBinaryPortable), 16 outputs
// per step: per 64-bit word of the position, AND with 4 outputs' weight words
// per register on pre-split nibbles (a & 0x0f.., a >> 4 & 0x0f..), VPSHUFB
// nibble-LUT byte counts summed over the words, VPSADBW to one count per
// output, VPACKSSDW to 16 int16 lanes. w: PackPointwiseBinaryAvx2's layout,
// [16-output group][word][lo, hi][4 registers][4 qwords], each group's
// outputs placed so the packed lanes come out in order (zero words for the
// padding outputs of the last group). out16 (int16 out[p * stride + o] =
// 2 popcount(a & w_o) - popcount(a)) or out8 (u8, that + offset: a u8
// grouped conv's input): exactly one is set. p_form: out8 gets the
// count p = popcount(a & w_o) itself, and pplane[p * pplane_stride] the
// position's popcount(a) (a u8 grouped conv's p form, TapsU8).
std::vector<BitWord> PackPointwiseBinaryAvx2(int ci, int co, const int8_t* w);
void PointwiseBinaryAvx2(int64_t count, int words, const BitWord* a, int co, const BitWord* w,
                         int16_t* out16, uint8_t* out8, int offset, int64_t out_stride,
                         bool p_form = false, int16_t* pplane = nullptr, int64_t pplane_stride = 1);

// Second pointwise by subset-sum tables (int32 or int16 input). With +-1
// weights, split the channels into groups of 4: for 8, 16 or 32 positions at a
// time, a table holds the 16 signed sums +-x_4g +-x_4g+1 +-x_4g+2 +-x_4g+3 of
// each group (one register of 8 positions per entry, built with 20 adds per
// group and shared by every output), and output o adds one entry per group,
// the one its weights' signs name: ci / 4 VPADDD per 8 positions instead of
// ci sign-and-adds. The kernels transpose the positions into a
// channel-major tile first and the results back to out[p * co + o].
// Wrapping 32-bit sums, as the references (exact mod 2^32).
struct PointwiseSubsets {
  int ci = 0, co = 0, groups = 0;  // groups = ceil(ci / 4); missing channels read 0
  std::vector<uint16_t> entry;     // [co][groups]: 16 g + pattern, bit j: w[o][4g + j] = +1
};
PointwiseSubsets PackPointwiseSubsets(int ci, int co, const int8_t* w);
// int32 scratch the kernels (and their AVX-512 forms) need for ci input
// channels (tile, tables, results).
int64_t PointwiseSubsetScratch(int ci);
// Where the parts of that scratch start for `groups` groups: the tile (4
// channels x 32 positions per group), the tables (16 entries x 32 positions
// per group) and the results (16 outputs x 32 positions), the tile 64-byte
// aligned.
struct SubsetScratchParts {
  int32_t* tile;
  int32_t* tables;
  int32_t* res;
};
SubsetScratchParts SubsetScratchAt(int32_t* scratch, int groups);
// x: count x ci (channel-last); out: count x co.
void PointwiseInt32SubsetAvx2(int64_t count, const int32_t* x, const PointwiseSubsets& s,
                              int32_t* scratch, int32_t* out);
void PointwiseInt16SubsetAvx2(int64_t count, const int16_t* x, const PointwiseSubsets& s,
                              int32_t* scratch, int32_t* out);

// As CountBitsPortable (TGAP and GAP counts): per 64-bit word, the bits of
// a position expanded to bytes (VPSHUFB of the word's bytes, VPAND with the
// bit of each byte, VPCMPEQB) and subtracted from u8 counters, which are
// flushed into counts every 255 positions.
void CountBitsAvx2(int64_t positions, int channels, const BitWord* bits, int32_t* counts);

// As ThresholdPackPortable.
void ThresholdPackAvx2(int64_t positions, int channels, const int32_t* x, const int32_t* lo,
                       const int32_t* hi, BitWord* out);

}  // namespace billnet

#endif  // BILLNET_ENGINE_KERNELS_FAST_FAST_KERNELS_AVX2_H_
