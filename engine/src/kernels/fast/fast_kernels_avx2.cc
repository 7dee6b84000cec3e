// AVX2 kernels (fast_kernels_avx2.h). This file alone is compiled with
// -mavx2 (engine/src/kernels/fast/CMakeLists.txt); it uses no inline
// functions shared with other files beyond trivial accessors, so no AVX2 code
// can leak into callers that run on other CPUs. Without AVX2 in the build the
// kernels are stubs that are never called (FastIsaSupported says no).
#include "kernels/fast/fast_kernels_avx2.h"

#include <cassert>
#include <cstring>

#if defined(__AVX2__)
#include <immintrin.h>
#endif

namespace billnet {

#if defined(__AVX2__)

namespace {

inline __m256i Broadcast32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return _mm256_set1_epi32(v);
}

// Stores one register of 8 int32 lanes, of which `valid` (1..8) are real.
inline void StoreLanes(__m256i v, int valid, int32_t* dst) {
  if (valid == kAvx2Lanes) {
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(dst), v);
    return;
  }
  alignas(32) int32_t tmp[kAvx2Lanes];
  _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), v);
  for (int l = 0; l < valid; ++l) dst[l] = tmp[l];
}

// The same, narrowed to int16 (the sums fit: checked by the caller's plan).
inline void StoreLanes(__m256i v, int valid, int16_t* dst) {
  const __m128i p = _mm_packs_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  if (valid == kAvx2Lanes) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dst), p);
    return;
  }
  alignas(16) int16_t tmp[kAvx2Lanes];
  _mm_store_si128(reinterpret_cast<__m128i*>(tmp), p);
  for (int l = 0; l < valid; ++l) dst[l] = tmp[l];
}

// One tile of the taps convolution: NX output positions (x_step apart from
// `in`) x NB blocks of 8 output channels (block stride wb in w).
template <int NX, int NB, typename Out>
inline void TapsTile(const int16_t* in, int64_t x_step, const int32_t* run_off, int runs, int pairs,
                     const int16_t* w, int64_t wb, Out* out, int64_t out_stride, const int* valid) {
  __m256i acc[NX][NB];
  for (int i = 0; i < NX; ++i)
    for (int b = 0; b < NB; ++b) acc[i][b] = _mm256_setzero_si256();
  for (int r = 0; r < runs; ++r) {
    const int16_t* ip = in + run_off[r];
    for (int p = 0; p < pairs; ++p, w += 2 * kAvx2Lanes) {
      __m256i wv[NB];
      for (int b = 0; b < NB; ++b)
        wv[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + b * wb));
      for (int i = 0; i < NX; ++i) {
        const __m256i v = Broadcast32(ip + i * x_step + 2 * p);
        for (int b = 0; b < NB; ++b)
          acc[i][b] = _mm256_add_epi32(acc[i][b], _mm256_madd_epi16(v, wv[b]));
      }
    }
  }
  for (int i = 0; i < NX; ++i)
    for (int b = 0; b < NB; ++b) StoreLanes(acc[i][b], valid[b], out + i * out_stride + b * 8);
}

template <typename Out>
void TapsRow(const TapsBlocked& tb, const int16_t* base, int out_w, int co, Out* out) {
  const int32_t* run_off = tb.run_off.data();
  const int64_t wb = int64_t(tb.runs) * tb.pairs * 2 * kAvx2Lanes;  // one block's weights
  for (int sg = 0; sg < tb.supergroups; ++sg) {
    // One super-group (span == ci): runs start at channel 0; else at sg's range.
    const int16_t* in = base + int64_t(sg) * tb.span;
    const int16_t* wsg = tb.w.data() + int64_t(sg) * tb.blocks * wb;
    Out* osg = out + int64_t(sg) * tb.sg_out;
    int b = 0;
    for (; b + 2 <= tb.blocks; b += 2) {
      const int rest = tb.sg_out - (b + 1) * kAvx2Lanes;  // block b is full
      const int valid[2] = {kAvx2Lanes, rest < kAvx2Lanes ? rest : kAvx2Lanes};
      const int16_t* wbp = wsg + b * wb;
      Out* ob = osg + b * kAvx2Lanes;
      int x = 0;
      for (; x + 4 <= out_w; x += 4)
        TapsTile<4, 2>(in + x * tb.x_step, tb.x_step, run_off, tb.runs, tb.pairs, wbp, wb,
                       ob + int64_t(x) * co, co, valid);
      for (; x < out_w; ++x)
        TapsTile<1, 2>(in + x * tb.x_step, tb.x_step, run_off, tb.runs, tb.pairs, wbp, wb,
                       ob + int64_t(x) * co, co, valid);
    }
    for (; b < tb.blocks; ++b) {
      const int rest = tb.sg_out - b * kAvx2Lanes;
      const int valid[1] = {rest < kAvx2Lanes ? rest : kAvx2Lanes};
      const int16_t* wbp = wsg + b * wb;
      Out* ob = osg + b * kAvx2Lanes;
      int x = 0;
      for (; x + 8 <= out_w; x += 8)
        TapsTile<8, 1>(in + x * tb.x_step, tb.x_step, run_off, tb.runs, tb.pairs, wbp, wb,
                       ob + int64_t(x) * co, co, valid);
      for (; x + 4 <= out_w; x += 4)
        TapsTile<4, 1>(in + x * tb.x_step, tb.x_step, run_off, tb.runs, tb.pairs, wbp, wb,
                       ob + int64_t(x) * co, co, valid);
      for (; x < out_w; ++x)
        TapsTile<1, 1>(in + x * tb.x_step, tb.x_step, run_off, tb.runs, tb.pairs, wbp, wb,
                       ob + int64_t(x) * co, co, valid);
    }
  }
}

// One tile of the u8 taps convolution: NX output positions x NB blocks of 8
// output channels; int16 lanes accumulate VPMADDUBSW pairs (TapsU8Fits), then
// one VPMADDWD by 1 per register widens to int32. corr[i]: the correction row
// of position i (co entries, at the super-group's first block).
template <int NX, int NB, typename Out>
inline void U8Tile(const uint8_t* in, int64_t x_step, const int32_t* run_off, int runs, int quads,
                   const int8_t* w, int64_t wb, int scale, const int32_t* const* corr, Out* out,
                   int64_t out_stride, const int* valid) {
  __m256i acc[NX][NB];
  for (int i = 0; i < NX; ++i)
    for (int b = 0; b < NB; ++b) acc[i][b] = _mm256_setzero_si256();
  for (int r = 0; r < runs; ++r) {
    const uint8_t* ip = in + run_off[r];
    for (int q = 0; q < quads; ++q, w += 4 * kAvx2Lanes) {
      __m256i wv[NB];
      for (int b = 0; b < NB; ++b)
        wv[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + b * wb));
      for (int i = 0; i < NX; ++i) {
        const __m256i v = Broadcast32(ip + i * x_step + 4 * q);
        for (int b = 0; b < NB; ++b)
          acc[i][b] = _mm256_add_epi16(acc[i][b], _mm256_maddubs_epi16(v, wv[b]));
      }
    }
  }
  const __m256i ones = _mm256_set1_epi16(1);
  for (int i = 0; i < NX; ++i)
    for (int b = 0; b < NB; ++b) {
      __m256i s32 = _mm256_madd_epi16(acc[i][b], ones);
      if (scale == 2) s32 = _mm256_add_epi32(s32, s32);
      const __m256i cv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(corr[i] + b * 8));
      StoreLanes(_mm256_sub_epi32(s32, cv), valid[b], out + i * out_stride + b * 8);
    }
}

// The same with int32 accumulators beside the int16 ones: the int16 lanes
// are widened every flush_runs runs, and the p form's P term (pin != null)
// is added by VPMADDWD on pairs of P after the p term is scaled.
// kOneRound (flush_runs == runs): the int32 sums are made once from the
// int16 lanes; otherwise they are kept in memory between rounds, so the
// int16 registers of a 4 x 2 tile still fit the 16 registers.
template <int NX, int NB, bool kOneRound, typename Out>
inline void U8TileWide(const TapsU8& tb, const uint8_t* in, const int8_t* w, int64_t wb,
                       const int16_t* pin, const int16_t* pw, int64_t pwb,
                       const int32_t* const* corr, Out* out, int64_t out_stride, const int* valid) {
  __m256i acc[NX][NB], wide[NX][NB];
  for (int i = 0; i < NX; ++i)
    for (int b = 0; b < NB; ++b) wide[i][b] = _mm256_setzero_si256();
  alignas(32) int32_t held[kOneRound ? 1 : NX * NB][kAvx2Lanes] = {};
  const __m256i ones = _mm256_set1_epi16(1);
  const int flush_runs = kOneRound ? tb.runs : tb.flush_runs;
  for (int r0 = 0; r0 < tb.runs; r0 += flush_runs) {
    const int r1 = r0 + flush_runs < tb.runs ? r0 + flush_runs : tb.runs;
    for (int i = 0; i < NX; ++i)
      for (int b = 0; b < NB; ++b) acc[i][b] = _mm256_setzero_si256();
    for (int r = r0; r < r1; ++r) {
      const uint8_t* ip = in + tb.run_off[r];
      for (int q = 0; q < tb.quads; ++q, w += 4 * kAvx2Lanes) {
        __m256i wv[NB];
        for (int b = 0; b < NB; ++b)
          wv[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + b * wb));
        for (int i = 0; i < NX; ++i) {
          const __m256i v = Broadcast32(ip + i * tb.x_step + 4 * q);
          for (int b = 0; b < NB; ++b)
            acc[i][b] = _mm256_add_epi16(acc[i][b], _mm256_maddubs_epi16(v, wv[b]));
        }
      }
    }
    if (kOneRound) {
      for (int i = 0; i < NX; ++i)
        for (int b = 0; b < NB; ++b) wide[i][b] = _mm256_madd_epi16(acc[i][b], ones);
    } else {
      for (int i = 0; i < NX; ++i)
        for (int b = 0; b < NB; ++b) {
          __m256i* h = reinterpret_cast<__m256i*>(held[i * NB + b]);
          _mm256_store_si256(
              h, _mm256_add_epi32(_mm256_load_si256(h), _mm256_madd_epi16(acc[i][b], ones)));
        }
    }
  }
  if (!kOneRound)
    for (int i = 0; i < NX; ++i)
      for (int b = 0; b < NB; ++b)
        wide[i][b] = _mm256_load_si256(reinterpret_cast<const __m256i*>(held[i * NB + b]));
  if (tb.scale == 2)
    for (int i = 0; i < NX; ++i)
      for (int b = 0; b < NB; ++b) wide[i][b] = _mm256_add_epi32(wide[i][b], wide[i][b]);
  if (pin) {
    for (int r = 0; r < tb.p_runs; ++r) {
      const int16_t* pp = pin + tb.p_run_off[r];
      for (int q = 0; q < tb.p_pairs; ++q, pw += 2 * kAvx2Lanes) {
        __m256i wv[NB];
        for (int b = 0; b < NB; ++b)
          wv[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pw + b * pwb));
        for (int i = 0; i < NX; ++i) {
          const __m256i v = Broadcast32(pp + i * tb.p_x_step + 2 * q);
          for (int b = 0; b < NB; ++b)
            wide[i][b] = _mm256_add_epi32(wide[i][b], _mm256_madd_epi16(v, wv[b]));
        }
      }
    }
  }
  for (int i = 0; i < NX; ++i)
    for (int b = 0; b < NB; ++b) {
      const __m256i cv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(corr[i] + b * 8));
      StoreLanes(_mm256_sub_epi32(wide[i][b], cv), valid[b], out + i * out_stride + b * 8);
    }
}

// U8Row for the wide tiles: 4 positions x 2 blocks, then 4 x 1.
template <typename Out>
void U8RowWide(const TapsU8& tb, const uint8_t* base, const int16_t* pbase, int out_w, int co,
               const int32_t* corr_row, Out* out) {
  const int64_t wb = int64_t(tb.runs) * tb.quads * 4 * kAvx2Lanes;
  const int64_t pwb = int64_t(tb.p_runs) * tb.p_pairs * 2 * kAvx2Lanes;
  const uint8_t* cls_x = tb.cls_x.data();
  for (int sg = 0; sg < tb.supergroups; ++sg) {
    const uint8_t* in = base + int64_t(sg) * tb.span;
    const int32_t* csg = corr_row + int64_t(sg) * tb.sg_out;
    auto corr_of = [&](int x, int b) { return csg + int64_t(cls_x[x]) * co + b * kAvx2Lanes; };
    const bool one_round = tb.flush_runs == tb.runs;
    int b = 0;
    for (; b + 2 <= tb.blocks; b += 2) {
      const int rest = tb.sg_out - (b + 1) * kAvx2Lanes;
      const int valid[2] = {kAvx2Lanes, rest < kAvx2Lanes ? rest : kAvx2Lanes};
      const int8_t* wbp = tb.w.data() + (int64_t(sg) * tb.blocks + b) * wb;
      const int16_t* pwp = pbase ? tb.p_w.data() + (int64_t(sg) * tb.blocks + b) * pwb : nullptr;
      Out* ob = out + int64_t(sg) * tb.sg_out + b * kAvx2Lanes;
      int x = 0;
      for (; x + 4 <= out_w; x += 4) {
        const int32_t* cr[4];
        for (int i = 0; i < 4; ++i) cr[i] = corr_of(x + i, b);
        const int16_t* pb = pbase ? pbase + x * tb.p_x_step : nullptr;
        if (one_round)
          U8TileWide<4, 2, true>(tb, in + x * tb.x_step, wbp, wb, pb, pwp, pwb, cr,
                                 ob + int64_t(x) * co, co, valid);
        else
          U8TileWide<4, 2, false>(tb, in + x * tb.x_step, wbp, wb, pb, pwp, pwb, cr,
                                  ob + int64_t(x) * co, co, valid);
      }
      for (; x < out_w; ++x) {
        const int32_t* cr[1] = {corr_of(x, b)};
        U8TileWide<1, 2, false>(tb, in + x * tb.x_step, wbp, wb,
                                pbase ? pbase + x * tb.p_x_step : nullptr, pwp, pwb, cr,
                                ob + int64_t(x) * co, co, valid);
      }
    }
    for (; b < tb.blocks; ++b) {
      const int rest = tb.sg_out - b * kAvx2Lanes;
      const int valid[1] = {rest < kAvx2Lanes ? rest : kAvx2Lanes};
      const int8_t* wbp = tb.w.data() + (int64_t(sg) * tb.blocks + b) * wb;
      const int16_t* pwp = pbase ? tb.p_w.data() + (int64_t(sg) * tb.blocks + b) * pwb : nullptr;
      Out* ob = out + int64_t(sg) * tb.sg_out + b * kAvx2Lanes;
      int x = 0;
      for (; x + 4 <= out_w; x += 4) {
        const int32_t* cr[4];
        for (int i = 0; i < 4; ++i) cr[i] = corr_of(x + i, b);
        U8TileWide<4, 1, false>(tb, in + x * tb.x_step, wbp, wb,
                                pbase ? pbase + x * tb.p_x_step : nullptr, pwp, pwb, cr,
                                ob + int64_t(x) * co, co, valid);
      }
      for (; x < out_w; ++x) {
        const int32_t* cr[1] = {corr_of(x, b)};
        U8TileWide<1, 1, false>(tb, in + x * tb.x_step, wbp, wb,
                                pbase ? pbase + x * tb.p_x_step : nullptr, pwp, pwb, cr,
                                ob + int64_t(x) * co, co, valid);
      }
    }
  }
}

template <typename Out>
void U8Row(const TapsU8& tb, const uint8_t* base, int out_w, int co, const int32_t* corr_row,
           Out* out) {
  const int32_t* run_off = tb.run_off.data();
  const int64_t wb = int64_t(tb.runs) * tb.quads * 4 * kAvx2Lanes;  // one block's weights
  const uint8_t* cls_x = tb.cls_x.data();
  for (int sg = 0; sg < tb.supergroups; ++sg) {
    const uint8_t* in = base + int64_t(sg) * tb.span;
    const int8_t* wsg = tb.w.data() + int64_t(sg) * tb.blocks * wb;
    Out* osg = out + int64_t(sg) * tb.sg_out;
    // corr_row + cls_x[x] * co is position x's row; the super-group's channels.
    const int32_t* csg = corr_row + int64_t(sg) * tb.sg_out;
    auto corr_of = [&](int x, int b) { return csg + int64_t(cls_x[x]) * co + b * kAvx2Lanes; };
    int b = 0;
    for (; b + 2 <= tb.blocks; b += 2) {
      const int rest = tb.sg_out - (b + 1) * kAvx2Lanes;
      const int valid[2] = {kAvx2Lanes, rest < kAvx2Lanes ? rest : kAvx2Lanes};
      const int8_t* wbp = wsg + b * wb;
      Out* ob = osg + b * kAvx2Lanes;
      int x = 0;
      for (; x + 4 <= out_w; x += 4) {
        const int32_t* cr[4] = {corr_of(x, b), corr_of(x + 1, b), corr_of(x + 2, b),
                                corr_of(x + 3, b)};
        U8Tile<4, 2>(in + x * tb.x_step, tb.x_step, run_off, tb.runs, tb.quads, wbp, wb, tb.scale,
                     cr, ob + int64_t(x) * co, co, valid);
      }
      for (; x < out_w; ++x) {
        const int32_t* cr[1] = {corr_of(x, b)};
        U8Tile<1, 2>(in + x * tb.x_step, tb.x_step, run_off, tb.runs, tb.quads, wbp, wb, tb.scale,
                     cr, ob + int64_t(x) * co, co, valid);
      }
    }
    for (; b < tb.blocks; ++b) {
      const int rest = tb.sg_out - b * kAvx2Lanes;
      const int valid[1] = {rest < kAvx2Lanes ? rest : kAvx2Lanes};
      const int8_t* wbp = wsg + b * wb;
      Out* ob = osg + b * kAvx2Lanes;
      int x = 0;
      for (; x + 8 <= out_w; x += 8) {
        const int32_t* cr[8];
        for (int i = 0; i < 8; ++i) cr[i] = corr_of(x + i, b);
        U8Tile<8, 1>(in + x * tb.x_step, tb.x_step, run_off, tb.runs, tb.quads, wbp, wb, tb.scale,
                     cr, ob + int64_t(x) * co, co, valid);
      }
      for (; x + 4 <= out_w; x += 4) {
        const int32_t* cr[4];
        for (int i = 0; i < 4; ++i) cr[i] = corr_of(x + i, b);
        U8Tile<4, 1>(in + x * tb.x_step, tb.x_step, run_off, tb.runs, tb.quads, wbp, wb, tb.scale,
                     cr, ob + int64_t(x) * co, co, valid);
      }
      for (; x < out_w; ++x) {
        const int32_t* cr[1] = {corr_of(x, b)};
        U8Tile<1, 1>(in + x * tb.x_step, tb.x_step, run_off, tb.runs, tb.quads, wbp, wb, tb.scale,
                     cr, ob + int64_t(x) * co, co, valid);
      }
    }
  }
}

// r[i] (row i, lanes j) becomes r[j] (column j, lanes i).
inline void Transpose8x8(__m256i r[8]) {
  const __m256i t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
  const __m256i t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
  const __m256i t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
  const __m256i t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
  const __m256i u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
  const __m256i u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
  const __m256i u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
  const __m256i u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
  r[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
  r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
  r[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
  r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
  r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
  r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
  r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
  r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

// 8 consecutive channels of one position as int32 lanes.
inline __m256i Load8(const int32_t* p) {
  return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
}
inline __m256i Load8(const int16_t* p) {
  return _mm256_cvtepi16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// How many of a chunk's np positions register v holds (0..8).
inline int PositionsIn(int np, int v) {
  const int left = np - v * kAvx2Lanes;
  return left < 0 ? 0 : left < kAvx2Lanes ? left : kAvx2Lanes;
}

// Fills the tile: tile[c * 8 NV + v * 8 + k] = x[(v * 8 + k) * ci + c] for
// the np (1..8 NV) positions at x and the channels c < ci, 0 for the other
// positions and for the channels up to 4 groups.
template <int NV, typename In>
void FillSubsetTile(const In* x, int ci, int groups, int np, int32_t* tile) {
  for (int v = 0; v < NV; ++v) {
    const int pv = PositionsIn(np, v);
    const In* xv = x + int64_t(v) * kAvx2Lanes * ci;
    int c = 0;
    for (; c + kAvx2Lanes <= ci; c += kAvx2Lanes) {
      __m256i r[8];
      for (int k = 0; k < kAvx2Lanes; ++k)
        r[k] = k < pv ? Load8(xv + int64_t(k) * ci + c) : _mm256_setzero_si256();
      Transpose8x8(r);
      for (int j = 0; j < kAvx2Lanes; ++j)
        _mm256_store_si256(reinterpret_cast<__m256i*>(tile + (c + j) * 8 * NV + v * 8), r[j]);
    }
    for (; c < 4 * groups; ++c)
      for (int k = 0; k < kAvx2Lanes; ++k)
        tile[c * 8 * NV + v * 8 + k] = c < ci && k < pv ? int32_t(xv[int64_t(k) * ci + c]) : 0;
  }
}

// The tables of NV x 8 positions: entry 16 g + pattern at byte 32 NV (16 g +
// pattern) holds, per position, sum_j (bit j of pattern ? +1 : -1) x_4g+j.
template <int NV>
void BuildSubsetTables(const int32_t* tile, int groups, int32_t* tables) {
  for (int g = 0; g < groups; ++g)
    for (int v = 0; v < NV; ++v) {
      __m256i d[4];
      for (int j = 0; j < 4; ++j)
        d[j] = _mm256_load_si256(
            reinterpret_cast<const __m256i*>(tile + (4 * g + j) * 8 * NV + v * 8));
      __m256i e[16];
      e[0] = _mm256_sub_epi32(
          _mm256_setzero_si256(),
          _mm256_add_epi32(_mm256_add_epi32(d[0], d[1]), _mm256_add_epi32(d[2], d[3])));
      for (int j = 0; j < 4; ++j) d[j] = _mm256_add_epi32(d[j], d[j]);
      // e[p] = e[p without its highest bit] + 2 x of that bit's channel.
      for (int p = 1; p < 16; ++p) {
        const int hb = p >= 8 ? 3 : p >= 4 ? 2 : p >= 2 ? 1 : 0;
        e[p] = _mm256_add_epi32(e[p & ~(1 << hb)], d[hb]);
      }
      int32_t* tg = tables + (16 * g) * 8 * NV + v * 8;
      for (int p = 0; p < 16; ++p)
        _mm256_store_si256(reinterpret_cast<__m256i*>(tg + p * 8 * NV), e[p]);
    }
}

// Every output's sums over the NV x 8 positions of the tables, 8 outputs at
// a time, transposed back to out[p * co + o] (np positions).
template <int NV>
void SubsetOutputs(const PointwiseSubsets& s, const int32_t* tables, int np, int32_t* res,
                   int32_t* out) {
  const int co = s.co, groups = s.groups;
  for (int o0 = 0; o0 < co; o0 += kAvx2Lanes) {
    const int no = co - o0 < kAvx2Lanes ? co - o0 : kAvx2Lanes;
    for (int j = 0; j < no; ++j) {
      const uint16_t* en = s.entry.data() + int64_t(o0 + j) * groups;
      __m256i a[NV], b[NV];
      for (int v = 0; v < NV; ++v) a[v] = b[v] = _mm256_setzero_si256();
      int g = 0;
      for (; g + 2 <= groups; g += 2) {
        const int32_t* p0 = tables + int64_t(en[g]) * 8 * NV;
        const int32_t* p1 = tables + int64_t(en[g + 1]) * 8 * NV;
        for (int v = 0; v < NV; ++v) {
          a[v] = _mm256_add_epi32(a[v],
                                  _mm256_load_si256(reinterpret_cast<const __m256i*>(p0 + 8 * v)));
          b[v] = _mm256_add_epi32(b[v],
                                  _mm256_load_si256(reinterpret_cast<const __m256i*>(p1 + 8 * v)));
        }
      }
      if (g < groups) {
        const int32_t* p0 = tables + int64_t(en[g]) * 8 * NV;
        for (int v = 0; v < NV; ++v)
          a[v] = _mm256_add_epi32(a[v],
                                  _mm256_load_si256(reinterpret_cast<const __m256i*>(p0 + 8 * v)));
      }
      for (int v = 0; v < NV; ++v)
        _mm256_store_si256(reinterpret_cast<__m256i*>(res + j * 8 * NV + v * 8),
                           _mm256_add_epi32(a[v], b[v]));
    }
    for (int v = 0; v < NV; ++v) {
      __m256i r[8];
      for (int j = 0; j < kAvx2Lanes; ++j)
        r[j] = _mm256_load_si256(reinterpret_cast<const __m256i*>(res + j * 8 * NV + v * 8));
      Transpose8x8(r);
      const int pv = PositionsIn(np, v);
      for (int k = 0; k < pv; ++k) StoreLanes(r[k], no, out + int64_t(v * 8 + k) * co + o0);
    }
  }
}

template <int NV, typename In>
void SubsetChunk(const In* x, const PointwiseSubsets& s, int np, int32_t* tile, int32_t* tables,
                 int32_t* res, int32_t* out) {
  FillSubsetTile<NV>(x, s.ci, s.groups, np, tile);
  BuildSubsetTables<NV>(tile, s.groups, tables);
  SubsetOutputs<NV>(s, tables, np, res, out);
}

// Chunks of up to 32 positions (4 registers), the tile and tables as wide as
// the chunk needs.
template <typename In>
void PointwiseSubsetDriver(int64_t count, const In* x, const PointwiseSubsets& s, int32_t* scratch,
                           int32_t* out) {
  const auto [tile, tables, res] = SubsetScratchAt(scratch, s.groups);
  for (int64_t p = 0; p < count; p += 4 * kAvx2Lanes) {
    const int np = count - p < 4 * kAvx2Lanes ? int(count - p) : 4 * kAvx2Lanes;
    const In* xp = x + p * s.ci;
    int32_t* op = out + p * s.co;
    if (np > 2 * kAvx2Lanes)
      SubsetChunk<4>(xp, s, np, tile, tables, res, op);
    else if (np > kAvx2Lanes)
      SubsetChunk<2>(xp, s, np, tile, tables, res, op);
    else
      SubsetChunk<1>(xp, s, np, tile, tables, res, op);
  }
}

}  // namespace

void ConvRowTapsAvx2(const ConvSpec& c, const TapsBlocked& tb, const int16_t* padded, int t, int y,
                     int32_t* out_row, int16_t* out16_row) {
  const int64_t row = int64_t(c.in.w + 2 * c.pw) * c.ci;
  const int64_t frame = int64_t(c.in.h + 2 * c.ph) * row;
  const int16_t* base = padded + int64_t(t) * c.st * frame + int64_t(y) * c.sh * row;
  if (out16_row)
    TapsRow(tb, base, c.out.w, c.co, out16_row);
  else
    TapsRow(tb, base, c.out.w, c.co, out_row);
}

void ConvRowTapsU8Avx2(const ConvSpec& c, const TapsU8& tb, const uint8_t* padded,
                       const int16_t* pplane, int t, int y, int32_t* out_row, int16_t* out16_row) {
  assert(tb.lanes == kAvx2Lanes);
  const int64_t row = int64_t(c.in.w + 2 * c.pw) * c.ci;
  const int64_t frame = int64_t(c.in.h + 2 * c.ph) * row;
  const uint8_t* base = padded + int64_t(t) * c.st * frame + int64_t(y) * c.sh * row;
  const int32_t* corr_row =
      tb.corr.data() + (int64_t(tb.cls_t[t]) * tb.ny + tb.cls_y[y]) * tb.nx * c.co;
  if (tb.flush_runs < tb.runs || !tb.p_w.empty()) {
    const int16_t* pbase = nullptr;
    if (!tb.p_w.empty()) {
      const int64_t prow = c.in.w + 2 * c.pw, pframe = int64_t(c.in.h + 2 * c.ph) * prow;
      pbase = pplane + int64_t(t) * c.st * pframe + int64_t(y) * c.sh * prow;
    }
    if (out16_row)
      U8RowWide(tb, base, pbase, c.out.w, c.co, corr_row, out16_row);
    else
      U8RowWide(tb, base, pbase, c.out.w, c.co, corr_row, out_row);
    return;
  }
  if (out16_row)
    U8Row(tb, base, c.out.w, c.co, corr_row, out16_row);
  else
    U8Row(tb, base, c.out.w, c.co, corr_row, out_row);
}

void PointwiseInt32SubsetAvx2(int64_t count, const int32_t* x, const PointwiseSubsets& s,
                              int32_t* scratch, int32_t* out) {
  PointwiseSubsetDriver(count, x, s, scratch, out);
}

void PointwiseInt16SubsetAvx2(int64_t count, const int16_t* x, const PointwiseSubsets& s,
                              int32_t* scratch, int32_t* out) {
  PointwiseSubsetDriver(count, x, s, scratch, out);
}

void PointwiseBinaryAvx2(int64_t count, int words, const BitWord* a, int co, const BitWord* w,
                         int16_t* out16, uint8_t* out8, int offset, int64_t out_stride, bool p_form,
                         int16_t* pplane, int64_t pplane_stride) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4, 0, 1, 1, 2,
                                       1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i nib = _mm256_set1_epi8(0x0f), zero = _mm256_setzero_si256();
  const int groups = (co + 15) / 16;
  for (int64_t p = 0; p < count; ++p) {
    const BitWord* ap = a + p * words;
    int total = 0;
    for (int k = 0; k < words; ++k) total += int(_mm_popcnt_u64(ap[k]));
    if (p_form) pplane[p * pplane_stride] = int16_t(total);
    // v = 2 cnt - total + offset, or the count itself (p form).
    const __m256i base = _mm256_set1_epi16(int16_t(p_form ? 0 : offset - total));
    for (int g = 0; g < groups; ++g) {
      __m256i bytes[4] = {zero, zero, zero, zero}, sums[4] = {zero, zero, zero, zero};
      const BitWord* wg = w + int64_t(g) * words * 32;
      for (int k = 0; k < words; ++k) {
        const __m256i av = _mm256_set1_epi64x(int64_t(ap[k]));
        const __m256i alo = _mm256_and_si256(av, nib);
        const __m256i ahi = _mm256_and_si256(_mm256_srli_epi16(av, 4), nib);
        const BitWord* wk = wg + k * 32;
        for (int r = 0; r < 4; ++r) {
          const __m256i wlo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wk + 4 * r));
          const __m256i whi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wk + 16 + 4 * r));
          bytes[r] = _mm256_add_epi8(
              bytes[r], _mm256_add_epi8(_mm256_shuffle_epi8(lut, _mm256_and_si256(alo, wlo)),
                                        _mm256_shuffle_epi8(lut, _mm256_and_si256(ahi, whi))));
        }
        // A byte count grows by at most 8 per word: sum into qwords (VPSADBW)
        // every 31 words and at the end, before one could pass 255.
        if ((k + 1) % 31 == 0 || k + 1 == words)
          for (int r = 0; r < 4; ++r) {
            sums[r] = _mm256_add_epi64(sums[r], _mm256_sad_epu8(bytes[r], zero));
            bytes[r] = zero;
          }
      }
      const __m256i d0 = _mm256_or_si256(sums[0], _mm256_slli_epi64(sums[1], 32));
      const __m256i d1 = _mm256_or_si256(sums[2], _mm256_slli_epi64(sums[3], 32));
      const __m256i cnt = _mm256_packs_epi32(d0, d1);  // 16 int16 counts, in order
      const __m256i v = p_form ? cnt : _mm256_add_epi16(_mm256_add_epi16(cnt, cnt), base);
      const int valid = co - g * 16 < 16 ? co - g * 16 : 16;
      if (out16) {
        int16_t* op = out16 + p * out_stride + g * 16;
        if (valid == 16) {
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(op), v);
        } else {
          alignas(32) int16_t tmp[16];
          _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), v);
          for (int l = 0; l < valid; ++l) op[l] = tmp[l];
        }
      } else {
        const __m128i b8 =
            _mm_packus_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
        uint8_t* op = out8 + p * out_stride + g * 16;
        if (valid == 16) {
          _mm_storeu_si128(reinterpret_cast<__m128i*>(op), b8);
        } else {
          alignas(16) uint8_t tmp[16];
          _mm_store_si128(reinterpret_cast<__m128i*>(tmp), b8);
          for (int l = 0; l < valid; ++l) op[l] = tmp[l];
        }
      }
    }
  }
}

void CountBitsAvx2(int64_t positions, int channels, const BitWord* bits, int32_t* counts) {
  const int nw = WordsFor(channels);
  for (int c = 0; c < channels; ++c) counts[c] = 0;
  // Byte j of a register <- byte j / 8 of the word (each 128-bit lane holds
  // the whole word after the 64-bit broadcast); then bit j % 8 of it.
  const __m256i sel_lo = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                          2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
  const __m256i sel_hi = _mm256_add_epi8(sel_lo, _mm256_set1_epi8(4));
  const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
  alignas(32) uint8_t tmp[64];
  for (int k = 0; k < nw; ++k) {
    const int n =
        channels - k * kBitsPerWord < kBitsPerWord ? channels - k * kBitsPerWord : kBitsPerWord;
    int32_t* ck = counts + k * kBitsPerWord;
    for (int64_t p0 = 0; p0 < positions; p0 += 255) {
      const int64_t p1 = positions - p0 < 255 ? positions : p0 + 255;
      __m256i c0 = _mm256_setzero_si256(), c1 = _mm256_setzero_si256();
      for (int64_t p = p0; p < p1; ++p) {
        const __m256i v = _mm256_set1_epi64x(int64_t(bits[p * nw + k]));
        const __m256i b0 = _mm256_and_si256(_mm256_shuffle_epi8(v, sel_lo), bit);
        const __m256i b1 = _mm256_and_si256(_mm256_shuffle_epi8(v, sel_hi), bit);
        c0 = _mm256_sub_epi8(c0, _mm256_cmpeq_epi8(b0, bit));
        c1 = _mm256_sub_epi8(c1, _mm256_cmpeq_epi8(b1, bit));
      }
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp), c0);
      _mm256_store_si256(reinterpret_cast<__m256i*>(tmp + 32), c1);
      for (int j = 0; j < n; ++j) ck[j] += tmp[j];
    }
  }
}

void ThresholdPackAvx2(int64_t positions, int channels, const int32_t* x, const int32_t* lo,
                       const int32_t* hi, BitWord* out) {
  const int nw = WordsFor(channels);
  for (int64_t p = 0; p < positions; ++p) {
    const int32_t* xp = x + p * channels;
    BitWord* op = out + p * nw;
    for (int k = 0; k < nw; ++k) {
      const int base = k * kBitsPerWord;
      const int n = channels - base < kBitsPerWord ? channels - base : kBitsPerWord;
      BitWord word = 0;
      int j = 0;
      for (; j + 8 <= n; j += 8) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xp + base + j));
        const __m256i l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lo + base + j));
        const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(hi + base + j));
        // outside = lo > x or x > hi
        const __m256i outside = _mm256_or_si256(_mm256_cmpgt_epi32(l, v), _mm256_cmpgt_epi32(v, h));
        const unsigned m = unsigned(_mm256_movemask_ps(_mm256_castsi256_ps(outside))) ^ 0xffu;
        word |= BitWord(m) << j;
      }
      for (; j < n; ++j)
        word |= BitWord((xp[base + j] >= lo[base + j]) & (xp[base + j] <= hi[base + j])) << j;
      op[k] = word;
    }
  }
}

#else  // !__AVX2__: never called (FastIsaSupported(kAvx2) is false).

void ConvRowTapsAvx2(const ConvSpec&, const TapsBlocked&, const int16_t*, int, int, int32_t*,
                     int16_t*) {}
void ConvRowTapsU8Avx2(const ConvSpec&, const TapsU8&, const uint8_t*, const int16_t*, int, int,
                       int32_t*, int16_t*) {}
void PointwiseInt32SubsetAvx2(int64_t, const int32_t*, const PointwiseSubsets&, int32_t*,
                              int32_t*) {}
void PointwiseInt16SubsetAvx2(int64_t, const int16_t*, const PointwiseSubsets&, int32_t*,
                              int32_t*) {}
void ThresholdPackAvx2(int64_t, int, const int32_t*, const int32_t*, const int32_t*, BitWord*) {}
void PointwiseBinaryAvx2(int64_t, int, const BitWord*, int, const BitWord*, int16_t*, uint8_t*, int,
                         int64_t, bool, int16_t*, int64_t) {}
void CountBitsAvx2(int64_t, int, const BitWord*, int32_t*) {}

#endif

}  // namespace billnet
