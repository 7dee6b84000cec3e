// AVX2 kernels (fast_kernels_avx2.h). This file alone is compiled with
// -mavx2 (engine/src/kernels/fast/CMakeLists.txt); it uses no inline
// functions shared with other files beyond trivial accessors, so no AVX2 code
// can leak into callers that run on other CPUs. Without AVX2 in the build the
// kernels are stubs that are never called (FastIsaSupported says no).
#include "kernels/fast/fast_kernels_avx2.h"

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

// Pointwise on int16 pairs: NX positions x NB blocks.
template <int NX, int NB>
inline void Pw16Tile(const int16_t* x, int ci, int pairs, const int16_t* w, int64_t wb,
                     int32_t* out, int co, const int* valid) {
  __m256i acc[NX][NB];
  for (int i = 0; i < NX; ++i)
    for (int b = 0; b < NB; ++b) acc[i][b] = _mm256_setzero_si256();
  for (int p = 0; p < pairs; ++p, w += 2 * kAvx2Lanes) {
    __m256i wv[NB];
    for (int b = 0; b < NB; ++b)
      wv[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + b * wb));
    for (int i = 0; i < NX; ++i) {
      const __m256i v = Broadcast32(x + int64_t(i) * ci + 2 * p);
      for (int b = 0; b < NB; ++b)
        acc[i][b] = _mm256_add_epi32(acc[i][b], _mm256_madd_epi16(v, wv[b]));
    }
  }
  for (int i = 0; i < NX; ++i)
    for (int b = 0; b < NB; ++b) StoreLanes(acc[i][b], valid[b], out + int64_t(i) * co + b * 8);
}

// Pointwise on int32 values: NX positions x NB blocks, sign-folded adds.
template <int NX, int NB>
inline void Pw32Tile(const int32_t* x, int ci, const int32_t* w, int64_t wb, int32_t* out, int co,
                     const int* valid) {
  __m256i acc[NX][NB];
  for (int i = 0; i < NX; ++i)
    for (int b = 0; b < NB; ++b) acc[i][b] = _mm256_setzero_si256();
  for (int c = 0; c < ci; ++c, w += kAvx2Lanes) {
    __m256i wv[NB];
    for (int b = 0; b < NB; ++b)
      wv[b] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + b * wb));
    for (int i = 0; i < NX; ++i) {
      const __m256i v = _mm256_set1_epi32(x[int64_t(i) * ci + c]);
      for (int b = 0; b < NB; ++b)
        acc[i][b] = _mm256_add_epi32(acc[i][b], _mm256_sign_epi32(v, wv[b]));
    }
  }
  for (int i = 0; i < NX; ++i)
    for (int b = 0; b < NB; ++b) StoreLanes(acc[i][b], valid[b], out + int64_t(i) * co + b * 8);
}

// Runs `Tile<NX, NB>` over count positions and the blocks of co outputs.
// step: input elements per position; wb: weight elements per block.
template <template <int, int> class Tile, typename In, typename W>
void PointwiseDriver(int64_t count, int ci, int step, const In* x, int co, const W* w, int64_t wb,
                     int32_t* out) {
  const int blocks = (co + kAvx2Lanes - 1) / kAvx2Lanes;
  auto valid_of = [&](int b) {
    const int rest = co - b * kAvx2Lanes;
    return rest < kAvx2Lanes ? rest : kAvx2Lanes;
  };
  int b = 0;
  for (; b + 2 <= blocks; b += 2) {
    const int valid[2] = {valid_of(b), valid_of(b + 1)};
    int64_t p = 0;
    for (; p + 4 <= count; p += 4)
      Tile<4, 2>::Run(x + p * step, ci, w + b * wb, wb, out + p * co + b * 8, co, valid);
    for (; p < count; ++p)
      Tile<1, 2>::Run(x + p * step, ci, w + b * wb, wb, out + p * co + b * 8, co, valid);
  }
  for (; b < blocks; ++b) {
    const int valid[1] = {valid_of(b)};
    int64_t p = 0;
    for (; p + 8 <= count; p += 8)
      Tile<8, 1>::Run(x + p * step, ci, w + b * wb, wb, out + p * co + b * 8, co, valid);
    for (; p < count; ++p)
      Tile<1, 1>::Run(x + p * step, ci, w + b * wb, wb, out + p * co + b * 8, co, valid);
  }
}

template <int NX, int NB>
struct Pw16 {
  static void Run(const int16_t* x, int ci, const int16_t* w, int64_t wb, int32_t* out, int co,
                  const int* valid) {
    Pw16Tile<NX, NB>(x, ci, (ci + 1) / 2, w, wb, out, co, valid);
  }
};

template <int NX, int NB>
struct Pw32 {
  static void Run(const int32_t* x, int ci, const int32_t* w, int64_t wb, int32_t* out, int co,
                  const int* valid) {
    Pw32Tile<NX, NB>(x, ci, w, wb, out, co, valid);
  }
};

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

void PointwiseInt16Avx2(int64_t count, int ci, const int16_t* x, int co, const int16_t* w,
                        int32_t* out) {
  const int64_t wb = int64_t((ci + 1) / 2) * 2 * kAvx2Lanes;
  PointwiseDriver<Pw16>(count, ci, ci, x, co, w, wb, out);
}

void PointwiseInt32Avx2(int64_t count, int ci, const int32_t* x, int co, const int32_t* wsign,
                        int32_t* out) {
  const int64_t wb = int64_t(ci) * kAvx2Lanes;
  PointwiseDriver<Pw32>(count, ci, ci, x, co, wsign, wb, out);
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
void PointwiseInt16Avx2(int64_t, int, const int16_t*, int, const int16_t*, int32_t*) {}
void PointwiseInt32Avx2(int64_t, int, const int32_t*, int, const int32_t*, int32_t*) {}
void ThresholdPackAvx2(int64_t, int, const int32_t*, const int32_t*, const int32_t*, BitWord*) {}

#endif

}  // namespace billnet
