#include "fast_runner.h"

#include <algorithm>
#include <cassert>
#include <climits>
#include <cstring>
#include <string>
#include <utility>

#include "kernels/fast/fast_kernels.h"
#include "kernels/fast/fast_kernels_avx512.h"
#include "kernels/reference.h"
#include "prepared.h"

namespace billnet {

// ---------------------------------------------------------------- weights

namespace {

enum class ConvRole { kTaps, kPointwiseBinary, kPointwiseInt };

// max_in: the largest |input| of a taps conv (its out16 test).
// pmax (grouped convs): the most +1 weights in one row of the first
// pointwise before it, the largest p of the p form.
FastConv MakeFastConv(const ConvSpec& c, const std::vector<int8_t>& wi, ConvRole role,
                      int64_t max_in, bool stem, int pmax) {
  FastConv f;
  const int cig = c.ci / c.groups;
  const bool avx2 = FastIsaSupported(FastIsa::kAvx2);
  switch (role) {
    case ConvRole::kTaps: {
      const int k = c.kt * c.kh * c.kw * cig;
      f.kpad = ConvRowLength(k);
      f.rows.assign(int64_t(c.co) * f.kpad, 0);
      for (int o = 0; o < c.co; ++o)
        for (int j = 0; j < k; ++j) f.rows[int64_t(o) * f.kpad + j] = wi[int64_t(o) * k + j];
      f.out16 = int64_t(k) * max_in <= INT16_MAX;
      if (avx2) f.taps = PackTapsBlocked(c, wi.data());
      // u8 x s8 where the input maps onto u8 and int16 accumulation is exact:
      // the stem (u = pixel, v = 2u - 255, border u = 0) and grouped convs
      // with 2 ci <= 255 (u = v + ci, border u = ci).
      // The u8 form's v = scale u - shift, and u in the border.
      int scale = 1, shift = 0, border = 0;
      if (avx2 && stem && TapsU8Fits(c, 255)) {
        f.u8 = true;
        scale = 2, shift = 255, border = 0;
      } else if (avx2 && !stem && 2 * max_in <= 255 && TapsU8Fits(c, int(2 * max_in))) {
        f.u8 = true;
        f.u8_offset = shift = border = int(max_in);
      } else if (avx2 && !stem && pmax <= 255 && TapsU8PFormFlushRuns(c, pmax) > 0) {
        f.u8 = f.p_form = true;
      }
      auto pack_u8 = [&](int lanes) {
        return f.p_form ? PackTapsU8PForm(c, wi.data(), pmax, lanes)
                        : PackTapsU8(c, wi.data(), scale, shift, border, lanes);
      };
      if (f.u8) f.taps8 = pack_u8(kAvx2Lanes);
      // avx512: the same form on 16 lanes (VNNI accumulates in int32, so its
      // own limits are wider than the rules above; they choose for both).
      if (f.u8 && FastIsaSupported(FastIsa::kAvx512)) f.taps8_avx512 = pack_u8(kAvx512Lanes);
      break;
    }
    case ConvRole::kPointwiseBinary: {
      assert(c.groups == 1 && c.kt * c.kh * c.kw == 1);
      f.words = WordsFor(c.ci);
      f.wpos.assign(int64_t(c.co) * f.words, 0);
      for (int o = 0; o < c.co; ++o)
        for (int i = 0; i < c.ci; ++i)
          if (wi[int64_t(o) * c.ci + i] > 0)
            f.wpos[int64_t(o) * f.words + i / kBitsPerWord] |= BitWord(1) << (i % kBitsPerWord);
      if (avx2) f.wpos_avx2 = PackPointwiseBinaryAvx2(c.ci, c.co, wi.data());
      if (FastIsaSupported(FastIsa::kAvx512))
        f.wpos_avx512 = PackPointwiseBinaryAvx512(c.ci, c.co, wi.data());
      break;
    }
    case ConvRole::kPointwiseInt: {
      assert(c.groups == 1 && c.kt * c.kh * c.kw == 1);
      f.wpos_mask.resize(int64_t(c.co) * c.ci);
      for (int64_t i = 0; i < int64_t(c.co) * c.ci; ++i) f.wpos_mask[i] = wi[i] > 0 ? -1 : 0;
      if (avx2) f.pw_sets = PackPointwiseSubsets(c.ci, c.co, wi.data());
      break;
    }
  }
  return f;
}

// A u8 taps conv row in the variant's layout (avx2 or avx512).
void ConvRowTapsU8(FastIsa isa, const ConvSpec& c, const FastConv& f, const uint8_t* padded,
                   const int16_t* pplane, int t, int y, int32_t* out_row, int16_t* out16_row) {
  if (isa == FastIsa::kAvx512)
    Avx512Kernels().conv_u8(c, f.taps8_avx512, padded, pplane, t, y, out_row, out16_row);
  else
    ConvRowTapsU8Avx2(c, f.taps8, padded, pplane, t, y, out_row, out16_row);
}

// A first pointwise on bits in the variant's layout (avx2 or avx512), as
// PointwiseBinaryAvx2.
void PointwiseBinary(FastIsa isa, int64_t count, int words, const BitWord* a, int co,
                     const FastConv& f, int16_t* out16, uint8_t* out8, int offset,
                     int64_t out_stride, bool p_form = false, int16_t* pplane = nullptr,
                     int64_t pplane_stride = 1) {
  if (isa == FastIsa::kAvx512)
    Avx512Kernels().pointwise_binary(count, words, a, co, f.wpos_avx512.data(), out16, out8, offset,
                                     out_stride, p_form, pplane, pplane_stride);
  else
    PointwiseBinaryAvx2(count, words, a, co, f.wpos_avx2.data(), out16, out8, offset, out_stride,
                        p_form, pplane, pplane_stride);
}

// A second pointwise by subset-sum tables in the variant's width (avx2 or
// avx512), on the int16 rows of an out16 grouped conv or on int32 rows.
void PointwiseTables(FastIsa isa, int64_t count, const int16_t* x, const PointwiseSubsets& s,
                     int32_t* scratch, int32_t* out) {
  if (isa == FastIsa::kAvx512)
    Avx512Kernels().pointwise_int16(count, x, s, scratch, out);
  else
    PointwiseInt16SubsetAvx2(count, x, s, scratch, out);
}
void PointwiseTables(FastIsa isa, int64_t count, const int32_t* x, const PointwiseSubsets& s,
                     int32_t* scratch, int32_t* out) {
  if (isa == FastIsa::kAvx512)
    Avx512Kernels().pointwise_int32(count, x, s, scratch, out);
  else
    PointwiseInt32SubsetAvx2(count, x, s, scratch, out);
}

}  // namespace

FastNorm MakeFastNorm(int channels, const NormParams& p, Stage stage) {
  FastNorm f;
  f.lo.resize(channels);
  f.hi.resize(channels);
  for (int c = 0; c < channels; ++c) {
    int32_t lo = 1, hi = INT32_MAX;  // S4-S5: x > 0
    if (stage == Stage::kS3) {
      const int32_t t = p.threshold[c];
      if (p.polarity[c] > 0)
        lo = t, hi = INT32_MAX;
      else if (p.polarity[c] < 0)
        lo = INT32_MIN, hi = t;
      else if (t != 0)
        lo = INT32_MIN, hi = INT32_MAX;  // constant 1
      else
        lo = INT32_MAX, hi = INT32_MIN;  // constant 0: empty
    }
    f.lo[c] = lo;
    f.hi[c] = hi;
  }
  return f;
}

std::shared_ptr<const FastWeights> PrepareFastWeights(const TopologyPlan& plan, Stage stage,
                                                      const Model::Prepared& prep) {
  auto fw = std::make_shared<FastWeights>();
  for (size_t bi = 0; bi < plan.blocks.size(); ++bi) {
    const BlockSpec& b = plan.blocks[bi];
    std::vector<FastConv> convs;
    for (size_t i = 0; i < b.convs.size(); ++i) {
      const ConvRole role = b.kind == BlockKind::kStem ? ConvRole::kTaps
                            : i % 3 == 0               ? ConvRole::kPointwiseBinary
                            : i % 3 == 1               ? ConvRole::kTaps
                                                       : ConvRole::kPointwiseInt;
      // Stem: pixels v = 2x - 255; grouped conv: the first pointwise's [-ci, ci].
      const int64_t max_in = b.kind == BlockKind::kStem ? 255 : i % 3 == 1 ? b.convs[i - 1].ci : 0;
      int pmax = 0;
      if (b.kind != BlockKind::kStem && i % 3 == 1) {
        const ConvSpec& pw1 = b.convs[i - 1];
        const std::vector<int8_t>& w1 = prep.convs[bi][i - 1].wi;
        for (int o = 0; o < pw1.co; ++o)
          pmax = std::max<int>(pmax, int(std::count_if(w1.begin() + int64_t(o) * pw1.ci,
                                                       w1.begin() + int64_t(o + 1) * pw1.ci,
                                                       [](int8_t v) { return v > 0; })));
      }
      convs.push_back(MakeFastConv(b.convs[i], prep.convs[bi][i].wi, role, max_in,
                                   b.kind == BlockKind::kStem, pmax));
    }
    fw->convs.push_back(std::move(convs));
    std::vector<FastNorm> norms;
    for (size_t j = 0; j < b.norms.size(); ++j)
      norms.push_back(MakeFastNorm(b.norms[j].channels, *prep.norms[bi][j], stage));
    fw->norms.push_back(std::move(norms));
  }
  if (stage == Stage::kS5) {
    for (int8_t w : prep.lstm_ih_i) fw->lstm_ih_neg.push_back(w < 0 ? -1 : 0);
    for (int8_t w : prep.lstm_hh_i) fw->lstm_hh_neg.push_back(w < 0 ? -1 : 0);
  }
  return fw;
}

// ---------------------------------------------------------------- runner

namespace {

// Zeroes the padding border of a padded tensor (its interior is rewritten).
void ZeroBorder(const Shape4& ps, int pt, int ph, int pw, int16_t* buf) {
  const int64_t row = int64_t(ps.w) * ps.c, frame = ps.h * row;
  for (int t = 0; t < ps.t; ++t) {
    int16_t* f = buf + t * frame;
    if (t < pt || t >= ps.t - pt) {
      std::memset(f, 0, sizeof(int16_t) * frame);
      continue;
    }
    for (int y = 0; y < ps.h; ++y) {
      int16_t* r = f + y * row;
      if (y < ph || y >= ps.h - ph) {
        std::memset(r, 0, sizeof(int16_t) * row);
        continue;
      }
      std::memset(r, 0, sizeof(int16_t) * pw * ps.c);
      std::memset(r + row - int64_t(pw) * ps.c, 0, sizeof(int16_t) * pw * ps.c);
    }
  }
}

// Appends an integer tensor of shape s (zeros) and returns its index.
size_t PushTrace(std::vector<TracedTensor>* trace, const std::string& name, const Shape4& s) {
  TracedTensor t;
  t.name = name;
  t.shape = {s.t, s.h, s.w, s.c};
  t.is_integer = true;
  t.ints.assign(s.elements(), 0);
  trace->push_back(std::move(t));
  return trace->size() - 1;
}

void TraceBits(TracedTensor* t, int64_t offset, int64_t positions, int channels,
               const BitWord* bits) {
  const int nw = WordsFor(channels);
  for (int64_t p = 0; p < positions; ++p)
    for (int c = 0; c < channels; ++c)
      t->ints[offset + p * channels + c] =
          (bits[p * nw + c / kBitsPerWord] >> (c % kBitsPerWord)) & 1;
}

}  // namespace

struct FastRunner::TraceUnit {
  TracedTensor* pre = nullptr;   // pre-pool conv output
  TracedTensor* pool = nullptr;  // pooled
  TracedTensor* norm = nullptr;  // bits
};

FastRunner::FastRunner(const Model& model) : FastRunner(model, FastIsaFromEnvironment()) {}

FastRunner::FastRunner(const Model& model, FastIsa isa)
    : model_(model), fw_(*model.prepared().fast), isa_(isa) {
  assert(FastIsaSupported(isa));
  const TopologyPlan& plan = model.plan();
  int64_t col = 0, mid = 0, mid8 = 0, pplane = 0, grow = 0, rows = 0, pooled = 0, bits = 0,
          channels = 0, pw_tables = 0;
  for (size_t bi = 0; bi < plan.blocks.size(); ++bi) {
    const BlockSpec& b = plan.blocks[bi];
    const auto& fc = fw_.convs[bi];
    auto bits_of = [](const Shape4& s) { return s.positions() * WordsFor(s.c); };
    if (b.kind == BlockKind::kStem) {
      const ConvSpec& c = b.convs[0];
      // One padded input: u8 pixels where the stem runs on u8, else int16.
      if (UsesAvx2Kernels(isa) && fc[0].u8)
        stem_in8_.assign(PaddedInputShape(c).elements() + kAvx2InputSlack, 0);
      else
        stem_in_.assign(PaddedInputShape(c).elements() + kAvx2InputSlack, 0);
      col = std::max<int64_t>(col, int64_t(c.groups) * fc[0].kpad);
      rows = std::max<int64_t>(rows, int64_t(c.out.w) * c.co);
      pooled = std::max<int64_t>(pooled, int64_t(b.out.w) * b.out.c);
      bits = std::max(bits, bits_of(b.out));
    } else if (b.kind == BlockKind::kCf || b.kind == BlockKind::kMor) {
      for (size_t i = 0; i + 2 < b.convs.size(); i += 3) {
        const ConvSpec& gc = b.convs[i + 1];
        const ConvSpec& pw2 = b.convs[i + 2];
        col = std::max<int64_t>(col, int64_t(gc.groups) * fc[i + 1].kpad);
        mid = std::max(mid, PaddedInputShape(gc).elements());
        if (UsesAvx2Kernels(isa) && fc[i + 1].u8)
          mid8 = std::max(mid8, PaddedInputShape(gc).elements() + kAvx2InputSlack);
        if (UsesAvx2Kernels(isa) && fc[i + 1].p_form)
          pplane = std::max(pplane, PPlaneShape(gc).elements() + kAvx2InputSlack);
        grow = std::max<int64_t>(grow, int64_t(gc.out.w) * gc.co);
        rows = std::max<int64_t>(rows, int64_t(pw2.out.w) * pw2.co);
        if (UsesAvx2Kernels(isa)) pw_tables = std::max(pw_tables, PointwiseSubsetScratch(pw2.ci));
        bits = std::max(bits, bits_of(pw2.out));
      }
      pooled = std::max<int64_t>(pooled, int64_t(b.out.w) * b.out.c);
      bits = std::max(bits, bits_of(b.out));
      channels = std::max<int64_t>(channels, b.in.c);
    }
  }
  RowScratch rs;
  rs.col.assign(col, 0);
  rs.gconv_row.assign(grow, 0);
  if (UsesAvx2Kernels(isa_)) rs.gconv_row16.assign(grow + kAvx2InputSlack, 0);
  rs.rows.assign(2 * rows, 0);
  rs.pw_tables.assign(pw_tables, 0);
  rs.pooled.assign(pooled, 0);
  rs.counts.assign(channels, 0);
  rs.select.assign(WordsFor(int(channels)) + 1, 0);
  slots_.push_back(std::move(rs));
  mid_.assign(mid + kAvx2InputSlack, 0);
  mid8_.assign(mid8, 0);
  pplane_.assign(pplane, 0);
  for (auto& b : bits_) b.assign(bits, 0);
  gap_.assign(int64_t(plan.steps) * plan.gap_channels, 0);
  const int u = plan.config.lstm_units;
  h32_.assign(u, 0);
  c32_.assign(u, 0);
  z32_.assign(4 * int64_t(u), 0);
  xf_.assign(plan.gap_channels, 0.f);
  zf_.assign(4 * int64_t(u), 0.f);
}

void FastRunner::ReserveSlots(int slots) {
  if (slots_.size() < size_t(slots)) slots_.resize(size_t(slots), slots_[0]);
}

void FastRunnerPool::Borrow(FastIsa isa, int slots, FastRunner** out, int n) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const std::thread::id self = std::this_thread::get_id();
    for (int k = 0; k < n; ++k) {
      // This thread's last runner of the variant, else the newest idle one.
      size_t pick = idle_.size();
      for (size_t j = idle_.size(); j-- > 0;) {
        if (idle_[j].runner->isa() != isa) continue;
        if (pick == idle_.size()) pick = j;
        if (idle_[j].last == self) {
          pick = j;
          break;
        }
      }
      if (pick < idle_.size()) {
        out[k] = idle_[pick].runner;
        idle_.erase(idle_.begin() + std::ptrdiff_t(pick));
        continue;
      }
      all_.push_back(std::make_unique<FastRunner>(model_, isa));
      idle_.reserve(all_.size());
      out[k] = all_.back().get();
    }
  }
  for (int k = 0; k < n; ++k) out[k]->ReserveSlots(slots);
}

void FastRunnerPool::GiveBack(FastRunner* const* runners, int n) {
  const std::thread::id self = std::this_thread::get_id();
  std::lock_guard<std::mutex> lock(mu_);
  for (int k = 0; k < n; ++k) idle_.push_back({runners[k], self});
}

int FastRunnerPool::runners() const {
  std::lock_guard<std::mutex> lock(mu_);
  return int(all_.size());
}

size_t FastRunnerPool::scratch_bytes() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& r : all_) n += r->scratch_bytes();
  return n;
}

size_t FastRunner::scratch_bytes() const {
  size_t n = stem_in8_.size() + mid8_.size() +
             2 * (stem_in_.size() + mid_.size() + pplane_.size()) +
             4 * (gap_.size() + h32_.size() + c32_.size() + z32_.size() + xf_.size() + zf_.size());
  for (const auto& b : bits_) n += 8 * b.size();
  for (const RowScratch& r : slots_)
    n += 2 * (r.col.size() + r.gconv_row16.size()) +
         4 * (r.gconv_row.size() + r.rows.size() + r.pooled.size() + r.counts.size() +
              r.pw_tables.size()) +
         8 * r.select.size();
  return n;
}

template <typename Fn>
void FastRunner::For(int64_t n, Fn&& fn) {
  if (pool_) {
    pool_->ParallelFor(n, fn);
  } else {
    for (int64_t i = 0; i < n; ++i) fn(i, 0);
  }
}

template <typename RowFn>
void FastRunner::Unit(const Shape4& pre, const Shape4& post, bool pool, const FastNorm& norm,
                      RowFn&& fill_row, BitWord* out, TraceUnit* tu) {
  const int co = pre.c, words = WordsFor(co);
  auto trace_row = [](TracedTensor* tt, const Shape4& s, int t, int y, const int32_t* row) {
    if (!tt) return;
    const int64_t off = ((int64_t(t) * s.h + y) * s.w) * s.c;
    std::copy(row, row + int64_t(s.w) * s.c, tt->ints.begin() + off);
  };
  // Every output row is independent: rows go to threads in any order.
  For(int64_t(post.t) * post.h, [&](int64_t i, int slot) {
    const int t = int(i / post.h), y = int(i % post.h);
    RowScratch& rs = slots_[slot];
    int32_t* r0 = rs.rows.data();
    int32_t* r1 = r0 + int64_t(pre.w) * co;
    const int32_t* src = r0;
    if (pool) {
      fill_row(t, 2 * y, r0, rs);
      fill_row(t, 2 * y + 1, r1, rs);
      trace_row(tu->pre, pre, t, 2 * y, r0);
      trace_row(tu->pre, pre, t, 2 * y + 1, r1);
      MaxPoolRowInt32Portable(pre.w, co, r0, r1, rs.pooled.data());
      trace_row(tu->pool, post, t, y, rs.pooled.data());
      src = rs.pooled.data();
    } else {
      fill_row(t, y, r0, rs);
      trace_row(tu->pre, pre, t, y, r0);
    }
    BitWord* ob = out + ((int64_t(t) * post.h + y) * post.w) * words;
    if (UsesAvx2Kernels(isa_))
      ThresholdPackAvx2(post.w, co, src, norm.lo.data(), norm.hi.data(), ob);
    else
      ThresholdPackPortable(post.w, co, src, norm.lo.data(), norm.hi.data(), ob);
    if (tu->norm) TraceBits(tu->norm, ((int64_t(t) * post.h + y) * post.w) * co, post.w, co, ob);
  });
  // Floor pooling drops an odd last row; the trace still shows it.
  if (pool && tu->pre && pre.h % 2)
    for (int t = 0; t < post.t; ++t) {
      fill_row(t, pre.h - 1, slots_[0].rows.data(), slots_[0]);
      trace_row(tu->pre, pre, t, pre.h - 1, slots_[0].rows.data());
    }
}

void FastRunner::Cf(const BlockSpec& b, int first, const std::vector<FastConv>& fc,
                    const FastNorm& norm, const BitWord* in, const Shape4& post, bool pool,
                    const std::string& norm_name, BitWord* out, std::vector<TracedTensor>* trace) {
  const ConvSpec& pw1 = b.convs[first];
  const ConvSpec& gc = b.convs[first + 1];
  const ConvSpec& pw2 = b.convs[first + 2];
  const FastConv& f1 = fc[first];
  const FastConv& fg = fc[first + 1];
  const FastConv& f2 = fc[first + 2];
  const int cm = pw1.co, wi = WordsFor(pw1.ci);

  // pw1 (bits -> int16 in [-ci, ci], or u8 v + ci for a u8 grouped conv)
  // straight into the padded gconv input.
  const bool avx2 = UsesAvx2Kernels(isa_), g8 = avx2 && fg.u8;
  const Shape4 ps = PaddedInputShape(gc);
  int16_t* mid = mid_.data();
  uint8_t* mid8 = mid8_.data();
  const Shape4& s1 = pw1.out;
  auto mid_at = [&](int t, int y, int x) {
    return ((int64_t(t + gc.pt) * ps.h + y + gc.ph) * ps.w + x + gc.pw) * cm;
  };
  int16_t* pplane = pplane_.data();
  const Shape4 pps = PPlaneShape(gc);
  auto pplane_at = [&](int t, int y, int x) {
    return (int64_t(t + gc.pt) * pps.h + y + gc.ph) * pps.w + x + gc.pw;
  };
  if (g8 && fg.p_form) {
    // p and P, 0 in the border (v = 2p - P = 0); the interiors are rewritten.
    std::memset(mid8, 0, ps.elements());
    std::memset(pplane, 0, sizeof(int16_t) * pps.elements());
    For(int64_t(s1.t) * s1.h, [&](int64_t i, int) {
      const int t = int(i / s1.h), y = int(i % s1.h);
      PointwiseBinary(isa_, s1.w, wi, in + i * s1.w * wi, cm, f1, nullptr, mid8 + mid_at(t, y, 0),
                      0, cm, true, pplane + pplane_at(t, y, 0), 1);
    });
  } else if (g8) {
    // The border holds u = offset (v = 0); the interior is rewritten.
    std::memset(mid8, fg.u8_offset, ps.elements());
    For(int64_t(s1.t) * s1.h, [&](int64_t i, int) {
      const int t = int(i / s1.h), y = int(i % s1.h);
      PointwiseBinary(isa_, s1.w, wi, in + i * s1.w * wi, cm, f1, nullptr, mid8 + mid_at(t, y, 0),
                      fg.u8_offset, cm);
    });
  } else {
    ZeroBorder(ps, gc.pt, gc.ph, gc.pw, mid);
    For(int64_t(s1.t) * s1.h, [&](int64_t i, int) {
      const int t = int(i / s1.h), y = int(i % s1.h);
      const BitWord* a = in + i * s1.w * wi;
      if (avx2)
        PointwiseBinary(isa_, s1.w, wi, a, cm, f1, mid + mid_at(t, y, 0), nullptr, 0, cm);
      else
        PointwiseBinaryPortable(s1.w, wi, a, cm, f1.wpos.data(), mid + mid_at(t, y, 0), cm);
    });
  }

  TraceUnit tu;
  TracedTensor* gtr = nullptr;
  if (trace) {
    const size_t i1 = PushTrace(trace, pw1.name, s1), ig = PushTrace(trace, gc.name, gc.out),
                 i2 = PushTrace(trace, pw2.name, pw2.out),
                 ip = pool ? PushTrace(trace, b.name + ".pool", post) : 0,
                 inorm = PushTrace(trace, norm_name, post);
    TracedTensor& t1 = (*trace)[i1];
    for (int t = 0; t < s1.t; ++t)
      for (int y = 0; y < s1.h; ++y)
        for (int x = 0; x < s1.w; ++x)
          for (int c = 0; c < cm; ++c)
            t1.ints[((int64_t(t) * s1.h + y) * s1.w + x) * cm + c] =
                g8 && fg.p_form ? 2 * int(mid8[mid_at(t, y, x) + c]) - pplane[pplane_at(t, y, x)]
                : g8            ? int(mid8[mid_at(t, y, x) + c]) - fg.u8_offset
                                : mid[mid_at(t, y, x) + c];
    gtr = &(*trace)[ig];
    tu.pre = &(*trace)[i2];
    tu.pool = pool ? &(*trace)[ip] : nullptr;
    tu.norm = &(*trace)[inorm];
  }

  // Row by row: gconv row -> pw2 row -> [pool] -> norm -> bits.
  const bool g16 = avx2 && fg.out16;
  auto fill_row = [&](int t, int y, int32_t* row, RowScratch& rs) {
    int32_t* g32 = rs.gconv_row.data();
    int16_t* g16row = rs.gconv_row16.data();
    if (g8)
      ConvRowTapsU8(isa_, gc, fg, mid8, fg.p_form ? pplane : nullptr, t, y, g16 ? nullptr : g32,
                    g16 ? g16row : nullptr);
    else if (g16)
      ConvRowTapsAvx2(gc, fg.taps, mid, t, y, nullptr, g16row);
    else if (avx2)
      ConvRowTapsAvx2(gc, fg.taps, mid, t, y, g32, nullptr);
    else
      ConvRowInt16Portable(gc, mid, t, y, fg.rows.data(), fg.kpad, rs.col.data(), g32);
    if (gtr) {
      const int64_t off = ((int64_t(t) * gc.out.h + y) * gc.out.w) * gc.co;
      const int64_t n = int64_t(gc.out.w) * gc.co;
      if (g16)
        std::copy(g16row, g16row + n, gtr->ints.begin() + off);
      else
        std::copy(g32, g32 + n, gtr->ints.begin() + off);
    }
    if (g16)
      PointwiseTables(isa_, gc.out.w, g16row, f2.pw_sets, rs.pw_tables.data(), row);
    else if (avx2)
      PointwiseTables(isa_, gc.out.w, g32, f2.pw_sets, rs.pw_tables.data(), row);
    else
      PointwiseInt32Portable(gc.out.w, cm, g32, pw2.co, f2.wpos_mask.data(), row);
  };
  Unit(pw2.out, post, pool, norm, fill_row, out, &tu);
}

void FastRunner::Run(const uint8_t* rgb, std::vector<float>& h, std::vector<float>& c,
                     Response* out, std::vector<TracedTensor>* trace, ThreadPool* pool) {
  pool_ = trace || (pool && pool->helpers() == 0) ? nullptr : pool;
  if (pool_) ReserveSlots(pool_->slots());
  const Model& m = model_;
  const TopologyPlan& plan = m.plan();
  const Model::Prepared& prep = m.prepared();
  const Stage stage = m.stage();
  const int steps = plan.steps, ni = plan.gap_channels, u = plan.config.lstm_units,
            k = plan.config.classes, area = plan.gap_area;

  if (trace) {
    const Shape4 in_shape{plan.config.frames, plan.config.height, plan.config.width, 3};
    const size_t i = PushTrace(trace, "input", in_shape);
    for (int64_t j = 0; j < in_shape.elements(); ++j) (*trace)[i].ints[j] = 2 * int(rgb[j]) - 255;
  }

  BitWord* cur = bits_[0].data();
  BitWord* a = bits_[1].data();
  BitWord* nxt = bits_[2].data();
  for (size_t bi = 0; bi < plan.blocks.size(); ++bi) {
    const BlockSpec& b = plan.blocks[bi];
    const auto& fc = fw_.convs[bi];
    const auto& fn = fw_.norms[bi];
    switch (b.kind) {
      case BlockKind::kStem: {
        const ConvSpec& sc = b.convs[0];
        const bool s8 = UsesAvx2Kernels(isa_) && fc[0].u8;
        if (s8)
          StemInputU8Portable(sc, rgb, stem_in8_.data());
        else
          StemInputInt16Portable(sc, rgb, stem_in_.data());
        TraceUnit tu;
        if (trace) {
          const size_t ic = PushTrace(trace, sc.name, sc.out),
                       ip = PushTrace(trace, b.name + ".pool", b.out),
                       in = PushTrace(trace, b.norms[0].name, b.out);
          tu.pre = &(*trace)[ic];
          tu.pool = &(*trace)[ip];
          tu.norm = &(*trace)[in];
        }
        auto fill_row = [&](int t, int y, int32_t* row, RowScratch& rs) {
          if (s8)
            ConvRowTapsU8(isa_, sc, fc[0], stem_in8_.data(), nullptr, t, y, row, nullptr);
          else if (UsesAvx2Kernels(isa_))
            ConvRowTapsAvx2(sc, fc[0].taps, stem_in_.data(), t, y, row, nullptr);
          else
            ConvRowInt16Portable(sc, stem_in_.data(), t, y, fc[0].rows.data(), fc[0].kpad,
                                 rs.col.data(), row);
        };
        Unit(sc.out, b.out, b.pool, fn[0], fill_row, cur, &tu);
        break;
      }
      case BlockKind::kCf:
        Cf(b, 0, fc, fn[0], cur, b.out, b.pool, b.norms[0].name, nxt, trace);
        std::swap(cur, nxt);
        break;
      case BlockKind::kMor: {
        Cf(b, 0, fc, fn[0], cur, b.norms[0].at, false, b.norms[0].name, a, trace);
        Cf(b, 3, fc, fn[1], a, b.norms[1].at, false, b.norms[1].name, nxt, trace);
        const Shape4& s = b.in;
        const int words = WordsFor(s.c), sa = s.h * s.w;
        TracedTensor* sel_tr = nullptr;
        if (trace) sel_tr = &(*trace)[PushTrace(trace, b.name + ".select", Shape4{s.t, 1, 1, s.c})];
        For(s.t, [&](int64_t t, int slot) {
          int32_t* counts = slots_[slot].counts.data();
          BitWord* select = slots_[slot].select.data();
          const int64_t off = t * sa * words;
          if (UsesAvx2Kernels(isa_))
            CountBitsAvx2(sa, s.c, cur + off, counts);
          else
            CountBitsPortable(sa, s.c, cur + off, counts);
          TgapSelectPortable(s.c, sa, counts, select);
          if (sel_tr)
            for (int ch = 0; ch < s.c; ++ch)
              sel_tr->ints[t * s.c + ch] = 2 * int64_t(counts[ch]) > sa;
          MuxOrBitsPortable(sa, words, cur + off, nxt + off, select, nxt + off);
        });
        if (trace) {
          TracedTensor* mt = &(*trace)[PushTrace(trace, b.name, b.out)];
          TraceBits(mt, 0, b.out.positions(), b.out.c, nxt);
        }
        std::swap(cur, nxt);
        break;
      }
      case BlockKind::kGap: {
        const Shape4& s = b.in;
        const int words = WordsFor(s.c), sa = s.h * s.w;
        For(s.t, [&](int64_t t, int) {
          if (UsesAvx2Kernels(isa_))
            CountBitsAvx2(sa, s.c, cur + t * sa * words, gap_.data() + t * s.c);
          else
            CountBitsPortable(sa, s.c, cur + t * sa * words, gap_.data() + t * s.c);
        });
        if (trace) {
          TracedTensor* gt = &(*trace)[PushTrace(trace, "gap", b.out)];
          std::copy(gap_.begin(), gap_.end(), gt->ints.begin());
        }
        break;
      }
      case BlockKind::kLstm:
      case BlockKind::kDense:
        break;
    }
  }

  Response& r = *out;
  r.steps = steps;
  r.classes = k;
  r.scores.resize(int64_t(steps) * k);
  if (stage == Stage::kS5) {
    r.scores_are_integers = true;
    r.integer_scores.resize(r.scores.size());
    for (int j = 0; j < u; ++j) h32_[j] = int32_t(h[j]), c32_[j] = int32_t(c[j]);
    for (int t = 0; t < steps; ++t) {
      QlstmStepPortable(ni, u, area, fw_.lstm_ih_neg.data(), fw_.lstm_hh_neg.data(),
                        gap_.data() + int64_t(t) * ni, h32_.data(), c32_.data(), z32_.data());
      if (trace) {
        const Shape4 hs{1, 1, 1, u};
        const size_t ih = PushTrace(trace, "lstm.h." + std::to_string(t), hs);
        std::copy(h32_.begin(), h32_.end(), (*trace)[ih].ints.begin());
        const size_t ic = PushTrace(trace, "lstm.c." + std::to_string(t), hs);
        std::copy(c32_.begin(), c32_.end(), (*trace)[ic].ints.begin());
      }
      DenseTernaryPortable(u, k, prep.dense_i.data(), h32_.data(),
                           r.integer_scores.data() + int64_t(t) * k);
    }
    for (size_t i = 0; i < r.scores.size(); ++i) r.scores[i] = float(r.integer_scores[i]);
    for (int j = 0; j < u; ++j) h[j] = float(h32_[j]), c[j] = float(c32_[j]);
  } else {
    r.scores_are_integers = false;
    r.integer_scores.clear();
    for (int t = 0; t < steps; ++t) {
      for (int j = 0; j < ni; ++j) xf_[j] = float(gap_[int64_t(t) * ni + j]) / float(area);
      LstmStepFloatPortable(ni, u, prep.lstm_ih_f.data(), prep.lstm_hh_f.data(), xf_.data(),
                            h.data(), c.data(), zf_.data());
      DenseFloatReference(u, k, prep.dense_f.data(), h.data(), r.scores.data() + int64_t(t) * k);
    }
  }
  if (trace) {
    TracedTensor t;
    t.name = "scores";
    t.shape = {steps, 1, 1, k};
    t.floats.assign(r.scores.begin(), r.scores.end());
    trace->push_back(std::move(t));
  }
  ComputeProbabilities(m.info().temperature, &r);
}

}  // namespace billnet
