// The fast integer kernels (engine/src/kernels/fast/) against the scalar
// reference kernels, bit for bit, on seeded random shapes: odd channel
// counts, channel counts around multiples of 64, values at the extremes of
// each layer's range (DESIGN.md 2.1), every stride and padding the topology
// uses. Then whole models: a fast session's responses, state and every
// traced tensor equal the reference session's exactly (S3, S4, S5; tiny,
// odd and BILLNET 2x topologies; state carried across windows; RunBatch).
#include "kernels/fast/fast_kernels.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "billnet/session.h"
#include "fast_runner.h"
#include "kernels/fast/bitpack.h"
#include "kernels/fast/fast_kernels_avx2.h"
#include "kernels/fast/fast_kernels_avx512.h"
#include "kernels/fast/isa.h"
#include "kernels/reference.h"
#include "prepared.h"
#include "rng.h"
#include "test_util.h"

namespace billnet {
namespace {

std::string Describe(const ConvSpec& c) {
  return "conv in " + ShapeString(c.in) + " co " + std::to_string(c.co) + " groups " +
         std::to_string(c.groups) + " k " + std::to_string(c.kt) + "x" + std::to_string(c.kh) +
         "x" + std::to_string(c.kw) + " stride " + std::to_string(c.st) + "x" +
         std::to_string(c.sh) + "x" + std::to_string(c.sw) + " pad " + std::to_string(c.pt) + "x" +
         std::to_string(c.ph) + "x" + std::to_string(c.pw);
}

ConvSpec Spec(const Shape4& in, int co, int groups, std::array<int, 3> k, std::array<int, 3> s,
              std::array<int, 3> p) {
  ConvSpec c;
  c.name = "test";
  c.ci = in.c;
  c.co = co;
  c.groups = groups;
  c.kt = k[0], c.kh = k[1], c.kw = k[2];
  c.st = s[0], c.sh = s[1], c.sw = s[2];
  c.pt = p[0], c.ph = p[1], c.pw = p[2];
  c.in = in;
  c.out = Shape4{(in.t + 2 * c.pt - c.kt) / c.st + 1, (in.h + 2 * c.ph - c.kh) / c.sh + 1,
                 (in.w + 2 * c.pw - c.kw) / c.sw + 1, co};
  return c;
}

// +-1 weights in the reference layout [co][kt][kh][kw][ci/g].
std::vector<int8_t> RandomSigns(Rng& rng, int64_t n) {
  std::vector<int8_t> w(n);
  for (auto& v : w) v = rng.Below(2) ? 1 : -1;
  return w;
}

// Values in [-m, m], a quarter of them at the extremes.
int32_t Extremish(Rng& rng, int32_t m) {
  switch (rng.Below(8)) {
    case 0:
      return m;
    case 1:
      return -m;
    default:
      return int32_t(int64_t(rng.Below(2 * uint64_t(m) + 1)) - m);
  }
}

std::vector<BitWord> Pack(int64_t positions, int channels, const std::vector<uint8_t>& bytes) {
  std::vector<BitWord> w(positions * WordsFor(channels), ~BitWord(0));
  PackBitsPortable(positions, channels, bytes.data(), w.data());
  return w;
}

std::vector<uint8_t> RandomBits(Rng& rng, int64_t n, int density_percent) {
  std::vector<uint8_t> b(n);
  for (auto& v : b) v = rng.Below(100) < uint64_t(density_percent);
  return b;
}

// ------------------------------------------------------------ bit packing

TEST(BitPack, OneHotBitOrderAndZeroPadding) {
  for (int channels : {1, 5, 63, 64, 65, 127, 128, 130, 256}) {
    SCOPED_TRACE("channels " + std::to_string(channels));
    const int nw = WordsFor(channels);
    EXPECT_EQ(nw, (channels + 63) / 64);
    for (int c = 0; c < channels; ++c) {
      std::vector<uint8_t> bytes(channels, 0);
      bytes[c] = 1;
      const auto w = Pack(1, channels, bytes);
      for (int k = 0; k < nw; ++k)
        ASSERT_EQ(w[k], k == c / 64 ? BitWord(1) << (c % 64) : 0) << "channel " << c;
    }
    // All ones: padding bits stay 0.
    const auto w = Pack(1, channels, std::vector<uint8_t>(channels, 1));
    const int tail = channels % 64;
    EXPECT_EQ(w[nw - 1], tail ? (BitWord(1) << tail) - 1 : ~BitWord(0));
    // Round trip on random bits over several positions.
    Rng rng(channels);
    const auto bytes = RandomBits(rng, 7 * int64_t(channels), 50);
    std::vector<uint8_t> back(bytes.size(), 9);
    UnpackBitsPortable(7, channels, Pack(7, channels, bytes).data(), back.data());
    EXPECT_EQ(back, bytes);
  }
}

// ------------------------------------------------------------ convolutions

// Runs ConvRowInt16Portable over every output row of `c` on `in` (int32
// values that fit int16), with weights in the reference layout.
std::vector<int32_t> FastConv(const ConvSpec& c, const std::vector<int32_t>& in,
                              const std::vector<int8_t>& w) {
  const Shape4 ps = PaddedInputShape(c);
  std::vector<int16_t> padded(ps.elements(), 0);
  for (int t = 0; t < c.in.t; ++t)
    for (int y = 0; y < c.in.h; ++y)
      for (int x = 0; x < c.in.w; ++x)
        for (int k = 0; k < c.ci; ++k)
          padded[((int64_t(t + c.pt) * ps.h + y + c.ph) * ps.w + x + c.pw) * c.ci + k] =
              int16_t(in[((int64_t(t) * c.in.h + y) * c.in.w + x) * c.ci + k]);
  const int taps_cig = c.kt * c.kh * c.kw * (c.ci / c.groups);
  const int kpad = ConvRowLength(taps_cig);
  std::vector<int16_t> rows(int64_t(c.co) * kpad, 0);
  for (int o = 0; o < c.co; ++o)
    for (int j = 0; j < taps_cig; ++j) rows[int64_t(o) * kpad + j] = w[int64_t(o) * taps_cig + j];
  // Garbage in col must not matter (it meets zero weights past the taps).
  std::vector<int16_t> col(int64_t(c.groups) * kpad, int16_t(0x7abc));
  std::vector<int32_t> out(c.out.elements(), -12345);
  for (int t = 0; t < c.out.t; ++t)
    for (int y = 0; y < c.out.h; ++y)
      ConvRowInt16Portable(c, padded.data(), t, y, rows.data(), kpad, col.data(),
                           out.data() + (int64_t(t) * c.out.h + y) * c.out.w * c.co);
  return out;
}

// A padded stem input (c's padding around c.in, 3 channels) against the
// unpadded values `want`: border entries that are not 0, interior mismatches.
struct PaddedErrors {
  int64_t nonzero_border = 0, mismatches = 0;
};
template <typename P, typename W>
PaddedErrors CheckPaddedStemInput(const ConvSpec& c, const std::vector<P>& padded,
                                  const std::vector<W>& want) {
  const Shape4 ps = PaddedInputShape(c), &in = c.in;
  PaddedErrors e;
  for (int t = 0; t < ps.t; ++t)
    for (int y = 0; y < ps.h; ++y)
      for (int x = 0; x < ps.w; ++x)
        for (int k = 0; k < 3; ++k) {
          const int64_t got = padded[((int64_t(t) * ps.h + y) * ps.w + x) * 3 + k];
          const int it = t - c.pt, iy = y - c.ph, ix = x - c.pw;
          if (it < 0 || it >= in.t || iy < 0 || iy >= in.h || ix < 0 || ix >= in.w)
            e.nonzero_border += got != 0;
          else
            e.mismatches += got != int64_t(want[((int64_t(it) * in.h + iy) * in.w + ix) * 3 + k]);
        }
  return e;
}

TEST(FastKernels, StemConvMatchesReference) {
  // The stem geometry (3x5x5, stride 2, pad 1x2x2) on odd and even sizes,
  // inputs v = 2x - 255 including the extremes +-255 everywhere.
  Rng rng(101);
  for (int trial = 0; trial < 12; ++trial) {
    const Shape4 in{int(2 + rng.Below(5)), int(5 + rng.Below(12)), int(5 + rng.Below(12)), 3};
    const int co = 1 + int(rng.Below(40));
    const ConvSpec c = Spec(in, co, 1, {3, 5, 5}, {2, 2, 2}, {1, 2, 2});
    SCOPED_TRACE("seed 101 trial " + std::to_string(trial) + " " + Describe(c));
    std::vector<uint8_t> rgb(in.elements());
    for (auto& b : rgb) b = trial % 4 == 0 ? 255 : trial % 4 == 1 ? 0 : uint8_t(rng.Below(256));
    std::vector<int32_t> v(rgb.size());
    for (size_t i = 0; i < rgb.size(); ++i) v[i] = 2 * int32_t(rgb[i]) - 255;
    const auto w = trial % 4 < 2 ? std::vector<int8_t>(c.weight_count(), trial % 2 ? -1 : 1)
                                 : RandomSigns(rng, c.weight_count());
    std::vector<int32_t> want(c.out.elements());
    Conv3dReference(c, v.data(), w.data(), want.data());
    EXPECT_EQ(FastConv(c, v, w), want);
    // The stem's input conversion writes the same v into the padded interior.
    std::vector<int16_t> padded(PaddedInputShape(c).elements(), 0);
    StemInputInt16Portable(c, rgb.data(), padded.data());
    const PaddedErrors e = CheckPaddedStemInput(c, padded, v);
    EXPECT_EQ(e.nonzero_border, 0);
    EXPECT_EQ(e.mismatches, 0);
  }
}

TEST(FastKernels, GroupedConvMatchesReference) {
  // The CF's grouped 3x3x3 (stride 1, pad 1) and other strides/paddings,
  // groups 1..5 with odd per-group counts, inputs in [-ci, ci] of a CF with
  // up to ci = 512 (int16), extremes included.
  Rng rng(202);
  for (int trial = 0; trial < 40; ++trial) {
    const int groups = 1 + int(rng.Below(5));
    const int cig = 1 + int(rng.Below(trial < 30 ? 9 : 40));
    const Shape4 in{int(1 + rng.Below(4)), int(1 + rng.Below(7)), int(1 + rng.Below(9)),
                    groups * cig};
    const int co = groups * (1 + int(rng.Below(9)));
    const bool cf = trial % 3 != 2;
    const std::array<int, 3> s =
        cf ? std::array<int, 3>{1, 1, 1}
           : std::array<int, 3>{int(1 + rng.Below(2)), int(1 + rng.Below(2)),
                                int(1 + rng.Below(2))};
    const std::array<int, 3> p =
        cf ? std::array<int, 3>{1, 1, 1}
           : std::array<int, 3>{int(rng.Below(2)), int(rng.Below(3)), int(rng.Below(2))};
    const ConvSpec c = Spec(in, co, groups, {3, 3, 3}, s, p);
    // (Spec's division truncates: a kernel longer than the padded input is no conv.)
    if (c.in.t + 2 * c.pt < c.kt || c.in.h + 2 * c.ph < c.kh || c.in.w + 2 * c.pw < c.kw) continue;
    const int32_t range = int32_t(1 + rng.Below(512));
    SCOPED_TRACE("seed 202 trial " + std::to_string(trial) + " " + Describe(c) + " range " +
                 std::to_string(range));
    std::vector<int32_t> v(in.elements());
    for (auto& x : v) x = trial % 5 == 0 ? range : trial % 5 == 1 ? -range : Extremish(rng, range);
    const auto w = trial % 5 < 2 ? std::vector<int8_t>(c.weight_count(), 1)
                                 : RandomSigns(rng, c.weight_count());
    std::vector<int32_t> want(c.out.elements());
    Conv3dReference(c, v.data(), w.data(), want.data());
    EXPECT_EQ(FastConv(c, v, w), want);
  }
}

TEST(FastKernels, PointwiseBinaryMatchesReference) {
  Rng rng(303);
  for (int ci : {1, 3, 7, 32, 63, 64, 65, 100, 128, 129, 200, 256}) {
    for (int density : {0, 3, 50, 97, 100}) {
      const int co = 1 + int(rng.Below(70));
      const int64_t positions = 1 + int64_t(rng.Below(40));
      SCOPED_TRACE("seed 303 ci " + std::to_string(ci) + " co " + std::to_string(co) + " density " +
                   std::to_string(density));
      const ConvSpec c =
          Spec(Shape4{1, 1, int(positions), ci}, co, 1, {1, 1, 1}, {1, 1, 1}, {0, 0, 0});
      const auto bits = RandomBits(rng, positions * ci, density);
      const auto w = density == 100 ? std::vector<int8_t>(int64_t(co) * ci, -1)
                                    : RandomSigns(rng, int64_t(co) * ci);
      std::vector<int32_t> want(positions * co);
      Conv3dReference(c, bits.data(), w.data(), want.data());
      const int words = WordsFor(ci);
      std::vector<BitWord> wpos(int64_t(co) * words, 0);
      for (int o = 0; o < co; ++o)
        for (int i = 0; i < ci; ++i)
          if (w[int64_t(o) * ci + i] > 0)
            wpos[int64_t(o) * words + i / 64] |= BitWord(1) << (i % 64);
      // Rows written with a stride (the padded grouped-conv input).
      const int64_t stride = co + 3;
      std::vector<int16_t> out(positions * stride, 7);
      PointwiseBinaryPortable(positions, words, Pack(positions, ci, bits).data(), co, wpos.data(),
                              out.data(), stride);
      for (int64_t p = 0; p < positions; ++p) {
        for (int o = 0; o < co; ++o)
          ASSERT_EQ(out[p * stride + o], want[p * co + o]) << p << " " << o;
        for (int o = co; o < stride; ++o) ASSERT_EQ(out[p * stride + o], 7) << "wrote past a row";
      }
    }
  }
}

TEST(FastKernels, PointwiseInt32MatchesReferenceAtTheRangeLimits) {
  // Second pointwise: inputs up to +-221,184 (DESIGN 2.1), ci = cm up to 128.
  Rng rng(404);
  constexpr int32_t kMax = 221184;
  for (int ci : {1, 2, 3, 8, 15, 16, 33, 64, 127, 128}) {
    for (int trial = 0; trial < 4; ++trial) {
      const int co = 1 + int(rng.Below(60));
      const int64_t positions = 1 + int64_t(rng.Below(20));
      SCOPED_TRACE("seed 404 ci " + std::to_string(ci) + " co " + std::to_string(co) + " trial " +
                   std::to_string(trial));
      const ConvSpec c =
          Spec(Shape4{1, 1, int(positions), ci}, co, 1, {1, 1, 1}, {1, 1, 1}, {0, 0, 0});
      std::vector<int32_t> x(positions * ci);
      for (auto& v : x) v = trial == 0 ? kMax : trial == 1 ? -kMax : Extremish(rng, kMax);
      const auto w = RandomSigns(rng, int64_t(co) * ci);
      std::vector<int32_t> want(positions * co);
      Conv3dReference(c, x.data(), w.data(), want.data());
      std::vector<int32_t> mask(w.size());
      for (size_t i = 0; i < w.size(); ++i) mask[i] = w[i] > 0 ? -1 : 0;
      std::vector<int32_t> out(positions * co, 7);
      PointwiseInt32Portable(positions, ci, x.data(), co, mask.data(), out.data());
      EXPECT_EQ(out, want);
    }
  }
}

// ------------------------------------------------------------ AVX2 variant
// The same convolutions through the AVX2 kernels (skipped where the CPU or
// the build has no AVX2): group merging (fewer than 8 outputs per group),
// partial blocks of 8 outputs, odd run lengths (a pair's second weight 0,
// one int16 read past a run), widths that are not multiples of the 4- and
// 8-position tiles, int16 and int32 outputs.

// Runs ConvRowTapsAvx2 over every output row; out16: int16 outputs, widened.
std::vector<int32_t> Avx2Conv(const ConvSpec& c, const std::vector<int32_t>& in,
                              const std::vector<int8_t>& w, bool out16) {
  const Shape4 ps = PaddedInputShape(c);
  // The slack past the end holds garbage: it must meet zero weights only.
  std::vector<int16_t> padded(ps.elements() + kAvx2InputSlack, 0);
  for (int i = 0; i < kAvx2InputSlack; ++i) padded[ps.elements() + i] = int16_t(0x7abc);
  for (int t = 0; t < c.in.t; ++t)
    for (int y = 0; y < c.in.h; ++y)
      for (int x = 0; x < c.in.w; ++x)
        for (int k = 0; k < c.ci; ++k)
          padded[((int64_t(t + c.pt) * ps.h + y + c.ph) * ps.w + x + c.pw) * c.ci + k] =
              int16_t(in[((int64_t(t) * c.in.h + y) * c.in.w + x) * c.ci + k]);
  const TapsBlocked tb = PackTapsBlocked(c, w.data());
  std::vector<int32_t> out(c.out.elements(), -12345);
  std::vector<int16_t> out16_row(int64_t(c.out.w) * c.co, -1234);
  for (int t = 0; t < c.out.t; ++t)
    for (int y = 0; y < c.out.h; ++y) {
      int32_t* row = out.data() + (int64_t(t) * c.out.h + y) * c.out.w * c.co;
      ConvRowTapsAvx2(c, tb, padded.data(), t, y, out16 ? nullptr : row,
                      out16 ? out16_row.data() : nullptr);
      if (out16) std::copy(out16_row.begin(), out16_row.end(), row);
    }
  return out;
}

TEST(FastKernelsAvx2, TapsConvMatchesReference) {
  if (!FastIsaSupported(FastIsa::kAvx2)) GTEST_SKIP() << "no AVX2 here";
  Rng rng(808);
  for (int trial = 0; trial < 80; ++trial) {
    ConvSpec c;
    int32_t range;
    if (trial < 12) {  // the stem: 3 channels, 3x5x5, stride 2, run of 15 (odd)
      const Shape4 in{int(2 + rng.Below(5)), int(5 + rng.Below(12)), int(5 + rng.Below(20)), 3};
      c = Spec(in, 1 + int(rng.Below(40)), 1, {3, 5, 5}, {2, 2, 2}, {1, 2, 2});
      range = 255;
    } else {
      const int groups = 1 + int(rng.Below(8));
      const int cig = 1 + int(rng.Below(trial < 60 ? 9 : 40));
      const int cog = 1 + int(rng.Below(trial % 2 ? 12 : 40));
      const Shape4 in{int(1 + rng.Below(4)), int(1 + rng.Below(7)), int(1 + rng.Below(19)),
                      groups * cig};
      const bool cf = trial % 3 != 2;
      const std::array<int, 3> s =
          cf ? std::array<int, 3>{1, 1, 1}
             : std::array<int, 3>{int(1 + rng.Below(2)), int(1 + rng.Below(2)),
                                  int(1 + rng.Below(2))};
      const std::array<int, 3> p =
          cf ? std::array<int, 3>{1, 1, 1}
             : std::array<int, 3>{int(rng.Below(2)), int(rng.Below(3)), int(rng.Below(2))};
      c = Spec(in, groups * cog, groups, {3, 3, 3}, s, p);
      range = int32_t(1 + rng.Below(512));
    }
    // (Spec's division truncates: a kernel longer than the padded input is no conv.)
    if (c.in.t + 2 * c.pt < c.kt || c.in.h + 2 * c.ph < c.kh || c.in.w + 2 * c.pw < c.kw) continue;
    SCOPED_TRACE("seed 808 trial " + std::to_string(trial) + " " + Describe(c) + " range " +
                 std::to_string(range));
    std::vector<int32_t> v(c.in.elements());
    for (auto& x : v) x = trial % 5 == 0 ? range : trial % 5 == 1 ? -range : Extremish(rng, range);
    const auto w = trial % 5 < 2 ? std::vector<int8_t>(c.weight_count(), trial % 2 ? -1 : 1)
                                 : RandomSigns(rng, c.weight_count());
    std::vector<int32_t> want(c.out.elements());
    Conv3dReference(c, v.data(), w.data(), want.data());
    EXPECT_EQ(Avx2Conv(c, v, w, false), want);
    // int16 outputs where every sum fits (the runner's out16 rule).
    if (c.fan_in() * range <= INT16_MAX) {
      EXPECT_EQ(Avx2Conv(c, v, w, true), want) << "int16 out";
    }
  }
}

// The second pointwise's subset-sum tables (PointwiseInt32SubsetAvx2 and
// PointwiseInt16SubsetAvx2): partial groups of 4 channels, chunks of 8, 16
// and 32 positions with partial ones at a row's end, partial 8-output blocks.
// The second-pointwise table kernels this host can run (as U8Kernels; the
// AVX-512 ones hand calls of at most 8 positions to AVX2, so they need it).
struct PwTablesKernel {
  std::string name;
  void (*int32)(int64_t, const int32_t*, const PointwiseSubsets&, int32_t*, int32_t*);
  void (*int16)(int64_t, const int16_t*, const PointwiseSubsets&, int32_t*, int32_t*);
};
std::vector<PwTablesKernel> PwTablesKernels() {
  std::vector<PwTablesKernel> k;
  if (!FastIsaSupported(FastIsa::kAvx2)) return k;
  k.push_back({"avx2", &PointwiseInt32SubsetAvx2, &PointwiseInt16SubsetAvx2});
  if (FastIsaSupported(FastIsa::kAvx512))
    k.push_back({"avx512", &PointwiseInt32SubsetAvx512, &PointwiseInt16SubsetAvx512});
#if defined(BILLNET_HAVE_AVX512_EMULATED)
  k.push_back({"avx512 on SIMDe", &avx512_emulated::PointwiseInt32SubsetAvx512,
               &avx512_emulated::PointwiseInt16SubsetAvx512});
#endif
  return k;
}

TEST(FastKernelsPointwiseTables, MatchReferenceOnInt16AndInt32) {
  const auto kernels = PwTablesKernels();
  if (kernels.empty()) GTEST_SKIP() << "no AVX2 here";
  for (const PwTablesKernel& k : kernels) {
    SCOPED_TRACE(k.name);
    Rng rng(909);
    for (int ci : {1, 2, 3, 8, 15, 16, 33, 64, 127, 128, 256}) {
      for (int trial = 0; trial < 6; ++trial) {
        const int co = 1 + int(rng.Below(trial < 3 ? 20 : 70));
        // Trial 5: a longer run of positions.
        const int64_t positions =
            trial == 5 ? 60 + int64_t(rng.Below(150)) : 1 + int64_t(rng.Below(trial % 2 ? 13 : 40));
        SCOPED_TRACE("seed 909 ci " + std::to_string(ci) + " co " + std::to_string(co) +
                     " positions " + std::to_string(positions) + " trial " + std::to_string(trial));
        const ConvSpec c =
            Spec(Shape4{1, 1, int(positions), ci}, co, 1, {1, 1, 1}, {1, 1, 1}, {0, 0, 0});
        // Trials 0 and 2: every weight -1 or +1 (every group's first or last table entry).
        const auto w = trial == 0   ? std::vector<int8_t>(int64_t(co) * ci, -1)
                       : trial == 2 ? std::vector<int8_t>(int64_t(co) * ci, 1)
                                    : RandomSigns(rng, int64_t(co) * ci);
        const auto sets = PackPointwiseSubsets(ci, co, w.data());
        std::vector<int32_t> scratch(PointwiseSubsetScratch(ci), -5);
        // int32 input: up to +-221,184 (DESIGN 2.1).
        constexpr int32_t kMax = 221184;
        std::vector<int32_t> x(positions * ci);
        for (auto& v : x) v = trial == 0 ? kMax : trial == 1 ? -kMax : Extremish(rng, kMax);
        std::vector<int32_t> want(positions * co);
        Conv3dReference(c, x.data(), w.data(), want.data());
        std::vector<int32_t> out(positions * co, 7);
        k.int32(positions, x.data(), sets, scratch.data(), out.data());
        EXPECT_EQ(out, want) << "int32 input, tables";
        // int16 input: the full int16 range, garbage in the slack.
        std::vector<int16_t> x16(positions * ci + kAvx2InputSlack, int16_t(-0x7abc));
        for (int64_t i = 0; i < positions * ci; ++i)
          x16[i] = int16_t(trial == 0   ? INT16_MAX
                           : trial == 1 ? INT16_MIN
                                        : Extremish(rng, INT16_MAX));
        std::vector<int32_t> x32(x16.begin(), x16.begin() + positions * ci);
        Conv3dReference(c, x32.data(), w.data(), want.data());
        std::fill(out.begin(), out.end(), 7);
        k.int16(positions, x16.data(), sets, scratch.data(), out.data());
        EXPECT_EQ(out, want) << "int16 input, tables";
      }
    }
  }
}

TEST(FastKernels, IsaEnvironmentForcesAVariant) {
  struct Env {
    explicit Env(const char* v) {
      if (const char* o = std::getenv("BILLNET_FAST_ISA")) old = o, had = true;
      if (v)
        setenv("BILLNET_FAST_ISA", v, 1);
      else
        unsetenv("BILLNET_FAST_ISA");
    }
    ~Env() {
      if (had)
        setenv("BILLNET_FAST_ISA", old.c_str(), 1);
      else
        unsetenv("BILLNET_FAST_ISA");
    }
    std::string old;
    bool had = false;
  };
  const auto isas = SupportedFastIsas();
  ASSERT_FALSE(isas.empty());
  EXPECT_EQ(isas[0], FastIsa::kPortable);
  EXPECT_EQ(isas.back(), BestFastIsa());
  {
    Env e(nullptr);
    EXPECT_EQ(FastIsaFromEnvironment(), BestFastIsa());
  }
  {
    Env e("portable");
    EXPECT_EQ(FastIsaFromEnvironment(), FastIsa::kPortable);
    EXPECT_STREQ(KernelVariant(), "fast/portable");  // the metric label follows
  }
  for (FastIsa forced : {FastIsa::kAvx2, FastIsa::kAvx512}) {
    Env e(FastIsaName(forced));
    // The forced variant where supported, else the best one.
    const FastIsa want = FastIsaSupported(forced) ? forced : BestFastIsa();
    EXPECT_EQ(FastIsaFromEnvironment(), want) << FastIsaName(forced);
    EXPECT_EQ(std::string(KernelVariant()), std::string("fast/") + FastIsaName(want));
  }
  {
    Env e("bogus");
    EXPECT_EQ(FastIsaFromEnvironment(), BestFastIsa());
  }
  EXPECT_STREQ(FastIsaName(FastIsa::kPortable), "portable");
  EXPECT_STREQ(FastIsaName(FastIsa::kAvx2), "avx2");
  EXPECT_STREQ(FastIsaName(FastIsa::kAvx512), "avx512");
  // avx512 implies avx2 (its variant runs the AVX2 kernels for the rest).
  if (FastIsaSupported(FastIsa::kAvx512)) {
    EXPECT_TRUE(FastIsaSupported(FastIsa::kAvx2));
  }
}

// ------------------------------------------------------------ pooling, norms

TEST(FastKernels, MaxPoolRowsMatchReferenceOnOddSizes) {
  Rng rng(505);
  for (int trial = 0; trial < 20; ++trial) {
    const Shape4 s{int(1 + rng.Below(3)), int(2 + rng.Below(6)), int(2 + rng.Below(7)),
                   int(1 + rng.Below(70))};
    SCOPED_TRACE("seed 505 trial " + std::to_string(trial) + " shape " + ShapeString(s));
    std::vector<int32_t> x(s.elements());
    for (auto& v : x) {
      const uint64_t r = rng.Below(10);
      v = r == 0 ? INT32_MIN : r == 1 ? INT32_MAX : int32_t(rng.Below(2001)) - 1000;
    }
    const Shape4 o{s.t, s.h / 2, s.w / 2, s.c};
    std::vector<int32_t> want(o.elements());
    MaxPool1x2x2Reference(s, x.data(), want.data());
    std::vector<int32_t> got(o.elements(), 7);
    const int64_t row = int64_t(s.w) * s.c;
    for (int t = 0; t < s.t; ++t)
      for (int y = 0; y < o.h; ++y)
        MaxPoolRowInt32Portable(s.w, s.c, x.data() + (int64_t(t) * s.h + 2 * y) * row,
                                x.data() + (int64_t(t) * s.h + 2 * y + 1) * row,
                                got.data() + (int64_t(t) * o.h + y) * o.w * s.c);
    EXPECT_EQ(got, want);
  }
}

TEST(FastKernels, ThresholdsMatchReference) {
  Rng rng(606);
  for (int channels : {1, 5, 31, 63, 64, 65, 128, 130, 256}) {
    for (Stage stage : {Stage::kS3, Stage::kS4, Stage::kS5}) {
      SCOPED_TRACE("seed 606 channels " + std::to_string(channels) + " " + StageName(stage));
      const int64_t positions = 1 + int64_t(rng.Below(30));
      NormParams p;
      for (int c = 0; c < channels; ++c) {
        const int8_t pol = int8_t(int(rng.Below(3)) - 1);
        p.polarity.push_back(pol);
        const uint64_t r = rng.Below(8);
        p.threshold.push_back(pol == 0 ? int32_t(rng.Below(3))  // 0, or a non-zero constant
                              : r == 0 ? INT32_MIN
                              : r == 1 ? INT32_MAX
                                       : int32_t(rng.Below(41)) - 20);
      }
      std::vector<int32_t> x(positions * channels);
      for (auto& v : x) {
        const uint64_t r = rng.Below(10);
        v = r == 0 ? INT32_MIN : r == 1 ? INT32_MAX : int32_t(rng.Below(41)) - 20;
      }
      std::vector<uint8_t> want(x.size());
      if (stage == Stage::kS3)
        NormThresholdReference(positions, channels, x.data(), p.threshold.data(), p.polarity.data(),
                               want.data());
      else
        HeavisideReference(int64_t(x.size()), x.data(), want.data());
      const FastNorm n = MakeFastNorm(channels, p, stage);
      std::vector<BitWord> bits(positions * WordsFor(channels), ~BitWord(0));
      ThresholdPackPortable(positions, channels, x.data(), n.lo.data(), n.hi.data(), bits.data());
      EXPECT_EQ(bits, Pack(positions, channels, want)) << "(padding bits must be 0 too)";
      if (FastIsaSupported(FastIsa::kAvx2)) {
        std::vector<BitWord> b2(bits.size(), ~BitWord(0));
        ThresholdPackAvx2(positions, channels, x.data(), n.lo.data(), n.hi.data(), b2.data());
        EXPECT_EQ(b2, bits) << "avx2";
      }
    }
  }
}

// ------------------------------------------------------------ GAP, TGAP, MUX-OR

TEST(FastKernels, GapTgapAndMuxOrMatchReference) {
  Rng rng(707);
  for (int channels : {1, 7, 63, 64, 65, 128, 200, 256}) {
    for (auto [h, w] : {std::pair{1, 1}, {1, 3}, {2, 4}, {3, 3}, {6, 8}, {5, 7}}) {
      const Shape4 s{int(1 + rng.Below(3)), h, w, channels};
      const int area = h * w;
      SCOPED_TRACE("seed 707 shape " + ShapeString(s));
      // Per (t, c) densities around one half, so counts hit area / 2 exactly.
      std::vector<uint8_t> x(s.elements()), i1(s.elements());
      for (int t = 0; t < s.t; ++t)
        for (int c = 0; c < channels; ++c) {
          const int ones = std::clamp(area / 2 + int(rng.Below(3)) - 1, 0, area);
          for (int p = 0; p < area; ++p) {
            x[(int64_t(t) * area + p) * channels + c] = p < ones;
            i1[(int64_t(t) * area + p) * channels + c] = uint8_t(rng.Below(2));
          }
        }
      const int words = WordsFor(channels);
      const auto xb = Pack(s.positions(), channels, x), ib = Pack(s.positions(), channels, i1);
      std::vector<int32_t> gap_want(int64_t(s.t) * channels), gap(gap_want.size(), 7);
      GapBitsReference(s, x.data(), gap_want.data());
      std::vector<uint8_t> sel_want(int64_t(s.t) * channels), mux_want(s.elements());
      TgapBitsReference(s, x.data(), sel_want.data());
      MuxOrBitsReference(s, x.data(), i1.data(), sel_want.data(), mux_want.data());
      std::vector<BitWord> mux(ib);  // in place, as the runner does
      std::vector<uint8_t> sel(sel_want.size());
      std::vector<BitWord> sw(words + 1, ~BitWord(0));
      for (int t = 0; t < s.t; ++t) {
        const int64_t off = int64_t(t) * area * words;
        CountBitsPortable(area, channels, xb.data() + off, gap.data() + int64_t(t) * channels);
        TgapSelectPortable(channels, area, gap.data() + int64_t(t) * channels, sw.data());
        for (int c = 0; c < channels; ++c)
          sel[int64_t(t) * channels + c] = (sw[c / 64] >> (c % 64)) & 1;
        MuxOrBitsPortable(area, words, xb.data() + off, mux.data() + off, sw.data(),
                          mux.data() + off);
      }
      EXPECT_EQ(gap, gap_want);
      EXPECT_EQ(sel, sel_want);
      EXPECT_EQ(mux, Pack(s.positions(), channels, mux_want));
    }
  }
}

// ------------------------------------------------------------ LSTM, dense

TEST(FastKernels, QlstmAndDenseMatchReferenceOverSteps) {
  Rng rng(808);
  for (auto [inputs, units, area] :
       {std::array{1, 1, 1}, {5, 3, 3}, {64, 16, 4}, {256, 128, 48}, {80, 9, 17}, {300, 33, 48}}) {
    SCOPED_TRACE("seed 808 inputs " + std::to_string(inputs) + " units " + std::to_string(units) +
                 " area " + std::to_string(area));
    const auto wih = RandomSigns(rng, 4 * int64_t(units) * inputs);
    const auto whh = RandomSigns(rng, 4 * int64_t(units) * units);
    std::vector<int32_t> mih(wih.size()), mhh(whh.size());
    for (size_t i = 0; i < wih.size(); ++i) mih[i] = wih[i] < 0 ? -1 : 0;
    for (size_t i = 0; i < whh.size(); ++i) mhh[i] = whh[i] < 0 ? -1 : 0;
    std::vector<int8_t> dense(5 * int64_t(units));
    for (auto& v : dense) v = int8_t(int(rng.Below(3)) - 1);
    std::vector<int8_t> h8(units), c8(units);
    for (int k = 0; k < units; ++k)
      h8[k] = int8_t(int(rng.Below(3)) - 1), c8[k] = int8_t(int(rng.Below(3)) - 1);
    std::vector<int32_t> h32(h8.begin(), h8.end()), c32(c8.begin(), c8.end()), z(4 * units);
    for (int step = 0; step < 6; ++step) {
      std::vector<int32_t> x(inputs);
      for (auto& v : x) v = step == 0 ? area : step == 1 ? 0 : int32_t(rng.Below(area + 1));
      QlstmStepReference(inputs, units, area, wih.data(), whh.data(), x.data(), h8.data(),
                         c8.data());
      QlstmStepPortable(inputs, units, area, mih.data(), mhh.data(), x.data(), h32.data(),
                        c32.data(), z.data());
      ASSERT_EQ(h32, std::vector<int32_t>(h8.begin(), h8.end())) << "step " << step;
      ASSERT_EQ(c32, std::vector<int32_t>(c8.begin(), c8.end())) << "step " << step;
      std::vector<int32_t> want(5), got(5, 7);
      DenseIntReference(units, 5, dense.data(), h8.data(), want.data());
      DenseTernaryPortable(units, 5, dense.data(), h32.data(), got.data());
      ASSERT_EQ(got, want) << "step " << step;
    }
  }
}

TEST(FastKernels, FloatLstmStepIsTheReferenceBitForBit) {
  Rng rng(909);
  for (auto [inputs, units] : {std::pair{1, 1}, {7, 5}, {256, 128}, {80, 9}}) {
    SCOPED_TRACE("seed 909 inputs " + std::to_string(inputs) + " units " + std::to_string(units));
    std::vector<float> wih(4 * int64_t(units) * inputs), whh(4 * int64_t(units) * units);
    for (auto& v : wih) v = float(rng.Normal() * 0.2);
    for (auto& v : whh) v = float(rng.Normal() * 0.2);
    std::vector<float> h(units, 0.f), c(units, 0.f), h2 = h, c2 = c, z(4 * units);
    for (int step = 0; step < 5; ++step) {
      std::vector<float> x(inputs);
      for (auto& v : x) v = float(rng.Below(49)) / 48.f;
      LstmStepFloatReference(inputs, units, wih.data(), whh.data(), x.data(), h.data(), c.data());
      LstmStepFloatPortable(inputs, units, wih.data(), whh.data(), x.data(), h2.data(), c2.data(),
                            z.data());
      ASSERT_EQ(h2, h) << "step " << step;
      ASSERT_EQ(c2, c) << "step " << step;
    }
  }
}

// ------------------------------------------------------------ whole models

// A random grouped 3x3x3 conv: 1..max_groups groups of 1..max_cig input
// channels, 1-12 or 1-40 outputs each (odd / even trials), input up to 4 x
// max_h x max_w; the CF's stride 1 and pad 1 on two trials of three, other
// strides and paddings on the third. nullopt where the padded input is
// smaller than the kernel.
std::optional<ConvSpec> RandomGroupedConv(Rng& rng, int trial, int max_groups, int max_cig,
                                          int max_h, int max_w) {
  const int groups = 1 + int(rng.Below(max_groups));
  const int cig = 1 + int(rng.Below(max_cig));
  const int cog = 1 + int(rng.Below(trial % 2 ? 12 : 40));
  const Shape4 in{int(1 + rng.Below(4)), int(1 + rng.Below(max_h)), int(1 + rng.Below(max_w)),
                  groups * cig};
  const bool cf = trial % 3 != 2;
  const std::array<int, 3> s =
      cf ? std::array<int, 3>{1, 1, 1}
         : std::array<int, 3>{int(1 + rng.Below(2)), int(1 + rng.Below(2)), int(1 + rng.Below(2))};
  const std::array<int, 3> p =
      cf ? std::array<int, 3>{1, 1, 1}
         : std::array<int, 3>{int(rng.Below(2)), int(rng.Below(3)), int(rng.Below(2))};
  const ConvSpec c = Spec(in, groups * cog, groups, {3, 3, 3}, s, p);
  if (c.in.t + 2 * c.pt < c.kt || c.in.h + 2 * c.ph < c.kh || c.in.w + 2 * c.pw < c.kw)
    return std::nullopt;
  return c;
}

// The u8 taps kernels this host can run: AVX2 and AVX-512 where the CPU has
// them, and the AVX-512 kernel compiled on SIMDe everywhere (when built).
using U8RowFn = void (*)(const ConvSpec&, const TapsU8&, const uint8_t*, const int16_t*, int, int,
                         int32_t*, int16_t*);
struct U8Kernel {
  std::string name;
  int lanes;
  U8RowFn row;
};
std::vector<U8Kernel> U8Kernels() {
  std::vector<U8Kernel> k;
  if (FastIsaSupported(FastIsa::kAvx2)) k.push_back({"avx2", kAvx2Lanes, &ConvRowTapsU8Avx2});
  if (FastIsaSupported(FastIsa::kAvx512))
    k.push_back({"avx512", kAvx512Lanes, &ConvRowTapsU8Avx512});
#if defined(BILLNET_HAVE_AVX512_EMULATED)
  k.push_back({"avx512 on SIMDe", kAvx512Lanes, &avx512_emulated::ConvRowTapsU8Avx512});
#endif
  return k;
}

// Runs kernel k over every output row of a u8 input `u` (the layer's values
// are v = scale * u - shift inside, 0 in the padding, where u holds
// border_u); out16: int16 outputs, widened.
std::vector<int32_t> U8Conv(const U8Kernel& k, const ConvSpec& c, const std::vector<uint8_t>& u,
                            const std::vector<int8_t>& w, int scale, int shift, int border_u,
                            bool out16) {
  const Shape4 ps = PaddedInputShape(c);
  // The slack past the end holds garbage: it must meet zero weights only.
  std::vector<uint8_t> padded(ps.elements() + kAvx2InputSlack, uint8_t(border_u));
  for (int i = 0; i < kAvx2InputSlack; ++i) padded[ps.elements() + i] = uint8_t(0xa5 + i);
  for (int t = 0; t < c.in.t; ++t)
    for (int y = 0; y < c.in.h; ++y)
      for (int x = 0; x < c.in.w; ++x)
        for (int ch = 0; ch < c.ci; ++ch)
          padded[((int64_t(t + c.pt) * ps.h + y + c.ph) * ps.w + x + c.pw) * c.ci + ch] =
              u[((int64_t(t) * c.in.h + y) * c.in.w + x) * c.ci + ch];
  const TapsU8 tb = PackTapsU8(c, w.data(), scale, shift, border_u, k.lanes);
  std::vector<int32_t> out(c.out.elements(), -12345);
  std::vector<int16_t> out16_row(int64_t(c.out.w) * c.co, -1234);
  for (int t = 0; t < c.out.t; ++t)
    for (int y = 0; y < c.out.h; ++y) {
      int32_t* row = out.data() + (int64_t(t) * c.out.h + y) * c.out.w * c.co;
      k.row(c, tb, padded.data(), nullptr, t, y, out16 ? nullptr : row,
            out16 ? out16_row.data() : nullptr);
      if (out16) std::copy(out16_row.begin(), out16_row.end(), row);
    }
  return out;
}

TEST(FastKernelsU8Taps, StemConvMatchesReference) {
  // The stem as u8 pixels x s8 weights, v = 2x - 255, the zero padding
  // corrected per border class: odd and even sizes, every border class,
  // all-0, all-255 and random pixels, constant and random weights; each u8
  // kernel (AVX2, AVX-512 VNNI natively and on SIMDe).
  const auto kernels = U8Kernels();
  if (kernels.empty()) GTEST_SKIP() << "no u8 taps kernel here";
  for (const U8Kernel& k : kernels) {
    SCOPED_TRACE(k.name);
    Rng rng(909);
    for (int trial = 0; trial < 24; ++trial) {
      const Shape4 in{int(1 + rng.Below(6)), int(1 + rng.Below(14)), int(1 + rng.Below(22)), 3};
      const ConvSpec c = Spec(in, 1 + int(rng.Below(40)), 1, {3, 5, 5}, {2, 2, 2}, {1, 2, 2});
      if (c.in.t + 2 * c.pt < c.kt || c.in.h + 2 * c.ph < c.kh || c.in.w + 2 * c.pw < c.kw)
        continue;
      SCOPED_TRACE("seed 909 trial " + std::to_string(trial) + " " + Describe(c));
      ASSERT_TRUE(TapsU8Fits(c, 255));
      std::vector<uint8_t> rgb(in.elements());
      for (auto& b : rgb) b = trial % 4 == 0 ? 255 : trial % 4 == 1 ? 0 : uint8_t(rng.Below(256));
      std::vector<int32_t> v(rgb.size());
      for (size_t i = 0; i < rgb.size(); ++i) v[i] = 2 * int32_t(rgb[i]) - 255;
      const auto w = trial % 4 < 2 ? std::vector<int8_t>(c.weight_count(), trial % 8 < 4 ? -1 : 1)
                                   : RandomSigns(rng, c.weight_count());
      std::vector<int32_t> want(c.out.elements());
      Conv3dReference(c, v.data(), w.data(), want.data());
      EXPECT_EQ(U8Conv(k, c, rgb, w, 2, 255, 0, false), want);
      // The u8 stem input: the pixels in the interior, the border untouched.
      std::vector<uint8_t> padded(PaddedInputShape(c).elements(), 0);
      StemInputU8Portable(c, rgb.data(), padded.data());
      const PaddedErrors e = CheckPaddedStemInput(c, padded, rgb);
      EXPECT_EQ(e.nonzero_border, 0);
      EXPECT_EQ(e.mismatches, 0);
    }
  }
}

TEST(FastKernelsU8Taps, GroupedConvMatchesReference) {
  // Grouped convs on u = v + m, v in [-m, m], 2m <= 255 (a CF whose first
  // pointwise has ci = m <= 127), the padding holding u = m: groups 1..8
  // (merged into super-groups below 8 or 16 outputs), odd channel counts, the
  // CF's stride 1 / pad 1 and other strides and paddings, the extremes +-m.
  const auto kernels = U8Kernels();
  if (kernels.empty()) GTEST_SKIP() << "no u8 taps kernel here";
  for (const U8Kernel& k : kernels) {
    SCOPED_TRACE(k.name);
    Rng rng(1010);
    int run = 0;
    for (int trial = 0; trial < 120; ++trial) {
      const auto spec = RandomGroupedConv(rng, trial, 8, trial < 80 ? 9 : 20, 7, 19);
      if (!spec) continue;
      const ConvSpec& c = *spec;
      const int32_t m = trial % 4 == 0 ? 127 : trial % 4 == 1 ? 64 : int32_t(1 + rng.Below(127));
      // AVX2's int16 lanes bound the shapes (the runner keeps int16 there);
      // VNNI's int32 lanes do not.
      if (k.lanes == kAvx2Lanes && !TapsU8Fits(c, 2 * m)) continue;
      ++run;
      SCOPED_TRACE("seed 1010 trial " + std::to_string(trial) + " " + Describe(c) + " range " +
                   std::to_string(m));
      std::vector<int32_t> v(c.in.elements());
      for (auto& x : v) x = trial % 5 == 0 ? m : trial % 5 == 1 ? -m : Extremish(rng, m);
      std::vector<uint8_t> u(v.size());
      for (size_t i = 0; i < v.size(); ++i) u[i] = uint8_t(v[i] + m);
      const auto w = trial % 5 < 2 ? std::vector<int8_t>(c.weight_count(), trial % 2 ? -1 : 1)
                                   : RandomSigns(rng, c.weight_count());
      std::vector<int32_t> want(c.out.elements());
      Conv3dReference(c, v.data(), w.data(), want.data());
      EXPECT_EQ(U8Conv(k, c, u, w, 1, m, m, false), want);
      if (c.fan_in() * m <= INT16_MAX) {
        EXPECT_EQ(U8Conv(k, c, u, w, 1, m, m, true), want) << "int16 out";
      }
    }
    EXPECT_GT(run, 60);
  }
}

TEST(FastKernelsU8Taps, PFormGroupedConvMatchesReference) {
  // The p form: v = 2p - P with p in [0, pmax] (u8, pmax up to 255) and P a
  // per-position value (any int16 here: the identity does not need P to be
  // a popcount), 0 in the padding. Groups and per-group channel counts up to
  // the 10-bit layers of BILLNET 2x (4 groups of 32), so AVX2's int16 lanes
  // are widened every flush_runs runs; other strides and paddings; the
  // extremes. Each u8 kernel.
  const auto kernels = U8Kernels();
  if (kernels.empty()) GTEST_SKIP() << "no u8 taps kernel here";
  for (const U8Kernel& k : kernels) {
    SCOPED_TRACE(k.name);
    const bool avx2 = k.lanes == kAvx2Lanes;
    Rng rng(1414);
    int run = 0, flushed = 0;
    for (int trial = 0; trial < 90; ++trial) {
      const auto spec = RandomGroupedConv(rng, trial, 5, trial < 40 ? 12 : 40, 6, 13);
      if (!spec) continue;
      const ConvSpec& c = *spec;
      const int pmax = trial % 4 == 0 ? 255 : trial % 4 == 1 ? 128 : int(1 + rng.Below(255));
      const int flush = TapsU8PFormFlushRuns(c, pmax);
      if (avx2 && flush == 0) continue;
      ++run;
      SCOPED_TRACE("seed 1414 trial " + std::to_string(trial) + " " + Describe(c) + " pmax " +
                   std::to_string(pmax) + " flush " + std::to_string(flush));
      std::vector<uint8_t> pv(c.in.elements());
      std::vector<int16_t> P(c.in.positions());
      for (auto& x : pv)
        x = uint8_t(trial % 5 == 0   ? pmax
                    : trial % 5 == 1 ? 0
                                     : Extremish(rng, pmax / 2) + pmax / 2);
      for (auto& x : P)
        x = int16_t(trial % 5 == 0 ? 0 : trial % 5 == 1 ? 512 : int(rng.Below(513)));
      std::vector<int32_t> v(c.in.elements());
      for (int64_t i = 0; i < c.in.elements(); ++i) v[i] = 2 * int32_t(pv[i]) - P[i / c.ci];
      const auto w = trial % 5 < 2 ? std::vector<int8_t>(c.weight_count(), trial % 2 ? -1 : 1)
                                   : RandomSigns(rng, c.weight_count());
      std::vector<int32_t> want(c.out.elements());
      Conv3dReference(c, v.data(), w.data(), want.data());
      // Padded p (u8) and P (int16) with 0 borders, garbage in the slack.
      const Shape4 ps = PaddedInputShape(c), pp = PPlaneShape(c);
      std::vector<uint8_t> padded(ps.elements() + kAvx2InputSlack, 0);
      std::vector<int16_t> pplane(pp.elements() + kAvx2InputSlack, 0);
      for (int i = 0; i < kAvx2InputSlack; ++i) {
        padded[ps.elements() + i] = uint8_t(0xa5 + i);
        pplane[pp.elements() + i] = int16_t(0x3abc);
      }
      for (int t = 0; t < c.in.t; ++t)
        for (int y = 0; y < c.in.h; ++y)
          for (int x = 0; x < c.in.w; ++x) {
            const int64_t src = (int64_t(t) * c.in.h + y) * c.in.w + x;
            const int64_t dst = (int64_t(t + c.pt) * ps.h + y + c.ph) * ps.w + x + c.pw;
            pplane[dst] = P[src];
            for (int k = 0; k < c.ci; ++k) padded[dst * c.ci + k] = pv[src * c.ci + k];
          }
      const TapsU8 tw = PackTapsU8PForm(c, w.data(), pmax, k.lanes);
      ASSERT_EQ(tw.flush_runs, avx2 ? flush : tw.runs);  // VNNI: one int32 round
      flushed += flush < tw.runs;
      std::vector<int32_t> got(c.out.elements(), -12345);
      for (int t = 0; t < c.out.t; ++t)
        for (int y = 0; y < c.out.h; ++y)
          k.row(c, tw, padded.data(), pplane.data(), t, y,
                got.data() + (int64_t(t) * c.out.h + y) * c.out.w * c.co, nullptr);
      EXPECT_EQ(got, want);
    }
    EXPECT_GT(run, 50);
    if (avx2) {
      EXPECT_GT(flushed, 5);
    }
  }
}

// The first-pointwise kernels this host can run (as U8Kernels).
using PwBinaryPack = std::vector<BitWord> (*)(int, int, const int8_t*);
using PwBinaryRun = void (*)(int64_t, int, const BitWord*, int, const BitWord*, int16_t*, uint8_t*,
                             int, int64_t, bool, int16_t*, int64_t);
struct PwBinaryKernel {
  std::string name;
  PwBinaryPack pack;
  PwBinaryRun run;
};
std::vector<PwBinaryKernel> PwBinaryKernels() {
  std::vector<PwBinaryKernel> k;
  if (FastIsaSupported(FastIsa::kAvx2))
    k.push_back({"avx2", &PackPointwiseBinaryAvx2, &PointwiseBinaryAvx2});
  if (FastIsaSupported(FastIsa::kAvx512))
    k.push_back({"avx512", &PackPointwiseBinaryAvx512, &PointwiseBinaryAvx512});
#if defined(BILLNET_HAVE_AVX512_EMULATED)
  k.push_back(
      {"avx512 on SIMDe", &PackPointwiseBinaryAvx512, &avx512_emulated::PointwiseBinaryAvx512});
#endif
  return k;
}

TEST(FastKernelsPointwiseBinary, PFormWritesCountsAndPopcounts) {
  const auto kernels = PwBinaryKernels();
  if (kernels.empty()) GTEST_SKIP() << "no vector first-pointwise kernel here";
  for (const PwBinaryKernel& k : kernels) {
    SCOPED_TRACE(k.name);
    Rng rng(1515);
    for (int ci : {1, 64, 128, 200, 255, 256}) {
      const int co = 1 + int(rng.Below(70));
      const int64_t positions = 1 + int64_t(rng.Below(30));
      SCOPED_TRACE("seed 1515 ci " + std::to_string(ci) + " co " + std::to_string(co));
      const auto bits = RandomBits(rng, positions * ci, ci % 2 ? 50 : 100);
      auto w = RandomSigns(rng, int64_t(co) * ci);
      for (int c = 0; c < ci - 1; ++c) w[c] = 1;  // row 0: ci - 1 weights +1
      const auto a = Pack(positions, ci, bits);
      const auto wp = k.pack(ci, co, w.data());
      const int64_t stride = co + 2;
      std::vector<uint8_t> out8(positions * stride, 7);
      std::vector<int16_t> pplane(positions * 3, -1);
      k.run(positions, WordsFor(ci), a.data(), co, wp.data(), nullptr, out8.data(), 0, stride, true,
            pplane.data(), 3);
      for (int64_t p = 0; p < positions; ++p) {
        int total = 0;
        for (int c = 0; c < ci; ++c) total += bits[p * ci + c];
        ASSERT_EQ(pplane[p * 3], total) << p;
        ASSERT_EQ(pplane[p * 3 + 1], -1) << "wrote between positions";
        for (int o = 0; o < co; ++o) {
          int cnt = 0;
          for (int c = 0; c < ci; ++c) cnt += bits[p * ci + c] && w[int64_t(o) * ci + c] > 0;
          ASSERT_EQ(out8[p * stride + o], cnt) << p << " " << o;
        }
        for (int o = co; o < stride; ++o) ASSERT_EQ(out8[p * stride + o], 7) << "wrote past a row";
      }
    }
  }
}

TEST(FastKernelsAvx2, U8FitsRule) {
  // int16 lanes hold 2 * runs * quads products of at most max_u each.
  const ConvSpec stem = Spec(Shape4{16, 96, 128, 3}, 32, 1, {3, 5, 5}, {2, 2, 2}, {1, 2, 2});
  EXPECT_TRUE(TapsU8Fits(stem, 255));  // 15 runs x 4 quads x 2 x 255 = 30600
  const ConvSpec g8 = Spec(Shape4{8, 24, 32, 32}, 32, 4, {3, 3, 3}, {1, 1, 1}, {1, 1, 1});
  EXPECT_TRUE(TapsU8Fits(g8, 128));  // 27 x 2 x 2 x 128 = 13824
  EXPECT_FALSE(TapsU8Fits(g8, 256));
  const ConvSpec g32 = Spec(Shape4{8, 6, 8, 128}, 128, 4, {3, 3, 3}, {1, 1, 1}, {1, 1, 1});
  EXPECT_FALSE(TapsU8Fits(g32, 254));  // 27 x 8 x 2 x 254 > 32767
  EXPECT_TRUE(TapsU8Fits(g32, 75));
  // The BILLNET 2x plan: the stem and the grouped convs of cf1, mor1 and cf2
  // (first pointwise ci <= 64) take the u8 form.
  const TopologyPlan plan = *BuildPlan(Billnet2x());
  int u8_layers = 0;
  for (const auto& b : plan.blocks)
    for (size_t i = 0; i < b.convs.size(); ++i) {
      if (b.kind == BlockKind::kStem)
        u8_layers += TapsU8Fits(b.convs[i], 255);
      else if (i % 3 == 1 && 2 * b.convs[i - 1].ci <= 255)
        u8_layers += TapsU8Fits(b.convs[i], 2 * b.convs[i - 1].ci);
    }
  EXPECT_EQ(u8_layers, 5);
}

TEST(FastKernelsPointwiseBinary, MatchesReference) {
  // The vector popcounts (AVX2: nibble LUT, byte counts flushed every 31
  // words; AVX-512: VPOPCNTD) against the reference: 1..40 words, co not a
  // multiple of 16, densities 0 and 100 (counts at both ends), int16 rows
  // with a stride and u8 + offset.
  const auto kernels = PwBinaryKernels();
  if (kernels.empty()) GTEST_SKIP() << "no vector first-pointwise kernel here";
  for (const PwBinaryKernel& k : kernels) {
    SCOPED_TRACE(k.name);
    Rng rng(1212);
    for (int ci : {1, 3, 7, 32, 63, 64, 65, 100, 127, 128, 129, 200, 256, 511, 1984, 1985, 2500}) {
      for (int density : {0, 3, 50, 97, 100}) {
        const int co = 1 + int(rng.Below(70));
        const int64_t positions = 1 + int64_t(rng.Below(20));
        SCOPED_TRACE("seed 1212 ci " + std::to_string(ci) + " co " + std::to_string(co) +
                     " density " + std::to_string(density));
        const ConvSpec c =
            Spec(Shape4{1, 1, int(positions), ci}, co, 1, {1, 1, 1}, {1, 1, 1}, {0, 0, 0});
        const auto bits = RandomBits(rng, positions * ci, density);
        const auto w = density == 100 ? std::vector<int8_t>(int64_t(co) * ci, 1)
                       : density == 0 ? std::vector<int8_t>(int64_t(co) * ci, -1)
                                      : RandomSigns(rng, int64_t(co) * ci);
        std::vector<int32_t> want(positions * co);
        Conv3dReference(c, bits.data(), w.data(), want.data());
        const auto wp = k.pack(ci, co, w.data());
        const auto a = Pack(positions, ci, bits);
        const int64_t stride = co + 3;
        std::vector<int16_t> out(positions * stride, 7);
        k.run(positions, WordsFor(ci), a.data(), co, wp.data(), out.data(), nullptr, 0, stride,
              false, nullptr, 1);
        for (int64_t p = 0; p < positions; ++p) {
          for (int o = 0; o < co; ++o)
            ASSERT_EQ(out[p * stride + o], want[p * co + o]) << p << " " << o;
          for (int o = co; o < stride; ++o) ASSERT_EQ(out[p * stride + o], 7) << "wrote past a row";
        }
        if (2 * ci > 255) continue;
        const int offset = ci + int(rng.Below(uint64_t(256 - 2 * ci)));
        std::vector<uint8_t> out8(positions * stride, 7);
        k.run(positions, WordsFor(ci), a.data(), co, wp.data(), nullptr, out8.data(), offset,
              stride, false, nullptr, 1);
        for (int64_t p = 0; p < positions; ++p) {
          for (int o = 0; o < co; ++o)
            ASSERT_EQ(int(out8[p * stride + o]) - offset, want[p * co + o]) << p << " " << o;
          for (int o = co; o < stride; ++o)
            ASSERT_EQ(out8[p * stride + o], 7) << "wrote past a row";
        }
      }
    }
  }
}

TEST(FastKernelsAvx2, CountBitsMatchesReference) {
  // GAP / TGAP counts: up to 700 positions (the u8 counters flush every 255:
  // all-ones inputs reach 255 and 256 in one flush window), odd channel
  // counts, densities 0..100.
  if (!FastIsaSupported(FastIsa::kAvx2)) GTEST_SKIP() << "no AVX2 here";
  Rng rng(1313);
  for (int channels : {1, 7, 63, 64, 65, 128, 200, 256}) {
    for (int64_t positions : {1, 48, 254, 255, 256, 511, 700}) {
      for (int density : {0, 50, 100}) {
        SCOPED_TRACE("seed 1313 channels " + std::to_string(channels) + " positions " +
                     std::to_string(positions) + " density " + std::to_string(density));
        const Shape4 s{1, 1, int(positions), channels};
        const auto x = RandomBits(rng, s.elements(), density);
        std::vector<int32_t> want(channels), got(channels, 7);
        GapBitsReference(s, x.data(), want.data());
        CountBitsAvx2(positions, channels, Pack(positions, channels, x).data(), got.data());
        EXPECT_EQ(got, want);
      }
    }
  }
}

using testing::RandomModel;
using testing::RandomWindow;
using testing::TinyTopology;

// Odd sizes everywhere: 80 channels at the end (two words, 16 used), groups
// of 2-5 channels, odd frame sizes (floor pooling drops rows and columns).
TopologyConfig OddTopology() {
  TopologyConfig t;
  t.base_channels = 20;
  t.groups = 5;
  t.lstm_units = 9;
  t.classes = 4;
  t.tail_mor_blocks = 1;
  t.frames = 5;
  t.height = 35;
  t.width = 37;
  return t;
}

::testing::AssertionResult SameTrace(const std::vector<TracedTensor>& a,
                                     const std::vector<TracedTensor>& b) {
  if (a.size() != b.size())
    return ::testing::AssertionFailure() << a.size() << " vs " << b.size() << " tensors";
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name)
      return ::testing::AssertionFailure()
             << "tensor " << i << ": " << a[i].name << " vs " << b[i].name;
    if (a[i].shape != b[i].shape || a[i].is_integer != b[i].is_integer)
      return ::testing::AssertionFailure() << a[i].name << ": shape or type differs";
    if (a[i].ints != b[i].ints) {
      size_t j = 0;
      while (j < a[i].ints.size() && j < b[i].ints.size() && a[i].ints[j] == b[i].ints[j]) ++j;
      return ::testing::AssertionFailure() << a[i].name << ": integers differ first at " << j;
    }
    if (a[i].floats != b[i].floats)
      return ::testing::AssertionFailure() << a[i].name << ": floats differ";
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult SameResponse(const Response& a, const Response& b) {
  if (a.steps != b.steps || a.classes != b.classes)
    return ::testing::AssertionFailure() << "shapes";
  if (a.scores != b.scores) return ::testing::AssertionFailure() << "scores differ";
  if (a.integer_scores != b.integer_scores)
    return ::testing::AssertionFailure() << "integer scores";
  if (a.scores_are_integers != b.scores_are_integers)
    return ::testing::AssertionFailure() << "kind";
  if (a.probabilities != b.probabilities) return ::testing::AssertionFailure() << "probabilities";
  if (a.top_class != b.top_class || a.top_probability != b.top_probability)
    return ::testing::AssertionFailure() << "top classes";
  return ::testing::AssertionSuccess();
}

// Runs `windows` through a fast and a reference session of `m` (state carried),
// comparing every response, state and traced tensor.
// Every kernel variant the CPU supports (isa.h) runs too, through its own
// FastRunner with its own carried state.
void ExpectFastEqualsReference(const std::shared_ptr<const Model>& m, int windows, uint64_t seed) {
  Session fast(m, KernelChoice::kFast), ref(m, KernelChoice::kReference);
  ASSERT_STREQ(fast.kernels(), "fast");
  ASSERT_STREQ(ref.kernels(), "reference");
  const auto isas = SupportedFastIsas();
  std::vector<std::unique_ptr<FastRunner>> runners;
  const size_t units = m->plan().config.lstm_units;
  std::vector<std::vector<float>> hs(isas.size(), std::vector<float>(units, 0.f)), cs = hs;
  for (FastIsa isa : isas) runners.push_back(std::make_unique<FastRunner>(*m, isa));
  Response rf, rr;
  for (int i = 0; i < windows; ++i) {
    SCOPED_TRACE("window " + std::to_string(i));
    const auto w = RandomWindow(*m, seed + i);
    std::vector<TracedTensor> tf, tr;
    ASSERT_TRUE(fast.Run(w.data(), w.size(), &rf, &tf).ok());
    ASSERT_TRUE(ref.Run(w.data(), w.size(), &rr, &tr).ok());
    EXPECT_TRUE(SameTrace(tf, tr));
    EXPECT_TRUE(SameResponse(rf, rr));
    EXPECT_EQ(fast.h(), ref.h());
    EXPECT_EQ(fast.c(), ref.c());
    for (size_t k = 0; k < isas.size(); ++k) {
      SCOPED_TRACE(std::string("variant ") + FastIsaName(isas[k]));
      Response rv;
      std::vector<TracedTensor> tv;
      runners[k]->Run(w.data(), hs[k], cs[k], &rv, &tv);
      EXPECT_TRUE(SameTrace(tv, tr));
      EXPECT_TRUE(SameResponse(rv, rr));
      EXPECT_EQ(hs[k], ref.h());
      EXPECT_EQ(cs[k], ref.c());
    }
  }
}

TEST(FastSession, TinyAndOddTopologiesEqualTheReferenceExactly) {
  for (int s = 3; s <= 5; ++s)
    for (const auto& [name, topo] : {std::pair{"tiny", TinyTopology()}, {"odd", OddTopology()}})
      for (uint64_t seed : {1, 2, 3}) {
        SCOPED_TRACE(std::string(name) + " stage s" + std::to_string(s) + " seed " +
                     std::to_string(seed));
        auto m = RandomModel(Stage(s), seed, topo);
        ASSERT_TRUE(m);
        ExpectFastEqualsReference(m, 3, 100 * seed);
      }
}

TEST(FastSession, Billnet2xEqualsTheReferenceExactly) {
  for (int s = 3; s <= 5; ++s) {
    SCOPED_TRACE("BILLNET 2x stage s" + std::to_string(s));
    auto m = RandomModel(Stage(s), 7, Billnet2x());
    ASSERT_TRUE(m);
    ExpectFastEqualsReference(m, 2, 77);
  }
}

#if defined(BILLNET_HAVE_AVX512_EMULATED)
TEST(FastSession, Avx512VariantOnSimdeEqualsTheReference) {
  // The avx512 variant through the runner (its weight layouts, which form
  // each layer takes, the AVX2 kernels it shares), with the AVX-512 kernels
  // compiled on SIMDe, so hosts without AVX-512 check it whole: tiny and odd
  // topologies (S3-S5) and BILLNET 2x at S5 (the stem, both u8 forms of the
  // grouped convs, the p form), traces and state bit for bit.
  if (!FastIsaSupported(FastIsa::kAvx2)) GTEST_SKIP() << "the variant needs AVX2";
  struct Restore {
    ~Restore() { SetAvx512KernelsForTesting(nullptr); }
  } restore;
  SetAvx512KernelsForTesting(&avx512_emulated::kTable);
  ASSERT_TRUE(FastIsaSupported(FastIsa::kAvx512));
  EXPECT_STREQ(KernelVariant(), "fast/avx512");
  for (int s = 3; s <= 5; ++s)
    for (const auto& [name, topo] : {std::pair{"tiny", TinyTopology()}, {"odd", OddTopology()}}) {
      SCOPED_TRACE(std::string(name) + " stage s" + std::to_string(s));
      auto m = RandomModel(Stage(s), 5, topo);
      ASSERT_TRUE(m);
      ExpectFastEqualsReference(m, 2, 500);
    }
  auto m = RandomModel(Stage::kS5, 7, Billnet2x());
  ASSERT_TRUE(m);
  int u8_layers = 0, p_form_layers = 0;
  for (const auto& convs : m->prepared().fast->convs)
    for (const auto& f : convs) {
      u8_layers += f.u8 && f.taps8_avx512.lanes == kAvx512Lanes && !f.taps8_avx512.w.empty();
      p_form_layers += f.p_form && !f.taps8_avx512.p_w.empty();
    }
  EXPECT_GE(u8_layers, 10);  // the stem and every grouped conv
  EXPECT_GE(p_form_layers, 5);
  SCOPED_TRACE("BILLNET 2x stage s5");
  ExpectFastEqualsReference(m, 1, 77);
}
#endif

TEST(FastSession, HotPathWithoutTraceAndRunBatchEqualTheReference) {
  for (int s = 3; s <= 5; ++s) {
    SCOPED_TRACE("stage s" + std::to_string(s));
    auto m = RandomModel(Stage(s), 61, OddTopology());
    auto other = RandomModel(Stage(s == 5 ? 3 : s + 1), 62);  // another model in the batch
    ASSERT_TRUE(m && other);
    Session f0(m, KernelChoice::kFast), f1(m, KernelChoice::kFast), f2(other, KernelChoice::kFast);
    Session r0(m, KernelChoice::kReference), r1(m, KernelChoice::kReference),
        r2(other, KernelChoice::kReference);
    Session* fb[3] = {&f0, &f1, &f2};
    Session* rb[3] = {&r0, &r1, &r2};
    Response fo[3], ro[3];
    for (int round = 0; round < 3; ++round) {  // state carried through batches
      SCOPED_TRACE("round " + std::to_string(round));
      std::vector<std::vector<uint8_t>> w;
      for (int i = 0; i < 3; ++i) w.push_back(RandomWindow(i == 2 ? *other : *m, 10 * round + i));
      const uint8_t* ptrs[3] = {w[0].data(), w[1].data(), w[2].data()};
      ASSERT_TRUE(RunBatch(fb, ptrs, 3, fo).ok());
      ASSERT_TRUE(RunBatch(rb, ptrs, 3, ro).ok());
      for (int i = 0; i < 3; ++i) {
        EXPECT_TRUE(SameResponse(fo[i], ro[i])) << "entry " << i;
        EXPECT_EQ(fb[i]->h(), rb[i]->h());
        EXPECT_EQ(fb[i]->c(), rb[i]->c());
      }
    }
    // A state exported by the reference path runs on the fast path.
    const auto blob = r0.ExportState();
    Session g(m, KernelChoice::kFast);
    ASSERT_TRUE(g.ImportState(blob.data(), blob.size()).ok());
    const auto w = RandomWindow(*m, 999);
    Response a, b;
    ASSERT_TRUE(g.Run(w.data(), w.size(), &a).ok());
    ASSERT_TRUE(r0.Run(w.data(), w.size(), &b).ok());
    EXPECT_TRUE(SameResponse(a, b));
  }
}

// Rows split over threads (every variant, pools of 1 and 3 helpers on this
// machine's cores) and batches spread over them give the reference's results
// bit for bit, whatever thread ran which row or window.
TEST(FastSession, ThreadedWindowsAndBatchesEqualTheReference) {
  ThreadPool one(1), three(3);
  for (int s = 3; s <= 5; ++s)
    for (const auto& [name, topo] : {std::pair{"odd", OddTopology()}, {"2x", Billnet2x()}}) {
      SCOPED_TRACE(std::string(name) + " stage s" + std::to_string(s));
      auto m = RandomModel(Stage(s), 90 + s, topo);
      ASSERT_TRUE(m);
      const size_t units = m->plan().config.lstm_units;
      // The reference's responses and states over two windows.
      Session ref(m, KernelChoice::kReference);
      std::vector<std::vector<uint8_t>> w;
      std::vector<Response> rr(2);
      std::vector<std::vector<float>> rh, rc;
      for (int i = 0; i < 2; ++i) {
        w.push_back(RandomWindow(*m, 500 + i));
        ASSERT_TRUE(ref.Run(w[i].data(), w[i].size(), &rr[i]).ok());
        rh.push_back(ref.h());
        rc.push_back(ref.c());
      }
      for (FastIsa isa : SupportedFastIsas())
        for (ThreadPool* pool : {&one, &three}) {
          SCOPED_TRACE(std::string("variant ") + FastIsaName(isa) + ", helpers " +
                       std::to_string(pool->helpers()));
          FastRunner runner(*m, isa);
          std::vector<float> h(units, 0.f), c(units, 0.f);
          for (int i = 0; i < 2; ++i) {
            Response rf;
            runner.Run(w[i].data(), h, c, &rf, nullptr, pool);
            EXPECT_TRUE(SameResponse(rf, rr[i])) << "window " << i;
            EXPECT_EQ(h, rh[i]);
            EXPECT_EQ(c, rc[i]);
          }
        }
      // Four streams in batches on the pool, the state carried over two
      // rounds: stream k gets window (k + round) % 2, so the streams differ.
      std::vector<Session> fast;
      for (int k = 0; k < 4; ++k) fast.emplace_back(m, KernelChoice::kFast);
      Session other(m, KernelChoice::kReference);  // window 1 then 0
      Response o0, o1;
      ASSERT_TRUE(other.Run(w[1].data(), w[1].size(), &o0).ok());
      const std::vector<float> oh0 = other.h();
      ASSERT_TRUE(other.Run(w[0].data(), w[0].size(), &o1).ok());
      const std::vector<float> oh1 = other.h();
      for (int round = 0; round < 2; ++round) {
        Session* fb[4];
        const uint8_t* ptrs[4];
        for (int k = 0; k < 4; ++k) {
          fb[k] = &fast[k];
          ptrs[k] = w[(k + round) % 2].data();
        }
        Response fo[4];
        ASSERT_TRUE(RunBatch(fb, ptrs, 4, fo, &three).ok());
        for (int k = 0; k < 4; ++k) {
          const Response& want = k % 2 == 0 ? rr[round] : round == 0 ? o0 : o1;
          EXPECT_TRUE(SameResponse(fo[k], want)) << "round " << round << " stream " << k;
          EXPECT_EQ(fast[k].h(), k % 2 == 0 ? rh[round] : round == 0 ? oh0 : oh1) << "stream " << k;
        }
      }
    }
}

// A threaded batch checks its entries first and names the bad one.
TEST(FastSession, ThreadedBatchNamesABadEntry) {
  auto m = RandomModel(Stage::kS5, 3, OddTopology());
  ASSERT_TRUE(m);
  ThreadPool pool(2);
  Session a(m), b(m), c(m);
  Session* ss[3] = {&a, &b, &c};
  const auto w = RandomWindow(*m, 1);
  const uint8_t* ws[3] = {w.data(), nullptr, w.data()};
  Response out[3];
  const Status s = RunBatch(ss, ws, 3, out, &pool);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("batch entry 1"), std::string::npos) << s.message();
}

// A session holds its LSTM state only; the fast path's scratch belongs to the
// model (FastRunnerPool), one set per run under way, whatever the number of
// sessions (decision 28). Sets are lent per variant and stay in the model.
TEST(FastSession, SessionsOfAModelShareScratchPerConcurrentRun) {
  auto m = RandomModel(Stage::kS5, 17, OddTopology());
  ASSERT_TRUE(m);
  const FastRunnerPool& runners = *m->prepared().runners;
  const auto w0 = RandomWindow(*m, 1), w1 = RandomWindow(*m, 2);
  Session ref(m, KernelChoice::kReference);
  Response r0, r1;
  ASSERT_TRUE(ref.Run(w0.data(), w0.size(), &r0).ok());
  ASSERT_TRUE(ref.Run(w1.data(), w1.size(), &r1).ok());

  std::vector<Session> streams;
  for (int k = 0; k < 50; ++k) streams.emplace_back(m, KernelChoice::kFast);
  EXPECT_EQ(runners.runners(), 0);  // nothing until a run
  for (Session& s : streams) {
    Response out;
    ASSERT_TRUE(s.Run(w0.data(), w0.size(), &out).ok());
    EXPECT_TRUE(SameResponse(out, r0));
  }
  EXPECT_EQ(runners.runners(), 1);  // 50 sessions, one run at a time
  const size_t one = runners.scratch_bytes();
  EXPECT_GT(one, 0u);

  // A batch on a pool borrows a runner per pool slot, however the threads
  // interleave, and gives them back.
  ThreadPool pool(2);
  for (int round = 0; round < 3; ++round) {
    Session* batch[4];
    const uint8_t* ptrs[4];
    Response out[4];
    for (int k = 0; k < 4; ++k) {
      streams[10 * round + k] = Session(m, KernelChoice::kFast);
      ASSERT_TRUE(streams[10 * round + k].Run(w0.data(), w0.size(), &out[k]).ok());
      batch[k] = &streams[10 * round + k];
      ptrs[k] = w1.data();
    }
    ASSERT_TRUE(RunBatch(batch, ptrs, 4, out, &pool).ok());
    for (int k = 0; k < 4; ++k) {
      EXPECT_TRUE(SameResponse(out[k], r1)) << "round " << round << " entry " << k;
      EXPECT_EQ(batch[k]->h(), ref.h());
      EXPECT_EQ(batch[k]->c(), ref.c());
    }
    EXPECT_EQ(runners.runners(), pool.slots()) << "round " << round;
  }

  // Runs on several threads at once each hold a runner while they run.
  std::vector<std::thread> threads;
  std::vector<int> right(4, 0);
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 5; ++i) {
        Session s(m, KernelChoice::kFast);
        Response a, b;
        if (s.Run(w0.data(), w0.size(), &a).ok() && s.Run(w1.data(), w1.size(), &b).ok() &&
            SameResponse(a, r0) && SameResponse(b, r1))
          ++right[t];
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(right, std::vector<int>(4, 5));
  EXPECT_GE(runners.runners(), pool.slots());
  EXPECT_LE(runners.runners(), pool.slots() + 4);

  // A thread gets back the runner it gave back last (warm in its core's
  // cache) before the newest idle one.
  {
    FastRunnerPool& pool_of_m = *m->prepared().runners;
    FastRunner* two[2];
    pool_of_m.Borrow(BestFastIsa(), 1, two, 2);
    pool_of_m.GiveBack(&two[0], 1);                                  // this thread's
    std::thread([&] { pool_of_m.GiveBack(&two[1], 1); }).join();  // newest, another's
    FastRunner* mine = nullptr;
    FastRunner* theirs = nullptr;
    pool_of_m.Borrow(BestFastIsa(), 1, &mine, 1);
    EXPECT_EQ(mine, two[0]);
    std::thread([&] { pool_of_m.Borrow(BestFastIsa(), 1, &theirs, 1); }).join();
    EXPECT_EQ(theirs, two[1]);
    pool_of_m.GiveBack(&mine, 1);
    pool_of_m.GiveBack(&theirs, 1);
  }

  // A session of another variant gets a runner of its own variant.
  if (BestFastIsa() != FastIsa::kPortable) {
    const int before = runners.runners();
    const char* old = std::getenv("BILLNET_FAST_ISA");
    const std::string saved = old ? old : "";
    setenv("BILLNET_FAST_ISA", "portable", 1);
    Session portable(m, KernelChoice::kFast);
    if (old)
      setenv("BILLNET_FAST_ISA", saved.c_str(), 1);
    else
      unsetenv("BILLNET_FAST_ISA");
    Response a;
    ASSERT_TRUE(portable.Run(w0.data(), w0.size(), &a).ok());
    EXPECT_TRUE(SameResponse(a, r0));
    EXPECT_EQ(runners.runners(), before + 1);
  }
}

// Sets BILLNET_KERNELS for one scope.
class ScopedKernelsEnv {
 public:
  explicit ScopedKernelsEnv(const char* value) {
    if (const char* old = std::getenv("BILLNET_KERNELS")) old_ = old, had_ = true;
    if (value)
      setenv("BILLNET_KERNELS", value, 1);
    else
      unsetenv("BILLNET_KERNELS");
  }
  ~ScopedKernelsEnv() {
    if (had_)
      setenv("BILLNET_KERNELS", old_.c_str(), 1);
    else
      unsetenv("BILLNET_KERNELS");
  }

 private:
  std::string old_;
  bool had_ = false;
};

TEST(FastSession, EnvironmentForcesAPathAndTheSessionReportsIt) {
  auto s1 = RandomModel(Stage::kS1, 5), s2 = RandomModel(Stage::kS2, 5),
       s3 = RandomModel(Stage::kS3, 5), s5 = RandomModel(Stage::kS5, 5);
  ASSERT_TRUE(s1 && s2 && s3 && s5);
  {
    ScopedKernelsEnv env(nullptr);  // default: fast for S3-S5, reference for S1-S2
    EXPECT_STREQ(Session(s3).kernels(), "fast");
    EXPECT_STREQ(Session(s5).kernels(), "fast");
    EXPECT_STREQ(Session(s1).kernels(), "reference");
    EXPECT_STREQ(Session(s2).kernels(), "reference");
    EXPECT_EQ(std::string(KernelVariant()).rfind("fast/", 0), 0u) << KernelVariant();
  }
  {
    ScopedKernelsEnv env("reference");
    EXPECT_STREQ(Session(s3).kernels(), "reference");
    EXPECT_STREQ(Session(s5).kernels(), "reference");
    EXPECT_STREQ(KernelVariant(), "reference");
    // An explicit choice wins over the environment.
    EXPECT_STREQ(Session(s5, KernelChoice::kFast).kernels(), "fast");
  }
  {
    ScopedKernelsEnv env("fast");
    EXPECT_STREQ(Session(s5).kernels(), "fast");
    EXPECT_STREQ(Session(s1).kernels(), "reference");  // no fast float path
    EXPECT_STREQ(Session(s1, KernelChoice::kFast).kernels(), "reference");
    EXPECT_EQ(KernelChoiceFromEnvironment(), KernelChoice::kFast);
  }
  {
    ScopedKernelsEnv env("bogus");
    EXPECT_EQ(KernelChoiceFromEnvironment(), KernelChoice::kFast);
    EXPECT_STREQ(Session(s3, KernelChoice::kReference).kernels(), "reference");
  }
}

}  // namespace
}  // namespace billnet
