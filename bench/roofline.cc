#include "roofline.h"

#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "bench_timer.h"

namespace billnet::bench {
namespace {

// Each loop runs `iters` iterations of independent accumulator chains (enough
// of them to hide the instruction's latency) on registers only. The empty asm
// statements make every accumulator (and every varying input) opaque after
// each iteration, so the compiler can neither hoist nor fold the work; they
// emit no instruction. Each returns a value derived from the accumulators so
// the loop is not dead.

#define BILLNET_X12(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
#define BILLNET_X8(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define BILLNET_X6(X) X(0) X(1) X(2) X(3) X(4) X(5)

// ---------------------------------------------------------------- AVX-512

// The first 64-bit lane (enough to keep the loop alive).
__attribute__((target("avx512f"))) int64_t Lane0(__m512i v) {
  alignas(64) int64_t lanes[8];
  _mm512_store_si512(lanes, v);
  return lanes[0];
}

// 8 chains of VPAND + VPOPCNTQ + VPADDQ: 8 x 512 binary MACs.
__attribute__((target("avx512f,avx512bw,avx512vpopcntdq"))) int64_t PopcountAvx512(int64_t iters) {
  const __m512i y = _mm512_set1_epi64(0x5a5a5a5a5a5a5a5aLL);
#define DECL(i) __m512i a##i = _mm512_setzero_si512(), x##i = _mm512_set1_epi64(i * 77 + 1);
  BILLNET_X8(DECL)
#undef DECL
  for (int64_t n = 0; n < iters; ++n) {
#define STEP(i) a##i = _mm512_add_epi64(a##i, _mm512_popcnt_epi64(_mm512_and_si512(x##i, y)));
    BILLNET_X8(STEP)
#undef STEP
    asm volatile(""
                 : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7));
    asm volatile(""
                 : "+v"(x0), "+v"(x1), "+v"(x2), "+v"(x3), "+v"(x4), "+v"(x5), "+v"(x6), "+v"(x7));
  }
  __m512i s =
      _mm512_add_epi64(_mm512_add_epi64(_mm512_add_epi64(a0, a1), _mm512_add_epi64(a2, a3)),
                       _mm512_add_epi64(_mm512_add_epi64(a4, a5), _mm512_add_epi64(a6, a7)));
  return Lane0(s);
}

// 12 chains of VPDPBUSD (64 u8 x s8 MACs each).
__attribute__((target("avx512f,avx512bw,avx512vnni"))) int64_t Int8DotAvx512(int64_t iters) {
  const __m512i x = _mm512_set1_epi8(3), y = _mm512_set1_epi8(-1);
#define DECL(i) __m512i a##i = _mm512_set1_epi32(i);
  BILLNET_X12(DECL)
#undef DECL
  for (int64_t n = 0; n < iters; ++n) {
#define STEP(i) a##i = _mm512_dpbusd_epi32(a##i, x, y);
    BILLNET_X12(STEP)
#undef STEP
    asm volatile(""
                 : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7),
                   "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
  }
#define SUM(i) s = _mm512_add_epi32(s, a##i);
  __m512i s = _mm512_setzero_si512();
  BILLNET_X12(SUM)
#undef SUM
  return Lane0(s);
}

// 12 chains of VPDPWSSD (32 s16 x s16 MACs each).
__attribute__((target("avx512f,avx512bw,avx512vnni"))) int64_t Int16DotAvx512(int64_t iters) {
  const __m512i x = _mm512_set1_epi16(3), y = _mm512_set1_epi16(-1);
#define DECL(i) __m512i a##i = _mm512_set1_epi32(i);
  BILLNET_X12(DECL)
#undef DECL
  for (int64_t n = 0; n < iters; ++n) {
#define STEP(i) a##i = _mm512_dpwssd_epi32(a##i, x, y);
    BILLNET_X12(STEP)
#undef STEP
    asm volatile(""
                 : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7),
                   "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
  }
#define SUM(i) s = _mm512_add_epi32(s, a##i);
  __m512i s = _mm512_setzero_si512();
  BILLNET_X12(SUM)
#undef SUM
  return Lane0(s);
}

// 12 chains of VPADDD (16 lanes: one +-1 MAC each).
__attribute__((target("avx512f"))) int64_t Int32AddAvx512(int64_t iters) {
  const __m512i x = _mm512_set1_epi32(3);
#define DECL(i) __m512i a##i = _mm512_set1_epi32(i);
  BILLNET_X12(DECL)
#undef DECL
  for (int64_t n = 0; n < iters; ++n) {
#define STEP(i) a##i = _mm512_add_epi32(a##i, x);
    BILLNET_X12(STEP)
#undef STEP
    asm volatile(""
                 : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7),
                   "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
  }
#define SUM(i) s = _mm512_add_epi32(s, a##i);
  __m512i s = _mm512_setzero_si512();
  BILLNET_X12(SUM)
#undef SUM
  return Lane0(s);
}

// ---------------------------------------------------------------- AVX2

// No vector popcount in AVX2: 6 chains of AND + POPCNT + ADD on 64 bits.
__attribute__((target("popcnt"))) int64_t PopcountScalar(int64_t iters) {
  const uint64_t y = 0x5a5a5a5a5a5a5a5aULL;
#define DECL(i) uint64_t a##i = 0, x##i = uint64_t(i) * 77 + 1;
  BILLNET_X6(DECL)
#undef DECL
  for (int64_t n = 0; n < iters; ++n) {
#define STEP(i) a##i += uint64_t(__builtin_popcountll(x##i & y));
    BILLNET_X6(STEP)
#undef STEP
    asm volatile(""
                 : "+r"(a0), "+r"(a1), "+r"(a2), "+r"(a3), "+r"(a4), "+r"(a5), "+r"(x0), "+r"(x1),
                   "+r"(x2), "+r"(x3), "+r"(x4), "+r"(x5));
  }
  return int64_t(a0 + a1 + a2 + a3 + a4 + a5);
}

// 6 chains of VPMADDUBSW + VPMADDWD + VPADDD (32 u8 x s8 MACs).
__attribute__((target("avx2"))) int64_t Int8DotAvx2(int64_t iters) {
  const __m256i y = _mm256_set1_epi8(-1), ones = _mm256_set1_epi16(1);
#define DECL(i) __m256i a##i = _mm256_setzero_si256(), x##i = _mm256_set1_epi8(i + 1);
  BILLNET_X6(DECL)
#undef DECL
  for (int64_t n = 0; n < iters; ++n) {
#define STEP(i) \
  a##i = _mm256_add_epi32(a##i, _mm256_madd_epi16(_mm256_maddubs_epi16(x##i, y), ones));
    BILLNET_X6(STEP)
#undef STEP
    asm volatile(""
                 : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(x0), "+v"(x1),
                   "+v"(x2), "+v"(x3), "+v"(x4), "+v"(x5));
  }
  __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)),
                               _mm256_add_epi32(a4, a5));
  return _mm256_extract_epi32(s, 0);
}

// 6 chains of VPMADDWD + VPADDD (16 s16 x s16 MACs).
__attribute__((target("avx2"))) int64_t Int16DotAvx2(int64_t iters) {
  const __m256i y = _mm256_set1_epi16(-1);
#define DECL(i) __m256i a##i = _mm256_setzero_si256(), x##i = _mm256_set1_epi16(i + 1);
  BILLNET_X6(DECL)
#undef DECL
  for (int64_t n = 0; n < iters; ++n) {
#define STEP(i) a##i = _mm256_add_epi32(a##i, _mm256_madd_epi16(x##i, y));
    BILLNET_X6(STEP)
#undef STEP
    asm volatile(""
                 : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(x0), "+v"(x1),
                   "+v"(x2), "+v"(x3), "+v"(x4), "+v"(x5));
  }
  __m256i s = _mm256_add_epi32(_mm256_add_epi32(_mm256_add_epi32(a0, a1), _mm256_add_epi32(a2, a3)),
                               _mm256_add_epi32(a4, a5));
  return _mm256_extract_epi32(s, 0);
}

// 12 chains of VPADDD ymm (8 lanes).
__attribute__((target("avx2"))) int64_t Int32AddAvx2(int64_t iters) {
  const __m256i x = _mm256_set1_epi32(3);
#define DECL(i) __m256i a##i = _mm256_set1_epi32(i);
  BILLNET_X12(DECL)
#undef DECL
  for (int64_t n = 0; n < iters; ++n) {
#define STEP(i) a##i = _mm256_add_epi32(a##i, x);
    BILLNET_X12(STEP)
#undef STEP
    asm volatile(""
                 : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7),
                   "+v"(a8), "+v"(a9), "+v"(a10), "+v"(a11));
  }
#define SUM(i) s = _mm256_add_epi32(s, a##i);
  __m256i s = _mm256_setzero_si256();
  BILLNET_X12(SUM)
#undef SUM
  return _mm256_extract_epi32(s, 0);
}

// ---------------------------------------------------------------- scalar

// 6 chains of a 32-bit multiply-add (int8 and int16 alike).
int64_t MulAddScalar(int64_t iters) {
  const int32_t y = -1;
#define DECL(i) int32_t a##i = 0, x##i = i + 1;
  BILLNET_X6(DECL)
#undef DECL
  for (int64_t n = 0; n < iters; ++n) {
#define STEP(i) a##i += x##i * y;
    BILLNET_X6(STEP)
#undef STEP
    asm volatile(""
                 : "+r"(a0), "+r"(a1), "+r"(a2), "+r"(a3), "+r"(a4), "+r"(a5), "+r"(x0), "+r"(x1),
                   "+r"(x2), "+r"(x3), "+r"(x4), "+r"(x5));
  }
  return int64_t(a0) + a1 + a2 + a3 + a4 + a5;
}

// 6 chains of a 32-bit add.
int64_t AddScalar(int64_t iters) {
#define DECL(i) int32_t a##i = 0, x##i = i + 1;
  BILLNET_X6(DECL)
#undef DECL
  for (int64_t n = 0; n < iters; ++n) {
#define STEP(i) a##i += x##i;
    BILLNET_X6(STEP)
#undef STEP
    asm volatile(""
                 : "+r"(a0), "+r"(a1), "+r"(a2), "+r"(a3), "+r"(a4), "+r"(a5), "+r"(x0), "+r"(x1),
                   "+r"(x2), "+r"(x3), "+r"(x4), "+r"(x5));
  }
  return int64_t(a0) + a1 + a2 + a3 + a4 + a5;
}

#undef BILLNET_X12
#undef BILLNET_X8
#undef BILLNET_X6

struct Mix {
  RoofOp op;
  const char* instruction;
  int chains;
  int macs_per_group;
  int instructions_per_group;
  int64_t (*loop)(int64_t);
};

std::vector<Mix> Mixes(const std::string& isa) {
  if (isa == "avx512")
    return {{RoofOp::kPopcount, "VPAND+VPOPCNTQ+VPADDQ zmm", 8, 512, 3, PopcountAvx512},
            {RoofOp::kInt8Dot, "VPDPBUSD zmm", 12, 64, 1, Int8DotAvx512},
            {RoofOp::kInt16Dot, "VPDPWSSD zmm", 12, 32, 1, Int16DotAvx512},
            {RoofOp::kInt32Add, "VPADDD zmm", 12, 16, 1, Int32AddAvx512}};
  if (isa == "avx2")
    return {{RoofOp::kPopcount, "AND+POPCNT+ADD r64", 6, 64, 3, PopcountScalar},
            {RoofOp::kInt8Dot, "VPMADDUBSW+VPMADDWD+VPADDD ymm", 6, 32, 3, Int8DotAvx2},
            {RoofOp::kInt16Dot, "VPMADDWD+VPADDD ymm", 6, 16, 2, Int16DotAvx2},
            {RoofOp::kInt32Add, "VPADDD ymm", 12, 8, 1, Int32AddAvx2}};
  const bool popcnt = __builtin_cpu_supports("popcnt");
  return {{RoofOp::kPopcount, popcnt ? "AND+POPCNT+ADD r64" : "AND+popcount r64", 6, 64, 3,
           PopcountScalar},
          {RoofOp::kInt8Dot, "IMUL+ADD r32", 6, 1, 2, MulAddScalar},
          {RoofOp::kInt16Dot, "IMUL+ADD r32", 6, 1, 2, MulAddScalar},
          {RoofOp::kInt32Add, "ADD r32", 6, 1, 1, AddScalar}};
}

}  // namespace

const char* RoofOpName(RoofOp op) {
  switch (op) {
    case RoofOp::kPopcount:
      return "popcount";
    case RoofOp::kInt8Dot:
      return "int8_dot";
    case RoofOp::kInt16Dot:
      return "int16_dot";
    case RoofOp::kInt32Add:
      return "int32_add";
  }
  return "?";
}

std::string BestRoofIsa() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vpopcntdq"))
    return "avx512";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt")) return "avx2";
  return "scalar";
}

std::vector<InstructionRate> MeasureInstructionRates(const std::string& isa_request,
                                                     int repetitions) {
  const std::string best = BestRoofIsa();
  std::string isa = isa_request.empty() ? best : isa_request;
  // Never run an instruction the CPU lacks.
  if (isa == "avx512" && best != "avx512") isa = best;
  if (isa == "avx2" && best == "scalar") isa = best;
  if (isa != "avx512" && isa != "avx2") isa = "scalar";
  std::vector<InstructionRate> out;
  volatile int64_t sink = 0;
  for (const Mix& m : Mixes(isa)) {
    // Calibrate to about 20 ms per repetition.
    int64_t iters = 1000;
    for (;;) {
      const double c0 = ProcessCpuSeconds();
      sink = sink + m.loop(iters);
      const double dt = ProcessCpuSeconds() - c0;
      if (dt > 2e-3) {
        iters = int64_t(double(iters) * 0.02 / dt) + 1;
        break;
      }
      iters *= 8;
    }
    std::vector<double> rates;
    for (int r = 0; r < std::max(1, repetitions); ++r) {
      const double c0 = ProcessCpuSeconds();
      sink = sink + m.loop(iters);
      const double dt = ProcessCpuSeconds() - c0;
      rates.push_back(double(iters) * m.chains * m.macs_per_group / dt);
    }
    InstructionRate ir;
    ir.op = m.op;
    ir.isa = isa;
    ir.instruction = m.instruction;
    ir.macs_per_group = m.macs_per_group;
    ir.instructions_per_group = m.instructions_per_group;
    ir.macs_per_s = Median(rates);
    out.push_back(ir);
  }
  return out;
}

bool NarrowestOp(const LayerCost& layer, RoofOp* op) {
  if (layer.kind != "conv" && layer.kind != "lstm" && layer.kind != "dense") return false;
  if (layer.macs <= 0 || layer.input_bits_true <= 0) return false;
  if (layer.kind == "conv" && layer.input_bits_true <= 1)
    *op = RoofOp::kPopcount;
  else if (layer.input_bits_true <= 8)
    *op = RoofOp::kInt8Dot;
  else if (layer.input_bits_true <= 16)
    *op = RoofOp::kInt16Dot;
  else
    *op = RoofOp::kInt32Add;
  return true;
}

}  // namespace billnet::bench
