// AVX-512 kernels (fast_kernels_avx512.h). Built twice:
//   - for the product, this file alone with -mavx512f -mavx512bw -mavx512vl
//     -mavx512vnni -mavx512vpopcntdq (engine/src/kernels/fast/CMakeLists.txt); it runs only
//     where isa.cc finds those on the CPU; without them in the build the
//     kernel is a stub that is never called;
//   - for the tests, with BILLNET_AVX512_EMULATE on SIMDe's portable
//     AVX-512 (namespace avx512_emulated), whatever the host.
// The few vector operations go through the wrappers below, which call the
// same intrinsics in both builds (X() adds SIMDe's prefix in the emulated one).
#include "kernels/fast/fast_kernels_avx512.h"

#include <cassert>
#include <cstdint>
#include <cstring>
#include <type_traits>

#if defined(BILLNET_AVX512_EMULATE)
#include <simde/x86/avx512.h>
#define BILLNET_AVX512_KERNELS 1
#elif defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VNNI__) && \
    defined(__AVX512VPOPCNTDQ__)
#include <immintrin.h>
#define BILLNET_AVX512_KERNELS 1
// GCC 12's AVX-512 intrinsics (unpacks, lane shuffles, 256-to-512 casts,
// narrowing moves) start from a self-initialized "undefined" register, which
// -Wmaybe-uninitialized reports once they are inlined here: a false positive
// inside the compiler's own header.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#endif

namespace billnet {
#if defined(BILLNET_AVX512_EMULATE)
namespace avx512_emulated {
#endif

#if defined(BILLNET_AVX512_KERNELS)

namespace {

// X(_mm512_add_epi32) names the CPU's intrinsic, or SIMDe's of the same
// name (simde_mm512_add_epi32) in the emulated build: both builds make the
// very same calls.
#if defined(BILLNET_AVX512_EMULATE)
#define X(name) simde##name
#else
#define X(name) name
#endif

using V = X(__m512i);
inline V Zero() { return X(_mm512_setzero_si512)(); }
inline V Set1(int32_t v) { return X(_mm512_set1_epi32)(v); }
inline V Load(const void* p) { return X(_mm512_loadu_si512)(p); }
inline void Store(void* p, V v) { X(_mm512_storeu_si512)(p, v); }
inline V Add(V a, V b) { return X(_mm512_add_epi32)(a, b); }
inline V Sub(V a, V b) { return X(_mm512_sub_epi32)(a, b); }
inline V And(V a, V b) { return X(_mm512_and_si512)(a, b); }
// acc + the sums of 4 products u8 (u) x s8 (w) per int32 lane.
inline V DotU8S8(V acc, V u, V w) { return X(_mm512_dpbusd_epi32)(acc, u, w); }
// acc + the sums of 2 products int16 x int16 per int32 lane.
inline V DotS16(V acc, V a, V b) { return X(_mm512_dpwssd_epi32)(acc, a, b); }
// The number of 1 bits of each int32 lane.
inline V Popcount32(V v) { return X(_mm512_popcnt_epi32)(v); }
// 16 consecutive int16 as int32 lanes (two 256-bit widenings: SIMDe 0.7.4
// has no _mm512_cvtepi16_epi32).
inline V Load16Widened(const int16_t* p) {
  const auto* q = reinterpret_cast<const X(__m128i)*>(p);
  const X(__m256i) lo = X(_mm256_cvtepi16_epi32)(X(_mm_loadu_si128)(q));
  const X(__m256i) hi = X(_mm256_cvtepi16_epi32)(X(_mm_loadu_si128)(q + 1));
  return X(_mm512_inserti64x4)(X(_mm512_castsi256_si512)(lo), hi, 1);
}
// The 16 lanes as int16 (saturating; the callers' sums fit).
inline void Store16(int16_t* p, V v) {
  X(_mm256_storeu_si256)(reinterpret_cast<X(__m256i)*>(p), X(_mm512_cvtsepi32_epi16)(v));
}
// The 16 lanes, each in [0, 255], as u8: shifted into int8's range,
// narrowed (saturating; nothing saturates) and shifted back by XOR 0x80.
inline void StoreU8(uint8_t* p, V v) {
  const X(__m128i) b = X(_mm512_cvtsepi32_epi8)(Sub(v, Set1(128)));
  X(_mm_storeu_si128)
  (reinterpret_cast<X(__m128i)*>(p), X(_mm_xor_si128)(b, X(_mm_set1_epi8)(int8_t(0x80))));
}

constexpr int kLanes = kAvx512Lanes;

inline V Broadcast32(const void* p) {
  int32_t v;
  std::memcpy(&v, p, sizeof v);
  return Set1(v);
}

// The 16 lanes as int32, int16 or u8.
inline void StoreAs(int32_t* p, V v) { Store(p, v); }
inline void StoreAs(int16_t* p, V v) { Store16(p, v); }
inline void StoreAs(uint8_t* p, V v) { StoreU8(p, v); }

// Stores one register, of which `valid` (1..16) lanes are real.
template <typename T>
inline void StoreLanes(V v, int valid, T* dst) {
  if (valid == kLanes) {
    StoreAs(dst, v);
    return;
  }
  T tmp[kLanes];
  StoreAs(tmp, v);
  for (int l = 0; l < valid; ++l) dst[l] = tmp[l];
}

// One tile: NX output positions x NB blocks of 16 output channels. Per run
// and quad, NB weight loads shared by the NX positions' broadcasts.
template <int NX, int NB, typename Out>
inline void Tile(const TapsU8& tb, const uint8_t* in, const int8_t* w, int64_t wb,
                 const int16_t* pin, const int16_t* pw, int64_t pwb, const int32_t* const* corr,
                 Out* out, int64_t out_stride, const int* valid) {
  V acc[NX][NB];
  for (int i = 0; i < NX; ++i)
    for (int b = 0; b < NB; ++b) acc[i][b] = Zero();
  for (int r = 0; r < tb.runs; ++r) {
    const uint8_t* ip = in + tb.run_off[r];
    for (int q = 0; q < tb.quads; ++q, w += 4 * kLanes) {
      V wv[NB];
      for (int b = 0; b < NB; ++b) wv[b] = Load(w + b * wb);
      for (int i = 0; i < NX; ++i) {
        const V u = Broadcast32(ip + i * tb.x_step + 4 * q);
        for (int b = 0; b < NB; ++b) acc[i][b] = DotU8S8(acc[i][b], u, wv[b]);
      }
    }
  }
  if (tb.scale == 2)
    for (int i = 0; i < NX; ++i)
      for (int b = 0; b < NB; ++b) acc[i][b] = Add(acc[i][b], acc[i][b]);
  if (pin) {
    for (int r = 0; r < tb.p_runs; ++r) {
      const int16_t* pp = pin + tb.p_run_off[r];
      for (int q = 0; q < tb.p_pairs; ++q, pw += 2 * kLanes) {
        V wv[NB];
        for (int b = 0; b < NB; ++b) wv[b] = Load(pw + b * pwb);
        for (int i = 0; i < NX; ++i) {
          const V p = Broadcast32(pp + i * tb.p_x_step + 2 * q);
          for (int b = 0; b < NB; ++b) acc[i][b] = DotS16(acc[i][b], p, wv[b]);
        }
      }
    }
  }
  for (int i = 0; i < NX; ++i)
    for (int b = 0; b < NB; ++b)
      StoreLanes(Sub(acc[i][b], Load(corr[i] + b * kLanes)), valid[b],
                 out + i * out_stride + b * kLanes);
}

// The tiles of blocks [b, b + NB) of super-group sg over one output row:
// 8 positions at a time, then 4, then 1.
template <int NB, typename Out>
void BlockRow(const TapsU8& tb, const uint8_t* base, const int16_t* pbase, int out_w, int co,
              const int32_t* corr_row, int sg, int b, Out* out) {
  const int64_t wb = int64_t(tb.runs) * tb.quads * 4 * kLanes;
  const int64_t pwb = int64_t(tb.p_runs) * tb.p_pairs * 2 * kLanes;
  int valid[NB];
  for (int j = 0; j < NB; ++j) {
    const int rest = tb.sg_out - (b + j) * kLanes;
    valid[j] = rest < kLanes ? rest : kLanes;
  }
  const uint8_t* in = base + int64_t(sg) * tb.span;
  const int8_t* w = tb.w.data() + (int64_t(sg) * tb.blocks + b) * wb;
  const int16_t* pw = pbase ? tb.p_w.data() + (int64_t(sg) * tb.blocks + b) * pwb : nullptr;
  const int32_t* csg = corr_row + int64_t(sg) * tb.sg_out + b * kLanes;
  Out* ob = out + int64_t(sg) * tb.sg_out + b * kLanes;
  auto tiles = [&](auto nx, int x) {
    constexpr int NX = decltype(nx)::value;
    const int32_t* cr[NX];
    for (int i = 0; i < NX; ++i) cr[i] = csg + int64_t(tb.cls_x[x + i]) * co;
    Tile<NX, NB>(tb, in + x * tb.x_step, w, wb, pbase ? pbase + x * tb.p_x_step : nullptr, pw, pwb,
                 cr, ob + int64_t(x) * co, co, valid);
  };
  int x = 0;
  for (; x + 8 <= out_w; x += 8) tiles(std::integral_constant<int, 8>(), x);
  for (; x + 4 <= out_w; x += 4) tiles(std::integral_constant<int, 4>(), x);
  for (; x < out_w; ++x) tiles(std::integral_constant<int, 1>(), x);
}

template <typename Out>
void Row(const TapsU8& tb, const uint8_t* base, const int16_t* pbase, int out_w, int co,
         const int32_t* corr_row, Out* out) {
  for (int sg = 0; sg < tb.supergroups; ++sg) {
    int b = 0;
    for (; b + 2 <= tb.blocks; b += 2)
      BlockRow<2>(tb, base, pbase, out_w, co, corr_row, sg, b, out);
    for (; b < tb.blocks; ++b) BlockRow<1>(tb, base, pbase, out_w, co, corr_row, sg, b, out);
  }
}

// r[i] (row i, lanes j) becomes r[j] (column j, lanes i): 32-bit, then
// 64-bit interleaves within the 128-bit lanes, then two rounds of 128-bit
// lane shuffles.
inline void Transpose16x16(V r[16]) {
  V t[16], u[16];
  for (int k = 0; k < 8; ++k) {
    t[2 * k] = X(_mm512_unpacklo_epi32)(r[2 * k], r[2 * k + 1]);
    t[2 * k + 1] = X(_mm512_unpackhi_epi32)(r[2 * k], r[2 * k + 1]);
  }
  // u[4k + e], 128-bit lane j: element e of lane j of rows 4k..4k+3.
  for (int k = 0; k < 4; ++k) {
    u[4 * k] = X(_mm512_unpacklo_epi64)(t[4 * k], t[4 * k + 2]);
    u[4 * k + 1] = X(_mm512_unpackhi_epi64)(t[4 * k], t[4 * k + 2]);
    u[4 * k + 2] = X(_mm512_unpacklo_epi64)(t[4 * k + 1], t[4 * k + 3]);
    u[4 * k + 3] = X(_mm512_unpackhi_epi64)(t[4 * k + 1], t[4 * k + 3]);
  }
  // Column 4j + e: lane j of u[e], u[4 + e], u[8 + e], u[12 + e].
  for (int e = 0; e < 4; ++e) {
    const V v0 = X(_mm512_shuffle_i32x4)(u[e], u[4 + e], 0x44);
    const V v1 = X(_mm512_shuffle_i32x4)(u[8 + e], u[12 + e], 0x44);
    const V w0 = X(_mm512_shuffle_i32x4)(u[e], u[4 + e], 0xee);
    const V w1 = X(_mm512_shuffle_i32x4)(u[8 + e], u[12 + e], 0xee);
    r[e] = X(_mm512_shuffle_i32x4)(v0, v1, 0x88);
    r[4 + e] = X(_mm512_shuffle_i32x4)(v0, v1, 0xdd);
    r[8 + e] = X(_mm512_shuffle_i32x4)(w0, w1, 0x88);
    r[12 + e] = X(_mm512_shuffle_i32x4)(w0, w1, 0xdd);
  }
}

inline V LoadChannels(const int32_t* p) { return Load(p); }
inline V LoadChannels(const int16_t* p) { return Load16Widened(p); }

// How many of a chunk's np positions register v holds (0..16).
inline int PositionsIn(int np, int v) {
  const int left = np - v * kLanes;
  return left < 0 ? 0 : left < kLanes ? left : kLanes;
}

// The subset-sum kernel of fast_kernels_avx2.h on 16-position registers
// (NV of them per chunk): tile[c * NP + p] = x[p * ci + c] (0 past np and
// past ci up to 4 groups), tables[(16 g + pattern) * NP + p], res[o * NP + p]
// for 16 outputs at a time, transposed back into out[p * co + o].
template <int NV, typename In>
void SubsetChunk(const In* x, const PointwiseSubsets& s, int np, int32_t* tile, int32_t* tables,
                 int32_t* res, int32_t* out) {
  constexpr int NP = NV * kLanes;
  const int ci = s.ci, co = s.co, groups = s.groups;
  for (int v = 0; v < NV; ++v) {
    const int pv = PositionsIn(np, v);
    const In* xv = x + int64_t(v) * kLanes * ci;
    int c = 0;
    for (; c + kLanes <= ci; c += kLanes) {
      V r[kLanes];
      for (int k = 0; k < kLanes; ++k)
        r[k] = k < pv ? LoadChannels(xv + int64_t(k) * ci + c) : Zero();
      Transpose16x16(r);
      for (int j = 0; j < kLanes; ++j) Store(tile + (c + j) * NP + v * kLanes, r[j]);
    }
    for (; c < 4 * groups; ++c)
      for (int k = 0; k < kLanes; ++k)
        tile[c * NP + v * kLanes + k] = c < ci && k < pv ? int32_t(xv[int64_t(k) * ci + c]) : 0;
  }
  // Tables: entry p = sum_j (bit j of p ? +1 : -1) x_4g+j.
  for (int g = 0; g < groups; ++g)
    for (int v = 0; v < NV; ++v) {
      V d[4], e[16];
      for (int j = 0; j < 4; ++j) d[j] = Load(tile + (4 * g + j) * NP + v * kLanes);
      e[0] = Sub(Zero(), Add(Add(d[0], d[1]), Add(d[2], d[3])));
      for (int j = 0; j < 4; ++j) d[j] = Add(d[j], d[j]);
      for (int p = 1; p < 16; ++p) {
        const int hb = p >= 8 ? 3 : p >= 4 ? 2 : p >= 2 ? 1 : 0;
        e[p] = Add(e[p & ~(1 << hb)], d[hb]);
      }
      for (int p = 0; p < 16; ++p) Store(tables + (16 * g + p) * NP + v * kLanes, e[p]);
    }
  // Outputs, 16 at a time.
  for (int o0 = 0; o0 < co; o0 += kLanes) {
    const int no = co - o0 < kLanes ? co - o0 : kLanes;
    for (int j = 0; j < kLanes; ++j) {
      V a[NV], b[NV];
      for (int v = 0; v < NV; ++v) a[v] = b[v] = Zero();
      if (j < no) {
        const uint16_t* en = s.entry.data() + int64_t(o0 + j) * groups;
        int g = 0;
        for (; g + 2 <= groups; g += 2) {
          const int32_t* p0 = tables + int64_t(en[g]) * NP;
          const int32_t* p1 = tables + int64_t(en[g + 1]) * NP;
          for (int v = 0; v < NV; ++v) {
            a[v] = Add(a[v], Load(p0 + v * kLanes));
            b[v] = Add(b[v], Load(p1 + v * kLanes));
          }
        }
        if (g < groups)
          for (int v = 0; v < NV; ++v)
            a[v] = Add(a[v], Load(tables + int64_t(en[g]) * NP + v * kLanes));
      }
      for (int v = 0; v < NV; ++v) Store(res + j * NP + v * kLanes, Add(a[v], b[v]));
    }
    for (int v = 0; v < NV; ++v) {
      V r[kLanes];
      for (int j = 0; j < kLanes; ++j) r[j] = Load(res + j * NP + v * kLanes);
      Transpose16x16(r);
      const int pv = PositionsIn(np, v);
      for (int k = 0; k < pv; ++k) StoreLanes(r[k], no, out + int64_t(v * kLanes + k) * co + o0);
    }
  }
}

// Chunks of up to 32 positions; a whole call of at most 8 positions (the
// 8-wide rows of BILLNET 2x's mor2/mor3) goes to the AVX2 kernel, whose
// 8-lane registers it fills.
template <typename In>
void SubsetDriver(int64_t count, const In* x, const PointwiseSubsets& s, int32_t* scratch,
                  int32_t* out) {
  const auto [tile, tables, res] = SubsetScratchAt(scratch, s.groups);
  for (int64_t p = 0; p < count; p += 2 * kLanes) {
    const int np = count - p < 2 * kLanes ? int(count - p) : 2 * kLanes;
    if (np > kLanes)
      SubsetChunk<2>(x + p * s.ci, s, np, tile, tables, res, out + p * s.co);
    else
      SubsetChunk<1>(x + p * s.ci, s, np, tile, tables, res, out + p * s.co);
  }
}

}  // namespace

void PointwiseInt32SubsetAvx512(int64_t count, const int32_t* x, const PointwiseSubsets& s,
                                int32_t* scratch, int32_t* out) {
  if (count <= kAvx2Lanes)
    PointwiseInt32SubsetAvx2(count, x, s, scratch, out);
  else
    SubsetDriver(count, x, s, scratch, out);
}

void PointwiseInt16SubsetAvx512(int64_t count, const int16_t* x, const PointwiseSubsets& s,
                                int32_t* scratch, int32_t* out) {
  if (count <= kAvx2Lanes)
    PointwiseInt16SubsetAvx2(count, x, s, scratch, out);
  else
    SubsetDriver(count, x, s, scratch, out);
}

void ConvRowTapsU8Avx512(const ConvSpec& c, const TapsU8& tb, const uint8_t* padded,
                         const int16_t* pplane, int t, int y, int32_t* out_row,
                         int16_t* out16_row) {
  assert(tb.lanes == kLanes);
  const int64_t row = int64_t(c.in.w + 2 * c.pw) * c.ci;
  const int64_t frame = int64_t(c.in.h + 2 * c.ph) * row;
  const uint8_t* base = padded + int64_t(t) * c.st * frame + int64_t(y) * c.sh * row;
  const int32_t* corr_row =
      tb.corr.data() + (int64_t(tb.cls_t[t]) * tb.ny + tb.cls_y[y]) * tb.nx * c.co;
  const int16_t* pbase = nullptr;
  if (!tb.p_w.empty()) {
    const int64_t prow = c.in.w + 2 * c.pw, pframe = int64_t(c.in.h + 2 * c.ph) * prow;
    pbase = pplane + int64_t(t) * c.st * pframe + int64_t(y) * c.sh * prow;
  }
  if (out16_row)
    Row(tb, base, pbase, c.out.w, c.co, corr_row, out16_row);
  else
    Row(tb, base, pbase, c.out.w, c.co, corr_row, out_row);
}

void PointwiseBinaryAvx512(int64_t count, int words, const BitWord* a, int co, const BitWord* w,
                           int16_t* out16, uint8_t* out8, int offset, int64_t out_stride,
                           bool p_form, int16_t* pplane, int64_t pplane_stride) {
  const int blocks = (co + kLanes - 1) / kLanes;
  const uint32_t* w32 = reinterpret_cast<const uint32_t*>(w);
  for (int64_t p = 0; p < count; ++p) {
    const BitWord* ap = a + p * words;
    int total = 0;
    for (int k = 0; k < words; ++k) total += __builtin_popcountll(ap[k]);
    if (p_form) pplane[p * pplane_stride] = int16_t(total);
    // v = 2 cnt - total + offset, or the count itself (p form).
    const V base = Set1(p_form ? 0 : offset - total);
    for (int b = 0; b < blocks; ++b) {
      const uint32_t* wb = w32 + int64_t(b) * words * 2 * kLanes;
      V cnt = Zero();
      for (int k = 0; k < words; ++k) {
        const V lo = Set1(int32_t(uint32_t(ap[k]))), hi = Set1(int32_t(uint32_t(ap[k] >> 32)));
        cnt = Add(cnt, Add(Popcount32(And(lo, Load(wb + 2 * k * kLanes))),
                           Popcount32(And(hi, Load(wb + (2 * k + 1) * kLanes)))));
      }
      const V v = p_form ? cnt : Add(Add(cnt, cnt), base);
      const int valid = co - b * kLanes < kLanes ? co - b * kLanes : kLanes;
      if (out16)
        StoreLanes(v, valid, out16 + p * out_stride + b * kLanes);
      else
        StoreLanes(v, valid, out8 + p * out_stride + b * kLanes);
    }
  }
}

#undef X

#else  // no AVX-512 in this build: never called (FastIsaSupported says no)

void ConvRowTapsU8Avx512(const ConvSpec&, const TapsU8&, const uint8_t*, const int16_t*, int, int,
                         int32_t*, int16_t*) {}
void PointwiseBinaryAvx512(int64_t, int, const BitWord*, int, const BitWord*, int16_t*, uint8_t*,
                           int, int64_t, bool, int16_t*, int64_t) {}
void PointwiseInt32SubsetAvx512(int64_t, const int32_t*, const PointwiseSubsets&, int32_t*,
                                int32_t*) {}
void PointwiseInt16SubsetAvx512(int64_t, const int16_t*, const PointwiseSubsets&, int32_t*,
                                int32_t*) {}

#endif

#if defined(BILLNET_AVX512_EMULATE)
const Avx512KernelTable kTable = {&ConvRowTapsU8Avx512, &PointwiseBinaryAvx512,
                                  &PointwiseInt32SubsetAvx512, &PointwiseInt16SubsetAvx512};
}  // namespace avx512_emulated
#else
const Avx512KernelTable& Avx512Kernels() {
  static const Avx512KernelTable kNative = {&ConvRowTapsU8Avx512, &PointwiseBinaryAvx512,
                                            &PointwiseInt32SubsetAvx512,
                                            &PointwiseInt16SubsetAvx512};
  const Avx512KernelTable* t = Avx512KernelsForTesting();
  return t ? *t : kNative;
}
#endif
}  // namespace billnet
