// Fast kernels for the integer stages (S3-S5): bit-packed {0,1} activations,
// +-1 weights as AND + popcount, adds and subtracts, small signed integers.
// Portable C++ written for the auto-vectorizer; on x86-64 with GCC each
// integer kernel is also compiled for x86-64-v2/v3/v4 and the loader picks
// the best clone for the CPU (ifunc). Every kernel is tested bit for bit
// against kernels/reference.h (tests/engine/fast_kernels_test.cc). This is
// the "portable" variant; fast_kernels_avx2.h has the "avx2" one of the
// convolutions and thresholds (isa.h chooses).
//
// Layouts: activations T x H x W x C, channel last; bits as in bitpack.h;
// integer convolution weights as int16 rows [co][kpad], the row being the
// reference order [kt][kh][kw][ci/g] followed by zeros up to kpad
// (a multiple of kConvRowAlign), so a row is one dot product.
#ifndef BILLNET_ENGINE_KERNELS_FAST_FAST_KERNELS_H_
#define BILLNET_ENGINE_KERNELS_FAST_FAST_KERNELS_H_

#include <cstdint>

#include "billnet/topology.h"
#include "kernels/fast/bitpack.h"

namespace billnet {

inline constexpr int kConvRowAlign = 16;
inline constexpr int ConvRowLength(int taps_times_cig) {
  return (taps_times_cig + kConvRowAlign - 1) / kConvRowAlign * kConvRowAlign;
}

// Shape of the zero-padded copy of a convolution's input:
// (t + 2 pt) x (h + 2 ph) x (w + 2 pw) x ci.
inline Shape4 PaddedInputShape(const ConvSpec& c) {
  return Shape4{c.in.t + 2 * c.pt, c.in.h + 2 * c.ph, c.in.w + 2 * c.pw, c.ci};
}

// The stem's input: rgb (T x H x W x 3 bytes) becomes v = 2x - 255 in the
// interior of `padded` (PaddedInputShape(stem)); the border is not written
// (the caller keeps it 0).
void StemInputInt16Portable(const ConvSpec& stem, const uint8_t* rgb, int16_t* padded);

// The stem's input as u8 (for ConvRowTapsU8Avx2): the pixels x themselves in
// the interior of `padded` (PaddedInputShape(stem), one byte per value); the
// border is not written (the caller keeps it 0).
void StemInputU8Portable(const ConvSpec& stem, const uint8_t* rgb, uint8_t* padded);

// One output row (t, y) of a grouped, strided convolution with +-1 weights on
// a zero-padded int16 input (the stem: [-255, 255]; a CF's grouped 3x3x3:
// [-ci, ci]). w: [co][kpad] int16 rows (see above). col: scratch of
// groups * kpad int16. out_row: out.w x co int32 sums.
void ConvRowInt16Portable(const ConvSpec& c, const int16_t* padded, int t, int y, const int16_t* w,
                          int kpad, int16_t* col, int32_t* out_row);

// First pointwise of a CF on bits: out[p][o] = sum_c w[o][c] a[p][c] with
// w = +-1, as 2 * popcount(a & wpos[o]) - popcount(a). a: count x words;
// wpos: co x words, bit set where w = +1 (padding bits 0). out: count rows
// of co int16 (in [-ci, ci]) at out + p * out_stride.
void PointwiseBinaryPortable(int64_t count, int words, const BitWord* a, int co,
                             const BitWord* wpos, int16_t* out, int64_t out_stride);

// Second pointwise of a CF: out[p][o] = sum_c w[o][c] x[p][c], w = +-1, x the
// grouped conv's int32 sums. wpos_mask: co x ci int32, -1 where w = +1, else
// 0; computed as 2 * sum(x & mask) - sum(x) in wrapping 32-bit arithmetic
// (exact whenever the true sum fits int32, as DESIGN.md 2.1's ranges do).
void PointwiseInt32Portable(int64_t count, int ci, const int32_t* x, int co,
                            const int32_t* wpos_mask, int32_t* out);

// One pooled row of MaxPool 1x2x2 (stride 2, floor): rows 2y and 2y+1 of
// width w_in x c int32 -> (w_in / 2) x c.
void MaxPoolRowInt32Portable(int w_in, int c, const int32_t* row0, const int32_t* row1,
                             int32_t* out);

// Norm + Heaviside as an interval test, packed: bit c = lo[c] <= x <= hi[c].
// S3 threshold t: polarity +1 -> [t, INT32_MAX], -1 -> [INT32_MIN, t], 0 ->
// everything (t != 0) or nothing (lo > hi); S4-S5: [1, INT32_MAX] (x > 0).
void ThresholdPackPortable(int64_t positions, int channels, const int32_t* x, const int32_t* lo,
                           const int32_t* hi, BitWord* out);

// counts[c] = number of positions (of `positions`) whose bit c is set. Used
// for GAP (bit counts) and TGAP (S = 2 * count > h * w).
void CountBitsPortable(int64_t positions, int channels, const BitWord* bits, int32_t* counts);

// select[c] = 2 * counts[c] > area, packed into WordsFor(channels) words.
void TgapSelectPortable(int channels, int area, const int32_t* counts, BitWord* select);

// MUX-OR on bits for one time step: out = S ? i1 : (x | i1), i.e.
// i1 | (x & ~S), S one position's words broadcast over `positions`. out may
// alias i1.
void MuxOrBitsPortable(int64_t positions, int words, const BitWord* x, const BitWord* i1,
                       const BitWord* select, BitWord* out);

// One QLSTM step (S5), as QlstmStepReference: z = W_ih x + area W_hh h with
// +-1 weights given as masks (-1 where w = -1, 0 where w = +1, so
// w * v = (v ^ m) - m); int32 is exact for every valid topology (|z| <
// 1.5 * 2^30). h, c: units values in {-1, 0, 1}. z: 4 * units scratch.
void QlstmStepPortable(int inputs, int units, int area, const int32_t* wih_neg,
                       const int32_t* whh_neg, const int32_t* x, int32_t* h, int32_t* c,
                       int32_t* z);

// S5 dense: out[o] = sum_j w[o][j] h[j], w in {-1, 0, 1}, h in {-1, 0, 1}.
void DenseTernaryPortable(int inputs, int outputs, const int8_t* w, const int32_t* h, int32_t* out);

// Float LSTM step (S3-S4), the reference's operations in the reference's
// order (so results are identical), without allocating: z is 4 * units
// scratch. Compiled without FMA contraction and without ISA clones.
void LstmStepFloatPortable(int inputs, int units, const float* w_ih, const float* w_hh,
                           const float* x, float* h, float* c, float* z);

}  // namespace billnet

#endif  // BILLNET_ENGINE_KERNELS_FAST_FAST_KERNELS_H_
