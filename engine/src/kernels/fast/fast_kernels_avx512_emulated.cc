// The AVX-512 kernels compiled a second time on SIMDe's portable AVX-512, in
// namespace avx512_emulated, for the tests (decision 27). A file of its own
// because CMake's compile flags belong to a source file, and the product's
// build of fast_kernels_avx512.cc carries -mavx512*: this one must not.
#define BILLNET_AVX512_EMULATE 1
#include "kernels/fast/fast_kernels_avx512.cc"  // NOLINT(bugprone-suspicious-include)
