#include "kernels/fast/fast_kernels.h"

#include <algorithm>
#include <bit>
#include <cassert>
#include <climits>
#include <cmath>
#include <cstring>

#include "kernels/fast/bitpack.h"
#include "kernels/fast/fast_kernels_avx2.h"
#include "kernels/fast/fast_kernels_avx512.h"

// Integer kernels get one clone per x86-64 level; the dynamic loader picks the
// best one for the CPU once (GCC ifunc). Elsewhere: the portable build only.
#if defined(BILLNET_FAST_CLONES) && defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define BILLNET_INT_KERNEL \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "arch=x86-64-v2", "default")))
#else
#define BILLNET_INT_KERNEL
#endif

namespace billnet {

// ------------------------------------------------------------------ packing

void PackBitsPortable(int64_t positions, int channels, const uint8_t* __restrict bytes,
                      BitWord* __restrict words) {
  const int nw = WordsFor(channels);
  for (int64_t p = 0; p < positions; ++p) {
    const uint8_t* b = bytes + p * channels;
    BitWord* w = words + p * nw;
    for (int k = 0; k < nw; ++k) {
      BitWord word = 0;
      const int n = std::min(kBitsPerWord, channels - k * kBitsPerWord);
      for (int j = 0; j < n; ++j) word |= BitWord(b[k * kBitsPerWord + j] != 0) << j;
      w[k] = word;
    }
  }
}

void UnpackBitsPortable(int64_t positions, int channels, const BitWord* __restrict words,
                        uint8_t* __restrict bytes) {
  const int nw = WordsFor(channels);
  for (int64_t p = 0; p < positions; ++p)
    for (int c = 0; c < channels; ++c)
      bytes[p * channels + c] =
          uint8_t((words[p * nw + c / kBitsPerWord] >> (c % kBitsPerWord)) & 1);
}

// ------------------------------------------------------------------ convolutions

void StemInputInt16Portable(const ConvSpec& stem, const uint8_t* __restrict rgb,
                            int16_t* __restrict padded) {
  const Shape4 ps = PaddedInputShape(stem);
  const int row = stem.in.w * stem.ci;
  for (int t = 0; t < stem.in.t; ++t)
    for (int y = 0; y < stem.in.h; ++y) {
      const uint8_t* src = rgb + (int64_t(t) * stem.in.h + y) * row;
      int16_t* dst = padded + ((int64_t(t + stem.pt) * ps.h + y + stem.ph) * ps.w + stem.pw) * ps.c;
      for (int i = 0; i < row; ++i) dst[i] = int16_t(2 * int(src[i]) - 255);
    }
}

void StemInputU8Portable(const ConvSpec& stem, const uint8_t* __restrict rgb,
                         uint8_t* __restrict padded) {
  const Shape4 ps = PaddedInputShape(stem);
  const int row = stem.in.w * stem.ci;
  for (int t = 0; t < stem.in.t; ++t)
    for (int y = 0; y < stem.in.h; ++y)
      std::memcpy(padded + ((int64_t(t + stem.pt) * ps.h + y + stem.ph) * ps.w + stem.pw) * ps.c,
                  rgb + (int64_t(t) * stem.in.h + y) * row, row);
}

namespace {

// int16 x int16 -> int32 dot product (PMADDWD / VPDPWSSD shaped).
inline int32_t DotInt16(const int16_t* __restrict a, const int16_t* __restrict b, int n) {
  int32_t s = 0;
  for (int i = 0; i < n; ++i) s += int32_t(a[i]) * int32_t(b[i]);
  return s;
}

}  // namespace

BILLNET_INT_KERNEL
void ConvRowInt16Portable(const ConvSpec& c, const int16_t* __restrict padded, int t, int y,
                          const int16_t* __restrict w, int kpad, int16_t* __restrict col,
                          int32_t* __restrict out_row) {
  const Shape4 ps = PaddedInputShape(c);
  const int cig = c.ci / c.groups, cog = c.co / c.groups;
  const int64_t row_stride = int64_t(ps.w) * c.ci;
  const int64_t frame_stride = int64_t(ps.h) * row_stride;
  const int run = c.kw * c.ci;  // groups == 1: one contiguous run per (kt, ky)
  for (int x = 0; x < c.out.w; ++x) {
    const int16_t* base = padded + int64_t(t) * c.st * frame_stride +
                          int64_t(y) * c.sh * row_stride + int64_t(x) * c.sw * c.ci;
    // im2col: col[g][kt][kh][kw][cig], the weight rows' order.
    for (int g = 0; g < c.groups; ++g) {
      int16_t* dst = col + int64_t(g) * kpad;
      for (int kt = 0; kt < c.kt; ++kt)
        for (int ky = 0; ky < c.kh; ++ky) {
          const int16_t* src = base + kt * frame_stride + ky * row_stride + g * cig;
          if (c.groups == 1) {
            std::memcpy(dst, src, sizeof(int16_t) * run);
            dst += run;
          } else {
            for (int kx = 0; kx < c.kw; ++kx, dst += cig)
              std::memcpy(dst, src + int64_t(kx) * c.ci, sizeof(int16_t) * cig);
          }
        }
      // Whatever sits in col past the taps meets zero weights.
    }
    int32_t* o = out_row + int64_t(x) * c.co;
    for (int oc = 0; oc < c.co; ++oc)
      o[oc] = DotInt16(col + int64_t(oc / cog) * kpad, w + int64_t(oc) * kpad, kpad);
  }
}

BILLNET_INT_KERNEL
void PointwiseBinaryPortable(int64_t count, int words, const BitWord* __restrict a, int co,
                             const BitWord* __restrict wpos, int16_t* __restrict out,
                             int64_t out_stride) {
  for (int64_t p = 0; p < count; ++p) {
    const BitWord* ap = a + p * words;
    int total = 0;
    for (int k = 0; k < words; ++k) total += std::popcount(ap[k]);
    int16_t* op = out + p * out_stride;
    if (words == 1) {
      const BitWord a0 = ap[0];
      for (int o = 0; o < co; ++o) op[o] = int16_t(2 * std::popcount(a0 & wpos[o]) - total);
    } else {
      for (int o = 0; o < co; ++o) {
        const BitWord* wp = wpos + int64_t(o) * words;
        int s = 0;
        for (int k = 0; k < words; ++k) s += std::popcount(ap[k] & wp[k]);
        op[o] = int16_t(2 * s - total);
      }
    }
  }
}

BILLNET_INT_KERNEL
void PointwiseInt32Portable(int64_t count, int ci, const int32_t* __restrict x, int co,
                            const int32_t* __restrict wpos_mask, int32_t* __restrict out) {
  for (int64_t p = 0; p < count; ++p) {
    const int32_t* xp = x + p * ci;
    uint32_t total = 0;
    for (int c = 0; c < ci; ++c) total += uint32_t(xp[c]);
    int32_t* op = out + p * co;
    for (int o = 0; o < co; ++o) {
      const int32_t* m = wpos_mask + int64_t(o) * ci;
      uint32_t s = 0;
      for (int c = 0; c < ci; ++c) s += uint32_t(xp[c] & m[c]);
      op[o] = int32_t(2u * s - total);
    }
  }
}

// ------------------------------------------------------------------ AVX2 layouts
// Portable C++: built once at load (fast_kernels_avx2.h has the layouts).

namespace {

// Where each run of a taps layout starts in the padded input: one run per
// (kt, ky) when a run spans whole rows of every channel (row_runs), else one
// per (kt, ky, kx).
std::vector<int32_t> TapRunOffsets(const ConvSpec& c, bool row_runs) {
  std::vector<int32_t> off;
  const Shape4 ps = PaddedInputShape(c);
  const int64_t row = int64_t(ps.w) * c.ci, frame = ps.h * row;
  for (int kt = 0; kt < c.kt; ++kt)
    for (int ky = 0; ky < c.kh; ++ky) {
      if (row_runs) {
        off.push_back(int32_t(kt * frame + ky * row));
        continue;
      }
      for (int kx = 0; kx < c.kw; ++kx)
        off.push_back(int32_t(kt * frame + ky * row + int64_t(kx) * c.ci));
    }
  return off;
}

// The taps layouts' weights, [super-group][block][run][slot][lane][per]:
// element e of a run sits in slot e / per at position e % per (per = 2 for
// VPMADDWD pairs, 4 for VPMADDUBSW quads); the weights of another group of
// the super-group stay 0.
template <typename T>
void PackTapWeights(const ConvSpec& c, const int8_t* w, int supergroups, int sg_out, int span,
                    int blocks, int runs, int run_len, int per, int lanes, std::vector<T>* out) {
  const int cig = c.ci / c.groups, cog = c.co / c.groups;
  const bool row_runs = span == c.ci;
  const int slots = (run_len + per - 1) / per;
  out->assign(int64_t(supergroups) * blocks * runs * slots * per * lanes, 0);
  for (int sg = 0; sg < supergroups; ++sg)
    for (int ol = 0; ol < sg_out; ++ol) {
      const int oc = sg * sg_out + ol, go = oc / cog, b = ol / lanes, lane = ol % lanes;
      for (int r = 0; r < runs; ++r)
        for (int e = 0; e < run_len; ++e) {
          int kt, ky, kx, ch;
          if (row_runs) {
            kt = r / c.kh, ky = r % c.kh, kx = e / c.ci, ch = e % c.ci;
          } else {
            kt = r / (c.kh * c.kw), ky = r / c.kw % c.kh, kx = r % c.kw, ch = sg * span + e;
          }
          if (ch / cig != go) continue;  // another group of the super-group: 0
          const int8_t v =
              w[(((int64_t(oc) * c.kt + kt) * c.kh + ky) * c.kw + kx) * cig + ch - go * cig];
          const int64_t at =
              ((((int64_t(sg) * blocks + b) * runs + r) * slots + e / per) * lanes + lane) * per +
              e % per;
          (*out)[at] = T(v);
        }
    }
}

}  // namespace

TapsBlocked PackTapsBlocked(const ConvSpec& c, const int8_t* w) {
  TapsBlocked tb;
  const int cig = c.ci / c.groups, cog = c.co / c.groups;
  if (cog < kAvx2Lanes)
    for (int m = 1; m <= c.groups; ++m)
      if (c.groups % m == 0 && m * cog <= kAvx2Lanes) tb.merge = m;
  tb.supergroups = c.groups / tb.merge;
  tb.span = tb.merge * cig;
  tb.sg_out = tb.merge * cog;
  tb.blocks = (tb.sg_out + kAvx2Lanes - 1) / kAvx2Lanes;
  const bool row_runs = tb.span == c.ci;
  tb.runs = row_runs ? c.kt * c.kh : c.kt * c.kh * c.kw;
  tb.run_len = row_runs ? c.kw * c.ci : tb.span;
  tb.pairs = (tb.run_len + 1) / 2;
  tb.x_step = int64_t(c.sw) * c.ci;
  tb.run_off = TapRunOffsets(c, row_runs);
  PackTapWeights(c, w, tb.supergroups, tb.sg_out, tb.span, tb.blocks, tb.runs, tb.run_len, 2,
                 kAvx2Lanes, &tb.w);
  return tb;
}

namespace {

// The super-group geometry shared by the u8 taps layout (as PackTapsBlocked's,
// with `lanes` output channels per register).
void TapsU8Geometry(const ConvSpec& c, int lanes, TapsU8* tb) {
  const int cig = c.ci / c.groups, cog = c.co / c.groups;
  tb->lanes = lanes;
  tb->merge = 1;
  if (cog < lanes)
    for (int m = 1; m <= c.groups; ++m)
      if (c.groups % m == 0 && m * cog <= lanes) tb->merge = m;
  tb->supergroups = c.groups / tb->merge;
  tb->span = tb->merge * cig;
  tb->sg_out = tb->merge * cog;
  tb->blocks = (tb->sg_out + lanes - 1) / lanes;
  const bool row_runs = tb->span == c.ci;
  tb->runs = row_runs ? c.kt * c.kh : c.kt * c.kh * c.kw;
  tb->run_len = row_runs ? c.kw * c.ci : tb->span;
  tb->quads = (tb->run_len + 3) / 4;
  tb->flush_runs = tb->runs;
  tb->x_step = int64_t(c.sw) * c.ci;
}

// For each output coordinate of one axis, the class of its set of taps that
// fall inside the input (not in the padding); masks[class][k] = inside.
void AxisClasses(int out_n, int in_n, int k, int stride, int pad, std::vector<uint8_t>* cls,
                 std::vector<std::vector<bool>>* masks) {
  for (int o = 0; o < out_n; ++o) {
    std::vector<bool> m(k);
    for (int j = 0; j < k; ++j) {
      const int i = o * stride - pad + j;
      m[j] = i >= 0 && i < in_n;
    }
    auto it = std::find(masks->begin(), masks->end(), m);
    if (it == masks->end()) it = masks->insert(masks->end(), m);
    cls->push_back(uint8_t(it - masks->begin()));
  }
}

}  // namespace

bool TapsU8Fits(const ConvSpec& c, int max_u) {
  TapsU8 tb;
  TapsU8Geometry(c, kAvx2Lanes, &tb);
  return max_u >= 0 && max_u <= 255 && 2 * int64_t(tb.runs) * tb.quads * max_u <= INT16_MAX;
}

TapsU8 PackTapsU8(const ConvSpec& c, const int8_t* w, int scale, int shift, int border_u,
                  int lanes) {
  assert(lanes == kAvx2Lanes || lanes == kAvx512Lanes);
  TapsU8 tb;
  TapsU8Geometry(c, lanes, &tb);
  tb.scale = scale;
  const int cig = c.ci / c.groups;
  const bool row_runs = tb.span == c.ci;
  tb.run_off = TapRunOffsets(c, row_runs);
  PackTapWeights(c, w, tb.supergroups, tb.sg_out, tb.span, tb.blocks, tb.runs, tb.run_len, 4, lanes,
                 &tb.w);
  // The correction per (t class, y class, x class, output channel).
  std::vector<std::vector<bool>> mt, my, mx;
  AxisClasses(c.out.t, c.in.t, c.kt, c.st, c.pt, &tb.cls_t, &mt);
  AxisClasses(c.out.h, c.in.h, c.kh, c.sh, c.ph, &tb.cls_y, &my);
  AxisClasses(c.out.w, c.in.w, c.kw, c.sw, c.pw, &tb.cls_x, &mx);
  tb.ny = int(my.size());
  tb.nx = int(mx.size());
  tb.corr.assign(mt.size() * my.size() * mx.size() * c.co + lanes, 0);
  for (size_t ct = 0; ct < mt.size(); ++ct)
    for (size_t cy = 0; cy < my.size(); ++cy)
      for (size_t cx = 0; cx < mx.size(); ++cx)
        for (int o = 0; o < c.co; ++o) {
          int64_t sum = 0;
          for (int kt = 0; kt < c.kt; ++kt)
            for (int ky = 0; ky < c.kh; ++ky)
              for (int kx = 0; kx < c.kw; ++kx) {
                const bool inside = mt[ct][kt] && my[cy][ky] && mx[cx][kx];
                const int64_t per = inside ? shift : int64_t(scale) * border_u;
                const int8_t* wo = w + (((int64_t(o) * c.kt + kt) * c.kh + ky) * c.kw + kx) * cig;
                for (int j = 0; j < cig; ++j) sum += per * wo[j];
              }
          tb.corr[((ct * my.size() + cy) * mx.size() + cx) * c.co + o] = int32_t(sum);
        }
  return tb;
}

int TapsU8PFormFlushRuns(const ConvSpec& c, int pmax) {
  TapsU8 tb;
  TapsU8Geometry(c, kAvx2Lanes, &tb);
  if (pmax < 0 || pmax > 255) return 0;
  const int64_t per_run = 2 * int64_t(tb.quads) * std::max(pmax, 1);
  return int(std::min<int64_t>(tb.runs, INT16_MAX / per_run));
}

TapsU8 PackTapsU8PForm(const ConvSpec& c, const int8_t* w, int pmax, int lanes) {
  // The p term: 2 sum w p, no border correction (p = 0 and P = 0 there).
  TapsU8 tb = PackTapsU8(c, w, 2, 0, 0, lanes);
  // 16 lanes accumulate in int32 (one round); 8 lanes in int16 rounds.
  tb.flush_runs = lanes == kAvx2Lanes ? TapsU8PFormFlushRuns(c, pmax) : tb.runs;
  const int cig = c.ci / c.groups;
  const Shape4 pp = PPlaneShape(c);
  const int64_t row = pp.w, frame = int64_t(pp.h) * row;
  tb.p_runs = c.kt * c.kh;
  tb.p_pairs = (c.kw + 1) / 2;
  tb.p_x_step = c.sw;
  for (int kt = 0; kt < c.kt; ++kt)
    for (int ky = 0; ky < c.kh; ++ky) tb.p_run_off.push_back(int32_t(kt * frame + ky * row));
  tb.p_w.assign(int64_t(tb.supergroups) * tb.blocks * tb.p_runs * tb.p_pairs * 2 * lanes, 0);
  for (int sg = 0; sg < tb.supergroups; ++sg)
    for (int ol = 0; ol < tb.sg_out; ++ol) {
      const int oc = sg * tb.sg_out + ol, b = ol / lanes, lane = ol % lanes;
      for (int r = 0; r < tb.p_runs; ++r)
        for (int kx = 0; kx < c.kw; ++kx) {
          const int kt = r / c.kh, ky = r % c.kh;
          const int8_t* wo = w + (((int64_t(oc) * c.kt + kt) * c.kh + ky) * c.kw + kx) * cig;
          int ws = 0;
          for (int j = 0; j < cig; ++j) ws += wo[j];
          const int64_t at =
              ((((int64_t(sg) * tb.blocks + b) * tb.p_runs + r) * tb.p_pairs + kx / 2) * lanes +
               lane) *
                  2 +
              kx % 2;
          tb.p_w[at] = int16_t(-ws);
        }
    }
  return tb;
}

std::vector<BitWord> PackPointwiseBinaryAvx2(int ci, int co, const int8_t* w) {
  const int words = WordsFor(ci), groups = (co + 15) / 16;
  std::vector<BitWord> out(int64_t(groups) * words * 2 * 16, 0);
  constexpr BitWord kLo = 0x0f0f0f0f0f0f0f0full;
  for (int o = 0; o < co; ++o) {
    // Output i of a group sits in register k, qword q, so that the kernel's
    // (R0 | R1 << 32, R2 | R3 << 32) -> VPACKSSDW puts it in int16 lane i.
    const int g = o / 16, i = o % 16, lane = i / 8, within = i % 8;
    const int k = within / 4 * 2 + within % 2, q = lane * 2 + within % 4 / 2;
    for (int wd = 0; wd < words; ++wd) {
      BitWord bits = 0;
      for (int j = 0; j < kBitsPerWord && wd * kBitsPerWord + j < ci; ++j)
        if (w[int64_t(o) * ci + wd * kBitsPerWord + j] > 0) bits |= BitWord(1) << j;
      const int64_t base = (int64_t(g) * words + wd) * 2 * 16;
      out[base + k * 4 + q] = bits & kLo;
      out[base + 16 + k * 4 + q] = (bits >> 4) & kLo;
    }
  }
  return out;
}

std::vector<BitWord> PackPointwiseBinaryAvx512(int ci, int co, const int8_t* w) {
  const int words = WordsFor(ci), blocks = (co + kAvx512Lanes - 1) / kAvx512Lanes;
  // [block][word][half][16 lanes] uint32, two per BitWord.
  std::vector<uint32_t> halves(int64_t(blocks) * words * 2 * kAvx512Lanes, 0);
  for (int o = 0; o < co; ++o) {
    const int b = o / kAvx512Lanes, lane = o % kAvx512Lanes;
    for (int wd = 0; wd < words; ++wd) {
      BitWord bits = 0;
      for (int j = 0; j < kBitsPerWord && wd * kBitsPerWord + j < ci; ++j)
        if (w[int64_t(o) * ci + wd * kBitsPerWord + j] > 0) bits |= BitWord(1) << j;
      const int64_t base = (int64_t(b) * words + wd) * 2 * kAvx512Lanes;
      halves[base + lane] = uint32_t(bits);
      halves[base + kAvx512Lanes + lane] = uint32_t(bits >> 32);
    }
  }
  std::vector<BitWord> out(halves.size() / 2);
  std::memcpy(out.data(), halves.data(), halves.size() * sizeof(uint32_t));
  return out;
}

PointwiseSubsets PackPointwiseSubsets(int ci, int co, const int8_t* w) {
  PointwiseSubsets s;
  s.ci = ci;
  s.co = co;
  s.groups = (ci + 3) / 4;
  s.entry.resize(int64_t(co) * s.groups);
  for (int o = 0; o < co; ++o)
    for (int g = 0; g < s.groups; ++g) {
      int pattern = 0;
      for (int j = 0; j < 4 && 4 * g + j < ci; ++j)
        if (w[int64_t(o) * ci + 4 * g + j] > 0) pattern |= 1 << j;
      s.entry[int64_t(o) * s.groups + g] = uint16_t(16 * g + pattern);
    }
  return s;
}

int64_t PointwiseSubsetScratch(int ci) {
  // For chunks of up to 32 positions: tile (32 per channel, 4 channels per
  // group), tables (16 entries x 32 per group), results (8 x 32 for AVX2,
  // 16 x 32 for AVX-512), 64-byte alignment.
  const int64_t groups = (ci + 3) / 4;
  return 128 * groups + 512 * groups + 512 + 16;
}

SubsetScratchParts SubsetScratchAt(int32_t* scratch, int groups) {
  SubsetScratchParts p;
  p.tile = reinterpret_cast<int32_t*>((reinterpret_cast<uintptr_t>(scratch) + 63) & ~uintptr_t(63));
  p.tables = p.tile + 128 * int64_t(groups);
  p.res = p.tables + 512 * int64_t(groups);
  return p;
}

// ------------------------------------------------------------------ pooling, norms

BILLNET_INT_KERNEL
void MaxPoolRowInt32Portable(int w_in, int c, const int32_t* __restrict row0,
                             const int32_t* __restrict row1, int32_t* __restrict out) {
  const int ow = w_in / 2;
  for (int x = 0; x < ow; ++x) {
    const int32_t* a = row0 + int64_t(2 * x) * c;
    const int32_t* b = row1 + int64_t(2 * x) * c;
    int32_t* o = out + int64_t(x) * c;
    for (int k = 0; k < c; ++k) o[k] = std::max(std::max(a[k], a[c + k]), std::max(b[k], b[c + k]));
  }
}

BILLNET_INT_KERNEL
void ThresholdPackPortable(int64_t positions, int channels, const int32_t* __restrict x,
                           const int32_t* __restrict lo, const int32_t* __restrict hi,
                           BitWord* __restrict out) {
  const int nw = WordsFor(channels);
  for (int64_t p = 0; p < positions; ++p) {
    const int32_t* xp = x + p * channels;
    BitWord* op = out + p * nw;
    for (int k = 0; k < nw; ++k) {
      const int base = k * kBitsPerWord;
      const int n = std::min(kBitsPerWord, channels - base);
      // Compare into bytes (vectorized), then pack 8 bytes at a time with a
      // multiply that gathers byte i's low bit into bit i.
      alignas(64) uint8_t b[kBitsPerWord] = {};
      for (int j = 0; j < n; ++j)
        b[j] = uint8_t((xp[base + j] >= lo[base + j]) & (xp[base + j] <= hi[base + j]));
      BitWord word = 0;
      for (int q = 0; q < kBitsPerWord / 8; ++q) {
        uint64_t v;
        std::memcpy(&v, b + 8 * q, 8);
        word |= ((v * 0x0102040810204080ull) >> 56) << (8 * q);
      }
      op[k] = word;
    }
  }
}

// ------------------------------------------------------------------ GAP, TGAP, MUX-OR

BILLNET_INT_KERNEL
void CountBitsPortable(int64_t positions, int channels, const BitWord* __restrict bits,
                       int32_t* __restrict counts) {
  const int nw = WordsFor(channels);
  for (int c = 0; c < channels; ++c) counts[c] = 0;
  for (int64_t p = 0; p < positions; ++p)
    for (int k = 0; k < nw; ++k) {
      const BitWord w = bits[p * nw + k];
      const int n = std::min(kBitsPerWord, channels - k * kBitsPerWord);
      int32_t* ck = counts + k * kBitsPerWord;
      for (int j = 0; j < n; ++j) ck[j] += int32_t((w >> j) & 1);
    }
}

void TgapSelectPortable(int channels, int area, const int32_t* counts, BitWord* select) {
  const int nw = WordsFor(channels);
  for (int k = 0; k < nw; ++k) select[k] = 0;
  for (int c = 0; c < channels; ++c)
    if (2 * int64_t(counts[c]) > area) select[c / kBitsPerWord] |= BitWord(1) << (c % kBitsPerWord);
}

BILLNET_INT_KERNEL
void MuxOrBitsPortable(int64_t positions, int words, const BitWord* x, const BitWord* i1,
                       const BitWord* select, BitWord* out) {
  for (int64_t p = 0; p < positions; ++p)
    for (int k = 0; k < words; ++k)
      out[p * words + k] = i1[p * words + k] | (x[p * words + k] & ~select[k]);
}

// ------------------------------------------------------------------ QLSTM, dense

BILLNET_INT_KERNEL
void QlstmStepPortable(int inputs, int units, int area, const int32_t* __restrict wih_neg,
                       const int32_t* __restrict whh_neg, const int32_t* __restrict x,
                       int32_t* __restrict h, int32_t* __restrict c, int32_t* __restrict z) {
  for (int r = 0; r < 4 * units; ++r) {
    const int32_t* mi = wih_neg + int64_t(r) * inputs;
    const int32_t* mh = whh_neg + int64_t(r) * units;
    int32_t zi = 0, zh = 0;
    for (int j = 0; j < inputs; ++j) zi += (x[j] ^ mi[j]) - mi[j];
    for (int k = 0; k < units; ++k) zh += (h[k] ^ mh[k]) - mh[k];
    z[r] = zi + area * zh;
  }
  for (int k = 0; k < units; ++k) {
    const int32_t i = z[k] > 0, f = z[units + k] > 0, o = z[3 * units + k] > 0;
    const int32_t g = z[2 * units + k] >= 0 ? 1 : -1;
    const int32_t cn = std::clamp(f * c[k] + i * g, -1, 1);
    c[k] = cn;
    h[k] = o * cn;
  }
}

BILLNET_INT_KERNEL
void DenseTernaryPortable(int inputs, int outputs, const int8_t* __restrict w,
                          const int32_t* __restrict h, int32_t* __restrict out) {
  for (int o = 0; o < outputs; ++o) {
    const int8_t* wo = w + int64_t(o) * inputs;
    int32_t s = 0;
    for (int j = 0; j < inputs; ++j) s += int32_t(wo[j]) * h[j];
    out[o] = s;
  }
}

// ------------------------------------------------------------------ float LSTM (S3-S4)

namespace {
inline float Sigmoid(float z) { return 1.f / (1.f + std::exp(-z)); }
}  // namespace

void LstmStepFloatPortable(int inputs, int units, const float* w_ih, const float* w_hh,
                           const float* x, float* h, float* c, float* z) {
  for (int r = 0; r < 4 * units; ++r) {
    float acc = 0.f;
    const float* wi = w_ih + int64_t(r) * inputs;
    for (int j = 0; j < inputs; ++j) acc += wi[j] * x[j];
    const float* wh = w_hh + int64_t(r) * units;
    for (int k = 0; k < units; ++k) acc += wh[k] * h[k];
    z[r] = acc;
  }
  for (int k = 0; k < units; ++k) {
    const float i = Sigmoid(z[k]), f = Sigmoid(z[units + k]);
    const float g = std::tanh(z[2 * units + k]), o = Sigmoid(z[3 * units + k]);
    c[k] = f * c[k] + i * g;
    h[k] = o * std::tanh(c[k]);
  }
}

}  // namespace billnet
