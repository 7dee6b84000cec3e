// The scalar reference kernels (engine/src/kernels/reference.h) against
// hand-worked cases, and the QLSTM step against a direct floating-point
// transcription of the paper's equations (section III-C, eqs. 1-9).
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "kernels/reference.h"
#include "rng.h"

namespace billnet {
namespace {

// ------------------------------------------------------------ Conv3d helpers

ConvSpec Spec(const Shape4& in, int co, int groups, std::array<int, 3> k,
              std::array<int, 3> s, std::array<int, 3> p) {
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

// Runs Conv3dReference<In, W, Acc> on integer-valued data; weights are in the
// kernel layout [co][kt][kh][kw][ci/g]. Results come back as int64.
template <typename In, typename W, typename Acc>
std::vector<int64_t> RunConv(const ConvSpec& c, const std::vector<int64_t>& in,
                             const std::vector<int64_t>& w) {
  std::vector<In> vin(in.begin(), in.end());
  std::vector<W> vw(w.begin(), w.end());
  std::vector<Acc> out(c.out.elements(), Acc(-12345));
  Conv3dReference(c, vin.data(), vw.data(), out.data());
  std::vector<int64_t> r;
  for (Acc a : out) {
    EXPECT_EQ(Acc(int64_t(a)), a) << "non-integer output";
    r.push_back(int64_t(a));
  }
  return r;
}

// Checks a conv case in every instantiation the engine uses: float (S1-S2),
// int32 sums of int32 inputs (inside a CF) and of uint8 bits / inputs (S3-S5,
// only where the inputs fit in uint8).
void CheckConvAllTypes(const ConvSpec& c, const std::vector<int64_t>& in,
                       const std::vector<int64_t>& w, const std::vector<int64_t>& want) {
  ASSERT_EQ(int64_t(in.size()), c.in.elements());
  ASSERT_EQ(int64_t(w.size()), c.weight_count());
  ASSERT_EQ(int64_t(want.size()), c.out.elements());
  {
    SCOPED_TRACE("float/float/float");
    EXPECT_EQ((RunConv<float, float, float>(c, in, w)), want);
  }
  {
    SCOPED_TRACE("int32/int8/int32");
    EXPECT_EQ((RunConv<int32_t, int8_t, int32_t>(c, in, w)), want);
  }
  if (std::all_of(in.begin(), in.end(), [](int64_t v) { return v >= 0 && v <= 255; })) {
    SCOPED_TRACE("uint8/int8/int32");
    EXPECT_EQ((RunConv<uint8_t, int8_t, int32_t>(c, in, w)), want);
  }
}

int64_t At3(const std::vector<int64_t>& v, int h, int w, int t, int y, int x) {
  return v[(int64_t(t) * h + y) * w + x];
}

TEST(Conv3dReference, OneChannel3x3x3PaddedAllOnesCountsNeighbours) {
  // 3x3x3 input of ones, 3x3x3 kernel of ones, pad 1: each output is the
  // number of in-range neighbours, n(t) * n(y) * n(x) with n = {2, 3, 2}.
  const ConvSpec c = Spec({3, 3, 3, 1}, 1, 1, {3, 3, 3}, {1, 1, 1}, {1, 1, 1});
  ASSERT_EQ(c.out, (Shape4{3, 3, 3, 1}));
  const std::vector<int64_t> in(27, 1), w(27, 1);
  const int n[3] = {2, 3, 2};
  std::vector<int64_t> want;
  for (int t = 0; t < 3; ++t)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 3; ++x) want.push_back(n[t] * n[y] * n[x]);
  EXPECT_EQ(want[13], 27);  // centre
  EXPECT_EQ(want[0], 8);    // corner
  CheckConvAllTypes(c, in, w, want);
}

TEST(Conv3dReference, OneChannel3x3x3PaddedIndexInput) {
  // in(t, y, x) = 1 + 9t + 3y + x (1..27); kernel of ones, pad 1.
  const ConvSpec c = Spec({3, 3, 3, 1}, 1, 1, {3, 3, 3}, {1, 1, 1}, {1, 1, 1});
  std::vector<int64_t> in;
  for (int i = 1; i <= 27; ++i) in.push_back(i);
  const std::vector<int64_t> ones(27, 1);
  const auto out = RunConv<int32_t, int8_t, int32_t>(c, in, ones);
  // Worked by hand: centre = 1 + ... + 27 = 378; corner (0,0,0) sums
  // t,y,x in {0,1}: 8 + 9*4 + 3*4 + 4 = 60; corner (2,2,2) sums t,y,x in {1,2}:
  // 8 + 9*12 + 3*12 + 12 = 164; face (1,1,0): t,y in {0,1,2}, x in {0,1}:
  // 18 + 9*(3*6) + 3*(3*6) + 9 = 18 + 162 + 54 + 9 = 243.
  EXPECT_EQ(At3(out, 3, 3, 1, 1, 1), 378);
  EXPECT_EQ(At3(out, 3, 3, 0, 0, 0), 60);
  EXPECT_EQ(At3(out, 3, 3, 2, 2, 2), 164);
  EXPECT_EQ(At3(out, 3, 3, 1, 1, 0), 243);
  EXPECT_EQ((RunConv<float, float, float>(c, in, ones)), out);
  EXPECT_EQ((RunConv<uint8_t, int8_t, int32_t>(c, in, ones)), out);

  // A single tap: weight 2 at (kt=0, kh=1, kw=2) reads in(t-1, y, x+1):
  // checks the [kt][kh][kw] weight order and where the padding falls.
  std::vector<int64_t> tap(27, 0);
  tap[(0 * 3 + 1) * 3 + 2] = 2;
  std::vector<int64_t> want;
  for (int t = 0; t < 3; ++t)
    for (int y = 0; y < 3; ++y)
      for (int x = 0; x < 3; ++x)
        want.push_back(t - 1 >= 0 && x + 1 < 3 ? 2 * (1 + 9 * (t - 1) + 3 * y + x + 1) : 0);
  EXPECT_EQ(At3(want, 3, 3, 1, 1, 1), 12);  // 2 * in(0, 1, 2) = 2 * 6
  CheckConvAllTypes(c, in, tap, want);
}

TEST(Conv3dReference, SpatialStride) {
  // 1x5x5 input in(y, x) = 5y + x, 1x3x3 kernel of ones, stride 2, no pad:
  // 2x2 outputs, each 9 * (the window's centre value).
  const ConvSpec c = Spec({1, 5, 5, 1}, 1, 1, {1, 3, 3}, {1, 2, 2}, {0, 0, 0});
  ASSERT_EQ(c.out, (Shape4{1, 2, 2, 1}));
  std::vector<int64_t> in;
  for (int i = 0; i < 25; ++i) in.push_back(i);
  CheckConvAllTypes(c, in, std::vector<int64_t>(9, 1), {54, 72, 144, 162});
}

TEST(Conv3dReference, TemporalStrideWithPadding) {
  // The stem's time axis: kernel 3, stride 2, pad 1 over 4 frames -> 2 steps:
  // step 0 reads frames {-1, 0, 1}, step 1 frames {1, 2, 3}.
  const ConvSpec c = Spec({4, 1, 1, 1}, 1, 1, {3, 1, 1}, {2, 1, 1}, {1, 0, 0});
  ASSERT_EQ(c.out, (Shape4{2, 1, 1, 1}));
  // in = 1, 10, 100, 1000 (not uint8), weights 1, 2, 3 by kt.
  CheckConvAllTypes(c, {1, 10, 100, 1000}, {1, 2, 3}, {2 * 1 + 3 * 10, 1 * 10 + 2 * 100 + 3 * 1000});
  // Stride 2 in all three axes with a 3x5x5 kernel and pad 1x2x2 (the stem's
  // geometry) on 2 channels: output (0,0,0) of input ones counts the in-range
  // taps 2 * 3 * 3 per channel.
  const ConvSpec stem = Spec({4, 6, 6, 2}, 1, 1, {3, 5, 5}, {2, 2, 2}, {1, 2, 2});
  ASSERT_EQ(stem.out, (Shape4{2, 3, 3, 1}));
  const std::vector<int64_t> ones_in(stem.in.elements(), 1), ones_w(stem.weight_count(), 1);
  const auto out = RunConv<float, float, float>(stem, ones_in, ones_w);
  EXPECT_EQ(out[0], 2 * (2 * 3 * 3));
  // Output (1, 1, 1) reads t in {1,2,3}, y in {0..4}, x in {0..4}: all in range.
  EXPECT_EQ(out[(1 * 3 + 1) * 3 + 1], 2 * (3 * 5 * 5));
  EXPECT_EQ((RunConv<uint8_t, int8_t, int32_t>(stem, ones_in, ones_w)), out);
}

TEST(Conv3dReference, GroupsKeepChannelsApart) {
  // ci = co = 4, 2 groups, pointwise: outputs 0-1 see inputs 0-1 only, 2-3
  // see 2-3 only. Inputs 1, 4, 16, 64; weights [co][ci/g].
  const ConvSpec c = Spec({1, 1, 1, 4}, 4, 2, {1, 1, 1}, {1, 1, 1}, {0, 0, 0});
  CheckConvAllTypes(c, {1, 4, 16, 64}, {1, 1, 1, -1, 1, 1, -1, 1},
                    {1 + 4, 1 - 4, 16 + 64, -16 + 64});
  // co = 2 from ci = 4 in 2 groups: output g reads inputs 2g, 2g+1.
  const ConvSpec d = Spec({1, 1, 1, 4}, 2, 2, {1, 1, 1}, {1, 1, 1}, {0, 0, 0});
  CheckConvAllTypes(d, {1, 4, 16, 64}, {1, 1, 1, 1}, {5, 80});
  // Depthwise (groups = channels) 1x1x3 along width, pad 1: each channel
  // is filtered alone. Channel 0 = 1, 2, 3; channel 1 = 10, 20, 30.
  const ConvSpec e = Spec({1, 1, 3, 2}, 2, 2, {1, 1, 3}, {1, 1, 1}, {0, 0, 1});
  CheckConvAllTypes(e, {1, 10, 2, 20, 3, 30}, {1, 1, 1, 1, 1, 1},
                    {3, 30, 6, 60, 5, 50});
  // The grouped 3x3x3 of a CF: 4 channels, 2 groups, all-ones kernel, one
  // position with padding: output channel o = sum over its group's channels.
  const ConvSpec f = Spec({1, 1, 1, 4}, 4, 2, {3, 3, 3}, {1, 1, 1}, {1, 1, 1});
  // Only the centre tap is in range: the 26 others fall on padding.
  CheckConvAllTypes(f, {1, 4, 16, 64}, std::vector<int64_t>(f.weight_count(), 1),
                    {5, 5, 80, 80});
}

TEST(Conv3dReference, Int32SecondPointwiseRangeIsExact) {
  // DESIGN 2.1: in CF(256 -> co) the first pointwise gives values in
  // [-256, 256]; the grouped 3x3x3 (128 channels in 4 groups: 32 per group,
  // 27 taps) multiplies that by up to 27 * 32 = 864: +-221,184. The second
  // pointwise sums 128 of those. The
  // int32 accumulator holds 128 * 221,184 = 28,311,552 exactly (float would
  // not: it is above 2^24).
  constexpr int64_t kMax = 221184;
  const ConvSpec c = Spec({1, 1, 2, 128}, 4, 1, {1, 1, 1}, {1, 1, 1}, {0, 0, 0});
  std::vector<int64_t> in, w;
  // Position 0: all +max. Position 1: alternating +-(max - j % 5).
  for (int j = 0; j < 128; ++j) in.push_back(kMax);
  for (int j = 0; j < 128; ++j) in.push_back((j % 2 ? -1 : 1) * (kMax - j % 5));
  // Output 0: all +1. Output 1: all -1. Output 2: +1 on even j, -1 on odd
  // (matches position 1's signs). Output 3: a seeded random sign pattern.
  Rng rng(7);
  for (int o = 0; o < 4; ++o)
    for (int j = 0; j < 128; ++j)
      w.push_back(o == 0 ? 1 : o == 1 ? -1 : o == 2 ? (j % 2 ? -1 : 1)
                                                  : (rng.Below(2) ? 1 : -1));
  std::vector<int64_t> want(8, 0);
  for (int p = 0; p < 2; ++p)
    for (int o = 0; o < 4; ++o)
      for (int j = 0; j < 128; ++j) want[p * 4 + o] += in[p * 128 + j] * w[o * 128 + j];
  EXPECT_EQ(want[0], 28311552);
  EXPECT_EQ(want[1], -28311552);
  EXPECT_EQ(want[2], 0);  // alternating signs on equal values
  int64_t sum_abs = 0;
  for (int j = 0; j < 128; ++j) sum_abs += kMax - j % 5;
  EXPECT_EQ(want[4 + 2], sum_abs);
  for (int64_t v : want) ASSERT_LE(std::llabs(v), int64_t(INT32_MAX));
  EXPECT_EQ((RunConv<int32_t, int8_t, int32_t>(c, in, w)), want);
}

// ------------------------------------------------------------ pooling, norms

TEST(MaxPool1x2x2Reference, OddSizesFloorAndNegativeIntegers) {
  // 2 frames x 3 x 5 x 2 channels -> 2 x 1 x 2 x 2: row 2 and column 4 are
  // dropped (floor), so their large values must never appear. Channel 0 is
  // all negative. Frame 1 = 2 * frame 0.
  const Shape4 s{2, 3, 5, 2};
  const int ch0[3][5] = {{-5, -3, -8, -1, 0}, {-4, -7, -2, -6, 0}, {0, 0, 0, 0, 0}};
  const int ch1[3][5] = {{1, 2, 3, 4, 100}, {5, 0, 0, 7, 100}, {100, 100, 100, 100, 100}};
  std::vector<int32_t> x;
  for (int t = 0; t < 2; ++t)
    for (int y = 0; y < 3; ++y)
      for (int xx = 0; xx < 5; ++xx) {
        x.push_back((t + 1) * ch0[y][xx]);
        x.push_back((t + 1) * ch1[y][xx]);
      }
  const std::vector<int32_t> want = {-3, 5, -1, 7, -6, 10, -2, 14};
  std::vector<int32_t> out(8, 99);
  MaxPool1x2x2Reference(s, x.data(), out.data());
  EXPECT_EQ(out, want);
  std::vector<float> xf(x.begin(), x.end()), of(8, 99.f);
  MaxPool1x2x2Reference(s, xf.data(), of.data());
  EXPECT_EQ(std::vector<float>(want.begin(), want.end()), of);
  // uint8 (bits): a max-pool of bits is an OR; the odd column 2 (all ones)
  // is dropped.
  const Shape4 b{1, 2, 3, 1};
  const std::vector<uint8_t> zeros = {0, 0, 1, 0, 0, 1}, one = {0, 0, 1, 0, 1, 1};
  std::vector<uint8_t> ob(1, 7);
  MaxPool1x2x2Reference(b, zeros.data(), ob.data());
  EXPECT_EQ(ob, std::vector<uint8_t>{0});
  MaxPool1x2x2Reference(b, one.data(), ob.data());
  EXPECT_EQ(ob, std::vector<uint8_t>{1});
}

TEST(NormReluReference, ScaleOffsetThenRelu) {
  const std::vector<float> x = {1, 2, -3, 0.5f, 0, -1};  // 3 positions x 2 channels
  const std::vector<float> scale = {2, -1}, offset = {1, 0.5f};
  std::vector<float> out(6, 99.f);
  NormReluReference(3, 2, x.data(), scale.data(), offset.data(), out.data());
  // p0: 2*1+1 = 3, -2+0.5 < 0; p1: -6+1 < 0, -0.5+0.5 = 0; p2: 0+1, 1+0.5.
  EXPECT_EQ(out, (std::vector<float>{3, 0, 0, 0, 1, 1.5f}));
}

TEST(NormThresholdReference, Polarities) {
  // Channels: polarity +1 thr 5 (x >= 5), -1 thr 5 (x <= 5), 0 thr 1 (always
  // 1), 0 thr 0 (always 0), +1 thr -3 with extreme inputs.
  const std::vector<int32_t> thr = {5, 5, 1, 0, -3};
  const std::vector<int8_t> pol = {1, -1, 0, 0, 1};
  const std::vector<int32_t> x = {4, 4, 4, 4, INT32_MIN,  //
                                  5, 5, 5, 5, -3,         //
                                  6, 6, 6, 6, INT32_MAX};
  std::vector<uint8_t> out(15, 7);
  NormThresholdReference(3, 5, x.data(), thr.data(), pol.data(), out.data());
  EXPECT_EQ(out, (std::vector<uint8_t>{0, 1, 1, 0, 0,  //
                                       1, 1, 1, 0, 1,  //
                                       1, 0, 1, 0, 1}));
}

TEST(HeavisideReference, ZeroIsZero) {
  const std::vector<int32_t> x = {-2, -1, 0, 1, 2, INT32_MIN, INT32_MAX};
  std::vector<uint8_t> out(x.size(), 7);
  HeavisideReference(int64_t(x.size()), x.data(), out.data());
  EXPECT_EQ(out, (std::vector<uint8_t>{0, 0, 0, 1, 1, 0, 1}));
}

// ------------------------------------------------------------ TGAP, MOR, GAP

// Bits of shape 1 x h x w x C where channel c has counts[c] ones (first ones).
std::vector<uint8_t> BitsWithCounts(int h, int w, const std::vector<int>& counts) {
  const int c = int(counts.size());
  std::vector<uint8_t> x(int64_t(h) * w * c, 0);
  for (int k = 0; k < c; ++k)
    for (int p = 0; p < counts[k]; ++p) x[int64_t(p) * c + k] = 1;
  return x;
}

TEST(TgapBitsReference, ThresholdIsStrictlyAboveHalfTheArea) {
  // Even area 8 (2 x 4): count 4 == area/2 -> 0; 5 -> 1.
  {
    const std::vector<int> counts = {0, 3, 4, 5, 8};
    const auto x = BitsWithCounts(2, 4, counts);
    std::vector<uint8_t> sel(5, 7);
    TgapBitsReference(Shape4{1, 2, 4, 5}, x.data(), sel.data());
    EXPECT_EQ(sel, (std::vector<uint8_t>{0, 0, 0, 1, 1}));
  }
  // The paper's 6 x 8 map: threshold 24 (Fig. 2).
  {
    const std::vector<int> counts = {24, 25, 23, 48};
    const auto x = BitsWithCounts(6, 8, counts);
    std::vector<uint8_t> sel(4, 7);
    TgapBitsReference(Shape4{1, 6, 8, 4}, x.data(), sel.data());
    EXPECT_EQ(sel, (std::vector<uint8_t>{0, 1, 0, 1}));
  }
  // Odd areas: 3 x 3 (4.5): 4 -> 0, 5 -> 1; 1 x 1: 0 -> 0, 1 -> 1; 1 x 3: 1 -> 0, 2 -> 1.
  {
    const std::vector<int> counts = {4, 5};
    const auto x = BitsWithCounts(3, 3, counts);
    std::vector<uint8_t> sel(2, 7);
    TgapBitsReference(Shape4{1, 3, 3, 2}, x.data(), sel.data());
    EXPECT_EQ(sel, (std::vector<uint8_t>{0, 1}));
  }
  {
    const std::vector<uint8_t> x = {0, 1};
    std::vector<uint8_t> sel(2, 7);
    TgapBitsReference(Shape4{1, 1, 1, 2}, x.data(), sel.data());
    EXPECT_EQ(sel, (std::vector<uint8_t>{0, 1}));
  }
  {
    const auto x = BitsWithCounts(1, 3, {1, 2});
    std::vector<uint8_t> sel(2, 7);
    TgapBitsReference(Shape4{1, 1, 3, 2}, x.data(), sel.data());
    EXPECT_EQ(sel, (std::vector<uint8_t>{0, 1}));
  }
  // Per time step: 2 frames of 2 x 2, counts (frame 0) 3, (frame 1) 2.
  {
    const std::vector<uint8_t> x = {1, 1, 1, 0, 0, 1, 1, 0};
    std::vector<uint8_t> sel(2, 7);
    TgapBitsReference(Shape4{2, 2, 2, 1}, x.data(), sel.data());
    EXPECT_EQ(sel, (std::vector<uint8_t>{1, 0}));
  }
}

TEST(TgapFloatReference, MIsTheMaximumApOverTheWholeTensor) {
  // 2 frames x 1 x 2 x 2 channels. AP: t0c0 = 1.0, t0c1 = 0.4, t1c0 = 0.6,
  // t1c1 = 0.5 (exactly 0.5 m: not selected). m = 1.
  const std::vector<float> x = {1, 0.8f, 1, 0,  // t0: (c0, c1) at p0, p1
                                0.2f, 0.25f, 1, 0.75f};
  std::vector<uint8_t> sel(4, 7);
  TgapFloatReference(Shape4{2, 1, 2, 2}, x.data(), sel.data());
  EXPECT_EQ(sel, (std::vector<uint8_t>{1, 0, 1, 0}));
  // A positive scale of the whole tensor changes nothing (m scales too).
  std::vector<float> x4;
  for (float v : x) x4.push_back(4 * v);
  TgapFloatReference(Shape4{2, 1, 2, 2}, x4.data(), sel.data());
  EXPECT_EQ(sel, (std::vector<uint8_t>{1, 0, 1, 0}));
  // m is over (t, c), not per time step: frame 0 has AP 0.3 and 0.2, frame 1
  // AP 2 and 0.9; m = 2, so nothing of frame 0 passes (per-frame max would
  // select t0c0).
  const std::vector<float> y = {0.3f, 0.2f, 2, 0.9f};  // 2 x 1 x 1 x 2
  TgapFloatReference(Shape4{2, 1, 1, 2}, y.data(), sel.data());
  EXPECT_EQ(sel, (std::vector<uint8_t>{0, 0, 1, 0}));
  // All zero: m = 0, and 0 > 0 is false.
  const std::vector<float> z(4, 0.f);
  TgapFloatReference(Shape4{2, 1, 1, 2}, z.data(), sel.data());
  EXPECT_EQ(sel, (std::vector<uint8_t>{0, 0, 0, 0}));
}

TEST(MuxOrBitsReference, TruthTable) {
  // 1 x 2 x 4 x 2. Every (x, I1) pair appears in both channels. Channel 0's
  // input has 2 ones of 8 (dominated by zeros): TGAP 0, out = x | I1 (Fig.
  // 2a). Channel 1's has 6 of 8 (dominated by ones): TGAP 1, out = I1 (2b).
  const Shape4 s{1, 2, 4, 2};
  const uint8_t x0[8] = {0, 0, 1, 1, 0, 0, 0, 0}, i0[8] = {0, 1, 0, 1, 0, 1, 0, 1};
  const uint8_t x1[8] = {0, 0, 1, 1, 1, 1, 1, 1}, i1v[8] = {0, 1, 0, 1, 0, 1, 1, 0};
  std::vector<uint8_t> x, i1;
  for (int p = 0; p < 8; ++p) {
    x.push_back(x0[p]), x.push_back(x1[p]);
    i1.push_back(i0[p]), i1.push_back(i1v[p]);
  }
  std::vector<uint8_t> sel(2, 7);
  TgapBitsReference(s, x.data(), sel.data());
  ASSERT_EQ(sel, (std::vector<uint8_t>{0, 1}));
  std::vector<uint8_t> out(16, 7);
  MuxOrBitsReference(s, x.data(), i1.data(), sel.data(), out.data());
  const uint8_t want0[8] = {0, 1, 1, 1, 0, 1, 0, 1};  // OR
  for (int p = 0; p < 8; ++p) {
    EXPECT_EQ(out[2 * p], want0[p]) << "p=" << p;
    EXPECT_EQ(out[2 * p + 1], i1v[p]) << "p=" << p;
  }
  // The select is per channel and per time step: flip them by hand.
  const std::vector<uint8_t> flipped = {1, 0};
  MuxOrBitsReference(s, x.data(), i1.data(), flipped.data(), out.data());
  for (int p = 0; p < 8; ++p) {
    EXPECT_EQ(out[2 * p], i0[p]) << "p=" << p;
    EXPECT_EQ(out[2 * p + 1], x1[p] | i1v[p]) << "p=" << p;
  }
}

TEST(MuxOrFloatReference, ClipsAtOne) {
  // 1 x 1 x 4 x 1, select 0: Clip(x + I1).
  const Shape4 s{1, 1, 4, 1};
  const std::vector<float> x = {0.7f, 0.25f, 0, 2}, i1 = {0.6f, 0.5f, 0, 3};
  std::vector<float> out(4, 99.f);
  const std::vector<uint8_t> zero = {0}, one = {1};
  MuxOrFloatReference(s, x.data(), i1.data(), zero.data(), out.data());
  EXPECT_EQ(out, (std::vector<float>{1, 0.75f, 0, 1}));
  MuxOrFloatReference(s, x.data(), i1.data(), one.data(), out.data());
  EXPECT_EQ(out, i1);  // select 1: I1 unclipped
  // The paper's Clip also saturates at -1 (not reachable after ReLU).
  const std::vector<float> xn = {-0.8f, -0.25f, 0, 0}, in = {-0.7f, -0.25f, 0, 0};
  MuxOrFloatReference(s, xn.data(), in.data(), zero.data(), out.data());
  EXPECT_EQ(out, (std::vector<float>{-1, -0.5f, 0, 0}));
}

TEST(GapReference, FloatMeansAndBitCounts) {
  // 2 frames x 2 x 2 x 2 channels.
  const Shape4 s{2, 2, 2, 2};
  const std::vector<float> x = {1, 0, 2, 0, 3, 0, 4, 1,  // t0: c0 = 1,2,3,4; c1 = 0,0,0,1
                                0, 1, 0, 1, 0, 1, 0, 1};  // t1: c0 = 0; c1 = 1
  std::vector<float> out(4, 99.f);
  GapFloatReference(s, x.data(), out.data());
  EXPECT_EQ(out, (std::vector<float>{2.5f, 0.25f, 0, 1}));
  const std::vector<uint8_t> b = {1, 0, 1, 0, 0, 0, 1, 1, 0, 1, 0, 1, 0, 1, 0, 1};
  std::vector<int32_t> cnt(4, 99);
  GapBitsReference(s, b.data(), cnt.data());
  EXPECT_EQ(cnt, (std::vector<int32_t>{3, 1, 0, 4}));
}

// ------------------------------------------------------------ dense, LSTM

TEST(DenseReference, FloatAndInt) {
  const std::vector<float> w = {1, 2, 3, -1, 0, 0.5f}, x = {1, 1, 2};
  std::vector<float> out(2, 99.f);
  DenseFloatReference(3, 2, w.data(), x.data(), out.data());
  EXPECT_EQ(out, (std::vector<float>{9, 0}));
  // Ternary weights on a ternary h.
  const std::vector<int8_t> wi = {1, -1, 0, 1, 0, 0, -1, -1, 1, 1, 1, 1}, h = {1, -1, 0, 1};
  std::vector<int32_t> oi(3, 99);
  DenseIntReference(4, 3, wi.data(), h.data(), oi.data());
  EXPECT_EQ(oi, (std::vector<int32_t>{3, -1, 1}));
}

double Sig(double z) { return 1.0 / (1.0 + std::exp(-z)); }

TEST(LstmStepFloatReference, OneUnitByHand) {
  // inputs 2, units 1; rows in gate order i, f, g, o.
  const std::vector<float> w_ih = {0.5f, -0.25f, 1, 0, -0.5f, 0.5f, 0.25f, 0.25f};
  const std::vector<float> w_hh = {0.25f, -0.25f, 0.75f, 0.125f};
  std::vector<float> h = {0.5f}, c = {-0.25f};
  const std::vector<float> x = {1, 2};
  LstmStepFloatReference(2, 1, w_ih.data(), w_hh.data(), x.data(), h.data(), c.data());
  // z_i = 0.5 - 0.5 + 0.125 = 0.125; z_f = 1 - 0.125 = 0.875;
  // z_g = -0.5 + 1 + 0.375 = 0.875; z_o = 0.25 + 0.5 + 0.0625 = 0.8125.
  const double c1 = Sig(0.875) * -0.25 + Sig(0.125) * std::tanh(0.875);
  const double h1 = Sig(0.8125) * std::tanh(c1);
  EXPECT_NEAR(c[0], c1, 1e-6);
  EXPECT_NEAR(h[0], h1, 1e-6);
  // Second step from the carried state, x = (0, -1).
  const std::vector<float> x2 = {0, -1};
  LstmStepFloatReference(2, 1, w_ih.data(), w_hh.data(), x2.data(), h.data(), c.data());
  const double zi = 0.25 + 0.25 * h1, zf = -0.25 * h1, zg = -0.5 + 0.75 * h1,
               zo = -0.25 + 0.125 * h1;
  const double c2 = Sig(zf) * c1 + Sig(zi) * std::tanh(zg);
  EXPECT_NEAR(c[0], c2, 1e-6);
  EXPECT_NEAR(h[0], Sig(zo) * std::tanh(c2), 1e-6);
}

// ------------------------------------------------------------ QLSTM

// The QLSTM of the paper, transcribed in floating point:
//   x_j = count_j / area;  SSign(w) = 3 / sqrt(ni + no) * Sign(w)  (eq. 9)
//   i = H(SSign(W^i).[x, h]), f = H(SSign(W^f).[x, h]), o = H(SSign(W^o).[x, h])
//   c~ = Sign(SSign(W^c).[x, h]) with Sign(0) = +1
//   c = Clip(f * c + i * c~) (eqs. 1, 7), h = o * c (eq. 8 without the tanh).
// Exactness: SSign(W).v = s * (Sign(W).v) with s > 0, and we form the dot
// product of the +-1 signs with v first. Every x_j is a multiple of 1/area and
// every h_k an integer, so the exact dot product is a multiple of 1/area; the
// double sum is within ~1e-12 of it, so rounding sum * area to the nearest
// integer recovers it exactly (for a power-of-two area the double sum is
// exact already, which the test checks). Multiplying by s > 0 then keeps its
// sign, zero included, so H and Sign see the exact pre-activation.
struct PaperQlstm {
  int ni, no, area;
  std::vector<double> w_ih, w_hh;  // Sign(W), +-1, rows i, f, c~, o
  std::vector<double> h, c;
  int zero_preactivations = 0;  // how many pre-activations were exactly 0

  double Preactivation(int row, const std::vector<int>& counts) {
    double dot = 0;
    for (int j = 0; j < ni; ++j) dot += w_ih[int64_t(row) * ni + j] * (double(counts[j]) / area);
    for (int k = 0; k < no; ++k) dot += w_hh[int64_t(row) * no + k] * h[k];
    const double scaled = dot * area;
    const double exact = std::nearbyint(scaled);
    EXPECT_NEAR(scaled, exact, 1e-6);
    if ((area & (area - 1)) == 0) {
      EXPECT_EQ(scaled, exact) << "power-of-two area must be exact";
    }
    if (exact == 0) ++zero_preactivations;
    const double s = 3.0 / std::sqrt(double(ni + no));
    return s * (exact / area);
  }
  static double H(double z) { return z > 0 ? 1 : 0; }
  static double Sign(double z) { return z >= 0 ? 1 : -1; }
  static double Clip(double y) { return std::max(-1.0, std::min(1.0, y)); }

  void Step(const std::vector<int>& counts) {
    std::vector<double> hn(no), cn(no);
    for (int k = 0; k < no; ++k) {
      const double i = H(Preactivation(k, counts));
      const double f = H(Preactivation(no + k, counts));
      const double ct = Sign(Preactivation(2 * no + k, counts));
      const double o = H(Preactivation(3 * no + k, counts));
      cn[k] = Clip(f * c[k] + i * ct);
      hn[k] = o * cn[k];
    }
    h = hn;
    c = cn;
  }
};

void CheckQlstmAgainstPaper(int ni, int no, int area, int steps, uint64_t seed,
                            int* zeros, int* carried) {
  SCOPED_TRACE("ni=" + std::to_string(ni) + " no=" + std::to_string(no) +
               " area=" + std::to_string(area) + " seed=" + std::to_string(seed));
  Rng rng(seed);
  PaperQlstm paper{ni, no, area, {}, {}, std::vector<double>(no, 0), std::vector<double>(no, 0)};
  std::vector<int8_t> w_ih(4 * int64_t(no) * ni), w_hh(4 * int64_t(no) * no);
  for (auto& w : w_ih) w = rng.Below(2) ? 1 : -1;
  for (auto& w : w_hh) w = rng.Below(2) ? 1 : -1;
  paper.w_ih.assign(w_ih.begin(), w_ih.end());
  paper.w_hh.assign(w_hh.begin(), w_hh.end());
  std::vector<int8_t> h(no, 0), c(no, 0);
  for (int t = 0; t < steps; ++t) {
    SCOPED_TRACE("step " + std::to_string(t));
    std::vector<int> counts(ni);
    std::vector<int32_t> x(ni);
    // Mostly uniform counts; sometimes all at the extremes.
    const int mode = int(rng.Below(4));
    for (int j = 0; j < ni; ++j) {
      counts[j] = mode == 0 ? int(rng.Below(2)) * area : int(rng.Below(area + 1));
      x[j] = counts[j];
    }
    // Would a zero state give a different step? (The carried state matters.)
    PaperQlstm fresh = paper;
    fresh.h.assign(no, 0);
    fresh.c.assign(no, 0);
    fresh.Step(counts);
    paper.Step(counts);
    QlstmStepReference(ni, no, area, w_ih.data(), w_hh.data(), x.data(), h.data(), c.data());
    bool differs = false;
    for (int k = 0; k < no; ++k) {
      ASSERT_TRUE(h[k] >= -1 && h[k] <= 1 && c[k] >= -1 && c[k] <= 1) << "state not ternary";
      ASSERT_EQ(double(h[k]), paper.h[k]) << "h unit " << k;
      ASSERT_EQ(double(c[k]), paper.c[k]) << "c unit " << k;
      differs |= fresh.h[k] != paper.h[k] || fresh.c[k] != paper.c[k];
    }
    *carried += differs;
  }
  *zeros += paper.zero_preactivations;
}

TEST(QlstmStepReference, MatchesPaperEquationsOnRandomInputs) {
  int zeros = 0, carried = 0;
  // Small sizes make exactly-zero pre-activations frequent.
  CheckQlstmAgainstPaper(3, 2, 4, 200, 1, &zeros, &carried);
  CheckQlstmAgainstPaper(4, 3, 2, 200, 2, &zeros, &carried);
  CheckQlstmAgainstPaper(5, 4, 3, 200, 3, &zeros, &carried);  // odd area
  // The tiny model's shape (32 -> 16, area 4) and BILLNET 2x (256 -> 128,
  // area 48 = 6 x 8).
  CheckQlstmAgainstPaper(32, 16, 4, 100, 4, &zeros, &carried);
  CheckQlstmAgainstPaper(256, 128, 48, 12, 5, &zeros, &carried);
  EXPECT_GT(zeros, 50) << "exact zeros (H(0) = 0, Sign(0) = +1) must be exercised";
  EXPECT_GT(carried, 50) << "the carried state must matter in many steps";
}

TEST(QlstmStepReference, ExactlyZeroPreactivations) {
  // ni = 2, one unit, area 4 (power of two: the float transcription is exact).
  // W_ih rows i, f, g, o; W_hh one column.
  struct Case {
    const char* what;
    int8_t w_ih[8], w_hh[4];
    int32_t counts[2];
    int8_t h0, c0;
    int8_t want_h, want_c;
  };
  const Case cases[] = {
      // All four pre-activations are 2/4 - 2/4 + 0 = 0: i = f = o = H(0) = 0,
      // c~ = Sign(0) = +1; f = 0 forgets c = 1: c = Clip(0 + 0 * 1) = 0, h = 0.
      {"all zero", {1, -1, 1, -1, 1, -1, 1, -1}, {1, 1, 1, 1}, {2, 2}, 0, 1, 0, 0},
      // i: 1/4 + 1/4 > 0 -> 1; f = H(1/4 - 1/4) = 0 drops c = -1;
      // c~ = Sign(0) = +1; o: 1/2 > 0 -> 1. c = 1, h = 1.
      {"candidate zero", {1, 1, 1, -1, 1, -1, 1, 1}, {1, 1, 1, 1}, {1, 1}, 0, -1, 1, 1},
      // Through the recurrent term: the x part is 1/4 + 3/4 = 1, h = -1.
      // i: W_hh -1: 1 + 1 > 0 -> 1; f, c~, o: W_hh +1: 1 - 1 = 0 -> f = 0,
      // c~ = +1, o = 0. c = Clip(0 * -1 + 1) = 1, h = 0.
      {"x and h cancel", {1, 1, 1, 1, 1, 1, 1, 1}, {-1, 1, 1, 1}, {1, 3}, -1, -1, 0, 1},
      // x part 1/4, h = -1. i, o (W_hh -1): 1/4 + 1 > 0 -> 1; f, c~ (W_hh +1):
      // 1/4 - 1 = -3/4 -> f = 0, c~ = -1. c = -1, h = -1. (A QLSTM that did not
      // scale W_hh h by the area would see 1 - 1 = 0 and c~ = +1.)
      {"area scaling", {1, 1, 1, 1, 1, 1, 1, 1}, {-1, 1, 1, -1}, {1, 0}, -1, 1, -1, -1},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(k.what);
    std::vector<int8_t> w_ih(k.w_ih, k.w_ih + 8), w_hh(k.w_hh, k.w_hh + 4);
    PaperQlstm paper{2, 1, 4, {}, {}, {double(k.h0)}, {double(k.c0)}};
    paper.w_ih.assign(w_ih.begin(), w_ih.end());
    paper.w_hh.assign(w_hh.begin(), w_hh.end());
    paper.Step({k.counts[0], k.counts[1]});
    int8_t h = k.h0, c = k.c0;
    QlstmStepReference(2, 1, 4, w_ih.data(), w_hh.data(), k.counts, &h, &c);
    EXPECT_EQ(h, k.want_h);
    EXPECT_EQ(c, k.want_c);
    EXPECT_EQ(paper.h[0], k.want_h);
    EXPECT_EQ(paper.c[0], k.want_c);
  }
}

}  // namespace
}  // namespace billnet
