#include "layer_kernels.h"

#include <algorithm>
#include <climits>
#include <cstdlib>

#include "kernels/fast/fast_kernels.h"
#include "kernels/reference.h"
#include "rng.h"

namespace billnet::bench {

std::vector<PlanConv> PlanConvs(const TopologyPlan& plan) {
  std::vector<PlanConv> out;
  for (const auto& b : plan.blocks)
    for (size_t i = 0; i < b.convs.size(); ++i) {
      const bool cf = b.kind != BlockKind::kStem;
      // The grouped conv's sums: fan-in x the first pointwise's |output| <= ci.
      const size_t g = i - (i % 3) + 1;
      const bool mid16 = cf && i % 3 != 0 && b.convs[g].fan_in() * b.convs[g - 1].ci <= INT16_MAX;
      PlanConv pc{&b.convs[i],
                  !cf          ? LayerRole::kIntRows
                  : i % 3 == 0 ? LayerRole::kPointwiseBinary
                  : i % 3 == 1 ? LayerRole::kIntRows
                               : LayerRole::kPointwiseInt32,
                  mid16};
      // The u8 forms, as fast_runner.cc's MakeFastConv picks them.
      if (!cf) {
        pc.u8 = TapsU8Fits(b.convs[i], 255);
      } else if (i % 3 != 2) {
        const int m = b.convs[g - 1].ci;
        pc.u8 = 2 * m <= 255 && TapsU8Fits(b.convs[g], 2 * m);
        pc.u8_offset = m;
        if (!pc.u8) {
          pc.pmax = std::min(255, m * 5 / 8);
          pc.u8 = pc.p_form = TapsU8PFormFlushRuns(b.convs[g], pc.pmax) > 0;
          pc.u8_offset = 0;
        }
      }
      out.push_back(pc);
    }
  return out;
}

LayerKernel::LayerKernel(const PlanConv& layer, bool fast, uint64_t seed, FastIsa isa)
    : c_(*layer.conv),
      role_(layer.role),
      fast_(fast),
      isa_(isa),
      int16_mid_(layer.int16_mid),
      u8_(layer.u8),
      u8_offset_(layer.u8_offset),
      p_form_(layer.p_form),
      pmax_(layer.pmax) {
  const ConvSpec& c = c_;
  Rng rng(seed);
  const int cig = c.ci / c.groups;
  // Inputs in the layer's range (DESIGN.md 2.1); +-1 weights.
  const int32_t range = role_ == LayerRole::kIntRows && c.ci == 3 ? 255 : c.ci * 2;
  w_.resize(c.weight_count());
  for (auto& v : w_) v = rng.Below(2) ? 1 : -1;
  in32_.resize(c.in.elements());
  in8_.resize(c.in.elements());
  for (size_t i = 0; i < in32_.size(); ++i) {
    in8_[i] = uint8_t(rng.Below(2));
    in32_[i] = role_ == LayerRole::kPointwiseInt32 ? int32_t(rng.Below(2001)) - 1000
                                                   : int32_t(rng.Below(2 * range + 1)) - range;
  }
  const bool avx2 = fast_ && UsesAvx2Kernels(isa_);
  const bool avx512 = fast_ && isa_ == FastIsa::kAvx512;
  out_.resize(c.out.elements());
  if (!fast_) {
    kernel_ = "Conv3dReference";
  } else if (role_ == LayerRole::kIntRows) {
    kernel_ = "ConvRowInt16Portable";
    const Shape4 ps = PaddedInputShape(c);
    padded_.assign(ps.elements(), 0);
    for (int t = 0; t < c.in.t; ++t)
      for (int y = 0; y < c.in.h; ++y)
        for (int x = 0; x < c.in.w; ++x)
          for (int k = 0; k < c.ci; ++k)
            padded_[((int64_t(t + c.pt) * ps.h + y + c.ph) * ps.w + x + c.pw) * c.ci + k] =
                int16_t(in32_[((int64_t(t) * c.in.h + y) * c.in.w + x) * c.ci + k]);
    const int k = c.kt * c.kh * c.kw * cig;
    kpad_ = ConvRowLength(k);
    rows_.assign(int64_t(c.co) * kpad_, 0);
    col_.assign(int64_t(c.groups) * kpad_, 0);
    for (int o = 0; o < c.co; ++o)
      for (int j = 0; j < k; ++j) rows_[int64_t(o) * kpad_ + j] = w_[int64_t(o) * k + j];
    if (avx2 && u8_) {
      // u8 input: the stem's pixels (v = 2x - 255) or v + m, the border as the runner has it.
      const bool stem = c.ci == 3 && role_ == LayerRole::kIntRows && !p_form_;
      const std::string u8_kernel = avx512 ? "ConvRowTapsU8Avx512" : "ConvRowTapsU8Avx2";
      kernel_ = int16_mid_ ? u8_kernel + "/int16" : u8_kernel;
      padded8_.assign(ps.elements() + kAvx2InputSlack, uint8_t(u8_offset_));
      for (int t = 0; t < c.in.t; ++t)
        for (int y = 0; y < c.in.h; ++y)
          for (int x = 0; x < c.in.w; ++x)
            for (int k = 0; k < c.ci; ++k) {
              const int32_t v = in32_[((int64_t(t) * c.in.h + y) * c.in.w + x) * c.ci + k];
              padded8_[((int64_t(t + c.pt) * ps.h + y + c.ph) * ps.w + x + c.pw) * c.ci + k] =
                  uint8_t(stem      ? (v + 255) / 2
                          : p_form_ ? std::abs(v) % (pmax_ + 1)
                                    : v + u8_offset_);
            }
      const int lanes = avx512 ? kAvx512Lanes : kAvx2Lanes;
      taps8_ = stem      ? PackTapsU8(c, w_.data(), 2, 255, 0, lanes)
               : p_form_ ? PackTapsU8PForm(c, w_.data(), pmax_, lanes)
                         : PackTapsU8(c, w_.data(), 1, u8_offset_, u8_offset_, lanes);
      if (p_form_) {
        kernel_ = u8_kernel + "/p";
        pplane_.assign(PPlaneShape(c).elements() + kAvx2InputSlack, 0);
        for (int64_t i = 0; i < PPlaneShape(c).elements(); ++i)
          pplane_[i] = int16_t(i % (c.ci + 1));
      }
      out16_.resize(c.out.elements());
    } else if (avx2) {
      kernel_ = int16_mid_ ? "ConvRowTapsAvx2/int16" : "ConvRowTapsAvx2";
      padded_.resize(padded_.size() + kAvx2InputSlack, 0);
      taps_ = PackTapsBlocked(c, w_.data());
      out16_.resize(c.out.elements());
    }
  } else if (role_ == LayerRole::kPointwiseBinary) {
    kernel_ = "PointwiseBinaryPortable";
    const int words = WordsFor(c.ci);
    bits_.assign(c.in.positions() * words, 0);
    wpos_.assign(int64_t(c.co) * words, 0);
    PackBitsPortable(c.in.positions(), c.ci, in8_.data(), bits_.data());
    for (int o = 0; o < c.co; ++o)
      for (int i = 0; i < c.ci; ++i)
        if (w_[int64_t(o) * c.ci + i] > 0)
          wpos_[int64_t(o) * words + i / 64] |= BitWord(1) << (i % 64);
    out16_.resize(c.out.elements());
    if (avx2) {
      const std::string pw = avx512 ? "PointwiseBinaryAvx512" : "PointwiseBinaryAvx2";
      kernel_ = p_form_ ? pw + "/p" : u8_ ? pw + "/u8" : pw;
      wpos_avx2_ = avx512 ? PackPointwiseBinaryAvx512(c.ci, c.co, w_.data())
                          : PackPointwiseBinaryAvx2(c.ci, c.co, w_.data());
      if (u8_) out8_.resize(c.out.elements());
      if (p_form_) pplane_.resize(c.out.positions());
    }
  } else if (avx2) {
    // As the runner: subset-sum tables, on int16 where the grouped conv
    // writes int16.
    if (int16_mid_) {
      in16_.assign(in32_.size() + kAvx2InputSlack, 0);
      for (size_t i = 0; i < in32_.size(); ++i) in16_[i] = int16_t(in32_[i]);
    }
    kernel_ = int16_mid_ ? "PointwiseInt16SubsetAvx2" : "PointwiseInt32SubsetAvx2";
    subsets_ = PackPointwiseSubsets(c.ci, c.co, w_.data());
    subset_scratch_.assign(PointwiseSubsetScratch(c.ci), 0);
  } else {
    kernel_ = "PointwiseInt32Portable";
    mask_.resize(w_.size());
    for (size_t i = 0; i < w_.size(); ++i) mask_[i] = w_[i] > 0 ? -1 : 0;
  }
}

void LayerKernel::Run() {
  const ConvSpec& c = c_;
  if (!fast_) {
    if (role_ == LayerRole::kPointwiseBinary)
      Conv3dReference(c, in8_.data(), w_.data(), out_.data());
    else
      Conv3dReference(c, in32_.data(), w_.data(), out_.data());
  } else if (role_ == LayerRole::kIntRows && UsesAvx2Kernels(isa_) && u8_) {
    const auto row = isa_ == FastIsa::kAvx512 ? &ConvRowTapsU8Avx512 : &ConvRowTapsU8Avx2;
    for (int t = 0; t < c.out.t; ++t)
      for (int y = 0; y < c.out.h; ++y) {
        const int64_t off = (int64_t(t) * c.out.h + y) * c.out.w * c.co;
        row(c, taps8_, padded8_.data(), p_form_ ? pplane_.data() : nullptr, t, y,
            int16_mid_ ? nullptr : out_.data() + off, int16_mid_ ? out16_.data() + off : nullptr);
      }
  } else if (role_ == LayerRole::kPointwiseBinary && UsesAvx2Kernels(isa_)) {
    const auto pw = isa_ == FastIsa::kAvx512 ? &PointwiseBinaryAvx512 : &PointwiseBinaryAvx2;
    pw(c.in.positions(), WordsFor(c.ci), bits_.data(), c.co, wpos_avx2_.data(),
       u8_ ? nullptr : out16_.data(), u8_ ? out8_.data() : nullptr, u8_offset_, c.co, p_form_,
       p_form_ ? pplane_.data() : nullptr, 1);
  } else if (role_ == LayerRole::kIntRows && UsesAvx2Kernels(isa_)) {
    for (int t = 0; t < c.out.t; ++t)
      for (int y = 0; y < c.out.h; ++y) {
        const int64_t off = (int64_t(t) * c.out.h + y) * c.out.w * c.co;
        ConvRowTapsAvx2(c, taps_, padded_.data(), t, y, int16_mid_ ? nullptr : out_.data() + off,
                        int16_mid_ ? out16_.data() + off : nullptr);
      }
  } else if (role_ == LayerRole::kIntRows) {
    for (int t = 0; t < c.out.t; ++t)
      for (int y = 0; y < c.out.h; ++y)
        ConvRowInt16Portable(c, padded_.data(), t, y, rows_.data(), kpad_, col_.data(),
                             out_.data() + (int64_t(t) * c.out.h + y) * c.out.w * c.co);
  } else if (role_ == LayerRole::kPointwiseBinary) {
    PointwiseBinaryPortable(c.in.positions(), WordsFor(c.ci), bits_.data(), c.co, wpos_.data(),
                            out16_.data(), c.co);
  } else if (!subset_scratch_.empty()) {
    // Row by row, as the runner calls it (a row's tail is a partial tile).
    for (int64_t r = 0; r < int64_t(c.in.t) * c.in.h; ++r) {
      const int64_t off = r * c.in.w;
      if (int16_mid_)
        PointwiseInt16SubsetAvx2(c.in.w, in16_.data() + off * c.ci, subsets_,
                                 subset_scratch_.data(), out_.data() + off * c.co);
      else
        PointwiseInt32SubsetAvx2(c.in.w, in32_.data() + off * c.ci, subsets_,
                                 subset_scratch_.data(), out_.data() + off * c.co);
    }
  } else {
    PointwiseInt32Portable(c.in.positions(), c.ci, in32_.data(), c.co, mask_.data(), out_.data());
  }
}

const void* LayerKernel::output() const {
  if (!out8_.empty() && UsesAvx2Kernels(isa_)) return out8_.data();
  const bool out16 =
      fast_ && (role_ == LayerRole::kPointwiseBinary ||
                (role_ == LayerRole::kIntRows && UsesAvx2Kernels(isa_) && int16_mid_));
  return out16 ? static_cast<const void*>(out16_.data()) : static_cast<const void*>(out_.data());
}

}  // namespace billnet::bench
