#include "kernels/fast/isa.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "kernels/fast/fast_kernels_avx512.h"

namespace billnet {

const char* FastIsaName(FastIsa isa) {
  switch (isa) {
    case FastIsa::kPortable:
      return "portable";
    case FastIsa::kAvx2:
      return "avx2";
    case FastIsa::kAvx512:
      return "avx512";
  }
  return "portable";
}

bool FastIsaSupported(FastIsa isa) {
  switch (isa) {
    case FastIsa::kPortable:
      return true;
    case FastIsa::kAvx2:
#if defined(BILLNET_FAST_AVX2) && defined(__x86_64__) && defined(__GNUC__)
      // GCC's check includes the OS's YMM state (XGETBV).
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("popcnt");
#else
      return false;
#endif
    case FastIsa::kAvx512:
      if (Avx512KernelsForTesting()) return FastIsaSupported(FastIsa::kAvx2);
#if defined(BILLNET_FAST_AVX512) && defined(__x86_64__) && defined(__GNUC__)
      // Includes the OS's ZMM state; the variant runs the AVX2 kernels too.
      return FastIsaSupported(FastIsa::kAvx2) && __builtin_cpu_supports("avx512f") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
             __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vpopcntdq");
#else
      return false;
#endif
  }
  return false;
}

namespace {
constexpr FastIsa kAllIsas[] = {FastIsa::kPortable, FastIsa::kAvx2, FastIsa::kAvx512};
std::atomic<const Avx512KernelTable*> avx512_for_testing{nullptr};
}  // namespace

void SetAvx512KernelsForTesting(const Avx512KernelTable* table) { avx512_for_testing.store(table); }

const Avx512KernelTable* Avx512KernelsForTesting() { return avx512_for_testing.load(); }

std::vector<FastIsa> SupportedFastIsas() {
  std::vector<FastIsa> out;
  for (FastIsa isa : kAllIsas)
    if (FastIsaSupported(isa)) out.push_back(isa);
  return out;
}

FastIsa BestFastIsa() { return SupportedFastIsas().back(); }

FastIsa FastIsaFromEnvironment() {
  const char* v = std::getenv("BILLNET_FAST_ISA");
  const FastIsa best = BestFastIsa();
  if (v == nullptr || *v == 0) return best;
  const std::string s(v);
  for (FastIsa isa : kAllIsas)
    if (s == FastIsaName(isa)) {
      if (FastIsaSupported(isa)) return isa;
      static std::atomic<bool> warned_unsupported{false};
      if (!warned_unsupported.exchange(true))
        std::fprintf(stderr, "billnet: BILLNET_FAST_ISA='%s' is not supported here; using '%s'\n",
                     v, FastIsaName(best));
      return best;
    }
  static std::atomic<bool> warned_unknown{false};
  if (!warned_unknown.exchange(true))
    std::fprintf(
        stderr,
        "billnet: BILLNET_FAST_ISA='%s' is not 'portable', 'avx2' or 'avx512'; using '%s'\n", v,
        FastIsaName(best));
  return best;
}

}  // namespace billnet
